// Stable Diffusion UNet / VAE configs: diffusers' UNet2DConditionModel and AutoencoderKL
// config.json (every field SD 1.x / 2.x use), and the real SD 1.5 / 2.1 configs as defaults
// for single files, which carry no config. Fields a config may carry that this engine does
// not implement are errors naming the file, the field and its value.
#ifndef ZS_SD_CONFIG_H
#define ZS_SD_CONFIG_H
#include "engine/status.h"

#define ZS_SD_MAX_LEVELS 8

typedef struct {
    int in_channels, out_channels;
    int levels;                                  // len(block_out_channels)
    int block_out_channels[ZS_SD_MAX_LEVELS];
    int layers_per_block;                        // resnets per down block (up blocks: +1)
    int down_attn[ZS_SD_MAX_LEVELS];             // 1: CrossAttnDownBlock2D, 0: DownBlock2D
    int up_attn[ZS_SD_MAX_LEVELS];               // 1: CrossAttnUpBlock2D, 0: UpBlock2D (up order)
    // Head COUNTS per down level (diffusers' attention_head_dim, or num_attention_heads when
    // present); the mid block uses heads[levels-1], up block i uses heads[levels-1-i].
    int heads[ZS_SD_MAX_LEVELS];
    int transformer_layers[ZS_SD_MAX_LEVELS];    // per down level; same reversal as heads
    int cross_attention_dim;
    int use_linear_projection;                   // proj_in/out: Linear [C, C] vs conv [C, C, 1, 1]
    int upcast_attention;
    int norm_num_groups;
    double norm_eps;
    int flip_sin_to_cos, freq_shift;
    int sample_size;
    int time_embed_dim;                          // 4 * block_out_channels[0]
} zs_sd_unet_config;

typedef struct {
    int in_channels, out_channels;
    int levels;
    int block_out_channels[ZS_SD_MAX_LEVELS];
    int layers_per_block;                        // encoder resnets per level (decoder: +1)
    int latent_channels;
    int norm_num_groups;
    int sample_size;
    double scaling_factor;
    int force_upcast;
    int mid_block_add_attention;
} zs_sd_vae_config;

// version: 1 (SD 1.5) or 2 (SD 2.1, 768-v).
void zs_sd_unet_config_default(zs_sd_unet_config *c, int version);
void zs_sd_vae_config_default(zs_sd_vae_config *c, int version);
// Reads a diffusers config.json; errors name the file and the field.
zs_status zs_sd_unet_config_load(zs_sd_unet_config *c, const char *path);
zs_status zs_sd_vae_config_load(zs_sd_vae_config *c, const char *path);
// Same from JSON text (what names the source in errors).
zs_status zs_sd_unet_config_parse(zs_sd_unet_config *c, const char *json, const char *what);
zs_status zs_sd_vae_config_parse(zs_sd_vae_config *c, const char *json, const char *what);
// Fuzz entry (models/sd_config_fuzz.c): config texts through the readers; always returns 0.
#include <stddef.h>
#include <stdint.h>
int zs_fuzz_sd_config(const uint8_t *data, size_t size);
#endif
