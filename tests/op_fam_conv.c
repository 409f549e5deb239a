// Op families for the CNN / UNet side (see op_table.h "op families" and op_fam_conv.h):
// conv2d, batch norm (inference affine), average pooling, ReLU / SiLU. Each case list runs
// small finite-difference cases first (the *_fd families), then realistic sizes for the
// CUDA parity tests (RN50 stem / bottleneck / 1x1 convs, ViT-B/32 patch embedding, UNet 3x3),
// then bench cases.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "kernels/ops.h"
#include "op_fam_conv.h"

#define T ZT_CASE_TEST
#define B ZT_CASE_BENCH

// ---- conv2d ---------------------------------------------------------------------------------
enum { CONV_NFD = 14 };
static const zt_op_case k_conv[] = {
    //            name                           flags N  Cin H    W    Cout KH  KW  sh  sw  ph  pw  G  bias
    ZT_CONV_CASE("conv2d_2x3x7x9_k3_p1",         T, 2, 3,  7,   9,   5,   3,  3,  1,  1,  1,  1,  1, 1),
    ZT_CONV_CASE("conv2d_s2_odd_11x8",           T, 1, 4,  11,  8,   6,   3,  3,  2,  2,  1,  1,  1, 1),
    ZT_CONV_CASE("conv2d_groups2",               T, 2, 4,  6,   7,   6,   3,  3,  1,  1,  1,  1,  2, 1),
    ZT_CONV_CASE("conv2d_depthwise",             T, 1, 4,  5,   6,   4,   3,  3,  1,  1,  1,  1,  4, 0),
    ZT_CONV_CASE("conv2d_1x1",                   T, 2, 8,  5,   6,   4,   1,  1,  1,  1,  0,  0,  1, 0),
    ZT_CONV_CASE("conv2d_1x1_s2",                T, 2, 5,  7,   6,   3,   1,  1,  2,  2,  0,  0,  1, 1),
    ZT_CONV_CASE("conv2d_k2x3_s2x1_p0x2",        T, 2, 3,  7,   5,   4,   2,  3,  2,  1,  0,  2,  1, 1),
    ZT_CONV_CASE("conv2d_k3_s3_p2_5x5",          T, 1, 2,  5,   5,   3,   3,  3,  3,  3,  2,  2,  1, 1),
    ZT_CONV_CASE("conv2d_k3_p1_on_2x1",          T, 2, 2,  2,   1,   3,   3,  3,  1,  1,  1,  1,  1, 1),
    ZT_CONV_CASE("conv2d_patch4_12x12",          T, 2, 3,  12,  12,  8,   4,  4,  4,  4,  0,  0,  1, 0),
    ZT_CONV_CASE("conv2d_3x37x45",               T, 1, 3,  37,  45,  8,   3,  3,  1,  1,  1,  1,  1, 1),
    ZT_CONV_CASE("conv2d_rn50_stem_64",          T, 1, 3,  64,  64,  32,  3,  3,  2,  2,  1,  1,  1, 0),
    ZT_CONV_CASE("conv2d_vit_patch32_64",        T, 1, 3,  64,  64,  48,  32, 32, 32, 32, 0,  0,  1, 0),
    ZT_CONV_CASE("conv2d_3x3_64_14",             T, 1, 64, 14,  14,  64,  3,  3,  1,  1,  1,  1,  1, 1),
    // realistic sizes (CUDA parity)
    ZT_CONV_CASE("conv2d_rn50_stem_224",         T, 2, 3,  224, 224, 32,  3,  3,  2,  2,  1,  1,  1, 0),
    ZT_CONV_CASE("conv2d_rn50_3x3_64_56",        T, 2, 64, 56,  56,  64,  3,  3,  1,  1,  1,  1,  1, 0),
    ZT_CONV_CASE("conv2d_rn50_1x1_64_256_56",    T, 2, 64, 56,  56,  256, 1,  1,  1,  1,  0,  0,  1, 0),
    ZT_CONV_CASE("conv2d_rn50_1x1_256_512_28",   T, 2, 256, 28, 28,  512, 1,  1,  1,  1,  0,  0,  1, 0),
    ZT_CONV_CASE("conv2d_vit_b32_patch_224",     T, 2, 3,  224, 224, 768, 32, 32, 32, 32, 0,  0,  1, 0),
    ZT_CONV_CASE("conv2d_unet_3x3_320_32",       T, 1, 320, 32, 32,  320, 3,  3,  1,  1,  1,  1,  1, 1),
    ZT_CONV_CASE("conv2d_g2_s2_33x31",           T, 2, 32, 33,  31,  64,  3,  3,  2,  2,  1,  1,  2, 1),
    ZT_CONV_CASE("conv2d_3x37x45_s2",            T, 3, 3,  37,  45,  16,  3,  3,  2,  2,  1,  1,  1, 1),
    // bench
    ZT_CONV_CASE("conv2d_rn50_stem_b8",          B, 8, 3,  224, 224, 32,  3,  3,  2,  2,  1,  1,  1, 0),
    ZT_CONV_CASE("conv2d_rn50_3x3_64_56_b8",     B, 8, 64, 56,  56,  64,  3,  3,  1,  1,  1,  1,  1, 0),
    ZT_CONV_CASE("conv2d_rn50_1x1_256_64_56_b8", B, 8, 256, 56, 56,  64,  1,  1,  1,  1,  0,  0,  1, 0),
    ZT_CONV_CASE("conv2d_rn50_3x3_512_7_b8",     B, 8, 512, 7,  7,   512, 3,  3,  1,  1,  1,  1,  1, 0),
    ZT_CONV_CASE("conv2d_vit_b32_patch_b32",     B, 32, 3, 224, 224, 768, 32, 32, 32, 32, 0,  0,  1, 0),
    ZT_CONV_CASE("conv2d_unet_3x3_320_64_b2",    B, 2, 320, 64, 64,  320, 3,  3,  1,  1,  1,  1,  1, 1),
};

