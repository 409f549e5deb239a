#include "arena.h"
#include <string.h>
#include "backend.h"

void zs_arena_measure(zs_arena *a, const char *name, zs_device dev) {
    memset(a, 0, sizeof *a);
    a->name = name;
    a->device = dev;
    a->measuring = 1;
}

zs_status zs_arena_init(zs_arena *a, const char *name, zs_device dev, size_t bytes) {
    memset(a, 0, sizeof *a);
    a->name = name;
    a->device = dev;
    a->cap = bytes;
    if (bytes) ZS_TRY(zs_malloc((void **)&a->base, bytes, dev, name));
    return ZS_OK;
}

void zs_arena_free(zs_arena *a) {
    zs_free(a->base, a->device);
    a->base = NULL;
    a->cap = a->used = 0;
}

zs_status zs_arena_tensor(zs_arena *a, zs_tensor *t, zs_dtype dt, int ndim, const int64_t *shape, const char *name) {
    if (ndim < 0 || ndim > ZS_MAX_DIMS) return ZS_ERR(ZS_EINVAL, "arena %s: tensor %s has %d dims", a->name, name, ndim);
    *t = zs_tensor_make(NULL, dt, a->device, ndim, shape);
    t->name = name;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0) return ZS_ERR(ZS_EINVAL, "arena %s: tensor %s has negative dim %d", a->name, name, i);
    size_t bytes = zs_nbytes(t);
    size_t off = (a->used + ZS_ARENA_ALIGN - 1) / ZS_ARENA_ALIGN * ZS_ARENA_ALIGN;
    if (!a->measuring && off + bytes > a->cap)
        return ZS_ERR(ZS_ENOMEM, "arena %s: tensor %s needs %zu bytes, %zu of %zu left", a->name, name, bytes,
                      a->cap - (off < a->cap ? off : a->cap), a->cap);
    t->data = a->measuring ? NULL : a->base + off;
    a->used = off + bytes;
    if (a->used > a->peak) a->peak = a->used;
    return ZS_OK;
}

size_t zs_arena_mark(const zs_arena *a) { return a->used; }
void zs_arena_reset(zs_arena *a, size_t mark) { a->used = mark; }
