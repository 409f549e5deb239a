// CLIP parameter names, one table per weight format, mapping file names to the engine's
// parameter slots (models/clip_text.h, models/clip_vision.h, the block tensors of
// models/transformer.h). Names are relative to a prefix ("" for CLIP files,
// "cond_stage_model.model." / "cond_stage_model.transformer." in SD single files); "%d" is
// the layer index.
#ifndef ZS_CLIP_NAMES_H
#define ZS_CLIP_NAMES_H

typedef enum {
    ZS_CLIP_FMT_OPENAI = 0,  // OpenAI CLIP / open_clip state dicts (also SD 2.x cond_stage_model.model.*)
    ZS_CLIP_FMT_HF,          // transformers CLIPModel / CLIPTextModel[WithProjection] / CLIPVisionModel[WithProjection]
    ZS_CLIP_FMT_COUNT
} zs_clip_format;

typedef enum { ZS_TOWER_TOP = 0, ZS_TOWER_TEXT, ZS_TOWER_VISION } zs_clip_tower;

typedef enum {
    ZS_SLOT_T_TOK, ZS_SLOT_T_POS, ZS_SLOT_T_LNF_W, ZS_SLOT_T_LNF_B, ZS_SLOT_T_PROJ,
    ZS_SLOT_V_PATCH, ZS_SLOT_V_CLS, ZS_SLOT_V_POS, ZS_SLOT_V_PRE_W, ZS_SLOT_V_PRE_B,
    ZS_SLOT_V_POST_W, ZS_SLOT_V_POST_B, ZS_SLOT_V_PROJ,
    ZS_SLOT_LOGIT_SCALE,
    ZS_SLOT_BLOCK,  // a block tensor: `blk` is its index in zs_tf_block_tensor order
    ZS_SLOT_RN_HEAD,   // ModifiedResNet stem / attention pool: `blk` in zs_rn_head_tensor order
    ZS_SLOT_RN_BLOCK,  // ModifiedResNet bottleneck tensor: `blk` in zs_rn_block_tensor order;
                       // the name has two "%d": stage (1..4) and index in the stage
} zs_clip_slot;

typedef enum {
    ZS_NAME_PLAIN = 0,  // file shape == engine shape
    ZS_NAME_T,          // file holds the transpose ([in, out], used as x @ P)
    ZS_NAME_CONV,       // file holds the patch conv [W, C, P, P]; the engine its [W, C*P*P] view
} zs_clip_name_layout;

typedef struct {
    const char *name;   // relative name, "%d" = layer
    zs_clip_tower tower;
    zs_clip_slot slot;
    int blk;            // ZS_SLOT_BLOCK: index in zs_tf_block_tensor order
    int part;           // 0 whole tensor; 1, 2, 3: the q, k, v third of the stacked in_proj
    zs_clip_name_layout layout;
} zs_clip_name;

const zs_clip_name *zs_clip_names(zs_clip_format f, int *count);
const char *zs_clip_format_name(zs_clip_format f);  // "openai", "hf"
// Which tower a relative name belongs to, by its prefix (for listing skipped towers).
zs_clip_tower zs_clip_name_tower(zs_clip_format f, const char *rel);
// Buffers that files carry and the model does not use (position_ids, attn_mask, BatchNorm's
// num_batches_tracked, ...).
int zs_clip_name_ignorable(zs_clip_format f, const char *rel);
// 1 if rel matches pattern (each "%d" matching a decimal index; the first is stored in *layer).
int zs_clip_name_match(const char *pattern, const char *rel, int *layer);
#endif
