// Nearest-neighbour resize to a target size, PyTorch's F.interpolate(x, size=(Ho, Wo),
// mode="nearest") rule (aten nearest_idx / nearest_neighbor_compute_source_index):
//   scale = (float)in / (float)out  (fp32),  src = min((int64)floorf((float)dst * scale), in - 1)
// per axis. Up (35 -> 70: diffusers Upsample2D with output_size; 2x is scale_factor=2's
// dst >> 1) and down (560 -> 224: the CLIP resize of METHOD.md) alike.
// x [N, C, H, W] -> y [N, C, Ho, Wo] (sizes from y); CPU F32, CUDA F32 / BF16 / F16.
#ifndef ZS_UPSAMPLE_H
#define ZS_UPSAMPLE_H
#include "engine/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

zs_status zs_upsample_nearest_fwd(zs_tensor *y, const zs_tensor *x);
// dx[h, w] += sum of dy over the outputs that read (h, w): a gather (src is monotone, so the
// readers of h are one contiguous range of output rows), rows then columns in increasing
// order; deterministic, no atomics. Inputs nobody reads (downsampling) get nothing.
zs_status zs_upsample_nearest_bwd(zs_tensor *dx, const zs_tensor *dy);

#ifdef __cplusplus
}
#endif
#endif
