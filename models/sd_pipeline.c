// Stable Diffusion pipeline: opening a model (UNet, VAE, text encoder, tokenizer, scheduler
// config, the defaults of single files), prompts to embeddings, images to pixels (see
// models/sd_pipeline.h; sampling and its gradient: models/sd_sample.c).
#include "models/sd_pipeline.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "engine/backend.h"
#include "engine/json.h"

zs_sd_pipe_opts zs_sd_pipe_default_opts(void) {
    zs_sd_pipe_opts o = {NULL, NULL, NULL, -1, 0};
    return o;
}

static int is_dir(const char *p) {
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}
static int is_file(const char *p) {
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static void note(zs_sd_pipe *p, const char *fmt, ...) ZS_PRINTF(2, 3);
static void note(zs_sd_pipe *p, const char *fmt, ...) {
    size_t n = strlen(p->notes);
    va_list ap;
    va_start(ap, fmt);
    if (n < sizeof p->notes) vsnprintf(p->notes + n, sizeof p->notes - n, fmt, ap);
    va_end(ap);
}

// num_attention_heads of <dir>/text_encoder/config.json (0 when absent): single files of
// models whose width is not a multiple of 64 need it.
static int text_heads_of(const char *dir) {
    char path[1100];
    cJSON *j = NULL;
    snprintf(path, sizeof path, "%s/text_encoder/config.json", dir);
    if (!is_file(path) || zs_json_read_object(path, &j)) return 0;
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "num_attention_heads");
    int r = cJSON_IsNumber(h) ? h->valueint : 0;
    cJSON_Delete(j);
    return r;
}

static int has_prefix_unused(const zs_sd_plan *pl, const char *prefix) {
    for (int i = 0; i < pl->n_unused; i++)
        if (!strncmp(pl->unused[i], prefix, strlen(prefix))) return 1;
    return 0;
}

static zs_status open_text(zs_sd_pipe *p, const zs_sd_plan *pl, const char *path, const zs_sd_pipe_opts *o) {
    char q[1100];
    zs_clip_opts co = zs_clip_default_opts();
    co.device = p->dev, co.dtype = p->dt, co.towers = ZS_CLIP_TEXT;
    const char *cfgdir = p->single_file ? o->config_dir : path;
    if (!p->single_file) {
        snprintf(q, sizeof q, "%s/text_encoder", path);
        if (is_dir(q)) ZS_TRY(zs_clip_load(&p->text, q, &co));
        else note(p, "no text_encoder/: prompts need given embeddings; ");
    } else if (has_prefix_unused(pl, "cond_stage_model.")) {
        if (cfgdir) co.text_heads = text_heads_of(cfgdir);
        ZS_TRY(zs_clip_load(&p->text, path, &co));
    } else {
        note(p, "no cond_stage_model.* in the file: prompts need given embeddings; ");
    }
    if (p->text) {
        note(p, "text encoder: %s, %d layers of width %d, tokens from layer %d; ", p->text->source,
             p->text->text.layers, p->text->text.width, p->text->text.out_layer);
        if (p->text->text.width != p->unet_ctx)
            return ZS_ERR(ZS_EFORMAT, "%s: text encoder width %d differs from the UNet's cross_attention_dim %d", path,
                          p->text->text.width, p->unet_ctx);
    }
    snprintf(q, sizeof q, "%s/tokenizer", cfgdir ? cfgdir : "");
    if (cfgdir && is_dir(q)) {
        ZS_TRY(zs_tok_load_hf_dir(q, &p->tok));
        p->pad_id = zs_tok_pad(p->tok);
        note(p, "tokenizer: %s (pad id %d); ", q, (int)p->pad_id);
    } else if (p->single_file) {
        ZS_TRY(zs_tok_load_builtin(&p->tok));
        zs_tok_set_mode(p->tok, ZS_TOK_HF);
        p->pad_id = p->version == 2 ? 0 : zs_tok_eot(p->tok);  // "!" (SD 2.x) or <|endoftext|>
        note(p, "tokenizer: built-in CLIP vocabulary, padded with %s; ", p->version == 2 ? "\"!\"" : "<|endoftext|>");
    } else {
        note(p, "no tokenizer/: prompts need given embeddings; ");
    }
    if (p->tok && p->text && zs_tok_vocab_size(p->tok) > p->text->text.vocab)
        return ZS_ERR(ZS_EFORMAT, "%s: the tokenizer has %d tokens but the text encoder only %d rows", path,
                      (int)zs_tok_vocab_size(p->tok), p->text->text.vocab);
    return ZS_OK;
}

