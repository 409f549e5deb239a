// Stable Diffusion VAE decoder: layout, loading, forward, backward (see models/sd_vae.h).
#include "models/sd_vae.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "kernels/attention.h"
#include "kernels/conv.h"
#include "kernels/groupnorm.h"
#include "kernels/ops.h"
#include "kernels/upsample.h"
#include "models/patchify.h"
#include "models/scheduler.h"
#include "models/sd_vae_blocks.h"
#include "models/transformer.h"


// ---- parameters ------------------------------------------------------------------------------
// Same order as the plan's slots (models/sd_plan.c vae_slots).
static zs_status layout_params(zs_vae_reg *r, zs_sd_vae_params *p, const zs_sd_vae_config *c) {
    int n = c->levels, L = c->layers_per_block, cm = c->block_out_channels[n - 1], z = c->latent_channels;
    char q[ZS_SD_VAE_NAME];
    ZS_TRY(zs_vae_reg_conv(r, &p->post_quant_conv, "post_quant_conv.", z, z, 1));
    ZS_TRY(zs_vae_reg_conv(r, &p->conv_in, "decoder.conv_in.", cm, z, 3));
    ZS_TRY(zs_vae_reg_resnet(r, &p->mid[0], "decoder.mid_block.resnets.0.", cm, cm));
    if (c->mid_block_add_attention) {
        ZS_TRY(zs_vae_reg_attn(r, &p->attn, "decoder.mid_block.attentions.0.", cm));
    }
    ZS_TRY(zs_vae_reg_resnet(r, &p->mid[1], "decoder.mid_block.resnets.1.", cm, cm));
    int prev = cm;
    for (int i = 0; i < n; i++) {
        int ch = c->block_out_channels[n - 1 - i];
        for (int j = 0; j <= L; j++)
            ZS_TRY(zs_vae_reg_resnet(r, &p->up[i][j], zs_vae_name(q, "decoder.up_blocks.%d.resnets.%d.", i, j), j ? ch : prev, ch));
        if (i < n - 1) ZS_TRY(zs_vae_reg_conv(r, &p->upconv[i], zs_vae_name(q, "decoder.up_blocks.%d.upsamplers.0.conv.", i), ch, ch, 3));
        prev = ch;
    }
    ZS_TRY(zs_vae_reg_norm(r, &p->norm_out, "decoder.conv_norm_out.", c->block_out_channels[0]));
    return zs_vae_reg_conv(r, &p->conv_out, "decoder.conv_out.", c->out_channels, c->block_out_channels[0], 3);
}

// Measures, then allocates arena a and lays p out in it, recording names / table.
static zs_status alloc_params(zs_sd_vae *v, zs_arena *a, zs_sd_vae_params *p, zs_tensor **tab, const char *what) {
    zs_arena m;
    zs_arena_measure(&m, what, v->dev);
    zs_vae_reg r = {&m, v->dtype, 0, NULL, NULL};
    ZS_TRY(layout_params(&r, p, &v->cfg));
    ZS_TRY(zs_arena_init(a, what, v->dev, m.peak + ZS_ARENA_ALIGN));
    zs_vae_reg r2 = {a, v->dtype, 0, v->names, tab};
    ZS_TRY(layout_params(&r2, p, &v->cfg));
    return ZS_OK;
}

static zs_status count_params(zs_sd_vae *v, int *n) {
    zs_arena m;
    zs_sd_vae_params tmp;
    zs_arena_measure(&m, "vae count", v->dev);
    zs_vae_reg r = {&m, v->dtype, 0, NULL, NULL};
    ZS_TRY(layout_params(&r, &tmp, &v->cfg));
    *n = r.n;
    return ZS_OK;
}

