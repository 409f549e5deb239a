// Plan-only Stable Diffusion loader: reads the UNet / VAE configs (diffusers folder) or
// detects SD 1.x vs 2.x (single file, no config: the real SD 1.5 / 2.1 configs are assumed,
// or the configs of a diffusers folder given as config_dir, as diffusers' from_single_file
// config=), computes every engine slot (name + shape) of the UNet and VAE from the configs,
// maps each onto the file's naming (weights/sd_names.h) and checks the file's tensor set:
// the first missing, mis-shaped or extra UNet/VAE tensor is an error naming it. Tensors of
// other components (single files: cond_stage_model.*, model_ema.*, schedule buffers) are
// listed as unused and counted per group in the notes. No tensor data is read.
#ifndef ZS_SD_PLAN_H
#define ZS_SD_PLAN_H
#include "models/sd_config.h"
#include "weights/safetensors.h"
#include "weights/sd_names.h"

typedef struct {
    zs_sd_part part;
    char *name;                 // engine slot name (diffusers naming, to_q/to_k/to_v/to_out.0)
    int ndim;
    int64_t shape[4];           // engine shape
    const zs_st_entry *src;     // the bound file tensor (its name is the file's)
    zs_sd_name_layout layout;   // how src's shape relates to the engine's
} zs_sd_slot;

typedef struct {
    int version;                // 1: SD 1.x, 2: SD 2.x
    int single_file;            // 1: an LDM single file
    zs_sd_format unet_format, vae_format;
    zs_sd_unet_config unet;
    zs_sd_vae_config vae;
    zs_st *unet_st, *vae_st;    // same object for a single file
    zs_sd_slot *slots;          // UNet slots, then VAE slots, in module order
    int n_slots, n_unet_slots;
    const char **unused;        // file tensors that belong to other components / are unused
    int n_unused;
    char notes[2048];           // how the version / configs were chosen, unused tensors per group
} zs_sd_plan;

typedef struct {
    const char *config_dir;     // single files: a diffusers folder to take unet/ vae/ configs from
    unsigned st_flags;          // zs_st_open_ex flags (ZS_ST_ALLOW_HEADER_ONLY for layout fixtures)
} zs_sd_plan_opts;

// path: a diffusers pipeline folder (unet/, vae/ with config.json + weights) or a single
// .safetensors file. opts may be NULL.
zs_status zs_sd_plan_open(zs_sd_plan **out, const char *path, const zs_sd_plan_opts *opts);
void zs_sd_plan_free(zs_sd_plan *p);
const zs_sd_slot *zs_sd_plan_find(const zs_sd_plan *p, zs_sd_part part, const char *name);  // NULL if none
// Loads slot sl's file tensor into parameter t (same shape as the slot; a [O, I, 1, 1] file
// tensor lands in a linear [O, I] memory where the slot's layout says so). what names the model.
zs_status zs_sd_slot_load(const zs_sd_plan *p, const zs_sd_slot *sl, zs_tensor *t, const char *what);

// The engine slots a config gives (names + shapes, no binding); *slots malloc'd, free with
// zs_sd_slots_free.
zs_status zs_sd_slots(const zs_sd_unet_config *u, const zs_sd_vae_config *v, zs_sd_slot **slots, int *n,
                      int *n_unet);
void zs_sd_slots_free(zs_sd_slot *slots, int n);
#endif
