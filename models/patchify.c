#include "models/patchify.h"
#include "kernels/op_common.h"

static zs_status check(zs_opctx *c, const char *op, const zs_tensor *img, const zs_tensor *pt, int P) {
    ZS_TRY(zs_op_begin(c, op, img, "image"));
    if (img->ndim != 4 || P <= 0 || img->shape[2] < P || img->shape[3] < P)
        return ZS_ERR(ZS_EINVAL, "%s: image must be [B, C, H, W] with H, W >= patch %d (got %d dims)", op, P, img->ndim);
    int64_t B = img->shape[0], C = img->shape[1], G = (img->shape[2] / P) * (img->shape[3] / P);
    int64_t want[3] = {B, G, C * P * P};
    return zs_op_arg(c, pt, "patches", c->dt, 3, want);
}

// One index map for both directions: fwd copies image -> patches, bwd adds patches -> image.
static void patchify_cpu(float *img, float *pt, int bwd, int64_t B, int64_t C, int64_t H, int64_t W, int64_t P) {
    int64_t GH = H / P, GW = W / P, K = C * P * P;
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++)
        for (int64_t g = 0; g < GH * GW; g++) {
            int64_t gy = g / GW, gx = g % GW;
            float *row = pt + (b * GH * GW + g) * K;
            for (int64_t c = 0; c < C; c++)
                for (int64_t i = 0; i < P; i++) {
                    float *src = img + ((b * C + c) * H + gy * P + i) * W + gx * P, *dst = row + (c * P + i) * P;
                    for (int64_t j = 0; j < P; j++) {
                        if (bwd) src[j] += dst[j];
                        else dst[j] = src[j];
                    }
                }
        }
}

zs_status zs_patchify_fwd(zs_tensor *y, const zs_tensor *x, int P) {
    zs_opctx c;
    ZS_TRY(check(&c, "patchify_fwd", x, y, P));
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_patchify_cuda(x->data, y->data, 0, c.dt, x->shape[0], x->shape[1], x->shape[2], x->shape[3], P);
#endif
    }
    patchify_cpu(x->data, y->data, 0, x->shape[0], x->shape[1], x->shape[2], x->shape[3], P);
    return ZS_OK;
}

zs_status zs_patchify_bwd(zs_tensor *dx, const zs_tensor *dy, int P) {
    zs_opctx c;
    ZS_TRY(check(&c, "patchify_bwd", dx, dy, P));
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_patchify_cuda(dx->data, dy->data, 1, c.dt, dx->shape[0], dx->shape[1], dx->shape[2], dx->shape[3], P);
#endif
    }
    patchify_cpu(dx->data, dy->data, 1, dx->shape[0], dx->shape[1], dx->shape[2], dx->shape[3], P);
    return ZS_OK;
}
