// CLIP model: format sniffing, name binding (weights/clip_names.c tables), loading, saving,
// gradients and the host-side similarity head.
#include "models/clip.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "engine/backend.h"
#include "engine/json.h"
#include "models/clip_internal.h"

zs_clip_opts zs_clip_default_opts(void) {
    zs_clip_opts o = {ZS_CPU, ZS_F32, 0, 0, 0, 0, -1};
    return o;
}

static int is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}
static int exists(const char *dir, const char *name, char *buf, size_t n) {
    struct stat s;
    int k = snprintf(buf, n, "%s/%s", dir, name);
    return k > 0 && (size_t)k < n && stat(buf, &s) == 0;
}

static void note(zs_clip *m, const char *s) {
    size_t k = strlen(m->notes);
    snprintf(m->notes + k, sizeof m->notes - k, "%s%s", k ? "; " : "", s);
}

// The engine tensor a table row names (params or grads); NULL for logit_scale (and for
// ResNet gradients before zs_clip_grads).
static zs_tensor *slot_tensor(zs_clip *m, const zs_clip_name *e, int layer, int grad) {
    zs_clip_text_params *tp = grad ? &m->t.g : &m->t.p;
    zs_clip_vision_params *vp = grad ? &m->v.g : &m->v.p;
    zs_clip_resnet_params *rp = grad ? &m->r.g : &m->r.p;
    switch (e->slot) {
    case ZS_SLOT_RN_HEAD: return rp->blocks ? zs_rn_head_tensor(rp, e->blk) : NULL;
    case ZS_SLOT_RN_BLOCK: return rp->blocks ? zs_rn_block_tensor(&rp->blocks[layer], e->blk) : NULL;
    case ZS_SLOT_T_TOK: return &tp->tok;
    case ZS_SLOT_T_POS: return &tp->pos;
    case ZS_SLOT_T_LNF_W: return &tp->lnf_w;
    case ZS_SLOT_T_LNF_B: return &tp->lnf_b;
    case ZS_SLOT_T_PROJ: return &tp->proj;
    case ZS_SLOT_V_PATCH: return &vp->patch_w;
    case ZS_SLOT_V_CLS: return &vp->cls;
    case ZS_SLOT_V_POS: return &vp->pos;
    case ZS_SLOT_V_PRE_W: return &vp->ln_pre_w;
    case ZS_SLOT_V_PRE_B: return &vp->ln_pre_b;
    case ZS_SLOT_V_POST_W: return &vp->ln_post_w;
    case ZS_SLOT_V_POST_B: return &vp->ln_post_b;
    case ZS_SLOT_V_PROJ: return &vp->proj;
    case ZS_SLOT_BLOCK:
        return zs_tf_block_tensor(e->tower == ZS_TOWER_TEXT ? &tp->blocks[layer] : &vp->blocks[layer], e->blk);
    default: return NULL;
    }
}

// The engine tensor (or its q/k/v third) with the file's shape, over the engine's memory.
static zs_status file_view(zs_clip *m, const zs_clip_binding *b, int grad, zs_tensor *out) {
    zs_tensor *t = slot_tensor(m, &b->entry, b->layer, grad);
    if (!t) return ZS_ERR(ZS_EINVAL, "clip: no gradient buffers for %s (zs_clip_grads)", b->name);
    if (b->entry.part) ZS_TRY(zs_rows_view(out, t, (b->entry.part - 1) * (t->shape[0] / 3), t->shape[0] / 3));
    else *out = *t;
    if (b->entry.layout == ZS_NAME_CONV) {
        out->ndim = 4;
        memcpy(out->shape, b->file_shape, sizeof b->file_shape);
    }
    out->name = b->name;
    return ZS_OK;
}

static int want_tower(const zs_clip *m, zs_clip_tower t) {
    return t == ZS_TOWER_TOP || (t == ZS_TOWER_TEXT && (m->towers & ZS_CLIP_TEXT)) ||
           (t == ZS_TOWER_VISION && (m->towers & ZS_CLIP_VISION));
}

