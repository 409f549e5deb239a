// Sinusoidal timestep embedding, diffusers.models.embeddings.get_timestep_embedding:
//   half = dim / 2;  freq[i] = exp(-ln(max_period) * i / (half - shift)), i < half
//   a[b, i] = scale * t[b] * freq[i];  emb = [sin(a), cos(a)]  (flip: [cos(a), sin(a)])
//   odd dim: one trailing zero column.
// SD UNets (TimestepEmbedding input): dim 320, flip = 1, shift = 0, scale 1, max_period 1e4.
// The arguments are formed in fp32 exactly as diffusers does (exponent = fp32(-ln P) * i,
// divided by fp32(half - shift), expf, t * freq, * scale), then sinf / cosf.
// t [B] F32 (fractional timesteps allowed); emb [B, dim]: CPU F32, CUDA F32 / BF16 / F16.
// No backward: timesteps are inputs, never trained (the embedding's gradient w.r.t. t is
// not needed anywhere in zsmlc).
#ifndef ZS_TIMESTEP_H
#define ZS_TIMESTEP_H
#include "engine/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

// half - shift must be > 0 (dim >= 2), max_period > 0.
zs_status zs_timestep_embedding(zs_tensor *emb, const zs_tensor *t, int flip_sin_to_cos, float downscale_freq_shift,
                                float scale, float max_period);

#ifdef __cplusplus
}
#endif
#endif
