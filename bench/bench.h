// zsmlc_bench suites (bench/bench_main.c dispatches on --suite). Each takes the options
// after the suite is removed; append: --out is appended to (suite "all"), not truncated.
#ifndef ZS_BENCH_H
#define ZS_BENCH_H
int zs_bench_ops(int argc, char **argv, int append);   // bench/bench_ops.c
int zs_bench_clip(int argc, char **argv, int append);  // bench/bench_clip.c
int zs_bench_sd(int argc, char **argv, int append);    // bench/bench_sd.c
#endif
