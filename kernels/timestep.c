// Sinusoidal timestep embedding (diffusers get_timestep_embedding; formulas in timestep.h):
// checks, dispatch, CPU twin. The fp32 frequency / argument expression is in
// timestep_math.h, shared with the CUDA kernel (timestep.cu).
#include <math.h>
#include "op_common.h"
#include "timestep.h"
#include "timestep_math.h"
#include "unet_cuda.h"

static void ts_cpu(float *emb, const float *t, int64_t B, int64_t dim, int flip, float shift, float scale, float P) {
    const int64_t half = dim / 2;
    for (int64_t b = 0; b < B; b++) {
        float *e = emb + b * dim;
        for (int64_t i = 0; i < half; i++) {
            const float a = zs_ts_arg(t[b], i, half, shift, scale, P);
            e[flip ? half + i : i] = sinf(a);
            e[flip ? i : half + i] = cosf(a);
        }
        if (dim % 2) e[dim - 1] = 0.0f;
    }
}

zs_status zs_timestep_embedding(zs_tensor *emb, const zs_tensor *t, int flip_sin_to_cos, float downscale_freq_shift,
                                float scale, float max_period) {
    zs_opctx c;
    ZS_TRY(zs_op_begin(&c, "timestep_embedding", emb, "emb"));
    if (emb->ndim != 2) {
        char a[96];
        return ZS_ERR(ZS_EINVAL, "timestep_embedding: %s must be [B, dim], got %d dims",
                      zs_op_tname(emb, "emb", a, sizeof a), emb->ndim);
    }
    const int64_t B = emb->shape[0], dim = emb->shape[1];
    ZS_TRY(zs_op_arg(&c, t, "t", ZS_F32, 1, &B));
    const float den = (float)(dim / 2) - downscale_freq_shift;
    if (dim < 2 || !(den > 0) || !isfinite(den))
        return ZS_ERR(ZS_EINVAL, "timestep_embedding: dim %lld with downscale_freq_shift %g: dim / 2 - shift must be > 0",
                      (long long)dim, downscale_freq_shift);
    if (!(max_period > 0) || !isfinite(max_period) || !isfinite(scale))
        return ZS_ERR(ZS_EINVAL, "timestep_embedding: max_period %g must be > 0 and scale %g finite", max_period, scale);
    if (B == 0) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_timestep_embedding_cuda(emb->data, t->data, c.dt, B, dim, flip_sin_to_cos != 0, downscale_freq_shift,
                                          scale, max_period);
#endif
    }
    ts_cpu(emb->data, t->data, B, dim, flip_sin_to_cos != 0, downscale_freq_shift, scale, max_period);
    return ZS_OK;
}
