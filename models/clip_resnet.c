// CLIP ModifiedResNet vision tower: layout, forward, backward (see models/clip_resnet.h).
#include "models/clip_resnet.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "models/patchify.h"
#include "models/transformer.h"

// ---- geometry and parameters -------------------------------------------------------------
static int64_t stem_side(int64_t S) { return ((S - 1) / 2 + 1) / 2; }  // conv stride 2 pad 1, avgpool(2)

zs_tensor *zs_rn_block_tensor(zs_rn_block *p, int i) {
    zs_tensor *all[ZS_RN_BLOCK_NTENSORS] = {
        &p->conv1,   &p->bn1.w,   &p->bn1.b,   &p->bn1.mean,   &p->bn1.var,   &p->conv2, &p->bn2.w,
        &p->bn2.b,   &p->bn2.mean, &p->bn2.var, &p->conv3,     &p->bn3.w,     &p->bn3.b, &p->bn3.mean,
        &p->bn3.var, &p->ds_conv, &p->ds_bn.w, &p->ds_bn.b,   &p->ds_bn.mean, &p->ds_bn.var};
    if (i < 0 || i >= ZS_RN_BLOCK_NTENSORS || (i >= 15 && !p->ds)) return NULL;
    return all[i];
}

zs_tensor *zs_rn_head_tensor(zs_clip_resnet_params *p, int i) {
    zs_tensor *all[ZS_RN_HEAD_NTENSORS] = {
        &p->conv1, &p->bn1.w, &p->bn1.b, &p->bn1.mean, &p->bn1.var, &p->conv2, &p->bn2.w,  &p->bn2.b,
        &p->bn2.mean, &p->bn2.var, &p->conv3, &p->bn3.w, &p->bn3.b, &p->bn3.mean, &p->bn3.var, &p->pos,
        &p->q_w,   &p->q_b,  &p->k_w,  &p->k_b,     &p->v_w,     &p->v_b,   &p->c_w,    &p->c_b};
    return i >= 0 && i < ZS_RN_HEAD_NTENSORS ? all[i] : NULL;
}

static zs_status conv_alloc(zs_arena *a, zs_tensor *t, zs_dtype dt, int64_t co, int64_t ci, int64_t k, const char *name) {
    int64_t sh[4] = {co, ci, k, k};
    return zs_arena_tensor(a, t, dt, 4, sh, name);
}

static zs_status bn_alloc(zs_arena *a, zs_rn_bn *b, zs_dtype dt, int64_t C, const char *name) {
    ZS_TRY(zs_arena_tensor(a, &b->w, dt, 1, &C, name));
    ZS_TRY(zs_arena_tensor(a, &b->b, dt, 1, &C, name));
    ZS_TRY(zs_arena_tensor(a, &b->mean, ZS_F32, 1, &C, name));
    return zs_arena_tensor(a, &b->var, ZS_F32, 1, &C, name);
}

static zs_status layout_params(zs_arena *a, zs_clip_resnet_params *p, const zs_clip_resnet *r) {
    const zs_clip_resnet_cfg *c = &r->cfg;
    zs_dtype dt = r->dtype;
    int64_t W = c->width, D = r->D, T = 1 + r->G * r->G, E = c->embed;
    ZS_TRY(conv_alloc(a, &p->conv1, dt, W / 2, c->channels, 3, "resnet.stem.conv1"));
    ZS_TRY(bn_alloc(a, &p->bn1, dt, W / 2, "resnet.stem.bn1"));
    ZS_TRY(conv_alloc(a, &p->conv2, dt, W / 2, W / 2, 3, "resnet.stem.conv2"));
    ZS_TRY(bn_alloc(a, &p->bn2, dt, W / 2, "resnet.stem.bn2"));
    ZS_TRY(conv_alloc(a, &p->conv3, dt, W, W / 2, 3, "resnet.stem.conv3"));
    ZS_TRY(bn_alloc(a, &p->bn3, dt, W, "resnet.stem.bn3"));
    for (int i = 0; i < r->nblocks; i++) {
        zs_rn_block *b = &p->blocks[i];
        int64_t P = b->planes;
        ZS_TRY(conv_alloc(a, &b->conv1, dt, P, b->cin, 1, "resnet.block.conv1"));
        ZS_TRY(bn_alloc(a, &b->bn1, dt, P, "resnet.block.bn1"));
        ZS_TRY(conv_alloc(a, &b->conv2, dt, P, P, 3, "resnet.block.conv2"));
        ZS_TRY(bn_alloc(a, &b->bn2, dt, P, "resnet.block.bn2"));
        ZS_TRY(conv_alloc(a, &b->conv3, dt, 4 * P, P, 1, "resnet.block.conv3"));
        ZS_TRY(bn_alloc(a, &b->bn3, dt, 4 * P, "resnet.block.bn3"));
        if (b->ds) {
            ZS_TRY(conv_alloc(a, &b->ds_conv, dt, 4 * P, b->cin, 1, "resnet.block.downsample.conv"));
            ZS_TRY(bn_alloc(a, &b->ds_bn, dt, 4 * P, "resnet.block.downsample.bn"));
        }
    }
    int64_t td[2] = {T, D}, dd[2] = {D, D}, ed[2] = {E, D};
    ZS_TRY(zs_arena_tensor(a, &p->pos, dt, 2, td, "resnet.attnpool.positional_embedding"));
    ZS_TRY(zs_arena_tensor(a, &p->q_w, dt, 2, dd, "resnet.attnpool.q_proj.weight"));
    ZS_TRY(zs_arena_tensor(a, &p->q_b, dt, 1, &D, "resnet.attnpool.q_proj.bias"));
    ZS_TRY(zs_arena_tensor(a, &p->k_w, dt, 2, dd, "resnet.attnpool.k_proj.weight"));
    ZS_TRY(zs_arena_tensor(a, &p->k_b, dt, 1, &D, "resnet.attnpool.k_proj.bias"));
    ZS_TRY(zs_arena_tensor(a, &p->v_w, dt, 2, dd, "resnet.attnpool.v_proj.weight"));
    ZS_TRY(zs_arena_tensor(a, &p->v_b, dt, 1, &D, "resnet.attnpool.v_proj.bias"));
    ZS_TRY(zs_arena_tensor(a, &p->c_w, dt, 2, ed, "resnet.attnpool.c_proj.weight"));
    return zs_arena_tensor(a, &p->c_b, dt, 1, &E, "resnet.attnpool.c_proj.bias");
}

