// CLIP text transformer (OpenAI / open_clip / transformers CLIPTextModel):
//
//   ids ─ token_embedding (ctx vectors at chosen positions) ─(+ positions)─ hidden[0]
//       ─ causal pre-LN blocks ─ hidden[1..layers]
//       ─ ln_final(hidden[out_layer]) = tokens        (what SD conditions on)
//       ─ ln_final(hidden[layers])[pool index] = pooled ─ projection = features
//
// out_layer is `layers` for CLIP and diffusers text encoders; SD 2.x single-file checkpoints
// hold 24 OpenCLIP layers and condition on layer 23 + ln_final (out_layer = layers - 1).
#ifndef ZS_CLIP_TEXT_H
#define ZS_CLIP_TEXT_H
#include "models/transformer.h"

typedef enum {
    ZS_POOL_ARGMAX = 0,  // first position of the largest id (open_clip; transformers with eos_token_id == 2)
    ZS_POOL_EOS,         // first position of eos_id (transformers otherwise; 0 if absent)
} zs_clip_pool;

typedef struct {
    int vocab, n_pos;    // V token rows, P positions (context length)
    int width, layers, heads, mlp;
    int embed;           // E, projection width; 0: no projection (CLIPTextModel)
    zs_act act;
    float eps;
    zs_clip_pool pool;
    int eos_id;          // ZS_POOL_EOS
    int out_layer;       // 0..layers: the hidden state `tokens` is taken from
} zs_clip_text_cfg;

typedef struct {
    zs_tensor tok;          // [V, W]
    zs_tensor pos;          // [P, W]
    zs_tf_block *blocks;    // [layers]
    zs_tensor lnf_w, lnf_b; // [W]
    zs_tensor proj;         // [E, W] nn.Linear layout, no bias (OpenAI's [W, E] is transposed at load/save)
} zs_clip_text_params;

typedef struct {
    int64_t B, L;
    int train;              // activations of every block kept (backward possible)
    zs_tensor ids;          // [B, L] I32 on the device
    int32_t *pool_idx;      // host [B]
    zs_tensor *hidden;      // [layers + 1] of [B, L, W]
    zs_tf_acts *blocks;     // [layers] when training, else [1] reused
    zs_tensor tokens;       // [B, L, W] ln_final(hidden[out_layer])
    zs_tensor tok_mean, tok_rstd;     // [B*L]
    zs_tensor final;        // [B, L, W] ln_final(hidden[layers]) (== tokens' memory when out_layer == layers)
    zs_tensor fin_mean, fin_rstd;
    zs_tensor pooled;       // [B, W]
    zs_tensor features;     // [B, E] (== pooled when E == 0)
    // backward scratch
    zs_tf_scratch scratch;
    zs_tensor dh, dh2, dfinal;  // [B, L, W]
    zs_tensor dpooled;          // [B, W]
} zs_clip_text_acts;

typedef struct {
    zs_clip_text_cfg cfg;
    zs_tf_cfg tf;
    zs_device dev;
    zs_dtype dtype;
    int shapes_only;            // plan only: tensors have shapes, no memory
    zs_clip_text_params p, g;   // parameters, gradients (g's data NULL until zs_clip_text_grads)
    zs_arena params, grads, acts;
    zs_clip_text_acts a;
    // what the last forward did (the backward checks it)
    int ran_layers, ran_features, ctx_k, ctx_start;
} zs_clip_text;

// Lays out the parameters (measure + allocate) on dev in dtype; values are not initialised.
zs_status zs_clip_text_init(zs_clip_text *t, const zs_clip_text_cfg *c, zs_device dev, zs_dtype dt, int shapes_only);
void zs_clip_text_free(zs_clip_text *t);
// Gradient buffers (zeroed), and zeroing them again.
zs_status zs_clip_text_grads(zs_clip_text *t);
zs_status zs_clip_text_zero_grads(zs_clip_text *t);
// Activations for batch B of length L (<= n_pos); train keeps what the backward needs.
zs_status zs_clip_text_setup(zs_clip_text *t, int64_t B, int64_t L, int train);
// Every parameter tensor, in a fixed order (0..count-1); NULL past the end. gradients: p = &t->g.
int zs_clip_text_count(const zs_clip_text *t);
zs_tensor *zs_clip_text_tensor(zs_clip_text *t, zs_clip_text_params *p, int i);

typedef struct {
    const int32_t *ids;     // host [B, L] (B, L as set up)
    const zs_tensor *ctx;   // optional learned context [k, W] (model device / dtype): replaces the
    int ctx_start;          //   token embeddings at positions ctx_start .. ctx_start + k - 1
    int features;           // 1: also pooled + features (runs every layer)
} zs_clip_text_in;

zs_status zs_pool_index(const zs_clip_text_cfg *c, const int32_t *ids, int64_t B, int64_t L, int32_t *idx);
zs_status zs_clip_text_fwd(zs_clip_text *t, const zs_clip_text_in *in);
// Upstream gradients (any may be NULL; device tensors shaped as tokens / pooled / features);
// accumulates into t->g and d_ctx ([k, W], when the forward used ctx).
zs_status zs_clip_text_bwd(zs_clip_text *t, const zs_tensor *d_tokens, const zs_tensor *d_pooled,
                           const zs_tensor *d_features, zs_tensor *d_ctx);
#endif
