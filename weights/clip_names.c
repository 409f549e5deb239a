#include "weights/clip_names.h"
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define T ZS_TOWER_TEXT
#define V ZS_TOWER_VISION
#define B(t, name, blk, part) {name, t, ZS_SLOT_BLOCK, blk, part, ZS_NAME_PLAIN}
#define P(t, name, slot) {name, t, slot, 0, 0, ZS_NAME_PLAIN}
#define RH(name, i) {"visual." name, V, ZS_SLOT_RN_HEAD, i, 0, ZS_NAME_PLAIN}
#define RB(name, i) {"visual.layer%d.%d." name, V, ZS_SLOT_RN_BLOCK, i, 0, ZS_NAME_PLAIN}
#define BN_ROWS(M, bn, i) M(bn ".weight", i), M(bn ".bias", i + 1), M(bn ".running_mean", i + 2), M(bn ".running_var", i + 3)

// OpenAI / open_clip: nn.MultiheadAttention's stacked in_proj; projections used as x @ P.
static const zs_clip_name openai[] = {
    P(T, "token_embedding.weight", ZS_SLOT_T_TOK),
    P(T, "positional_embedding", ZS_SLOT_T_POS),
    B(T, "transformer.resblocks.%d.ln_1.weight", 0, 0),
    B(T, "transformer.resblocks.%d.ln_1.bias", 1, 0),
    B(T, "transformer.resblocks.%d.attn.in_proj_weight", 2, 0),
    B(T, "transformer.resblocks.%d.attn.in_proj_bias", 3, 0),
    B(T, "transformer.resblocks.%d.attn.out_proj.weight", 4, 0),
    B(T, "transformer.resblocks.%d.attn.out_proj.bias", 5, 0),
    B(T, "transformer.resblocks.%d.ln_2.weight", 6, 0),
    B(T, "transformer.resblocks.%d.ln_2.bias", 7, 0),
    B(T, "transformer.resblocks.%d.mlp.c_fc.weight", 8, 0),
    B(T, "transformer.resblocks.%d.mlp.c_fc.bias", 9, 0),
    B(T, "transformer.resblocks.%d.mlp.c_proj.weight", 10, 0),
    B(T, "transformer.resblocks.%d.mlp.c_proj.bias", 11, 0),
    P(T, "ln_final.weight", ZS_SLOT_T_LNF_W),
    P(T, "ln_final.bias", ZS_SLOT_T_LNF_B),
    {"text_projection", T, ZS_SLOT_T_PROJ, 0, 0, ZS_NAME_T},
    {"visual.conv1.weight", V, ZS_SLOT_V_PATCH, 0, 0, ZS_NAME_CONV},
    P(V, "visual.class_embedding", ZS_SLOT_V_CLS),
    P(V, "visual.positional_embedding", ZS_SLOT_V_POS),
    P(V, "visual.ln_pre.weight", ZS_SLOT_V_PRE_W),
    P(V, "visual.ln_pre.bias", ZS_SLOT_V_PRE_B),
    B(V, "visual.transformer.resblocks.%d.ln_1.weight", 0, 0),
    B(V, "visual.transformer.resblocks.%d.ln_1.bias", 1, 0),
    B(V, "visual.transformer.resblocks.%d.attn.in_proj_weight", 2, 0),
    B(V, "visual.transformer.resblocks.%d.attn.in_proj_bias", 3, 0),
    B(V, "visual.transformer.resblocks.%d.attn.out_proj.weight", 4, 0),
    B(V, "visual.transformer.resblocks.%d.attn.out_proj.bias", 5, 0),
    B(V, "visual.transformer.resblocks.%d.ln_2.weight", 6, 0),
    B(V, "visual.transformer.resblocks.%d.ln_2.bias", 7, 0),
    B(V, "visual.transformer.resblocks.%d.mlp.c_fc.weight", 8, 0),
    B(V, "visual.transformer.resblocks.%d.mlp.c_fc.bias", 9, 0),
    B(V, "visual.transformer.resblocks.%d.mlp.c_proj.weight", 10, 0),
    B(V, "visual.transformer.resblocks.%d.mlp.c_proj.bias", 11, 0),
    P(V, "visual.ln_post.weight", ZS_SLOT_V_POST_W),
    P(V, "visual.ln_post.bias", ZS_SLOT_V_POST_B),
    {"visual.proj", V, ZS_SLOT_V_PROJ, 0, 0, ZS_NAME_T},
    // ModifiedResNet (models/clip_resnet.h): the rows above starting "visual." are the ViT's
    RH("conv1.weight", 0), BN_ROWS(RH, "bn1", 1),
    RH("conv2.weight", 5), BN_ROWS(RH, "bn2", 6),
    RH("conv3.weight", 10), BN_ROWS(RH, "bn3", 11),
    RB("conv1.weight", 0), BN_ROWS(RB, "bn1", 1),
    RB("conv2.weight", 5), BN_ROWS(RB, "bn2", 6),
    RB("conv3.weight", 10), BN_ROWS(RB, "bn3", 11),
    RB("downsample.0.weight", 15), BN_ROWS(RB, "downsample.1", 16),  // "downsample.-1" is the avgpool
    RH("attnpool.positional_embedding", 15),
    RH("attnpool.q_proj.weight", 16), RH("attnpool.q_proj.bias", 17),
    RH("attnpool.k_proj.weight", 18), RH("attnpool.k_proj.bias", 19),
    RH("attnpool.v_proj.weight", 20), RH("attnpool.v_proj.bias", 21),
    RH("attnpool.c_proj.weight", 22), RH("attnpool.c_proj.bias", 23),
    P(ZS_TOWER_TOP, "logit_scale", ZS_SLOT_LOGIT_SCALE),
};

