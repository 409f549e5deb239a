// Stable Diffusion VAE encoder (diffusers AutoencoderKL.encode, SD 1.x / 2.x): forward only.
//
//   image [B, in_channels, H, W] in [-1, 1] ─ conv_in 3x3 (-> C_0)
//     ─ down block i = 0..n-1 (C = block_out_channels[i]): layers_per_block resnets, then
//         (i < n-1) zero pad (0, 1, 0, 1) (one column right, one row bottom) ─ conv 3x3 stride 2, pad 0
//     ─ mid block: resnet ─ attention (if mid_block_add_attention) ─ resnet
//     ─ group norm + SiLU ─ conv_out 3x3 (-> 2 latent_channels) ─ quant_conv 1x1 = moments
//   moments [B, 2 z, h, w], each downsample: h = (H - 2) / 2 + 1 (floor); mean, logvar =
//   chunk(moments, 2) on channels, logvar clamped to [-30, 20], std = exp(logvar / 2).
// Resnets / attention / group norm (eps 1e-6) as in models/sd_vae.h (the decoder).
//
// Devices: CPU F32; CUDA F32 / BF16 / F16. The asymmetric pad is a zeroed scratch
// [B, C, H+1, W+1] tensor filled by one strided copy per channel (zs_memcpy2d).
// Memory: parameters one arena; activations one arena sized (and grown) at each encode for
// the image size; every block output is kept, resnet / attention intermediates are dropped.
#ifndef ZS_SD_VAE_ENC_H
#define ZS_SD_VAE_ENC_H
#include "models/sd_vae.h"

typedef struct {
    zs_vae_pair conv_in;                                   // [C_0, in, 3, 3]
    zs_vae_resnet down[ZS_SD_MAX_LEVELS][ZS_SD_VAE_MAX_RESNETS];
    zs_vae_pair downconv[ZS_SD_MAX_LEVELS];                // down block i < n-1: [C, C, 3, 3]
    zs_vae_resnet mid[2];
    zs_vae_attn attn;
    zs_vae_pair norm_out;                                  // conv_norm_out [C_last]
    zs_vae_pair conv_out;                                  // [2 z, C_last, 3, 3]
    zs_vae_pair quant_conv;                                // [2 z, 2 z, 1, 1]
} zs_sd_vae_enc_params;

typedef struct {
    zs_sd_vae_config cfg;
    zs_device dev;
    zs_dtype dtype;
    zs_sd_vae_enc_params p;
    zs_arena params, acts;
    int n_params;                        // encoder + quant_conv parameters
    char (*names)[ZS_SD_VAE_NAME];       // engine (diffusers) names, layout order
    zs_tensor **ptab;                    // by index
} zs_sd_vae_enc;

// Lays out the encoder of config c (parameters uninitialised); on error the struct is freed.
zs_status zs_sd_vae_enc_init(zs_sd_vae_enc *e, const zs_sd_vae_config *c, zs_device dev, zs_dtype dt);
// Loads every encoder / quant_conv slot of the plan (its VAE config must equal e's); LDM
// 1x1-conv attention weights load into the linear [C, C] memory.
zs_status zs_sd_vae_enc_load(zs_sd_vae_enc *e, const zs_sd_plan *p);
// zs_sd_plan_open (opts may be NULL; single files: opts->config_dir) + init + load; on error e is freed.
zs_status zs_sd_vae_enc_open(zs_sd_vae_enc *e, const char *path, const zs_sd_plan_opts *opts, zs_device dev,
                             zs_dtype dt);
void zs_sd_vae_enc_free(zs_sd_vae_enc *e);

// The moments shape [B, 2 z, h, w] for an image [B, in, H, W] (H, W >= 2 wherever a downsample runs).
zs_status zs_sd_vae_enc_moments_shape(const zs_sd_vae_enc *e, int64_t B, int64_t H, int64_t W, int64_t shape[4]);
// moments_out (shaped by zs_sd_vae_enc_moments_shape, e's device and dtype) = quant_conv(encoder(image)).
zs_status zs_sd_vae_enc_encode(zs_sd_vae_enc *e, const zs_tensor *image, zs_tensor *moments_out);

// From moments [B, 2 z, h, w] (CPU F32) into out [B, z, h, w] (CPU F32): the mean (first z
// channels), the logvar (last z, clamped to [-30, 20]), the std exp(logvar / 2).
zs_status zs_sd_vae_enc_mean(const zs_tensor *moments, zs_tensor *out);
zs_status zs_sd_vae_enc_logvar(const zs_tensor *moments, zs_tensor *out);
zs_status zs_sd_vae_enc_std(const zs_tensor *moments, zs_tensor *out);

// Parameter i's engine name, NULL out of range.
const char *zs_sd_vae_enc_param_name(const zs_sd_vae_enc *e, int i);
#endif