zs_status zs_sd_vae_init(zs_sd_vae *v, const zs_sd_vae_config *c, zs_device dev, zs_dtype dt) {
    memset(v, 0, sizeof *v);
    int bad = c->levels < 1 || c->levels > ZS_SD_MAX_LEVELS || c->layers_per_block < 0 ||
              c->layers_per_block + 1 > ZS_SD_VAE_MAX_RESNETS || c->latent_channels < 1 || c->out_channels < 1 ||
              c->norm_num_groups < 1 || !(c->scaling_factor > 0);
    for (int i = 0; !bad && i < c->levels; i++)
        bad |= c->block_out_channels[i] < 1 || c->block_out_channels[i] % c->norm_num_groups;
    if (bad)
        return ZS_ERR(ZS_EINVAL, "sd vae: unsupported config (levels %d, layers_per_block %d (at most %d), latent %d, out %d, "
                      "groups %d dividing every block width, scaling_factor %g)", c->levels, c->layers_per_block,
                      ZS_SD_VAE_MAX_RESNETS - 1, c->latent_channels, c->out_channels, c->norm_num_groups, c->scaling_factor);
    v->cfg = *c;
    v->dev = dev, v->dtype = dt;
    ZS_TRY(count_params(v, &v->n_params));
    v->names = calloc((size_t)v->n_params, sizeof *v->names);
    v->ptab = calloc((size_t)v->n_params, sizeof *v->ptab);
    v->gtab = calloc((size_t)v->n_params, sizeof *v->gtab);
    if (!v->names || !v->ptab || !v->gtab) return ZS_ERR(ZS_ENOMEM, "sd vae: parameter table");
    zs_arena m;
    zs_arena_measure(&m, "vae params", dev);
    zs_vae_reg r = {&m, dt, 0, NULL, NULL};
    ZS_TRY(layout_params(&r, &v->p, c));
    ZS_TRY(zs_arena_init(&v->params, "vae params", dev, m.peak));
    zs_vae_reg r2 = {&v->params, dt, 0, v->names, v->ptab};
    return layout_params(&r2, &v->p, c);
}

zs_status zs_sd_vae_grads(zs_sd_vae *v) {
    if (!v->grads.base) ZS_TRY(alloc_params(v, &v->grads, &v->g, v->gtab, "vae grads"));
    return zs_sd_vae_zero_grads(v);
}

zs_status zs_sd_vae_zero_grads(zs_sd_vae *v) {
    if (!v->grads.base) return ZS_ERR(ZS_EINVAL, "sd vae: no gradient buffers (call zs_sd_vae_grads)");
    return zs_memset0(v->grads.base, v->dev, v->grads.used);
}

zs_sd_vae_mem zs_sd_vae_memory(const zs_sd_vae *v) {
    zs_sd_vae_mem r = {v->params.cap, v->grads.cap, v->acts.cap, v->a.scratch};
    return r;
}

const char *zs_sd_vae_param_name(const zs_sd_vae *v, int i) {
    return i >= 0 && i < v->n_params ? v->names[i] : NULL;
}

void zs_sd_vae_free(zs_sd_vae *v) {
    zs_arena_free(&v->params);
    zs_arena_free(&v->grads);
    zs_arena_free(&v->acts);
    free(v->names);
    free(v->ptab);
    free(v->gtab);
    memset(v, 0, sizeof *v);
}

// ---- loading ---------------------------------------------------------------------------------
zs_status zs_sd_vae_load(zs_sd_vae *v, const zs_sd_plan *p) {
    const zs_sd_vae_config *a = &v->cfg, *b = &p->vae;
    int same = a->levels == b->levels && a->layers_per_block == b->layers_per_block &&
               a->latent_channels == b->latent_channels && a->out_channels == b->out_channels &&
               a->norm_num_groups == b->norm_num_groups && a->mid_block_add_attention == b->mid_block_add_attention &&
               !memcmp(a->block_out_channels, b->block_out_channels, sizeof a->block_out_channels);
    if (!same) return ZS_ERR(ZS_EINVAL, "sd vae: the plan's VAE config differs from the one the decoder was laid out for");
    static const char *const parts[2] = {"decoder.", "post_quant_conv."};
    return zs_vae_load_slots(p, parts, 2, v->names, v->ptab, v->n_params, "sd vae decoder");
}

