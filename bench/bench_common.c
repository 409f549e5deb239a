#include "bench/bench_common.h"
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "engine/backend.h"

double zb_now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int zb_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

zs_status zb_time_median(zs_status (*fn)(void *), void *ctx, zs_device dev, int warmup, int rep, double *ms) {
    double t[64];
    if (rep < 1 || rep > 64) return ZS_ERR(ZS_EINVAL, "bench: %d repeats (1..64)", rep);
    for (int i = 0; i < warmup; i++) ZS_TRY(fn(ctx));
    ZS_TRY(zs_sync(dev));
    for (int r = 0; r < rep; r++) {
        double t0 = zb_now_ms();
        ZS_TRY(fn(ctx));
        ZS_TRY(zs_sync(dev));
        t[r] = zb_now_ms() - t0;
    }
    qsort(t, (size_t)rep, sizeof *t, zb_cmp_double);
    *ms = t[rep / 2];
    return ZS_OK;
}

int zb_runs(const char *devs, zb_run runs[3], int *n) {
    if (strcmp(devs, "cpu") && strcmp(devs, "cuda") && strcmp(devs, "all")) return 2;
    int want_cpu = strcmp(devs, "cuda") != 0, want_gpu = strcmp(devs, "cpu") != 0;
    int gpu = want_gpu && zs_cuda_available() && zs_cuda_init(0) == ZS_OK;
    if (!strcmp(devs, "cuda") && !gpu) {
        fprintf(stderr, "zsmlc_bench: --device cuda but no usable GPU (%s)\n", zs_errmsg());
        return 1;
    }
    *n = 0;
    if (want_cpu) runs[(*n)++] = (zb_run){ZS_CPU, ZS_F32};
    if (gpu) runs[(*n)++] = (zb_run){ZS_CUDA, ZS_F32}, runs[(*n)++] = (zb_run){ZS_CUDA, ZS_BF16};
    return 0;
}

int zb_begin(const char *out, int append, FILE **js) {
    *js = NULL;
    if (out && !(*js = fopen(out, append ? "a" : "w"))) {
        perror(out);
        return 1;
    }
    if (!append) {
        char info[2048];
        zs_build_info(info, sizeof info);
        printf("%s", info);
    }
    return 0;
}
