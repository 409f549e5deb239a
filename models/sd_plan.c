// Plan-only SD UNet / VAE loader (see sd_plan.h).
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "models/sd_plan.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
    zs_sd_slot *s;
    int n, cap;
    zs_status st;
    zs_sd_part part;
} builder;

static void add(builder *b, int ndim, const int64_t *shape, const char *fmt, ...) ZS_PRINTF(4, 5);
static void add(builder *b, int ndim, const int64_t *shape, const char *fmt, ...) {
    if (b->st != ZS_OK) return;
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 256;
        zs_sd_slot *s = realloc(b->s, (size_t)cap * sizeof *s);
        if (!s) {
            b->st = ZS_ERR(ZS_ENOMEM, "sd plan: out of memory");
            return;
        }
        b->s = s, b->cap = cap;
    }
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    zs_sd_slot *s = &b->s[b->n];
    memset(s, 0, sizeof *s);
    if (!(s->name = strdup(name))) {
        b->st = ZS_ERR(ZS_ENOMEM, "sd plan: out of memory");
        return;
    }
    s->part = b->part, s->ndim = ndim;
    for (int i = 0; i < ndim; i++) s->shape[i] = shape[i];
    b->n++;
}

#define SH(...) (const int64_t[]){__VA_ARGS__}
#define ADD1(b, c, ...) add(b, 1, SH(c), __VA_ARGS__)

static void norm(builder *b, const char *p, int64_t c) {
    ADD1(b, c, "%sweight", p);
    ADD1(b, c, "%sbias", p);
}
static void linear(builder *b, const char *p, int64_t o, int64_t i, int bias) {
    add(b, 2, SH(o, i), "%sweight", p);
    if (bias) ADD1(b, o, "%sbias", p);
}
static void conv(builder *b, const char *p, int64_t o, int64_t i, int64_t k) {
    add(b, 4, SH(o, i, k, k), "%sweight", p);
    ADD1(b, o, "%sbias", p);
}

// ResnetBlock2D (temb 0: the VAE's, without time_emb_proj)
static void resnet(builder *b, const char *p, int64_t cin, int64_t cout, int64_t temb) {
    char q[200];
    snprintf(q, sizeof q, "%snorm1.", p), norm(b, q, cin);
    snprintf(q, sizeof q, "%sconv1.", p), conv(b, q, cout, cin, 3);
    if (temb) snprintf(q, sizeof q, "%stime_emb_proj.", p), linear(b, q, cout, temb, 1);
    snprintf(q, sizeof q, "%snorm2.", p), norm(b, q, cout);
    snprintf(q, sizeof q, "%sconv2.", p), conv(b, q, cout, cout, 3);
    if (cin != cout) snprintf(q, sizeof q, "%sconv_shortcut.", p), conv(b, q, cout, cin, 1);
}

// Transformer2DModel with BasicTransformerBlocks (inner dim = heads * head_dim = c)
static void transformer(builder *b, const char *p, int64_t c, int layers, int64_t ctx, int lin) {
    char q[200];
    snprintf(q, sizeof q, "%snorm.", p), norm(b, q, c);
    snprintf(q, sizeof q, "%sproj_in.", p);
    if (lin) linear(b, q, c, c, 1);
    else conv(b, q, c, c, 1);
    for (int t = 0; t < layers; t++) {
        const char *a[2] = {"attn1", "attn2"};
        for (int k = 0; k < 2; k++) {
            snprintf(q, sizeof q, "%stransformer_blocks.%d.norm%d.", p, t, k + 1), norm(b, q, c);
            snprintf(q, sizeof q, "%stransformer_blocks.%d.%s.to_q.", p, t, a[k]), linear(b, q, c, c, 0);
            snprintf(q, sizeof q, "%stransformer_blocks.%d.%s.to_k.", p, t, a[k]), linear(b, q, c, k ? ctx : c, 0);
            snprintf(q, sizeof q, "%stransformer_blocks.%d.%s.to_v.", p, t, a[k]), linear(b, q, c, k ? ctx : c, 0);
            snprintf(q, sizeof q, "%stransformer_blocks.%d.%s.to_out.0.", p, t, a[k]), linear(b, q, c, c, 1);
        }
        snprintf(q, sizeof q, "%stransformer_blocks.%d.norm3.", p, t), norm(b, q, c);
        snprintf(q, sizeof q, "%stransformer_blocks.%d.ff.net.0.proj.", p, t), linear(b, q, 8 * c, c, 1);  // GEGLU
        snprintf(q, sizeof q, "%stransformer_blocks.%d.ff.net.2.", p, t), linear(b, q, c, 4 * c, 1);
    }
    snprintf(q, sizeof q, "%sproj_out.", p);
    if (lin) linear(b, q, c, c, 1);
    else conv(b, q, c, c, 1);
}