static zs_status add_unused(zs_clip *m, const char *name) {
    char **u = realloc(m->unused, (size_t)(m->n_unused + 1) * sizeof *u);
    if (!u) return ZS_ERR(ZS_ENOMEM, "clip: unused list");
    m->unused = u;
    if (!(u[m->n_unused] = strdup(name))) return ZS_ERR(ZS_ENOMEM, "clip: unused list");
    m->n_unused++;
    return ZS_OK;
}

// Matches every table row against the file: first missing or mis-shaped tensor, then the
// first extra one, is an error; skipped towers and known buffers go to m->unused.
static zs_status bind(zs_clip *m, const zs_st *st) {
    int n, plen = (int)strlen(m->prefix), ns = zs_st_count(st);
    const zs_clip_name *tab = zs_clip_names(m->format, &n);
    char *used = calloc((size_t)ns + 1, 1);
    m->bind = calloc((size_t)(n * 64 + 8), sizeof *m->bind);  // grows below if a tower is deeper
    if (!used || !m->bind) return free(used), ZS_ERR(ZS_ENOMEM, "clip: binding table");
    int cap = n * 64 + 8;
    zs_status s = ZS_OK;
    for (int r = 0; r < n && !s; r++) {
        const zs_clip_name *e = &tab[r];
        if (!want_tower(m, e->tower)) continue;
        int rn_row = e->slot == ZS_SLOT_RN_HEAD || e->slot == ZS_SLOT_RN_BLOCK;
        if (e->tower == ZS_TOWER_VISION && rn_row != (m->vision_resnet != 0)) continue;  // the other architecture's rows
        int layers = e->slot == ZS_SLOT_RN_BLOCK ? m->r.nblocks : e->slot != ZS_SLOT_BLOCK ? 1
                     : e->tower == ZS_TOWER_TEXT ? m->text.layers : m->vision.layers;
        for (int l = 0; l < layers && !s; l++) {
            char name[256], rel[200];
            if (e->slot == ZS_SLOT_RN_BLOCK) {
                int stage, idx;
                if (!slot_tensor(m, e, l, 0)) continue;  // downsample rows of a block without one
                zs_clip_resnet_block_pos(&m->r, l, &stage, &idx);
                snprintf(rel, sizeof rel, e->name, stage + 1, idx);
            } else {
                snprintf(rel, sizeof rel, e->name, l);
            }
            snprintf(name, sizeof name, "%s%s", m->prefix, rel);
            const zs_st_entry *f = zs_st_find(st, name);
            if (e->slot == ZS_SLOT_LOGIT_SCALE && !f && !m->has_logit_scale) continue;
            if (e->slot == ZS_SLOT_T_PROJ && !m->text.embed) continue;
            if (e->slot == ZS_SLOT_V_PROJ && !m->vision.embed) continue;
            zs_clip_binding b = {0};
            b.entry = *e, b.layer = l;
            if (e->slot == ZS_SLOT_LOGIT_SCALE) {
                b.file_ndim = 0;
            } else {
                zs_tensor *t = slot_tensor(m, e, l, 0);
                b.file_ndim = t->ndim;
                memcpy(b.file_shape, t->shape, sizeof b.file_shape);
                if (e->part) b.file_shape[0] /= 3;
                if (e->layout == ZS_NAME_T) b.file_shape[0] = t->shape[1], b.file_shape[1] = t->shape[0];
                if (e->layout == ZS_NAME_CONV) {
                    int64_t cs[4] = {m->vision.width, m->vision.channels, m->vision.patch, m->vision.patch};
                    b.file_ndim = 4;
                    memcpy(b.file_shape, cs, sizeof cs);
                }
            }
            zs_tensor want = zs_tensor_make(NULL, ZS_F32, ZS_CPU, b.file_ndim, b.file_shape);
            char ws[96], gs[96];
            zs_shape_str(&want, ws, sizeof ws);
            if (!f) {
                s = ZS_ERR(ZS_EFORMAT, "missing tensor %s (expected %s for this config)", name, ws);
                break;
            }
            zs_tensor got = zs_tensor_make(NULL, f->dtype, ZS_CPU, f->ndim, f->shape);
            if (!zs_same_shape(&got, &want) || !zs_dtype_is_float(f->dtype)) {
                s = ZS_ERR(ZS_EFORMAT, "tensor %s is %s %s, expected a float tensor of shape %s", name,
                           zs_dtype_name(f->dtype), zs_shape_str(&got, gs, sizeof gs), ws);
                break;
            }
            used[f - zs_st_at(st, 0)] = 1;
            b.file_dtype = f->dtype;
            if (m->n_bind == cap) {
                zs_clip_binding *nb = realloc(m->bind, (size_t)(cap *= 2) * sizeof *nb);
                if (!nb) { s = ZS_ERR(ZS_ENOMEM, "clip: binding table"); break; }
                m->bind = nb;
            }
            if (!(b.name = strdup(name))) { s = ZS_ERR(ZS_ENOMEM, "clip: binding table"); break; }
            m->bind[m->n_bind++] = b;
        }
    }
    for (int i = 0; i < ns && !s; i++) {
        const zs_st_entry *f = zs_st_at(st, i);
        if (used[i] || strncmp(f->name, m->prefix, (size_t)plen)) continue;  // other models of an SD file
        const char *rel = f->name + plen;
        if (!want_tower(m, zs_clip_name_tower(m->format, rel)) || zs_clip_name_ignorable(m->format, rel) ||
            !strcmp(rel, "logit_scale")) {
            s = add_unused(m, f->name);
            continue;
        }
        int l = -1, r = 0;
        while (r < n && !zs_clip_name_match(tab[r].name, rel, &l)) r++;
        if (r < n && l >= 0 && tab[r].slot == ZS_SLOT_RN_BLOCK)
            s = m->vision_resnet ? ZS_ERR(ZS_EFORMAT, "extra tensor %s: not in this config's ModifiedResNet (layers [%d, %d, %d, %d])",
                                          f->name, m->resnet.layers[0], m->resnet.layers[1], m->resnet.layers[2], m->resnet.layers[3])
                                 : ZS_ERR(ZS_EFORMAT, "extra tensor %s: a ModifiedResNet tensor in a ViT model", f->name);
        else if (r < n && l >= 0)
            s = ZS_ERR(ZS_EFORMAT, "extra tensor %s: the config has %d layers", f->name,
                       tab[r].tower == ZS_TOWER_TEXT ? m->text.layers : m->vision.layers);
        else
            s = ZS_ERR(ZS_EFORMAT, "extra tensor %s: not a known %s CLIP name for this config", f->name,
                       zs_clip_format_name(m->format));
    }
    free(used);
    return s;
}

