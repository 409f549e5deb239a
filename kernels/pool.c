// Average pooling over square k x k windows, stride s, no padding, floor mode (PyTorch's
// nn.AvgPool2d(k, s); CLIP ModifiedResNet's anti-aliasing AvgPool2d(stride)):
//   y[nc, oh, ow] = sum_{i, j < k} x[nc, oh s + i, ow s + j] / k^2
//   dx[nc, oh s + i, ow s + j] += dy[nc, oh, ow] / k^2   (input rows / columns past the
//   last full window get nothing: floor mode)
// CPU: planes in parallel, fixed order within a plane. CUDA: kernels/pool.cu.
#include "conv.h"
#include "conv_cuda.h"
#include "op_common.h"

static void pool_fwd_cpu(float *y, const float *x, int64_t NC, int64_t H, int64_t W, int64_t Ho, int64_t Wo, int k,
                         int s) {
    const float inv = 1.0f / ((float)k * (float)k);
#pragma omp parallel for schedule(static) if (NC * H * W > 65536)
    for (int64_t pl = 0; pl < NC; pl++) {
        const float *xp = x + pl * H * W;
        float *yp = y + pl * Ho * Wo;
        for (int64_t oh = 0; oh < Ho; oh++)
            for (int64_t ow = 0; ow < Wo; ow++) {
                const float *w0 = xp + oh * s * W + ow * s;
                float acc = 0;
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++) acc += w0[i * W + j];
                yp[oh * Wo + ow] = acc * inv;
            }
    }
}

static void pool_bwd_cpu(float *dx, const float *dy, int64_t NC, int64_t H, int64_t W, int64_t Ho, int64_t Wo, int k,
                         int s) {
    const float inv = 1.0f / ((float)k * (float)k);
#pragma omp parallel for schedule(static) if (NC * H * W > 65536)
    for (int64_t pl = 0; pl < NC; pl++) {
        float *xp = dx + pl * H * W;
        const float *yp = dy + pl * Ho * Wo;
        for (int64_t oh = 0; oh < Ho; oh++)
            for (int64_t ow = 0; ow < Wo; ow++) {
                float *w0 = xp + oh * s * W + ow * s;
                const float d = yp[oh * Wo + ow] * inv;
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++) w0[i * W + j] += d;
            }
    }
}

// x [N, C, H, W] (role xr, the pooled side) and y [N, C, Ho, Wo] (role yr).
static zs_status check(zs_opctx *c, const char *op, const zs_tensor *x, const char *xr, const zs_tensor *y,
                       const char *yr, int k, int s, int64_t *Ho, int64_t *Wo) {
    ZS_TRY(zs_op_begin(c, op, x, xr));
    ZS_TRY(zs_op_arg(c, x, xr, c->dt, 4, (const int64_t[]){-1, -1, -1, -1}));
    if (k < 1 || s < 1) return ZS_ERR(ZS_EINVAL, "%s: window %d and stride %d must be >= 1", op, k, s);
    if (x->shape[2] < k || x->shape[3] < k) {
        char sh[128];
        return ZS_ERR(ZS_EINVAL, "%s: %s %s is smaller than the %dx%d window", op, xr, zs_shape_str(x, sh, sizeof sh), k,
                      k);
    }
    *Ho = (x->shape[2] - k) / s + 1;
    *Wo = (x->shape[3] - k) / s + 1;
    return zs_op_arg(c, y, yr, c->dt, 4, (const int64_t[]){x->shape[0], x->shape[1], *Ho, *Wo});
}

zs_status zs_avgpool2d_fwd(zs_tensor *y, const zs_tensor *x, int k, int s) {
    zs_opctx c;
    int64_t Ho, Wo;
    ZS_TRY(check(&c, "avgpool2d_fwd", x, "x", y, "y", k, s, &Ho, &Wo));
    const int64_t NC = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
    if (NC == 0) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_avgpool2d_fwd_cuda(y->data, x->data, c.dt, NC, H, W, Ho, Wo, k, s);
#endif
    }
    pool_fwd_cpu(y->data, x->data, NC, H, W, Ho, Wo, k, s);
    return ZS_OK;
}

zs_status zs_avgpool2d_bwd(zs_tensor *dx, const zs_tensor *dy, int k, int s) {
    zs_opctx c;
    int64_t Ho, Wo;
    if (!dx) return ZS_OK;
    ZS_TRY(check(&c, "avgpool2d_bwd", dx, "dx", dy, "dy", k, s, &Ho, &Wo));
    const int64_t NC = dx->shape[0] * dx->shape[1], H = dx->shape[2], W = dx->shape[3];
    if (NC == 0) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_avgpool2d_bwd_cuda(dx->data, dy->data, c.dt, NC, H, W, Ho, Wo, k, s);
#endif
    }
    pool_bwd_cpu(dx->data, dy->data, NC, H, W, Ho, Wo, k, s);
    return ZS_OK;
}
