#include "models/clip_vision.h"
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "models/patchify.h"

static int64_t grid(const zs_clip_vision_cfg *c) { return (int64_t)(c->image_h / c->patch) * (c->image_w / c->patch); }

static zs_status layout_params(zs_arena *a, zs_clip_vision_params *p, const zs_clip_vision_cfg *c, const zs_tf_cfg *tf,
                               zs_dtype dt) {
    int64_t W = c->width, K = (int64_t)c->channels * c->patch * c->patch;
    int64_t wk[2] = {W, K}, w[1] = {W}, pw[2] = {1 + grid(c), W}, ew[2] = {c->embed, W};
    ZS_TRY(zs_arena_tensor(a, &p->patch_w, dt, 2, wk, "vision.patch_embedding"));
    ZS_TRY(zs_arena_tensor(a, &p->cls, dt, 1, w, "vision.class_embedding"));
    ZS_TRY(zs_arena_tensor(a, &p->pos, dt, 2, pw, "vision.positional_embedding"));
    ZS_TRY(zs_arena_tensor(a, &p->ln_pre_w, dt, 1, w, "vision.ln_pre.weight"));
    ZS_TRY(zs_arena_tensor(a, &p->ln_pre_b, dt, 1, w, "vision.ln_pre.bias"));
    for (int i = 0; i < c->layers; i++) ZS_TRY(zs_tf_block_alloc(a, &p->blocks[i], tf, dt));
    ZS_TRY(zs_arena_tensor(a, &p->ln_post_w, dt, 1, w, "vision.ln_post.weight"));
    ZS_TRY(zs_arena_tensor(a, &p->ln_post_b, dt, 1, w, "vision.ln_post.bias"));
    if (c->embed) ZS_TRY(zs_arena_tensor(a, &p->proj, dt, 2, ew, "vision.projection"));
    return ZS_OK;
}

static zs_status alloc_params(zs_clip_vision *v, zs_arena *a, zs_clip_vision_params *p, const char *name) {
    p->blocks = calloc((size_t)v->cfg.layers + 1, sizeof *p->blocks);
    if (!p->blocks) return ZS_ERR(ZS_ENOMEM, "clip vision: block table");
    zs_arena m;
    zs_arena_measure(&m, name, v->dev);
    ZS_TRY(layout_params(&m, p, &v->cfg, &v->tf, v->dtype));
    if (v->shapes_only) {  // plan only: shapes, no memory
        *a = m;
        return ZS_OK;
    }
    ZS_TRY(zs_arena_init(a, name, v->dev, m.peak));
    return layout_params(a, p, &v->cfg, &v->tf, v->dtype);
}

zs_status zs_clip_vision_init(zs_clip_vision *v, const zs_clip_vision_cfg *c, zs_device dev, zs_dtype dt, int shapes_only) {
    memset(v, 0, sizeof *v);
    if (c->layers < 1 || c->width < 1 || c->heads < 1 || c->width % c->heads || c->patch < 1 || c->channels < 1 ||
        c->image_h < c->patch || c->image_w < c->patch || c->mlp < 1 || c->embed < 0)
        return ZS_ERR(ZS_EINVAL, "clip vision: bad config (image %dx%d, patch %d, width %d, heads %d, layers %d)",
                      c->image_h, c->image_w, c->patch, c->width, c->heads, c->layers);
    v->cfg = *c;
    v->tf = (zs_tf_cfg){c->width, c->heads, c->mlp, c->act, c->eps, 0};
    v->dev = dev;
    v->dtype = dt;
    v->shapes_only = shapes_only;
    return alloc_params(v, &v->params, &v->p, "vision params");
}

zs_status zs_clip_vision_grads(zs_clip_vision *v) {
    if (v->shapes_only) return ZS_ERR(ZS_EINVAL, "clip vision: planned only (no memory)");
    if (!v->g.blocks) ZS_TRY(alloc_params(v, &v->grads, &v->g, "vision grads"));
    return zs_clip_vision_zero_grads(v);
}

zs_status zs_clip_vision_zero_grads(zs_clip_vision *v) {
    if (!v->grads.base) return ZS_ERR(ZS_EINVAL, "clip vision: no gradient buffers (call zs_clip_vision_grads)");
    return zs_memset0(v->grads.base, v->dev, v->grads.used);
}

