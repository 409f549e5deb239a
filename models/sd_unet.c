// Stable Diffusion UNet: layout, loading, and the forward / backward walk over units with
// per-unit checkpointing (see models/sd_unet.h).
#include "models/sd_unet.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "kernels/conv.h"
#include "kernels/groupnorm.h"
#include "kernels/ops.h"
#include "kernels/timestep.h"
#include "kernels/upsample.h"
#include "models/sd_unet_internal.h"
#include "models/transformer.h"

typedef enum { U_CONV_IN, U_RESNET, U_XFORMER, U_DOWN, U_UP, U_HEAD } ukind;

// One checkpointing unit. Its main input is the previous unit's output (conv_in: the sample).
typedef struct {
    ukind kind;
    int skip;                    // U_RESNET (up): unit whose output is concatenated after h; U_UP: unit whose size
                                 // is the target (the next skip popped); else -1
    int slot;                    // this output is skip accumulator `slot` (-1: not a skip)
    int C;                       // output channels
    zs_vae_resnet *rp, *rg;      // parameters / gradients (rg's tensors valid after zs_sd_unet_grads)
    zs_unet_xformer *xp, *xg;
    zs_vae_pair *cp, *cg;        // conv_in / down / up conv; head: conv_out (norm: np / ng)
    zs_vae_pair *np, *ng;
    int64_t h, w;                // output size
    zs_tensor o;                 // output [B, C, h, w] (kept; inference: non-skips share two buffers; head: none,
                                 // the caller's out)
    // scratch (one shared region, re-made by the backward)
    zs_vae_resnet_acts r;        // resnet (r.x = cat for up resnets)
    zs_tensor cat, dcat, s0, s1; // cat [B, cin, h, w]; train: d cat, resnet gradient scratch
    zs_unet_xformer_acts x;
    zs_tensor ups, dups;         // U_UP: input resized to (h, w), its gradient
    zs_tensor nout, nmean, nrstd, dnout;  // U_HEAD: GN + SiLU out, statistics [B, G]
} unit;

struct zs_sd_unet {
    zs_sd_unet_config cfg;
    zs_device dev;
    zs_dtype dt;
    zs_unet_params *p, *g;       // heap (large structs); g: gradients
    zs_arena params, grads, acts;
    int n_params, n_units, n_slots;
    char (*names)[ZS_SD_VAE_NAME];
    zs_tensor **ptab, **gtab;
    unit *u;
    // activations of the last setup
    int64_t B, h, w, L;
    int train;
    size_t scratch;
    zs_tensor t;                 // timesteps [B] F32
    zs_tensor emb, l1, s1, temb, stemb;  // sinusoid [B, c0]; linear_1, SiLU, linear_2 (temb), SiLU(temb) [B, T]
    zs_tensor g2[2];             // train: chain gradient ping-pong, the largest unit output each
    zs_tensor *dskip;            // train: per skip slot, shaped like the skip
    zs_tensor dstemb, dtemb, ds1, dl1;  // train: [B, T]
    const zs_tensor *sample, *ctx;      // the last forward's inputs
};

static const zs_conv2d_params P3 = {1, 1, 1, 1, 1}, P3S2 = {2, 2, 1, 1, 1};

// ---- parameters and units ------------------------------------------------------------------------
// Registers parameters in the plan's slot order (models/sd_plan.c unet_slots); with units,
// also lists the checkpointing units in forward order.
static zs_status layout_params(zs_vae_reg *r, zs_unet_params *p, const zs_sd_unet_config *c, zs_sd_unet *m,
                               unit *u, int *nu) {
    int n = c->levels, L = c->layers_per_block, T = c->time_embed_dim, c0 = c->block_out_channels[0];
    int X = c->cross_attention_dim, lin = c->use_linear_projection, k = 0, stack[64], sp = 0, slots = 0;
    float eps = (float)c->norm_eps;
    char q[ZS_SD_VAE_NAME];
#define UNIT(kind_, C_) (u ? (memset(&u[k], 0, sizeof u[k]), u[k].kind = kind_, u[k].C = C_, u[k].skip = -1, \
                              u[k].slot = -1) : 0, k++)
