// Argument checks shared by every op (see op_common.h).
#include "op_common.h"
#include <stdio.h>
#include "engine/backend.h"

const char *zs_op_tname(const zs_tensor *t, const char *what, char *buf, size_t n) {
    if (t && t->name && *t->name) snprintf(buf, n, "%s (%s)", what, t->name);
    else snprintf(buf, n, "%s", what);
    return buf;
}

void zs_op_rows(const zs_tensor *t, int64_t *N, int64_t *C) {
    *C = t->ndim > 0 ? t->shape[t->ndim - 1] : 1;
    *N = 1;
    for (int i = 0; i + 1 < t->ndim; i++) *N *= t->shape[i];
}

static zs_status present(const char *op, const zs_tensor *t, const char *what) {
    char nm[96];
    if (!t) return ZS_ERR(ZS_EINVAL, "%s: %s is NULL", op, what);
    if (t->ndim < 1) return ZS_ERR(ZS_EINVAL, "%s: %s has 0 dims, expected >= 1", op, zs_op_tname(t, what, nm, sizeof nm));
    if (!t->data && zs_numel(t) > 0)
        return ZS_ERR(ZS_EINVAL, "%s: %s has no memory (measuring arena?)", op, zs_op_tname(t, what, nm, sizeof nm));
    return ZS_OK;
}

zs_status zs_op_begin(zs_opctx *c, const char *op, const zs_tensor *ref, const char *what) {
    c->op = op;
    ZS_TRY(present(op, ref, what));
    c->dev = ref->device;
    c->dt = ref->dtype;
    char nm[96];
    zs_op_tname(ref, what, nm, sizeof nm);
    if (c->dev == ZS_CPU) {
        if (c->dt != ZS_F32)
            return ZS_ERR(ZS_EUNSUPPORTED, "%s: %s is %s: CPU ops compute in F32 only (convert, or run on CUDA)", op, nm,
                          zs_dtype_name(c->dt));
        return ZS_OK;
    }
#ifdef ZS_HAVE_CUDA
    if (c->dt != ZS_F32 && c->dt != ZS_BF16 && c->dt != ZS_F16)
        return ZS_ERR(ZS_EUNSUPPORTED, "%s: %s is %s: CUDA ops take F32, BF16 or F16", op, nm, zs_dtype_name(c->dt));
    return ZS_OK;
#else
    return ZS_ERR(ZS_EUNSUPPORTED, "%s: %s is on CUDA but this zsmlc was built without CUDA", op, nm);
#endif
}

zs_status zs_op_arg(const zs_opctx *c, const zs_tensor *t, const char *what, zs_dtype dt, int ndim,
                    const int64_t *shape) {
    ZS_TRY(present(c->op, t, what));
    char nm[96], sh[128];
    zs_op_tname(t, what, nm, sizeof nm);
    if (t->device != c->dev)
        return ZS_ERR(ZS_EINVAL, "%s: %s %s is on %s, the call's other tensors on %s (one device per call)", c->op, nm,
                      zs_shape_str(t, sh, sizeof sh), zs_device_name(t->device), zs_device_name(c->dev));
    if (t->dtype != dt)
        return ZS_ERR(ZS_EINVAL, "%s: %s %s is %s, expected %s", c->op, nm, zs_shape_str(t, sh, sizeof sh),
                      zs_dtype_name(t->dtype), zs_dtype_name(dt));
    if (shape) {
        char what2[128];
        snprintf(what2, sizeof what2, "%s: %s", c->op, what);
        ZS_TRY(zs_check_shape(t, what2, ndim, shape));
    }
    return ZS_OK;
}

zs_status zs_op_arg_like(const zs_opctx *c, const zs_tensor *t, const char *what, zs_dtype dt,
                         const zs_tensor *like, int64_t last) {
    int64_t shape[ZS_MAX_DIMS];
    for (int i = 0; i < like->ndim; i++) shape[i] = like->shape[i];
    if (last >= 0 && like->ndim > 0) shape[like->ndim - 1] = last;
    return zs_op_arg(c, t, what, dt, like->ndim, shape);
}
