#include "status.h"
#include <stdio.h>
#include <string.h>

static _Thread_local char g_msg[2048];

zs_status zs_fail(zs_status code, const char *file, int line, const char *fmt, ...) {
    const char *base = strrchr(file, '/');
    int n = snprintf(g_msg, sizeof g_msg, "%s:%d: ", base ? base + 1 : file, line);
    if (n < 0) n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg + n, sizeof g_msg - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

zs_status zs_fail_context(zs_status code, const char *fmt, ...) {
    char prev[sizeof g_msg];
    memcpy(prev, g_msg, sizeof prev);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof g_msg) snprintf(g_msg + n, sizeof g_msg - (size_t)n, ": %s", prev);
    return code;
}

const char *zs_errmsg(void) { return g_msg[0] ? g_msg : "no error"; }
void zs_clear_error(void) { g_msg[0] = 0; }

const char *zs_status_name(zs_status s) {
    switch (s) {
    case ZS_OK: return "ok";
    case ZS_EINVAL: return "invalid argument";
    case ZS_EIO: return "i/o error";
    case ZS_EFORMAT: return "format error";
    case ZS_ENOMEM: return "out of memory";
    case ZS_EUNSUPPORTED: return "unsupported";
    case ZS_ECUDA: return "cuda error";
    case ZS_ENAN: return "non-finite value";
    }
    return "unknown";
}