static void unet_slots(builder *b, const zs_sd_unet_config *u) {
    int n = u->levels, L = u->layers_per_block;
    int64_t T = u->time_embed_dim, c0 = u->block_out_channels[0], X = u->cross_attention_dim;
    char q[200];
    b->part = ZS_SD_UNET;
    conv(b, "conv_in.", c0, u->in_channels, 3);
    linear(b, "time_embedding.linear_1.", T, c0, 1);
    linear(b, "time_embedding.linear_2.", T, T, 1);
    int64_t prev = c0;
    for (int i = 0; i < n; i++) {
        int64_t c = u->block_out_channels[i];
        for (int j = 0; j < L; j++) {
            snprintf(q, sizeof q, "down_blocks.%d.resnets.%d.", i, j), resnet(b, q, j ? c : prev, c, T);
            if (u->down_attn[i])
                snprintf(q, sizeof q, "down_blocks.%d.attentions.%d.", i, j),
                    transformer(b, q, c, u->transformer_layers[i], X, u->use_linear_projection);
        }
        if (i < n - 1) snprintf(q, sizeof q, "down_blocks.%d.downsamplers.0.conv.", i), conv(b, q, c, c, 3);
        prev = c;
    }
    int64_t cm = u->block_out_channels[n - 1];
    resnet(b, "mid_block.resnets.0.", cm, cm, T);
    transformer(b, "mid_block.attentions.0.", cm, u->transformer_layers[n - 1], X, u->use_linear_projection);
    resnet(b, "mid_block.resnets.1.", cm, cm, T);
    int64_t prev_out = cm;
    for (int i = 0; i < n; i++) {
        int64_t c = u->block_out_channels[n - 1 - i], in = u->block_out_channels[i + 1 < n ? n - 2 - i : 0];
        for (int j = 0; j <= L; j++) {
            int64_t skip = j == L ? in : c, rin = j ? c : prev_out;
            snprintf(q, sizeof q, "up_blocks.%d.resnets.%d.", i, j), resnet(b, q, rin + skip, c, T);
            if (u->up_attn[i])
                snprintf(q, sizeof q, "up_blocks.%d.attentions.%d.", i, j),
                    transformer(b, q, c, u->transformer_layers[n - 1 - i], X, u->use_linear_projection);
        }
        if (i < n - 1) snprintf(q, sizeof q, "up_blocks.%d.upsamplers.0.conv.", i), conv(b, q, c, c, 3);
        prev_out = c;
    }
    norm(b, "conv_norm_out.", c0);
    conv(b, "conv_out.", u->out_channels, c0, 3);
}

static void vae_attn(builder *b, const char *p, int64_t c) {
    char q[200];
    snprintf(q, sizeof q, "%sgroup_norm.", p), norm(b, q, c);
    const char *l[] = {"to_q.", "to_k.", "to_v.", "to_out.0."};
    for (int k = 0; k < 4; k++) snprintf(q, sizeof q, "%s%s", p, l[k]), linear(b, q, c, c, 1);
}

