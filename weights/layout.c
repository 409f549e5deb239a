#include "weights/layout.h"
#include <string.h>

static int has(const zs_st *st, const char *name) { return zs_st_find(st, name) != NULL; }

zs_layout zs_layout_detect(const zs_st *st) {
    if (has(st, "model.diffusion_model.input_blocks.0.0.weight")) {
        if (has(st, "cond_stage_model.model.token_embedding.weight")) return ZS_LAYOUT_LDM_SD2;
        if (has(st, "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight") ||
            has(st, "cond_stage_model.transformer.embeddings.token_embedding.weight"))
            return ZS_LAYOUT_LDM_SD1;
        return ZS_LAYOUT_UNKNOWN;
    }
    if (has(st, "conv_in.weight") && has(st, "time_embedding.linear_1.weight")) return ZS_LAYOUT_DIFFUSERS_UNET;
    if (has(st, "encoder.conv_in.weight") && has(st, "decoder.conv_in.weight") && has(st, "quant_conv.weight"))
        return ZS_LAYOUT_DIFFUSERS_VAE;
    if (has(st, "text_model.embeddings.token_embedding.weight"))
        return has(st, "vision_model.embeddings.patch_embedding.weight") ? ZS_LAYOUT_HF_CLIP : ZS_LAYOUT_HF_CLIP_TEXT;
    if (has(st, "token_embedding.weight") && has(st, "positional_embedding")) {
        for (int i = 0; i < zs_st_count(st); i++) {
            const char *n = zs_st_at(st, i)->name;
            if (n[0] == 'v' && !strncmp(n, "visual.", 7)) return ZS_LAYOUT_OPENCLIP;
        }
        return ZS_LAYOUT_OPENCLIP_TEXT;
    }
    return ZS_LAYOUT_UNKNOWN;
}

const char *zs_layout_name(zs_layout l) {
    static const char *k[ZS_LAYOUT_COUNT] = {
        "unknown", "ldm-sd1", "ldm-sd2", "diffusers-unet", "diffusers-vae", "hf-clip-text", "hf-clip", "openclip",
        "openclip-text",
    };
    return (unsigned)l < ZS_LAYOUT_COUNT ? k[l] : "unknown";
}
