// Random weights for the SD UNet and VAE decoder at any config (benchmarks at the real SD 1.5
// / 2.x sizes, memory sizing): drawn from the Philox stream (engine/rng.h) on the host and
// copied to the device / dtype. Norm weights 1, every bias 0, every conv / linear weight
// N(0, 1/fan_in) (fan_in = numel / out channels), so activations stay O(1) through the depth.
#ifndef ZS_SD_RANDOM_H
#define ZS_SD_RANDOM_H
#include "models/sd_pipeline.h"

zs_status zs_sd_unet_init_random(zs_sd_unet *u, uint64_t seed);
zs_status zs_sd_vae_init_random(zs_sd_vae *v, uint64_t seed);

// A small SD 1.x-shaped UNet / VAE (two levels, widths 32 / 64, cross-attention width 48,
// 2 heads; VAE widths 32 / 64): the self-check's built-in model, no files needed.
void zs_sd_unet_config_small(zs_sd_unet_config *c);
void zs_sd_vae_config_small(zs_sd_vae_config *c);
// A pipeline of random UNet + VAE of these configs (no text encoder: embeddings given), the
// built-in SD defaults of `version` for the scheduler (prediction type pred, NULL: the version's).
zs_status zs_sd_pipe_random(zs_sd_pipe **out, const zs_sd_unet_config *u, const zs_sd_vae_config *v, int version,
                            const char *pred, zs_device dev, zs_dtype dt, uint64_t seed);
#endif
