// Residual add y = a + b (same shapes), forward and backward. CUDA: kernels/add.cu.
#include "op_common.h"
#include "ops.h"

zs_status zs_add_fwd(zs_tensor *y, const zs_tensor *a, const zs_tensor *b) {
    zs_opctx c;
    ZS_TRY(zs_op_begin(&c, "add_fwd", a, "a"));
    ZS_TRY(zs_op_arg_like(&c, b, "b", c.dt, a, -1));
    ZS_TRY(zs_op_arg_like(&c, y, "y", c.dt, a, -1));
    int64_t n = zs_numel(a);
    if (n == 0) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_add_fwd_cuda(y->data, a->data, b->data, c.dt, n);
#endif
    }
    float *yd = y->data;  // may alias a or b: same index read then written
    const float *ad = a->data, *bd = b->data;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) yd[i] = ad[i] + bd[i];
    return ZS_OK;
}

zs_status zs_add_bwd(zs_tensor *da, zs_tensor *db, const zs_tensor *dy) {
    zs_opctx c;
    ZS_TRY(zs_op_begin(&c, "add_bwd", dy, "dy"));
    if (da) ZS_TRY(zs_op_arg_like(&c, da, "da", c.dt, dy, -1));
    if (db) ZS_TRY(zs_op_arg_like(&c, db, "db", c.dt, dy, -1));
    int64_t n = zs_numel(dy);
    if (n == 0 || (!da && !db)) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_add_bwd_cuda(da ? da->data : NULL, db ? db->data : NULL, dy->data, c.dt, n);
#endif
    }
    const float *dyd = dy->data;
    if (da) {
        float *p = da->data;
#pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) p[i] += dyd[i];
    }
    if (db) {
        float *p = db->data;
#pragma omp parallel for schedule(static) if (n > 65536)
        for (int64_t i = 0; i < n; i++) p[i] += dyd[i];
    }
    return ZS_OK;
}