void zs_clip_vision_free(zs_clip_vision *v) {
    zs_arena_free(&v->params);
    zs_arena_free(&v->grads);
    zs_arena_free(&v->acts);
    free(v->p.blocks);
    free(v->g.blocks);
    free(v->a.hidden);
    free(v->a.blocks);
    memset(v, 0, sizeof *v);
}

int zs_clip_vision_count(const zs_clip_vision *v) { return 7 + (v->cfg.embed ? 1 : 0) + ZS_TF_BLOCK_NTENSORS * v->cfg.layers; }

zs_tensor *zs_clip_vision_tensor(zs_clip_vision *v, zs_clip_vision_params *p, int i) {
    zs_tensor *head[5] = {&p->patch_w, &p->cls, &p->pos, &p->ln_pre_w, &p->ln_pre_b};
    int nb = ZS_TF_BLOCK_NTENSORS * v->cfg.layers;
    if (i < 0) return NULL;
    if (i < 5) return head[i];
    if (i < 5 + nb) return zs_tf_block_tensor(&p->blocks[(i - 5) / ZS_TF_BLOCK_NTENSORS], (i - 5) % ZS_TF_BLOCK_NTENSORS);
    i -= 5 + nb;
    if (i == 0) return &p->ln_post_w;
    if (i == 1) return &p->ln_post_b;
    if (i == 2 && v->cfg.embed) return &p->proj;
    return NULL;
}

static zs_status layout_acts(zs_arena *ar, zs_clip_vision *v, int64_t B, int train) {
    zs_clip_vision_acts *a = &v->a;
    const zs_clip_vision_cfg *c = &v->cfg;
    zs_dtype dt = v->dtype;
    int64_t G = grid(c), T = 1 + G, W = c->width, K = (int64_t)c->channels * c->patch * c->patch;
    int64_t bgk[3] = {B, G, K}, btw[3] = {B, T, W}, nt[1] = {B * T}, nb[1] = {B}, bw[2] = {B, W},
            be[2] = {B, c->embed ? c->embed : W};
    ZS_TRY(zs_arena_tensor(ar, &a->patches, dt, 3, bgk, "vision.patches"));
    ZS_TRY(zs_arena_tensor(ar, &a->emb, dt, 3, btw, "vision.embeddings"));
    ZS_TRY(zs_arena_tensor(ar, &a->pre_mean, ZS_F32, 1, nt, "vision.ln_pre.mean"));
    ZS_TRY(zs_arena_tensor(ar, &a->pre_rstd, ZS_F32, 1, nt, "vision.ln_pre.rstd"));
    for (int i = 0; i <= c->layers; i++) ZS_TRY(zs_arena_tensor(ar, &a->hidden[i], dt, 3, btw, "vision.hidden"));
    for (int i = 0; i < (train ? c->layers : 1); i++) ZS_TRY(zs_tf_acts_alloc(ar, &a->blocks[i], &v->tf, B, T, dt));
    ZS_TRY(zs_arena_tensor(ar, &a->cls_tok, dt, 2, bw, "vision.cls"));
    ZS_TRY(zs_arena_tensor(ar, &a->post_mean, ZS_F32, 1, nb, "vision.ln_post.mean"));
    ZS_TRY(zs_arena_tensor(ar, &a->post_rstd, ZS_F32, 1, nb, "vision.ln_post.rstd"));
    ZS_TRY(zs_arena_tensor(ar, &a->pooled, dt, 2, bw, "vision.pooled"));
    if (c->embed) ZS_TRY(zs_arena_tensor(ar, &a->features, dt, 2, be, "vision.features"));
    else a->features = a->pooled;
    if (train) {
        ZS_TRY(zs_tf_scratch_alloc(ar, &a->scratch, &v->tf, B, T, dt));
        ZS_TRY(zs_arena_tensor(ar, &a->dh, dt, 3, btw, "vision.d.hidden"));
        ZS_TRY(zs_arena_tensor(ar, &a->dh2, dt, 3, btw, "vision.d.hidden2"));
        ZS_TRY(zs_arena_tensor(ar, &a->dcls, dt, 2, bw, "vision.d.cls"));
        ZS_TRY(zs_arena_tensor(ar, &a->dpooled, dt, 2, bw, "vision.d.pooled"));
        ZS_TRY(zs_arena_tensor(ar, &a->dpatches, dt, 3, bgk, "vision.d.patches"));
    }
    return ZS_OK;
}