// transformers: separate q/k/v projections (thirds of the engine's in_proj), nn.Linear
// projections, "pre_layrnorm" spelled as in modeling_clip.py.
static const zs_clip_name hf[] = {
    P(T, "text_model.embeddings.token_embedding.weight", ZS_SLOT_T_TOK),
    P(T, "text_model.embeddings.position_embedding.weight", ZS_SLOT_T_POS),
    B(T, "text_model.encoder.layers.%d.layer_norm1.weight", 0, 0),
    B(T, "text_model.encoder.layers.%d.layer_norm1.bias", 1, 0),
    B(T, "text_model.encoder.layers.%d.self_attn.q_proj.weight", 2, 1),
    B(T, "text_model.encoder.layers.%d.self_attn.k_proj.weight", 2, 2),
    B(T, "text_model.encoder.layers.%d.self_attn.v_proj.weight", 2, 3),
    B(T, "text_model.encoder.layers.%d.self_attn.q_proj.bias", 3, 1),
    B(T, "text_model.encoder.layers.%d.self_attn.k_proj.bias", 3, 2),
    B(T, "text_model.encoder.layers.%d.self_attn.v_proj.bias", 3, 3),
    B(T, "text_model.encoder.layers.%d.self_attn.out_proj.weight", 4, 0),
    B(T, "text_model.encoder.layers.%d.self_attn.out_proj.bias", 5, 0),
    B(T, "text_model.encoder.layers.%d.layer_norm2.weight", 6, 0),
    B(T, "text_model.encoder.layers.%d.layer_norm2.bias", 7, 0),
    B(T, "text_model.encoder.layers.%d.mlp.fc1.weight", 8, 0),
    B(T, "text_model.encoder.layers.%d.mlp.fc1.bias", 9, 0),
    B(T, "text_model.encoder.layers.%d.mlp.fc2.weight", 10, 0),
    B(T, "text_model.encoder.layers.%d.mlp.fc2.bias", 11, 0),
    P(T, "text_model.final_layer_norm.weight", ZS_SLOT_T_LNF_W),
    P(T, "text_model.final_layer_norm.bias", ZS_SLOT_T_LNF_B),
    P(T, "text_projection.weight", ZS_SLOT_T_PROJ),
    {"vision_model.embeddings.patch_embedding.weight", V, ZS_SLOT_V_PATCH, 0, 0, ZS_NAME_CONV},
    P(V, "vision_model.embeddings.class_embedding", ZS_SLOT_V_CLS),
    P(V, "vision_model.embeddings.position_embedding.weight", ZS_SLOT_V_POS),
    P(V, "vision_model.pre_layrnorm.weight", ZS_SLOT_V_PRE_W),
    P(V, "vision_model.pre_layrnorm.bias", ZS_SLOT_V_PRE_B),
    B(V, "vision_model.encoder.layers.%d.layer_norm1.weight", 0, 0),
    B(V, "vision_model.encoder.layers.%d.layer_norm1.bias", 1, 0),
    B(V, "vision_model.encoder.layers.%d.self_attn.q_proj.weight", 2, 1),
    B(V, "vision_model.encoder.layers.%d.self_attn.k_proj.weight", 2, 2),
    B(V, "vision_model.encoder.layers.%d.self_attn.v_proj.weight", 2, 3),
    B(V, "vision_model.encoder.layers.%d.self_attn.q_proj.bias", 3, 1),
    B(V, "vision_model.encoder.layers.%d.self_attn.k_proj.bias", 3, 2),
    B(V, "vision_model.encoder.layers.%d.self_attn.v_proj.bias", 3, 3),
    B(V, "vision_model.encoder.layers.%d.self_attn.out_proj.weight", 4, 0),
    B(V, "vision_model.encoder.layers.%d.self_attn.out_proj.bias", 5, 0),
    B(V, "vision_model.encoder.layers.%d.layer_norm2.weight", 6, 0),
    B(V, "vision_model.encoder.layers.%d.layer_norm2.bias", 7, 0),
    B(V, "vision_model.encoder.layers.%d.mlp.fc1.weight", 8, 0),
    B(V, "vision_model.encoder.layers.%d.mlp.fc1.bias", 9, 0),
    B(V, "vision_model.encoder.layers.%d.mlp.fc2.weight", 10, 0),
    B(V, "vision_model.encoder.layers.%d.mlp.fc2.bias", 11, 0),
    P(V, "vision_model.post_layernorm.weight", ZS_SLOT_V_POST_W),
    P(V, "vision_model.post_layernorm.bias", ZS_SLOT_V_POST_B),
    P(V, "visual_projection.weight", ZS_SLOT_V_PROJ),
    P(ZS_TOWER_TOP, "logit_scale", ZS_SLOT_LOGIT_SCALE),
};

