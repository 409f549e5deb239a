// Command-line layer: one function per subcommand, each in engine/cli_<name>.c. These are
// the only places that print errors and choose exit codes (0 ok, 1 runtime error, 2 usage).
#ifndef ZS_CLI_H
#define ZS_CLI_H
#include "engine/status.h"
#include "engine/tensor.h"
#define ZSMLC_VERSION "0.1.0"

int zs_cmd_inspect(int argc, char **argv);
int zs_cmd_tokenize(int argc, char **argv);
int zs_cmd_selfcheck(int argc, char **argv);
zs_status zs_selfcheck_sd(int use_cuda);      // engine/cli_selfcheck_sd.c (prints its line)
int zs_cmd_clip_encode(int argc, char **argv);  // engine/cli_clip.c
int zs_cmd_clip_score(int argc, char **argv);
int zs_cmd_txt2img(int argc, char **argv);     // engine/cli_sd.c

// Prints "zsmlc CMD: <status name>: <message>" to stderr and returns 1.
int zs_cli_fail(const char *cmd, int status);
// --device / --dtype (either may be NULL: CPU; F32 on the CPU, cuda_default on CUDA) into dev,
// index, dt. NULL when fine, else what is wrong (a usage error): an unknown device or dtype
// (f32 | bf16 | f16), or bf16 / f16 on the CPU (which computes in F32 only).
const char *zs_cli_device_dtype(const char *device, const char *dtype, zs_dtype cuda_default, zs_device *dev,
                                int *index, zs_dtype *dt);
#endif
