// safetensors header parsing and validation (see safetensors.h for the rules and where
// they differ from the reference implementation). Nothing here trusts the input: every
// size is checked before it is used, and errors name the file, the tensor and the fault.
#include "safetensors.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

// JSON allows only \t \n \r and space below 0x20 (raw control characters in strings are
// invalid too); cJSON would skip any byte <= 32 as whitespace, so check first. The header
// must also be valid UTF-8, as the reference requires (strict: no overlongs, surrogates).
static zs_status check_text(const uint8_t *s, size_t n, const char *what) {
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        if (c < 0x80) {
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                return ZS_ERR(ZS_EFORMAT, "%s: header byte %zu is control character 0x%02x (invalid JSON)", what, i, c);
            i++;
            continue;
        }
        size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
        if (len == 0 || c > 0xf4 || i + len > n) goto bad;
        uint8_t c1 = s[i + 1];
        if ((c1 & 0xc0) != 0x80) goto bad;
        if (c == 0xe0 && c1 < 0xa0) goto bad;   // overlong
        if (c == 0xed && c1 > 0x9f) goto bad;   // surrogate
        if (c == 0xf0 && c1 < 0x90) goto bad;   // overlong
        if (c == 0xf4 && c1 > 0x8f) goto bad;   // > U+10FFFF
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80) goto bad;
        i += len;
        continue;
    bad:
        return ZS_ERR(ZS_EFORMAT, "%s: header is not valid UTF-8 at byte %zu", what, i);
    }
    return ZS_OK;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// cJSON turns 2.0 into the same double as 2, but the reference rejects a fraction or an
// exponent in shape and data_offsets ("expected usize"). So re-scan the (already valid)
// JSON text: the path root object -> tensor object -> "shape"/"data_offsets" array.
static zs_status check_int_tokens(const char *t, size_t n, const char *what) {
    char keys[2][64] = {{0}};  // current key in the root object and in a tensor object
    char kind[4] = {0};        // container kinds of the first 4 levels: '{' or '['
    int depth = 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (c == '"') {
            size_t b = ++i;
            while (i < n && t[i] != '"') i += t[i] == '\\' ? 2 : 1;
            size_t j = i + 1;
            while (j < n && is_ws(t[j])) j++;
            if (j < n && t[j] == ':' && depth >= 1 && depth <= 2 && kind[depth - 1] == '{')
                snprintf(keys[depth - 1], sizeof keys[0], "%.*s", (int)(i - b < 63 ? i - b : 63), t + b);
        } else if (c == '{' || c == '[') {
            if (depth < 4) kind[depth] = c;
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t b = i;
            int frac = 0;
            while (i + 1 < n && strchr("0123456789+-.eE", t[i + 1]) && t[i + 1]) frac |= strchr(".eE", t[++i]) != NULL;
            if (frac && depth == 3 && kind[0] == '{' && kind[1] == '{' && kind[2] == '[' &&
                strcmp(keys[0], "__metadata__") && (!strcmp(keys[1], "shape") || !strcmp(keys[1], "data_offsets")))
                return ZS_ERR(ZS_EFORMAT, "%s: tensor '%s': %s has %.*s, not an integer", what, keys[0], keys[1],
                              (int)(i - b + 1 < 32 ? i - b + 1 : 32), t + b);
        }
    }
    return ZS_OK;
}

// A JSON number that is a non-negative integer representable exactly (<= 2^53).
static zs_status json_uint(const cJSON *j, uint64_t *out, const char *what, const char *name, const char *field) {
    if (!cJSON_IsNumber(j))
        return ZS_ERR(ZS_EFORMAT, "%s: tensor '%s': %s must hold integers", what, name, field);
    double d = j->valuedouble;
    if (d < 0) return ZS_ERR(ZS_EFORMAT, "%s: tensor '%s': %s has negative value %g", what, name, field, d);
    if (d != floor(d)) return ZS_ERR(ZS_EFORMAT, "%s: tensor '%s': %s has %g, not an integer", what, name, field, d);
    if (!(d <= 9007199254740992.0))  // beyond 2^53 a double is not exact; no real file is that big
        return ZS_ERR(ZS_EFORMAT, "%s: tensor '%s': %s has %g, over 2^53 (size would overflow)", what, name, field, d);
    *out = (uint64_t)d;
    return ZS_OK;
}

int64_t zs_st_numel(const zs_st_entry *e) {
    int64_t n = 1;
    for (int i = 0; i < e->ndim; i++) n *= e->shape[i];
    return n;
}

