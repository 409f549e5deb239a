#include "models/clip_text.h"
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"

static zs_status layout_params(zs_arena *a, zs_clip_text_params *p, const zs_clip_text_cfg *c, const zs_tf_cfg *tf,
                               zs_dtype dt) {
    int64_t vw[2] = {c->vocab, c->width}, pw[2] = {c->n_pos, c->width}, w[1] = {c->width}, ew[2] = {c->embed, c->width};
    ZS_TRY(zs_arena_tensor(a, &p->tok, dt, 2, vw, "text.token_embedding"));
    ZS_TRY(zs_arena_tensor(a, &p->pos, dt, 2, pw, "text.positional_embedding"));
    for (int i = 0; i < c->layers; i++) ZS_TRY(zs_tf_block_alloc(a, &p->blocks[i], tf, dt));
    ZS_TRY(zs_arena_tensor(a, &p->lnf_w, dt, 1, w, "text.ln_final.weight"));
    ZS_TRY(zs_arena_tensor(a, &p->lnf_b, dt, 1, w, "text.ln_final.bias"));
    if (c->embed) ZS_TRY(zs_arena_tensor(a, &p->proj, dt, 2, ew, "text.projection"));
    return ZS_OK;
}

// Measure, allocate, lay out for real: the llm.c pattern every arena here follows.
static zs_status alloc_params(zs_clip_text *t, zs_arena *a, zs_clip_text_params *p, const char *name) {
    p->blocks = calloc((size_t)t->cfg.layers + 1, sizeof *p->blocks);
    if (!p->blocks) return ZS_ERR(ZS_ENOMEM, "clip text: block table");
    zs_arena m;
    zs_arena_measure(&m, name, t->dev);
    ZS_TRY(layout_params(&m, p, &t->cfg, &t->tf, t->dtype));
    if (t->shapes_only) {  // plan only: shapes, no memory
        *a = m;
        return ZS_OK;
    }
    ZS_TRY(zs_arena_init(a, name, t->dev, m.peak));
    return layout_params(a, p, &t->cfg, &t->tf, t->dtype);
}

zs_status zs_clip_text_init(zs_clip_text *t, const zs_clip_text_cfg *c, zs_device dev, zs_dtype dt, int shapes_only) {
    memset(t, 0, sizeof *t);
    if (c->layers < 1 || c->width < 1 || c->heads < 1 || c->width % c->heads || c->vocab < 1 || c->n_pos < 1 ||
        c->mlp < 1 || c->embed < 0 || c->out_layer < 0 || c->out_layer > c->layers)
        return ZS_ERR(ZS_EINVAL, "clip text: bad config (width %d, heads %d, layers %d, out_layer %d)", c->width, c->heads,
                      c->layers, c->out_layer);
    t->cfg = *c;
    t->tf = (zs_tf_cfg){c->width, c->heads, c->mlp, c->act, c->eps, 1};
    t->dev = dev;
    t->dtype = dt;
    t->shapes_only = shapes_only;
    return alloc_params(t, &t->params, &t->p, "text params");
}

zs_status zs_clip_text_grads(zs_clip_text *t) {
    if (t->shapes_only) return ZS_ERR(ZS_EINVAL, "clip text: planned only (no memory)");
    if (!t->g.blocks) ZS_TRY(alloc_params(t, &t->grads, &t->g, "text grads"));
    return zs_clip_text_zero_grads(t);
}

zs_status zs_clip_text_zero_grads(zs_clip_text *t) {
    if (!t->grads.base) return ZS_ERR(ZS_EINVAL, "clip text: no gradient buffers (call zs_clip_text_grads)");
    return zs_memset0(t->grads.base, t->dev, t->grads.used);
}

void zs_clip_text_free(zs_clip_text *t) {
    zs_arena_free(&t->params);
    zs_arena_free(&t->grads);
    zs_arena_free(&t->acts);
    free(t->p.blocks);
    free(t->g.blocks);
    free(t->a.hidden);
    free(t->a.blocks);
    free(t->a.pool_idx);
    memset(t, 0, sizeof *t);
}

int zs_clip_text_count(const zs_clip_text *t) { return 4 + (t->cfg.embed ? 1 : 0) + ZS_TF_BLOCK_NTENSORS * t->cfg.layers; }