#define CUR (u ? &u[k - 1] : NULL)
#define PUSH() (u ? (u[k - 1].slot = slots) : 0, slots++, stack[sp++] = k - 1)
#define GPTR(field) (m ? &m->g->field : NULL)
    ZS_TRY(zs_vae_reg_conv(r, &p->conv_in, "conv_in.", c0, c->in_channels, 3));
    UNIT(U_CONV_IN, c0);
    if (u) CUR->cp = &p->conv_in, CUR->cg = GPTR(conv_in);
    PUSH();
    ZS_TRY(zs_vae_reg_linear(r, &p->t1, "time_embedding.linear_1.", T, c0, 1));
    ZS_TRY(zs_vae_reg_linear(r, &p->t2, "time_embedding.linear_2.", T, T, 1));
    int prev = c0;
    for (int i = 0; i < n; i++) {
        int ch = c->block_out_channels[i];
        for (int j = 0; j < L; j++) {
            ZS_TRY(zs_vae_reg_resnet_t(r, &p->down[i][j], zs_vae_name(q, "down_blocks.%d.resnets.%d.", i, j), j ? ch : prev,
                                       ch, T, eps));
            UNIT(U_RESNET, ch);
            if (u) CUR->rp = &p->down[i][j], CUR->rg = GPTR(down[i][j]);
            if (c->down_attn[i]) {
                ZS_TRY(zs_unet_reg_xformer(r, &p->dxf[i][j], zs_vae_name(q, "down_blocks.%d.attentions.%d.", i, j), ch,
                                           c->heads[i], c->transformer_layers[i], X, lin));
                UNIT(U_XFORMER, ch);
                if (u) CUR->xp = &p->dxf[i][j], CUR->xg = GPTR(dxf[i][j]);
            }
            PUSH();
        }
        if (i < n - 1) {
            ZS_TRY(zs_vae_reg_conv(r, &p->downconv[i], zs_vae_name(q, "down_blocks.%d.downsamplers.0.conv.", i), ch, ch, 3));
            UNIT(U_DOWN, ch);
            if (u) CUR->cp = &p->downconv[i], CUR->cg = GPTR(downconv[i]);
            PUSH();
        }
        prev = ch;
    }
    int cm = c->block_out_channels[n - 1];
    for (int j = 0; j < 2; j++) {
        ZS_TRY(zs_vae_reg_resnet_t(r, &p->mid[j], zs_vae_name(q, "mid_block.resnets.%d.", j), cm, cm, T, eps));
        UNIT(U_RESNET, cm);
        if (u) CUR->rp = &p->mid[j], CUR->rg = GPTR(mid[j]);
        if (j) break;
        ZS_TRY(zs_unet_reg_xformer(r, &p->mxf, "mid_block.attentions.0.", cm, c->heads[n - 1],
                                   c->transformer_layers[n - 1], X, lin));
        UNIT(U_XFORMER, cm);
        if (u) CUR->xp = &p->mxf, CUR->xg = GPTR(mxf);
    }
    prev = cm;
    for (int i = 0; i < n; i++) {
        int ch = c->block_out_channels[n - 1 - i];
        for (int j = 0; j <= L; j++) {
            if (sp < 1) return ZS_ERR(ZS_EINVAL, "sd unet: skip stack underflow");
            int s = stack[--sp];
            int cskip = j == L ? c->block_out_channels[i + 1 < n ? n - 2 - i : 0] : ch;
            ZS_TRY(zs_vae_reg_resnet_t(r, &p->up[i][j], zs_vae_name(q, "up_blocks.%d.resnets.%d.", i, j),
                                       (j ? ch : prev) + cskip, ch, T, eps));
            UNIT(U_RESNET, ch);
            if (u) CUR->rp = &p->up[i][j], CUR->rg = GPTR(up[i][j]), CUR->skip = s;
            if (c->up_attn[i]) {
                ZS_TRY(zs_unet_reg_xformer(r, &p->uxf[i][j], zs_vae_name(q, "up_blocks.%d.attentions.%d.", i, j), ch,
                                           c->heads[n - 1 - i], c->transformer_layers[n - 1 - i], X, lin));
                UNIT(U_XFORMER, ch);
                if (u) CUR->xp = &p->uxf[i][j], CUR->xg = GPTR(uxf[i][j]);
            }
        }
        if (i < n - 1) {
            ZS_TRY(zs_vae_reg_conv(r, &p->upconv[i], zs_vae_name(q, "up_blocks.%d.upsamplers.0.conv.", i), ch, ch, 3));
            UNIT(U_UP, ch);
            if (u) CUR->cp = &p->upconv[i], CUR->cg = GPTR(upconv[i]), CUR->skip = stack[sp - 1];
        }
        prev = ch;
    }
    ZS_TRY(zs_vae_reg_norm(r, &p->norm_out, "conv_norm_out.", c0));
    ZS_TRY(zs_vae_reg_conv(r, &p->conv_out, "conv_out.", c->out_channels, c0, 3));
    UNIT(U_HEAD, c->out_channels);
    if (u) CUR->cp = &p->conv_out, CUR->cg = GPTR(conv_out), CUR->np = &p->norm_out, CUR->ng = GPTR(norm_out);
    if (m) m->n_slots = slots;
    *nu = k;
    return ZS_OK;
#undef UNIT
#undef CUR
#undef PUSH
#undef GPTR
}