void zt_conv_params_of(const zt_op_case *c, zs_conv2d_params *p) {
    p->stride_h = (int)c->rows, p->stride_w = (int)c->cols;
    p->pad_h = (int)c->out, p->pad_w = (int)c->batch;
    p->groups = (int)c->p[7];
}

static void conv_out_hw(const zt_op_case *c, int64_t *Ho, int64_t *Wo) {
    *Ho = (c->p[2] + 2 * c->out - c->p[5]) / c->rows + 1;
    *Wo = (c->p[3] + 2 * c->batch - c->p[6]) / c->cols + 1;
}

static zs_status conv_alloc(zt_op_inst *o, int guard) {
    const int64_t *p = o->c->p;
    int64_t Ho, Wo;
    conv_out_hw(o->c, &Ho, &Wo);
    o->nin = o->c->bias ? 3 : 2;
    o->in_role[0] = "x", o->in_role[1] = "w", o->in_role[2] = "b";
    o->din_role[0] = "dx", o->din_role[1] = "dw", o->din_role[2] = "db";
    ZS_TRY(zt_alloc_tensor(o, &o->in[0], o->dt, 4, (const int64_t[]){p[0], p[1], p[2], p[3]}, "x", guard));
    ZS_TRY(zt_alloc_tensor(o, &o->in[1], o->dt, 4, (const int64_t[]){p[4], p[1] / p[7], p[5], p[6]}, "w", guard));
    if (o->c->bias) ZS_TRY(zt_alloc_tensor(o, &o->in[2], o->dt, 1, &p[4], "b", guard));
    o->nout = 1;
    return zt_alloc_tensor(o, &o->out[0], o->dt, 4, (const int64_t[]){p[0], p[4], Ho, Wo}, "y", guard);
}

static zs_status conv_fill(zt_op_inst *o, uint64_t seed) {
    const int64_t *p = o->c->p;
    // w ~ U(-a, a), a = 1 / sqrt(fan_in) (PyTorch's default init range): y stays O(1).
    const float a = 1.0f / sqrtf((float)(p[1] / p[7] * p[5] * p[6]));
    ZS_TRY(zt_fill_tensor(&o->in[0], seed, 1, -1, 1));
    ZS_TRY(zt_fill_tensor(&o->in[1], seed, 2, -a, a));
    if (o->c->bias) ZS_TRY(zt_fill_tensor(&o->in[2], seed, 3, -1, 1));
    return ZS_OK;
}

static zs_status conv_forward(zt_op_inst *o) {
    zs_conv2d_params cp;
    zt_conv_params_of(o->c, &cp);
    return zs_conv2d_fwd(&o->out[0], &o->in[0], &o->in[1], o->c->bias ? &o->in[2] : NULL, &cp);
}