static zs_status parse_entry(const cJSON *t, zs_st_entry *e, uint64_t data_size, int header_only, const char *what) {
    const char *name = t->string;
    if (!cJSON_IsObject(t))
        return ZS_ERR(ZS_EFORMAT, "%s: tensor '%s': entry is not an object {dtype, shape, data_offsets}", what, name);
    // The reference ignores unknown fields; so do we.
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(t, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    if (!dt || !sh || !of)
        return ZS_ERR(ZS_EFORMAT, "%s: tensor '%s': missing field '%s'", what, name,
                      !dt ? "dtype" : !sh ? "shape" : "data_offsets");
    if (!cJSON_IsString(dt)) return ZS_ERR(ZS_EFORMAT, "%s: tensor '%s': dtype is not a string", what, name);
    if (zs_dtype_from_name(dt->valuestring, &e->dtype) != 0) {
        static const char *k_known[] = {"F4", "F6_E2M3", "F6_E3M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "C64"};
        for (size_t i = 0; i < sizeof k_known / sizeof *k_known; i++)
            if (!strcmp(dt->valuestring, k_known[i]))
                return ZS_ERR(ZS_EUNSUPPORTED, "%s: tensor '%s': dtype %s is not supported by zsmlc", what, name,
                              dt->valuestring);
        return ZS_ERR(ZS_EFORMAT, "%s: tensor '%s': unknown dtype '%.40s'", what, name, dt->valuestring);
    }
    if (!cJSON_IsArray(sh)) return ZS_ERR(ZS_EFORMAT, "%s: tensor '%s': shape is not a list", what, name);
    int nd = cJSON_GetArraySize(sh);
    if (nd > ZS_MAX_DIMS)
        return ZS_ERR(ZS_EUNSUPPORTED, "%s: tensor '%s': %d dims, zsmlc supports up to %d", what, name, nd, ZS_MAX_DIMS);
    e->ndim = nd;
    uint64_t numel = 1, v;
    int overflow = 0, i = 0;
    for (const cJSON *d = sh->child; d; d = d->next, i++) {
        ZS_TRY(json_uint(d, &v, what, name, "shape"));
        e->shape[i] = (int64_t)v;
        overflow |= __builtin_mul_overflow(numel, v, &numel);
    }
    uint64_t bytes;
    overflow |= __builtin_mul_overflow(numel, (uint64_t)zs_dtype_size(e->dtype), &bytes);
    if (overflow || numel > (uint64_t)INT64_MAX)
        return ZS_ERR(ZS_EFORMAT, "%s: tensor '%s': shape overflows when computing its size", what, name);
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2)
        return ZS_ERR(ZS_EFORMAT, "%s: tensor '%s': data_offsets is not a list [begin, end]", what, name);
    ZS_TRY(json_uint(of->child, &e->begin, what, name, "data_offsets"));
    ZS_TRY(json_uint(of->child->next, &e->end, what, name, "data_offsets"));
    if (e->begin > e->end)
        return ZS_ERR(ZS_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] has begin > end", what, name,
                      (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end - e->begin != bytes)
        return ZS_ERR(ZS_EFORMAT, "%s: tensor '%s': %s shape needs %llu bytes but data_offsets [%llu, %llu] hold %llu",
                      what, name, dt->valuestring, (unsigned long long)bytes, (unsigned long long)e->begin,
                      (unsigned long long)e->end, (unsigned long long)(e->end - e->begin));
    if (!header_only && e->end > data_size)
        return ZS_ERR(ZS_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] out of bounds of the %llu-byte data section",
                      what, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                      (unsigned long long)data_size);
    return ZS_OK;
}

