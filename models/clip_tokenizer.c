// CLIP BPE tokenizer: vocabulary loaders, the CLIP split pattern, byte-level BPE (see clip_tokenizer.h).
#include "models/clip_tokenizer.h"
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "models/text_clean.h"
#include "models/unicode.h"

const unsigned char *zs_clip_vocab_gz(size_t *n);  // models/clip_vocab_blob.c

typedef struct { uint32_t off, len; int32_t id; } vslot;         // string -> id, id < 0: empty
typedef struct { uint64_t key; int32_t rank, merged; } mslot;     // (a, b) -> rank, a+b; rank < 0: empty
typedef struct { zs_ustr text; int32_t id; int normalized; } added_tok;

struct zs_tokenizer {
    zs_tok_mode mode;
    char *pool;  // vocabulary strings
    size_t pool_n, pool_cap;
    vslot *vocab;
    size_t vocab_cap, vocab_n;
    mslot *merges;
    size_t merges_cap;
    int32_t n_ids, sot, eot, pad;
    int32_t byte_id[256], byte_w_id[256];  // byte as a symbol, alone and word-final ("</w>")
    added_tok added[16];                   // HF special tokens matched before/after normalization
    int n_added;
};

// ---- hash maps -----------------------------------------------------------------------------------
static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}
static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33;
    return x;
}

static int32_t vocab_get(const zs_tokenizer *t, const char *s, size_t n) {
    for (size_t i = hash_bytes(s, n) & (t->vocab_cap - 1);; i = (i + 1) & (t->vocab_cap - 1)) {
        const vslot *e = &t->vocab[i];
        if (e->id < 0) return -1;
        if (e->len == n && (n == 0 || !memcmp(t->pool + e->off, s, n))) return e->id;
    }
}

// Later duplicates win, as Python's dict(zip(vocab, range(...))) does.
static zs_status vocab_put(zs_tokenizer *t, const char *s, size_t n, int32_t id) {
    if (n > 0xFFFF) return ZS_ERR(ZS_EFORMAT, "vocabulary entry of %zu bytes", n);
    size_t i = hash_bytes(s, n) & (t->vocab_cap - 1);
    for (;; i = (i + 1) & (t->vocab_cap - 1)) {
        vslot *e = &t->vocab[i];
        if (e->id < 0) break;
        if (e->len == n && (n == 0 || !memcmp(t->pool + e->off, s, n))) { e->id = id; goto done; }
    }
    if (t->pool_n + n > t->pool_cap) {
        size_t c = t->pool_cap ? t->pool_cap : 1 << 16;
        while (c < t->pool_n + n) c *= 2;
        char *p = realloc(t->pool, c);
        if (!p) return ZS_ERR(ZS_ENOMEM, "out of memory (vocabulary strings)");
        t->pool = p, t->pool_cap = c;
    }
    if (n) memcpy(t->pool + t->pool_n, s, n);  // "" is a valid (if odd) HF key; pool may be NULL
    t->vocab[i] = (vslot){(uint32_t)t->pool_n, (uint32_t)n, id};
    t->pool_n += n;
    t->vocab_n++;
done:
    if (id >= t->n_ids) t->n_ids = id + 1;
    return ZS_OK;
}

static const mslot *merge_get(const zs_tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (size_t i = hash_u64(key) & (t->merges_cap - 1);; i = (i + 1) & (t->merges_cap - 1)) {
        const mslot *e = &t->merges[i];
        if (e->rank < 0) return NULL;
        if (e->key == key) return e;
    }
}

static void merge_put(zs_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t merged) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t i = hash_u64(key) & (t->merges_cap - 1);
    while (t->merges[i].rank >= 0 && t->merges[i].key != key) i = (i + 1) & (t->merges_cap - 1);
    t->merges[i] = (mslot){key, rank, merged};  // later duplicates win, as in both references
}

static size_t pow2_at_least(size_t n) {
    size_t c = 1024;
    while (c < n) c *= 2;
    return c;
}

static zs_status tok_new(size_t n_vocab, size_t n_merges, zs_tokenizer **out) {
    zs_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return ZS_ERR(ZS_ENOMEM, "out of memory");
    t->vocab_cap = pow2_at_least(2 * n_vocab + 1);
    t->merges_cap = pow2_at_least(2 * n_merges + 1);
    t->vocab = malloc(t->vocab_cap * sizeof *t->vocab);
    t->merges = malloc(t->merges_cap * sizeof *t->merges);
    if (!t->vocab || !t->merges) { zs_tok_free(t); return ZS_ERR(ZS_ENOMEM, "out of memory"); }
    for (size_t i = 0; i < t->vocab_cap; i++) t->vocab[i].id = -1;
    for (size_t i = 0; i < t->merges_cap; i++) t->merges[i].rank = -1;
    *out = t;
    return ZS_OK;
}

