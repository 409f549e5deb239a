// Internal to kernels/: the CUDA launchers of the UNet / VAE ops (kernels/groupnorm.h,
// geglu.h, timestep.h, upsample.h, chanbias.h), implemented in groupnorm.cu, geglu.cu,
// timestep.cu, upsample.cu and chanbias.cu; raw pointers, sizes already checked by the
// dispatchers in the .c files.
#ifndef ZS_UNET_CUDA_H
#define ZS_UNET_CUDA_H
#include <stdint.h>
#include "engine/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef ZS_HAVE_CUDA
// x, y [N, C, S] (S = product of the spatial dims, 1 when none); G groups; w, b [C] in dt;
// mean, rstd [N, G] F32 (may be NULL in the forward).
zs_status zs_groupnorm_fwd_cuda(void *y, float *mean, float *rstd, const void *x, const void *w, const void *b,
                                zs_dtype dt, int64_t N, int64_t C, int64_t S, int64_t G, float eps, int silu);
zs_status zs_groupnorm_bwd_cuda(void *dx, void *dw, void *db, const void *dy, const void *x, const void *w,
                                const void *b, const float *mean, const float *rstd, zs_dtype dt, int64_t N, int64_t C,
                                int64_t S, int64_t G, int silu);
// x [N, 2F], y [N, F].
zs_status zs_geglu_fwd_cuda(void *y, const void *x, zs_dtype dt, int64_t N, int64_t F);
zs_status zs_geglu_bwd_cuda(void *dx, const void *dy, const void *x, zs_dtype dt, int64_t N, int64_t F);
// t [B] F32, emb [B, dim] in dt.
zs_status zs_timestep_embedding_cuda(void *emb, const float *t, zs_dtype dt, int64_t B, int64_t dim, int flip,
                                     float shift, float scale, float max_period);
// x [NC, H, W] planes, y [NC, Ho, Wo].
zs_status zs_upsample_nearest_fwd_cuda(void *y, const void *x, zs_dtype dt, int64_t NC, int64_t H, int64_t W,
                                       int64_t Ho, int64_t Wo);
zs_status zs_upsample_nearest_bwd_cuda(void *dx, const void *dy, zs_dtype dt, int64_t NC, int64_t H, int64_t W,
                                       int64_t Ho, int64_t Wo);
// x, y [P, S] (P = N C planes), b [P]; dx / db may be NULL.
zs_status zs_chanbias_fwd_cuda(void *y, const void *x, const void *b, zs_dtype dt, int64_t P, int64_t S);
zs_status zs_chanbias_bwd_cuda(void *dx, void *db, const void *dy, zs_dtype dt, int64_t P, int64_t S);
#endif

#ifdef __cplusplus
}
#endif
#endif