static zs_status conv_backward(zt_op_inst *o) {
    zs_conv2d_params cp;
    zt_conv_params_of(o->c, &cp);
    return zs_conv2d_bwd(&o->din[0], &o->din[1], o->c->bias ? &o->din[2] : NULL, &o->dy, &o->in[0], &o->in[1], &cp);
}

// fwd: 2 N Cout Ho Wo (Cin / G) KH KW flops, read x, w, write y; bwd: twice the flops (dx,
// dw), read dy, x, w, read + write dx, dw.
static void conv_cost(const zt_op_case *c, int bwd, size_t e, double *flops, double *bytes) {
    const int64_t *p = c->p;
    int64_t Ho, Wo;
    conv_out_hw(c, &Ho, &Wo);
    const double x = (double)(p[0] * p[1] * p[2] * p[3]), w = (double)(p[4] * (p[1] / p[7]) * p[5] * p[6]);
    const double y = (double)(p[0] * p[4] * Ho * Wo);
    const double f = 2.0 * y * (double)(p[1] / p[7] * p[5] * p[6]);
    *flops = bwd ? 2 * f : f;
    *bytes = (double)e * (bwd ? y + 3 * x + 3 * w : x + w + y);
}

static const char *conv_shape(const zt_op_case *c, char *buf, size_t n) {
    const int64_t *p = c->p;
    snprintf(buf, n, "x[%lld,%lld,%lld,%lld] w%lldx%lldx%lld s%lld p%lld%s%s", (long long)p[0], (long long)p[1],
             (long long)p[2], (long long)p[3], (long long)p[4], (long long)p[5], (long long)p[6], (long long)c->rows,
             (long long)c->out, p[7] > 1 ? " g" : "", c->bias ? " +b" : "");
    return buf;
}

// Finite differences (h 1e-2, tol 1e-3): the op is linear in each input, so only the fp32
// rounding of the touched outputs shows; measured <= 1.7e-5, except 1.1e-4 for the ViT patch
// case's dx (small gradients: w ~ 1/sqrt(3072), 48 outputs per input element).
// CUDA F32 tolerance 1e-4: cuDNN may pick Winograd / FFT / implicit-GEMM algorithms whose
// fp32 (FMA, no TF32) rounding differs from im2col + sgemm by a few 1e-6 to 1e-5 relative
// over sums of up to 3072 terms. BF16 / F16: one output rounding (2^-9 / 2^-11) plus
// tensor-core accumulation order.
const zt_op_family zt_fam_conv2d = {
    "conv2d", k_conv, (int)(sizeof k_conv / sizeof k_conv[0]), 1e-2, 1e-3, 1e-4, 2e-2, 5e-3,
    conv_alloc, conv_fill, conv_forward, conv_backward, conv_cost, conv_shape,
};
const zt_op_family zt_fam_conv2d_fd = {
    "conv2d", k_conv, CONV_NFD, 1e-2, 1e-3, 1e-4, 2e-2, 5e-3,
    conv_alloc, conv_fill, conv_forward, conv_backward, conv_cost, conv_shape,
};

// ---- batch norm -------------------------------------------------------------------------------
enum { BN_NFD = 4 };
static const zt_op_case k_bn[] = {
    //          name                     flags N  C    H   W   eps
    ZT_BN_CASE("batchnorm_2x5x7x9",      T,    2, 5,   7,  9,  1e-5f),
    ZT_BN_CASE("batchnorm_2d_6x11",      T,    6, 11,  0,  0,  1e-5f),
    ZT_BN_CASE("batchnorm_1x3x1x1",      T,    1, 3,   1,  1,  1e-3f),
    ZT_BN_CASE("batchnorm_3x4x3x37",     T,    3, 4,   3,  37, 1e-5f),
    ZT_BN_CASE("batchnorm_rn50_2x64x56", T,    2, 64,  56, 56, 1e-5f),
    ZT_BN_CASE("batchnorm_2d_77x768",    T,    77, 768, 0, 0,  1e-5f),
    ZT_BN_CASE("batchnorm_rn50_2x2048x7", T,   2, 2048, 7, 7,  1e-5f),
    ZT_BN_CASE("batchnorm_rn50_b8_256x56", B,  8, 256, 56, 56, 1e-5f),
};