// Measures, then allocates arena a and lays p out in it (units: also lists m's units).
static zs_status alloc_params(zs_sd_unet *m, zs_arena *a, zs_unet_params *p, zs_tensor **tab, const char *what,
                              int units) {
    zs_arena ms;
    int nu;
    zs_arena_measure(&ms, what, m->dev);
    zs_vae_reg r = {&ms, m->dt, 0, NULL, NULL};
    ZS_TRY(layout_params(&r, p, &m->cfg, NULL, NULL, &nu));
    ZS_TRY(zs_arena_init(a, what, m->dev, ms.peak + ZS_ARENA_ALIGN));
    zs_vae_reg r2 = {a, m->dt, 0, m->names, tab};
    return layout_params(&r2, p, &m->cfg, units ? m : NULL, units ? m->u : NULL, &nu);
}

zs_status zs_sd_unet_create(zs_sd_unet **out, const zs_sd_unet_config *c, zs_device dev, zs_dtype dt) {
    *out = NULL;
    int n = c->levels, bad = n < 1 || n > ZS_SD_MAX_LEVELS || c->layers_per_block < 1 ||
                             c->layers_per_block > ZS_UNET_MAX_LPB || c->in_channels < 1 || c->out_channels < 1 ||
                             c->norm_num_groups < 1 || c->cross_attention_dim < 1 || c->time_embed_dim < 1 ||
                             n * (c->layers_per_block + 1) + 1 > 64;
    for (int i = 0; !bad && i < n; i++) {
        int ch = c->block_out_channels[i];
        bad |= ch < 1 || ch % c->norm_num_groups || c->heads[i] < 1 || ch % c->heads[i] ||
               c->transformer_layers[i] < 1 || c->transformer_layers[i] > ZS_UNET_MAX_TLAYERS;
    }
    if (bad)
        return ZS_ERR(ZS_EINVAL, "sd unet: unsupported config (levels %d, layers_per_block %d (1..%d), groups %d dividing "
                      "every width, heads dividing every width, transformer_layers 1..%d)", n, c->layers_per_block,
                      ZS_UNET_MAX_LPB, c->norm_num_groups, ZS_UNET_MAX_TLAYERS);
    zs_sd_unet *m = calloc(1, sizeof *m);
    if (!m) return ZS_ERR(ZS_ENOMEM, "sd unet");
    m->cfg = *c, m->dev = dev, m->dt = dt;
    m->p = calloc(1, sizeof *m->p), m->g = calloc(1, sizeof *m->g);
    zs_status s = m->p && m->g ? ZS_OK : ZS_ERR(ZS_ENOMEM, "sd unet: parameter structs");
    // count, then tables, then the real layout with the unit list
    zs_arena ms;
    zs_arena_measure(&ms, "unet count", dev);
    zs_vae_reg r = {&ms, dt, 0, NULL, NULL};
    if (!s) s = layout_params(&r, m->p, c, NULL, NULL, &m->n_units);
    if (!s) {
        m->n_params = r.n;
        m->names = calloc((size_t)m->n_params, sizeof *m->names);
        m->ptab = calloc((size_t)m->n_params, sizeof *m->ptab);
        m->gtab = calloc((size_t)m->n_params, sizeof *m->gtab);
        m->u = calloc((size_t)m->n_units, sizeof *m->u);
        if (!m->names || !m->ptab || !m->gtab || !m->u) s = ZS_ERR(ZS_ENOMEM, "sd unet: parameter table");
    }
    if (!s) s = alloc_params(m, &m->params, m->p, m->ptab, "unet params", 1);
    if (s) {
        zs_sd_unet_free(m);
        return s;
    }
    m->dskip = calloc((size_t)m->n_slots, sizeof *m->dskip);
    if (!m->dskip) {
        zs_sd_unet_free(m);
        return ZS_ERR(ZS_ENOMEM, "sd unet");
    }
    *out = m;
    return ZS_OK;
}

void zs_sd_unet_free(zs_sd_unet *m) {
    if (!m) return;
    zs_arena_free(&m->params);
    zs_arena_free(&m->grads);
    zs_arena_free(&m->acts);
    free(m->p);
    free(m->g);
    free(m->names);
    free(m->ptab);
    free(m->gtab);
    free(m->u);
    free(m->dskip);
    free(m);
}

const zs_sd_unet_config *zs_sd_unet_cfg(const zs_sd_unet *u) { return &u->cfg; }
zs_device zs_sd_unet_device(const zs_sd_unet *u) { return u->dev; }
zs_dtype zs_sd_unet_dtype(const zs_sd_unet *u) { return u->dt; }
int zs_sd_unet_n_params(const zs_sd_unet *u) { return u->n_params; }
const char *zs_sd_unet_param_name(const zs_sd_unet *u, int i) { return i >= 0 && i < u->n_params ? u->names[i] : NULL; }
zs_tensor *zs_sd_unet_param(zs_sd_unet *u, int i) { return i >= 0 && i < u->n_params ? u->ptab[i] : NULL; }
zs_tensor *zs_sd_unet_grad(zs_sd_unet *u, int i) {
    return i >= 0 && i < u->n_params && u->grads.base ? u->gtab[i] : NULL;
}

