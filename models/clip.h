// A whole CLIP model (text and/or vision tower: ViT or ModifiedResNet; logit scale), loaded from the layouts
// users download:
//   - an open_clip hub folder (open_clip_config.json + open_clip_model.safetensors),
//   - a transformers folder (config.json + model.safetensors: CLIPModel, CLIPTextModel,
//     CLIPTextModelWithProjection, CLIPVisionModel, CLIPVisionModelWithProjection), also a
//     diffusers pipeline folder (its text_encoder/),
//   - a bare .safetensors in OpenAI naming (config from the shapes as OpenAI's build_model:
//     heads = width / 64, QuickGELU; ModifiedResNet: layers from counting visual.layerN.M,
//     width from layer1.0.conv1, embed from attnpool.c_proj, image = sqrt(positions - 1) * 32,
//     attention-pool heads = width * 32 / 64),
//   - SD single files: cond_stage_model.model.* (SD 2.x OpenCLIP ViT-H text tower: GELU,
//     heads = width / 64, tokens from layer layers-1 + ln_final) and
//     cond_stage_model.transformer.* (SD 1.x, transformers naming, QuickGELU).
// Every tensor is checked against the config (errors name the first missing, extra or
// mis-shaped tensor); tensors the model does not use are listed in `unused`. Library code
// prints nothing: `notes` says what was inferred.
//
// The similarity head (L2 normalisation, exp(logit_scale), logits) runs on the host: its
// tensors are [B, E].
#ifndef ZS_CLIP_H
#define ZS_CLIP_H
#include "models/clip_resnet.h"
#include "models/clip_text.h"
#include "models/clip_vision.h"
#include "weights/clip_names.h"
#include "weights/safetensors.h"

enum { ZS_CLIP_TEXT = 1, ZS_CLIP_VISION = 2 };

typedef struct {
    zs_device device;      // CPU (F32) or CUDA
    zs_dtype dtype;        // F32; BF16 / F16 on CUDA
    unsigned towers;       // ZS_CLIP_TEXT | ZS_CLIP_VISION; 0 = every tower the file has
    int plan_only;         // validate config, names and shapes; read no data (header-only files)
    int text_heads;        // override where the file has no config (0 = the format's rule)
    int vision_heads;
    int text_out_layer;    // -1 = the layout's default (last layer; SD 2.x single file: layers - 1)
} zs_clip_opts;
zs_clip_opts zs_clip_default_opts(void);

typedef struct {
    char *name;                // full name in the file
    zs_clip_name entry;        // the table row it matched
    int layer;
    zs_dtype file_dtype;
    int64_t file_shape[ZS_MAX_DIMS];
    int file_ndim;
} zs_clip_binding;

typedef struct {
    zs_clip_format format;
    char prefix[64];           // of every name in the file ("" or "cond_stage_model.model." ...)
    char source[64];           // "open_clip", "transformers CLIPModel", "openai (bare)", "ldm-sd2", ...
    unsigned towers;           // loaded towers
    int has_logit_scale;
    int vision_resnet;         // the vision tower is a ModifiedResNet: `resnet` / `r` (else ViT: `vision` / `v`)
    zs_clip_text_cfg text;
    zs_clip_vision_cfg vision;
    zs_clip_resnet_cfg resnet;
    zs_device device;
    zs_dtype dtype;
    int plan_only;

    zs_clip_text t;            // valid when towers & ZS_CLIP_TEXT
    zs_clip_vision v;          // valid when towers & ZS_CLIP_VISION and not vision_resnet
    zs_clip_resnet r;          // valid when towers & ZS_CLIP_VISION and vision_resnet
    float logit_scale;         // log scale, as stored
    double d_logit_scale;      // its gradient (host; accumulated by zs_clip_logits_bwd)

    zs_clip_binding *bind;     // every file tensor the model reads / writes
    int n_bind;
    char **unused;             // file tensors (full names) not used
    int n_unused;
    char notes[512];           // what was inferred, e.g. "heads = width / 64"
    char *st_path;             // the weights it was loaded from (save copies `unused` from it)
} zs_clip;

// path: folder or file (see above). On error *out is NULL and the message names the file,
// field or tensor.
zs_status zs_clip_load(zs_clip **out, const char *path, const zs_clip_opts *o);
void zs_clip_free(zs_clip *m);
// Writes every parameter back under the names (and dtypes) it was loaded from, with
// metadata {"format": "pt"}, plus every `unused` tensor copied unchanged from the source
// file (buffers such as position_ids and num_batches_tracked, towers not loaded, the rest
// of an SD single file): transformers / diffusers / open_clip load the file unchanged.
zs_status zs_clip_save(zs_clip *m, const char *path);

// Gradients of every parameter (zeroed); zero them again.
zs_status zs_clip_grads(zs_clip *m);
zs_status zs_clip_zero_grads(zs_clip *m);
// Host F32 copy of bound tensor i (0..n_bind-1), parameter or gradient, in the file's layout
// (transposed / conv-shaped as the file stores it); n must be its element count.
zs_status zs_clip_read_bound(zs_clip *m, int i, int grad, float *dst, int64_t n);

// The image tower, ViT or ModifiedResNet, through one interface (towers & ZS_CLIP_VISION).
// Input [B, channels, h, w] on the model's device and dtype (normalised); features [B, E].
void zs_clip_image_shape(const zs_clip *m, int *channels, int *h, int *w);
int zs_clip_image_embed(const zs_clip *m);  // E (ViT without projection: its width)
zs_status zs_clip_image_setup(zs_clip *m, int64_t B, int train);
zs_status zs_clip_image_fwd(zs_clip *m, const zs_tensor *image);
zs_tensor *zs_clip_image_features(zs_clip *m);  // NULL before the first forward
// d_features [B, E]; accumulates into the tower's gradients (when allocated) and d_image (may be NULL).
zs_status zs_clip_image_bwd(zs_clip *m, const zs_tensor *d_features, zs_tensor *d_image);

// Similarity head on the host, from the towers' features after their forwards:
// tn = t / |t|, in = i / |i|, logits_per_image[Bi, Bt] = exp(logit_scale) in tn^T.
// text_norm [Bt, E], image_norm [Bi, E] may be NULL.
zs_status zs_clip_logits(zs_clip *m, float *logits_per_image, float *text_norm, float *image_norm);
// Backward of the head: d_text_features [Bt, E] and d_image_features [Bi, E] += ..., from
// dlogits [Bi, Bt]; m->d_logit_scale += ....
zs_status zs_clip_logits_bwd(zs_clip *m, const float *dlogits, float *d_text_features, float *d_image_features);
// Row-wise L2 normalisation and its backward (dx += ...), host F32 [n, d].
void zs_l2norm_fwd(float *y, const float *x, int64_t n, int64_t d);
void zs_l2norm_bwd(float *dx, const float *dy, const float *x, int64_t n, int64_t d);
#endif