zs_status zs_clip_vision_setup(zs_clip_vision *v, int64_t B, int train) {
    zs_clip_vision_acts *a = &v->a;
    if (v->shapes_only) return ZS_ERR(ZS_EINVAL, "clip vision: planned only (no memory)");
    if (B < 1) return ZS_ERR(ZS_EINVAL, "clip vision: batch %lld", (long long)B);
    if (a->hidden && a->B == B && a->train == train) return ZS_OK;
    zs_arena_free(&v->acts);
    free(a->hidden);
    free(a->blocks);
    memset(a, 0, sizeof *a);
    a->hidden = calloc((size_t)v->cfg.layers + 1, sizeof *a->hidden);
    a->blocks = calloc((size_t)v->cfg.layers, sizeof *a->blocks);
    if (!a->hidden || !a->blocks) return ZS_ERR(ZS_ENOMEM, "clip vision: activation tables");
    zs_arena m;
    zs_arena_measure(&m, "vision acts", v->dev);
    ZS_TRY(layout_acts(&m, v, B, train));
    ZS_TRY(zs_arena_init(&v->acts, "vision acts", v->dev, m.peak));
    ZS_TRY(layout_acts(&v->acts, v, B, train));
    a->B = B, a->T = 1 + grid(&v->cfg), a->train = train;
    return ZS_OK;
}

// Rows [r, r + n) of batch b of a [B, T, X] tensor as [n, X].
static zs_status rows(zs_tensor *o, const zs_tensor *t, int64_t b, int64_t r, int64_t n) {
    int64_t sh[2] = {n, t->shape[2]};
    return zs_view(o, t, (b * t->shape[1] + r) * t->shape[2], 2, sh);
}
static zs_status vec(zs_tensor *o, const zs_tensor *t, int64_t off, int64_t n) { return zs_view(o, t, off, 1, &n); }

zs_status zs_clip_vision_fwd(zs_clip_vision *v, const zs_tensor *image) {
    zs_clip_vision_acts *a = &v->a;
    const zs_clip_vision_cfg *c = &v->cfg;
    if (!a->hidden) return ZS_ERR(ZS_EINVAL, "clip vision: forward before zs_clip_vision_setup");
    int64_t B = a->B, T = a->T, W = c->width;
    int64_t want[4] = {B, c->channels, c->image_h, c->image_w};
    ZS_TRY(zs_check_shape(image, "clip vision: image", 4, want));
    ZS_TRY(zs_patchify_fwd(&a->patches, image, c->patch));
    for (int64_t b = 0; b < B; b++) {
        zs_tensor e, pt, cls;
        ZS_TRY(rows(&e, &a->emb, b, 1, T - 1));
        ZS_TRY(rows(&pt, &a->patches, b, 0, T - 1));
        ZS_TRY(zs_linear_fwd(&e, &pt, &v->p.patch_w, NULL));
        ZS_TRY(vec(&cls, &a->emb, b * T * W, W));
        ZS_TRY(zs_memcpy(cls.data, v->dev, v->p.cls.data, v->dev, zs_nbytes(&cls)));
        ZS_TRY(rows(&e, &a->emb, b, 0, T));
        ZS_TRY(zs_add_fwd(&e, &e, &v->p.pos));
    }
    ZS_TRY(zs_layernorm_fwd(&a->hidden[0], &a->pre_mean, &a->pre_rstd, &a->emb, &v->p.ln_pre_w, &v->p.ln_pre_b, c->eps));
    for (int i = 0; i < c->layers; i++)
        ZS_TRY(zs_tf_block_fwd(&v->tf, &v->p.blocks[i], &a->blocks[a->train ? i : 0], &a->hidden[i], &a->hidden[i + 1]));
    for (int64_t b = 0; b < B; b++) {
        zs_tensor src, dst;
        ZS_TRY(vec(&src, &a->hidden[c->layers], b * T * W, W));
        ZS_TRY(vec(&dst, &a->cls_tok, b * W, W));
        ZS_TRY(zs_memcpy(dst.data, v->dev, src.data, v->dev, zs_nbytes(&src)));
    }
    ZS_TRY(zs_layernorm_fwd(&a->pooled, &a->post_mean, &a->post_rstd, &a->cls_tok, &v->p.ln_post_w, &v->p.ln_post_b,
                            c->eps));
    if (c->embed) ZS_TRY(zs_linear_fwd(&a->features, &a->pooled, &v->p.proj, NULL));
    return ZS_OK;
}

