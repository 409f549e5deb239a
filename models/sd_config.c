// diffusers UNet2DConditionModel / AutoencoderKL config.json parsing (see sd_config.h).
#include "models/sd_config.h"
#include "engine/json.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Fields: parsed (P), ignored because they do not change inference (I), or supported only
// at the default given as JSON text (D).
typedef struct {
    const char *key;
    char kind;
    const char *def;
} field;

static const field unet_fields[] = {
    {"_class_name", 'I', 0}, {"_diffusers_version", 'I', 0}, {"_name_or_path", 'I', 0}, {"_use_default_values", 'I', 0},
    {"sample_size", 'P', 0}, {"in_channels", 'P', 0}, {"out_channels", 'P', 0}, {"flip_sin_to_cos", 'P', 0},
    {"freq_shift", 'P', 0}, {"down_block_types", 'P', 0}, {"mid_block_type", 'P', 0}, {"up_block_types", 'P', 0},
    {"only_cross_attention", 'P', 0}, {"block_out_channels", 'P', 0}, {"layers_per_block", 'P', 0},
    {"norm_num_groups", 'P', 0}, {"norm_eps", 'P', 0}, {"cross_attention_dim", 'P', 0},
    {"transformer_layers_per_block", 'P', 0}, {"attention_head_dim", 'P', 0}, {"num_attention_heads", 'P', 0},
    {"use_linear_projection", 'P', 0}, {"upcast_attention", 'P', 0},
    {"dropout", 'I', 0}, {"addition_embed_type_num_heads", 'I', 0},
    {"center_input_sample", 'D', "false"}, {"downsample_padding", 'D', "1"}, {"mid_block_scale_factor", 'D', "1"},
    {"act_fn", 'D', "\"silu\""}, {"reverse_transformer_layers_per_block", 'D', "null"},
    {"encoder_hid_dim", 'D', "null"}, {"encoder_hid_dim_type", 'D', "null"}, {"dual_cross_attention", 'D', "false"},
    {"class_embed_type", 'D', "null"}, {"addition_embed_type", 'D', "null"}, {"addition_time_embed_dim", 'D', "null"},
    {"num_class_embeds", 'D', "null"}, {"resnet_time_scale_shift", 'D', "\"default\""},
    {"resnet_skip_time_act", 'D', "false"}, {"resnet_out_scale_factor", 'D', "1"},
    {"time_embedding_type", 'D', "\"positional\""}, {"time_embedding_dim", 'D', "null"},
    {"time_embedding_act_fn", 'D', "null"}, {"timestep_post_act", 'D', "null"}, {"time_cond_proj_dim", 'D', "null"},
    {"conv_in_kernel", 'D', "3"}, {"conv_out_kernel", 'D', "3"}, {"projection_class_embeddings_input_dim", 'D', "null"},
    {"attention_type", 'D', "\"default\""}, {"class_embeddings_concat", 'D', "false"},
    {"mid_block_only_cross_attention", 'D', "null"}, {"cross_attention_norm", 'D', "null"},
};

static const field vae_fields[] = {
    {"_class_name", 'I', 0}, {"_diffusers_version", 'I', 0}, {"_name_or_path", 'I', 0}, {"_use_default_values", 'I', 0},
    {"in_channels", 'P', 0}, {"out_channels", 'P', 0}, {"down_block_types", 'P', 0}, {"up_block_types", 'P', 0},
    {"block_out_channels", 'P', 0}, {"layers_per_block", 'P', 0}, {"latent_channels", 'P', 0},
    {"norm_num_groups", 'P', 0}, {"sample_size", 'P', 0}, {"scaling_factor", 'P', 0}, {"force_upcast", 'P', 0},
    {"mid_block_add_attention", 'P', 0},
    {"act_fn", 'D', "\"silu\""}, {"shift_factor", 'D', "null"}, {"latents_mean", 'D', "null"},
    {"latents_std", 'D', "null"}, {"use_quant_conv", 'D', "true"}, {"use_post_quant_conv", 'D', "true"},
};

static zs_status unsupported(const char *what, const char *key, const cJSON *v, const char *only) {
    char *s = cJSON_PrintUnformatted(v);
    zs_status st = ZS_ERR(ZS_EUNSUPPORTED, "%s: \"%s\" = %s: not supported (only %s)", what, key, s ? s : "?", only);
    free(s);
    return st;
}

