// GEGLU, forward and backward: checks, dispatch, CPU fp32 twin (formulas in geglu.h; the
// GELU and its derivative are act_math.h's, shared with the CUDA kernels in geglu.cu).
#include "act_math.h"
#include "geglu.h"
#include "op_common.h"
#include "unet_cuda.h"

static void geglu_fwd_cpu(float *y, const float *x, int64_t N, int64_t F) {
#pragma omp parallel for schedule(static) if (N * F > 32768)
    for (int64_t n = 0; n < N; n++) {
        const float *h = x + n * 2 * F, *gt = h + F;
        float *yr = y + n * F;
#pragma omp simd
        for (int64_t f = 0; f < F; f++) yr[f] = h[f] * zs_act_f(0, gt[f]);
    }
}

static void geglu_bwd_cpu(float *dx, const float *dy, const float *x, int64_t N, int64_t F) {
#pragma omp parallel for schedule(static) if (N * F > 32768)
    for (int64_t n = 0; n < N; n++) {
        const float *h = x + n * 2 * F, *gt = h + F, *d = dy + n * F;
        float *dh = dx + n * 2 * F, *dg = dh + F;
#pragma omp simd
        for (int64_t f = 0; f < F; f++) {
            dh[f] += d[f] * zs_act_f(0, gt[f]);
            dg[f] += d[f] * h[f] * zs_act_df(0, gt[f]);
        }
    }
}

// x [..., 2F]: returns N rows and F.
static zs_status check(zs_opctx *c, const char *op, const zs_tensor *x, int64_t *N, int64_t *F) {
    ZS_TRY(zs_op_begin(c, op, x, "x"));
    int64_t C;
    zs_op_rows(x, N, &C);
    if (C % 2) {
        char a[96];
        return ZS_ERR(ZS_EINVAL, "%s: %s last dim %lld must be even (value and gate halves)", op,
                      zs_op_tname(x, "x", a, sizeof a), (long long)C);
    }
    *F = C / 2;
    return ZS_OK;
}

zs_status zs_geglu_fwd(zs_tensor *y, const zs_tensor *x) {
    zs_opctx c;
    int64_t N, F;
    ZS_TRY(check(&c, "geglu_fwd", x, &N, &F));
    ZS_TRY(zs_op_arg_like(&c, y, "y", c.dt, x, F));
    if (N == 0 || F == 0) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_geglu_fwd_cuda(y->data, x->data, c.dt, N, F);
#endif
    }
    geglu_fwd_cpu(y->data, x->data, N, F);
    return ZS_OK;
}

zs_status zs_geglu_bwd(zs_tensor *dx, const zs_tensor *dy, const zs_tensor *x) {
    zs_opctx c;
    int64_t N, F;
    ZS_TRY(check(&c, "geglu_bwd", x, &N, &F));
    ZS_TRY(zs_op_arg_like(&c, dy, "dy", c.dt, x, F));
    if (!dx) return ZS_OK;
    ZS_TRY(zs_op_arg_like(&c, dx, "dx", c.dt, x, -1));
    if (N == 0 || F == 0) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_geglu_bwd_cuda(dx->data, dy->data, x->data, c.dt, N, F);
#endif
    }
    geglu_bwd_cpu(dx->data, dy->data, x->data, N, F);
    return ZS_OK;
}
