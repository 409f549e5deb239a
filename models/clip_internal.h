// Internal to models/clip*.c: config readers.
#ifndef ZS_CLIP_INTERNAL_H
#define ZS_CLIP_INTERNAL_H
#include <cjson/cJSON.h>
#include "models/clip.h"

// Fill m->text / m->vision / m->towers (and m->source for HF).
zs_status zs_clip_config_open_clip(zs_clip *m, const cJSON *root, const char *path);
zs_status zs_clip_config_hf(zs_clip *m, const cJSON *root, const char *path);
// From shapes: hf_names = transformers naming (text only); heads = override or width / 64.
zs_status zs_clip_config_shapes(zs_clip *m, const zs_st *st, const char *prefix, int hf_names, zs_act act, int text_heads,
                                int vision_heads);
#endif
