// PLACEHOLDER: being written (not done).
#include <stdio.h>
#include "engine/cli.h"
int zs_cmd_selfcheck(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "zsmlc selfcheck: not implemented yet\n"); return 1; }