// Block geometry (stage by stage), shared by the parameter and gradient structs.
static void block_geometry(const zs_clip_resnet *r, zs_rn_block *blocks) {
    const zs_clip_resnet_cfg *c = &r->cfg;
    int64_t h = stem_side(c->image);
    int cin = c->width, k = 0;
    for (int s = 0; s < 4; s++)
        for (int j = 0; j < c->layers[s]; j++, k++) {
            zs_rn_block *b = &blocks[k];
            b->planes = c->width << s;
            b->stride = (s > 0 && j == 0) ? 2 : 1;
            b->cin = cin;
            b->ds = b->stride > 1 || cin != 4 * b->planes;
            b->h = b->w = h;
            h /= b->stride;
            cin = 4 * b->planes;
        }
}

static zs_status alloc_params(zs_clip_resnet *r, zs_arena *a, zs_clip_resnet_params *p, const char *name) {
    p->blocks = calloc((size_t)r->nblocks, sizeof *p->blocks);
    if (!p->blocks) return ZS_ERR(ZS_ENOMEM, "clip resnet: block table");
    block_geometry(r, p->blocks);
    zs_arena m;
    zs_arena_measure(&m, name, r->dev);
    ZS_TRY(layout_params(&m, p, r));
    if (r->shapes_only) {
        *a = m;
        return ZS_OK;
    }
    ZS_TRY(zs_arena_init(a, name, r->dev, m.peak));
    return layout_params(a, p, r);
}

zs_status zs_clip_resnet_init(zs_clip_resnet *r, const zs_clip_resnet_cfg *c, zs_device dev, zs_dtype dt, int shapes_only) {
    memset(r, 0, sizeof *r);
    int n = 0, bad = c->width < 2 || c->width % 2 || c->channels < 1 || c->heads < 1 || c->embed < 1 || c->image < 32 ||
                     !(c->eps >= 0) || c->width > (1 << 20);
    for (int s = 0; s < 4; s++) bad |= c->layers[s] < 1 || c->layers[s] > 1000, n += c->layers[s];
    if (bad)
        return ZS_ERR(ZS_EINVAL, "clip resnet: bad config (layers [%d, %d, %d, %d], width %d, image %d, heads %d, embed %d)",
                      c->layers[0], c->layers[1], c->layers[2], c->layers[3], c->width, c->image, c->heads, c->embed);
    r->cfg = *c;
    r->nblocks = n;
    r->D = 32 * (int64_t)c->width;
    r->G = c->image / 32;
    if (r->D % c->heads)
        return ZS_ERR(ZS_EINVAL, "clip resnet: %d attention-pool heads do not divide the feature dim %lld", c->heads, (long long)r->D);
    int64_t h = stem_side(c->image);
    for (int s = 1; s < 4; s++) h /= 2;
    if (h != r->G)
        return ZS_ERR(ZS_EINVAL, "clip resnet: image %d gives a %lldx%lld final grid, the attention pool expects %lldx%lld "
                      "(image a multiple of 32)", c->image, (long long)h, (long long)h, (long long)r->G, (long long)r->G);
    r->dev = dev, r->dtype = dt, r->shapes_only = shapes_only;
    r->hooks = calloc((size_t)n, sizeof *r->hooks);
    if (!r->hooks) return ZS_ERR(ZS_ENOMEM, "clip resnet: hook table");
    return alloc_params(r, &r->params, &r->p, "resnet params");
}

zs_status zs_clip_resnet_grads(zs_clip_resnet *r) {
    if (r->shapes_only) return ZS_ERR(ZS_EINVAL, "clip resnet: planned only (no memory)");
    if (!r->g.blocks) ZS_TRY(alloc_params(r, &r->grads, &r->g, "resnet grads"));
    return zs_clip_resnet_zero_grads(r);
}

zs_status zs_clip_resnet_zero_grads(zs_clip_resnet *r) {
    if (!r->grads.base) return ZS_ERR(ZS_EINVAL, "clip resnet: no gradient buffers (call zs_clip_resnet_grads)");
    return zs_memset0(r->grads.base, r->dev, r->grads.used);
}

