// libFuzzer target for the CLIP tokenizer and its vocabulary loaders; the logic is the library's
// zs_fuzz_tokenizer (models/clip_tokenizer.c) so that tests/test_tokenizer.c replays the corpus.
#include <stddef.h>
#include <stdint.h>
#include "models/clip_tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return zs_fuzz_tokenizer(data, size); }
