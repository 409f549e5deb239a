// safetensors writer: tensors are copied (and converted) at add time; save writes a temp
// file next to the target, fsyncs, renames. Output opens in the Python package unchanged.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "engine/fileio.h"
#include "safetensors.h"


typedef struct {
    char *name;
    zs_dtype dtype;
    int ndim;
    int64_t shape[ZS_MAX_DIMS];
    void *data;  // host copy, already in dtype
    size_t nbytes;
} wtensor;

struct zs_st_writer {
    wtensor *t;
    int n, cap;
    char **kv;  // metadata key, value, key, value, ...
    int nkv;
};

zs_status zs_st_writer_new(zs_st_writer **w) {
    *w = calloc(1, sizeof **w);
    return *w ? ZS_OK : ZS_ERR(ZS_ENOMEM, "safetensors writer");
}

void zs_st_writer_free(zs_st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) { free(w->t[i].name); free(w->t[i].data); }
    for (int i = 0; i < w->nkv; i++) free(w->kv[i]);
    free(w->t);
    free(w->kv);
    free(w);
}

zs_status zs_st_writer_meta(zs_st_writer *w, const char *key, const char *value) {
    for (int i = 0; i < w->nkv; i += 2)
        if (!strcmp(w->kv[i], key)) {
            char *v = strdup(value);
            if (!v) return ZS_ERR(ZS_ENOMEM, "metadata %s", key);
            free(w->kv[i + 1]);
            w->kv[i + 1] = v;
            return ZS_OK;
        }
    char **kv = realloc(w->kv, sizeof *kv * (size_t)(w->nkv + 2));
    if (!kv) return ZS_ERR(ZS_ENOMEM, "metadata %s", key);
    w->kv = kv;
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) { free(k); free(v); return ZS_ERR(ZS_ENOMEM, "metadata %s", key); }
    w->kv[w->nkv++] = k;
    w->kv[w->nkv++] = v;
    return ZS_OK;
}

zs_status zs_st_writer_add(zs_st_writer *w, const char *name, const zs_tensor *t, zs_dtype store) {
    if (!name || !name[0] || !strcmp(name, "__metadata__"))
        return ZS_ERR(ZS_EINVAL, "safetensors writer: bad tensor name '%s'", name ? name : "(null)");
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->t[i].name, name)) return ZS_ERR(ZS_EINVAL, "safetensors writer: tensor '%s' added twice", name);
    if (store == ZS_ST_KEEP) store = t->dtype;
    if ((unsigned)store >= ZS_DTYPE_COUNT || (unsigned)t->dtype >= ZS_DTYPE_COUNT)
        return ZS_ERR(ZS_EINVAL, "safetensors writer: tensor '%s': bad dtype", name);
    if (store != t->dtype && !(zs_dtype_is_float(store) && zs_dtype_is_float(t->dtype)))
        return ZS_ERR(ZS_EUNSUPPORTED, "safetensors writer: tensor '%s': cannot store %s as %s", name,
                      zs_dtype_name(t->dtype), zs_dtype_name(store));
    if (t->ndim < 0 || t->ndim > ZS_MAX_DIMS) return ZS_ERR(ZS_EINVAL, "safetensors writer: tensor '%s': ndim", name);
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] < 0) return ZS_ERR(ZS_EINVAL, "safetensors writer: tensor '%s': negative dim", name);
    if (w->n == w->cap) {
        wtensor *nt = realloc(w->t, sizeof *nt * (size_t)(w->cap = w->cap * 2 + 16));
        if (!nt) return ZS_ERR(ZS_ENOMEM, "safetensors writer");
        w->t = nt;
    }
    wtensor *o = &w->t[w->n];
    memset(o, 0, sizeof *o);
    o->dtype = store;
    o->ndim = t->ndim;
    memcpy(o->shape, t->shape, sizeof o->shape);
    int64_t n = zs_numel(t);
    o->nbytes = (size_t)n * zs_dtype_size(store);
    if (!(o->name = strdup(name)) || !(o->data = malloc(o->nbytes ? o->nbytes : 1))) {
        free(o->name);
        free(o->data);
        return ZS_ERR(ZS_ENOMEM, "safetensors writer: tensor '%s' (%zu bytes)", name, o->nbytes);
    }
    zs_tensor dst = zs_tensor_make(o->data, store, ZS_CPU, t->ndim, t->shape);
    dst.name = name;
    zs_status s = n ? zs_tensor_copy(&dst, t) : ZS_OK;
    if (s) {
        free(o->name);
        free(o->data);
        return zs_fail_context(s, "safetensors writer: tensor '%s'", name);
    }
    w->n++;
    return ZS_OK;
}