void zs_clip_resnet_free(zs_clip_resnet *r) {
    zs_arena_free(&r->params);
    zs_arena_free(&r->grads);
    zs_arena_free(&r->acts);
    free(r->p.blocks);
    free(r->g.blocks);
    free(r->a.blocks);
    free(r->a.stage_out);
    free(r->hooks);
    memset(r, 0, sizeof *r);
}

int zs_clip_resnet_block_index(const zs_clip_resnet *r, int stage, int idx) {
    if (stage < 0 || stage > 3 || idx < 0 || idx >= r->cfg.layers[stage]) return -1;
    int k = idx;
    for (int s = 0; s < stage; s++) k += r->cfg.layers[s];
    return k;
}

void zs_clip_resnet_block_pos(const zs_clip_resnet *r, int block, int *stage, int *idx) {
    int s = 0;
    while (s < 3 && block >= r->cfg.layers[s]) block -= r->cfg.layers[s++];
    *stage = s, *idx = block;
}

zs_status zs_clip_resnet_set_hook(zs_clip_resnet *r, int block, const zs_rn_hook *h) {
    if (block < 0 || block >= r->nblocks) return ZS_ERR(ZS_EINVAL, "clip resnet: no bottleneck %d (of %d)", block, r->nblocks);
    if (h && h->fwd) r->hooks[block] = *h;
    else memset(&r->hooks[block], 0, sizeof r->hooks[block]);
    return ZS_OK;
}

// ---- activations ---------------------------------------------------------------------------
static zs_status act4(zs_arena *ar, zs_clip_resnet_acts *a, zs_tensor *t, zs_dtype dt, int64_t B, int64_t C, int64_t h,
                      int64_t w, const char *name) {
    int64_t sh[4] = {B, C, h, w};
    if (B * C * h * w > a->max_numel) a->max_numel = B * C * h * w;
    return zs_arena_tensor(ar, t, dt, 4, sh, name);
}

