#include "tests/cli_env.h"
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int zt_cli_open(cli_env *e, const char *tag) {
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    self[n] = 0;
    snprintf(e->bin, sizeof e->bin, "%s/zsmlc", dirname(self));
    if (access(e->bin, X_OK) != 0) return -1;
    snprintf(e->dir, sizeof e->dir, "/tmp/zsmlc_cli_%s_XXXXXX", tag);
    return mkdtemp(e->dir) ? 0 : -1;
}

void zt_cli_close(cli_env *e) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", e->dir);
}

const char *zt_cli_path(const cli_env *e, const char *name, char *buf, size_t n) {
    snprintf(buf, n, "%s/%s", e->dir, name);
    return buf;
}

int zt_cli_run(cli_env *e, const char *fmt, ...) {
    char args[8192], cmd[16384], errp[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    zt_cli_path(e, "stderr.txt", errp, sizeof errp);
    snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>'%s'", e->bin, args, errp);
    int st = system(cmd);
    e->err[0] = 0;
    FILE *f = fopen(errp, "r");
    if (f) {
        size_t k = fread(e->err, 1, sizeof e->err - 1, f);
        e->err[k] = 0;
        fclose(f);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}
