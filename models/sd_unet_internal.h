// Stable Diffusion UNet internals shared by models/sd_unet.c (layout, units, forward /
// backward walk) and models/sd_unet_xformer.c (Transformer2DModel). See models/sd_unet.h.
#ifndef ZS_SD_UNET_INTERNAL_H
#define ZS_SD_UNET_INTERNAL_H
#include "engine/arena.h"
#include "models/sd_unet.h"
#include "models/sd_vae_blocks.h"

#define ZS_UNET_MAX_LPB 4      // layers_per_block (up blocks: + 1 resnets)
#define ZS_UNET_MAX_TLAYERS 2  // BasicTransformerBlocks per Transformer2DModel (SD 1/2: 1)
#define ZS_UNET_LN_EPS 1e-5f   // BasicTransformerBlock layer norms
#define ZS_UNET_XF_GN_EPS 1e-6f  // Transformer2DModel group norm

typedef struct {
    zs_vae_pair norm1, norm2, norm3;  // layer norms [C]
    zs_vae_pair q1, k1, v1, o1;       // attn1 (self): to_q / to_k / to_v [C, C] (no bias), to_out.0 [C, C] + [C]
    zs_vae_pair q2, k2, v2, o2;       // attn2 (cross): to_k / to_v [C, X]
    zs_vae_pair ff1, ff2;             // ff.net.0.proj [8C, C] + [8C] (GEGLU), ff.net.2 [C, 4C] + [C]
} zs_unet_tblock;

typedef struct {
    int C, heads, layers, linear;     // linear: use_linear_projection
    zs_vae_pair norm;                 // GroupNorm [C]
    zs_vae_pair proj_in, proj_out;    // [C, C] (linear) or [C, C, 1, 1] (conv, applied as a linear on tokens)
    zs_unet_tblock blk[ZS_UNET_MAX_TLAYERS];
} zs_unet_xformer;

typedef struct {
    zs_vae_pair conv_in;                               // [c0, in, 3, 3]
    zs_vae_pair t1, t2;                                // time_embedding.linear_1 [T, c0], linear_2 [T, T]
    zs_vae_resnet down[ZS_SD_MAX_LEVELS][ZS_UNET_MAX_LPB];
    zs_unet_xformer dxf[ZS_SD_MAX_LEVELS][ZS_UNET_MAX_LPB];
    zs_vae_pair downconv[ZS_SD_MAX_LEVELS];            // [C, C, 3, 3], stride 2
    zs_vae_resnet mid[2];
    zs_unet_xformer mxf;
    zs_vae_resnet up[ZS_SD_MAX_LEVELS][ZS_UNET_MAX_LPB + 1];
    zs_unet_xformer uxf[ZS_SD_MAX_LEVELS][ZS_UNET_MAX_LPB + 1];
    zs_vae_pair upconv[ZS_SD_MAX_LEVELS];              // [C, C, 3, 3]
    zs_vae_pair norm_out, conv_out;                    // conv_norm_out [c0]; conv_out [out, c0, 3, 3]
} zs_unet_params;

// One BasicTransformerBlock's activations (tokens [B, N, C], N = h*w; statistics [B*N] F32;
// lse [B, heads, N] F32; k2 / v2 [B, L, C]).
typedef struct {
    const zs_tensor *h;                                // block input
    zs_tensor n1, m1, r1, q1, k1, v1, o1, l1, h1;      // h1 = h + attn1(LN1(h))
    zs_tensor n2, m2, r2, q2, k2, v2, o2, l2, h2;      // h2 = h1 + attn2(LN2(h1), ctx)
    zs_tensor n3, m3, r3, f1, g, h3;                   // f1 [B, N, 8C], g [B, N, 4C]; h3 = h2 + ff
} zs_unet_tblock_acts;

typedef struct {
    const zs_tensor *x, *ctx;          // input NCHW [B, C, h, w], context [B, L, X]
    zs_tensor *out;                    // the unit output NCHW
    zs_tensor xn, mean, rstd;          // group norm out NCHW, statistics [B, G]
    zs_tensor tok, h0, po;             // tokens of xn, proj_in out, proj_out out [B, N, C]
    zs_unet_tblock_acts blk[ZS_UNET_MAX_TLAYERS];
    // train: backward scratch, tokens [B, N, C] unless noted
    zs_tensor dt[2], dA, dB, dO, dQ, dK, dV, dN, dxn;  // dxn NCHW
    zs_tensor dKc, dVc, dF, dG;        // [B, L, C] x2, [B, N, 8C], [B, N, 4C]
} zs_unet_xformer_acts;

// Registers "<prefix>norm." ... "proj_out." in the plan's slot order.
zs_status zs_unet_reg_xformer(zs_vae_reg *r, zs_unet_xformer *p, const char *prefix, int C, int heads, int layers,
                              int64_t X, int linear);
// Lays out every tensor of a (B, h*w tokens, context length L), train: with backward scratch.
zs_status zs_unet_lay_xformer(zs_arena *ar, const zs_unet_xformer *p, zs_unet_xformer_acts *a, zs_dtype dt,
                              int64_t B, int64_t h, int64_t w, int64_t L, int G, int train);
// a->out = a->x + transformer(a->x, a->ctx).
zs_status zs_unet_xformer_fwd(const zs_unet_xformer *p, zs_unet_xformer_acts *a, int G);
// After the forward: dx += d x, dctx += d ctx (may be NULL), G parameter grads (may be NULL).
zs_status zs_unet_xformer_bwd(const zs_unet_xformer *p, zs_unet_xformer *Gp, zs_unet_xformer_acts *a,
                              const zs_tensor *dy, zs_tensor *dx, zs_tensor *dctx, int G);
#endif