static void transpose(float *dst, const float *src, int64_t rows, int64_t cols) {
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) dst[j * rows + i] = src[i * cols + j];
}

static int64_t bound_numel(const zs_clip_binding *b) {
    int64_t n = 1;
    for (int i = 0; i < b->file_ndim; i++) n *= b->file_shape[i];
    return n;
}

static zs_status load_data(zs_clip *m, const zs_st *st) {
    for (int i = 0; i < m->n_bind; i++) {
        const zs_clip_binding *b = &m->bind[i];
        if (b->entry.slot == ZS_SLOT_LOGIT_SCALE) {
            ZS_TRY(zs_st_read_f32(st, b->name, &m->logit_scale, 1));
        } else if (b->entry.layout == ZS_NAME_T) {
            int64_t n = bound_numel(b), sh[2] = {b->file_shape[1], b->file_shape[0]};
            float *h = malloc((size_t)n * 2 * sizeof(float));
            if (!h) return ZS_ERR(ZS_ENOMEM, "clip: loading %s", b->name);
            zs_status s = zs_st_read_f32(st, b->name, h, n);
            transpose(h + n, h, b->file_shape[0], b->file_shape[1]);
            zs_tensor src = zs_tensor_make(h + n, ZS_F32, ZS_CPU, 2, sh);
            if (!s) s = zs_tensor_copy(slot_tensor(m, &b->entry, b->layer, 0), &src);
            free(h);
            ZS_TRY(s);
        } else {
            zs_tensor v;
            ZS_TRY(file_view(m, b, 0, &v));
            ZS_TRY(zs_st_load(st, b->name, &v));
        }
    }
    return ZS_OK;
}

