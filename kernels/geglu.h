// GEGLU (diffusers.models.activations.GEGLU after its projection):
//   h, gate = x.chunk(2, dim=-1);  y = h * gelu(gate)   (exact erf GELU)
// x [..., 2F] -> y [..., F]: the FIRST half is the value, the SECOND half is gated.
// Same conventions as kernels/ops.h (CPU F32, CUDA F32 / BF16 / F16, fp32 math).
#ifndef ZS_GEGLU_H
#define ZS_GEGLU_H
#include "engine/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

zs_status zs_geglu_fwd(zs_tensor *y, const zs_tensor *x);
// dx[..., :F] += dy * gelu(gate);  dx[..., F:] += dy * h * gelu'(gate).
zs_status zs_geglu_bwd(zs_tensor *dx, const zs_tensor *dy, const zs_tensor *x);

#ifdef __cplusplus
}
#endif
#endif
