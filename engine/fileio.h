// Whole-file writes that never leave a half-written file: the bytes go to a temp file beside
// the target (same folder, so rename is atomic), are fsync'd, and the temp file is renamed
// over the target; the folder is fsync'd so the rename survives a crash. On any error the
// temp file is removed and the target is untouched.
#ifndef ZS_FILEIO_H
#define ZS_FILEIO_H
#include <stddef.h>
#include "status.h"

typedef struct {
    const void *data;
    size_t n;
} zs_iov;

// Writes the concatenation of parts[0..n) to path (mode 0644 less the umask).
zs_status zs_write_file_atomic(const char *path, const zs_iov *parts, int n);
// Test hook: when set, the write fails after the data is written and before the rename.
extern int zs_write_fault;
#endif
