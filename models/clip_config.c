// CLIP configs: from open_clip_config.json, from transformers' config.json, and from tensor
// shapes (bare OpenAI files, SD single files) the way OpenAI's build_model infers them.
// Fields a config may carry that this engine does not implement are errors naming the field.
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/json.h"
#include "models/clip_internal.h"

// ---- open_clip --------------------------------------------------------------------------
// Fields of open_clip's CLIPTextCfg / CLIPVisionCfg / model config: parsed (P), ignored
// because they do not change the computation (I), or supported only at their default (D:
// null, false, 0, or the string given).
typedef struct {
    const char *key;
    char kind;
    const char *def;
} field;

static const field text_fields[] = {
    {"context_length", 'P', 0}, {"vocab_size", 'P', 0}, {"width", 'P', 0}, {"heads", 'P', 0}, {"layers", 'P', 0},
    {"mlp_ratio", 'P', 0}, {"pool_type", 'P', 0}, {"eos_id", 'P', 0}, {"proj_type", 'P', 0},
    {"hf_tokenizer_name", 'I', 0}, {"tokenizer_mode", 'I', 0}, {"tokenizer_kwargs", 'I', 0}, {"pad_id", 'I', 0},
    {"output_tokens", 'I', 0}, {"hf_model_pretrained", 'I', 0}, {"hf_proj_type", 'I', 0}, {"hf_pooler_type", 'I', 0},
    {"ls_init_value", 'D', 0}, {"embed_cls", 'D', 0}, {"no_causal_mask", 'D', 0}, {"final_ln_after_pool", 'D', 0},
    {"proj_bias", 'D', 0}, {"act_kwargs", 'D', 0}, {"norm_kwargs", 'D', 0}, {"block_type", 'D', "default"},
    {"qk_norm", 'D', 0}, {"scaled_cosine_attn", 'D', 0}, {"scale_heads", 'D', 0}, {"scale_attn_inner", 'D', 0},
    {"scale_attn", 'D', 0}, {"scale_fc", 'D', 0}, {"hf_model_name", 'D', 0},
};
static const field vision_fields[] = {
    {"layers", 'P', 0}, {"width", 'P', 0}, {"head_width", 'P', 0}, {"mlp_ratio", 'P', 0}, {"patch_size", 'P', 0},
    {"image_size", 'P', 0}, {"output_tokens", 'I', 0}, {"attn_pooler_queries", 'I', 0}, {"attn_pooler_heads", 'I', 0},
    {"timm_model_pretrained", 'I', 0}, {"timm_pool", 'I', 0}, {"timm_proj", 'I', 0}, {"timm_proj_bias", 'I', 0},
    {"timm_drop", 'I', 0}, {"timm_drop_path", 'I', 0},
    {"ls_init_value", 'D', 0}, {"patch_dropout", 'D', 0}, {"attentional_pool", 'D', 0}, {"no_ln_pre", 'D', 0},
    {"pos_embed_type", 'D', "learnable"}, {"final_ln_after_pool", 'D', 0}, {"pool_type", 'D', "tok"},
    {"act_kwargs", 'D', 0}, {"norm_kwargs", 'D', 0}, {"block_type", 'D', "default"}, {"qk_norm", 'D', 0},
    {"scaled_cosine_attn", 'D', 0}, {"scale_heads", 'D', 0}, {"scale_attn_inner", 'D', 0}, {"scale_attn", 'D', 0},
    {"scale_fc", 'D', 0}, {"timm_model_name", 'D', 0},
};
static const field model_fields[] = {
    {"embed_dim", 'P', 0}, {"quick_gelu", 'P', 0}, {"vision_cfg", 'P', 0}, {"text_cfg", 'P', 0},
    {"cast_dtype", 'I', 0}, {"init_logit_scale", 'I', 0}, {"output_dict", 'I', 0},
    {"init_logit_bias", 'D', 0}, {"custom_text", 'D', 0}, {"nonscalar_logit_scale", 'D', 0}, {"multimodal_cfg", 'D', 0},
};