zs_status zs_sd_unet_grads(zs_sd_unet *u) {
    if (!u->grads.base) ZS_TRY(alloc_params(u, &u->grads, u->g, u->gtab, "unet grads", 0));
    return zs_sd_unet_zero_grads(u);
}

zs_status zs_sd_unet_zero_grads(zs_sd_unet *u) {
    if (!u->grads.base) return ZS_ERR(ZS_EINVAL, "sd unet: no gradient buffers (call zs_sd_unet_grads)");
    return zs_memset0(u->grads.base, u->dev, u->grads.used);
}

zs_sd_unet_mem zs_sd_unet_memory(const zs_sd_unet *u) {
    zs_sd_unet_mem r = {u->params.cap, u->grads.cap, u->acts.cap, u->scratch};
    return r;
}

// ---- loading -----------------------------------------------------------------------------------
static zs_status same_config(const zs_sd_unet_config *a, const zs_sd_unet_config *b) {
#define F(f) if (a->f != b->f) return ZS_ERR(ZS_EINVAL, "sd unet: the plan's UNet config differs in " #f " (%g vs %g)", \
                                        (double)b->f, (double)a->f)
#define A(f) for (int i = 0; i < a->levels; i++) if (a->f[i] != b->f[i]) \
        return ZS_ERR(ZS_EINVAL, "sd unet: the plan's UNet config differs in " #f "[%d] (%d vs %d)", i, b->f[i], a->f[i])
    F(in_channels); F(out_channels); F(levels); F(layers_per_block); F(cross_attention_dim);
    F(use_linear_projection); F(norm_num_groups); F(norm_eps); F(flip_sin_to_cos); F(freq_shift); F(time_embed_dim);
    A(block_out_channels); A(down_attn); A(up_attn); A(heads); A(transformer_layers);
#undef F
#undef A
    return ZS_OK;
}

zs_status zs_sd_unet_load(zs_sd_unet *u, const zs_sd_plan *p) {
    ZS_TRY(same_config(&u->cfg, &p->unet));
    if (p->n_unet_slots != u->n_params)
        return ZS_ERR(ZS_EFORMAT, "sd unet: the plan has %d UNet slots, the model %d parameters", p->n_unet_slots,
                      u->n_params);
    for (int i = 0; i < u->n_params; i++) {  // registration follows the slot order
        const zs_sd_slot *sl = &p->slots[i];
        if (sl->part != ZS_SD_UNET || strcmp(sl->name, u->names[i]))
            return ZS_ERR(ZS_EFORMAT, "sd unet: plan slot %d is %s, the model's parameter %s", i, sl->name, u->names[i]);
        ZS_TRY(zs_sd_slot_load(p, sl, u->ptab[i], "sd unet"));
    }
    return ZS_OK;
}

zs_status zs_sd_unet_open(zs_sd_unet **out, const char *path, const zs_sd_plan_opts *opts, zs_device dev,
                          zs_dtype dt) {
    zs_sd_plan *p;
    *out = NULL;
    ZS_TRY(zs_sd_plan_open(&p, path, opts));
    zs_sd_unet *u = NULL;
    zs_status s = zs_sd_unet_create(&u, &p->unet, dev, dt);
    if (!s) s = zs_sd_unet_load(u, p);
    zs_sd_plan_free(p);
    if (s) {
        zs_sd_unet_free(u);
        return s;
    }
    *out = u;
    return ZS_OK;
}

// ---- activations -------------------------------------------------------------------------------
static zs_status act4(zs_arena *ar, zs_tensor *t, zs_dtype dt, int64_t B, int64_t C, int64_t h, int64_t w,
                      const char *name) {
    int64_t sh[4] = {B, C, h, w};
    return zs_arena_tensor(ar, t, dt, 4, sh, name);
}

// Output sizes of every unit for a sample of (h, w).
static void unit_sizes(zs_sd_unet *m, int64_t h, int64_t w) {
    for (int i = 0; i < m->n_units; i++) {
        unit *u = &m->u[i];
        if (u->kind == U_DOWN) h = (h - 1) / 2 + 1, w = (w - 1) / 2 + 1;  // conv 3x3 stride 2 pad 1
        if (u->kind == U_UP) h = m->u[u->skip].h, w = m->u[u->skip].w;   // upsample_size: the next skip's
        u->h = h, u->w = w;
    }
}

// A unit's inputs: main (the previous unit's output, or the sample for conv_in).
static const zs_tensor *unit_in(const zs_sd_unet *m, int i) { return i ? &m->u[i - 1].o : m->sample; }

