// Op benchmark: times forward and backward of the op table's cases (tests/op_table.c, the
// ZT_CASE_BENCH ones unless --all) on the CPU (F32) and, where a GPU answers, CUDA (F32 and
// BF16). Per call: median over --repeat batches, each batch long enough (>= 20 ms or one call)
// to hide timer and launch-sync overhead. Prints a table; --out writes JSON lines.
// Suite "ops" of zsmlc_bench (bench/bench_main.c).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench/bench.h"
#include "bench/bench_common.h"
#include "engine/backend.h"
#include "tests/op_table.h"

// Median ms per call of fwd (bwd = 0) or bwd. Calls are queued back to back and the device
// synchronised once per batch, so CUDA numbers are throughput, not launch latency.
static zs_status time_op(zt_op_inst *o, int bwd, int repeat, double *ms) {
    zs_status (*fn)(zt_op_inst *) = bwd ? zt_op_backward : zt_op_forward;
    ZS_TRY(fn(o));  // warm-up (and cuBLAS heuristics, page faults)
    ZS_TRY(zs_sync(o->dev));
    double t0 = zb_now_ms();
    ZS_TRY(fn(o));
    ZS_TRY(zs_sync(o->dev));
    double one = zb_now_ms() - t0;
    int k = one >= 20 ? 1 : (int)(20 / (one > 1e-3 ? one : 1e-3)) + 1;
    if (k > 1000) k = 1000;
    double *t = malloc(sizeof(double) * (size_t)repeat);
    if (!t) return ZS_ERR(ZS_ENOMEM, "bench: timings");
    zs_status s = ZS_OK;
    for (int r = 0; r < repeat && !s; r++) {
        t0 = zb_now_ms();
        for (int i = 0; i < k && !s; i++) s = fn(o);
        if (!s) s = zs_sync(o->dev);
        t[r] = (zb_now_ms() - t0) / k;
    }
    qsort(t, (size_t)repeat, sizeof *t, zb_cmp_double);
    *ms = t[repeat / 2];
    free(t);
    return s;
}

static void usage(void) {
    printf("usage: zsmlc_bench [--suite ops] [--out FILE] [--filter SUBSTR] [--repeat N] [--device cpu|cuda|all] [--all]\n"
           "  times forward and backward of each op case; --all adds the (small) test cases\n");
}

int zs_bench_ops(int argc, char **argv, int append) {
    const char *out = NULL, *filter = NULL, *devs = "all";
    int repeat = 5, all = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--out") && more) out = argv[++i];
        else if (!strcmp(a, "--filter") && more) filter = argv[++i];
        else if (!strcmp(a, "--repeat") && more) repeat = atoi(argv[++i]);
        else if (!strcmp(a, "--device") && more) devs = argv[++i];
        else if (!strcmp(a, "--all")) all = 1;
        else if (!strcmp(a, "--batch") && more) i++;  // the clip suite's option (--suite all)
        else { usage(); return strcmp(a, "--help") ? 2 : 0; }
    }
    zb_run runs[3];
    int nruns = 0, rr = repeat < 1 ? 2 : zb_runs(devs, runs, &nruns);
    if (rr == 2) usage();
    if (rr) return rr;
    FILE *js;
    if (zb_begin(out, append, &js)) return 1;
    printf("%-28s %-32s %-5s %-5s %-4s %10s %9s %8s\n", "case", "shape", "dev", "dtype", "dir", "ms", "GFLOP/s", "GB/s");
    int rc = 0;
    for (int ci = 0; ci < zt_op_count(); ci++) {
        const zt_op_case *c = zt_op_at(ci);
        if (!all && !(c->flags & ZT_CASE_BENCH)) continue;
        if (filter && !strstr(c->name, filter)) continue;
        char shape[128];
        zt_op_shape_str(c, shape, sizeof shape);
        for (int ri = 0; ri < nruns; ri++) {
            if (runs[ri].dev == ZS_CPU && (c->flags & ZT_CASE_BENCH_GPU_ONLY)) continue;  // CPU: far too slow
            zt_op_inst o;
            zs_status s = zt_op_alloc(&o, c, runs[ri].dev, runs[ri].dt, 0);
            if (!s) s = zt_op_fill(&o, 1234);
            if (!s) s = zt_op_forward(&o);  // layer norm / softmax backward read its outputs
            for (int bwd = 0; bwd < 2 && !s; bwd++) {
                double ms = 0, flops, bytes;
                s = time_op(&o, bwd, repeat, &ms);
                if (s) break;
                zt_op_cost(c, bwd, zs_dtype_size(runs[ri].dt), &flops, &bytes);
                double gf = flops / (ms * 1e6), gb = bytes / (ms * 1e6);
                const char *dev = zs_device_name(runs[ri].dev), *dt = zs_dtype_name(runs[ri].dt);
                const char *dir = bwd ? "bwd" : "fwd";
                char gfs[32] = "-";
                if (flops > 0) snprintf(gfs, sizeof gfs, "%.1f", gf);
                printf("%-28s %-32s %-5s %-5s %-4s %10.4f %9s %8.1f\n", c->name, shape, dev, dt, dir, ms, gfs, gb);
                fflush(stdout);
                if (js) {
                    fprintf(js, "{\"op\": \"%s\", \"case\": \"%s\", \"shape\": \"%s\", \"device\": \"%s\", \"dtype\": \"%s\", "
                                "\"direction\": \"%s\", \"ms\": %.6g, \"gflops\": ",
                            zt_op_case_kind(c), c->name, shape, dev, dt, dir, ms);
                    if (flops > 0) fprintf(js, "%.6g", gf);
                    else fprintf(js, "null");
                    fprintf(js, ", \"gbs\": %.6g}\n", gb);
                }
            }
            if (s) {
                fprintf(stderr, "zsmlc_bench: %s on %s %s: %s\n", c->name, zs_device_name(runs[ri].dev),
                        zs_dtype_name(runs[ri].dt), zs_errmsg());
                rc = 1;
            }
            zt_op_free(&o);
        }
    }
    if (js) fclose(js);
    if (out) printf("wrote %s\n", out);
    return rc;
}
