// Stable Diffusion UNet / VAE parameter names, one table per weight format, mapping the
// engine's parameter slots onto file names. The engine names its slots as diffusers does
// (UNet2DConditionModel / AutoencoderKL state dict keys, current attention naming
// to_q/to_k/to_v/to_out.0, linear [C, C] VAE attention weights). A table row maps an engine
// name prefix (with "%d" block indices) onto a file prefix, computing the file's block
// indices as diffusers' convert_ldm_unet_checkpoint / convert_ldm_vae_checkpoint do, and
// optionally renames the rest of the name through a leaf table. File names are relative to
// the format's prefix ("model.diffusion_model." / "first_stage_model." in LDM single files).
#ifndef ZS_SD_NAMES_H
#define ZS_SD_NAMES_H
#include <stddef.h>
#include "engine/status.h"

typedef enum {
    ZS_SD_FMT_DIFFUSERS = 0,   // diffusers folders: unet/ and vae/ state dicts as saved today
    ZS_SD_FMT_DIFFUSERS_OLD,   // diffusers folders whose VAE attention has the legacy names
                               // query/key/value/proj_attn (SD 1.x / 2.x hub VAEs)
    ZS_SD_FMT_LDM,             // original single files: model.diffusion_model.*, first_stage_model.*
    ZS_SD_FMT_COUNT
} zs_sd_format;

typedef enum { ZS_SD_UNET = 0, ZS_SD_VAE = 1 } zs_sd_part;

typedef enum {
    ZS_SD_NAME_PLAIN = 0,  // file shape == engine shape
    ZS_SD_NAME_CONV1X1,    // file holds a 1x1 conv [O, I, 1, 1]; the engine the linear [O, I]
                           // (the plan also accepts [O, I] there and records PLAIN)
} zs_sd_name_layout;

// How the file's block indices follow from the engine's (b = block, j = index in block;
// L = layers_per_block, n = levels):
typedef enum {
    ZS_SD_IDX_SAME = 0,    // copied
    ZS_SD_IDX_DOWN,        // (b, j) -> input_blocks.{1 + b*(L+1) + j}
    ZS_SD_IDX_DOWNSAMPLE,  // (b) -> input_blocks.{(b+1)*(L+1)}
    ZS_SD_IDX_UP,          // (b, j) -> output_blocks.{b*(L+1) + j} (up blocks hold L+1 resnets)
    ZS_SD_IDX_UPSAMPLE,    // (b) -> output_blocks.{b*(L+1) + L}.{2 if block b has attention else 1}
    ZS_SD_IDX_REVERSE,     // (b[, j]) -> (n-1-b[, j]): the LDM VAE decoder numbers levels bottom-up
} zs_sd_index_rule;

typedef struct {
    const char *engine, *file;  // name piece after the prefix, e.g. "norm1." -> "in_layers.0."
    zs_sd_name_layout layout;   // applies to the ".weight" under it
} zs_sd_leaf;

typedef struct {
    zs_sd_part part;
    const char *engine;        // engine prefix, "%d" = index ("" matches every name)
    const char *file;          // file prefix
    zs_sd_index_rule rule;
    const zs_sd_leaf *leaves;  // NULL: the rest of the name is kept
} zs_sd_name;

// What the index arithmetic needs of the config.
typedef struct {
    int levels;
    int layers_per_block;
    const int *up_attn;  // UNet: per up block (diffusers order), 1 if it has attentions
} zs_sd_geom;

const zs_sd_name *zs_sd_names(zs_sd_format f, int *count);
const char *zs_sd_format_name(zs_sd_format f);  // "diffusers", "diffusers-old-vae-attention", "ldm"
// Prefix of a part's names in a format ("" for diffusers, where each part has its own file).
const char *zs_sd_prefix(zs_sd_format f, zs_sd_part part);
// File name (prefix included) of the engine slot `engine` of `part`, by the first matching
// row of f's table; *layout says how the file's shape relates to the engine's.
zs_status zs_sd_file_name(zs_sd_format f, zs_sd_part part, const char *engine, const zs_sd_geom *g, char *out,
                          size_t n, zs_sd_name_layout *layout);
// For tensors of a single file that are neither UNet nor VAE: a group label
// ("text encoder (cond_stage_model.*)", "EMA weights (model_ema.*)", "schedule buffers", "other").
const char *zs_sd_other_group(const char *name);
#endif