static int bn_dims(const zt_op_case *c, int64_t *shape) {
    int nd = 2;
    shape[0] = c->p[0], shape[1] = c->p[1];
    if (c->p[2] > 0) shape[nd++] = c->p[2];
    if (c->p[3] > 0) shape[nd++] = c->p[3];
    return nd;
}

static zs_status bn_alloc(zt_op_inst *o, int guard) {
    int64_t shape[4], C = o->c->p[1];
    int nd = bn_dims(o->c, shape);
    o->nin = 3;
    o->in_role[0] = "x", o->in_role[1] = "g", o->in_role[2] = "b";
    o->din_role[0] = "dx", o->din_role[1] = "dg", o->din_role[2] = "db";
    ZS_TRY(zt_alloc_tensor(o, &o->in[0], o->dt, nd, shape, "x", guard));
    ZS_TRY(zt_alloc_tensor(o, &o->in[1], o->dt, 1, &C, "g", guard));
    ZS_TRY(zt_alloc_tensor(o, &o->in[2], o->dt, 1, &C, "b", guard));
    o->naux = 2;  // running statistics: F32, no gradients
    ZS_TRY(zt_alloc_tensor(o, &o->aux[0], ZS_F32, 1, &C, "mean", guard));
    ZS_TRY(zt_alloc_tensor(o, &o->aux[1], ZS_F32, 1, &C, "var", guard));
    o->nout = 1;
    return zt_alloc_tensor(o, &o->out[0], o->dt, nd, shape, "y", guard);
}

static zs_status bn_fill(zt_op_inst *o, uint64_t seed) {  // every statistic and parameter random
    ZS_TRY(zt_fill_tensor(&o->in[0], seed, 1, -2, 3));
    ZS_TRY(zt_fill_tensor(&o->in[1], seed, 2, -1.5f, 1.5f));
    ZS_TRY(zt_fill_tensor(&o->in[2], seed, 3, -1, 1));
    ZS_TRY(zt_fill_tensor(&o->aux[0], seed, 4, -1, 1.5f));
    return zt_fill_tensor(&o->aux[1], seed, 5, 0.05f, 2);
}

static zs_status bn_forward(zt_op_inst *o) {
    return zs_batchnorm_fwd(&o->out[0], &o->in[0], &o->in[1], &o->in[2], &o->aux[0], &o->aux[1], o->c->eps);
}

static zs_status bn_backward(zt_op_inst *o) {
    return zs_batchnorm_bwd(&o->din[0], &o->din[1], &o->din[2], &o->dy, &o->in[0], &o->in[1], &o->aux[0], &o->aux[1],
                            o->c->eps);
}

static double numel_of(const zt_op_case *c) {
    int64_t shape[4];
    int nd = bn_dims(c, shape);
    double n = 1;
    for (int i = 0; i < nd; i++) n *= (double)shape[i];
    return n;
}

static void bn_cost(const zt_op_case *c, int bwd, size_t e, double *flops, double *bytes) {
    *flops = 0;
    *bytes = (double)e * numel_of(c) * (bwd ? 4 : 2);  // bwd: dy, x, dx r+w
}

static const char *bn_shape(const zt_op_case *c, char *buf, size_t n) {
    if (c->p[2] > 0)
        snprintf(buf, n, "x[%lld,%lld,%lld,%lld]", (long long)c->p[0], (long long)c->p[1], (long long)c->p[2],
                 (long long)c->p[3]);
    else
        snprintf(buf, n, "x[%lld,%lld]", (long long)c->p[0], (long long)c->p[1]);
    return buf;
}

// Linear in each of x, g, b: FD shows only the fp32 rounding of y (measured <= 4.6e-6). CUDA F32: the same fp32
// expression (1e-5); the channel sums differ from the CPU's only in order.
const zt_op_family zt_fam_batchnorm = {
    "batchnorm", k_bn, (int)(sizeof k_bn / sizeof k_bn[0]), 1e-2, 1e-4, 1e-5, 2e-2, 5e-3,
    bn_alloc, bn_fill, bn_forward, bn_backward, bn_cost, bn_shape,
};
const zt_op_family zt_fam_batchnorm_fd = {
    "batchnorm", k_bn, BN_NFD, 1e-2, 1e-4, 1e-5, 2e-2, 5e-3,
    bn_alloc, bn_fill, bn_forward, bn_backward, bn_cost, bn_shape,
};

