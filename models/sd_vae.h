// Stable Diffusion VAE decoder (diffusers AutoencoderKL.decode, SD 1.x / 2.x): forward, and
// backward to the latents and every decoder / post_quant_conv parameter.
//
//   latents [B, z, h, w] (scaled, as the pipeline holds them) ─ / scaling_factor
//     ─ post_quant_conv 1x1 ─ conv_in 3x3 (-> C_last)
//     ─ mid block: resnet ─ attention (if mid_block_add_attention) ─ resnet
//     ─ up block i = 0..n-1 (channels reversed: C = block_out_channels[n-1-i]):
//         layers_per_block + 1 resnets, then (i < n-1) nearest x2 upsample ─ conv 3x3
//     ─ group norm + SiLU ─ conv_out 3x3 -> image [B, out_channels, h 2^(n-1), w 2^(n-1)]
//
// ResnetBlock2D: x ─ GN+SiLU ─ conv1 3x3 ─ GN+SiLU ─ conv2 3x3 ─(+)─ out
//                └─ identity, or conv_shortcut 1x1 when channels change ┘
// Attention (one head of width C over the h*w tokens): x ─ GN ─ NCHW->[B, HW, C] ─ to_q / to_k
//   / to_v ─ softmax(q k^T / sqrt(C)) v ─ to_out ─ [B, HW, C]->NCHW ─(+ x)
// Every group norm: norm_num_groups groups, eps 1e-6. The NCHW <-> token transposes are
// zs_patchify with patch 1 (CPU and CUDA), so the decoder is device-agnostic: CPU F32, CUDA
// F32 / BF16 / F16 (group norm / attention statistics F32).
//
// Memory: parameters and gradients one arena each; activations one arena sized by
// zs_sd_vae_setup for (B, h, w), with per-block checkpointing as the UNet's: the kept part
// holds the block outputs (z, post_quant_conv, conv_in, every resnet / attention out, every
// upsampler's conv out, the image); each block's intermediates (resnet n1 / c1 / n2 /
// statistics / shortcut, the attention's norm / tokens / q / k / v / o / lse and, train, its
// gradients, the upsampled tensor, conv_norm_out) live in one scratch region sized for the
// largest block. train = 1 adds the gradient chain buffers; the backward re-runs each
// block's forward into the scratch (a resnet only up to norm2, the upsampler only the
// upsample, the head only the group norm), then its backward. The forward is the same in
// both modes, so train = 0 and train = 1 decodes are bit-identical.
#ifndef ZS_SD_VAE_H
#define ZS_SD_VAE_H
#include "engine/arena.h"
#include "models/sd_config.h"
#include "models/sd_plan.h"

#define ZS_SD_VAE_MAX_RESNETS 4    // per up block (layers_per_block + 1)
#define ZS_SD_VAE_NAME 128         // longest engine parameter name + 1

typedef struct { zs_tensor w, b; } zs_vae_pair;  // conv: w [O, I, k, k], b [O]; linear: w [O, I], b [O]; norm: [C], [C]

typedef struct {
    int cin, cout;
    float eps;             // group norm eps (VAE 1e-6, UNet norm_eps)
    int64_t temb;          // UNet: time embedding width T (0: none, the VAE's)
    zs_vae_pair norm1;     // [cin]
    zs_vae_pair conv1;     // [cout, cin, 3, 3]
    zs_vae_pair temb_proj; // time_emb_proj: linear [cout, T], [cout] (temb > 0)
    zs_vae_pair norm2;     // [cout]
    zs_vae_pair conv2;     // [cout, cout, 3, 3]
    zs_vae_pair shortcut;  // conv_shortcut [cout, cin, 1, 1] (only when cin != cout)
} zs_vae_resnet;

typedef struct {
    zs_vae_pair norm;             // group_norm [C]
    zs_vae_pair q, k, v, out;     // to_q / to_k / to_v / to_out.0: linear [C, C], [C]
} zs_vae_attn;

typedef struct {
    zs_vae_pair post_quant_conv;                         // [z, z, 1, 1]
    zs_vae_pair conv_in;                                 // [C_last, z, 3, 3]
    zs_vae_resnet mid[2];
    zs_vae_attn attn;
    zs_vae_resnet up[ZS_SD_MAX_LEVELS][ZS_SD_VAE_MAX_RESNETS];
    zs_vae_pair upconv[ZS_SD_MAX_LEVELS];                // up block i < n-1: [C, C, 3, 3]
    zs_vae_pair norm_out;                                // conv_norm_out [C_0]
    zs_vae_pair conv_out;                                // [out, C_0, 3, 3]
} zs_sd_vae_params;

typedef struct {
    const zs_tensor *x;                  // the block input (another block's output)
    zs_tensor n1, mean1, rstd1, c1;      // GN1+SiLU out, its statistics [B, G], conv1 out
    zs_tensor n2, mean2, rstd2;          // GN2+SiLU out
    zs_tensor sc;                        // shortcut conv out (cin != cout)
    zs_tensor out;                       // conv2 out + shortcut
    // UNet (p->temb > 0): c1 += tb per (sample, channel), tb = time_emb_proj(SiLU(temb))
    const zs_tensor *temb;               // SiLU(temb) [B, T]
    zs_tensor tb;                        // [B, cout]
    zs_tensor *dtemb;                    // backward: d SiLU(temb) += (may be NULL)
    zs_tensor dtb;                       // backward scratch [B, cout]
} zs_vae_resnet_acts;