zs_tensor *zs_clip_text_tensor(zs_clip_text *t, zs_clip_text_params *p, int i) {
    int nb = ZS_TF_BLOCK_NTENSORS * t->cfg.layers;
    if (i < 0) return NULL;
    if (i < 2) return i == 0 ? &p->tok : &p->pos;
    if (i < 2 + nb) return zs_tf_block_tensor(&p->blocks[(i - 2) / ZS_TF_BLOCK_NTENSORS], (i - 2) % ZS_TF_BLOCK_NTENSORS);
    i -= 2 + nb;
    if (i == 0) return &p->lnf_w;
    if (i == 1) return &p->lnf_b;
    if (i == 2 && t->cfg.embed) return &p->proj;
    return NULL;
}

static zs_status layout_acts(zs_arena *ar, zs_clip_text *t, int64_t B, int64_t L, int train) {
    zs_clip_text_acts *a = &t->a;
    const zs_clip_text_cfg *c = &t->cfg;
    zs_dtype dt = t->dtype;
    int64_t bl[2] = {B, L}, blw[3] = {B, L, c->width}, n[1] = {B * L}, bw[2] = {B, c->width},
            be[2] = {B, c->embed ? c->embed : c->width};
    ZS_TRY(zs_arena_tensor(ar, &a->ids, ZS_I32, 2, bl, "text.ids"));
    for (int i = 0; i <= c->layers; i++) ZS_TRY(zs_arena_tensor(ar, &a->hidden[i], dt, 3, blw, "text.hidden"));
    for (int i = 0; i < (train ? c->layers : 1); i++) ZS_TRY(zs_tf_acts_alloc(ar, &a->blocks[i], &t->tf, B, L, dt));
    ZS_TRY(zs_arena_tensor(ar, &a->tokens, dt, 3, blw, "text.tokens"));
    ZS_TRY(zs_arena_tensor(ar, &a->tok_mean, ZS_F32, 1, n, "text.tokens.mean"));
    ZS_TRY(zs_arena_tensor(ar, &a->tok_rstd, ZS_F32, 1, n, "text.tokens.rstd"));
    if (c->out_layer != c->layers) {
        ZS_TRY(zs_arena_tensor(ar, &a->final, dt, 3, blw, "text.final"));
        ZS_TRY(zs_arena_tensor(ar, &a->fin_mean, ZS_F32, 1, n, "text.final.mean"));
        ZS_TRY(zs_arena_tensor(ar, &a->fin_rstd, ZS_F32, 1, n, "text.final.rstd"));
    } else {
        a->final = a->tokens, a->fin_mean = a->tok_mean, a->fin_rstd = a->tok_rstd;
    }
    ZS_TRY(zs_arena_tensor(ar, &a->pooled, dt, 2, bw, "text.pooled"));
    if (c->embed) ZS_TRY(zs_arena_tensor(ar, &a->features, dt, 2, be, "text.features"));
    else a->features = a->pooled;
    if (train) {
        ZS_TRY(zs_tf_scratch_alloc(ar, &a->scratch, &t->tf, B, L, dt));
        ZS_TRY(zs_arena_tensor(ar, &a->dh, dt, 3, blw, "text.d.hidden"));
        ZS_TRY(zs_arena_tensor(ar, &a->dh2, dt, 3, blw, "text.d.hidden2"));
        ZS_TRY(zs_arena_tensor(ar, &a->dfinal, dt, 3, blw, "text.d.final"));
        ZS_TRY(zs_arena_tensor(ar, &a->dpooled, dt, 2, bw, "text.d.pooled"));
    }
    return ZS_OK;
}

zs_status zs_clip_text_setup(zs_clip_text *t, int64_t B, int64_t L, int train) {
    zs_clip_text_acts *a = &t->a;
    if (t->shapes_only) return ZS_ERR(ZS_EINVAL, "clip text: planned only (no memory)");
    if (B < 1 || L < 1 || L > t->cfg.n_pos)
        return ZS_ERR(ZS_EINVAL, "clip text: batch %lld x length %lld (at most %d positions)", (long long)B, (long long)L,
                      t->cfg.n_pos);
    if (a->hidden && a->B == B && a->L == L && a->train == train) return ZS_OK;
    zs_arena_free(&t->acts);
    free(a->hidden);
    free(a->blocks);
    free(a->pool_idx);
    memset(a, 0, sizeof *a);
    a->hidden = calloc((size_t)t->cfg.layers + 1, sizeof *a->hidden);
    a->blocks = calloc((size_t)t->cfg.layers, sizeof *a->blocks);
    a->pool_idx = calloc((size_t)B, sizeof *a->pool_idx);
    if (!a->hidden || !a->blocks || !a->pool_idx) return ZS_ERR(ZS_ENOMEM, "clip text: activation tables");
    zs_arena m;
    zs_arena_measure(&m, "text acts", t->dev);
    ZS_TRY(layout_acts(&m, t, B, L, train));
    ZS_TRY(zs_arena_init(&t->acts, "text acts", t->dev, m.peak));
    ZS_TRY(layout_acts(&t->acts, t, B, L, train));
    a->B = B, a->L = L, a->train = train;
    return ZS_OK;
}

