// Group norm (nn.GroupNorm / F.group_norm), optionally with a fused SiLU: the diffusers
// UNet / VAE resnet "norm -> SiLU" pair (32 groups; eps 1e-5 UNet, 1e-6 VAE).
// Same conventions as kernels/ops.h: one device per call, CPU F32, CUDA F32 / BF16 / F16
// with fp32 statistics and accumulation; the backward ACCUMULATES (+=), any gradient may be
// NULL. Deterministic on both devices (fixed reduction orders, no atomics).
//
//   x, y [N, C, *spatial] contiguous (NCHW; any number of spatial dims, none included);
//   groups G with C % G == 0; group g of sample n = channels [g C/G, (g+1) C/G) x all spatial.
//   xhat = (x - mean[n, g]) * rstd[n, g], rstd = 1 / sqrt(var + eps) (biased variance)
//   z = xhat * w[c] + b[c];  y = silu ? z * sigmoid(z) : z
//   mean, rstd [N, G] F32 are written by the forward (either may be NULL at inference) and
//   read by the backward.
#ifndef ZS_GROUPNORM_H
#define ZS_GROUPNORM_H
#include "engine/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

zs_status zs_groupnorm_fwd(zs_tensor *y, zs_tensor *mean, zs_tensor *rstd, const zs_tensor *x, const zs_tensor *w,
                           const zs_tensor *b, int groups, float eps, int silu);
// dx [N, C, *], dw, db [C] (+=; any may be NULL). g = silu ? dy * silu'(z) : dy, where the
// pre-activation z is RECOMPUTED from x, mean, rstd, w and b (no saved activation: b is
// needed only when silu, else it may be NULL).
//   dw[c] += sum g xhat;  db[c] += sum g;
//   dx += rstd * (g w - mean_grp(g w) - xhat * mean_grp(g w xhat))
zs_status zs_groupnorm_bwd(zs_tensor *dx, zs_tensor *dw, zs_tensor *db, const zs_tensor *dy, const zs_tensor *x,
                           const zs_tensor *w, const zs_tensor *b, const zs_tensor *mean, const zs_tensor *rstd,
                           int groups, int silu);

#ifdef __cplusplus
}
#endif
#endif