zs_status zs_sd_vae_open(zs_sd_vae *v, const char *path, const zs_sd_plan_opts *opts, zs_device dev, zs_dtype dt) {
    zs_sd_plan *p;
    memset(v, 0, sizeof *v);
    ZS_TRY(zs_sd_plan_open(&p, path, opts));
    zs_status s = zs_sd_vae_init(v, &p->vae, dev, dt);
    if (!s) s = zs_sd_vae_load(v, p);
    zs_sd_plan_free(p);
    if (s) zs_sd_vae_free(v);
    return s;
}

// ---- activations -----------------------------------------------------------------------------
typedef struct {
    zs_arena *ar;
    zs_dtype dt;
    int64_t B, G;
    int64_t kept, grad;   // largest kept tensor (the chain gradients), largest block gradient scratch
    // Inference (train = 0): the "kept" outputs are only read by the next block, so they take
    // turns in two buffers of the largest one's size, placed once the layout is known.
    int train, npp;
    zs_tensor *pp[64];
} lay;

static zs_status act4(lay *l, zs_tensor *t, int64_t C, int64_t h, int64_t w, const char *name) {
    int64_t sh[4] = {l->B, C, h, w};
    return zs_arena_tensor(l->ar, t, l->dt, 4, sh, name);
}
static zs_status kept4(lay *l, zs_tensor *t, int64_t C, int64_t h, int64_t w, const char *name) {
    if (l->B * C * h * w > l->kept) l->kept = l->B * C * h * w;
    if (l->train) return act4(l, t, C, h, w, name);
    if (l->npp == (int)(sizeof l->pp / sizeof l->pp[0])) return ZS_ERR(ZS_EINVAL, "sd vae: too many blocks");
    *t = (zs_tensor){NULL, l->dt, l->ar->device, 4, {l->B, C, h, w}, name};
    l->pp[l->npp++] = t;  // data set by place_pingpong
    return ZS_OK;
}

// Inference: the kept outputs in chain order alternate between two buffers (a block reads the
// previous one's output and writes the other).
static zs_status place_pingpong(lay *l) {
    zs_tensor buf[2];
    for (int i = 0; i < 2; i++) ZS_TRY(zs_arena_tensor(l->ar, &buf[i], l->dt, 1, &l->kept, "vae.chain (inference)"));
    for (int i = 0; i < l->npp; i++) l->pp[i]->data = buf[i % 2].data;
    return ZS_OK;
}
static zs_status stats(lay *l, zs_tensor *t) {
    int64_t sh[2] = {l->B, l->G};
    return zs_arena_tensor(l->ar, t, ZS_F32, 2, sh, "vae.gn.stats");
}
static void need_grad(lay *l, int64_t n) {
    if (n > l->grad) l->grad = n;
}

// A resnet's kept output; its resnet_bwd needs dn1 / dn2 (max(cin, cout)) in the gradient scratch.
static zs_status kept_resnet(lay *l, zs_vae_resnet_acts *k, const zs_vae_resnet *p, const zs_tensor *x, int64_t h,
                             int64_t w) {
    memset(k, 0, sizeof *k);
    k->x = x;
    need_grad(l, l->B * (p->cin > p->cout ? p->cin : p->cout) * h * w);
    return kept4(l, &k->out, p->cout, h, w, "vae.resnet.out");
}