zs_status zs_clip_read_bound(zs_clip *m, int i, int grad, float *dst, int64_t n) {
    if (i < 0 || i >= m->n_bind) return ZS_ERR(ZS_EINVAL, "clip: no bound tensor %d", i);
    const zs_clip_binding *b = &m->bind[i];
    if (n != bound_numel(b)) return ZS_ERR(ZS_EINVAL, "clip: %s has %lld elements, not %lld", b->name, (long long)bound_numel(b), (long long)n);
    if (m->plan_only) return ZS_ERR(ZS_EINVAL, "clip: planned only, %s has no data", b->name);
    if (b->entry.slot == ZS_SLOT_LOGIT_SCALE) {
        dst[0] = grad ? (float)m->d_logit_scale : m->logit_scale;
        return ZS_OK;
    }
    zs_tensor v;
    ZS_TRY(file_view(m, b, grad, &v));
    if (!v.data) return ZS_ERR(ZS_EINVAL, "clip: no gradient buffers (zs_clip_grads)");
    if (b->entry.layout != ZS_NAME_T) {
        zs_tensor h = zs_tensor_make(dst, ZS_F32, ZS_CPU, v.ndim, v.shape);
        return zs_tensor_copy(&h, &v);
    }
    float *tmp = malloc((size_t)n * sizeof(float));
    if (!tmp) return ZS_ERR(ZS_ENOMEM, "clip: reading %s", b->name);
    zs_tensor h = zs_tensor_make(tmp, ZS_F32, ZS_CPU, v.ndim, v.shape);
    zs_status s = zs_tensor_copy(&h, &v);
    if (!s) transpose(dst, tmp, v.shape[0], v.shape[1]);
    free(tmp);
    return s;
}

zs_status zs_clip_save(zs_clip *m, const char *path) {
    zs_st_writer *w = NULL;
    float *buf = NULL;
    zs_status s = zs_st_writer_new(&w);
    if (!s) s = zs_st_writer_meta(w, "format", "pt");
    for (int i = 0; i < m->n_bind && !s; i++) {
        const zs_clip_binding *b = &m->bind[i];
        int64_t n = bound_numel(b);
        float *nb = realloc(buf, (size_t)n * sizeof(float));
        if (!nb) { s = ZS_ERR(ZS_ENOMEM, "clip save: %s", b->name); break; }
        buf = nb;
        s = zs_clip_read_bound(m, i, 0, buf, n);
        zs_tensor t = zs_tensor_make(buf, ZS_F32, ZS_CPU, b->file_ndim, b->file_shape);
        if (!s) s = zs_st_writer_add(w, b->name, &t, b->file_dtype);
    }
    // Tensors the model does not use travel unchanged (the writer copies them on add, so
    // saving over the source file is safe).
    zs_st *src = NULL;
    if (!s && m->n_unused) s = zs_st_open(&src, m->st_path);
    for (int i = 0; i < m->n_unused && !s; i++) {
        const zs_st_entry *e = zs_st_find(src, m->unused[i]);
        if (!e) { s = ZS_ERR(ZS_EFORMAT, "%s: tensor %s is gone from the source", m->st_path, m->unused[i]); break; }
        zs_tensor t = zs_tensor_make((void *)e->data, e->dtype, ZS_CPU, e->ndim, e->shape);
        s = zs_st_writer_add(w, e->name, &t, ZS_ST_KEEP);
    }
    if (!s) s = zs_st_writer_save(w, path);
    zs_st_close(src);
    zs_st_writer_free(w);
    free(buf);
    return s ? zs_fail_context(s, "saving CLIP to %s", path) : ZS_OK;
}

