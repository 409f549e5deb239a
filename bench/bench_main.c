// zsmlc_bench: benchmark suites. --suite ops (default: every op family, forward and backward),
// clip (CLIP towers at real sizes with random weights), sd (SD UNet / VAE at real sizes), all
// (ops, clip, sd; one --out file).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench/bench.h"

int main(int argc, char **argv) {
    const char *suite = "ops";
    char **args = malloc(sizeof *args * (size_t)(argc + 1));
    if (!args) return 1;
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && !strcmp(argv[i], "--suite") && i + 1 < argc) suite = argv[++i];
        else if (i > 0 && !strncmp(argv[i], "--suite=", 8)) suite = argv[i] + 8;
        else args[n++] = argv[i];
    }
    args[n] = NULL;
    int rc;
    if (!strcmp(suite, "ops")) rc = zs_bench_ops(n, args, 0);
    else if (!strcmp(suite, "clip")) rc = zs_bench_clip(n, args, 0);
    else if (!strcmp(suite, "sd")) rc = zs_bench_sd(n, args, 0);
    else if (!strcmp(suite, "all")) {
        rc = zs_bench_ops(n, args, 0);
        int rc2 = zs_bench_clip(n, args, 1), rc3 = zs_bench_sd(n, args, 1);
        rc = rc ? rc : rc2 ? rc2 : rc3;
    } else {
        fprintf(stderr, "zsmlc_bench: --suite must be ops, clip, sd or all, not '%s'\n", suite);
        rc = 2;
    }
    free(args);
    return rc;
}