static zs_status check_fields(const cJSON *obj, const field *f, int n, const char *where) {
    for (const cJSON *it = obj->child; it; it = it->next) {
        int k = 0;
        while (k < n && strcmp(f[k].key, it->string)) k++;
        if (k == n) return ZS_ERR(ZS_EUNSUPPORTED, "%s.%s: unknown open_clip config field", where, it->string);
        if (f[k].kind != 'D' || cJSON_IsNull(it) || cJSON_IsFalse(it)) continue;
        if (cJSON_IsNumber(it) && it->valuedouble == 0) continue;
        if (f[k].def && cJSON_IsString(it) && !strcmp(it->valuestring, f[k].def)) continue;
        char *v = cJSON_PrintUnformatted(it);
        zs_status s = ZS_ERR(ZS_EUNSUPPORTED, "%s.%s = %s: not supported (only its default %s)", where, it->string,
                             v ? v : "?", f[k].def ? f[k].def : "null / false / 0");
        free(v);
        return s;
    }
    return ZS_OK;
}

static zs_status get_int(const cJSON *o, const char *key, int def, int *out, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return *out = def, ZS_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 0 || v->valuedouble > 1e9)
        return ZS_ERR(ZS_EINVAL, "%s.%s: expected a non-negative integer", where, key);
    *out = (int)v->valuedouble;
    return ZS_OK;
}

static zs_status get_num(const cJSON *o, const char *key, double def, double *out, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) return *out = def, ZS_OK;
    if (!cJSON_IsNumber(v)) return ZS_ERR(ZS_EINVAL, "%s.%s: expected a number", where, key);
    *out = v->valuedouble;
    return ZS_OK;
}

static const char *get_str(const cJSON *o, const char *key, const char *def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : def;
}