zs_status zs_pool_index(const zs_clip_text_cfg *c, const int32_t *ids, int64_t B, int64_t L, int32_t *idx) {
    for (int64_t b = 0; b < B; b++) {
        const int32_t *r = ids + b * L;
        int64_t best = 0;
        for (int64_t j = 0; j < L; j++) {
            if (c->pool == ZS_POOL_ARGMAX ? r[j] > r[best] : r[j] == c->eos_id) {
                best = j;
                if (c->pool == ZS_POOL_EOS) break;
            }
        }
        idx[b] = (int32_t)best;
    }
    return ZS_OK;
}

// Row r of a [B, L, W] tensor's batch b as a [n, W] view.
static zs_status tok_rows(zs_tensor *o, const zs_tensor *t, int64_t b, int64_t r, int64_t n) {
    int64_t sh[2] = {n, t->shape[2]};
    return zs_view(o, t, (b * t->shape[1] + r) * t->shape[2], 2, sh);
}

static zs_status copy_rows(const zs_tensor *dst, const zs_tensor *src) {
    return zs_memcpy(dst->data, dst->device, src->data, src->device, zs_nbytes(src));
}

zs_status zs_clip_text_fwd(zs_clip_text *t, const zs_clip_text_in *in) {
    zs_clip_text_acts *a = &t->a;
    const zs_clip_text_cfg *c = &t->cfg;
    int64_t B = a->B, L = a->L, W = c->width;
    if (!a->hidden) return ZS_ERR(ZS_EINVAL, "clip text: forward before zs_clip_text_setup");
    int k = 0;
    if (in->ctx) {
        k = (int)in->ctx->shape[0];
        if (in->ctx->ndim != 2 || in->ctx->shape[1] != W || in->ctx_start < 0 || in->ctx_start + k > L)
            return ZS_ERR(ZS_EINVAL, "clip text: context vectors must be [k, %lld] within %lld positions (start %d)",
                          (long long)W, (long long)L, in->ctx_start);
    }
    for (int64_t i = 0; i < B * L; i++)
        if (in->ids[i] < 0 || in->ids[i] >= c->vocab)
            return ZS_ERR(ZS_EINVAL, "clip text: token id %d at [%lld, %lld] outside the vocabulary (%d)", in->ids[i],
                          (long long)(i / L), (long long)(i % L), c->vocab);
    ZS_TRY(zs_memcpy(a->ids.data, t->dev, in->ids, ZS_CPU, (size_t)(B * L) * sizeof(int32_t)));
    ZS_TRY(zs_pool_index(c, in->ids, B, L, a->pool_idx));
    // embeddings: tokens (or context vectors) + positions
    zs_tensor *h0 = &a->hidden[0], pos;
    int64_t lw[2] = {L, W};
    ZS_TRY(zs_embedding_fwd(h0, &a->ids, &t->p.tok));
    ZS_TRY(zs_view(&pos, &t->p.pos, 0, 2, lw));
    for (int64_t b = 0; b < B; b++) {
        zs_tensor row;
        if (k) {
            ZS_TRY(tok_rows(&row, h0, b, in->ctx_start, k));
            ZS_TRY(copy_rows(&row, in->ctx));
        }
        ZS_TRY(tok_rows(&row, h0, b, 0, L));
        ZS_TRY(zs_add_fwd(&row, &row, &pos));
    }
    // blocks, then the final LN of the requested layer(s)
    int n_run = in->features ? c->layers : c->out_layer;
    for (int i = 0; i < n_run; i++)
        ZS_TRY(zs_tf_block_fwd(&t->tf, &t->p.blocks[i], &a->blocks[a->train ? i : 0], &a->hidden[i], &a->hidden[i + 1]));
    ZS_TRY(zs_layernorm_fwd(&a->tokens, &a->tok_mean, &a->tok_rstd, &a->hidden[c->out_layer], &t->p.lnf_w, &t->p.lnf_b,
                            c->eps));
    if (in->features) {
        if (c->out_layer != c->layers)
            ZS_TRY(zs_layernorm_fwd(&a->final, &a->fin_mean, &a->fin_rstd, &a->hidden[c->layers], &t->p.lnf_w,
                                    &t->p.lnf_b, c->eps));
        for (int64_t b = 0; b < B; b++) {
            zs_tensor src, dst;
            ZS_TRY(tok_rows(&src, &a->final, b, a->pool_idx[b], 1));
            ZS_TRY(zs_rows_view(&dst, &a->pooled, b, 1));
            ZS_TRY(copy_rows(&dst, &src));
        }
        if (c->embed) ZS_TRY(zs_linear_fwd(&a->features, &a->pooled, &t->p.proj, NULL));
    }
    t->ran_layers = n_run, t->ran_features = in->features, t->ctx_k = k, t->ctx_start = in->ctx_start;
    return ZS_OK;
}

