// Test runner: runs registered tests (optionally those whose name contains a filter) and
// prints "N passed, N failed, N skipped". Exit status 1 on any failure.
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "engine/backend.h"
#include "engine/rng.h"
#include "test.h"

typedef struct { const char *name, *file; zt_fn fn; int gpu; } zt_case;
static zt_case g_cases[4096];
static int g_n;

void zt_register(const char *name, const char *file, zt_fn fn, int gpu) {
    if (g_n < (int)(sizeof g_cases / sizeof g_cases[0])) g_cases[g_n++] = (zt_case){name, file, fn, gpu};
}

void zt_note(const char *file, int line, const char *fmt, ...) {
    const char *b = strrchr(file, '/');
    fprintf(stdout, "    %s:%d: ", b ? b + 1 : file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
}

double zt_rel_err(const float *got, const float *ref, int64_t n, double floor) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) && isfinite(ref[i])) return INFINITY;
        if (!isfinite(ref[i])) {
            if (!(isnan(ref[i]) ? isnan(got[i]) : got[i] == ref[i])) return INFINITY;
            continue;
        }
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
    }
    den = sqrt(den);
    return sqrt(num) / (den > floor ? den : floor);
}

const char *zt_fixture_path(const char *rel, char *buf, size_t n) {
    const char *root = getenv("ZSMLC_FIXTURES");
    snprintf(buf, n, "%s/%s", root && *root ? root : "tests/fixtures", rel);
    return buf;
}

void zt_fill_uniform(float *x, int64_t n, uint64_t seed, float lo, float hi) {
    zs_rng_uniform_host(x, n, seed, 0);
    for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * x[i];
}

static int cmp_case(const void *a, const void *b) {
    const zt_case *x = a, *y = b;
    int c = strcmp(x->file, y->file);
    return c ? c : strcmp(x->name, y->name);
}

int main(int argc, char **argv) {
    const char *filter = NULL;
    int require_gpu = 0, gpu_only = 0, list = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--require-gpu")) require_gpu = gpu_only = 1;
        else if (!strcmp(argv[i], "--list")) list = 1;
        else if (!strcmp(argv[i], "--help")) {
            printf("usage: zsmlc_tests [--list] [--require-gpu] [FILTER]\n");
            return 0;
        } else filter = argv[i];
    }
    qsort(g_cases, (size_t)g_n, sizeof g_cases[0], cmp_case);
    int gpu = zs_cuda_available();
    if (gpu && zs_cuda_init(0) != ZS_OK) {
        printf("GPU present but CUDA init failed: %s\n", zs_errmsg());
        gpu = 0;
    }
    if (require_gpu && !gpu) {
        printf("--require-gpu: no usable GPU\n0 passed, 1 failed, 0 skipped\n");
        return 1;
    }
    int pass = 0, fail = 0, skip = 0;
    for (int i = 0; i < g_n; i++) {
        zt_case *c = &g_cases[i];
        if (filter && !strstr(c->name, filter) && !strstr(c->file, filter)) continue;
        if (gpu_only && !c->gpu) continue;
        if (list) { printf("%s%s\n", c->name, c->gpu ? " (gpu)" : ""); continue; }
        zt_result r;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (c->gpu && !gpu) r = ZT_SKIP;
        else { zs_clear_error(); r = c->fn(); }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
        const char *tag = r == ZT_PASS ? "PASS" : r == ZT_FAIL ? "FAIL" : "SKIP";
        printf("%s %s%s (%.0f ms)\n", tag, c->name, c->gpu && !gpu ? " [no GPU]" : "", ms);
        fflush(stdout);
        if (r == ZT_PASS) pass++; else if (r == ZT_FAIL) fail++; else skip++;
    }
    if (list) return 0;
    printf("%d passed, %d failed, %d skipped\n", pass, fail, skip);
    return fail ? 1 : 0;
}

int zt_replay_corpus(const char *target, int (*fn)(const uint8_t *, size_t)) {
    char rel[256], dir[1024];
    snprintf(rel, sizeof rel, "../fuzz/corpus/%s", target);
    DIR *d = opendir(zt_fixture_path(rel, dir, sizeof dir));
    if (!d) return -1;
    int n = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        char p[1400];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        FILE *f = fopen(p, "rb");
        if (!f) continue;
        uint8_t *buf = malloc(1 << 20);
        size_t k = buf ? fread(buf, 1, 1 << 20, f) : 0;
        fclose(f);
        uint8_t *copy = buf ? malloc(k ? k : 1) : NULL;
        if (copy) {
            memcpy(copy, buf, k);
            fn(copy, k);
            n++;
        }
        free(copy);
        free(buf);
    }
    closedir(d);
    return n;
}