// ---- load --------------------------------------------------------------------------------
static zs_status sniff(zs_clip *m, const char *path, const zs_clip_opts *o, char *st_path, size_t n, zs_st **st) {
    char buf[4096], dir[4096];
    unsigned fl = o->plan_only ? ZS_ST_ALLOW_HEADER_ONLY : 0;
    snprintf(dir, sizeof dir, "%s", path);
    if (is_dir(dir) && exists(dir, "model_index.json", buf, sizeof buf) && exists(dir, "text_encoder", buf, sizeof buf)) {
        if (snprintf(dir, sizeof dir, "%s/text_encoder", path) >= (int)sizeof dir)  // a diffusers pipeline: its text encoder
            return ZS_ERR(ZS_EINVAL, "%s: path too long", path);
        note(m, "diffusers pipeline folder: text_encoder/");
    }
    if (is_dir(dir)) {
        cJSON *cfg = NULL;
        zs_status s;
        if (exists(dir, "open_clip_config.json", buf, sizeof buf)) {
            m->format = ZS_CLIP_FMT_OPENAI;
            snprintf(m->source, sizeof m->source, "open_clip");
            ZS_TRY(zs_json_read_object(buf, &cfg));
            s = zs_clip_config_open_clip(m, cfg, buf);
            cJSON_Delete(cfg);
            if (s) return zs_fail_context(s, "%s", buf);
            if (!exists(dir, "open_clip_model.safetensors", st_path, n)) snprintf(st_path, n, "%s", dir);
            m->has_logit_scale = m->towers == (ZS_CLIP_TEXT | ZS_CLIP_VISION);
        } else if (exists(dir, "config.json", buf, sizeof buf)) {
            m->format = ZS_CLIP_FMT_HF;
            ZS_TRY(zs_json_read_object(buf, &cfg));
            s = zs_clip_config_hf(m, cfg, buf);
            cJSON_Delete(cfg);
            if (s) return zs_fail_context(s, "%s", buf);
            snprintf(st_path, n, "%s", dir);
        } else {
            return ZS_ERR(ZS_EFORMAT, "%s: no open_clip_config.json or config.json: not a CLIP folder", dir);
        }
        return zs_st_open_ex(st, st_path, fl);
    }
    snprintf(st_path, n, "%s", path);
    ZS_TRY(zs_st_open_ex(st, st_path, fl));
    const char *sd2 = "cond_stage_model.model.", *sd1 = "cond_stage_model.transformer.";
    char k[256];
    snprintf(k, sizeof k, "%stoken_embedding.weight", sd2);
    if (zs_st_find(*st, k)) {
        m->format = ZS_CLIP_FMT_OPENAI;
        snprintf(m->prefix, sizeof m->prefix, "%s", sd2);
        snprintf(m->source, sizeof m->source, "ldm-sd2 single file (OpenCLIP text)");
        note(m, "SD 2.x single file: OpenCLIP ViT-H text tower, GELU, tokens = ln_final(layer layers-1)");
        ZS_TRY(zs_clip_config_shapes(m, *st, sd2, 0, ZS_ACT_GELU, o->text_heads, 0));
        m->text.out_layer = m->text.layers - 1;
    } else if (snprintf(k, sizeof k, "%stext_model.embeddings.token_embedding.weight", sd1), zs_st_find(*st, k)) {
        m->format = ZS_CLIP_FMT_HF;
        snprintf(m->prefix, sizeof m->prefix, "%s", sd1);
        snprintf(m->source, sizeof m->source, "ldm-sd1 single file (CLIPTextModel)");
        note(m, "SD 1.x single file: OpenAI CLIP text tower, QuickGELU");
        ZS_TRY(zs_clip_config_shapes(m, *st, sd1, 1, ZS_ACT_QUICKGELU, o->text_heads, 0));
        m->text.pool = ZS_POOL_ARGMAX;
    } else if (zs_st_find(*st, "token_embedding.weight") || zs_st_find(*st, "visual.conv1.weight") ||
               zs_st_find(*st, "visual.layer1.0.conv1.weight")) {
        m->format = ZS_CLIP_FMT_OPENAI;
        snprintf(m->source, sizeof m->source, "openai (bare safetensors)");
        note(m, "bare OpenAI-named file: config from shapes as OpenAI's build_model, QuickGELU");
        ZS_TRY(zs_clip_config_shapes(m, *st, "", 0, ZS_ACT_QUICKGELU, o->text_heads, o->vision_heads));
        m->has_logit_scale = (m->towers & ZS_CLIP_TEXT) && (m->towers & ZS_CLIP_VISION);
    } else if (zs_st_find(*st, "text_model.embeddings.token_embedding.weight") ||
               zs_st_find(*st, "vision_model.embeddings.class_embedding")) {
        return ZS_ERR(ZS_EFORMAT, "%s: transformers-named CLIP weights need their config.json: load the folder", path);
    } else {
        return ZS_ERR(ZS_EFORMAT, "%s: no known CLIP tensor names (token_embedding.weight, visual.conv1.weight, "
                                  "text_model.*, cond_stage_model.*)", path);
    }
    if (o->text_heads || o->vision_heads) note(m, "heads set by the caller");
    else if (m->towers & ZS_CLIP_TEXT) note(m, "heads = width / 64 (no config in the file)");
    if (m->vision_resnet && !o->vision_heads) note(m, "ResNet attention-pool heads = width * 32 / 64");
    return ZS_OK;
}