// ---- average pooling --------------------------------------------------------------------------
enum { POOL_NFD = 5 };
static const zt_op_case k_pool[] = {
    //            name                          flags N  C    H    W    k  s
    ZT_POOL_CASE("avgpool_k2s2_2x3x7x9",        T,    2, 3,   7,   9,   2, 2),
    ZT_POOL_CASE("avgpool_k3s3_1x2x10x11",      T,    1, 2,   10,  11,  3, 3),
    ZT_POOL_CASE("avgpool_k3s2_overlap_2x2x9x8", T,   2, 2,   9,   8,   3, 2),
    ZT_POOL_CASE("avgpool_k2s3_gaps_1x2x8x10",  T,    1, 2,   8,   10,  2, 3),
    ZT_POOL_CASE("avgpool_k1s1_1x2x3x4",        T,    1, 2,   3,   4,   1, 1),
    ZT_POOL_CASE("avgpool_rn50_k2_2x256x56",    T,    2, 256, 56,  56,  2, 2),
    ZT_POOL_CASE("avgpool_k3s3_2x64x37x45",     T,    2, 64,  37,  45,  3, 3),
    ZT_POOL_CASE("avgpool_rn50_k2_b8_256x56",   B,    8, 256, 56,  56,  2, 2),
};

static void pool_out(const zt_op_case *c, int64_t *Ho, int64_t *Wo) {
    *Ho = (c->p[2] - c->p[4]) / c->p[5] + 1;
    *Wo = (c->p[3] - c->p[4]) / c->p[5] + 1;
}

static zs_status pool_alloc(zt_op_inst *o, int guard) {
    const int64_t *p = o->c->p;
    int64_t Ho, Wo;
    pool_out(o->c, &Ho, &Wo);
    o->nin = 1;
    o->in_role[0] = "x", o->din_role[0] = "dx";
    ZS_TRY(zt_alloc_tensor(o, &o->in[0], o->dt, 4, (const int64_t[]){p[0], p[1], p[2], p[3]}, "x", guard));
    o->nout = 1;
    return zt_alloc_tensor(o, &o->out[0], o->dt, 4, (const int64_t[]){p[0], p[1], Ho, Wo}, "y", guard);
}

static zs_status pool_fill(zt_op_inst *o, uint64_t seed) { return zt_fill_tensor(&o->in[0], seed, 1, -2, 2); }
static zs_status pool_forward(zt_op_inst *o) {
    return zs_avgpool2d_fwd(&o->out[0], &o->in[0], (int)o->c->p[4], (int)o->c->p[5]);
}
static zs_status pool_backward(zt_op_inst *o) {
    return zs_avgpool2d_bwd(&o->din[0], &o->dy, (int)o->c->p[4], (int)o->c->p[5]);
}

static void pool_cost(const zt_op_case *c, int bwd, size_t e, double *flops, double *bytes) {
    int64_t Ho, Wo;
    pool_out(c, &Ho, &Wo);
    const double x = (double)(c->p[0] * c->p[1] * c->p[2] * c->p[3]), y = (double)(c->p[0] * c->p[1] * Ho * Wo);
    *flops = 0;
    *bytes = (double)e * (bwd ? y + 2 * x : x + y);
}

static const char *pool_shape(const zt_op_case *c, char *buf, size_t n) {
    snprintf(buf, n, "x[%lld,%lld,%lld,%lld] k%lld s%lld", (long long)c->p[0], (long long)c->p[1], (long long)c->p[2],
             (long long)c->p[3], (long long)c->p[4], (long long)c->p[5]);
    return buf;
}

// Linear: FD measured <= 1.2e-5 (tol 1e-4). CUDA F32: fp32 window sums in another order.
const zt_op_family zt_fam_avgpool = {
    "avgpool", k_pool, (int)(sizeof k_pool / sizeof k_pool[0]), 1e-2, 1e-4, 1e-5, 2e-2, 5e-3,
    pool_alloc, pool_fill, pool_forward, pool_backward, pool_cost, pool_shape,
};
const zt_op_family zt_fam_avgpool_fd = {
    "avgpool", k_pool, POOL_NFD, 1e-2, 1e-4, 1e-5, 2e-2, 5e-3,
    pool_alloc, pool_fill, pool_forward, pool_backward, pool_cost, pool_shape,
};

