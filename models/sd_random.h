// Random weights for the SD UNet and VAE decoder at any config (benchmarks at the real SD 1.5
// / 2.x sizes, memory sizing): drawn from the Philox stream (engine/rng.h) on the host and
// copied to the device / dtype. Norm weights 1, every bias 0, every conv / linear weight
// N(0, 1/fan_in) (fan_in = numel / out channels), so activations stay O(1) through the depth.
#ifndef ZS_SD_RANDOM_H
#define ZS_SD_RANDOM_H
#include "models/sd_unet.h"
#include "models/sd_vae.h"

zs_status zs_sd_unet_init_random(zs_sd_unet *u, uint64_t seed);
zs_status zs_sd_vae_init_random(zs_sd_vae *v, uint64_t seed);
#endif
