// libFuzzer target: PNG / JPEG decoding (engine/image.c).
#include <stddef.h>
#include <stdint.h>
#include "engine/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return zs_fuzz_image(data, size); }