static zs_status load(zs_clip *m, const char *path, const zs_clip_opts *o) {
    char st_path[4096] = "";
    zs_st *st = NULL;
    m->device = o->device, m->dtype = o->dtype, m->plan_only = o->plan_only;
    zs_status s = sniff(m, path, o, st_path, sizeof st_path, &st);
    if (!s && o->towers) {
        if (o->towers & ~m->towers)
            s = ZS_ERR(ZS_EINVAL, "%s: has no %s tower", path, (o->towers & ~m->towers & ZS_CLIP_TEXT) ? "text" : "vision");
        m->towers &= o->towers;
        if (m->towers != (ZS_CLIP_TEXT | ZS_CLIP_VISION)) m->has_logit_scale = 0;
    }
    if (!s && (m->towers & ZS_CLIP_TEXT) && o->text_out_layer >= 0) {
        if (o->text_out_layer > m->text.layers)
            s = ZS_ERR(ZS_EINVAL, "text_out_layer %d: the text tower has %d layers", o->text_out_layer, m->text.layers);
        m->text.out_layer = o->text_out_layer;
    }
    if (!s && m->device == ZS_CPU && m->dtype != ZS_F32)
        s = ZS_ERR(ZS_EUNSUPPORTED, "clip: the CPU computes in F32 only (asked for %s)", zs_dtype_name(m->dtype));
    if (!s && (m->towers & ZS_CLIP_TEXT)) s = zs_clip_text_init(&m->t, &m->text, m->device, m->dtype, m->plan_only);
    if (!s && (m->towers & ZS_CLIP_VISION) && m->vision_resnet)
        s = zs_clip_resnet_init(&m->r, &m->resnet, m->device, m->dtype, m->plan_only);
    else if (!s && (m->towers & ZS_CLIP_VISION))
        s = zs_clip_vision_init(&m->v, &m->vision, m->device, m->dtype, m->plan_only);
    int v_embed = m->vision_resnet ? m->resnet.embed : m->vision.embed;
    if (!s && (m->towers & ZS_CLIP_TEXT) && (m->towers & ZS_CLIP_VISION) && m->text.embed != v_embed)
        s = ZS_ERR(ZS_EFORMAT, "text and vision projections differ (%d vs %d)", m->text.embed, v_embed);
    if (!s) s = bind(m, st);
    if (!s && !m->plan_only) s = load_data(m, st);
    if (s) s = zs_fail_context(s, "loading CLIP from %s", st_path[0] ? st_path : path);
    if (!s && !(m->st_path = strdup(st_path))) s = ZS_ERR(ZS_ENOMEM, "clip: path");
    zs_st_close(st);
    return s;
}

zs_status zs_clip_load(zs_clip **out, const char *path, const zs_clip_opts *o) {
    zs_clip_opts def = zs_clip_default_opts();
    *out = NULL;
    zs_clip *m = calloc(1, sizeof *m);
    if (!m) return ZS_ERR(ZS_ENOMEM, "clip: model struct");
    zs_status s = load(m, path, o ? o : &def);
    if (s) {
        zs_clip_free(m);
        return s;
    }
    *out = m;
    return ZS_OK;
}

