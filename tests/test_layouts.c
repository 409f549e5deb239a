// Header-only fixtures of real checkpoint layouts (tools/fixtures/make_layouts.py): each
// opens, has the real tensor count, is recognised, and key tensors have the real shapes.
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include "test.h"
#include "weights/layout.h"
#include "weights/safetensors.h"

typedef struct {
    const char *path;  // under tests/fixtures/layouts/
    int count;
    zs_layout layout;
    long long bytes;   // data section of the real file
} layout_case;

static const layout_case k_layouts[] = {
    {"sd15-diffusers/unet/diffusion_pytorch_model.safetensors", 686, ZS_LAYOUT_DIFFUSERS_UNET, 3438083856},
    {"sd15-diffusers/vae/diffusion_pytorch_model.safetensors", 248, ZS_LAYOUT_DIFFUSERS_VAE, 334615452},
    {"sd15-diffusers/text_encoder/model.safetensors", 197, ZS_LAYOUT_HF_CLIP_TEXT, 492242536},
    {"sd21-diffusers/unet/diffusion_pytorch_model.safetensors", 686, ZS_LAYOUT_DIFFUSERS_UNET, 3463642896},
    {"sd21-diffusers/vae/diffusion_pytorch_model.safetensors", 248, ZS_LAYOUT_DIFFUSERS_VAE, 334615452},
    {"sd21-diffusers/text_encoder/model.safetensors", 373, ZS_LAYOUT_HF_CLIP_TEXT, 1361551976},
    {"sd15-single/v1-5-pruned.safetensors", 1831, ZS_LAYOUT_LDM_SD1, 7703073708},
    {"sd21-single/v2-1_768-ema-pruned.safetensors", 1240, ZS_LAYOUT_LDM_SD2, 5214436912},
    {"clip-vit-b-32-openai/open_clip_model.safetensors", 302, ZS_LAYOUT_OPENCLIP, 605109252},
    {"clip-rn50-openai/open_clip_model.safetensors", 489, ZS_LAYOUT_OPENCLIP, 408241980},
    {"openclip-vit-h-14-laion2b/open_clip_model.safetensors", 686, ZS_LAYOUT_OPENCLIP, 3944437764},
};

static zs_status open_layout(const char *rel, zs_st **st) {
    char p[512], full[600];
    snprintf(full, sizeof full, "layouts/%s", rel);
    return zs_st_open_ex(st, zt_fixture_path(full, p, sizeof p), ZS_ST_ALLOW_HEADER_ONLY);
}

TEST(layouts_open_count_detect) {
    for (size_t i = 0; i < sizeof k_layouts / sizeof *k_layouts; i++) {
        const layout_case *c = &k_layouts[i];
        zs_st *st;
        CHECK_OK(open_layout(c->path, &st));
        int n = zs_st_count(st);
        long long bytes = 0;
        for (int k = 0; k < n; k++) bytes += (long long)(zs_st_at(st, k)->end - zs_st_at(st, k)->begin);
        zs_layout l = zs_layout_detect(st);
        int ho = zs_st_is_header_only(st);
        zs_st_close(st);
        CHECK(n == c->count, "%s: %d tensors, want %d", c->path, n, c->count);
        CHECK(l == c->layout, "%s: layout %s, want %s", c->path, zs_layout_name(l), zs_layout_name(c->layout));
        CHECK(bytes == c->bytes, "%s: %lld data bytes, want %lld", c->path, bytes, c->bytes);
        CHECK(ho, "%s: not marked header-only", c->path);
    }
    return ZT_PASS;
}

// Without the flag a header-only file is a truncated file; loading from it is an error.
TEST(layouts_header_only_needs_flag) {
    char p[512];
    zs_st *st;
    zt_fixture_path("layouts/sd15-diffusers/unet/diffusion_pytorch_model.safetensors", p, sizeof p);
    CHECK(zs_st_open(&st, p) == ZS_EFORMAT && strstr(zs_errmsg(), "out of bounds"), "%s", zs_errmsg());
    CHECK_OK(zs_st_open_ex(&st, p, ZS_ST_ALLOW_HEADER_ONLY));
    float x[320];
    zs_status s = zs_st_read_f32(st, "conv_in.bias", x, 320);
    zs_st_close(st);
    CHECK(s == ZS_EINVAL && strstr(zs_errmsg(), "header-only"), "%s", zs_errmsg());
    // A folder holding one file opens like the file.
    zt_fixture_path("layouts/sd15-diffusers/unet", p, sizeof p);
    CHECK_OK(zs_st_open_ex(&st, p, ZS_ST_ALLOW_HEADER_ONLY));
    int n = zs_st_count(st);
    zs_st_close(st);
    CHECK(n == 686, "folder open: %d", n);
    return ZT_PASS;
}

typedef struct {
    const char *file, *name;
    zs_dtype dtype;
    int ndim;
    int64_t shape[4];
} spot;

