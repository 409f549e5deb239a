// Per-(sample, channel) bias (chanbias.h): checks, dispatch, CPU fp32 twin. CUDA: chanbias.cu.
#include "chanbias.h"
#include "op_common.h"
#include "unet_cuda.h"

// x [N, C, *] (>= 2 dims), b [N, C], y like x; *P = N C planes of *S elements.
static zs_status check(zs_opctx *c, const char *op, const zs_tensor *x, const char *xr, const zs_tensor *b,
                       const char *br, const zs_tensor *y, const char *yr, int64_t *P, int64_t *S) {
    ZS_TRY(zs_op_begin(c, op, x, xr));
    char a[96];
    if (x->ndim < 2) return ZS_ERR(ZS_EINVAL, "%s: %s must be [N, C, *spatial]", op, zs_op_tname(x, xr, a, sizeof a));
    if (b) ZS_TRY(zs_op_arg(c, b, br, c->dt, 2, x->shape));
    if (y) ZS_TRY(zs_op_arg_like(c, y, yr, c->dt, x, -1));
    *P = x->shape[0] * x->shape[1];
    *S = *P ? zs_numel(x) / *P : 0;
    return ZS_OK;
}

zs_status zs_chanbias_fwd(zs_tensor *y, const zs_tensor *x, const zs_tensor *b) {
    zs_opctx c;
    int64_t P, S;
    if (!b) return ZS_ERR(ZS_EINVAL, "chanbias_fwd: b is NULL");
    ZS_TRY(check(&c, "chanbias_fwd", x, "x", b, "b", y, "y", &P, &S));
    if (!y) return ZS_ERR(ZS_EINVAL, "chanbias_fwd: y is NULL");
    if (P * S == 0) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_chanbias_fwd_cuda(y->data, x->data, b->data, c.dt, P, S);
#endif
    }
    float *yd = y->data;  // may alias x: same index read then written
    const float *xd = x->data, *bd = b->data;
#pragma omp parallel for schedule(static) if (P * S > 65536)
    for (int64_t p = 0; p < P; p++)
        for (int64_t s = 0; s < S; s++) yd[p * S + s] = xd[p * S + s] + bd[p];
    return ZS_OK;
}

zs_status zs_chanbias_bwd(zs_tensor *dx, zs_tensor *db, const zs_tensor *dy) {
    zs_opctx c;
    int64_t P, S;
    ZS_TRY(check(&c, "chanbias_bwd", dy, "dy", db, "db", dx, "dx", &P, &S));
    if (P * S == 0 || (!dx && !db)) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_chanbias_bwd_cuda(dx ? dx->data : NULL, db ? db->data : NULL, dy->data, c.dt, P, S);
#endif
    }
    const float *g = dy->data;
    float *dxd = dx ? dx->data : NULL, *dbd = db ? db->data : NULL;
#pragma omp parallel for schedule(static) if (P * S > 65536)
    for (int64_t p = 0; p < P; p++) {
        float acc = 0;
        for (int64_t s = 0; s < S; s++) {
            acc += g[p * S + s];
            if (dxd) dxd[p * S + s] += g[p * S + s];
        }
        if (dbd) dbd[p] += acc;
    }
    return ZS_OK;
}