zs_status zs_clip_config_open_clip(zs_clip *m, const cJSON *root, const char *path) {
    const cJSON *mc = cJSON_GetObjectItemCaseSensitive(root, "model_cfg");
    if (!cJSON_IsObject(mc)) return ZS_ERR(ZS_EFORMAT, "%s: no model_cfg object", path);
    ZS_TRY(check_fields(mc, model_fields, (int)(sizeof model_fields / sizeof *model_fields), "model_cfg"));
    int embed;
    ZS_TRY(get_int(mc, "embed_dim", 0, &embed, "model_cfg"));
    const cJSON *qg = cJSON_GetObjectItemCaseSensitive(mc, "quick_gelu");
    zs_act act = cJSON_IsTrue(qg) ? ZS_ACT_QUICKGELU : ZS_ACT_GELU;
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(mc, "text_cfg"), *vc = cJSON_GetObjectItemCaseSensitive(mc, "vision_cfg");
    if (cJSON_IsObject(tc)) {
        zs_clip_text_cfg *t = &m->text;
        ZS_TRY(check_fields(tc, text_fields, (int)(sizeof text_fields / sizeof *text_fields), "model_cfg.text_cfg"));
        double ratio;
        ZS_TRY(get_int(tc, "context_length", 77, &t->n_pos, "text_cfg"));
        ZS_TRY(get_int(tc, "vocab_size", 49408, &t->vocab, "text_cfg"));
        ZS_TRY(get_int(tc, "width", 512, &t->width, "text_cfg"));
        ZS_TRY(get_int(tc, "heads", 8, &t->heads, "text_cfg"));
        ZS_TRY(get_int(tc, "layers", 12, &t->layers, "text_cfg"));
        ZS_TRY(get_num(tc, "mlp_ratio", 4.0, &ratio, "text_cfg"));
        ZS_TRY(get_int(tc, "eos_id", 2, &t->eos_id, "text_cfg"));
        t->mlp = (int)(t->width * ratio);
        const char *pool = get_str(tc, "pool_type", "argmax"), *proj = get_str(tc, "proj_type", "linear");
        if (!strcmp(pool, "argmax")) t->pool = ZS_POOL_ARGMAX;
        else if (!strcmp(pool, "eos")) t->pool = ZS_POOL_EOS;
        else return ZS_ERR(ZS_EUNSUPPORTED, "model_cfg.text_cfg.pool_type = \"%s\": not supported (argmax, eos)", pool);
        if (strcmp(proj, "linear") && strcmp(proj, "none"))
            return ZS_ERR(ZS_EUNSUPPORTED, "model_cfg.text_cfg.proj_type = \"%s\": not supported (linear, none)", proj);
        t->embed = strcmp(proj, "none") ? embed : 0;
        t->act = act, t->eps = 1e-5f, t->out_layer = t->layers;
        m->towers |= ZS_CLIP_TEXT;
    }
    if (cJSON_IsObject(vc)) {
        zs_clip_vision_cfg *v = &m->vision;
        const cJSON *layers = cJSON_GetObjectItemCaseSensitive(vc, "layers");
        if (cJSON_IsArray(layers)) {  // ModifiedResNet: heads = width * 32 // head_width (open_clip)
            zs_clip_resnet_cfg *r = &m->resnet;
            ZS_TRY(check_fields(vc, vision_fields, (int)(sizeof vision_fields / sizeof *vision_fields), "model_cfg.vision_cfg"));
            if (cJSON_GetArraySize(layers) != 4)
                return ZS_ERR(ZS_EINVAL, "model_cfg.vision_cfg.layers: a ModifiedResNet needs 4 stage depths, got %d",
                              cJSON_GetArraySize(layers));
            for (int i = 0; i < 4; i++) {
                const cJSON *it = cJSON_GetArrayItem(layers, i);
                if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) || it->valuedouble < 1 || it->valuedouble > 1000)
                    return ZS_ERR(ZS_EINVAL, "model_cfg.vision_cfg.layers[%d]: expected a positive integer", i);
                r->layers[i] = (int)it->valuedouble;
            }
            int head_width;
            ZS_TRY(get_int(vc, "width", 64, &r->width, "vision_cfg"));
            ZS_TRY(get_int(vc, "head_width", 64, &head_width, "vision_cfg"));
            const cJSON *is = cJSON_GetObjectItemCaseSensitive(vc, "image_size");
            if (cJSON_IsArray(is) && cJSON_GetArraySize(is) == 2 && cJSON_GetArrayItem(is, 0)->valuedouble == cJSON_GetArrayItem(is, 1)->valuedouble)
                r->image = (int)cJSON_GetArrayItem(is, 0)->valuedouble;
            else if (cJSON_IsArray(is))
                return ZS_ERR(ZS_EUNSUPPORTED, "model_cfg.vision_cfg.image_size: a ModifiedResNet takes a square image");
            else
                ZS_TRY(get_int(vc, "image_size", 224, &r->image, "vision_cfg"));
            if (head_width < 1 || (r->width * 32) % head_width)
                return ZS_ERR(ZS_EINVAL, "model_cfg.vision_cfg.head_width = %d does not divide the feature dim %d", head_width, r->width * 32);
            r->heads = r->width * 32 / head_width, r->embed = embed, r->channels = 3, r->eps = 1e-5f;
            m->vision_resnet = 1;
        } else {
            ZS_TRY(check_fields(vc, vision_fields, (int)(sizeof vision_fields / sizeof *vision_fields), "model_cfg.vision_cfg"));
            int head_width;
            double ratio;
            ZS_TRY(get_int(vc, "layers", 12, &v->layers, "vision_cfg"));
            ZS_TRY(get_int(vc, "width", 768, &v->width, "vision_cfg"));
            ZS_TRY(get_int(vc, "head_width", 64, &head_width, "vision_cfg"));
            ZS_TRY(get_num(vc, "mlp_ratio", 4.0, &ratio, "vision_cfg"));
            ZS_TRY(get_int(vc, "patch_size", 16, &v->patch, "vision_cfg"));
            const cJSON *is = cJSON_GetObjectItemCaseSensitive(vc, "image_size");
            if (cJSON_IsArray(is) && cJSON_GetArraySize(is) == 2) {  // (height, width)
                v->image_h = (int)cJSON_GetArrayItem(is, 0)->valuedouble;
                v->image_w = (int)cJSON_GetArrayItem(is, 1)->valuedouble;
            } else {
                ZS_TRY(get_int(vc, "image_size", 224, &v->image_h, "vision_cfg"));
                v->image_w = v->image_h;
            }
            if (head_width < 1 || v->width % head_width)
                return ZS_ERR(ZS_EINVAL, "model_cfg.vision_cfg.head_width = %d does not divide width %d", head_width, v->width);
            v->heads = v->width / head_width, v->mlp = (int)(v->width * ratio), v->channels = 3;
            v->embed = embed, v->act = act, v->eps = 1e-5f;
        }
        m->towers |= ZS_CLIP_VISION;
    }
    return ZS_OK;
}