#define SD15U "sd15-diffusers/unet/diffusion_pytorch_model.safetensors"
#define SD21U "sd21-diffusers/unet/diffusion_pytorch_model.safetensors"
#define SD15V "sd15-diffusers/vae/diffusion_pytorch_model.safetensors"
#define SD15T "sd15-diffusers/text_encoder/model.safetensors"
#define SD21T "sd21-diffusers/text_encoder/model.safetensors"
#define SD15S "sd15-single/v1-5-pruned.safetensors"
#define SD21S "sd21-single/v2-1_768-ema-pruned.safetensors"
#define B32 "clip-vit-b-32-openai/open_clip_model.safetensors"
#define RN50 "clip-rn50-openai/open_clip_model.safetensors"
#define H14 "openclip-vit-h-14-laion2b/open_clip_model.safetensors"
static const spot k_spots[] = {
    {SD21U, "conv_in.weight", ZS_F32, 4, {320, 4, 3, 3}},
    {SD21U, "down_blocks.0.attentions.0.proj_in.weight", ZS_F32, 2, {320, 320}},  // use_linear_projection
    {SD21U, "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight", ZS_F32, 2, {320, 1024}},
    {SD15U, "down_blocks.0.attentions.0.proj_in.weight", ZS_F32, 4, {320, 320, 1, 1}},
    {SD15U, "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight", ZS_F32, 2, {320, 768}},
    {SD15U, "mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj.weight", ZS_F32, 2, {10240, 1280}},
    {SD15U, "up_blocks.3.resnets.0.conv_shortcut.weight", ZS_F32, 4, {320, 960, 1, 1}},  // 640 + 320 skip
    {SD15U, "time_embedding.linear_1.weight", ZS_F32, 2, {1280, 320}},
    {SD15V, "encoder.mid_block.attentions.0.query.weight", ZS_F32, 2, {512, 512}},
    {SD15V, "quant_conv.weight", ZS_F32, 4, {8, 8, 1, 1}},
    {SD15V, "decoder.conv_out.weight", ZS_F32, 4, {3, 128, 3, 3}},
    {SD15T, "text_model.embeddings.token_embedding.weight", ZS_F32, 2, {49408, 768}},
    {SD15T, "text_model.embeddings.position_ids", ZS_I64, 2, {1, 77}},
    {SD15T, "text_model.encoder.layers.11.mlp.fc1.weight", ZS_F32, 2, {3072, 768}},
    {SD21T, "text_model.encoder.layers.22.self_attn.q_proj.weight", ZS_F32, 2, {1024, 1024}},
    {SD21T, "text_model.final_layer_norm.weight", ZS_F32, 1, {1024}},
    {SD15S, "model.diffusion_model.input_blocks.0.0.weight", ZS_F32, 4, {320, 4, 3, 3}},
    {SD15S, "model.diffusion_model.input_blocks.1.1.proj_in.weight", ZS_F32, 4, {320, 320, 1, 1}},
    {SD15S, "model.diffusion_model.output_blocks.2.1.conv.weight", ZS_F32, 4, {1280, 1280, 3, 3}},
    {SD15S, "model.diffusion_model.out.2.weight", ZS_F32, 4, {4, 320, 3, 3}},
    {SD15S, "model_ema.diffusion_modelinput_blocks00weight", ZS_F32, 4, {320, 4, 3, 3}},
    {SD15S, "model_ema.decay", ZS_F32, 0, {0}},
    {SD15S, "model_ema.num_updates", ZS_I32, 0, {0}},
    {SD15S, "alphas_cumprod", ZS_F32, 1, {1000}},
    {SD15S, "posterior_mean_coef2", ZS_F32, 1, {1000}},
    {SD15S, "first_stage_model.encoder.mid.attn_1.q.weight", ZS_F32, 4, {512, 512, 1, 1}},
    {SD15S, "first_stage_model.post_quant_conv.weight", ZS_F32, 4, {4, 4, 1, 1}},
    {SD15S, "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", ZS_F32, 2, {49408, 768}},
    {SD15S, "cond_stage_model.transformer.text_model.embeddings.position_ids", ZS_I64, 2, {1, 77}},
    {SD21S, "model.diffusion_model.input_blocks.1.1.proj_in.weight", ZS_F32, 2, {320, 320}},
    {SD21S, "model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight", ZS_F32, 2, {1280, 1024}},
    {SD21S, "cond_stage_model.model.transformer.resblocks.23.attn.in_proj_weight", ZS_F32, 2, {3072, 1024}},
    {SD21S, "cond_stage_model.model.text_projection", ZS_F32, 2, {1024, 1024}},
    {SD21S, "cond_stage_model.model.positional_embedding", ZS_F32, 2, {77, 1024}},
    {SD21S, "betas", ZS_F32, 1, {1000}},
    {B32, "visual.conv1.weight", ZS_F32, 4, {768, 3, 32, 32}},
    {B32, "visual.class_embedding", ZS_F32, 1, {768}},
    {B32, "visual.positional_embedding", ZS_F32, 2, {50, 768}},
    {B32, "visual.proj", ZS_F32, 2, {768, 512}},
    {B32, "token_embedding.weight", ZS_F32, 2, {49408, 512}},
    {B32, "text_projection", ZS_F32, 2, {512, 512}},
    {B32, "transformer.resblocks.11.attn.in_proj_weight", ZS_F32, 2, {1536, 512}},
    {B32, "logit_scale", ZS_F32, 0, {0}},
    {RN50, "visual.attnpool.positional_embedding", ZS_F32, 2, {50, 2048}},
    {RN50, "visual.attnpool.c_proj.weight", ZS_F32, 2, {1024, 2048}},
    {RN50, "visual.bn1.num_batches_tracked", ZS_I64, 0, {0}},
    {RN50, "text_projection", ZS_F32, 2, {512, 1024}},
    {H14, "token_embedding.weight", ZS_F32, 2, {49408, 1024}},
    {H14, "transformer.resblocks.23.mlp.c_fc.weight", ZS_F32, 2, {4096, 1024}},
    {H14, "text_projection", ZS_F32, 2, {1024, 1024}},
    {H14, "visual.conv1.weight", ZS_F32, 4, {1280, 3, 14, 14}},
};