static zs_status lay_unit_scratch(zs_arena *ar, zs_sd_unet *m, int i, int train) {
    unit *u = &m->u[i];
    zs_dtype dt = m->dt;
    int64_t B = m->B, h = u->h, w = u->w, G = m->cfg.norm_num_groups, st[2] = {B, G};
    const zs_tensor *x = i ? &m->u[i - 1].o : NULL;
    int64_t cx = i ? m->u[i - 1].C : m->cfg.in_channels;
    switch (u->kind) {
    case U_CONV_IN: case U_DOWN: return ZS_OK;
    case U_RESNET: {
        const zs_vae_resnet *p = u->rp;
        zs_vae_resnet_acts *k = &u->r;
        int64_t cin = p->cin, cout = p->cout, tb[2] = {B, cout};
        memset(k, 0, sizeof *k);
        if (u->skip >= 0) ZS_TRY(act4(ar, &u->cat, dt, B, cin, h, w, "unet.resnet.cat"));
        k->x = u->skip >= 0 ? &u->cat : x;
        k->out = u->o;
        k->temb = &m->stemb;
        ZS_TRY(act4(ar, &k->n1, dt, B, cin, h, w, "unet.resnet.n1"));
        ZS_TRY(zs_arena_tensor(ar, &k->mean1, ZS_F32, 2, st, "unet.gn.stats"));
        ZS_TRY(zs_arena_tensor(ar, &k->rstd1, ZS_F32, 2, st, "unet.gn.stats"));
        ZS_TRY(act4(ar, &k->c1, dt, B, cout, h, w, "unet.resnet.c1"));
        ZS_TRY(zs_arena_tensor(ar, &k->tb, dt, 2, tb, "unet.resnet.tb"));
        ZS_TRY(act4(ar, &k->n2, dt, B, cout, h, w, "unet.resnet.n2"));
        ZS_TRY(zs_arena_tensor(ar, &k->mean2, ZS_F32, 2, st, "unet.gn.stats"));
        ZS_TRY(zs_arena_tensor(ar, &k->rstd2, ZS_F32, 2, st, "unet.gn.stats"));
        if (cin != cout) ZS_TRY(act4(ar, &k->sc, dt, B, cout, h, w, "unet.resnet.shortcut"));
        if (train) {
            int64_t n0 = B * (cin > cout ? cin : cout) * h * w, n1 = B * cout * h * w;
            if (u->skip >= 0) ZS_TRY(act4(ar, &u->dcat, dt, B, cin, h, w, "unet.resnet.d.cat"));
            ZS_TRY(zs_arena_tensor(ar, &u->s0, dt, 1, &n0, "unet.resnet.d"));
            ZS_TRY(zs_arena_tensor(ar, &u->s1, dt, 1, &n1, "unet.resnet.d"));
            ZS_TRY(zs_arena_tensor(ar, &k->dtb, dt, 2, tb, "unet.resnet.d.tb"));
            k->dtemb = &m->dstemb;
        }
        return ZS_OK;
    }
    case U_XFORMER:
        u->x.x = x, u->x.out = &u->o, u->x.ctx = NULL;
        return zs_unet_lay_xformer(ar, u->xp, &u->x, dt, B, h, w, m->L, (int)G, train);
    case U_UP:
        ZS_TRY(act4(ar, &u->ups, dt, B, cx, h, w, "unet.upsample"));
        return train ? act4(ar, &u->dups, dt, B, cx, h, w, "unet.upsample.d") : ZS_OK;
    case U_HEAD:
        ZS_TRY(act4(ar, &u->nout, dt, B, cx, h, w, "unet.conv_norm_out"));
        ZS_TRY(zs_arena_tensor(ar, &u->nmean, ZS_F32, 2, st, "unet.gn.stats"));
        ZS_TRY(zs_arena_tensor(ar, &u->nrstd, ZS_F32, 2, st, "unet.gn.stats"));
        return train ? act4(ar, &u->dnout, dt, B, cx, h, w, "unet.conv_norm_out.d") : ZS_OK;
    }
    return ZS_OK;
}