// ---- transformers -----------------------------------------------------------------------
static zs_status hf_act(const cJSON *o, const char *where, zs_act *act) {
    const char *a = get_str(o, "hidden_act", "quick_gelu");
    if (!strcmp(a, "quick_gelu")) *act = ZS_ACT_QUICKGELU;
    else if (!strcmp(a, "gelu")) *act = ZS_ACT_GELU;
    else if (!strcmp(a, "gelu_new") || !strcmp(a, "gelu_pytorch_tanh")) *act = ZS_ACT_GELU_TANH;
    else return ZS_ERR(ZS_EUNSUPPORTED, "%s.hidden_act = \"%s\": not supported (quick_gelu, gelu, gelu_new, gelu_pytorch_tanh)", where, a);
    return ZS_OK;
}

static zs_status hf_text(zs_clip_text_cfg *t, const cJSON *o, const char *where, int embed) {
    double eps;
    ZS_TRY(get_int(o, "vocab_size", 49408, &t->vocab, where));
    ZS_TRY(get_int(o, "hidden_size", 512, &t->width, where));
    ZS_TRY(get_int(o, "intermediate_size", 2048, &t->mlp, where));
    ZS_TRY(get_int(o, "num_hidden_layers", 12, &t->layers, where));
    ZS_TRY(get_int(o, "num_attention_heads", 8, &t->heads, where));
    ZS_TRY(get_int(o, "max_position_embeddings", 77, &t->n_pos, where));
    ZS_TRY(get_num(o, "layer_norm_eps", 1e-5, &eps, where));
    ZS_TRY(hf_act(o, where, &t->act));
    const cJSON *eos = cJSON_GetObjectItemCaseSensitive(o, "eos_token_id");
    if (eos && !cJSON_IsNull(eos) && !cJSON_IsNumber(eos))
        return ZS_ERR(ZS_EUNSUPPORTED, "%s.eos_token_id: only a single integer is supported", where);
    t->eos_id = eos && cJSON_IsNumber(eos) ? (int)eos->valuedouble : 49407;
    // transformers' rule: eos_token_id == 2 marks legacy configs, pooled at argmax(ids)
    t->pool = t->eos_id == 2 ? ZS_POOL_ARGMAX : ZS_POOL_EOS;
    t->eps = (float)eps, t->embed = embed, t->out_layer = t->layers;
    return ZS_OK;
}

static zs_status hf_vision(zs_clip_vision_cfg *v, const cJSON *o, const char *where, int embed) {
    double eps;
    ZS_TRY(get_int(o, "hidden_size", 768, &v->width, where));
    ZS_TRY(get_int(o, "intermediate_size", 3072, &v->mlp, where));
    ZS_TRY(get_int(o, "num_hidden_layers", 12, &v->layers, where));
    ZS_TRY(get_int(o, "num_attention_heads", 12, &v->heads, where));
    ZS_TRY(get_int(o, "num_channels", 3, &v->channels, where));
    ZS_TRY(get_int(o, "image_size", 224, &v->image_h, where));
    ZS_TRY(get_int(o, "patch_size", 32, &v->patch, where));
    ZS_TRY(get_num(o, "layer_norm_eps", 1e-5, &eps, where));
    ZS_TRY(hf_act(o, where, &v->act));
    v->image_w = v->image_h, v->eps = (float)eps, v->embed = embed;
    return ZS_OK;
}

