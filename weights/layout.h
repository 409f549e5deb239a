// Which checkpoint layout a tensor set is, by sniffing a few characteristic names. Used by
// `zsmlc inspect` and by model loaders to pick a name mapping (and to give a clear error).
#ifndef ZS_LAYOUT_H
#define ZS_LAYOUT_H
#include "weights/safetensors.h"

typedef enum {
    ZS_LAYOUT_UNKNOWN = 0,
    ZS_LAYOUT_LDM_SD1,         // single-file SD 1.x: model.diffusion_model.*, cond_stage_model.transformer.*
    ZS_LAYOUT_LDM_SD2,         // single-file SD 2.x: ... cond_stage_model.model.* (OpenCLIP)
    ZS_LAYOUT_DIFFUSERS_UNET,  // UNet2DConditionModel: conv_in, time_embedding, down_blocks ...
    ZS_LAYOUT_DIFFUSERS_VAE,   // AutoencoderKL: encoder.*, decoder.*, quant_conv
    ZS_LAYOUT_HF_CLIP_TEXT,    // transformers CLIPTextModel: text_model.*
    ZS_LAYOUT_HF_CLIP,         // transformers CLIPModel: text_model.*, vision_model.*
    ZS_LAYOUT_OPENCLIP,        // open_clip / OpenAI CLIP: visual.*, transformer.*, token_embedding
    ZS_LAYOUT_OPENCLIP_TEXT,   // open_clip text tower only (no visual.*)
    ZS_LAYOUT_COUNT
} zs_layout;

zs_layout zs_layout_detect(const zs_st *st);
const char *zs_layout_name(zs_layout l);  // "ldm-sd1", "diffusers-unet", ...
#endif