zs_status zs_sd_pipe_open(zs_sd_pipe **out, const char *path, const zs_sd_pipe_opts *o, zs_device dev, zs_dtype dt) {
    zs_sd_pipe_opts def = zs_sd_pipe_default_opts();
    if (!o) o = &def;
    *out = NULL;
    zs_sd_pipe *p = calloc(1, sizeof *p);
    if (!p) return ZS_ERR(ZS_ENOMEM, "sd pipeline");
    p->dev = dev, p->dt = dt;
    snprintf(p->path, sizeof p->path, "%s", path);
    zs_sd_plan *pl = NULL;
    zs_sd_plan_opts po = {o->config_dir, 0};
    zs_status s = zs_sd_plan_open(&pl, path, &po);
    if (!s) {
        p->version = pl->version, p->single_file = pl->single_file, p->unet_ctx = pl->unet.cross_attention_dim;
        note(p, "%s", pl->notes);
        if (o->upcast_attention >= 0) pl->unet.upcast_attention = o->upcast_attention;
        s = zs_sd_unet_create(&p->unet, &pl->unet, dev, dt);
    }
    if (!s) s = zs_sd_unet_load(p->unet, pl);
    // diffusers runs an fp16 pipeline's VAE in fp32 when its config says force_upcast (SD's
    // VAE overflows fp16); bf16 has fp32's range and needs no upcast.
    zs_dtype vdt = dt == ZS_F16 && pl && pl->vae.force_upcast ? ZS_F32 : dt;
    if (!s && vdt != dt) note(p, "VAE in F32 (force_upcast); ");
    if (!s) s = zs_sd_vae_init(&p->vae, &pl->vae, dev, vdt);
    if (!s) s = zs_sd_vae_load(&p->vae, pl);
    if (!s && !o->no_text) s = open_text(p, pl, path, o);
    if (!s) {
        p->vae_factor = 1 << (pl->vae.levels - 1);
        p->default_size = pl->unet.sample_size * p->vae_factor;
        char q[1100];
        const char *dir = p->single_file ? o->config_dir : path;
        snprintf(q, sizeof q, "%s/scheduler/scheduler_config.json", dir ? dir : "");
        if (o->scheduler_config) snprintf(p->sched_path, sizeof p->sched_path, "%s", o->scheduler_config);
        else if (dir && is_file(q)) snprintf(p->sched_path, sizeof p->sched_path, "%s", q);
        const char *pred = o->prediction_type;
        if (!pred && !p->sched_path[0]) pred = p->version == 2 ? "v_prediction" : "epsilon";
        if (pred) {
            zs_pred_type t;
            s = zs_pred_type_parse(pred, &t);
            snprintf(p->pred, sizeof p->pred, "%s", pred);
        }
        if (p->sched_path[0]) note(p, "scheduler: %s; ", p->sched_path);
        else note(p, "scheduler: SD %d.x defaults (scaled_linear 0.00085..0.012, steps_offset 1); ", p->version);
        if (p->pred[0]) note(p, "prediction type: %s%s; ", p->pred, o->prediction_type ? " (given)" : " (default of the version)");
    }
    zs_sd_plan_free(pl);
    if (s) {
        zs_sd_pipe_free(p);
        return s;
    }
    *out = p;
    return ZS_OK;
}

void zs_sd_pipe_free(zs_sd_pipe *p) {
    if (!p) return;
    zs_sd_unet_free(p->unet);
    zs_sd_vae_free(&p->vae);
    zs_clip_free(p->text);
    zs_tok_free(p->tok);
    free(p);
}

int zs_sd_pipe_ctx_dim(const zs_sd_pipe *p) { return p->unet_ctx; }