static zs_status layout_acts(zs_arena *ar, zs_clip_resnet *r, int64_t B, int train) {
    zs_clip_resnet_acts *a = &r->a;
    const zs_clip_resnet_cfg *c = &r->cfg;
    zs_dtype dt = r->dtype;
    int64_t W = c->width, S2 = (c->image - 1) / 2 + 1, S4 = stem_side(c->image), D = r->D, G = r->G, T = 1 + G * G;
    a->max_numel = 0;
    int64_t ish[4] = {B, c->channels, c->image, c->image};
    if (train) ZS_TRY(zs_arena_tensor(ar, &a->image, dt, 4, ish, "resnet.image"));
    ZS_TRY(act4(ar, a, &a->stem, dt, B, W, S4, S4, "resnet.stem"));
    size_t mark = zs_arena_mark(ar);
    ZS_TRY(act4(ar, a, &a->s_c1, dt, B, W / 2, S2, S2, "resnet.stem.c1"));
    ZS_TRY(act4(ar, a, &a->s_h1, dt, B, W / 2, S2, S2, "resnet.stem.h1"));
    ZS_TRY(act4(ar, a, &a->s_c2, dt, B, W / 2, S2, S2, "resnet.stem.c2"));
    ZS_TRY(act4(ar, a, &a->s_h2, dt, B, W / 2, S2, S2, "resnet.stem.h2"));
    ZS_TRY(act4(ar, a, &a->s_c3, dt, B, W, S2, S2, "resnet.stem.c3"));
    ZS_TRY(act4(ar, a, &a->s_h3, dt, B, W, S2, S2, "resnet.stem.h3"));
    if (!train) zs_arena_reset(ar, mark);  // inference: intermediates are dead after their layer
    for (int i = 0; i < r->nblocks; i++) {
        const zs_rn_block *p = &r->p.blocks[i];
        zs_rn_block_acts *k = &a->blocks[i];
        int64_t P = p->planes, h = p->h, w = p->w, ho = h / p->stride, wo = w / p->stride;
        ZS_TRY(act4(ar, a, &k->y, dt, B, 4 * P, ho, wo, "resnet.block.y"));
        mark = zs_arena_mark(ar);
        ZS_TRY(act4(ar, a, &k->c1, dt, B, P, h, w, "resnet.block.c1"));
        ZS_TRY(act4(ar, a, &k->h1, dt, B, P, h, w, "resnet.block.h1"));
        ZS_TRY(act4(ar, a, &k->c2, dt, B, P, h, w, "resnet.block.c2"));
        ZS_TRY(act4(ar, a, &k->h2, dt, B, P, h, w, "resnet.block.h2"));
        if (p->stride > 1) ZS_TRY(act4(ar, a, &k->p2, dt, B, P, ho, wo, "resnet.block.pool"));
        else k->p2 = k->h2;
        ZS_TRY(act4(ar, a, &k->c3, dt, B, 4 * P, ho, wo, "resnet.block.c3"));
        if (p->ds && p->stride > 1) ZS_TRY(act4(ar, a, &k->dp, dt, B, p->cin, ho, wo, "resnet.block.downsample.pool"));
        if (p->ds) ZS_TRY(act4(ar, a, &k->dc, dt, B, 4 * P, ho, wo, "resnet.block.downsample.conv"));
        if (!train) zs_arena_reset(ar, mark);
    }
    for (int s = 0, k = -1; s < 4; s++) a->stage_out[s] = a->blocks[k += c->layers[s]].y;
    int64_t mx = a->max_numel, bgd[3] = {B, G * G, D}, bd11[4] = {B, D, 1, 1}, btd[3] = {B, T, D}, bd[2] = {B, D},
            b1d[3] = {B, 1, D}, bh1[3] = {B, c->heads, 1}, be[2] = {B, c->embed};
    ZS_TRY(zs_arena_tensor(ar, &a->ds_tmp, dt, 1, &mx, "resnet.downsample.bn"));
    ZS_TRY(zs_arena_tensor(ar, &a->pt, dt, 3, bgd, "resnet.attnpool.tokens"));
    ZS_TRY(zs_arena_tensor(ar, &a->mean, dt, 4, bd11, "resnet.attnpool.mean"));
    ZS_TRY(zs_arena_tensor(ar, &a->emb, dt, 3, btd, "resnet.attnpool.emb"));
    ZS_TRY(zs_arena_tensor(ar, &a->tok0, dt, 2, bd, "resnet.attnpool.tok0"));
    ZS_TRY(zs_arena_tensor(ar, &a->q, dt, 3, b1d, "resnet.attnpool.q"));
    ZS_TRY(zs_arena_tensor(ar, &a->k, dt, 3, btd, "resnet.attnpool.k"));
    ZS_TRY(zs_arena_tensor(ar, &a->v, dt, 3, btd, "resnet.attnpool.v"));
    ZS_TRY(zs_arena_tensor(ar, &a->att, dt, 3, b1d, "resnet.attnpool.att"));
    ZS_TRY(zs_arena_tensor(ar, &a->lse, ZS_F32, 3, bh1, "resnet.attnpool.lse"));
    ZS_TRY(zs_arena_tensor(ar, &a->features, dt, 2, be, "resnet.features"));
    if (train) {
        zs_tensor *g[5] = {&a->g0, &a->g1, &a->g2, &a->g3, &a->g4};
        for (int i = 0; i < 5; i++) ZS_TRY(zs_arena_tensor(ar, g[i], dt, 1, &mx, "resnet.d.scratch"));
        ZS_TRY(zs_arena_tensor(ar, &a->datt, dt, 3, b1d, "resnet.d.att"));
        ZS_TRY(zs_arena_tensor(ar, &a->dq, dt, 3, b1d, "resnet.d.q"));
        ZS_TRY(zs_arena_tensor(ar, &a->dtok0, dt, 2, bd, "resnet.d.tok0"));
        ZS_TRY(zs_arena_tensor(ar, &a->dk, dt, 3, btd, "resnet.d.k"));
        ZS_TRY(zs_arena_tensor(ar, &a->dv, dt, 3, btd, "resnet.d.v"));
        ZS_TRY(zs_arena_tensor(ar, &a->demb, dt, 3, btd, "resnet.d.emb"));
        ZS_TRY(zs_arena_tensor(ar, &a->dpt, dt, 3, bgd, "resnet.d.tokens"));
        ZS_TRY(zs_arena_tensor(ar, &a->dmean, dt, 4, bd11, "resnet.d.mean"));
    }
    return ZS_OK;
}

zs_status zs_clip_resnet_setup(zs_clip_resnet *r, int64_t B, int train) {
    zs_clip_resnet_acts *a = &r->a;
    if (r->shapes_only) return ZS_ERR(ZS_EINVAL, "clip resnet: planned only (no memory)");
    if (B < 1) return ZS_ERR(ZS_EINVAL, "clip resnet: batch %lld", (long long)B);
    if (a->blocks && a->B == B && a->train == train) return ZS_OK;
    zs_arena_free(&r->acts);
    free(a->blocks);
    free(a->stage_out);
    memset(a, 0, sizeof *a);
    a->blocks = calloc((size_t)r->nblocks, sizeof *a->blocks);
    a->stage_out = calloc(4, sizeof *a->stage_out);
    if (!a->blocks || !a->stage_out) return ZS_ERR(ZS_ENOMEM, "clip resnet: activation tables");
    zs_arena m;
    zs_arena_measure(&m, "resnet acts", r->dev);
    ZS_TRY(layout_acts(&m, r, B, train));
    ZS_TRY(zs_arena_init(&r->acts, "resnet acts", r->dev, m.peak));
    ZS_TRY(layout_acts(&r->acts, r, B, train));
    a->B = B, a->train = train;
    return ZS_OK;
}

zs_status zs_clip_resnet_act_bytes(zs_clip_resnet *r, int64_t B, int train, size_t *bytes) {
    if (B < 1) return ZS_ERR(ZS_EINVAL, "clip resnet: batch %lld", (long long)B);
    zs_clip_resnet_acts saved = r->a;
    memset(&r->a, 0, sizeof r->a);
    r->a.blocks = calloc((size_t)r->nblocks, sizeof *r->a.blocks);
    r->a.stage_out = calloc(4, sizeof *r->a.stage_out);
    zs_status s = r->a.blocks && r->a.stage_out ? ZS_OK : ZS_ERR(ZS_ENOMEM, "clip resnet: activation tables");
    zs_arena m;
    zs_arena_measure(&m, "resnet acts", r->dev);
    if (!s) s = layout_acts(&m, r, B, train);
    *bytes = m.peak;
    free(r->a.blocks);
    free(r->a.stage_out);
    r->a = saved;
    return s;
}

