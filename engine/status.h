// Error reporting for library code: every fallible function returns a zs_status;
// the message (with file:line and the file, tensor or field at fault) is kept per thread.
// Only the command-line layer prints it and exits.
#ifndef ZS_STATUS_H
#define ZS_STATUS_H
#include <stdarg.h>

typedef enum {
    ZS_OK = 0,
    ZS_EINVAL,      // bad argument, shape or config value
    ZS_EIO,         // file system
    ZS_EFORMAT,     // malformed file contents
    ZS_ENOMEM,      // allocation failed / arena exhausted
    ZS_EUNSUPPORTED,// valid but not implemented (dtype on a backend, ...)
    ZS_ECUDA,       // CUDA runtime / cuBLAS / cuDNN / NCCL
    ZS_ENAN,        // non-finite values where they are not allowed
} zs_status;

#if defined(__GNUC__)
#define ZS_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define ZS_PRINTF(a, b)
#endif

// Sets the thread's error message ("file:line: message") and returns code.
zs_status zs_fail(zs_status code, const char *file, int line, const char *fmt, ...) ZS_PRINTF(4, 5);
// Prefixes context to the current message ("context: previous message"); returns code.
zs_status zs_fail_context(zs_status code, const char *fmt, ...) ZS_PRINTF(2, 3);
const char *zs_errmsg(void);
const char *zs_status_name(zs_status s);
void zs_clear_error(void);

#define ZS_ERR(code, ...) zs_fail((code), __FILE__, __LINE__, __VA_ARGS__)
#define ZS_TRY(expr)                          \
    do {                                      \
        zs_status zs_try_s_ = (expr);         \
        if (zs_try_s_ != ZS_OK) return zs_try_s_; \
    } while (0)

#endif