// Growable string for the header.
typedef struct { char *p; size_t n, cap; int oom; } sbuf;
static void put(sbuf *b, const char *s, size_t k) {
    if (b->oom) return;
    if (b->n + k + 1 > b->cap) {
        size_t cap = (b->n + k + 1) * 2;
        char *np = realloc(b->p, cap);
        if (!np) { b->oom = 1; return; }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, k);
    b->n += k;
    b->p[b->n] = 0;
}
static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }
static void putf(sbuf *b, const char *fmt, unsigned long long v) {
    char t[32];
    int k = snprintf(t, sizeof t, fmt, v);
    put(b, t, (size_t)k);
}
static void put_json_str(sbuf *b, const char *s) {  // UTF-8 passes through; escapes " \ and controls
    put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { put(b, "\\", 1); put(b, (const char *)&c, 1); }
        else if (c < 0x20) putf(b, "\\u%04llx", c);
        else put(b, (const char *)&c, 1);
    }
    put(b, "\"", 1);
}

// The reference writer sorts by its Dtype enum, descending (U64, I64, F64, F32, U32, I32,
// BF16, F16, U16, I16, F8_*, I8, U8, BOOL), then by name: wide types first keeps every
// tensor aligned without padding, and the same order gives byte-identical files.
static int dtype_rank(zs_dtype t) {
    static const int r[ZS_DTYPE_COUNT] = {
        [ZS_BOOL] = 0, [ZS_U8] = 1, [ZS_I8] = 2, [ZS_F8_E5M2] = 3, [ZS_F8_E4M3] = 4, [ZS_I16] = 5, [ZS_U16] = 6,
        [ZS_F16] = 7, [ZS_BF16] = 8, [ZS_I32] = 9, [ZS_U32] = 10, [ZS_F32] = 11, [ZS_F64] = 12, [ZS_I64] = 13,
        [ZS_U64] = 14,
    };
    return r[t];
}
static int cmp_store(const void *a, const void *b) {
    const wtensor *x = a, *y = b;
    int rx = dtype_rank(x->dtype), ry = dtype_rank(y->dtype);
    if (rx != ry) return rx > ry ? -1 : 1;
    return strcmp(x->name, y->name);
}

zs_status zs_st_writer_save(zs_st_writer *w, const char *path) {
    if (w->n > 1) qsort(w->t, (size_t)w->n, sizeof *w->t, cmp_store);
    sbuf h = {0};
    puts_(&h, "{");
    if (w->nkv) {
        puts_(&h, "\"__metadata__\":{");
        for (int i = 0; i < w->nkv; i += 2) {
            if (i) puts_(&h, ",");
            put_json_str(&h, w->kv[i]);
            puts_(&h, ":");
            put_json_str(&h, w->kv[i + 1]);
        }
        puts_(&h, "}");
    }
    unsigned long long off = 0;
    for (int i = 0; i < w->n; i++) {
        const wtensor *t = &w->t[i];
        if (i || w->nkv) puts_(&h, ",");
        put_json_str(&h, t->name);
        puts_(&h, ":{\"dtype\":\"");
        puts_(&h, zs_dtype_name(t->dtype));
        puts_(&h, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) putf(&h, d ? ",%llu" : "%llu", (unsigned long long)t->shape[d]);
        putf(&h, "],\"data_offsets\":[%llu,", off);
        off += t->nbytes;
        putf(&h, "%llu]}", off);
    }
    puts_(&h, "}");
    while (h.n % 8) puts_(&h, " ");  // the Python writer pads to 8 so the data stays aligned
    if (h.oom) { free(h.p); return ZS_ERR(ZS_ENOMEM, "%s: header", path); }

    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((unsigned long long)h.n >> (8 * i));
    zs_iov *parts = malloc(sizeof *parts * (size_t)(w->n + 2));
    if (!parts) { free(h.p); return ZS_ERR(ZS_ENOMEM, "%s", path); }
    parts[0] = (zs_iov){len, 8};
    parts[1] = (zs_iov){h.p, h.n};
    for (int i = 0; i < w->n; i++) parts[i + 2] = (zs_iov){w->t[i].data, w->t[i].nbytes};
    zs_status s = zs_write_file_atomic(path, parts, w->n + 2);
    free(parts);
    free(h.p);
    return s;
}