zs_status zs_clip_vision_bwd(zs_clip_vision *v, const zs_tensor *d_hidden, const zs_tensor *d_pooled,
                             const zs_tensor *d_features, zs_tensor *d_image) {
    zs_clip_vision_acts *a = &v->a;
    const zs_clip_vision_cfg *c = &v->cfg;
    if (!a->train) return ZS_ERR(ZS_EINVAL, "clip vision: backward needs zs_clip_vision_setup(..., train = 1)");
    if (!v->g.blocks) return ZS_ERR(ZS_EINVAL, "clip vision: backward needs gradient buffers (zs_clip_vision_grads)");
    zs_clip_vision_params *p = &v->p, *g = &v->g;
    int64_t B = a->B, T = a->T, W = c->width;
    // head: features = ln_post(hidden[layers][:, 0]) @ proj^T
    zs_tensor *dh = &a->dh, *dh2 = &a->dh2;
    ZS_TRY(zs_zero(dh));
    if (d_hidden) ZS_TRY(zs_add_bwd(dh, NULL, d_hidden));
    if (d_features || d_pooled) {
        ZS_TRY(zs_zero(&a->dpooled));
        ZS_TRY(zs_zero(&a->dcls));
        if (d_features && c->embed) ZS_TRY(zs_linear_bwd(&a->dpooled, &g->proj, NULL, d_features, &a->pooled, &p->proj));
        else if (d_features) ZS_TRY(zs_add_bwd(&a->dpooled, NULL, d_features));
        if (d_pooled) ZS_TRY(zs_add_bwd(&a->dpooled, NULL, d_pooled));
        ZS_TRY(zs_layernorm_bwd(&a->dcls, &g->ln_post_w, &g->ln_post_b, &a->dpooled, &a->cls_tok, &p->ln_post_w,
                                &a->post_mean, &a->post_rstd));
        for (int64_t b = 0; b < B; b++) {
            zs_tensor src, dst;
            ZS_TRY(vec(&src, &a->dcls, b * W, W));
            ZS_TRY(vec(&dst, dh, b * T * W, W));
            ZS_TRY(zs_add_bwd(&dst, NULL, &src));
        }
    }
    for (int i = c->layers; i > 0; i--) {
        ZS_TRY(zs_zero(dh2));
        ZS_TRY(zs_tf_block_bwd(&v->tf, &p->blocks[i - 1], &g->blocks[i - 1], &a->blocks[i - 1], &a->scratch,
                               &a->hidden[i - 1], dh, dh2));
        zs_tensor *tmp = dh;
        dh = dh2, dh2 = tmp;
    }
    // ln_pre, then positions, class token and the patch linear
    ZS_TRY(zs_zero(dh2));
    ZS_TRY(zs_layernorm_bwd(dh2, &g->ln_pre_w, &g->ln_pre_b, dh, &a->emb, &p->ln_pre_w, &a->pre_mean, &a->pre_rstd));
    zs_tensor *demb = dh2;
    ZS_TRY(zs_zero(&a->dpatches));
    for (int64_t b = 0; b < B; b++) {
        zs_tensor e, pt, dpt;
        ZS_TRY(rows(&e, demb, b, 0, T));
        ZS_TRY(zs_add_bwd(&g->pos, NULL, &e));
        ZS_TRY(vec(&e, demb, b * T * W, W));
        ZS_TRY(zs_add_bwd(&g->cls, NULL, &e));
        ZS_TRY(rows(&e, demb, b, 1, T - 1));
        ZS_TRY(rows(&pt, &a->patches, b, 0, T - 1));
        ZS_TRY(rows(&dpt, &a->dpatches, b, 0, T - 1));
        ZS_TRY(zs_linear_bwd(d_image ? &dpt : NULL, &g->patch_w, NULL, &e, &pt, &p->patch_w));
    }
    if (d_image) ZS_TRY(zs_patchify_bwd(d_image, &a->dpatches, c->patch));
    return ZS_OK;
}
