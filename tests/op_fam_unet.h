// The UNet / VAE op families (tests/op_fam_unet.c): group norm (+ fused SiLU), GEGLU,
// nearest resize and the per-(sample, channel) bias. The timestep embedding has no backward and no family: it is tested
// directly in tests/test_ops_unet.c.
#ifndef ZT_OP_FAM_UNET_H
#define ZT_OP_FAM_UNET_H
#include "op_table.h"

extern const zt_op_family zt_fam_groupnorm, zt_fam_geglu, zt_fam_upsample, zt_fam_chanbias;  // every case
// The first cases of each family: small enough for finite differences.
extern const zt_op_family zt_fam_groupnorm_fd, zt_fam_geglu_fd, zt_fam_upsample_fd, zt_fam_chanbias_fd;

// Case layouts (zt_op_case fields; p[] as listed):
//   groupnorm: p = {N, C, H, W, G, silu} (W = 0: x [N, C, H]; H = W = 0: x [N, C]); eps
//   geglu:     p = {B, L, F}: x [B, L, 2F], y [B, L, F]
//   upsample:  p = {N, C, H, W, Ho, Wo}
//   chanbias:  p = {N, C, H, W}: x, y [N, C, H, W], b [N, C]
#define ZT_GN_CASE(name, flags, N, C, H, W, G, silu, eps) \
    {name, ZT_OP_FAMILY, 0, 0, 0, 0, 0, eps, flags, &zt_fam_groupnorm, {N, C, H, W, G, silu}}
#define ZT_GEGLU_CASE(name, flags, B, L, F) \
    {name, ZT_OP_FAMILY, 0, 0, 0, 0, 0, 0, flags, &zt_fam_geglu, {B, L, F}}
#define ZT_UP_CASE(name, flags, N, C, H, W, Ho, Wo) \
    {name, ZT_OP_FAMILY, 0, 0, 0, 0, 0, 0, flags, &zt_fam_upsample, {N, C, H, W, Ho, Wo}}
#define ZT_CB_CASE(name, flags, N, C, H, W) \
    {name, ZT_OP_FAMILY, 0, 0, 0, 0, 0, 0, flags, &zt_fam_chanbias, {N, C, H, W}}

#endif