// ---- ReLU / SiLU ------------------------------------------------------------------------------
enum { ACT_NFD = 4 };
static const zt_op_case k_act[] = {
    //           name                        flags act          N  C    H   W
    ZT_ACT_CASE("relu_2x3x5x7",              T,    ZS_ACT_RELU, 2, 3,   5,  7),
    ZT_ACT_CASE("silu_2x3x5x7",              T,    ZS_ACT_SILU, 2, 3,   5,  7),
    ZT_ACT_CASE("relu_1x4x9x11",             T,    ZS_ACT_RELU, 1, 4,   9,  11),
    ZT_ACT_CASE("silu_1x4x9x11",             T,    ZS_ACT_SILU, 1, 4,   9,  11),
    ZT_ACT_CASE("relu_rn50_2x64x56x56",      T,    ZS_ACT_RELU, 2, 64,  56, 56),
    ZT_ACT_CASE("silu_unet_2x320x32x32",     T,    ZS_ACT_SILU, 2, 320, 32, 32),
    ZT_ACT_CASE("relu_rn50_b8_256x56x56",    B,    ZS_ACT_RELU, 8, 256, 56, 56),
    ZT_ACT_CASE("silu_unet_b2_320x64x64",    B,    ZS_ACT_SILU, 2, 320, 64, 64),
};

static zs_status act_alloc(zt_op_inst *o, int guard) {
    const int64_t *p = o->c->p;
    o->nin = 1;
    o->in_role[0] = "x", o->din_role[0] = "dx";
    ZS_TRY(zt_alloc_tensor(o, &o->in[0], o->dt, 4, (const int64_t[]){p[1], p[2], p[3], p[4]}, "x", guard));
    o->nout = 1;
    return zt_alloc_tensor(o, &o->out[0], o->dt, 4, (const int64_t[]){p[1], p[2], p[3], p[4]}, "y", guard);
}

// x ~ U(-5, 5); for ReLU moved at least 0.05 away from its kink at 0 (finite differences
// straddling it would be meaningless).
static zs_status act_fill(zt_op_inst *o, uint64_t seed) {
    int64_t n = zs_numel(&o->in[0]);
    float *h = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!h) return ZS_ERR(ZS_ENOMEM, "relu_silu fill");
    zs_tensor t = zs_tensor_make(h, ZS_F32, ZS_CPU, o->in[0].ndim, o->in[0].shape);
    zs_status s = zt_fill_tensor(&t, seed, 1, -5, 5);
    if (!s && o->c->p[0] == ZS_ACT_RELU)
        for (int64_t i = 0; i < n; i++)
            if (h[i] > -0.05f && h[i] < 0.05f) h[i] += h[i] < 0 ? -0.05f : 0.05f;
    if (!s) s = zt_from_host_f32(&o->in[0], h);
    free(h);
    return s;
}

static zs_status act_forward(zt_op_inst *o) { return zs_act_fwd((zs_act)o->c->p[0], &o->out[0], &o->in[0]); }
static zs_status act_backward(zt_op_inst *o) { return zs_act_bwd((zs_act)o->c->p[0], &o->din[0], &o->dy, &o->in[0]); }

static void act_cost(const zt_op_case *c, int bwd, size_t e, double *flops, double *bytes) {
    *flops = 0;
    *bytes = (double)e * (double)(c->p[1] * c->p[2] * c->p[3] * c->p[4]) * (bwd ? 4 : 2);
}

static const char *act_shape(const zt_op_case *c, char *buf, size_t n) {
    snprintf(buf, n, "%s x[%lld,%lld,%lld,%lld]", zs_act_name((zs_act)c->p[0]), (long long)c->p[1], (long long)c->p[2],
             (long long)c->p[3], (long long)c->p[4]);
    return buf;
}

// FD h 1e-2, tol 1e-4: SiLU carries the O(h^2) truncation error (measured 1.0e-5), ReLU is
// exact away from its kink (0). CUDA F32 1e-5: the same fp32 formula (act_math.h).
const zt_op_family zt_fam_relu_silu = {
    "relu_silu", k_act, (int)(sizeof k_act / sizeof k_act[0]), 1e-2, 1e-4, 1e-5, 2e-2, 5e-3,
    act_alloc, act_fill, act_forward, act_backward, act_cost, act_shape,
};
const zt_op_family zt_fam_relu_silu_fd = {
    "relu_silu", k_act, ACT_NFD, 1e-2, 1e-4, 1e-5, 2e-2, 5e-3,
    act_alloc, act_fill, act_forward, act_backward, act_cost, act_shape,
};