zs_status zs_clip_config_hf(zs_clip *m, const cJSON *root, const char *path) {
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(root, "architectures");
    const char *a = cJSON_IsArray(arch) && cJSON_IsString(cJSON_GetArrayItem(arch, 0)) ? cJSON_GetArrayItem(arch, 0)->valuestring : NULL;
    const char *mt = get_str(root, "model_type", "");
    if (!a) a = !strcmp(mt, "clip") ? "CLIPModel" : !strcmp(mt, "clip_text_model") ? "CLIPTextModel"
                : !strcmp(mt, "clip_vision_model") ? "CLIPVisionModel" : "";
    int proj;
    ZS_TRY(get_int(root, "projection_dim", 512, &proj, "config"));
    snprintf(m->source, sizeof m->source, "transformers %s", a);
    if (!strcmp(a, "CLIPModel")) {
        const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, "text_config"), *vc = cJSON_GetObjectItemCaseSensitive(root, "vision_config");
        static const cJSON empty;
        ZS_TRY(hf_text(&m->text, tc ? tc : &empty, "config.text_config", proj));
        ZS_TRY(hf_vision(&m->vision, vc ? vc : &empty, "config.vision_config", proj));
        m->towers = ZS_CLIP_TEXT | ZS_CLIP_VISION, m->has_logit_scale = 1;
    } else if (!strcmp(a, "CLIPTextModel") || !strcmp(a, "CLIPTextModelWithProjection")) {
        ZS_TRY(hf_text(&m->text, root, "config", strstr(a, "Projection") ? proj : 0));
        m->towers = ZS_CLIP_TEXT;
    } else if (!strcmp(a, "CLIPVisionModel") || !strcmp(a, "CLIPVisionModelWithProjection")) {
        ZS_TRY(hf_vision(&m->vision, root, "config", strstr(a, "Projection") ? proj : 0));
        m->towers = ZS_CLIP_VISION;
    } else {
        return ZS_ERR(ZS_EUNSUPPORTED, "%s: architectures = \"%s\" (model_type \"%s\"): not a supported CLIP class", path, a, mt);
    }
    return ZS_OK;
}

// ---- from tensor shapes (no config) ------------------------------------------------------
static const zs_st_entry *find(const zs_st *st, const char *prefix, const char *rel) {
    char n[256];
    snprintf(n, sizeof n, "%s%s", prefix, rel);
    return zs_st_find(st, n);
}

// Number of layers: 1 + the largest index matching the pattern.
static int count_layers(const zs_st *st, const char *prefix, const char *pattern) {
    int n = 0, plen = (int)strlen(prefix);
    for (int i = 0; i < zs_st_count(st); i++) {
        const zs_st_entry *e = zs_st_at(st, i);
        int l;
        if (!strncmp(e->name, prefix, (size_t)plen) && zs_clip_name_match(pattern, e->name + plen, &l) && l + 1 > n) n = l + 1;
    }
    return n;
}

static zs_status need(const zs_st_entry *e, const char *prefix, const char *rel, int ndim) {
    if (!e) return ZS_ERR(ZS_EFORMAT, "missing tensor %s%s (needed to infer the config)", prefix, rel);
    if (e->ndim != ndim) return ZS_ERR(ZS_EFORMAT, "tensor %s%s has %d dims, expected %d", prefix, rel, e->ndim, ndim);
    return ZS_OK;
}