// A resnet's intermediates. The shortcut output takes n1's memory when it fits: n1 is dead
// once conv1 ran, and the backward's re-run (zs_vae_resnet_fwd_inner) does not write sc.
static zs_status scratch_resnet(lay *l, zs_vae_resnet_acts *k, const zs_vae_resnet *p) {
    int64_t h = k->out.shape[2], w = k->out.shape[3], sh[4] = {l->B, p->cout, h, w};
    ZS_TRY(act4(l, &k->n1, p->cin, h, w, "vae.resnet.n1"));
    ZS_TRY(stats(l, &k->mean1));
    ZS_TRY(stats(l, &k->rstd1));
    ZS_TRY(act4(l, &k->c1, p->cout, h, w, "vae.resnet.c1"));
    ZS_TRY(act4(l, &k->n2, p->cout, h, w, "vae.resnet.n2"));
    ZS_TRY(stats(l, &k->mean2));
    ZS_TRY(stats(l, &k->rstd2));
    if (p->cin == p->cout) return ZS_OK;
    if (p->cin > p->cout) return zs_view(&k->sc, &k->n1, 0, 4, sh);
    return act4(l, &k->sc, p->cout, h, w, "vae.resnet.shortcut");
}

static zs_status scratch_attn(lay *l, zs_vae_attn_acts *t, int train) {
    int64_t B = l->B, C = t->out.shape[1], h = t->out.shape[2], w = t->out.shape[3], tok[3] = {B, h * w, C},
            lse[3] = {B, 1, h * w};
    ZS_TRY(act4(l, &t->xn, C, h, w, "vae.attn.norm"));
    ZS_TRY(stats(l, &t->mean));
    ZS_TRY(stats(l, &t->rstd));
    zs_tensor *tt[6] = {&t->t, &t->q, &t->k, &t->v, &t->o, &t->p};
    for (int i = 0; i < 6; i++) ZS_TRY(zs_arena_tensor(l->ar, tt[i], l->dt, 3, tok, "vae.attn.tokens"));
    ZS_TRY(zs_arena_tensor(l->ar, &t->lse, ZS_F32, 3, lse, "vae.attn.lse"));
    if (!train) return ZS_OK;
    zs_tensor *gt[6] = {&t->dp, &t->d_o, &t->dq, &t->dk, &t->dv, &t->dt};
    for (int i = 0; i < 6; i++) ZS_TRY(zs_arena_tensor(l->ar, gt[i], l->dt, 3, tok, "vae.attn.d"));
    return act4(l, &t->dxn, C, h, w, "vae.attn.d.norm");
}

static zs_status scratch_head(lay *l, zs_sd_vae_acts *a, int64_t C, int64_t h, int64_t w) {
    ZS_TRY(act4(l, &a->nout, C, h, w, "vae.conv_norm_out"));
    ZS_TRY(stats(l, &a->nmean));
    return stats(l, &a->nrstd);
}