void zs_tok_free(zs_tokenizer *t) {
    if (!t) return;
    for (int i = 0; i < t->n_added; i++) zs_ustr_free(&t->added[i].text);
    free(t->pool);
    free(t->vocab);
    free(t->merges);
    free(t);
}

// ---- shared construction ---------------------------------------------------------------------------
// bytes_to_unicode(): printable Latin-1 bytes map to themselves, the rest to U+0100 + n, in this order.
static void byte_chars(uint32_t cs[256], int order[256]) {
    int n = 0, k = 0;
    for (int b = 0; b < 256; b++)
        if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE)) { cs[b] = (uint32_t)b; order[k++] = b; }
    for (int b = 0; b < 256; b++)
        if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE))) { cs[b] = 256u + (uint32_t)n++; order[k++] = b; }
}

// Resolves byte symbols; a vocabulary lacking one (only crafted HF files) maps it to the unknown id.
static void resolve_bytes(zs_tokenizer *t) {
    uint32_t cs[256];
    int order[256];
    byte_chars(cs, order);
    for (int b = 0; b < 256; b++) {
        char s[8];
        int n = zs_utf8_put(cs[b], s);
        t->byte_id[b] = vocab_get(t, s, (size_t)n);
        memcpy(s + n, "</w>", 4);
        t->byte_w_id[b] = vocab_get(t, s, (size_t)n + 4);
    }
}

// Adds the merge "a b" (a and b as bytes) with its rank; every part must be in the vocabulary.
static zs_status add_merge(zs_tokenizer *t, const char *a, size_t na, const char *b, size_t nb, int32_t rank,
                           char *scratch, const char *name, long line) {
    memcpy(scratch, a, na);
    memcpy(scratch + na, b, nb);
    int32_t ia = vocab_get(t, a, na), ib = vocab_get(t, b, nb), im = vocab_get(t, scratch, na + nb);
    if (ia < 0 || ib < 0 || im < 0)
        return ZS_ERR(ZS_EFORMAT, "%s: line %ld: merge '%.*s %.*s' uses a token missing from the vocabulary", name,
                      line, (int)na, a, (int)nb, b);
    merge_put(t, ia, ib, rank, im);
    return ZS_OK;
}

// Splits a merges line at its single separating space/tab into a and b.
static int split_merge(const char *s, size_t n, size_t *na, const char **b, size_t *nb) {
    size_t i = 0;
    while (i < n && s[i] != ' ' && s[i] != '\t') i++;
    if (i == 0 || i + 1 >= n) return 0;
    *na = i;
    *b = s + i + 1;
    *nb = n - i - 1;
    return !memchr(*b, ' ', *nb) && !memchr(*b, '\t', *nb);
}

// ---- OpenAI gzip vocabulary -------------------------------------------------------------------------
static zs_status gunzip(const void *gz, size_t n, const char *name, char **out, size_t *out_n) {
    z_stream z = {0};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return ZS_ERR(ZS_ENOMEM, "%s: zlib init failed", name);
    size_t cap = 4 << 20, len = 0, limit = 256u << 20;
    char *buf = malloc(cap);
    if (!buf) { inflateEnd(&z); return ZS_ERR(ZS_ENOMEM, "out of memory"); }
    z.next_in = (Bytef *)(uintptr_t)gz;
    z.avail_in = (uInt)n;
    int r = Z_OK;
    while (r != Z_STREAM_END) {
        if (len == cap) {
            char *b = cap < limit ? realloc(buf, cap * 2) : NULL;
            if (!b) { free(buf); inflateEnd(&z); return ZS_ERR(ZS_EFORMAT, "%s: decompressed size over %zu bytes", name, cap); }
            buf = b, cap *= 2;
        }
        z.next_out = (Bytef *)buf + len;
        z.avail_out = (uInt)(cap - len);
        r = inflate(&z, Z_NO_FLUSH);
        len = cap - z.avail_out;
        if (r != Z_OK && r != Z_STREAM_END) {
            const char *m = z.msg ? z.msg : r == Z_BUF_ERROR ? "truncated gzip stream" : "corrupt gzip stream";
            free(buf);
            inflateEnd(&z);
            return ZS_ERR(ZS_EFORMAT, "%s: not a valid gzip file: %s", name, m);
        }
    }
    inflateEnd(&z);
    *out = buf;
    *out_n = len;
    return ZS_OK;
}