static void vae_slots(builder *b, const zs_sd_vae_config *v) {
    int n = v->levels, L = v->layers_per_block;
    int64_t c0 = v->block_out_channels[0], cm = v->block_out_channels[n - 1], z = v->latent_channels;
    char q[200];
    b->part = ZS_SD_VAE;
    conv(b, "encoder.conv_in.", c0, v->in_channels, 3);
    int64_t prev = c0;
    for (int i = 0; i < n; i++) {
        int64_t c = v->block_out_channels[i];
        for (int j = 0; j < L; j++)
            snprintf(q, sizeof q, "encoder.down_blocks.%d.resnets.%d.", i, j), resnet(b, q, j ? c : prev, c, 0);
        if (i < n - 1) snprintf(q, sizeof q, "encoder.down_blocks.%d.downsamplers.0.conv.", i), conv(b, q, c, c, 3);
        prev = c;
    }
    resnet(b, "encoder.mid_block.resnets.0.", cm, cm, 0);
    if (v->mid_block_add_attention) vae_attn(b, "encoder.mid_block.attentions.0.", cm);
    resnet(b, "encoder.mid_block.resnets.1.", cm, cm, 0);
    norm(b, "encoder.conv_norm_out.", cm);
    conv(b, "encoder.conv_out.", 2 * z, cm, 3);
    conv(b, "quant_conv.", 2 * z, 2 * z, 1);
    conv(b, "post_quant_conv.", z, z, 1);
    conv(b, "decoder.conv_in.", cm, z, 3);
    resnet(b, "decoder.mid_block.resnets.0.", cm, cm, 0);
    if (v->mid_block_add_attention) vae_attn(b, "decoder.mid_block.attentions.0.", cm);
    resnet(b, "decoder.mid_block.resnets.1.", cm, cm, 0);
    prev = cm;
    for (int i = 0; i < n; i++) {
        int64_t c = v->block_out_channels[n - 1 - i];
        for (int j = 0; j <= L; j++)
            snprintf(q, sizeof q, "decoder.up_blocks.%d.resnets.%d.", i, j), resnet(b, q, j ? c : prev, c, 0);
        if (i < n - 1) snprintf(q, sizeof q, "decoder.up_blocks.%d.upsamplers.0.conv.", i), conv(b, q, c, c, 3);
        prev = c;
    }
    norm(b, "decoder.conv_norm_out.", c0);
    conv(b, "decoder.conv_out.", v->out_channels, c0, 3);
}

void zs_sd_slots_free(zs_sd_slot *slots, int n) {
    for (int i = 0; i < n; i++) free(slots[i].name);
    free(slots);
}

zs_status zs_sd_slots(const zs_sd_unet_config *u, const zs_sd_vae_config *v, zs_sd_slot **slots, int *n,
                      int *n_unet) {
    builder b = {0};
    unet_slots(&b, u);
    *n_unet = b.n;
    vae_slots(&b, v);
    if (b.st != ZS_OK) {
        zs_sd_slots_free(b.s, b.n);
        return b.st;
    }
    *slots = b.s, *n = b.n;
    return ZS_OK;
}

static const char *shape_str(int ndim, const int64_t *s, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++) k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)s[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

static void note(zs_sd_plan *p, const char *fmt, ...) ZS_PRINTF(2, 3);
static void note(zs_sd_plan *p, const char *fmt, ...) {
    size_t k = strlen(p->notes);
    if (k + 1 >= sizeof p->notes) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->notes + k, sizeof p->notes - k, fmt, ap);
    va_end(ap);
}