// Kept outputs, then (train) the gradient buffers, then the scratch every block lays its
// intermediates into from the same mark.
static zs_status layout_acts(zs_arena *ar, zs_sd_vae *v, int64_t B, int64_t h, int64_t w, int train) {
    const zs_sd_vae_config *c = &v->cfg;
    zs_sd_vae_acts *a = &v->a;
    const zs_sd_vae_params *p = &v->p;
    lay l = {ar, v->dtype, B, c->norm_num_groups, 0, 0, train, 0, {0}};
    int n = c->levels, L = c->layers_per_block, cm = c->block_out_channels[n - 1], at = c->mid_block_add_attention;
    ZS_TRY(kept4(&l, &a->z, c->latent_channels, h, w, "vae.z"));
    ZS_TRY(kept4(&l, &a->pq, c->latent_channels, h, w, "vae.post_quant_conv"));
    ZS_TRY(kept4(&l, &a->cin, cm, h, w, "vae.conv_in"));
    need_grad(&l, zs_numel(&a->pq));  // d post_quant_conv out
    ZS_TRY(kept_resnet(&l, &a->mid[0], &p->mid[0], &a->cin, h, w));
    const zs_tensor *x = &a->mid[0].out;
    if (at) {
        memset(&a->attn, 0, sizeof a->attn);
        ZS_TRY(kept4(&l, &a->attn.out, cm, h, w, "vae.attn.out"));
        x = &a->attn.out;
    }
    ZS_TRY(kept_resnet(&l, &a->mid[1], &p->mid[1], x, h, w));
    x = &a->mid[1].out;
    int64_t hh = h, ww = w;
    for (int i = 0; i < n; i++) {
        int ch = c->block_out_channels[n - 1 - i];
        for (int j = 0; j <= L; j++) {
            ZS_TRY(kept_resnet(&l, &a->up[i][j], &p->up[i][j], x, hh, ww));
            x = &a->up[i][j].out;
        }
        if (i < n - 1) {
            hh *= 2, ww *= 2;
            ZS_TRY(kept4(&l, &a->upc[i], ch, hh, ww, "vae.upsample.conv"));
            need_grad(&l, zs_numel(&a->upc[i]));  // d upsampled
            x = &a->upc[i];
        }
    }
    ZS_TRY(act4(&l, &a->image, c->out_channels, hh, ww, "vae.image"));  // d image is the caller's: not in l.kept
    if (train) {
        for (int i = 0; i < 2; i++) ZS_TRY(zs_arena_tensor(ar, &a->g[i], v->dtype, 1, &l.kept, "vae.d.chain"));
        ZS_TRY(zs_arena_tensor(ar, &a->s, v->dtype, 1, &l.grad, "vae.d.scratch"));
    }
    size_t mark = zs_arena_mark(ar), top = mark;
#define SCRATCH(call) do { zs_arena_reset(ar, mark); ZS_TRY(call); \
                           if (zs_arena_mark(ar) > top) top = zs_arena_mark(ar); } while (0)
    SCRATCH(scratch_resnet(&l, &a->mid[0], &p->mid[0]));
    if (at) SCRATCH(scratch_attn(&l, &a->attn, train));
    SCRATCH(scratch_resnet(&l, &a->mid[1], &p->mid[1]));
    for (int i = 0; i < n; i++) {
        for (int j = 0; j <= L; j++) SCRATCH(scratch_resnet(&l, &a->up[i][j], &p->up[i][j]));
        if (i < n - 1) SCRATCH(act4(&l, &a->ups[i], a->upc[i].shape[1], a->upc[i].shape[2], a->upc[i].shape[3],
                                    "vae.upsample"));
    }
    SCRATCH(scratch_head(&l, a, c->block_out_channels[0], hh, ww));
#undef SCRATCH
    zs_arena_reset(ar, top);
    a->scratch = top - mark;
    return train ? ZS_OK : place_pingpong(&l);
}

zs_status zs_sd_vae_setup(zs_sd_vae *v, int64_t B, int64_t h, int64_t w, int train) {
    zs_sd_vae_acts *a = &v->a;
    if (!v->params.base) return ZS_ERR(ZS_EINVAL, "sd vae: setup before zs_sd_vae_init");
    if (B < 1 || h < 1 || w < 1) return ZS_ERR(ZS_EINVAL, "sd vae: latents [%lld, %d, %lld, %lld]", (long long)B,
                                                 v->cfg.latent_channels, (long long)h, (long long)w);
    train = !!train;
    if (v->acts.base && a->B == B && a->h == h && a->w == w && a->train == train) return ZS_OK;
    zs_arena_free(&v->acts);
    memset(a, 0, sizeof *a);
    zs_arena m;
    zs_arena_measure(&m, "vae acts", v->dev);
    ZS_TRY(layout_acts(&m, v, B, h, w, train));
    ZS_TRY(zs_arena_init(&v->acts, "vae acts", v->dev, m.peak));
    zs_status s = layout_acts(&v->acts, v, B, h, w, train);
    if (s) {
        zs_arena_free(&v->acts);
        memset(a, 0, sizeof *a);
        return s;
    }
    a->B = B, a->h = h, a->w = w, a->train = train;
    return ZS_OK;
}

// ---- forward ---------------------------------------------------------------------------------
static const zs_conv2d_params P1 = {1, 1, 0, 0, 1}, P3 = {1, 1, 1, 1, 1};

