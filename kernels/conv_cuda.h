// Internal to kernels/: the CUDA launchers of the convolution-side ops (kernels/conv.h),
// implemented in kernels/conv2d.cu, batchnorm.cu and pool.cu; raw pointers, sizes already
// checked by the dispatchers in conv2d.c, batchnorm.c and pool.c.
#ifndef ZS_CONV_CUDA_H
#define ZS_CONV_CUDA_H
#include <stdint.h>
#include "engine/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

// Convolution geometry, every size checked (> 0, divisible by groups, Ho / Wo >= 1).
typedef struct {
    int64_t N, Cin, H, W, Cout, KH, KW, Ho, Wo;
    int64_t sh, sw, ph, pw, G;
} zs_conv_geom;

#ifdef ZS_HAVE_CUDA
zs_status zs_conv2d_fwd_cuda(void *y, const void *x, const void *w, const void *b, zs_dtype dt, const zs_conv_geom *g);
zs_status zs_conv2d_bwd_cuda(void *dx, void *dw, void *db, const void *dy, const void *x, const void *w, zs_dtype dt,
                             const zs_conv_geom *g);
// x, y [N, C, S] (S = H * W, 1 for [N, C]); g, b in dt; mean, var F32.
zs_status zs_batchnorm_fwd_cuda(void *y, const void *x, const void *g, const void *b, const float *mean,
                                const float *var, float eps, zs_dtype dt, int64_t N, int64_t C, int64_t S);
zs_status zs_batchnorm_bwd_cuda(void *dx, void *dg, void *db, const void *dy, const void *x, const void *g,
                                const float *mean, const float *var, float eps, zs_dtype dt, int64_t N, int64_t C,
                                int64_t S);
// x [NC, H, W] planes, y [NC, Ho, Wo].
zs_status zs_avgpool2d_fwd_cuda(void *y, const void *x, zs_dtype dt, int64_t NC, int64_t H, int64_t W, int64_t Ho,
                                int64_t Wo, int k, int s);
zs_status zs_avgpool2d_bwd_cuda(void *dx, const void *dy, zs_dtype dt, int64_t NC, int64_t H, int64_t W, int64_t Ho,
                                int64_t Wo, int k, int s);
#endif

#ifdef __cplusplus
}
#endif
#endif