// As open_clip's SimpleTokenizer: merges = lines[1 : 48895]; vocab = 256 byte chars, the same with
// "</w>", the joined merges, then the start/end tokens.
static zs_status build_from_merges_text(const char *txt, size_t n, const char *name, zs_tokenizer **out) {
    enum { N_MERGES = 49152 - 256 - 2 };
    zs_tokenizer *t;
    ZS_TRY(tok_new(512 + N_MERGES + 2, N_MERGES, &t));
    uint32_t cs[256];
    int order[256];
    byte_chars(cs, order);
    zs_status st = ZS_OK;
    int32_t id = 0;
    for (int w = 0; w < 2 && st == ZS_OK; w++)
        for (int k = 0; k < 256 && st == ZS_OK; k++) {
            char s[8];
            int m = zs_utf8_put(cs[order[k]], s);
            if (w) memcpy(s + m, "</w>", 4), m += 4;
            st = vocab_put(t, s, (size_t)m, id++);
        }
    // Pass 1 adds every joined merge to the vocabulary, pass 2 the merge ranks.
    char scratch[2 * 0xFFFF + 2];
    for (int pass = 0; pass < 2 && st == ZS_OK; pass++) {
        const char *p = memchr(txt, '\n', n), *end = txt + n;
        long line = 1;
        int32_t rank = 0;
        p = p ? p + 1 : end;
        while (st == ZS_OK && rank < N_MERGES && p < end) {
            const char *e = memchr(p, '\n', (size_t)(end - p));
            if (!e) e = end;
            size_t len = (size_t)(e - p), na, nb;
            if (len && p[len - 1] == '\r') len--;
            const char *b;
            if (len > 0xFFFF || !split_merge(p, len, &na, &b, &nb))
                st = ZS_ERR(ZS_EFORMAT, "%s: line %ld: expected a merge 'A B', got '%.*s'", name, line + 1,
                            (int)(len < 60 ? len : 60), p);
            else if (pass == 0) {
                memcpy(scratch, p, na);
                memcpy(scratch + na, b, nb);
                st = vocab_put(t, scratch, na + nb, id++);
            } else st = add_merge(t, p, na, b, nb, rank, scratch, name, line + 1);
            rank++, line++;
            p = e + 1;
        }
        if (st == ZS_OK && pass == 0 && rank == 0) st = ZS_ERR(ZS_EFORMAT, "%s: no merges after the header line", name);
    }
    if (st == ZS_OK) st = vocab_put(t, "<start_of_text>", 15, t->sot = id++);
    if (st == ZS_OK) st = vocab_put(t, "<end_of_text>", 13, t->eot = id++);
    if (st != ZS_OK) { zs_tok_free(t); return st; }
    t->pad = t->eot;
    resolve_bytes(t);
    // HF mode over this vocabulary behaves as the openai/clip-vit-base-patch32 folder.
    const char *names[2] = {"<|startoftext|>", "<|endoftext|>"};
    for (int i = 0; i < 2 && st == ZS_OK; i++) {
        t->added[i] = (added_tok){{0}, i ? t->eot : t->sot, 1};
        st = zs_utf8_decode(names[i], strlen(names[i]), &t->added[i].text);
        t->n_added = i + 1;
    }
    if (st != ZS_OK) { zs_tok_free(t); return st; }
    t->mode = ZS_TOK_OPENCLIP;
    *out = t;
    return ZS_OK;
}

zs_status zs_tok_load_bpe_gz_mem(const void *gz, size_t n, const char *name, zs_tokenizer **out) {
    char *txt;
    size_t len;
    ZS_TRY(gunzip(gz, n, name, &txt, &len));
    zs_status st = build_from_merges_text(txt, len, name, out);
    free(txt);
    return st;
}

static zs_status read_file(const char *path, char **out, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return ZS_ERR(ZS_EIO, "%s: cannot open: %m", path);
    char *buf = NULL;
    size_t len = 0, cap = 0, r;
    do {
        if (len + 65536 + 1 > cap) {
            cap = cap ? cap * 2 : 1 << 20;
            char *b = realloc(buf, cap);
            if (!b) { free(buf); fclose(f); return ZS_ERR(ZS_ENOMEM, "%s: out of memory", path); }
            buf = b;
        }
        r = fread(buf + len, 1, 65536, f);
        len += r;
    } while (r > 0);
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); return ZS_ERR(ZS_EIO, "%s: read error", path); }
    buf[len] = 0;
    *out = buf;
    *n = len;
    return ZS_OK;
}