// ---- forward ---------------------------------------------------------------------------------
static zs_conv2d_params cpar(int stride, int pad) {
    zs_conv2d_params p = {stride, stride, pad, pad, 1};
    return p;
}

static zs_status bn_fwd(const zs_clip_resnet *r, zs_tensor *y, const zs_tensor *x, const zs_rn_bn *bn) {
    return zs_batchnorm_fwd(y, x, &bn->w, &bn->b, &bn->mean, &bn->var, r->cfg.eps);
}

// c = conv(x); h = relu(bn(c))
static zs_status conv_bn_relu(const zs_clip_resnet *r, zs_tensor *c, zs_tensor *h, const zs_tensor *x, const zs_tensor *w,
                              const zs_rn_bn *bn, int stride, int pad) {
    zs_conv2d_params cp = cpar(stride, pad);
    ZS_TRY(zs_conv2d_fwd(c, x, w, NULL, &cp));
    ZS_TRY(bn_fwd(r, h, c, bn));
    return zs_act_fwd(ZS_ACT_RELU, h, h);
}

// A view of the first numel(like) elements of buf, shaped like `like`.
static zs_status as(zs_tensor *o, const zs_tensor *buf, const zs_tensor *like) {
    return zs_view(o, buf, 0, like->ndim, like->shape);
}

// Rows [r, r + n) of batch b of a [B, T, X] tensor ([B, X]: T = 1) as [n, X].
static zs_status rows(zs_tensor *o, const zs_tensor *t, int64_t b, int64_t r, int64_t n) {
    int64_t sh[2] = {n, t->shape[t->ndim - 1]}, T = t->ndim == 3 ? t->shape[1] : 1;
    return zs_view(o, t, (b * T + r) * sh[1], 2, sh);
}
// t [B, ...] as [B, last]
static zs_status flat2(zs_tensor *o, const zs_tensor *t, int64_t rows_, int64_t cols) {
    int64_t sh[2] = {rows_, cols};
    return zs_view(o, t, 0, 2, sh);
}

static zs_status copy(zs_tensor *dst, const zs_tensor *src) {
    return zs_memcpy(dst->data, dst->device, src->data, src->device, zs_nbytes(src));
}

static zs_status block_fwd(zs_clip_resnet *r, int i, const zs_tensor *x) {
    const zs_rn_block *p = &r->p.blocks[i];
    zs_rn_block_acts *k = &r->a.blocks[i];
    zs_conv2d_params one = cpar(1, 0), three = cpar(1, 1);
    ZS_TRY(conv_bn_relu(r, &k->c1, &k->h1, x, &p->conv1, &p->bn1, 1, 0));
    ZS_TRY(zs_conv2d_fwd(&k->c2, &k->h1, &p->conv2, NULL, &three));
    if (r->hooks[i].fwd) ZS_TRY(r->hooks[i].fwd(r->hooks[i].user, i, &k->c2, &k->h1));
    ZS_TRY(bn_fwd(r, &k->h2, &k->c2, &p->bn2));
    ZS_TRY(zs_act_fwd(ZS_ACT_RELU, &k->h2, &k->h2));
    if (p->stride > 1) ZS_TRY(zs_avgpool2d_fwd(&k->p2, &k->h2, p->stride, p->stride));
    ZS_TRY(zs_conv2d_fwd(&k->c3, &k->p2, &p->conv3, NULL, &one));
    ZS_TRY(bn_fwd(r, &k->y, &k->c3, &p->bn3));
    if (p->ds) {
        zs_tensor t;
        if (p->stride > 1) ZS_TRY(zs_avgpool2d_fwd(&k->dp, x, p->stride, p->stride));
        else k->dp = *x;
        ZS_TRY(zs_conv2d_fwd(&k->dc, &k->dp, &p->ds_conv, NULL, &one));
        ZS_TRY(as(&t, &r->a.ds_tmp, &k->y));
        ZS_TRY(bn_fwd(r, &t, &k->dc, &p->ds_bn));
        ZS_TRY(zs_add_fwd(&k->y, &k->y, &t));
    } else {
        ZS_TRY(zs_add_fwd(&k->y, &k->y, x));
    }
    return zs_act_fwd(ZS_ACT_RELU, &k->y, &k->y);
}

static zs_attn_params attn_params(const zs_clip_resnet *r) {
    zs_attn_params ap = {r->cfg.heads, 1.0f / sqrtf((float)(r->D / r->cfg.heads)), 0};
    return ap;
}

