// PLACEHOLDER: being written (not done).
#include <stdio.h>
#include "engine/cli.h"
int zs_cmd_inspect(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "zsmlc inspect: not implemented yet\n"); return 1; }