void zs_clip_free(zs_clip *m) {
    if (!m) return;
    zs_clip_text_free(&m->t);
    zs_clip_vision_free(&m->v);
    zs_clip_resnet_free(&m->r);
    for (int i = 0; i < m->n_bind; i++) free(m->bind[i].name);
    for (int i = 0; i < m->n_unused; i++) free(m->unused[i]);
    free(m->bind);
    free(m->unused);
    free(m->st_path);
    free(m);
}

zs_status zs_clip_grads(zs_clip *m) {
    if (m->towers & ZS_CLIP_TEXT) ZS_TRY(zs_clip_text_grads(&m->t));
    if (m->towers & ZS_CLIP_VISION) ZS_TRY(m->vision_resnet ? zs_clip_resnet_grads(&m->r) : zs_clip_vision_grads(&m->v));
    m->d_logit_scale = 0;
    return ZS_OK;
}

zs_status zs_clip_zero_grads(zs_clip *m) {
    if (m->towers & ZS_CLIP_TEXT) ZS_TRY(zs_clip_text_zero_grads(&m->t));
    if (m->towers & ZS_CLIP_VISION) ZS_TRY(m->vision_resnet ? zs_clip_resnet_zero_grads(&m->r) : zs_clip_vision_zero_grads(&m->v));
    m->d_logit_scale = 0;
    return ZS_OK;
}

// ---- similarity head (host) --------------------------------------------------------------
void zs_l2norm_fwd(float *y, const float *x, int64_t n, int64_t d) {
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t j = 0; j < d; j++) s += (double)x[i * d + j] * x[i * d + j];
        double r = 1.0 / fmax(sqrt(s), 1e-12);  // F.normalize's eps
        for (int64_t j = 0; j < d; j++) y[i * d + j] = (float)(x[i * d + j] * r);
    }
}

void zs_l2norm_bwd(float *dx, const float *dy, const float *x, int64_t n, int64_t d) {
    for (int64_t i = 0; i < n; i++) {
        double s = 0, yd = 0;
        for (int64_t j = 0; j < d; j++) s += (double)x[i * d + j] * x[i * d + j];
        double nrm = fmax(sqrt(s), 1e-12);
        for (int64_t j = 0; j < d; j++) yd += (double)dy[i * d + j] * x[i * d + j] / nrm;
        for (int64_t j = 0; j < d; j++) dx[i * d + j] += (float)((dy[i * d + j] - x[i * d + j] / nrm * yd) / nrm);
    }
}

// ---- the image tower, ViT or ModifiedResNet --------------------------------------------------
void zs_clip_image_shape(const zs_clip *m, int *channels, int *h, int *w) {
    if (m->vision_resnet) *channels = m->resnet.channels, *h = *w = m->resnet.image;
    else *channels = m->vision.channels, *h = m->vision.image_h, *w = m->vision.image_w;
}

int zs_clip_image_embed(const zs_clip *m) {
    return m->vision_resnet ? m->resnet.embed : m->vision.embed ? m->vision.embed : m->vision.width;
}

static zs_status need_vision(const zs_clip *m) {
    return (m->towers & ZS_CLIP_VISION) ? ZS_OK : ZS_ERR(ZS_EINVAL, "clip: no vision tower loaded");
}

zs_status zs_clip_image_setup(zs_clip *m, int64_t B, int train) {
    ZS_TRY(need_vision(m));
    return m->vision_resnet ? zs_clip_resnet_setup(&m->r, B, train) : zs_clip_vision_setup(&m->v, B, train);
}

zs_status zs_clip_image_fwd(zs_clip *m, const zs_tensor *image) {
    ZS_TRY(need_vision(m));
    return m->vision_resnet ? zs_clip_resnet_fwd(&m->r, image) : zs_clip_vision_fwd(&m->v, image);
}

zs_tensor *zs_clip_image_features(zs_clip *m) {
    if (!(m->towers & ZS_CLIP_VISION)) return NULL;
    if (m->vision_resnet) return m->r.a.blocks ? &m->r.a.features : NULL;
    return m->v.a.hidden ? &m->v.a.features : NULL;
}

