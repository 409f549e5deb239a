// Random-weight CLIP models built from configs in code (benchmarks, memory sizing, tests that
// need no file): the towers' own init functions lay the parameters out, then every tensor is
// drawn from the Philox stream (engine/rng.h) on the host and copied to the device / dtype.
// Initialisation follows open_clip's scheme closely enough for well-conditioned activations:
// layer-norm weights 1 and biases 0, linear / patch weights N(0, 1/fan_in), biases 0, token
// embeddings N(0, 0.02^2), positional embeddings N(0, 0.01^2), class token N(0, 1/W),
// logit_scale log(1/0.07). The model has no name bindings: zs_clip_save / read_bound do not
// apply; everything else (setup, forward, backward, grads, logits) does.
#ifndef ZS_CLIP_RANDOM_H
#define ZS_CLIP_RANDOM_H
#include "models/clip.h"

// Real-size configs (OpenAI / open_clip hub values).
zs_clip_vision_cfg zs_clip_cfg_vit_b32(void);   // ViT-B/32 image tower: 224, patch 32, 768 x 12, embed 512, QuickGELU
zs_clip_vision_cfg zs_clip_cfg_vit_b16(void);   // ViT-B/16 image tower: 224, patch 16
zs_clip_text_cfg zs_clip_cfg_text_vit_l14(void); // ViT-L/14 text tower (SD 1.x's): 768 x 12, 12 heads, embed 768, QuickGELU
zs_clip_text_cfg zs_clip_cfg_text_vit_h14(void); // OpenCLIP ViT-H/14 text tower (SD 2.x's): 1024 x 24, 16 heads, GELU, embed 1024
zs_clip_text_cfg zs_clip_cfg_text_vit_b32(void); // ViT-B/32 text tower: 512 x 12, 8 heads, embed 512
zs_clip_resnet_cfg zs_clip_cfg_rn50(void);       // RN50 image tower: layers [3, 4, 6, 3], width 64, 224, 32 heads, embed 1024

// Either config may be NULL (that tower is absent). On error *out is NULL.
zs_status zs_clip_init_random(zs_clip **out, const zs_clip_text_cfg *text, const zs_clip_vision_cfg *vision,
                              zs_device dev, zs_dtype dt, uint64_t seed);
// The same with a ModifiedResNet image tower (BN: weight 1, bias 0, running mean 0, var 1;
// convolutions N(0, 1/fan_in); attention-pool projections N(0, 1/D), positions N(0, 1/D)).
zs_status zs_clip_init_random_rn(zs_clip **out, const zs_clip_text_cfg *text, const zs_clip_resnet_cfg *resnet,
                                 zs_device dev, zs_dtype dt, uint64_t seed);
// Parameter count of the loaded towers.
int64_t zs_clip_param_count(zs_clip *m);
#endif