// Binds every slot to its file tensor; then every UNet/VAE tensor of the file must be bound.
static zs_status bind(zs_sd_plan *p) {
    zs_sd_geom gu = {p->unet.levels, p->unet.layers_per_block, p->unet.up_attn};
    zs_sd_geom gv = {p->vae.levels, p->vae.layers_per_block, NULL};
    for (int i = 0; i < p->n_slots; i++) {
        zs_sd_slot *s = &p->slots[i];
        int u = s->part == ZS_SD_UNET;
        zs_st *st = u ? p->unet_st : p->vae_st;
        zs_sd_format f = u ? p->unet_format : p->vae_format;
        char fname[300], a[96], e[96];
        ZS_TRY(zs_sd_file_name(f, s->part, s->name, u ? &gu : &gv, fname, sizeof fname, &s->layout));
        const zs_st_entry *t = zs_st_find(st, fname);
        const char *file = zs_st_file_path(st, 0);
        if (!t)
            return ZS_ERR(ZS_EFORMAT, "%s: missing tensor %s (%s slot %s %s)", file, fname, u ? "unet" : "vae", s->name,
                          shape_str(s->ndim, s->shape, e, sizeof e));
        // a 1x1-conv slot stored already linear (as diffusers' converter accepts) binds plainly
        if (s->layout == ZS_SD_NAME_CONV1X1 && t->ndim == 2 && t->shape[0] == s->shape[0] && t->shape[1] == s->shape[1])
            s->layout = ZS_SD_NAME_PLAIN;
        int64_t want[4] = {s->shape[0], s->shape[1], 1, 1};
        int wn = s->layout == ZS_SD_NAME_CONV1X1 ? 4 : s->ndim;
        const int64_t *ws = s->layout == ZS_SD_NAME_CONV1X1 ? want : s->shape;
        int same = t->ndim == wn;
        for (int k = 0; same && k < wn; k++) same = t->shape[k] == ws[k];
        if (!same)
            return ZS_ERR(ZS_EFORMAT, "%s: tensor %s is %s %s, expected %s (%s slot %s)", zs_st_file_path(st, t->file),
                          fname, zs_dtype_name(t->dtype), shape_str(t->ndim, t->shape, a, sizeof a),
                          shape_str(wn, ws, e, sizeof e), u ? "unet" : "vae", s->name);
        if (!zs_dtype_is_float(t->dtype))
            return ZS_ERR(ZS_EFORMAT, "%s: tensor %s is %s, expected a float dtype", zs_st_file_path(st, t->file), fname,
                          zs_dtype_name(t->dtype));
        s->src = t;
    }
    // extras: bound entries are marked through a lookup of src pointers
    zs_st *sts[2] = {p->unet_st, p->vae_st};
    int nst = p->unet_st == p->vae_st ? 1 : 2;
    int groups_n[8] = {0};
    const char *groups[8] = {0};
    for (int k = 0; k < nst; k++) {
        int n = zs_st_count(sts[k]);
        char *bound = calloc((size_t)n + 1, 1);
        if (!bound) return ZS_ERR(ZS_ENOMEM, "sd plan: out of memory");
        for (int i = 0; i < p->n_slots; i++) {
            const zs_sd_slot *s = &p->slots[i];
            if ((s->part == ZS_SD_UNET ? p->unet_st : p->vae_st) != sts[k]) continue;
            for (int j = 0; j < n; j++)
                if (zs_st_at(sts[k], j) == s->src) {
                    bound[j] = 1;
                    break;
                }
        }
        for (int j = 0; j < n; j++) {
            if (bound[j]) continue;
            const zs_st_entry *t = zs_st_at(sts[k], j);
            const char *ex = NULL;
            if (!p->single_file) ex = sts[k] == p->unet_st ? "unet" : "vae";
            else if (!strncmp(t->name, "model.diffusion_model.", 22)) ex = "unet";
            else if (!strncmp(t->name, "first_stage_model.", 18)) ex = "vae";
            if (ex) {
                zs_status s = ZS_ERR(ZS_EFORMAT, "%s: extra tensor %s: not a %s parameter of this config (%s naming)",
                                     zs_st_file_path(sts[k], t->file), t->name, ex,
                                     zs_sd_format_name(ex[0] == 'u' ? p->unet_format : p->vae_format));
                free(bound);
                return s;
            }
            const char *g = zs_sd_other_group(t->name);
            int q = 0;
            while (q < 8 && groups[q] && strcmp(groups[q], g)) q++;
            if (q < 8) groups[q] = g, groups_n[q]++;
            const char **u = realloc(p->unused, (size_t)(p->n_unused + 1) * sizeof *u);
            if (!u) {
                free(bound);
                return ZS_ERR(ZS_ENOMEM, "sd plan: out of memory");
            }
            p->unused = u;
            p->unused[p->n_unused++] = t->name;
        }
        free(bound);
    }
    for (int q = 0; q < 8 && groups[q]; q++) note(p, "%d tensors: %s; ", groups_n[q], groups[q]);
    return ZS_OK;
}

