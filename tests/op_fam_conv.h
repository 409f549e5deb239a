// The convolution-side op families (tests/op_fam_conv.c): conv2d, batch norm, average
// pooling, and the CNN activations ReLU / SiLU (zs_act_fwd / zs_act_bwd).
#ifndef ZT_OP_FAM_CONV_H
#define ZT_OP_FAM_CONV_H
#include "kernels/conv.h"
#include "op_table.h"

extern const zt_op_family zt_fam_conv2d, zt_fam_batchnorm, zt_fam_avgpool, zt_fam_relu_silu;  // every case
// The first cases of each family: small enough for finite differences (the rest are
// realistic sizes for the CUDA parity tests, then bench cases).
extern const zt_op_family zt_fam_conv2d_fd, zt_fam_batchnorm_fd, zt_fam_avgpool_fd, zt_fam_relu_silu_fd;

// Case layouts (zt_op_case fields; p[] as listed):
//   conv2d:    p = {N, Cin, H, W, Cout, KH, KW, groups}; rows / cols = stride h / w, out / batch
//              = padding h / w, bias = with bias
//   batchnorm: p = {N, C, H, W} (H = W = 0: x is [N, C]); eps
//   avgpool:   p = {N, C, H, W, k, s}
//   relu_silu: p = {act (ZS_ACT_RELU / ZS_ACT_SILU), N, C, H, W}
#define ZT_CONV_CASE(name, flags, N, Cin, H, W, Cout, KH, KW, sh, sw, ph, pw, groups, bias) \
    {name, ZT_OP_FAMILY, pw, sh, sw, ph, bias, 0, flags, &zt_fam_conv2d, {N, Cin, H, W, Cout, KH, KW, groups}}
#define ZT_BN_CASE(name, flags, N, C, H, W, eps) \
    {name, ZT_OP_FAMILY, 0, 0, 0, 0, 0, eps, flags, &zt_fam_batchnorm, {N, C, H, W}}
#define ZT_POOL_CASE(name, flags, N, C, H, W, k, s) \
    {name, ZT_OP_FAMILY, 0, 0, 0, 0, 0, 0, flags, &zt_fam_avgpool, {N, C, H, W, k, s}}
#define ZT_ACT_CASE(name, flags, act, N, C, H, W) \
    {name, ZT_OP_FAMILY, 0, 0, 0, 0, 0, 0, flags, &zt_fam_relu_silu, {act, N, C, H, W}}

void zt_conv_params_of(const zt_op_case *c, zs_conv2d_params *p);
#endif
