#include "fileio.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int zs_write_fault;

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static void fsync_dir(const char *path) {  // failure leaves a complete file: ignored
    char *dir = strdup(path), *slash = dir ? strrchr(dir, '/') : NULL;
    if (!dir) return;
    if (slash) *(slash == dir ? slash + 1 : slash) = 0;
    int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dir);
}

zs_status zs_write_file_atomic(const char *path, const zs_iov *parts, int n) {
    size_t tn = strlen(path) + 16;
    char *tmp = malloc(tn);
    if (!tmp) return ZS_ERR(ZS_ENOMEM, "%s", path);
    snprintf(tmp, tn, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        zs_status s = ZS_ERR(ZS_EIO, "%s: cannot create temp file %s: %s", path, tmp, strerror(errno));
        free(tmp);
        return s;
    }
    zs_status s = ZS_OK;
    for (int i = 0; i < n && !s; i++)
        if (write_all(fd, parts[i].data, parts[i].n)) s = ZS_ERR(ZS_EIO, "%s: write: %s", tmp, strerror(errno));
    mode_t um = umask(0);
    umask(um);
    if (!s && fchmod(fd, 0644 & ~um) != 0) s = ZS_ERR(ZS_EIO, "%s: chmod: %s", tmp, strerror(errno));
    if (!s && fsync(fd) != 0) s = ZS_ERR(ZS_EIO, "%s: fsync: %s", tmp, strerror(errno));
    if (close(fd) != 0 && !s) s = ZS_ERR(ZS_EIO, "%s: close: %s", tmp, strerror(errno));
    if (!s && zs_write_fault) s = ZS_ERR(ZS_EIO, "%s: injected write fault (test)", tmp);
    if (!s && rename(tmp, path) != 0) s = ZS_ERR(ZS_EIO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
    if (s) unlink(tmp);
    else fsync_dir(path);
    free(tmp);
    return s;
}