zs_status zs_sd_pipe_sched(const zs_sd_pipe *p, zs_sampler sampler, zs_sched *s) {
    const char *pred = p->pred[0] ? p->pred : NULL;
    if (p->sched_path[0]) return zs_sched_init(s, sampler, p->sched_path, pred);
    zs_sched_config c;  // the SD 1.x / 2.x scheduler_config.json values
    zs_sched_config_default(&c, sampler);
    c.num_train_timesteps = 1000;
    c.beta_start = 0.00085, c.beta_end = 0.012, c.beta_schedule = ZS_BETAS_SCALED_LINEAR;
    c.steps_offset = 1, c.clip_sample = 0, c.set_alpha_to_one = 0;
    if (pred) ZS_TRY(zs_pred_type_parse(pred, &c.prediction_type));
    return zs_sched_init_config(s, sampler, &c);
}

// ---- text ------------------------------------------------------------------------------------
zs_status zs_sd_pipe_tokenize(const zs_sd_pipe *p, const char *const *texts, int n, int32_t *ids) {
    if (!p->tok) return ZS_ERR(ZS_EINVAL, "%s: the model has no tokenizer (give embeddings instead)", p->path);
    for (int i = 0; i < n; i++) {
        int eot = 0;
        int32_t *row = ids + (size_t)i * ZS_CLIP_CONTEXT;
        ZS_TRY(zs_tok_encode_padded(p->tok, texts[i], strlen(texts[i]), ZS_CLIP_CONTEXT, row, &eot));
        for (int j = eot + 1; j < ZS_CLIP_CONTEXT; j++) row[j] = p->pad_id;  // transformers pads with the pad token
    }
    return ZS_OK;
}

zs_status zs_sd_pipe_encode(zs_sd_pipe *p, const char *const *texts, int n, zs_tensor *embeds) {
    if (!p->text) return ZS_ERR(ZS_EINVAL, "%s: the model has no text encoder (give embeddings instead)", p->path);
    int64_t sh[3] = {n, ZS_CLIP_CONTEXT, p->unet_ctx};
    ZS_TRY(zs_check_shape(embeds, "sd pipeline: embeddings", 3, sh));
    int32_t *ids = malloc(sizeof *ids * (size_t)n * ZS_CLIP_CONTEXT);
    if (!ids) return ZS_ERR(ZS_ENOMEM, "sd pipeline: token ids");
    zs_status s = zs_sd_pipe_tokenize(p, texts, n, ids);
    if (!s) s = zs_clip_text_setup(&p->text->t, n, ZS_CLIP_CONTEXT, 0);
    zs_clip_text_in in = {ids, NULL, 0, 0};
    if (!s) s = zs_clip_text_fwd(&p->text->t, &in);
    if (!s) s = zs_tensor_copy(embeds, &p->text->t.a.tokens);
    free(ids);
    return s;
}

zs_status zs_sd_to_pixels(const zs_tensor *image, uint8_t *pixels) {
    if (image->ndim != 4 || image->shape[1] != 3) return ZS_ERR(ZS_EINVAL, "sd pipeline: image must be [B, 3, H, W]");
    int64_t B = image->shape[0], HW = image->shape[2] * image->shape[3];
    float *x = malloc(sizeof *x * (size_t)zs_numel(image));
    zs_tensor h = zs_tensor_make(x, ZS_F32, ZS_CPU, 4, image->shape);
    zs_status s = x ? zs_tensor_copy(&h, image) : ZS_ERR(ZS_ENOMEM, "sd pipeline: pixels");
    for (int64_t b = 0; !s && b < B; b++)
        for (int c = 0; !s && c < 3; c++)
            for (int64_t k = 0; !s && k < HW; k++) {
                float v = x[(b * 3 + c) * HW + k] / 2.0f + 0.5f;
                v = v < 0 ? 0 : v > 1 ? 1 : v;  // NaN stays NaN and is caught below
                float q = rintf(v * 255.0f);    // fp32 multiply, ties to even (numpy round)
                if (!(q >= 0 && q <= 255)) s = ZS_ERR(ZS_ENAN, "sd pipeline: image %lld has a non-finite value", (long long)b);
                else pixels[(b * HW + k) * 3 + c] = (uint8_t)q;
            }
    free(x);
    return s;
}