static zs_status check_fields(const cJSON *root, const field *f, int n, const char *what, const char *cls) {
    for (const cJSON *it = root->child; it; it = it->next) {
        int k = 0;
        while (k < n && strcmp(f[k].key, it->string)) k++;
        if (k == n) return ZS_ERR(ZS_EUNSUPPORTED, "%s: \"%s\": unknown %s config field", what, it->string, cls);
        if (f[k].kind != 'D') continue;
        cJSON *d = cJSON_Parse(f[k].def);
        int same = d && cJSON_Compare(it, d, 1);
        cJSON_Delete(d);
        if (!same) return unsupported(what, it->string, it, f[k].def);
    }
    return ZS_OK;
}

static zs_status get_int(const cJSON *o, const char *key, int def, int *out, const char *what) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return *out = def, ZS_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 1e6)
        return unsupported(what, key, v, "a non-negative integer");
    *out = (int)v->valuedouble;
    return ZS_OK;
}

static zs_status get_bool(const cJSON *o, const char *key, int def, int *out, const char *what) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return *out = def, ZS_OK;
    if (!cJSON_IsBool(v)) return unsupported(what, key, v, "true / false");
    *out = cJSON_IsTrue(v);
    return ZS_OK;
}

static zs_status get_num(const cJSON *o, const char *key, double def, double *out, const char *what) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return *out = def, ZS_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return unsupported(what, key, v, "a number");
    *out = v->valuedouble;
    return ZS_OK;
}

// An int (replicated to n entries) or a list of n positive ints.
static zs_status get_int_or_list(const cJSON *o, const char *key, int n, int *out, int have_def, const char *what) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        if (have_def) return ZS_OK;
        return ZS_ERR(ZS_EFORMAT, "%s: \"%s\" missing", what, key);
    }
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 || v->valuedouble > 1e6)
            return unsupported(what, key, v, "positive integers");
        for (int i = 0; i < n; i++) out[i] = (int)v->valuedouble;
        return ZS_OK;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != n)
        return ZS_ERR(ZS_EFORMAT, "%s: \"%s\": expected an integer or a list of %d integers (one per block)", what, key, n);
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, i);
        if (!cJSON_IsNumber(e) || e->valuedouble != floor(e->valuedouble) || e->valuedouble < 1 || e->valuedouble > 1e6)
            return unsupported(what, key, v, "positive integers");
        out[i] = (int)e->valuedouble;
    }
    return ZS_OK;
}

// A list of block type names, each one of two accepted spellings (-> 1 / 0).
static zs_status get_types(const cJSON *o, const char *key, int n, const char *t1, const char *t0, int *out,
                           const char *what) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) return ZS_OK;  // caller pre-filled the diffusers default
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != n)
        return ZS_ERR(ZS_EFORMAT, "%s: \"%s\": expected a list of %d block types (one per block_out_channels entry)",
                      what, key, n);
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(v, i);
        if (cJSON_IsString(e) && t1 && !strcmp(e->valuestring, t1)) out[i] = 1;
        else if (cJSON_IsString(e) && !strcmp(e->valuestring, t0)) out[i] = 0;
        else {
            char only[160];
            snprintf(only, sizeof only, "%s%s%s", t0, t1 ? " / " : "", t1 ? t1 : "");
            return unsupported(what, key, v, only);
        }
    }
    return ZS_OK;
}

static zs_status get_channels(const cJSON *o, int *levels, int *ch, const char *what) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "block_out_channels");
    if (!v) return ZS_OK;
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
    if (n < 1 || n > ZS_SD_MAX_LEVELS) return unsupported(what, "block_out_channels", v, "a list of 1..8 integers");
    *levels = n;
    return get_int_or_list(o, "block_out_channels", n, ch, 0, what);
}

void zs_sd_unet_config_default(zs_sd_unet_config *c, int version) {
    static const int ch[] = {320, 640, 1280, 1280}, h2[] = {5, 10, 20, 20};
    memset(c, 0, sizeof *c);
    c->in_channels = c->out_channels = 4;
    c->levels = 4;
    for (int i = 0; i < 4; i++) {
        c->block_out_channels[i] = ch[i];
        c->down_attn[i] = i < 3;
        c->up_attn[i] = i > 0;
        c->heads[i] = version == 2 ? h2[i] : 8;
        c->transformer_layers[i] = 1;
    }
    c->layers_per_block = 2;
    c->cross_attention_dim = version == 2 ? 1024 : 768;
    c->use_linear_projection = c->upcast_attention = version == 2;
    c->norm_num_groups = 32;
    c->norm_eps = 1e-5;
    c->flip_sin_to_cos = 1;
    c->freq_shift = 0;
    c->sample_size = version == 2 ? 96 : 64;
    c->time_embed_dim = 4 * ch[0];
}

