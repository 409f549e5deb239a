// libFuzzer target: Stable Diffusion config files (models/sd_config_fuzz.c says how the input is read).
#include <stddef.h>
#include <stdint.h>
#include "models/sd_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return zs_fuzz_sd_config(data, size); }