zs_status zs_clip_resnet_fwd(zs_clip_resnet *r, const zs_tensor *image) {
    zs_clip_resnet_acts *a = &r->a;
    const zs_clip_resnet_params *p = &r->p;
    const zs_clip_resnet_cfg *c = &r->cfg;
    if (!a->blocks) return ZS_ERR(ZS_EINVAL, "clip resnet: forward before zs_clip_resnet_setup");
    int64_t B = a->B, D = r->D, G = r->G, T = 1 + G * G;
    int64_t want[4] = {B, c->channels, c->image, c->image};
    ZS_TRY(zs_check_shape(image, "clip resnet: image", 4, want));
    // stem (training keeps a copy of the image for conv1's weight gradient)
    if (a->train) ZS_TRY(zs_tensor_copy(&a->image, image));
    ZS_TRY(conv_bn_relu(r, &a->s_c1, &a->s_h1, image, &p->conv1, &p->bn1, 2, 1));
    ZS_TRY(conv_bn_relu(r, &a->s_c2, &a->s_h2, &a->s_h1, &p->conv2, &p->bn2, 1, 1));
    ZS_TRY(conv_bn_relu(r, &a->s_c3, &a->s_h3, &a->s_h2, &p->conv3, &p->bn3, 1, 1));
    ZS_TRY(zs_avgpool2d_fwd(&a->stem, &a->s_h3, 2, 2));
    // bottlenecks
    for (int i = 0; i < r->nblocks; i++) ZS_TRY(block_fwd(r, i, i ? &a->blocks[i - 1].y : &a->stem));
    // attention pool: tokens [mean; positions] + pos; q from token 0, k / v from all
    const zs_tensor *x4 = &a->stage_out[3];
    ZS_TRY(zs_patchify_fwd(&a->pt, x4, 1));
    ZS_TRY(zs_avgpool2d_fwd(&a->mean, x4, (int)G, (int)G));
    for (int64_t b = 0; b < B; b++) {
        zs_tensor e, s;
        ZS_TRY(rows(&e, &a->emb, b, 1, T - 1));
        ZS_TRY(rows(&s, &a->pt, b, 0, T - 1));
        ZS_TRY(copy(&e, &s));
        ZS_TRY(rows(&e, &a->emb, b, 0, 1));
        ZS_TRY(zs_view(&s, &a->mean, b * D, 2, e.shape));
        ZS_TRY(copy(&e, &s));
        ZS_TRY(rows(&e, &a->emb, b, 0, T));
        ZS_TRY(zs_add_fwd(&e, &e, &p->pos));
        ZS_TRY(rows(&e, &a->emb, b, 0, 1));
        ZS_TRY(rows(&s, &a->tok0, b, 0, 1));
        ZS_TRY(copy(&s, &e));
    }
    zs_tensor q2, e2, k2, v2, att2;
    ZS_TRY(flat2(&q2, &a->q, B, D));
    ZS_TRY(flat2(&e2, &a->emb, B * T, D));
    ZS_TRY(flat2(&k2, &a->k, B * T, D));
    ZS_TRY(flat2(&v2, &a->v, B * T, D));
    ZS_TRY(flat2(&att2, &a->att, B, D));
    ZS_TRY(zs_linear_fwd(&q2, &a->tok0, &p->q_w, &p->q_b));
    ZS_TRY(zs_linear_fwd(&k2, &e2, &p->k_w, &p->k_b));
    ZS_TRY(zs_linear_fwd(&v2, &e2, &p->v_w, &p->v_b));
    zs_attn_params ap = attn_params(r);
    ZS_TRY(zs_attention_fwd(&a->att, a->train ? &a->lse : NULL, &a->q, &a->k, &a->v, &ap));
    return zs_linear_fwd(&a->features, &att2, &p->c_w, &p->c_b);
}

// ---- backward --------------------------------------------------------------------------------
#define GP(field) (gp ? &gp->field : NULL)

static zs_status bn_bwd(const zs_clip_resnet *r, zs_tensor *dx, zs_rn_bn *gbn, const zs_tensor *dy, const zs_tensor *x,
                        const zs_rn_bn *bn) {
    return zs_batchnorm_bwd(dx, gbn ? &gbn->w : NULL, gbn ? &gbn->b : NULL, dy, x, &bn->w, &bn->mean, &bn->var, r->cfg.eps);
}

// A zeroed view of scratch buffer `buf` shaped like `like`.
static zs_status zview(zs_tensor *o, const zs_tensor *buf, const zs_tensor *like) {
    ZS_TRY(as(o, buf, like));
    return zs_zero(o);
}

// Through relu(bn(conv(x))) backwards: dh (gradient of h) -> dx +=. bufs rotate through
// scratch: *cur is dh's buffer index on entry.
static zs_status conv_bn_relu_bwd(zs_clip_resnet *r, zs_tensor *dx, zs_tensor *gw, zs_rn_bn *gbn, const zs_tensor *dh,
                                  const zs_tensor *h, const zs_tensor *cpre, const zs_tensor *x, const zs_tensor *w,
                                  const zs_rn_bn *bn, int stride, int pad, zs_tensor *const *bufs, int *cur) {
    zs_tensor da, dc;
    *cur = (*cur + 1) % 3;
    ZS_TRY(zview(&da, bufs[*cur], h));
    ZS_TRY(zs_act_bwd(ZS_ACT_RELU, &da, dh, h));  // relu'(pre) == relu'(h): h > 0 iff pre > 0
    *cur = (*cur + 1) % 3;
    ZS_TRY(zview(&dc, bufs[*cur], cpre));
    ZS_TRY(bn_bwd(r, &dc, gbn, &da, cpre, bn));
    zs_conv2d_params cp = cpar(stride, pad);
    return zs_conv2d_bwd(dx, gw, NULL, &dc, x, w, &cp);
}