zs_status zs_tok_load_bpe_gz(const char *path, zs_tokenizer **out) {
    char *gz;
    size_t n;
    ZS_TRY(read_file(path, &gz, &n));
    zs_status st = zs_tok_load_bpe_gz_mem(gz, n, path, out);
    free(gz);
    return st;
}

zs_status zs_tok_load_builtin(zs_tokenizer **out) {
    size_t n;
    const unsigned char *gz = zs_clip_vocab_gz(&n);
    return zs_tok_load_bpe_gz_mem(gz, n, "builtin bpe_simple_vocab_16e6.txt.gz", out);
}

// ---- Hugging Face folder ------------------------------------------------------------------------------
enum { SP_BOS, SP_EOS, SP_UNK, SP_PAD, SP_N };
typedef struct { char *content[SP_N]; int normalized[SP_N]; } special_cfg;

// A special token given as "text" (normalized=false, as transformers makes it) or {"content", "normalized"}.
static zs_status token_field(const cJSON *v, const char *name, const char *field, char **content, int *normalized) {
    const cJSON *c = v;
    *normalized = 0;
    if (cJSON_IsObject(v)) {
        c = cJSON_GetObjectItemCaseSensitive(v, "content");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(v, "normalized");
        *normalized = cJSON_IsTrue(nm);
    }
    if (!cJSON_IsString(c) || !c->valuestring[0]) return ZS_ERR(ZS_EFORMAT, "%s: \"%s\" is not a token", name, field);
    *content = strdup(c->valuestring);
    return *content ? ZS_OK : ZS_ERR(ZS_ENOMEM, "out of memory");
}

static zs_status add_token(zs_tokenizer *t, const char *content, int32_t id, int normalized) {
    zs_ustr u = {0};
    ZS_TRY(zs_utf8_decode(content, strlen(content), &u));
    for (int i = 0; i < t->n_added; i++)
        if (zs_ustr_eq(&t->added[i].text, &u)) { zs_ustr_free(&u); return ZS_OK; }
    if (t->n_added == (int)(sizeof t->added / sizeof t->added[0])) {
        zs_ustr_free(&u);
        return ZS_ERR(ZS_EUNSUPPORTED, "more than %d added tokens", t->n_added);
    }
    t->added[t->n_added++] = (added_tok){u, id, normalized};
    return ZS_OK;
}

// Reads the special tokens of a tokenizer_config.json / special_tokens_map.json; fields already
// set are kept. added_tokens_decoder entries become added tokens of t directly.
static zs_status apply_config(zs_tokenizer *t, special_cfg *sp, const char *json, size_t n, const char *name) {
    cJSON *root = cJSON_ParseWithLength(json, n);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ZS_ERR(ZS_EFORMAT, "%s: invalid JSON", name);
    }
    static const char *fields[SP_N] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    zs_status st = ZS_OK;
    for (int i = 0; i < SP_N && st == ZS_OK; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, fields[i]);
        if (v && !cJSON_IsNull(v) && !sp->content[i]) st = token_field(v, name, fields[i], &sp->content[i], &sp->normalized[i]);
    }
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "added_tokens_decoder"), *e;
    cJSON_ArrayForEach(e, dec) {
        if (st != ZS_OK) break;
        char *content = NULL, *endp;
        int normalized;
        long id = strtol(e->string ? e->string : "", &endp, 10);
        if (!e->string || *endp || id < 0 || id >= t->n_ids) {
            st = ZS_ERR(ZS_EFORMAT, "%s: added_tokens_decoder key '%s' is not a token id", name, e->string ? e->string : "");
            break;
        }
        st = token_field(e, name, "added_tokens_decoder", &content, &normalized);
        if (st == ZS_OK) st = add_token(t, content, (int32_t)id, normalized);
        free(content);
    }
    cJSON_Delete(root);
    return st;
}