zs_status zs_clip_image_bwd(zs_clip *m, const zs_tensor *d_features, zs_tensor *d_image) {
    ZS_TRY(need_vision(m));
    return m->vision_resnet ? zs_clip_resnet_bwd(&m->r, d_features, d_image)
                            : zs_clip_vision_bwd(&m->v, NULL, NULL, d_features, d_image);
}

// Host F32 copies of both towers' features.
static zs_status features(zs_clip *m, float **tf, float **imf, int64_t *Bt, int64_t *Bi, int64_t *E) {
    const zs_tensor *fi = zs_clip_image_features(m);
    if (!(m->towers & ZS_CLIP_TEXT) || !m->t.a.hidden || !fi) return ZS_ERR(ZS_EINVAL, "clip logits: need both towers run");
    *Bt = m->t.a.B, *Bi = fi->shape[0], *E = m->t.a.features.shape[1];
    *tf = malloc((size_t)(*Bt + *Bi) * (size_t)*E * 2 * sizeof(float));
    if (!*tf) return ZS_ERR(ZS_ENOMEM, "clip logits");
    *imf = *tf + *Bt * *E;
    zs_tensor ht = zs_tensor_make(*tf, ZS_F32, ZS_CPU, 2, m->t.a.features.shape);
    zs_tensor hi = zs_tensor_make(*imf, ZS_F32, ZS_CPU, 2, fi->shape);
    zs_status s = zs_tensor_copy(&ht, &m->t.a.features);
    if (!s) s = zs_tensor_copy(&hi, fi);
    if (s) free(*tf);
    return s;
}

zs_status zs_clip_logits(zs_clip *m, float *logits, float *text_norm, float *image_norm) {
    float *tf, *imf;
    int64_t Bt, Bi, E;
    ZS_TRY(features(m, &tf, &imf, &Bt, &Bi, &E));
    float *tn = imf + Bi * E, *in = tn + Bt * E;
    zs_l2norm_fwd(tn, tf, Bt, E);
    zs_l2norm_fwd(in, imf, Bi, E);
    double sc = exp((double)m->logit_scale);
    for (int64_t i = 0; i < Bi; i++)
        for (int64_t j = 0; j < Bt; j++) {
            double d = 0;
            for (int64_t k = 0; k < E; k++) d += (double)in[i * E + k] * tn[j * E + k];
            logits[i * Bt + j] = (float)(sc * d);
        }
    if (text_norm) memcpy(text_norm, tn, (size_t)(Bt * E) * sizeof(float));
    if (image_norm) memcpy(image_norm, in, (size_t)(Bi * E) * sizeof(float));
    free(tf);
    return ZS_OK;
}

zs_status zs_clip_logits_bwd(zs_clip *m, const float *dl, float *d_tf, float *d_if) {
    float *tf, *imf;
    int64_t Bt, Bi, E;
    ZS_TRY(features(m, &tf, &imf, &Bt, &Bi, &E));
    float *tn = imf + Bi * E, *in = tn + Bt * E;
    zs_l2norm_fwd(tn, tf, Bt, E);
    zs_l2norm_fwd(in, imf, Bi, E);
    float *dtn = calloc((size_t)((Bt + Bi) * E), sizeof(float)), *din = dtn ? dtn + Bt * E : NULL;
    if (!dtn) return free(tf), ZS_ERR(ZS_ENOMEM, "clip logits backward");
    double sc = exp((double)m->logit_scale), ds = 0;
    for (int64_t i = 0; i < Bi; i++)
        for (int64_t j = 0; j < Bt; j++) {
            double g = dl[i * Bt + j], d = 0;
            for (int64_t k = 0; k < E; k++) {
                d += (double)in[i * E + k] * tn[j * E + k];
                din[i * E + k] += (float)(sc * g * tn[j * E + k]);
                dtn[j * E + k] += (float)(sc * g * in[i * E + k]);
            }
            ds += g * sc * d;  // d exp(s)/ds = exp(s)
        }
    m->d_logit_scale += ds;
    zs_l2norm_bwd(d_tf, dtn, tf, Bt, E);
    zs_l2norm_bwd(d_if, din, imf, Bi, E);
    free(dtn);
    free(tf);
    return ZS_OK;
}
