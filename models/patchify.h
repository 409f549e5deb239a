// Patchify: the ViT patch convolution (kernel = stride = patch P, no bias) is a linear over
// flattened patches, since conv1.weight [W, C, P, P] read row-major is a [W, C*P*P] matrix.
// This reshaping kernel (CPU + CUDA, models/patchify.cu) cuts an image into those rows:
//   y[b, gy*GW + gx, (c*P + i)*P + j] = x[b, c, gy*P + i, gx*P + j],  GH = H / P, GW = W / P
// (floor, as the convolution drops the remainder). Any float dtype the device computes in.
#ifndef ZS_PATCHIFY_H
#define ZS_PATCHIFY_H
#include "engine/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif
// x [B, C, H, W] -> y [B, GH*GW, C*P*P]
zs_status zs_patchify_fwd(zs_tensor *y, const zs_tensor *x, int P);
// dx [B, C, H, W] += scatter(dy); pixels outside the grid get nothing.
zs_status zs_patchify_bwd(zs_tensor *dx, const zs_tensor *dy, int P);
#ifdef ZS_HAVE_CUDA
zs_status zs_patchify_cuda(void *img, void *patches, int bwd, zs_dtype dt, int64_t B, int64_t C, int64_t H, int64_t W,
                           int64_t P);
#endif
#ifdef __cplusplus
}
#endif
#endif