static int by_name(const void *a, const void *b, void *ctx) {
    const zs_st_entry *e = ctx;
    return strcmp(e[*(const int *)a].name, e[*(const int *)b].name);
}
static int by_offset(const void *a, const void *b, void *ctx) {
    const zs_st_entry *x = (const zs_st_entry *)ctx + *(const int *)a, *y = (const zs_st_entry *)ctx + *(const int *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

// Names unique; tensors, sorted by offsets, tile [0, data_size) with no gap or overlap. The
// reference requires exactly this (each begin == the previous end, the last end == the
// data size), so a file it accepts we accept, and a file with unreferenced bytes is an error.
static zs_status check_set(const zs_st_entry *e, int n, uint64_t data_size, int header_only, const char *what) {
    int *ix = malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (!ix) return ZS_ERR(ZS_ENOMEM, "%s: %d tensors", what, n);
    for (int i = 0; i < n; i++) ix[i] = i;
    zs_status s = ZS_OK;
    qsort_r(ix, (size_t)n, sizeof *ix, by_name, (void *)e);
    for (int i = 1; i < n && !s; i++)
        if (!strcmp(e[ix[i]].name, e[ix[i - 1]].name))
            s = ZS_ERR(ZS_EFORMAT, "%s: duplicate tensor name '%s'", what, e[ix[i]].name);
    if (!s) qsort_r(ix, (size_t)n, sizeof *ix, by_offset, (void *)e);
    uint64_t at = 0;
    for (int i = 0; i < n && !s; i++) {
        const zs_st_entry *t = &e[ix[i]];
        if (t->begin < at)
            s = ZS_ERR(ZS_EFORMAT, "%s: tensor '%s' bytes [%llu, %llu) overlap tensor '%s' (ends at %llu)", what, t->name,
                       (unsigned long long)t->begin, (unsigned long long)t->end, e[ix[i - 1]].name,
                       (unsigned long long)at);
        else if (t->begin > at)
            s = ZS_ERR(ZS_EFORMAT, "%s: gap of %llu unreferenced bytes before tensor '%s' at %llu (tensors must cover "
                       "the data section contiguously)", what, (unsigned long long)(t->begin - at), t->name,
                       (unsigned long long)t->begin);
        at = t->end;
    }
    if (!s && !header_only && at != data_size)
        s = ZS_ERR(ZS_EFORMAT, "%s: data section has %llu bytes but the tensors cover %llu", what,
                   (unsigned long long)data_size, (unsigned long long)at);
    free(ix);
    return s;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static zs_status check_metadata(const cJSON *m, const char *what) {
    if (cJSON_IsNull(m)) return ZS_OK;  // the reference accepts null
    if (!cJSON_IsObject(m)) return ZS_ERR(ZS_EFORMAT, "%s: __metadata__ is not an object of strings", what);
    int n = 0;
    for (const cJSON *a = m->child; a; a = a->next, n++)
        if (!cJSON_IsString(a))
            return ZS_ERR(ZS_EFORMAT, "%s: __metadata__ value of '%s' is not a string", what, a->string);
    // Duplicate keys by sorting (a header may hold millions of keys: no quadratic scan).
    char **k = malloc(sizeof *k * (size_t)(n ? n : 1));
    if (!k) return ZS_ERR(ZS_ENOMEM, "%s: metadata", what);
    n = 0;
    for (const cJSON *a = m->child; a; a = a->next) k[n++] = a->string;
    if (n) qsort(k, (size_t)n, sizeof *k, cmp_str);
    zs_status s = ZS_OK;
    for (int i = 1; i < n && !s; i++)
        if (!strcmp(k[i], k[i - 1])) s = ZS_ERR(ZS_EFORMAT, "%s: __metadata__ has key '%s' twice", what, k[i]);
    free(k);
    return s;
}

void zs_st_free_entries(zs_st_entry *entries, int count, char *metadata_json) {
    for (int i = 0; entries && i < count; i++) free((char *)entries[i].name);
    free(entries);
    free(metadata_json);
}

zs_status zs_st_parse(const uint8_t *buf, size_t file_size, const char *what, zs_st_entry **entries, int *count,
                      char **metadata_json) {
    return zs_st_parse_ex(buf, file_size, what, 0, entries, count, metadata_json);
}

zs_status zs_st_parse_ex(const uint8_t *buf, size_t size, const char *what, unsigned flags, zs_st_entry **entries,
                         int *count, char **metadata_json) {
    *entries = NULL;
    *count = 0;
    if (metadata_json) *metadata_json = NULL;
    if (!what) what = "safetensors";
    if (size < 8)
        return ZS_ERR(ZS_EFORMAT, "%s: %zu bytes, too small for a safetensors file (8-byte header length)", what, size);
    uint64_t n = le64(buf);
    if (n > ZS_ST_MAX_HEADER)
        return ZS_ERR(ZS_EFORMAT, "%s: header length %llu is over the %llu-byte limit", what, (unsigned long long)n,
                      ZS_ST_MAX_HEADER);
    if (n > size - 8)
        return ZS_ERR(ZS_EFORMAT, "%s: header length %llu runs past the end of the %zu-byte file", what,
                      (unsigned long long)n, size);
    ZS_TRY(check_text(buf + 8, (size_t)n, what));
    // A NUL-terminated copy: cJSON then cannot read past the header whatever its version.
    char *text = malloc((size_t)n + 1);
    if (!text) return ZS_ERR(ZS_ENOMEM, "%s: header of %llu bytes", what, (unsigned long long)n);
    memcpy(text, buf + 8, (size_t)n);
    text[n] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 0);
    zs_status s = ZS_OK;
    zs_st_entry *e = NULL;
    int ne = 0;
    if (!root) {
        size_t at = end && end >= text && end <= text + n ? (size_t)(end - text) : 0;
        s = ZS_ERR(ZS_EFORMAT, "%s: header is not valid JSON (near byte %zu of %llu)", what, at, (unsigned long long)n);
        goto done;
    }
    // The reference allows JSON whitespace after the object (its writer pads with spaces).
    for (const char *p = end; p < text + n; p++)
        if (!is_ws(*p)) {
            s = ZS_ERR(ZS_EFORMAT, "%s: header has trailing characters after the JSON (byte %zu)", what,
                       (size_t)(p - text));
            goto done;
        }
    if (!cJSON_IsObject(root)) {
        s = ZS_ERR(ZS_EFORMAT, "%s: header is not a JSON object", what);
        goto done;
    }
    if ((s = check_int_tokens(text, (size_t)n, what))) goto done;
    const cJSON *meta = NULL;
    int nt = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__")) { nt++; continue; }
        if (meta) { s = ZS_ERR(ZS_EFORMAT, "%s: header has __metadata__ twice", what); goto done; }
        meta = c;
    }
    if (meta && (s = check_metadata(meta, what))) goto done;
    const cJSON *ho = meta ? cJSON_GetObjectItemCaseSensitive(meta, ZS_ST_HEADER_ONLY_KEY) : NULL;
    int header_only = (flags & ZS_ST_ALLOW_HEADER_ONLY) && cJSON_IsString(ho) && !strcmp(ho->valuestring, "1");
    uint64_t data_size = size - 8 - n;
    if (header_only && data_size) {
        s = ZS_ERR(ZS_EFORMAT, "%s: marked %s but has a %llu-byte data section", what, ZS_ST_HEADER_ONLY_KEY,
                   (unsigned long long)data_size);
        goto done;
    }
    e = calloc((size_t)(nt ? nt : 1), sizeof *e);
    if (!e) { s = ZS_ERR(ZS_ENOMEM, "%s: %d tensors", what, nt); goto done; }
    for (const cJSON *c = root->child; c; c = c->next) {
        if (c == meta) continue;
        zs_st_entry *t = &e[ne];
        if ((s = parse_entry(c, t, data_size, header_only, what))) goto done;
        if (!(t->name = strdup(c->string))) { s = ZS_ERR(ZS_ENOMEM, "%s: tensor name", what); goto done; }
        t->data = header_only ? NULL : buf + 8 + n + t->begin;
        ne++;
    }
    if ((s = check_set(e, ne, data_size, header_only, what))) goto done;
    if (metadata_json && meta && cJSON_IsObject(meta)) {
        *metadata_json = cJSON_PrintUnformatted(meta);
        if (!*metadata_json) { s = ZS_ERR(ZS_ENOMEM, "%s: metadata", what); goto done; }
    }
done:
    cJSON_Delete(root);
    free(text);
    if (s) {
        zs_st_free_entries(e, ne, NULL);
        return s;
    }
    *entries = e;
    *count = ne;
    return ZS_OK;
}

// Converts n elements from possibly unaligned mapped memory (the data section need not be
// aligned; typed loads of it would be undefined behaviour) through an aligned bounce buffer.
zs_status zs_st_convert_unaligned(void *dst, zs_dtype dt, const void *src, zs_dtype st, int64_t n) {
    size_t es = zs_dtype_size(st);
    if (n <= 0) return ZS_OK;
    if ((uintptr_t)src % es == 0) return zs_convert(dst, dt, src, st, n);
    _Alignas(64) unsigned char tmp[16384];
    int64_t chunk = (int64_t)(sizeof tmp / es);
    for (int64_t i = 0; i < n; i += chunk) {
        int64_t k = n - i < chunk ? n - i : chunk;
        memcpy(tmp, (const char *)src + (size_t)i * es, (size_t)k * es);
        ZS_TRY(zs_convert((char *)dst + (size_t)i * zs_dtype_size(dt), dt, tmp, st, k));
    }
    return ZS_OK;
}

int zs_fuzz_safetensors(const uint8_t *data, size_t size) {
    for (unsigned flags = 0; flags <= ZS_ST_ALLOW_HEADER_ONLY; flags++) {
        zs_st_entry *e;
        int n;
        char *meta;
        if (zs_st_parse_ex(data, size, "fuzz", flags, &e, &n, &meta) != ZS_OK) continue;
        float buf[256];
        for (int i = 0; i < n; i++) {
            int64_t k = zs_st_numel(&e[i]);
            if (e[i].data && zs_dtype_is_float(e[i].dtype) && k <= 256)
                zs_st_convert_unaligned(buf, ZS_F32, e[i].data, e[i].dtype, k);
        }
        zs_st_free_entries(e, n, meta);
    }
    return 0;
}