static zs_status build_hf(zs_tokenizer *t, const char *merges, size_t n, const char *name) {
    char *scratch = malloc(2 * 0xFFFF + 2);
    if (!scratch) return ZS_ERR(ZS_ENOMEM, "out of memory");
    zs_status st = ZS_OK;
    int32_t rank = 0;
    long line = 0;
    for (const char *p = merges, *end = merges + n; st == ZS_OK && p < end;) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        size_t len = (size_t)(e - p), na, nb;
        const char *b;
        line++;
        if (len && p[len - 1] == '\r') len--;
        if (!(len >= 8 && !memcmp(p, "#version", 8)) && !(len == 0 && e + 1 >= end)) {
            if (len > 0xFFFF || !split_merge(p, len, &na, &b, &nb))
                st = ZS_ERR(ZS_EFORMAT, "%s: line %ld: expected a merge 'A B', got '%.*s'", name, line,
                            (int)(len < 60 ? len : 60), p);
            else st = add_merge(t, p, na, b, nb, rank++, scratch, name, line);
        }
        p = e + 1;
    }
    free(scratch);
    return st;
}

static zs_status load_hf(const char *vocab_json, size_t vocab_len, const char *merges, size_t merges_len,
                         const char *config_json, size_t config_len, const char *cname, const char *name,
                         zs_tokenizer **out) {
    char vname[4096], mname[4096];
    snprintf(vname, sizeof vname, "%s/vocab.json", name);
    snprintf(mname, sizeof mname, "%s/merges.txt", name);
    cJSON *root = cJSON_ParseWithLength(vocab_json, vocab_len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return ZS_ERR(ZS_EFORMAT, "%s: invalid JSON (expected an object of token -> id)", vname);
    }
    size_t nv = (size_t)cJSON_GetArraySize(root), nl = 0;
    for (size_t i = 0; i < merges_len; i++) nl += merges[i] == '\n';
    zs_tokenizer *t;
    zs_status st = tok_new(nv, nl + 1, &t);
    if (st != ZS_OK) { cJSON_Delete(root); return st; }
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= (1 << 24) || e->valuedouble != (int)e->valuedouble) {
            st = ZS_ERR(ZS_EFORMAT, "%s: id of '%.40s' is not an integer in [0, 2^24)", vname, e->string);
            break;
        }
        if ((st = vocab_put(t, e->string, strlen(e->string), (int32_t)e->valuedouble)) != ZS_OK) break;
    }
    cJSON_Delete(root);
    if (st == ZS_OK && t->vocab_n == 0) st = ZS_ERR(ZS_EFORMAT, "%s: empty vocabulary", vname);
    if (st == ZS_OK) st = build_hf(t, merges, merges_len, mname);
    special_cfg sp = {{0}, {0}};
    if (st == ZS_OK && config_json) st = apply_config(t, &sp, config_json, config_len, cname);
    static const char *defaults[SP_N] = {"<|startoftext|>", "<|endoftext|>", "<|endoftext|>", "<|endoftext|>"};
    int32_t ids[SP_N] = {0};
    for (int i = 0; i < SP_N && st == ZS_OK; i++) {
        const char *c = sp.content[i] ? sp.content[i] : defaults[i];
        ids[i] = vocab_get(t, c, strlen(c));
        if (ids[i] < 0) st = ZS_ERR(ZS_EFORMAT, "%s: special token '%s' is not in the vocabulary", vname, c);
    }
    for (int i = 0; i < SP_N && st == ZS_OK; i++)  // all special tokens split out of the text
        st = add_token(t, sp.content[i] ? sp.content[i] : defaults[i], ids[i], sp.normalized[i]);
    for (int i = 0; i < SP_N; i++) free(sp.content[i]);
    if (st != ZS_OK) { zs_tok_free(t); return st; }
    t->sot = ids[SP_BOS], t->eot = ids[SP_EOS], t->pad = ids[SP_PAD];
    resolve_bytes(t);
    t->mode = ZS_TOK_HF;
    *out = t;
    return ZS_OK;
}

zs_status zs_tok_load_hf_mem(const char *vocab_json, size_t vocab_len, const char *merges, size_t merges_len,
                             const char *config_json, size_t config_len, const char *name, zs_tokenizer **out) {
    char cname[4096];
    snprintf(cname, sizeof cname, "%s/tokenizer_config.json", name);
    return load_hf(vocab_json, vocab_len, merges, merges_len, config_json, config_len, cname, name, out);
}