// Kept tensors first (temb chain, unit outputs, train: gradient buffers), then one scratch
// region that every unit lays its intermediates into from the same mark.
static zs_status layout_acts(zs_arena *ar, zs_sd_unet *m, int train, size_t *scratch) {
    const zs_sd_unet_config *c = &m->cfg;
    zs_dtype dt = m->dt;
    int64_t B = m->B, bt[2] = {B, c->time_embed_dim}, be[2] = {B, c->block_out_channels[0]}, mx = 0;
    ZS_TRY(zs_arena_tensor(ar, &m->t, ZS_F32, 1, &B, "unet.timesteps"));
    ZS_TRY(zs_arena_tensor(ar, &m->emb, dt, 2, be, "unet.time_proj"));
    zs_tensor *tt[4] = {&m->l1, &m->s1, &m->temb, &m->stemb};
    for (int i = 0; i < 4; i++) ZS_TRY(zs_arena_tensor(ar, tt[i], dt, 2, bt, "unet.temb"));
    // Unit outputs. Inference: those that are no skip connection are read only by the next
    // unit, so they take turns in two buffers of the largest one's size (skips keep their own).
    int64_t mxt = 0;
    for (int i = 0; i < m->n_units; i++) {
        unit *u = &m->u[i];
        if (u->kind == U_HEAD) continue;
        if (train || u->slot >= 0) {
            ZS_TRY(act4(ar, &u->o, dt, B, u->C, u->h, u->w, "unet.unit.out"));
        } else {
            u->o = (zs_tensor){NULL, dt, ar->device, 4, {B, u->C, u->h, u->w}, "unet.unit.out (inference)"};
            if (zs_numel(&u->o) > mxt) mxt = zs_numel(&u->o);
        }
        if (zs_numel(&u->o) > mx) mx = zs_numel(&u->o);
    }
    if (!train && mxt) {
        zs_tensor turn[2];
        for (int i = 0; i < 2; i++) ZS_TRY(zs_arena_tensor(ar, &turn[i], dt, 1, &mxt, "unet.unit.out (inference)"));
        for (int i = 0, k = 0; i < m->n_units; i++)
            if (m->u[i].kind != U_HEAD && m->u[i].slot < 0) m->u[i].o.data = turn[k++ % 2].data;
    }
    if (train) {
        for (int i = 0; i < 2; i++) ZS_TRY(zs_arena_tensor(ar, &m->g2[i], dt, 1, &mx, "unet.d.chain"));
        for (int i = 0; i < m->n_units; i++)
            if (m->u[i].slot >= 0) {
                unit *u = &m->u[i];
                ZS_TRY(act4(ar, &m->dskip[u->slot], dt, B, u->C, u->h, u->w, "unet.d.skip"));
            }
        zs_tensor *gt[4] = {&m->dstemb, &m->dtemb, &m->ds1, &m->dl1};
        for (int i = 0; i < 4; i++) ZS_TRY(zs_arena_tensor(ar, gt[i], dt, 2, bt, "unet.d.temb"));
    }
    size_t mark = zs_arena_mark(ar), top = mark;
    for (int i = 0; i < m->n_units; i++) {
        zs_arena_reset(ar, mark);
        ZS_TRY(lay_unit_scratch(ar, m, i, train));
        if (zs_arena_mark(ar) > top) top = zs_arena_mark(ar);
    }
    *scratch = top - mark;
    return ZS_OK;
}

zs_status zs_sd_unet_setup(zs_sd_unet *m, int64_t B, int64_t h, int64_t w, int64_t L, int train) {
    if (B < 1 || h < 1 || w < 1 || L < 1)
        return ZS_ERR(ZS_EINVAL, "sd unet: setup for sample [%lld, %d, %lld, %lld], context length %lld", (long long)B,
                      m->cfg.in_channels, (long long)h, (long long)w, (long long)L);
    train = !!train;
    if (m->acts.base && m->B == B && m->h == h && m->w == w && m->L == L && m->train == train) return ZS_OK;
    zs_arena_free(&m->acts);
    m->sample = m->ctx = NULL;
    m->B = B, m->h = h, m->w = w, m->L = L, m->train = train;
    unit_sizes(m, h, w);
    zs_arena ms;
    size_t sc;
    zs_arena_measure(&ms, "unet acts", m->dev);
    zs_status s = layout_acts(&ms, m, train, &sc);
    if (!s) s = zs_arena_init(&m->acts, "unet acts", m->dev, ms.peak);
    if (!s) s = layout_acts(&m->acts, m, train, &m->scratch);
    if (s) {
        zs_arena_free(&m->acts);
        m->B = 0;
    }
    return s;
}

// ---- forward -----------------------------------------------------------------------------------
// cat(a, b) along channels: two pitched copies (B rows each), no op needed.
static zs_status concat(zs_tensor *y, const zs_tensor *a, const zs_tensor *b) {
    size_t es = zs_dtype_size(y->dtype), na = (size_t)(zs_numel(a) / a->shape[0]) * es,
           nb = (size_t)(zs_numel(b) / b->shape[0]) * es, rows = (size_t)y->shape[0];
    ZS_TRY(zs_memcpy2d(y->data, na + nb, y->device, a->data, na, a->device, na, rows));
    return zs_memcpy2d((char *)y->data + na, na + nb, y->device, b->data, nb, b->device, nb, rows);
}

// da += dy[:, :Ca], db += dy[:, Ca:], per sample.
static zs_status split_bwd(zs_tensor *da, zs_tensor *db, const zs_tensor *dy) {
    int64_t na = zs_numel(da) / da->shape[0], nb = zs_numel(db) / db->shape[0];
    for (int64_t s = 0; s < dy->shape[0]; s++) {
        zs_tensor a, b, ya, yb;
        ZS_TRY(zs_view(&a, da, s * na, 1, &na));
        ZS_TRY(zs_view(&b, db, s * nb, 1, &nb));
        ZS_TRY(zs_view(&ya, dy, s * (na + nb), 1, &na));
        ZS_TRY(zs_view(&yb, dy, s * (na + nb) + na, 1, &nb));
        ZS_TRY(zs_add_fwd(&a, &a, &ya));
        ZS_TRY(zs_add_fwd(&b, &b, &yb));
    }
    return ZS_OK;
}