void zs_sd_vae_config_default(zs_sd_vae_config *c, int version) {
    static const int ch[] = {128, 256, 512, 512};
    memset(c, 0, sizeof *c);
    c->in_channels = c->out_channels = 3;
    c->levels = 4;
    memcpy(c->block_out_channels, ch, sizeof ch);
    c->layers_per_block = 2;
    c->latent_channels = 4;
    c->norm_num_groups = 32;
    c->sample_size = version == 2 ? 768 : 512;
    c->scaling_factor = 0.18215;
    c->force_upcast = 1;
    c->mid_block_add_attention = 1;
}

static zs_status groups_divide(const int *ch, int n, int g, const char *what) {
    if (g < 1) return ZS_ERR(ZS_EUNSUPPORTED, "%s: \"norm_num_groups\" = %d: must be positive", what, g);
    for (int i = 0; i < n; i++)
        if (ch[i] % g)
            return ZS_ERR(ZS_EINVAL, "%s: \"norm_num_groups\" = %d does not divide block_out_channels[%d] = %d", what,
                          g, i, ch[i]);
    return ZS_OK;
}

static zs_status unet_parse(zs_sd_unet_config *c, const cJSON *r, const char *w) {
    ZS_TRY(check_fields(r, unet_fields, (int)(sizeof unet_fields / sizeof unet_fields[0]), w, "UNet2DConditionModel"));
    // diffusers' constructor defaults (the SD 1.x shapes except the head counts)
    zs_sd_unet_config_default(c, 1);
    c->cross_attention_dim = 1280, c->sample_size = 0;
    for (int i = 0; i < ZS_SD_MAX_LEVELS; i++) c->heads[i] = 8, c->transformer_layers[i] = 1;
    ZS_TRY(get_int(r, "in_channels", 4, &c->in_channels, w));
    ZS_TRY(get_int(r, "out_channels", 4, &c->out_channels, w));
    ZS_TRY(get_channels(r, &c->levels, c->block_out_channels, w));
    int n = c->levels;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, "layers_per_block");
    if (v && !cJSON_IsNumber(v)) return unsupported(w, "layers_per_block", v, "one integer for every block");
    ZS_TRY(get_int(r, "layers_per_block", 2, &c->layers_per_block, w));
    if (c->layers_per_block < 1) return unsupported(w, "layers_per_block", v, "a positive integer");
    ZS_TRY(get_types(r, "down_block_types", n, "CrossAttnDownBlock2D", "DownBlock2D", c->down_attn, w));
    ZS_TRY(get_types(r, "up_block_types", n, "CrossAttnUpBlock2D", "UpBlock2D", c->up_attn, w));
    v = cJSON_GetObjectItemCaseSensitive(r, "mid_block_type");
    if (v && !(cJSON_IsString(v) && !strcmp(v->valuestring, "UNetMidBlock2DCrossAttn")))
        return unsupported(w, "mid_block_type", v, "\"UNetMidBlock2DCrossAttn\"");
    v = cJSON_GetObjectItemCaseSensitive(r, "only_cross_attention");
    if (v && !cJSON_IsFalse(v)) {
        int ok = cJSON_IsArray(v);
        for (const cJSON *e = ok ? v->child : NULL; e; e = e->next) ok &= cJSON_IsFalse(e);
        if (!ok) return unsupported(w, "only_cross_attention", v, "false");
    }
    // attention_head_dim holds head COUNTS (diffusers' legacy naming); num_attention_heads wins.
    const char *hk = cJSON_GetObjectItemCaseSensitive(r, "num_attention_heads") &&
                             !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(r, "num_attention_heads"))
                         ? "num_attention_heads"
                         : "attention_head_dim";
    ZS_TRY(get_int_or_list(r, hk, n, c->heads, 1, w));
    ZS_TRY(get_int_or_list(r, "transformer_layers_per_block", n, c->transformer_layers, 1, w));
    v = cJSON_GetObjectItemCaseSensitive(r, "cross_attention_dim");
    if (v && !cJSON_IsNumber(v)) return unsupported(w, "cross_attention_dim", v, "one integer");
    ZS_TRY(get_int(r, "cross_attention_dim", 1280, &c->cross_attention_dim, w));
    ZS_TRY(get_bool(r, "use_linear_projection", 0, &c->use_linear_projection, w));
    ZS_TRY(get_bool(r, "upcast_attention", 0, &c->upcast_attention, w));
    ZS_TRY(get_int(r, "norm_num_groups", 32, &c->norm_num_groups, w));
    ZS_TRY(get_num(r, "norm_eps", 1e-5, &c->norm_eps, w));
    ZS_TRY(get_bool(r, "flip_sin_to_cos", 1, &c->flip_sin_to_cos, w));
    ZS_TRY(get_int(r, "freq_shift", 0, &c->freq_shift, w));
    v = cJSON_GetObjectItemCaseSensitive(r, "sample_size");
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2 && cJSON_IsNumber(v->child)) c->sample_size = (int)v->child->valuedouble;
    else ZS_TRY(get_int(r, "sample_size", 0, &c->sample_size, w));
    c->time_embed_dim = 4 * c->block_out_channels[0];
    ZS_TRY(groups_divide(c->block_out_channels, n, c->norm_num_groups, w));
    for (int i = 0; i < n; i++) {
        int ch = c->block_out_channels[i];
        if ((c->down_attn[i] || (i == n - 1)) && ch % c->heads[i])
            return ZS_ERR(ZS_EINVAL, "%s: \"%s\"[%d] = %d heads do not divide block_out_channels[%d] = %d", w, hk, i,
                          c->heads[i], i, ch);
        if (c->up_attn[n - 1 - i] && ch % c->heads[i])
            return ZS_ERR(ZS_EINVAL, "%s: \"%s\"[%d] = %d heads do not divide block_out_channels[%d] = %d", w, hk, i,
                          c->heads[i], i, ch);
    }
    return ZS_OK;
}