zs_status zs_tok_load_hf_dir(const char *dir, zs_tokenizer **out) {
    char p[4096], cname[4096];
    char *vocab = NULL, *merges = NULL, *cfg = NULL;
    size_t nv, nm, nc = 0;
    snprintf(p, sizeof p, "%s/vocab.json", dir);
    zs_status st = read_file(p, &vocab, &nv);
    snprintf(p, sizeof p, "%s/merges.txt", dir);
    if (st == ZS_OK) st = read_file(p, &merges, &nm);
    // tokenizer_config.json carries the special tokens; special_tokens_map.json is the older place.
    snprintf(cname, sizeof cname, "%s/tokenizer_config.json", dir);
    if (access(cname, F_OK) != 0) snprintf(cname, sizeof cname, "%s/special_tokens_map.json", dir);
    if (st == ZS_OK && access(cname, F_OK) == 0) st = read_file(cname, &cfg, &nc);
    if (st == ZS_OK) st = load_hf(vocab, nv, merges, nm, cfg, nc, cname, dir, out);
    free(vocab);
    free(merges);
    free(cfg);
    return st;
}

zs_status zs_tok_load(const char *path, zs_tokenizer **out) {
    struct stat sb;
    if (stat(path, &sb) != 0) return ZS_ERR(ZS_EIO, "%s: %m", path);
    return S_ISDIR(sb.st_mode) ? zs_tok_load_hf_dir(path, out) : zs_tok_load_bpe_gz(path, out);
}

// ---- encoding -------------------------------------------------------------------------------------------
void zs_tok_set_mode(zs_tokenizer *t, zs_tok_mode mode) { t->mode = mode; }
zs_tok_mode zs_tok_mode_of(const zs_tokenizer *t) { return t->mode; }
int32_t zs_tok_sot(const zs_tokenizer *t) { return t->sot; }
int32_t zs_tok_eot(const zs_tokenizer *t) { return t->eot; }
int32_t zs_tok_pad(const zs_tokenizer *t) { return t->mode == ZS_TOK_OPENCLIP ? 0 : t->pad; }
int32_t zs_tok_vocab_size(const zs_tokenizer *t) { return t->n_ids; }

typedef struct { int32_t *v; int n, cap; } idvec;

static zs_status id_push(idvec *o, int32_t id) {
    if (o->n == o->cap) {
        int c = o->cap ? o->cap * 2 : 64;
        int32_t *v = realloc(o->v, (size_t)c * sizeof *v);
        if (!v) return ZS_ERR(ZS_ENOMEM, "out of memory");
        o->v = v, o->cap = c;
    }
    o->v[o->n++] = id;
    return ZS_OK;
}

// Byte-level BPE of one pre-token, as SimpleTokenizer.bpe: repeatedly merge every occurrence (left
// to right) of the adjacent pair with the lowest rank. Unknown symbols (crafted HF vocabularies) are
// emitted as the end token, which is CLIPTokenizer's unk_token.
static zs_status bpe(const zs_tokenizer *t, const uint8_t *s, size_t n, idvec *o) {
    int32_t local[256], *sym = n <= 256 ? local : malloc(n * sizeof *sym);
    if (!sym) return ZS_ERR(ZS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) sym[i] = i + 1 < n ? t->byte_id[s[i]] : t->byte_w_id[s[i]];
    size_t m = n;
    while (m > 1) {
        const mslot *best = NULL;
        int32_t a = 0, b = 0;
        for (size_t i = 0; i + 1 < m; i++) {
            const mslot *e = merge_get(t, sym[i], sym[i + 1]);
            if (e && (!best || e->rank < best->rank)) best = e, a = sym[i], b = sym[i + 1];
        }
        if (!best) break;
        size_t w = 0;
        for (size_t i = 0; i < m; w++) {
            if (i + 1 < m && sym[i] == a && sym[i + 1] == b) sym[w] = best->merged, i += 2;
            else sym[w] = sym[i++];
        }
        m = w;
    }
    zs_status st = ZS_OK;
    for (size_t i = 0; i < m && st == ZS_OK; i++) st = id_push(o, sym[i] >= 0 ? sym[i] : t->eot);
    if (sym != local) free(sym);
    return st;
}

// Case-insensitive match of an ASCII pattern char as the regex module's IGNORECASE does it
// (simple case folding adds U+017F for 's' and U+212A for 'k').
static int ic_eq(uint32_t c, char p, int ic) {
    if (c == (uint32_t)p) return 1;
    if (!ic) return 0;
    if (p >= 'a' && p <= 'z' && c == (uint32_t)(p - 32)) return 1;
    return (p == 's' && c == 0x17F) || (p == 'k' && c == 0x212A);
}