TEST(layouts_spot_check_names_and_shapes) {
    zs_st *st = NULL;
    const char *open_file = NULL;
    for (size_t i = 0; i < sizeof k_spots / sizeof *k_spots; i++) {
        const spot *s = &k_spots[i];
        if (!open_file || strcmp(open_file, s->file)) {
            zs_st_close(st);
            CHECK_OK(open_layout(s->file, &st));
            open_file = s->file;
        }
        const zs_st_entry *e = zs_st_find(st, s->name);
        int ok = e && e->dtype == s->dtype && e->ndim == s->ndim;
        for (int d = 0; ok && d < s->ndim; d++) ok = e->shape[d] == s->shape[d];
        if (!ok) {
            char got[128] = "absent";
            if (e) {
                zs_tensor t = zs_tensor_make(NULL, e->dtype, ZS_CPU, e->ndim, e->shape);
                snprintf(got, sizeof got, "%s %s", zs_dtype_name(e->dtype), zs_shape_str(&t, (char[96]){0}, 96));
            }
            zs_st_close(st);
            CHECK(0, "%s: %s is %s", s->file, s->name, got);
        }
    }
    zs_st_close(st);
    return ZT_PASS;
}

// The SD 2.x text tower in both forms: 24 OpenCLIP blocks in the single file, 23 layers in
// the diffusers CLIPTextModel (the last block is dropped: SD 2 uses the penultimate layer).
TEST(layouts_sd21_text_depth_and_configs) {
    zs_st *st;
    CHECK_OK(open_layout(SD21S, &st));
    int blocks = 0;
    char name[128];
    for (int l = 0; l < 40; l++) {
        snprintf(name, sizeof name, "cond_stage_model.model.transformer.resblocks.%d.ln_1.weight", l);
        blocks += zs_st_find(st, name) != NULL;
    }
    zs_st_close(st);
    CHECK(blocks == 24, "SD 2.1 single file: %d OpenCLIP blocks", blocks);
    CHECK_OK(open_layout(SD21T, &st));
    int layers = 0;
    for (int l = 0; l < 40; l++) {
        snprintf(name, sizeof name, "text_model.encoder.layers.%d.layer_norm1.weight", l);
        layers += zs_st_find(st, name) != NULL;
    }
    zs_st_close(st);
    CHECK(layers == 23, "SD 2.1 text_encoder: %d layers", layers);
    // The configs next to the weights agree.
    static const struct { const char *path, *key; double want; } cfg[] = {
        {"layouts/sd21-diffusers/text_encoder/config.json", "num_hidden_layers", 23},
        {"layouts/sd21-diffusers/unet/config.json", "cross_attention_dim", 1024},
        {"layouts/sd15-diffusers/unet/config.json", "cross_attention_dim", 768},
        {"layouts/sd15-diffusers/vae/config.json", "latent_channels", 4},
    };
    for (size_t i = 0; i < sizeof cfg / sizeof *cfg; i++) {
        char p[512], buf[8192] = {0};
        FILE *f = fopen(zt_fixture_path(cfg[i].path, p, sizeof p), "r");
        CHECK(f, "open %s", p);
        size_t k = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[k] = 0;
        cJSON *j = cJSON_Parse(buf);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, cfg[i].key);
        int ok = cJSON_IsNumber(v) && v->valuedouble == cfg[i].want;
        cJSON_Delete(j);
        CHECK(ok, "%s: %s", cfg[i].path, cfg[i].key);
    }
    return ZT_PASS;
}