const zs_clip_name *zs_clip_names(zs_clip_format f, int *count) {
    if (f == ZS_CLIP_FMT_HF) {
        *count = (int)(sizeof hf / sizeof hf[0]);
        return hf;
    }
    *count = (int)(sizeof openai / sizeof openai[0]);
    return openai;
}

const char *zs_clip_format_name(zs_clip_format f) { return f == ZS_CLIP_FMT_HF ? "hf" : "openai"; }

zs_clip_tower zs_clip_name_tower(zs_clip_format f, const char *rel) {
    if (!strcmp(rel, "logit_scale") || !strcmp(rel, "logit_bias")) return ZS_TOWER_TOP;
    if (f == ZS_CLIP_FMT_HF)
        return !strncmp(rel, "vision_model.", 13) || !strncmp(rel, "visual_projection.", 18) ? ZS_TOWER_VISION
                                                                                              : ZS_TOWER_TEXT;
    return !strncmp(rel, "visual.", 7) ? ZS_TOWER_VISION : ZS_TOWER_TEXT;
}

int zs_clip_name_ignorable(zs_clip_format f, const char *rel) {
    static const char *hf_buf[] = {"text_model.embeddings.position_ids", "vision_model.embeddings.position_ids"};
    static const char *oa_buf[] = {"attn_mask"};  // open_clip's causal mask when saved as a buffer
    const char **l = f == ZS_CLIP_FMT_HF ? hf_buf : oa_buf;
    int n = f == ZS_CLIP_FMT_HF ? 2 : 1;
    for (int i = 0; i < n; i++)
        if (!strcmp(rel, l[i])) return 1;
    static const char nbt[] = ".num_batches_tracked";  // BatchNorm's counter (ModifiedResNet)
    size_t k = strlen(rel), kn = sizeof nbt - 1;
    return f == ZS_CLIP_FMT_OPENAI && !strncmp(rel, "visual.", 7) && k > kn && !strcmp(rel + k - kn, nbt);
}

int zs_clip_name_match(const char *pattern, const char *rel, int *layer) {
    int first = -1;
    for (;;) {
        const char *d = strstr(pattern, "%d");
        if (!d) {
            if (strcmp(pattern, rel)) return 0;
            if (layer && first >= 0) *layer = first;
            return 1;
        }
        size_t pre = (size_t)(d - pattern);
        if (strncmp(pattern, rel, pre) || !isdigit((unsigned char)rel[pre])) return 0;
        char *end;
        long v = strtol(rel + pre, &end, 10);
        if (v > 100000 || (rel[pre] == '0' && end != rel + pre + 1)) return 0;
        if (first < 0) first = (int)v;
        pattern = d + 2, rel = end;
    }
}
