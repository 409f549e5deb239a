#include "tests/sd_ref.h"
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"

float *zt_ref_read(const zs_st *st, const char *name, int64_t n, int ndim, int64_t *shape) {
    const zs_st_entry *e = zs_st_find(st, name);
    if (!e || (n >= 0 && zs_st_numel(e) != n) || (ndim && e->ndim != ndim)) return NULL;
    if (shape) memcpy(shape, e->shape, sizeof(int64_t) * (size_t)e->ndim);
    float *x = malloc(sizeof(float) * (size_t)(zs_st_numel(e) > 0 ? zs_st_numel(e) : 1));
    if (x && zs_st_read_f32(st, name, x, zs_st_numel(e))) {
        free(x);
        return NULL;
    }
    return x;
}

zs_status zt_to_dev(zs_tensor *d, const float *x, int ndim, const int64_t *shape, zs_device dev, zs_dtype dt) {
    zs_tensor h = zs_tensor_make((void *)x, ZS_F32, ZS_CPU, ndim, shape);
    *d = zs_tensor_make(NULL, dt, dev, ndim, shape);
    ZS_TRY(zs_malloc(&d->data, zs_nbytes(d), dev, "test tensor"));
    return zs_tensor_copy(d, &h);
}

zs_status zt_to_host(float *x, const zs_tensor *t) {
    zs_tensor h = zs_tensor_make(x, ZS_F32, ZS_CPU, t->ndim, t->shape);
    ZS_TRY(zs_sync(t->device));
    return zs_tensor_copy(&h, t);
}