// Unit i's forward (its output, intermediates in the scratch); with out NULL (the backward's
// re-run) only what its backward reads: nothing for the convs (their inputs are kept), a
// resnet up to norm2, the upsampled tensor, the head's group norm.
static zs_status unit_fwd(zs_sd_unet *m, int i, zs_tensor *out) {
    unit *u = &m->u[i];
    const zs_tensor *x = unit_in(m, i);
    int G = m->cfg.norm_num_groups;
    switch (u->kind) {
    case U_CONV_IN: return out ? zs_conv2d_fwd(&u->o, x, &u->cp->w, &u->cp->b, &P3) : ZS_OK;
    case U_DOWN: return out ? zs_conv2d_fwd(&u->o, x, &u->cp->w, &u->cp->b, &P3S2) : ZS_OK;
    case U_RESNET:
        if (u->skip >= 0) ZS_TRY(concat(&u->cat, x, &m->u[u->skip].o));
        return out ? zs_vae_resnet_fwd(u->rp, &u->r, G) : zs_vae_resnet_fwd_inner(u->rp, &u->r, G);
    case U_XFORMER:
        u->x.ctx = m->ctx;
        return zs_unet_xformer_fwd(u->xp, &u->x, G);
    case U_UP:
        ZS_TRY(zs_upsample_nearest_fwd(&u->ups, x));
        return out ? zs_conv2d_fwd(&u->o, &u->ups, &u->cp->w, &u->cp->b, &P3) : ZS_OK;
    case U_HEAD:
        ZS_TRY(zs_groupnorm_fwd(&u->nout, &u->nmean, &u->nrstd, x, &u->np->w, &u->np->b, G, (float)m->cfg.norm_eps, 1));
        return out ? zs_conv2d_fwd(out, &u->nout, &u->cp->w, &u->cp->b, &P3) : ZS_OK;
    }
    return ZS_OK;
}

zs_status zs_sd_unet_fwd(zs_sd_unet *m, zs_tensor *out, const zs_tensor *sample, const float *t, const zs_tensor *ctx) {
    const zs_sd_unet_config *c = &m->cfg;
    if (!m->acts.base) return ZS_ERR(ZS_EINVAL, "sd unet: forward before zs_sd_unet_setup");
    if (!out || !sample || !t || !ctx) return ZS_ERR(ZS_EINVAL, "sd unet: forward needs out, sample, t and ctx");
    int64_t ss[4] = {m->B, c->in_channels, m->h, m->w}, os[4] = {m->B, c->out_channels, m->h, m->w},
            cs[3] = {m->B, m->L, c->cross_attention_dim};
    ZS_TRY(zs_check_shape(sample, "sd unet: sample", 4, ss));
    ZS_TRY(zs_check_shape(ctx, "sd unet: encoder_hidden_states", 3, cs));
    ZS_TRY(zs_check_shape(out, "sd unet: out", 4, os));
    if (out->data == sample->data) return ZS_ERR(ZS_EINVAL, "sd unet: out may not alias sample");
    m->sample = sample, m->ctx = ctx;
    ZS_TRY(zs_memcpy(m->t.data, m->dev, t, ZS_CPU, sizeof(float) * (size_t)m->B));
    ZS_TRY(zs_timestep_embedding(&m->emb, &m->t, c->flip_sin_to_cos, (float)c->freq_shift, 1.0f, 10000.0f));
    ZS_TRY(zs_linear_fwd(&m->l1, &m->emb, &m->p->t1.w, &m->p->t1.b));
    ZS_TRY(zs_act_fwd(ZS_ACT_SILU, &m->s1, &m->l1));
    ZS_TRY(zs_linear_fwd(&m->temb, &m->s1, &m->p->t2.w, &m->p->t2.b));
    ZS_TRY(zs_act_fwd(ZS_ACT_SILU, &m->stemb, &m->temb));  // every resnet's time_emb_proj input
    for (int i = 0; i < m->n_units; i++) ZS_TRY(unit_fwd(m, i, out));
    return ZS_OK;
}

