// Convolution-side ops for CNN and UNet towers (NCHW, contiguous): 2-D convolution, batch
// norm in inference form (a per-channel affine from running statistics), average pooling.
// Same conventions as kernels/ops.h: one device per call, CPU F32, CUDA F32 / BF16 / F16
// with fp32 accumulation (convolution through cuDNN); backward passes ACCUMULATE (+=).
#ifndef ZS_CONV_H
#define ZS_CONV_H
#include "engine/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int stride_h, stride_w;
    int pad_h, pad_w;  // zero padding on both sides
    int groups;        // 1 = dense; Cin and Cout divisible by it
} zs_conv2d_params;

// y[N, Cout, Ho, Wo] = x[N, Cin, H, W] * w[Cout, Cin/groups, KH, KW] + b[Cout] (b may be NULL);
// Ho = (H + 2 pad_h - KH) / stride_h + 1 (floor), likewise Wo: PyTorch's nn.Conv2d.
zs_status zs_conv2d_fwd(zs_tensor *y, const zs_tensor *x, const zs_tensor *w, const zs_tensor *b,
                        const zs_conv2d_params *p);
// dx, dw, db (+=; any may be NULL).
zs_status zs_conv2d_bwd(zs_tensor *dx, zs_tensor *dw, zs_tensor *db, const zs_tensor *dy, const zs_tensor *x,
                        const zs_tensor *w, const zs_conv2d_params *p);

// How many CUDA backward geometries had no deterministic cuDNN algorithm and took a
// non-deterministic one (their gradients may differ in the last bits run to run); 0 on the CPU.
int zs_conv2d_cuda_nondeterministic_plans(void);

// Batch norm, inference form: y = (x - mean[c]) / sqrt(var[c] + eps) * g[c] + b[c], x / y
// [N, C, H, W] (or [N, C]); mean, var, g, b [C] (g and b in the activation dtype, mean / var F32).
zs_status zs_batchnorm_fwd(zs_tensor *y, const zs_tensor *x, const zs_tensor *g, const zs_tensor *b,
                           const zs_tensor *mean, const zs_tensor *var, float eps);
// dx, dg, db (+=; any may be NULL); the statistics are constants.
zs_status zs_batchnorm_bwd(zs_tensor *dx, zs_tensor *dg, zs_tensor *db, const zs_tensor *dy, const zs_tensor *x,
                           const zs_tensor *g, const zs_tensor *mean, const zs_tensor *var, float eps);

// Average pooling, square window k, stride s, no padding, floor mode: y[N, C, Ho, Wo],
// Ho = (H - k) / s + 1 (nn.AvgPool2d(k, s)).
zs_status zs_avgpool2d_fwd(zs_tensor *y, const zs_tensor *x, int k, int s);
zs_status zs_avgpool2d_bwd(zs_tensor *dx, const zs_tensor *dy, int k, int s);  // dx +=

#ifdef __cplusplus
}
#endif
#endif
