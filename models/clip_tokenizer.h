// CLIP byte-level BPE tokenizer with token-for-token parity with open_clip's SimpleTokenizer
// (mode OPENCLIP: ftfy + html.unescape + whitespace + lower clean, regex-module split) and
// transformers 5.x CLIPTokenizer (mode HF: added tokens, NFC + \s+ + lowercase, tokenizers split).
// Vocabularies: OpenAI's bpe_simple_vocab_16e6.txt.gz (also built into the binary) or a Hugging
// Face tokenizer folder (vocab.json + merges.txt + tokenizer_config.json/special_tokens_map.json).
#ifndef ZS_CLIP_TOKENIZER_H
#define ZS_CLIP_TOKENIZER_H
#include <stddef.h>
#include <stdint.h>
#include "engine/status.h"

#define ZS_CLIP_CONTEXT 77

typedef enum { ZS_TOK_OPENCLIP = 0, ZS_TOK_HF = 1 } zs_tok_mode;
typedef struct zs_tokenizer zs_tokenizer;

// The vocabulary embedded in the binary (weights/clip/bpe_simple_vocab_16e6.txt.gz); mode OPENCLIP.
zs_status zs_tok_load_builtin(zs_tokenizer **out);
// OpenAI BPE merges, gzip; mode OPENCLIP. name is used in error messages.
zs_status zs_tok_load_bpe_gz(const char *path, zs_tokenizer **out);
zs_status zs_tok_load_bpe_gz_mem(const void *gz, size_t n, const char *name, zs_tokenizer **out);
// Hugging Face folder; mode HF. Config files are optional (CLIPTokenizer defaults apply).
zs_status zs_tok_load_hf_dir(const char *dir, zs_tokenizer **out);
// Same from memory; config_json (tokenizer_config.json layout) may be NULL.
zs_status zs_tok_load_hf_mem(const char *vocab_json, size_t vocab_len, const char *merges, size_t merges_len,
                             const char *config_json, size_t config_len, const char *name, zs_tokenizer **out);
// A directory loads as HF, a file as OpenAI gzip.
zs_status zs_tok_load(const char *path, zs_tokenizer **out);
void zs_tok_free(zs_tokenizer *t);

void zs_tok_set_mode(zs_tokenizer *t, zs_tok_mode mode);  // cleanup + split rules, not the vocabulary
zs_tok_mode zs_tok_mode_of(const zs_tokenizer *t);
int32_t zs_tok_sot(const zs_tokenizer *t);
int32_t zs_tok_eot(const zs_tokenizer *t);
// Padding id: 0 in OPENCLIP mode (open_clip.tokenize), the configured pad token in HF mode
// (49407 for SD 1.x folders, 0 = "!" for SD 2.x).
int32_t zs_tok_pad(const zs_tokenizer *t);
int32_t zs_tok_vocab_size(const zs_tokenizer *t);

// Token ids of UTF-8 text: start, BPE tokens, end; no truncation or padding. *ids is malloc'd.
zs_status zs_tok_encode(const zs_tokenizer *t, const char *text, size_t len, int32_t **ids, int *n);
// A row of ctx ids as open_clip.tokenize: ids[:ctx] with the last set to end, then padding.
// *eot_index (may be NULL) is the position of the end token, where CLIP pools.
zs_status zs_tok_encode_padded(const zs_tokenizer *t, const char *text, size_t len, int ctx, int32_t *row,
                               int *eot_index);

// Fuzz entry (tests/fuzz/fuzz_tokenizer.c and the corpus test). data[0] % 4 picks: 0/1 tokenize
// the rest with the builtin vocabulary in OPENCLIP/HF mode; 2 load "vocab.json\0merges\0config"
// from the rest and tokenize with it; 3 load the rest as a gzip BPE file. Always returns 0.
int zs_fuzz_tokenizer(const uint8_t *data, size_t size);
#endif
