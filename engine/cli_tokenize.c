// zsmlc tokenize [--vocab FILE_OR_DIR] [--mode openclip|hf] TEXT...: CLIP token ids of each text,
// start and end included, no padding, one line per text.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/cli.h"
#include "models/clip_tokenizer.h"

static int usage(void) {
    fprintf(stderr, "usage: zsmlc tokenize [--vocab FILE.gz|HF_DIR] [--mode openclip|hf] TEXT...\n"
                    "  --vocab  OpenAI bpe_simple_vocab_16e6.txt.gz (mode openclip) or a Hugging Face tokenizer\n"
                    "           folder with vocab.json + merges.txt (mode hf); default: the built-in vocabulary\n"
                    "  --mode   cleanup and split rules of open_clip or transformers' CLIPTokenizer\n");
    return 2;
}

int zs_cmd_tokenize(int argc, char **argv) {
    const char *vocab = NULL, *mode = NULL;
    int first = argc;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--vocab") && i + 1 < argc) vocab = argv[++i];
        else if (!strcmp(argv[i], "--mode") && i + 1 < argc) mode = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(); return 0; }
        else if (!strcmp(argv[i], "--")) { first = i + 1; break; }
        else if (!strncmp(argv[i], "--", 2)) { fprintf(stderr, "zsmlc tokenize: unknown or incomplete option '%s'\n", argv[i]); return usage(); }
        else { first = i; break; }
    }
    if (mode && strcmp(mode, "openclip") && strcmp(mode, "hf")) {
        fprintf(stderr, "zsmlc tokenize: --mode must be openclip or hf, not '%s'\n", mode);
        return 2;
    }
    if (first >= argc) return usage();
    zs_tokenizer *t;
    zs_status st = vocab ? zs_tok_load(vocab, &t) : zs_tok_load_builtin(&t);
    if (st != ZS_OK) return zs_cli_fail("tokenize", st);
    if (mode) zs_tok_set_mode(t, strcmp(mode, "hf") ? ZS_TOK_OPENCLIP : ZS_TOK_HF);
    for (int i = first; i < argc && st == ZS_OK; i++) {
        int32_t *ids;
        int n;
        st = zs_tok_encode(t, argv[i], strlen(argv[i]), &ids, &n);
        if (st != ZS_OK) break;
        for (int k = 0; k < n; k++) printf(k ? " %d" : "%d", ids[k]);
        putchar('\n');
        free(ids);
    }
    zs_tok_free(t);
    return st == ZS_OK ? 0 : zs_cli_fail("tokenize", st);
}