static int is_dir(const char *p) {
    struct stat sb;
    return !stat(p, &sb) && S_ISDIR(sb.st_mode);
}

static const zs_st_entry *find_suffix(const zs_st *st, const char *prefix, const char *suffix) {
    size_t lp = strlen(prefix), ls = strlen(suffix);
    for (int i = 0; i < zs_st_count(st); i++) {
        const zs_st_entry *e = zs_st_at(st, i);
        size_t k = strlen(e->name);
        if (k > lp + ls && !strncmp(e->name, prefix, lp) && !strcmp(e->name + k - ls, suffix)) return e;
    }
    return NULL;
}

static int has_prefix(const zs_st *st, const char *prefix) {
    size_t lp = strlen(prefix);
    for (int i = 0; i < zs_st_count(st); i++)
        if (!strncmp(zs_st_at(st, i)->name, prefix, lp)) return 1;
    return 0;
}

// SD 1.x vs 2.x of a single file, by its text encoder, else its cross-attention width, else
// the shape of proj_in (conv in 1.x, linear in 2.x).
static zs_status detect_version(zs_sd_plan *p, const char *path) {
    const zs_st *st = p->unet_st;
    if (!has_prefix(st, "model.diffusion_model."))
        return ZS_ERR(ZS_EFORMAT, "%s: no model.diffusion_model.* tensors: not an SD single file", path);
    if (has_prefix(st, "cond_stage_model.transformer.")) {
        p->version = 1;
        note(p, "SD 1.x: text encoder cond_stage_model.transformer.* (transformers CLIP); ");
        return ZS_OK;
    }
    if (has_prefix(st, "cond_stage_model.model.")) {
        p->version = 2;
        note(p, "SD 2.x: text encoder cond_stage_model.model.* (OpenCLIP); ");
        return ZS_OK;
    }
    const zs_st_entry *k = find_suffix(st, "model.diffusion_model.", "attn2.to_k.weight");
    if (k && k->ndim == 2 && (k->shape[1] == 768 || k->shape[1] == 1024)) {
        p->version = k->shape[1] == 768 ? 1 : 2;
        note(p, "SD %d.x: no text encoder; cross-attention width %lld (%s); ", p->version, (long long)k->shape[1],
             k->name);
        return ZS_OK;
    }
    const zs_st_entry *pi = find_suffix(st, "model.diffusion_model.", "proj_in.weight");
    if (pi && (pi->ndim == 4 || pi->ndim == 2)) {
        p->version = pi->ndim == 4 ? 1 : 2;
        note(p, "SD %d.x: no text encoder; proj_in is %s (%s); ", p->version, pi->ndim == 4 ? "a 1x1 conv" : "linear",
             pi->name);
        return ZS_OK;
    }
    return ZS_ERR(ZS_EFORMAT, "%s: cannot tell SD 1.x from 2.x (no cond_stage_model.*, attn2.to_k or proj_in)", path);
}

static zs_status load_configs(zs_sd_plan *p, const char *dir) {
    char c[1200];
    snprintf(c, sizeof c, "%s/unet/config.json", dir);
    ZS_TRY(zs_sd_unet_config_load(&p->unet, c));
    snprintf(c, sizeof c, "%s/vae/config.json", dir);
    ZS_TRY(zs_sd_vae_config_load(&p->vae, c));
    return ZS_OK;
}