zs_status zs_clip_text_bwd(zs_clip_text *t, const zs_tensor *d_tokens, const zs_tensor *d_pooled,
                           const zs_tensor *d_features, zs_tensor *d_ctx) {
    zs_clip_text_acts *a = &t->a;
    const zs_clip_text_cfg *c = &t->cfg;
    int64_t B = a->B, L = a->L, W = c->width;
    if (!a->train) return ZS_ERR(ZS_EINVAL, "clip text: backward needs zs_clip_text_setup(..., train = 1)");
    if (!t->g.blocks) return ZS_ERR(ZS_EINVAL, "clip text: backward needs gradient buffers (zs_clip_text_grads)");
    if ((d_pooled || d_features) && !t->ran_features)
        return ZS_ERR(ZS_EINVAL, "clip text: d_pooled / d_features given but the forward computed no features");
    zs_clip_text_params *p = &t->p, *g = &t->g;
    // head: features = pooled @ proj^T; pooled = final[b, pool_idx[b]]
    int head = d_pooled || d_features;
    if (head) {
        ZS_TRY(zs_zero(&a->dpooled));
        ZS_TRY(zs_zero(&a->dfinal));
        if (d_features && c->embed) ZS_TRY(zs_linear_bwd(&a->dpooled, &g->proj, NULL, d_features, &a->pooled, &p->proj));
        else if (d_features) ZS_TRY(zs_add_bwd(&a->dpooled, NULL, d_features));
        if (d_pooled) ZS_TRY(zs_add_bwd(&a->dpooled, NULL, d_pooled));
        for (int64_t b = 0; b < B; b++) {
            zs_tensor src, dst;
            ZS_TRY(zs_rows_view(&src, &a->dpooled, b, 1));
            ZS_TRY(tok_rows(&dst, &a->dfinal, b, a->pool_idx[b], 1));
            ZS_TRY(zs_add_bwd(&dst, NULL, &src));
        }
    }
    // walk the layers down; dh holds d hidden[i]
    zs_tensor *dh = &a->dh, *dh2 = &a->dh2;
    ZS_TRY(zs_zero(dh));
    int top = head ? c->layers : c->out_layer;
    if (head) {
        if (c->out_layer == c->layers && d_tokens) ZS_TRY(zs_add_bwd(&a->dfinal, NULL, d_tokens));
        ZS_TRY(zs_layernorm_bwd(dh, &g->lnf_w, &g->lnf_b, &a->dfinal, &a->hidden[c->layers], &p->lnf_w, &a->fin_mean,
                                &a->fin_rstd));
    }
    int tokens_done = head && c->out_layer == c->layers;
    for (int i = top; i >= 0; i--) {
        if (i == c->out_layer && d_tokens && !tokens_done)
            ZS_TRY(zs_layernorm_bwd(dh, &g->lnf_w, &g->lnf_b, d_tokens, &a->hidden[i], &p->lnf_w, &a->tok_mean,
                                    &a->tok_rstd));
        if (i == 0) break;
        ZS_TRY(zs_zero(dh2));
        ZS_TRY(zs_tf_block_bwd(&t->tf, &p->blocks[i - 1], &g->blocks[i - 1], &a->blocks[i - 1], &a->scratch,
                               &a->hidden[i - 1], dh, dh2));
        zs_tensor *tmp = dh;
        dh = dh2, dh2 = tmp;
    }
    // embeddings: positions get every batch's gradient; context rows go to d_ctx, not the table
    zs_tensor dpos;
    int64_t lw[2] = {L, W};
    ZS_TRY(zs_view(&dpos, &g->pos, 0, 2, lw));
    for (int64_t b = 0; b < B; b++) {
        zs_tensor row;
        ZS_TRY(tok_rows(&row, dh, b, 0, L));
        ZS_TRY(zs_add_bwd(&dpos, NULL, &row));
        if (t->ctx_k) {
            ZS_TRY(tok_rows(&row, dh, b, t->ctx_start, t->ctx_k));
            if (d_ctx) ZS_TRY(zs_add_bwd(d_ctx, NULL, &row));
            ZS_TRY(zs_zero(&row));
        }
    }
    return zs_embedding_bwd(&g->tok, dh, &a->ids);
}
