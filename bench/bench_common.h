// Shared by the zsmlc_bench suites: timing, the device / dtype runs of --device, the output file.
#ifndef ZS_BENCH_COMMON_H
#define ZS_BENCH_COMMON_H
#include <stddef.h>
#include <stdio.h>
#include "engine/tensor.h"

double zb_now_ms(void);                          // monotonic milliseconds
int zb_cmp_double(const void *a, const void *b);  // qsort ascending
static inline double zb_mib(size_t b) { return (double)b / (1024.0 * 1024.0); }

// Median milliseconds of rep calls of fn(ctx), each followed by a device sync, after `warmup`
// untimed calls (rep <= 64).
zs_status zb_time_median(zs_status (*fn)(void *), void *ctx, zs_device dev, int warmup, int rep, double *ms);

typedef struct {
    zs_device dev;
    zs_dtype dt;
} zb_run;
// --device cpu|cuda|all -> runs: CPU F32, then CUDA F32 and BF16 where a GPU answers. Returns
// 0, 2 for a bad value (the caller prints its usage), 1 when cuda was asked for and no GPU
// answers (message printed).
int zb_runs(const char *devs, zb_run runs[3], int *n);
// Opens out (may be NULL: *js = NULL) for writing, or appending (suite all), and prints the
// build information unless appending. 1 when out cannot be opened (message printed).
int zb_begin(const char *out, int append, FILE **js);
#endif