static zs_status vae_parse(zs_sd_vae_config *c, const cJSON *r, const char *w) {
    ZS_TRY(check_fields(r, vae_fields, (int)(sizeof vae_fields / sizeof vae_fields[0]), w, "AutoencoderKL"));
    memset(c, 0, sizeof *c);  // AutoencoderKL's constructor defaults
    c->levels = 1, c->block_out_channels[0] = 64;
    ZS_TRY(get_int(r, "in_channels", 3, &c->in_channels, w));
    ZS_TRY(get_int(r, "out_channels", 3, &c->out_channels, w));
    ZS_TRY(get_channels(r, &c->levels, c->block_out_channels, w));
    int n = c->levels, t[ZS_SD_MAX_LEVELS];
    ZS_TRY(get_types(r, "down_block_types", n, NULL, "DownEncoderBlock2D", t, w));
    ZS_TRY(get_types(r, "up_block_types", n, NULL, "UpDecoderBlock2D", t, w));
    ZS_TRY(get_int(r, "layers_per_block", 1, &c->layers_per_block, w));
    if (c->layers_per_block < 1)
        return ZS_ERR(ZS_EUNSUPPORTED, "%s: \"layers_per_block\" = 0: must be positive", w);
    ZS_TRY(get_int(r, "latent_channels", 4, &c->latent_channels, w));
    ZS_TRY(get_int(r, "norm_num_groups", 32, &c->norm_num_groups, w));
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, "sample_size");
    if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2 && cJSON_IsNumber(v->child)) c->sample_size = (int)v->child->valuedouble;
    else ZS_TRY(get_int(r, "sample_size", 32, &c->sample_size, w));
    ZS_TRY(get_num(r, "scaling_factor", 0.18215, &c->scaling_factor, w));
    ZS_TRY(get_bool(r, "force_upcast", 1, &c->force_upcast, w));
    ZS_TRY(get_bool(r, "mid_block_add_attention", 1, &c->mid_block_add_attention, w));
    return groups_divide(c->block_out_channels, n, c->norm_num_groups, w);
}

zs_status zs_sd_unet_config_parse(zs_sd_unet_config *c, const char *json, const char *what) {
    cJSON *r;
    ZS_TRY(zs_json_parse_object(json, what, &r));
    zs_status s = unet_parse(c, r, what);
    cJSON_Delete(r);
    return s;
}

zs_status zs_sd_vae_config_parse(zs_sd_vae_config *c, const char *json, const char *what) {
    cJSON *r;
    ZS_TRY(zs_json_parse_object(json, what, &r));
    zs_status s = vae_parse(c, r, what);
    cJSON_Delete(r);
    return s;
}

zs_status zs_sd_unet_config_load(zs_sd_unet_config *c, const char *path) {
    cJSON *r;
    ZS_TRY(zs_json_read_object(path, &r));
    zs_status s = unet_parse(c, r, path);
    cJSON_Delete(r);
    return s;
}

zs_status zs_sd_vae_config_load(zs_sd_vae_config *c, const char *path) {
    cJSON *r;
    ZS_TRY(zs_json_read_object(path, &r));
    zs_status s = vae_parse(c, r, path);
    cJSON_Delete(r);
    return s;
}
