// Running the built zsmlc binary from tests (the one next to the test binary: build/ or
// build-san/), in a temp folder of its own.
#ifndef ZT_CLI_ENV_H
#define ZT_CLI_ENV_H
#include <stddef.h>
#include "engine/status.h"

typedef struct {
    char bin[4096], dir[256], err[16384];
} cli_env;

// 0 when the binary is there (else skip the test); tag names the temp folder.
int zt_cli_open(cli_env *e, const char *tag);
void zt_cli_close(cli_env *e);  // removes the temp folder
const char *zt_cli_path(const cli_env *e, const char *name, char *buf, size_t n);  // <dir>/<name>
// Runs "zsmlc ARGS" (formatted; paths must not need quoting); returns the exit status and keeps
// stderr in e->err.
int zt_cli_run(cli_env *e, const char *fmt, ...) ZS_PRINTF(2, 3);
#endif