static zs_status flat(zs_tensor *o, const zs_tensor *t, int64_t rows, int64_t cols) {
    int64_t sh[2] = {rows, cols};
    return zs_view(o, t, 0, 2, sh);
}

static zs_attn_params attn_params(const zs_sd_vae *v) {
    zs_attn_params ap = {1, 1.0f / sqrtf((float)v->cfg.block_out_channels[v->cfg.levels - 1]), 0};
    return ap;
}

// conv_norm_out + SiLU of the last up block's output (no upsampler there) into the scratch.
static zs_status head_norm(zs_sd_vae *v) {
    zs_sd_vae_acts *a = &v->a;
    const zs_vae_pair *np = &v->p.norm_out;
    return zs_groupnorm_fwd(&a->nout, &a->nmean, &a->nrstd, &a->up[v->cfg.levels - 1][v->cfg.layers_per_block].out,
                            &np->w, &np->b, v->cfg.norm_num_groups, ZS_VAE_EPS, 1);
}

zs_status zs_sd_vae_decode(zs_sd_vae *v, const zs_tensor *latents) {
    zs_sd_vae_acts *a = &v->a;
    const zs_sd_vae_params *p = &v->p;
    const zs_sd_vae_config *c = &v->cfg;
    if (!v->acts.base) return ZS_ERR(ZS_EINVAL, "sd vae: decode before zs_sd_vae_setup");
    ZS_TRY(zs_check_shape(latents, "sd vae: latents", 4, a->z.shape));
    int n = c->levels, L = c->layers_per_block;
    ZS_TRY(zs_elem_div(&a->z, latents, (float)c->scaling_factor));  // z = latents / scaling_factor
    ZS_TRY(zs_conv2d_fwd(&a->pq, &a->z, &p->post_quant_conv.w, &p->post_quant_conv.b, &P1));
    ZS_TRY(zs_conv2d_fwd(&a->cin, &a->pq, &p->conv_in.w, &p->conv_in.b, &P3));
    ZS_TRY(zs_vae_resnet_fwd(&p->mid[0], &a->mid[0], c->norm_num_groups));
    if (c->mid_block_add_attention) ZS_TRY(zs_vae_attn_fwd(&p->attn, &a->attn, &a->mid[0].out, c->norm_num_groups));
    ZS_TRY(zs_vae_resnet_fwd(&p->mid[1], &a->mid[1], c->norm_num_groups));
    for (int i = 0; i < n; i++) {
        for (int j = 0; j <= L; j++) ZS_TRY(zs_vae_resnet_fwd(&p->up[i][j], &a->up[i][j], c->norm_num_groups));
        if (i < n - 1) {
            ZS_TRY(zs_upsample_nearest_fwd(&a->ups[i], &a->up[i][L].out));
            ZS_TRY(zs_conv2d_fwd(&a->upc[i], &a->ups[i], &p->upconv[i].w, &p->upconv[i].b, &P3));
        }
    }
    ZS_TRY(head_norm(v));
    return zs_conv2d_fwd(&a->image, &a->nout, &p->conv_out.w, &p->conv_out.b, &P3);
}

// ---- backward --------------------------------------------------------------------------------
#define GW(pair) (G ? &G->pair.w : NULL)
#define GB(pair) (G ? &G->pair.b : NULL)

#define zview zs_vae_zview

// Re-makes the resnet's intermediates in the scratch, then from dy (gradient of k->out): dx
// (zeroed, shaped like k->x) +=. dc1 goes into n2's memory (dead by then, see sd_vae_blocks.h).
static zs_status resnet_bwd(zs_sd_vae *v, const zs_vae_resnet *p, zs_vae_resnet *G, zs_vae_resnet_acts *k,
                            const zs_tensor *dy, zs_tensor *dx) {
    ZS_TRY(zs_vae_resnet_fwd_inner(p, k, v->cfg.norm_num_groups));
    return zs_vae_resnet_bwd(p, G, k, dy, dx, &v->a.s, &k->n2, v->cfg.norm_num_groups);
}