static size_t match_lit(const uint32_t *v, size_t n, const char *lit, int ic) {
    size_t k = 0;
    for (; lit[k]; k++)
        if (k >= n || !ic_eq(v[k], lit[k], ic)) return 0;
    return k;
}

// The CLIP pre-tokenizer: findall of
//   SPECIAL|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// then UTF-8 bytes of each match through BPE. open_clip's specials are <start_of_text> and
// <end_of_text> (its own names, matched with IGNORECASE); transformers' are <|startoftext|> and
// <|endoftext|> and reach here only as ordinary BPE text (added tokens are split earlier).
static zs_status encode_span(const zs_tokenizer *t, const uint32_t *v, size_t n, idvec *o) {
    int oc = t->mode == ZS_TOK_OPENCLIP;
    uint32_t L = oc ? ZU_OC_L : ZU_HF_L, N = oc ? ZU_OC_N : ZU_HF_N, P = oc ? ZU_OC_P : ZU_HF_P;
    static const char *contr[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    const char *sp[2] = {oc ? "<start_of_text>" : "<|startoftext|>", oc ? "<end_of_text>" : "<|endoftext|>"};
    char small[512];
    for (size_t i = 0; i < n;) {
        size_t len = 0;
        int special = -1;
        for (int k = 0; k < 2 && !len; k++)
            if ((len = match_lit(v + i, n - i, sp[k], oc))) special = k;
        for (int k = 0; k < 7 && !len; k++) len = match_lit(v + i, n - i, contr[k], oc);
        if (!len) {
            uint32_t p = zs_uprop(v[i]);
            uint32_t cls = (p & L) ? L : (p & N) ? N : (p & P) ? P : 0;
            if (!cls) { i++; continue; }
            len = 1;
            if (cls != N)
                while (i + len < n && (zs_uprop(v[i + len]) & cls)) len++;
        }
        char *buf = len * 4 <= sizeof small ? small : malloc(len * 4);
        if (!buf) return ZS_ERR(ZS_ENOMEM, "out of memory");
        size_t nb = 0;
        for (size_t k = 0; k < len; k++) nb += (size_t)zs_utf8_put(v[i + k], buf + nb);
        zs_status st;
        // open_clip's cache holds the specials: only their exact spelling maps to the special id.
        if (special >= 0 && oc && nb == strlen(sp[special]) && !memcmp(buf, sp[special], nb))
            st = id_push(o, special ? t->eot : t->sot);
        else st = bpe(t, (const uint8_t *)buf, nb, o);
        if (buf != small) free(buf);
        ZS_TRY(st);
        i += len;
    }
    return ZS_OK;
}

// Leftmost-longest added token (with the given normalized flag) at or after `from`.
static int find_added(const zs_tokenizer *t, const uint32_t *v, size_t n, size_t from, int normalized, size_t *at,
                      size_t *len, int32_t *id) {
    for (size_t i = from; i < n; i++) {
        size_t best = 0;
        for (int k = 0; k < t->n_added; k++) {
            const zs_ustr *a = &t->added[k].text;
            if (t->added[k].normalized != normalized || a->n <= best || a->n > n - i) continue;
            if (!memcmp(v + i, a->v, a->n * sizeof *v)) best = a->n, *id = t->added[k].id;
        }
        if (best) { *at = i, *len = best; return 1; }
    }
    return 0;
}

// transformers: split raw added tokens, normalize the rest, split normalized added tokens, BPE.
static zs_status encode_hf(const zs_tokenizer *t, const zs_ustr *u, idvec *o) {
    zs_ustr seg = {0};
    zs_status st = ZS_OK;
    size_t pos = 0, at = 0, len = 0;
    int32_t id = 0;
    while (st == ZS_OK && pos <= u->n) {
        int hit = find_added(t, u->v, u->n, pos, 0, &at, &len, &id);
        size_t end = hit ? at : u->n;
        seg.n = 0;
        if (end > pos) st = zs_ustr_append(&seg, u->v + pos, end - pos);  // u->v may be NULL
        if (st == ZS_OK) st = zs_normalize_hf(&seg);
        for (size_t p = 0, a2 = 0, l2 = 0; st == ZS_OK && p <= seg.n;) {
            int32_t id2 = 0;
            int h2 = find_added(t, seg.v, seg.n, p, 1, &a2, &l2, &id2);
            size_t e2 = h2 ? a2 : seg.n;
            if (e2 > p) st = encode_span(t, seg.v + p, e2 - p, o);
            if (st == ZS_OK && h2) st = id_push(o, id2);
            if (!h2) break;
            p = a2 + l2;
        }
        if (st == ZS_OK && hit) st = id_push(o, id);
        if (!hit) break;
        pos = at + len;
    }
    zs_ustr_free(&seg);
    return st;
}

zs_status zs_tok_encode(const zs_tokenizer *t, const char *text, size_t len, int32_t **ids, int *n) {
    zs_ustr u = {0};
    idvec o = {0};
    zs_status st = zs_utf8_decode(text, len, &u);
    if (st == ZS_OK) st = id_push(&o, t->sot);
    if (st == ZS_OK) {
        if (t->mode == ZS_TOK_OPENCLIP) {
            st = zs_clean_openclip(&u);
            if (st == ZS_OK) st = encode_span(t, u.v, u.n, &o);
        } else {
            st = encode_hf(t, &u, &o);
        }
    }
    if (st == ZS_OK) st = id_push(&o, t->eot);
    zs_ustr_free(&u);
    if (st != ZS_OK) { free(o.v); return st; }
    *ids = o.v;
    *n = o.n;
    return ZS_OK;
}

zs_status zs_tok_encode_padded(const zs_tokenizer *t, const char *text, size_t len, int ctx, int32_t *row,
                               int *eot_index) {
    if (ctx < 2) return ZS_ERR(ZS_EINVAL, "context length %d < 2", ctx);
    int32_t *ids;
    int n;
    ZS_TRY(zs_tok_encode(t, text, len, &ids, &n));
    if (n > ctx) {
        n = ctx;
        ids[n - 1] = t->eot;
    }
    memcpy(row, ids, (size_t)n * sizeof *row);
    for (int i = n; i < ctx; i++) row[i] = zs_tok_pad(t);
    if (eot_index) *eot_index = n - 1;
    free(ids);
    return ZS_OK;
}

// ---- fuzz entry --------------------------------------------------------------------------------------------
int zs_fuzz_tokenizer(const uint8_t *data, size_t size) {
    static zs_tokenizer *builtin;  // loaded once; stays reachable (not a leak)
    if (size == 0) return 0;
    int sel = data[0] % 4;
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    zs_tokenizer *t = NULL;
    int32_t *ids = NULL, row[ZS_CLIP_CONTEXT];
    int nid, eot;
    if (sel <= 1) {
        if (!builtin && zs_tok_load_builtin(&builtin) != ZS_OK) abort();
        zs_tok_set_mode(builtin, sel ? ZS_TOK_HF : ZS_TOK_OPENCLIP);
        if (zs_tok_encode(builtin, rest, n, &ids, &nid) != ZS_OK) abort();
        for (int i = 0; i < nid; i++)
            if (ids[i] < 0 || ids[i] >= zs_tok_vocab_size(builtin)) abort();
        free(ids);
        if (zs_tok_encode_padded(builtin, rest, n, ZS_CLIP_CONTEXT, row, &eot) != ZS_OK || row[eot] != zs_tok_eot(builtin))
            abort();
    } else if (sel == 2) {
        const char *parts[3] = {rest, NULL, NULL};
        size_t lens[3] = {n, 0, 0};
        for (int k = 1; k < 3; k++) {
            const char *z = memchr(parts[k - 1], 0, lens[k - 1]);
            if (!z) break;
            parts[k] = z + 1;
            lens[k] = lens[k - 1] - (size_t)(parts[k] - parts[k - 1]);
            lens[k - 1] = (size_t)(z - parts[k - 1]);
        }
        if (parts[1] && zs_tok_load_hf_mem(parts[0], lens[0], parts[1], lens[1], parts[2], lens[2], "fuzz", &t) == ZS_OK) {
            const char *txt = parts[2] ? parts[2] : "a photo of a cat!";  // the config doubles as text
            size_t tlen = parts[2] ? lens[2] : strlen(txt);
            for (int m = 0; m < 2; m++) {
                zs_tok_set_mode(t, (zs_tok_mode)m);
                if (zs_tok_encode(t, txt, tlen, &ids, &nid) == ZS_OK) free(ids);
            }
        }
    } else if (zs_tok_load_bpe_gz_mem(rest, n, "fuzz", &t) == ZS_OK) {
        if (zs_tok_encode(t, "hello world", 11, &ids, &nid) == ZS_OK) free(ids);
    }
    zs_tok_free(t);
    zs_clear_error();
    return 0;
}
