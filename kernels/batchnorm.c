// Batch norm in inference form (running statistics are constants), forward and backward:
//   rstd[c] = 1 / sqrt(var[c] + eps), xhat = (x - mean[c]) * rstd[c]
//   y  = xhat * g[c] + b[c]
//   dx += dy * g[c] * rstd[c];  dg[c] += sum dy * xhat;  db[c] += sum dy
// x / y [N, C, H, W] or [N, C] (any dims after C count as spatial: [N, C, S]); sums over
// n and s run in a fixed order on both devices. CUDA: kernels/batchnorm.cu.
#include <math.h>
#include "conv.h"
#include "conv_cuda.h"
#include "op_common.h"

static void bn_fwd_cpu(float *y, const float *x, const float *g, const float *b, const float *mean, const float *var,
                       float eps, int64_t N, int64_t C, int64_t S) {
#pragma omp parallel for schedule(static) if (N * C * S > 65536)
    for (int64_t i = 0; i < N * C; i++) {
        const int64_t c = i % C;
        const float m = mean[c], k = g[c] * (1.0f / sqrtf(var[c] + eps)), bb = b[c];
        const float *xp = x + i * S;
        float *yp = y + i * S;
        for (int64_t s = 0; s < S; s++) yp[s] = (xp[s] - m) * k + bb;
    }
}

static void bn_bwd_cpu(float *dx, float *dg, float *db, const float *dy, const float *x, const float *g,
                       const float *mean, const float *var, float eps, int64_t N, int64_t C, int64_t S) {
    if (dx) {
#pragma omp parallel for schedule(static) if (N * C * S > 65536)
        for (int64_t i = 0; i < N * C; i++) {
            const int64_t c = i % C;
            const float k = g[c] * (1.0f / sqrtf(var[c] + eps));
            const float *dyp = dy + i * S;
            float *dxp = dx + i * S;
            for (int64_t s = 0; s < S; s++) dxp[s] += dyp[s] * k;
        }
    }
    if (!dg && !db) return;
#pragma omp parallel for schedule(static) if (N * C * S > 65536)
    for (int64_t c = 0; c < C; c++) {  // images in order, each image's positions in order
        const float m = mean[c], r = 1.0f / sqrtf(var[c] + eps);
        float ag = 0, ab = 0;
        for (int64_t n = 0; n < N; n++) {
            const float *dyp = dy + (n * C + c) * S, *xp = x + (n * C + c) * S;
            float sg = 0, sb = 0;
            for (int64_t s = 0; s < S; s++) {
                sg += dyp[s] * (xp[s] - m);
                sb += dyp[s];
            }
            ag += sg * r;
            ab += sb;
        }
        if (dg) dg[c] += ag;
        if (db) db[c] += ab;
    }
}

// x [N, C, ...] (2 to 4 dims); g [C] (activation dtype); mean, var [C] F32. Returns N, C, S.
static zs_status check(zs_opctx *c, const char *op, const zs_tensor *x, const zs_tensor *g, const zs_tensor *mean,
                       const zs_tensor *var, float eps, int64_t *N, int64_t *C, int64_t *S) {
    ZS_TRY(zs_op_begin(c, op, x, "x"));
    if (x->ndim < 2 || x->ndim > 4) {
        char sh[128];
        return ZS_ERR(ZS_EINVAL, "%s: x %s must be [N, C, H, W] or [N, C]", op, zs_shape_str(x, sh, sizeof sh));
    }
    *N = x->shape[0], *C = x->shape[1], *S = 1;
    for (int i = 2; i < x->ndim; i++) *S *= x->shape[i];
    if (g) ZS_TRY(zs_op_arg(c, g, "g", c->dt, 1, C));
    ZS_TRY(zs_op_arg(c, mean, "mean", ZS_F32, 1, C));
    ZS_TRY(zs_op_arg(c, var, "var", ZS_F32, 1, C));
    if (!(eps >= 0) || !isfinite(eps)) return ZS_ERR(ZS_EINVAL, "%s: eps %g must be finite and >= 0", op, eps);
    return ZS_OK;
}

zs_status zs_batchnorm_fwd(zs_tensor *y, const zs_tensor *x, const zs_tensor *g, const zs_tensor *b,
                           const zs_tensor *mean, const zs_tensor *var, float eps) {
    zs_opctx c;
    int64_t N, C, S;
    ZS_TRY(check(&c, "batchnorm_fwd", x, g, mean, var, eps, &N, &C, &S));
    if (!g) return ZS_ERR(ZS_EINVAL, "batchnorm_fwd: g is NULL");
    ZS_TRY(zs_op_arg(&c, b, "b", c.dt, 1, &C));
    ZS_TRY(zs_op_arg_like(&c, y, "y", c.dt, x, -1));
    if (N * C * S == 0) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_batchnorm_fwd_cuda(y->data, x->data, g->data, b->data, mean->data, var->data, eps, c.dt, N, C, S);
#endif
    }
    bn_fwd_cpu(y->data, x->data, g->data, b->data, mean->data, var->data, eps, N, C, S);
    return ZS_OK;
}

zs_status zs_batchnorm_bwd(zs_tensor *dx, zs_tensor *dg, zs_tensor *db, const zs_tensor *dy, const zs_tensor *x,
                           const zs_tensor *g, const zs_tensor *mean, const zs_tensor *var, float eps) {
    zs_opctx c;
    int64_t N, C, S;
    ZS_TRY(check(&c, "batchnorm_bwd", x, g, mean, var, eps, &N, &C, &S));
    if (!g) return ZS_ERR(ZS_EINVAL, "batchnorm_bwd: g is NULL");
    ZS_TRY(zs_op_arg_like(&c, dy, "dy", c.dt, x, -1));
    if (dx) ZS_TRY(zs_op_arg_like(&c, dx, "dx", c.dt, x, -1));
    if (dg) ZS_TRY(zs_op_arg(&c, dg, "dg", c.dt, 1, &C));
    if (db) ZS_TRY(zs_op_arg(&c, db, "db", c.dt, 1, &C));
    if (N * C * S == 0 || (!dx && !dg && !db)) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_batchnorm_bwd_cuda(dx ? dx->data : NULL, dg ? dg->data : NULL, db ? db->data : NULL, dy->data,
                                     x->data, g->data, mean->data, var->data, eps, c.dt, N, C, S);
#endif
    }
    bn_bwd_cpu(dx ? dx->data : NULL, dg ? dg->data : NULL, db ? db->data : NULL, dy->data, x->data, g->data,
               mean->data, var->data, eps, N, C, S);
    return ZS_OK;
}