static zs_status plan_open(zs_sd_plan *p, const char *path, const zs_sd_plan_opts *o) {
    char c[1200];
    if (is_dir(path)) {
        ZS_TRY(load_configs(p, path));
        snprintf(c, sizeof c, "%s/unet", path);
        ZS_TRY(zs_st_open_ex(&p->unet_st, c, o->st_flags));
        snprintf(c, sizeof c, "%s/vae", path);
        ZS_TRY(zs_st_open_ex(&p->vae_st, c, o->st_flags));
        p->unet_format = ZS_SD_FMT_DIFFUSERS;
        p->vae_format = zs_st_find(p->vae_st, "encoder.mid_block.attentions.0.query.weight") ||
                                zs_st_find(p->vae_st, "decoder.mid_block.attentions.0.query.weight")
                            ? ZS_SD_FMT_DIFFUSERS_OLD
                            : ZS_SD_FMT_DIFFUSERS;
        p->version = p->unet.cross_attention_dim == 1024 || p->unet.use_linear_projection ? 2 : 1;
        note(p, "SD %d.x: from unet/config.json (cross_attention_dim %d, use_linear_projection %s); ", p->version,
             p->unet.cross_attention_dim, p->unet.use_linear_projection ? "true" : "false");
        if (p->vae_format == ZS_SD_FMT_DIFFUSERS_OLD) note(p, "VAE attention has the legacy names query/key/value/proj_attn; ");
    } else {
        ZS_TRY(zs_st_open_ex(&p->unet_st, path, o->st_flags));
        p->vae_st = p->unet_st;
        p->single_file = 1;
        p->unet_format = p->vae_format = ZS_SD_FMT_LDM;
        ZS_TRY(detect_version(p, path));
        if (o->config_dir) {
            ZS_TRY(load_configs(p, o->config_dir));
            note(p, "configs from %s; ", o->config_dir);
        } else {
            zs_sd_unet_config_default(&p->unet, p->version);
            zs_sd_vae_config_default(&p->vae, p->version);
            note(p, "no config in a single file: the SD %s UNet/VAE configs are assumed; ", p->version == 1 ? "1.5" : "2.1 (768-v)");
        }
    }
    ZS_TRY(zs_sd_slots(&p->unet, &p->vae, &p->slots, &p->n_slots, &p->n_unet_slots));
    zs_status s = bind(p);
    if (s != ZS_OK && p->single_file && !o->config_dir)
        return zs_fail_context(s, "planned with the assumed SD %s config (a single file carries none; pass a diffusers "
                                  "folder's unet/ vae/ configs as config_dir)",
                               p->version == 1 ? "1.5" : "2.1");
    return s;
}

zs_status zs_sd_plan_open(zs_sd_plan **out, const char *path, const zs_sd_plan_opts *opts) {
    zs_sd_plan_opts o = {0};
    if (opts) o = *opts;
    *out = NULL;
    zs_sd_plan *p = calloc(1, sizeof *p);
    if (!p) return ZS_ERR(ZS_ENOMEM, "sd plan: out of memory");
    zs_status s = plan_open(p, path, &o);
    if (s != ZS_OK) {
        zs_sd_plan_free(p);
        return s;
    }
    *out = p;
    return ZS_OK;
}

void zs_sd_plan_free(zs_sd_plan *p) {
    if (!p) return;
    zs_sd_slots_free(p->slots, p->n_slots);
    free(p->unused);
    if (p->vae_st != p->unet_st) zs_st_close(p->vae_st);
    zs_st_close(p->unet_st);
    free(p);
}

const zs_sd_slot *zs_sd_plan_find(const zs_sd_plan *p, zs_sd_part part, const char *name) {
    for (int i = 0; i < p->n_slots; i++)
        if (p->slots[i].part == part && !strcmp(p->slots[i].name, name)) return &p->slots[i];
    return NULL;
}

zs_status zs_sd_slot_load(const zs_sd_plan *p, const zs_sd_slot *sl, zs_tensor *t, const char *what) {
    if (sl->ndim != t->ndim || memcmp(sl->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim))
        return ZS_ERR(ZS_EFORMAT, "%s: slot %s has a different shape from the model's parameter", what, sl->name);
    if (!sl->src) return ZS_ERR(ZS_EFORMAT, "%s: plan slot %s is not bound to a file tensor", what, sl->name);
    zs_tensor view = *t;
    if (sl->layout == ZS_SD_NAME_CONV1X1) {  // file [O, I, 1, 1] into the linear [O, I] memory
        int64_t sh[4] = {t->shape[0], t->shape[1], 1, 1};
        ZS_TRY(zs_view(&view, t, 0, 4, sh));
    }
    return zs_st_load(sl->part == ZS_SD_UNET ? p->unet_st : p->vae_st, sl->src->name, &view);
}