// dy: gradient of block i's output; dx (zeroed, shaped like x) +=.
static zs_status block_bwd(zs_clip_resnet *r, int i, const zs_tensor *x, const zs_tensor *dy, zs_tensor *dx) {
    zs_clip_resnet_acts *a = &r->a;
    const zs_rn_block *p = &r->p.blocks[i];
    zs_rn_block *gp = r->g.blocks ? &r->g.blocks[i] : NULL;
    zs_rn_block_acts *k = &a->blocks[i];
    zs_tensor *bufs[3] = {&a->g2, &a->g3, &a->g4};
    zs_conv2d_params one = cpar(1, 0), three = cpar(1, 1);
    zs_tensor dz, t, u, dh2, da2, dc2, dh1;
    ZS_TRY(zview(&dz, &a->g2, &k->y));
    ZS_TRY(zs_act_bwd(ZS_ACT_RELU, &dz, dy, &k->y));
    if (p->ds) {  // identity branch: bn(conv(avgpool(x)))
        ZS_TRY(zview(&t, &a->g3, &k->dc));
        ZS_TRY(bn_bwd(r, &t, GP(ds_bn), &dz, &k->dc, &p->ds_bn));
        if (p->stride > 1) {
            ZS_TRY(zview(&u, &a->g4, &k->dp));
            ZS_TRY(zs_conv2d_bwd(&u, GP(ds_conv), NULL, &t, &k->dp, &p->ds_conv, &one));
            ZS_TRY(zs_avgpool2d_bwd(dx, &u, p->stride, p->stride));
        } else {
            ZS_TRY(zs_conv2d_bwd(dx, GP(ds_conv), NULL, &t, x, &p->ds_conv, &one));
        }
    } else {
        ZS_TRY(zs_add_bwd(dx, NULL, &dz));
    }
    ZS_TRY(zview(&t, &a->g3, &k->c3));
    ZS_TRY(bn_bwd(r, &t, GP(bn3), &dz, &k->c3, &p->bn3));
    ZS_TRY(zview(&u, &a->g4, &k->p2));
    ZS_TRY(zs_conv2d_bwd(&u, GP(conv3), NULL, &t, &k->p2, &p->conv3, &one));
    int cur = 2;
    if (p->stride > 1) {
        cur = 0;
        ZS_TRY(zview(&dh2, bufs[cur], &k->h2));
        ZS_TRY(zs_avgpool2d_bwd(&dh2, &u, p->stride, p->stride));
    } else {
        dh2 = u;
    }
    // relu(bn2(conv2(h1) + G(h1)))
    cur = (cur + 1) % 3;
    ZS_TRY(zview(&da2, bufs[cur], &k->h2));
    ZS_TRY(zs_act_bwd(ZS_ACT_RELU, &da2, &dh2, &k->h2));
    cur = (cur + 1) % 3;
    ZS_TRY(zview(&dc2, bufs[cur], &k->c2));
    ZS_TRY(bn_bwd(r, &dc2, GP(bn2), &da2, &k->c2, &p->bn2));
    cur = (cur + 1) % 3;
    ZS_TRY(zview(&dh1, bufs[cur], &k->h1));
    ZS_TRY(zs_conv2d_bwd(&dh1, GP(conv2), NULL, &dc2, &k->h1, &p->conv2, &three));
    if (r->hooks[i].fwd) {
        if (!r->hooks[i].bwd) return ZS_ERR(ZS_EINVAL, "clip resnet: bottleneck %d's hook has no backward", i);
        ZS_TRY(r->hooks[i].bwd(r->hooks[i].user, i, &dh1, &dc2, &k->h1));
    }
    return conv_bn_relu_bwd(r, dx, GP(conv1), GP(bn1), &dh1, &k->h1, &k->c1, x, &p->conv1, &p->bn1, 1, 0, bufs, &cur);
}