zs_status zs_clip_config_shapes(zs_clip *m, const zs_st *st, const char *prefix, int hf_names, zs_act act, int text_heads,
                                int vision_heads) {
    const char *tok = hf_names ? "text_model.embeddings.token_embedding.weight" : "token_embedding.weight";
    const char *pos = hf_names ? "text_model.embeddings.position_embedding.weight" : "positional_embedding";
    const char *fc = hf_names ? "text_model.encoder.layers.0.mlp.fc1.weight" : "transformer.resblocks.0.mlp.c_fc.weight";
    const char *layer = hf_names ? "text_model.encoder.layers.%d.layer_norm1.weight" : "transformer.resblocks.%d.ln_1.weight";
    const char *proj = hf_names ? "text_projection.weight" : "text_projection";
    const zs_st_entry *e;
    if (find(st, prefix, tok)) {
        zs_clip_text_cfg *t = &m->text;
        ZS_TRY(need(e = find(st, prefix, tok), prefix, tok, 2));
        t->vocab = (int)e->shape[0], t->width = (int)e->shape[1];
        ZS_TRY(need(e = find(st, prefix, pos), prefix, pos, 2));
        t->n_pos = (int)e->shape[0];
        ZS_TRY(need(e = find(st, prefix, fc), prefix, fc, 2));
        t->mlp = (int)e->shape[0];
        t->layers = count_layers(st, prefix, layer);
        e = find(st, prefix, proj);
        t->embed = e && e->ndim == 2 ? (int)e->shape[hf_names ? 0 : 1] : 0;
        t->heads = text_heads ? text_heads : t->width / 64;
        t->act = act, t->eps = 1e-5f, t->pool = ZS_POOL_ARGMAX, t->out_layer = t->layers;
        m->towers |= ZS_CLIP_TEXT;
    }
    if (!hf_names && find(st, prefix, "visual.layer1.0.conv1.weight")) {  // ModifiedResNet (OpenAI build_model)
        zs_clip_resnet_cfg *r = &m->resnet;
        for (int s = 0; s < 4; s++) {
            char pat[64];
            snprintf(pat, sizeof pat, "visual.layer%d.%%d.conv1.weight", s + 1);
            r->layers[s] = count_layers(st, prefix, pat);
        }
        ZS_TRY(need(e = find(st, prefix, "visual.layer1.0.conv1.weight"), prefix, "visual.layer1.0.conv1.weight", 4));
        r->width = (int)e->shape[0];
        ZS_TRY(need(e = find(st, prefix, "visual.conv1.weight"), prefix, "visual.conv1.weight", 4));
        r->channels = (int)e->shape[1];
        ZS_TRY(need(e = find(st, prefix, "visual.attnpool.c_proj.weight"), prefix, "visual.attnpool.c_proj.weight", 2));
        r->embed = (int)e->shape[0];
        ZS_TRY(need(e = find(st, prefix, "visual.attnpool.positional_embedding"), prefix, "visual.attnpool.positional_embedding", 2));
        r->image = (int)lround(sqrt((double)(e->shape[0] - 1))) * 32;
        r->heads = vision_heads ? vision_heads : r->width * 32 / 64;
        r->eps = 1e-5f;
        m->vision_resnet = 1, m->towers |= ZS_CLIP_VISION;
    } else if (!hf_names && find(st, prefix, "visual.conv1.weight")) {
        zs_clip_vision_cfg *v = &m->vision;
        ZS_TRY(need(e = find(st, prefix, "visual.conv1.weight"), prefix, "visual.conv1.weight", 4));
        v->width = (int)e->shape[0], v->channels = (int)e->shape[1], v->patch = (int)e->shape[3];
        ZS_TRY(need(e = find(st, prefix, "visual.positional_embedding"), prefix, "visual.positional_embedding", 2));
        int g = (int)lround(sqrt((double)(e->shape[0] - 1)));
        v->image_h = v->image_w = g * v->patch;
        ZS_TRY(need(e = find(st, prefix, "visual.transformer.resblocks.0.mlp.c_fc.weight"), prefix,
                    "visual.transformer.resblocks.0.mlp.c_fc.weight", 2));
        v->mlp = (int)e->shape[0];
        v->layers = count_layers(st, prefix, "visual.transformer.resblocks.%d.ln_1.weight");
        e = find(st, prefix, "visual.proj");
        v->embed = e && e->ndim == 2 ? (int)e->shape[1] : 0;
        v->heads = vision_heads ? vision_heads : v->width / 64;
        v->act = act, v->eps = 1e-5f;
        m->towers |= ZS_CLIP_VISION;
    }
    if (!m->towers) return ZS_ERR(ZS_EFORMAT, "no CLIP text or vision tower found under prefix \"%s\"", prefix);
    return ZS_OK;
}