// ---- backward ----------------------------------------------------------------------------------
// Unit i's backward from dy (its re-run forward in the scratch): dx += d input (may be NULL
// for conv_in), skip accumulators and d ctx +=, parameter grads += when gp.
static zs_status unit_bwd(zs_sd_unet *m, int i, const zs_tensor *dy, zs_tensor *dx, zs_tensor *dctx, int gp) {
    unit *u = &m->u[i];
    const zs_tensor *x = unit_in(m, i);
    int G = m->cfg.norm_num_groups;
    zs_vae_pair *cg = gp ? u->cg : NULL;
    zs_tensor *dw = cg ? &cg->w : NULL, *db = cg ? &cg->b : NULL;
    switch (u->kind) {
    case U_CONV_IN: return dx || dw ? zs_conv2d_bwd(dx, dw, db, dy, x, &u->cp->w, &P3) : ZS_OK;
    case U_DOWN: return zs_conv2d_bwd(dx, dw, db, dy, x, &u->cp->w, &P3S2);
    case U_RESNET:
        if (u->skip < 0) return zs_vae_resnet_bwd(u->rp, gp ? u->rg : NULL, &u->r, dy, dx, &u->s0, &u->s1, G);
        ZS_TRY(zs_zero(&u->dcat));
        ZS_TRY(zs_vae_resnet_bwd(u->rp, gp ? u->rg : NULL, &u->r, dy, &u->dcat, &u->s0, &u->s1, G));
        return split_bwd(dx, &m->dskip[m->u[u->skip].slot], &u->dcat);
    case U_XFORMER: return zs_unet_xformer_bwd(u->xp, gp ? u->xg : NULL, &u->x, dy, dx, dctx, G);
    case U_UP:
        ZS_TRY(zs_zero(&u->dups));
        ZS_TRY(zs_conv2d_bwd(&u->dups, dw, db, dy, &u->ups, &u->cp->w, &P3));
        return zs_upsample_nearest_bwd(dx, &u->dups);
    case U_HEAD: {
        zs_vae_pair *ng = gp ? u->ng : NULL;
        ZS_TRY(zs_zero(&u->dnout));
        ZS_TRY(zs_conv2d_bwd(&u->dnout, dw, db, dy, &u->nout, &u->cp->w, &P3));
        return zs_groupnorm_bwd(dx, ng ? &ng->w : NULL, ng ? &ng->b : NULL, &u->dnout, x, &u->np->w, &u->np->b,
                                &u->nmean, &u->nrstd, G, 1);
    }
    }
    return ZS_OK;
}

zs_status zs_sd_unet_bwd(zs_sd_unet *m, const zs_tensor *d_out, zs_tensor *d_sample, zs_tensor *d_ctx) {
    const zs_sd_unet_config *c = &m->cfg;
    if (!m->acts.base || !m->train) return ZS_ERR(ZS_EINVAL, "sd unet: backward needs zs_sd_unet_setup(..., train = 1)");
    if (!m->sample) return ZS_ERR(ZS_EINVAL, "sd unet: backward before a forward");
    if (!d_out) return ZS_ERR(ZS_EINVAL, "sd unet: backward needs d_out");
    int64_t ss[4] = {m->B, c->in_channels, m->h, m->w}, os[4] = {m->B, c->out_channels, m->h, m->w},
            cs[3] = {m->B, m->L, c->cross_attention_dim};
    ZS_TRY(zs_check_shape(d_out, "sd unet: d_out", 4, os));
    if (d_sample) ZS_TRY(zs_check_shape(d_sample, "sd unet: d_sample", 4, ss));
    if (d_ctx) ZS_TRY(zs_check_shape(d_ctx, "sd unet: d_encoder_hidden_states", 3, cs));
    int gp = m->grads.base != NULL, cur = 0;
    for (int k = 0; k < m->n_slots; k++) ZS_TRY(zs_zero(&m->dskip[k]));
    ZS_TRY(zs_zero(&m->dstemb));
    const zs_tensor *dy = d_out;
    zs_tensor dx[2];  // views of g2[0] / g2[1]: dy may be the other one
    for (int i = m->n_units - 1; i >= 0; i--) {
        zs_tensor *dxp = NULL;
        if (i == 0) dxp = d_sample;
        else if (m->u[i - 1].slot >= 0) dxp = &m->dskip[m->u[i - 1].slot];  // holds the up resnet's part already
        else {
            cur ^= 1;
            ZS_TRY(zs_vae_zview(&dx[cur], &m->g2[cur], &m->u[i - 1].o));
            dxp = &dx[cur];
        }
        ZS_TRY(unit_fwd(m, i, NULL));  // re-make the unit's intermediates
        ZS_TRY(unit_bwd(m, i, dy, dxp, d_ctx, gp));
        dy = dxp;
    }
    if (!gp) return ZS_OK;
    // time embedding: d SiLU(temb) summed over every resnet
    zs_unet_params *g = m->g;
    zs_tensor *z[3] = {&m->dtemb, &m->ds1, &m->dl1};
    for (int i = 0; i < 3; i++) ZS_TRY(zs_zero(z[i]));
    ZS_TRY(zs_act_bwd(ZS_ACT_SILU, &m->dtemb, &m->dstemb, &m->temb));
    ZS_TRY(zs_linear_bwd(&m->ds1, &g->t2.w, &g->t2.b, &m->dtemb, &m->s1, &m->p->t2.w));
    ZS_TRY(zs_act_bwd(ZS_ACT_SILU, &m->dl1, &m->ds1, &m->l1));
    return zs_linear_bwd(NULL, &g->t1.w, &g->t1.b, &m->dl1, &m->emb, &m->p->t1.w);
}
