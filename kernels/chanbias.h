// Per-(sample, channel) bias over the spatial positions: the UNet resnet's
// h + time_emb_proj(SiLU(temb))[:, :, None, None].
//   x, y [N, C, *spatial] contiguous (S = product of the spatial dims, none: S = 1); b [N, C]
//   y[n, c, s] = x[n, c, s] + b[n, c]   (y may be x)
// Same conventions as kernels/ops.h: one device per call, CPU F32, CUDA F32 / BF16 / F16
// with fp32 math; the backward ACCUMULATES (+=), either gradient may be NULL.
// Deterministic on both devices (fixed summation order, no atomics).
#ifndef ZS_CHANBIAS_H
#define ZS_CHANBIAS_H
#include "engine/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

zs_status zs_chanbias_fwd(zs_tensor *y, const zs_tensor *x, const zs_tensor *b);
// dx += dy;  db[n, c] += sum_s dy[n, c, s].
zs_status zs_chanbias_bwd(zs_tensor *dx, zs_tensor *db, const zs_tensor *dy);

#ifdef __cplusplus
}
#endif
#endif