static zs_status attn_bwd(zs_sd_vae *v, const zs_vae_attn *p, zs_vae_attn *G, zs_vae_attn_acts *t, const zs_tensor *x,
                          const zs_tensor *dy, zs_tensor *dx) {
    int64_t N = t->t.shape[0] * t->t.shape[1], C = t->t.shape[2];
    ZS_TRY(zs_vae_attn_fwd(p, t, x, v->cfg.norm_num_groups));  // re-make the intermediates (out: the same values)
    ZS_TRY(zs_add_bwd(dx, NULL, dy));                 // residual
    ZS_TRY(zs_patchify_fwd(&t->dp, dy, 1));           // d(to_out output), tokens
    zs_tensor z[5] = {t->d_o, t->dq, t->dk, t->dv, t->dt};
    for (int i = 0; i < 5; i++) ZS_TRY(zs_zero(&z[i]));
    ZS_TRY(zs_zero(&t->dxn));
    zs_tensor t2, o2, dp2, do2, dq2, dk2, dv2, dt2;
    ZS_TRY(flat(&t2, &t->t, N, C));
    ZS_TRY(flat(&o2, &t->o, N, C));
    ZS_TRY(flat(&dp2, &t->dp, N, C));
    ZS_TRY(flat(&do2, &t->d_o, N, C));
    ZS_TRY(flat(&dq2, &t->dq, N, C));
    ZS_TRY(flat(&dk2, &t->dk, N, C));
    ZS_TRY(flat(&dv2, &t->dv, N, C));
    ZS_TRY(flat(&dt2, &t->dt, N, C));
    ZS_TRY(zs_linear_bwd(&do2, GW(out), GB(out), &dp2, &o2, &p->out.w));
    zs_attn_params ap = attn_params(v);
    ZS_TRY(zs_attention_bwd(&t->dq, &t->dk, &t->dv, &t->d_o, &t->q, &t->k, &t->v, &t->o, &t->lse, &ap));
    ZS_TRY(zs_linear_bwd(&dt2, GW(q), GB(q), &dq2, &t2, &p->q.w));
    ZS_TRY(zs_linear_bwd(&dt2, GW(k), GB(k), &dk2, &t2, &p->k.w));
    ZS_TRY(zs_linear_bwd(&dt2, GW(v), GB(v), &dv2, &t2, &p->v.w));
    ZS_TRY(zs_patchify_bwd(&t->dxn, &t->dt, 1));      // tokens -> NCHW
    return zs_groupnorm_bwd(dx, GW(norm), GB(norm), &t->dxn, x, &p->norm.w, &p->norm.b, &t->mean, &t->rstd,
                            v->cfg.norm_num_groups, 0);
}