static zs_status pool_bwd(zs_clip_resnet *r, const zs_tensor *d_features, zs_tensor *dx4) {
    zs_clip_resnet_acts *a = &r->a;
    const zs_clip_resnet_params *p = &r->p;
    zs_clip_resnet_params *gp = r->g.blocks ? &r->g : NULL;
    int64_t B = a->B, D = r->D, G = r->G, T = 1 + G * G;
    zs_tensor q2, e2, k2, v2, att2, dq2, dk2, dv2, de2, datt2;
    ZS_TRY(flat2(&q2, &a->q, B, D));
    ZS_TRY(flat2(&e2, &a->emb, B * T, D));
    ZS_TRY(flat2(&k2, &a->k, B * T, D));
    ZS_TRY(flat2(&v2, &a->v, B * T, D));
    ZS_TRY(flat2(&att2, &a->att, B, D));
    ZS_TRY(flat2(&dq2, &a->dq, B, D));
    ZS_TRY(flat2(&dk2, &a->dk, B * T, D));
    ZS_TRY(flat2(&dv2, &a->dv, B * T, D));
    ZS_TRY(flat2(&de2, &a->demb, B * T, D));
    ZS_TRY(flat2(&datt2, &a->datt, B, D));
    zs_tensor *z[8] = {&a->datt, &a->dq, &a->dk, &a->dv, &a->demb, &a->dtok0, &a->dpt, &a->dmean};
    for (int i = 0; i < 8; i++) ZS_TRY(zs_zero(z[i]));
    ZS_TRY(zs_linear_bwd(&datt2, GP(c_w), GP(c_b), d_features, &att2, &p->c_w));
    zs_attn_params ap = attn_params(r);
    ZS_TRY(zs_attention_bwd(&a->dq, &a->dk, &a->dv, &a->datt, &a->q, &a->k, &a->v, &a->att, &a->lse, &ap));
    ZS_TRY(zs_linear_bwd(&a->dtok0, GP(q_w), GP(q_b), &dq2, &a->tok0, &p->q_w));
    ZS_TRY(zs_linear_bwd(&de2, GP(k_w), GP(k_b), &dk2, &e2, &p->k_w));
    ZS_TRY(zs_linear_bwd(&de2, GP(v_w), GP(v_b), &dv2, &e2, &p->v_w));
    for (int64_t b = 0; b < B; b++) {
        zs_tensor e, s;
        ZS_TRY(rows(&e, &a->demb, b, 0, 1));
        ZS_TRY(rows(&s, &a->dtok0, b, 0, 1));
        ZS_TRY(zs_add_bwd(&e, NULL, &s));
        if (gp) {
            ZS_TRY(rows(&e, &a->demb, b, 0, T));
            ZS_TRY(zs_add_bwd(&gp->pos, NULL, &e));
        }
        ZS_TRY(rows(&e, &a->demb, b, 0, 1));
        ZS_TRY(zs_view(&s, &a->dmean, b * D, 2, e.shape));
        ZS_TRY(zs_add_bwd(&s, NULL, &e));
        ZS_TRY(rows(&e, &a->demb, b, 1, T - 1));
        ZS_TRY(rows(&s, &a->dpt, b, 0, T - 1));
        ZS_TRY(zs_add_bwd(&s, NULL, &e));
    }
    ZS_TRY(zs_avgpool2d_bwd(dx4, &a->dmean, (int)G, (int)G));
    return zs_patchify_bwd(dx4, &a->dpt, 1);
}

zs_status zs_clip_resnet_bwd(zs_clip_resnet *r, const zs_tensor *d_features, zs_tensor *d_image) {
    zs_clip_resnet_acts *a = &r->a;
    if (!a->train) return ZS_ERR(ZS_EINVAL, "clip resnet: backward needs zs_clip_resnet_setup(..., train = 1)");
    ZS_TRY(zs_check_shape(d_features, "clip resnet: d_features", 2, a->features.shape));
    if (d_image) {
        int64_t want[4] = {a->B, r->cfg.channels, r->cfg.image, r->cfg.image};
        ZS_TRY(zs_check_shape(d_image, "clip resnet: d_image", 4, want));
    }
    const zs_clip_resnet_params *p = &r->p;
    zs_clip_resnet_params *gp = r->g.blocks ? &r->g : NULL;
    zs_tensor dy, dx;
    ZS_TRY(zview(&dy, &a->g0, &a->stage_out[3]));
    ZS_TRY(pool_bwd(r, d_features, &dy));
    zs_tensor *bufs[2] = {&a->g0, &a->g1};
    int cur = 0;
    for (int i = r->nblocks - 1; i >= 0; i--) {
        const zs_tensor *x = i ? &a->blocks[i - 1].y : &a->stem;
        cur ^= 1;
        ZS_TRY(zview(&dx, bufs[cur], x));
        ZS_TRY(block_bwd(r, i, x, &dy, &dx));
        dy = dx;
    }
    if (!gp && !d_image) return ZS_OK;  // frozen stem, no image gradient: done
    // stem: relu(bn(conv)) x 3, then avgpool(2); dy is d(stem)
    zs_tensor *sb[3] = {&a->g2, &a->g3, &a->g4};
    zs_tensor dh3, dh2, dh1;
    int sc = 0;
    ZS_TRY(zview(&dh3, sb[sc], &a->s_h3));
    ZS_TRY(zs_avgpool2d_bwd(&dh3, &dy, 2, 2));
    // each conv's dx goes to the g0 / g1 buffer that dy does not hold
    ZS_TRY(zview(&dh2, bufs[cur ^ 1], &a->s_h2));
    ZS_TRY(conv_bn_relu_bwd(r, &dh2, GP(conv3), GP(bn3), &dh3, &a->s_h3, &a->s_c3, &a->s_h2, &p->conv3, &p->bn3, 1, 1, sb, &sc));
    ZS_TRY(zview(&dh1, bufs[cur], &a->s_h1));
    sc = 0;
    ZS_TRY(conv_bn_relu_bwd(r, &dh1, GP(conv2), GP(bn2), &dh2, &a->s_h2, &a->s_c2, &a->s_h1, &p->conv2, &p->bn2, 1, 1, sb, &sc));
    sc = 0;
    return conv_bn_relu_bwd(r, d_image, GP(conv1), GP(bn1), &dh1, &a->s_h1, &a->s_c1, &a->image, &p->conv1, &p->bn1, 2, 1,
                            sb, &sc);
}
