// libFuzzer target: the bytes are a whole .safetensors file (parse, validate, read floats).
// make fuzz-build && build-fuzz/fuzz_safetensors tests/fuzz/corpus/fuzz_safetensors
#include <stddef.h>
#include <stdint.h>
#include "weights/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return zs_fuzz_safetensors(data, size); }