zs_status zs_sd_vae_decode_bwd(zs_sd_vae *v, const zs_tensor *d_image, zs_tensor *d_latents) {
    zs_sd_vae_acts *a = &v->a;
    const zs_sd_vae_config *c = &v->cfg;
    if (!v->acts.base || !a->train) return ZS_ERR(ZS_EINVAL, "sd vae: backward needs zs_sd_vae_setup(..., train = 1)");
    ZS_TRY(zs_check_shape(d_image, "sd vae: d_image", 4, a->image.shape));
    if (d_latents) ZS_TRY(zs_check_shape(d_latents, "sd vae: d_latents", 4, a->z.shape));
    const zs_sd_vae_params *p = &v->p;
    zs_sd_vae_params *GP = v->grads.base ? &v->g : NULL;
    int n = c->levels, L = c->layers_per_block, cur = 0;
    zs_tensor dnout, dy, dx;
    {
        zs_vae_pair *G0 = GP ? &GP->conv_out : NULL, *G1 = GP ? &GP->norm_out : NULL;
        ZS_TRY(head_norm(v));
        ZS_TRY(zview(&dnout, &a->s, &a->nout));
        ZS_TRY(zs_conv2d_bwd(&dnout, G0 ? &G0->w : NULL, G0 ? &G0->b : NULL, d_image, &a->nout, &p->conv_out.w, &P3));
        const zs_tensor *x = &a->up[n - 1][L].out;  // conv_norm_out reads the last up block's output (no upsampler there)
        ZS_TRY(zview(&dy, &a->g[cur], x));
        ZS_TRY(zs_groupnorm_bwd(&dy, G1 ? &G1->w : NULL, G1 ? &G1->b : NULL, &dnout, x, &p->norm_out.w, &p->norm_out.b,
                                &a->nmean, &a->nrstd, c->norm_num_groups, 1));
    }
    for (int i = n - 1; i >= 0; i--) {
        if (i < n - 1) {  // dy is d(upc[i]): through the conv, then the upsample
            zs_vae_pair *G = GP ? &GP->upconv[i] : NULL;
            zs_tensor dups;
            ZS_TRY(zs_upsample_nearest_fwd(&a->ups[i], &a->up[i][L].out));
            ZS_TRY(zview(&dups, &a->s, &a->ups[i]));
            ZS_TRY(zs_conv2d_bwd(&dups, G ? &G->w : NULL, G ? &G->b : NULL, &dy, &a->ups[i], &p->upconv[i].w, &P3));
            cur ^= 1;
            ZS_TRY(zview(&dx, &a->g[cur], &a->up[i][L].out));
            ZS_TRY(zs_upsample_nearest_bwd(&dx, &dups));
            dy = dx;
        }
        for (int j = L; j >= 0; j--) {
            cur ^= 1;
            ZS_TRY(zview(&dx, &a->g[cur], a->up[i][j].x));
            ZS_TRY(resnet_bwd(v, &p->up[i][j], GP ? &GP->up[i][j] : NULL, &a->up[i][j], &dy, &dx));
            dy = dx;
        }
    }
    cur ^= 1;
    ZS_TRY(zview(&dx, &a->g[cur], a->mid[1].x));
    ZS_TRY(resnet_bwd(v, &p->mid[1], GP ? &GP->mid[1] : NULL, &a->mid[1], &dy, &dx));
    dy = dx;
    if (c->mid_block_add_attention) {
        cur ^= 1;
        ZS_TRY(zview(&dx, &a->g[cur], &a->mid[0].out));
        ZS_TRY(attn_bwd(v, &p->attn, GP ? &GP->attn : NULL, &a->attn, &a->mid[0].out, &dy, &dx));
        dy = dx;
    }
    cur ^= 1;
    ZS_TRY(zview(&dx, &a->g[cur], &a->cin));
    ZS_TRY(resnet_bwd(v, &p->mid[0], GP ? &GP->mid[0] : NULL, &a->mid[0], &dy, &dx));
    dy = dx;
    // conv_in, post_quant_conv, / scaling_factor
    zs_tensor dpq, dz;
    zs_vae_pair *Gi = GP ? &GP->conv_in : NULL, *Gq = GP ? &GP->post_quant_conv : NULL;
    ZS_TRY(zview(&dpq, &a->s, &a->pq));
    ZS_TRY(zs_conv2d_bwd(&dpq, Gi ? &Gi->w : NULL, Gi ? &Gi->b : NULL, &dy, &a->pq, &p->conv_in.w, &P3));
    if (!d_latents) return Gq ? zs_conv2d_bwd(NULL, &Gq->w, &Gq->b, &dpq, &a->z, &p->post_quant_conv.w, &P1) : ZS_OK;
    ZS_TRY(zview(&dz, &a->g[cur ^ 1], &a->z));
    ZS_TRY(zs_conv2d_bwd(&dz, Gq ? &Gq->w : NULL, Gq ? &Gq->b : NULL, &dpq, &a->z, &p->post_quant_conv.w, &P1));
    return zs_elem_div_bwd(d_latents, &dz, (float)c->scaling_factor);
}
