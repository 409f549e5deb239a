// CLIP vision transformer (OpenAI / open_clip VisionTransformer, transformers CLIPVisionModel):
//
//   image [B, C, H, W] ─ patchify ─ linear (= the patch conv) ─ [class token; patches] + positions
//     ─ ln_pre = hidden[0] ─ pre-LN blocks ─ hidden[1..layers]
//     ─ ln_post(hidden[layers][:, 0]) = pooled ─ projection = features
//
// The patch convolution (kernel = stride = patch, no bias) is computed as patchify
// (models/patchify.h) + zs_linear with conv1.weight viewed as [W, C*P*P].
#ifndef ZS_CLIP_VISION_H
#define ZS_CLIP_VISION_H
#include "models/transformer.h"

typedef struct {
    int image_h, image_w, channels, patch;  // grid GH = image_h / patch, GW = image_w / patch
    int width, layers, heads, mlp;
    int embed;                              // E; 0: no projection (CLIPVisionModel)
    zs_act act;
    float eps;
} zs_clip_vision_cfg;

typedef struct {
    zs_tensor patch_w;          // [W, C*P*P]  (conv1.weight [W, C, P, P] flattened)
    zs_tensor cls;              // [W]
    zs_tensor pos;              // [1 + GH*GW, W]
    zs_tensor ln_pre_w, ln_pre_b;   // [W]
    zs_tf_block *blocks;        // [layers]
    zs_tensor ln_post_w, ln_post_b; // [W]
    zs_tensor proj;             // [E, W] nn.Linear layout (OpenAI's visual.proj [W, E] transposed at load/save)
} zs_clip_vision_params;

typedef struct {
    int64_t B, T;               // T = 1 + GH*GW tokens
    int train;
    zs_tensor patches;          // [B, GH*GW, C*P*P]
    zs_tensor emb;              // [B, T, W] class + patch embeddings + positions (ln_pre input)
    zs_tensor pre_mean, pre_rstd;   // [B*T]
    zs_tensor *hidden;          // [layers + 1] of [B, T, W]; hidden[0] = ln_pre(emb)
    zs_tf_acts *blocks;         // [layers] when training, else [1]
    zs_tensor cls_tok;          // [B, W] hidden[layers][:, 0]
    zs_tensor post_mean, post_rstd; // [B]
    zs_tensor pooled;           // [B, W]
    zs_tensor features;         // [B, E] (== pooled when E == 0)
    zs_tf_scratch scratch;
    zs_tensor dh, dh2;          // [B, T, W]
    zs_tensor dcls, dpooled;    // [B, W]
    zs_tensor dpatches;         // [B, GH*GW, C*P*P]
} zs_clip_vision_acts;

typedef struct {
    zs_clip_vision_cfg cfg;
    zs_tf_cfg tf;
    zs_device dev;
    zs_dtype dtype;
    int shapes_only;            // plan only: tensors have shapes, no memory
    zs_clip_vision_params p, g;
    zs_arena params, grads, acts;
    zs_clip_vision_acts a;
} zs_clip_vision;

zs_status zs_clip_vision_init(zs_clip_vision *v, const zs_clip_vision_cfg *c, zs_device dev, zs_dtype dt, int shapes_only);
void zs_clip_vision_free(zs_clip_vision *v);
zs_status zs_clip_vision_grads(zs_clip_vision *v);
zs_status zs_clip_vision_zero_grads(zs_clip_vision *v);
zs_status zs_clip_vision_setup(zs_clip_vision *v, int64_t B, int train);
int zs_clip_vision_count(const zs_clip_vision *v);
zs_tensor *zs_clip_vision_tensor(zs_clip_vision *v, zs_clip_vision_params *p, int i);

// image: [B, C, image_h, image_w] on the model's device and dtype (already normalised).
zs_status zs_clip_vision_fwd(zs_clip_vision *v, const zs_tensor *image);
// Upstream gradients (any may be NULL): d_hidden of hidden[layers] [B, T, W] (HF's
// last_hidden_state), d_pooled [B, W], d_features [B, E]. Accumulates into v->g and d_image.
zs_status zs_clip_vision_bwd(zs_clip_vision *v, const zs_tensor *d_hidden, const zs_tensor *d_pooled,
                             const zs_tensor *d_features, zs_tensor *d_image);
#endif