typedef struct {
    zs_tensor xn, mean, rstd;            // group norm out (NCHW)
    zs_tensor t, q, k, v, o, lse, p;     // tokens [B, HW, C], attention out, lse [B, 1, HW], to_out
    zs_tensor out;                       // x + p (NCHW)
    // train: gradient buffers [B, HW, C] (dxn NCHW)
    zs_tensor dp, d_o, dq, dk, dv, dt, dxn;
} zs_vae_attn_acts;

typedef struct {
    int64_t B, h, w;                     // latent size set up for
    int train;
    // kept: the block outputs (train: each its own memory, read again by the backward;
    // inference: they take turns in two buffers, as only the next block reads them)
    zs_tensor z;                         // latents / scaling_factor [B, z, h, w]
    zs_tensor pq, cin;                   // post_quant_conv [B, z, h, w], conv_in [B, C_last, h, w] outputs
    zs_vae_resnet_acts mid[2];           // .out kept, the rest in the scratch (.sc: n1's memory when cin >= cout)
    zs_vae_attn_acts attn;               // .out kept, the rest (train: with its gradients) in the scratch
    zs_vae_resnet_acts up[ZS_SD_MAX_LEVELS][ZS_SD_VAE_MAX_RESNETS];
    zs_tensor ups[ZS_SD_MAX_LEVELS];     // upsampled [B, C, 2h', 2w'] (scratch), made again by the backward
    zs_tensor upc[ZS_SD_MAX_LEVELS];     // upsampler conv out (kept)
    zs_tensor nout, nmean, nrstd;        // conv_norm_out + SiLU [B, C_0, H, W], statistics [B, G] (scratch)
    zs_tensor image;                     // the decoder output [B, out, H, W]
    // train
    zs_tensor g[2];                      // gradient chain ping-pong, the largest kept tensor each
    zs_tensor s;                         // block gradient scratch: max(cin, cout) B h w of the largest resnet
    size_t scratch;                      // bytes of the shared scratch region
} zs_sd_vae_acts;

typedef struct {
    zs_sd_vae_config cfg;
    zs_device dev;
    zs_dtype dtype;
    zs_sd_vae_params p, g;               // g: gradients (after zs_sd_vae_grads)
    zs_sd_vae_acts a;
    zs_arena params, grads, acts;
    int n_params;                        // decoder + post_quant_conv parameters
    char (*names)[ZS_SD_VAE_NAME];       // their engine (diffusers) names, layout order
    zs_tensor **ptab, **gtab;            // by index: parameter, gradient (NULL before grads)
} zs_sd_vae;

// Lays out the decoder of config c (no weights read; parameters uninitialised). After an
// error zs_sd_vae_free releases what was made.
zs_status zs_sd_vae_init(zs_sd_vae *v, const zs_sd_vae_config *c, zs_device dev, zs_dtype dt);
// Loads every decoder / post_quant_conv slot of the plan (its VAE config must equal v's);
// LDM 1x1-conv attention weights ([C, C, 1, 1]) load into the linear [C, C] memory.
zs_status zs_sd_vae_load(zs_sd_vae *v, const zs_sd_plan *p);
// zs_sd_plan_open (opts may be NULL; single files: opts->config_dir) + init from the plan's VAE
// config + load; on error v is left freed.
zs_status zs_sd_vae_open(zs_sd_vae *v, const char *path, const zs_sd_plan_opts *opts, zs_device dev, zs_dtype dt);
void zs_sd_vae_free(zs_sd_vae *v);

// Activations for latents [B, latent_channels, h, w]; train = 1 adds the backward's gradient
// buffers (block outputs kept, intermediates re-made by the backward: see Memory above).
zs_status zs_sd_vae_setup(zs_sd_vae *v, int64_t B, int64_t h, int64_t w, int train);
// image = decoder(latents / scaling_factor) into v->a.image (latents as the pipeline holds them).
zs_status zs_sd_vae_decode(zs_sd_vae *v, const zs_tensor *latents);
// Gradient buffers (zeroed); the backward then accumulates into them.
zs_status zs_sd_vae_grads(zs_sd_vae *v);
zs_status zs_sd_vae_zero_grads(zs_sd_vae *v);
// From d_image (shaped like v->a.image): parameter gradients (+=, when zs_sd_vae_grads ran)
// and d_latents (+=, may be NULL), w.r.t. the scaled latents. Needs setup(train = 1) and the
// decode just before (it re-runs blocks from the kept outputs; no other decode in between).
zs_status zs_sd_vae_decode_bwd(zs_sd_vae *v, const zs_tensor *d_image, zs_tensor *d_latents);

// Bytes held: parameters, gradients (0 before zs_sd_vae_grads), activations of the last setup
// (kept outputs (inference: two buffers) + scratch, train: + gradient buffers), and the
// scratch part of those.
typedef struct {
    size_t params, grads, acts, scratch;
} zs_sd_vae_mem;
zs_sd_vae_mem zs_sd_vae_memory(const zs_sd_vae *v);

// Parameter i's engine name (diffusers naming, to_q/to_k/to_v/to_out.0), NULL out of range.
const char *zs_sd_vae_param_name(const zs_sd_vae *v, int i);
#endif
