// Nearest resize (upsample.h): checks, dispatch, CPU fp32 twin. The index rule is
// upsample_math.h's, shared with the CUDA kernels (upsample.cu).
#include <stdlib.h>
#include "op_common.h"
#include "unet_cuda.h"
#include "upsample.h"
#include "upsample_math.h"

// xs[Ho], ws[Wo]: source rows / columns.
static void up_fwd_cpu(float *y, const float *x, int64_t NC, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                       const int64_t *hs, const int64_t *ws) {
#pragma omp parallel for schedule(static) if (NC * Ho * Wo > 32768)
    for (int64_t p = 0; p < NC; p++) {
        const float *xp = x + p * H * W;
        float *yp = y + p * Ho * Wo;
        for (int64_t oh = 0; oh < Ho; oh++) {
            const float *xr = xp + hs[oh] * W;
            float *yr = yp + oh * Wo;
            for (int64_t ow = 0; ow < Wo; ow++) yr[ow] = xr[ws[ow]];
        }
    }
}

// hr[H + 1], wr[W + 1]: the outputs reading input row h are [hr[h], hr[h + 1]) (likewise wr).
static void up_bwd_cpu(float *dx, const float *dy, int64_t NC, int64_t H, int64_t W, int64_t Ho, int64_t Wo,
                       const int64_t *hr, const int64_t *wr) {
#pragma omp parallel for schedule(static) if (NC * Ho * Wo > 32768)
    for (int64_t p = 0; p < NC; p++) {
        const float *dyp = dy + p * Ho * Wo;
        float *dxp = dx + p * H * W;
        for (int64_t h = 0; h < H; h++)
            for (int64_t w = 0; w < W; w++) {
                float s = 0;
                for (int64_t oh = hr[h]; oh < hr[h + 1]; oh++)
                    for (int64_t ow = wr[w]; ow < wr[w + 1]; ow++) s += dyp[oh * Wo + ow];
                dxp[h * W + w] += s;
            }
    }
}

// x [N, C, H, W], y [N, C, Ho, Wo] (same N, C; every size > 0 unless N C == 0).
static zs_status check(zs_opctx *c, const char *op, const zs_tensor *x, const char *xr, const zs_tensor *y,
                       const char *yr) {
    ZS_TRY(zs_op_begin(c, op, x, xr));
    char a[96], b[96];
    if (x->ndim != 4) return ZS_ERR(ZS_EINVAL, "%s: %s must be [N, C, H, W]", op, zs_op_tname(x, xr, a, sizeof a));
    ZS_TRY(zs_op_arg(c, y, yr, c->dt, 4, (const int64_t[]){x->shape[0], x->shape[1], -1, -1}));
    if (x->shape[0] * x->shape[1] > 0 && (x->shape[2] <= 0 || x->shape[3] <= 0 || y->shape[2] <= 0 || y->shape[3] <= 0))
        return ZS_ERR(ZS_EINVAL, "%s: empty spatial size: %s, %s", op, zs_op_tname(x, xr, a, sizeof a),
                      zs_op_tname(y, yr, b, sizeof b));
    return ZS_OK;
}

zs_status zs_upsample_nearest_fwd(zs_tensor *y, const zs_tensor *x) {
    zs_opctx c;
    ZS_TRY(check(&c, "upsample_nearest_fwd", x, "x", y, "y"));
    const int64_t NC = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3], Ho = y->shape[2], Wo = y->shape[3];
    if (NC == 0) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_upsample_nearest_fwd_cuda(y->data, x->data, c.dt, NC, H, W, Ho, Wo);
#endif
    }
    int64_t *hs = malloc((size_t)(Ho + Wo) * sizeof(int64_t));
    if (!hs) return ZS_ERR(ZS_ENOMEM, "upsample_nearest_fwd: index tables");
    int64_t *ws = hs + Ho;
    const float sh = zs_nearest_scale(H, Ho), sw = zs_nearest_scale(W, Wo);
    for (int64_t i = 0; i < Ho; i++) hs[i] = zs_nearest_src(i, sh, H);
    for (int64_t i = 0; i < Wo; i++) ws[i] = zs_nearest_src(i, sw, W);
    up_fwd_cpu(y->data, x->data, NC, H, W, Ho, Wo, hs, ws);
    free(hs);
    return ZS_OK;
}

zs_status zs_upsample_nearest_bwd(zs_tensor *dx, const zs_tensor *dy) {
    zs_opctx c;
    ZS_TRY(check(&c, "upsample_nearest_bwd", dx, "dx", dy, "dy"));
    const int64_t NC = dx->shape[0] * dx->shape[1], H = dx->shape[2], W = dx->shape[3], Ho = dy->shape[2],
                  Wo = dy->shape[3];
    if (NC == 0) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_upsample_nearest_bwd_cuda(dx->data, dy->data, c.dt, NC, H, W, Ho, Wo);
#endif
    }
    int64_t *hr = malloc((size_t)(H + W + 2) * sizeof(int64_t));
    if (!hr) return ZS_ERR(ZS_ENOMEM, "upsample_nearest_bwd: index tables");
    int64_t *wr = hr + H + 1;
    const float sh = zs_nearest_scale(H, Ho), sw = zs_nearest_scale(W, Wo);
    for (int64_t i = 0; i <= H; i++) hr[i] = zs_nearest_first(i, sh, H, Ho);
    for (int64_t i = 0; i <= W; i++) wr[i] = zs_nearest_first(i, sw, W, Wo);
    up_bwd_cpu(dx->data, dy->data, NC, H, W, Ho, Wo, hr, wr);
    free(hr);
    return ZS_OK;
}
