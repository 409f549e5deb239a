#include "models/sd_vae_blocks.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "kernels/attention.h"
#include "kernels/chanbias.h"
#include "kernels/conv.h"
#include "kernels/groupnorm.h"
#include "kernels/ops.h"
#include "models/patchify.h"
#include "models/transformer.h"

// ---- registration ------------------------------------------------------------------------------
static zs_status reg_one(zs_vae_reg *r, zs_tensor *t, int ndim, const int64_t *sh, const char *prefix,
                         const char *leaf) {
    if (r->names) {
        snprintf(r->names[r->n], ZS_SD_VAE_NAME, "%s%s", prefix, leaf);
        r->tab[r->n] = t;
    }
    ZS_TRY(zs_arena_tensor(r->a, t, r->dt, ndim, sh, r->names ? r->names[r->n] : "vae param"));
    r->n++;
    return ZS_OK;
}

const char *zs_vae_name(char *q, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, ZS_SD_VAE_NAME, fmt, ap);
    va_end(ap);
    return q;
}

// conv [o, i, k, k] + bias [o]
zs_status zs_vae_reg_conv(zs_vae_reg *r, zs_vae_pair *p, const char *prefix, int64_t o, int64_t i, int64_t k) {
    int64_t sh[4] = {o, i, k, k};
    ZS_TRY(reg_one(r, &p->w, 4, sh, prefix, "weight"));
    return reg_one(r, &p->b, 1, &o, prefix, "bias");
}

zs_status zs_vae_reg_norm(zs_vae_reg *r, zs_vae_pair *p, const char *prefix, int64_t c) {
    ZS_TRY(reg_one(r, &p->w, 1, &c, prefix, "weight"));
    return reg_one(r, &p->b, 1, &c, prefix, "bias");
}

zs_status zs_vae_reg_linear(zs_vae_reg *r, zs_vae_pair *p, const char *prefix, int64_t o, int64_t i, int bias) {
    int64_t sh[2] = {o, i};
    ZS_TRY(reg_one(r, &p->w, 2, sh, prefix, "weight"));
    return bias ? reg_one(r, &p->b, 1, &o, prefix, "bias") : ZS_OK;
}

zs_status zs_vae_reg_resnet(zs_vae_reg *r, zs_vae_resnet *p, const char *prefix, int cin, int cout) {
    return zs_vae_reg_resnet_t(r, p, prefix, cin, cout, 0, ZS_VAE_EPS);
}

zs_status zs_vae_reg_resnet_t(zs_vae_reg *r, zs_vae_resnet *p, const char *prefix, int cin, int cout, int64_t temb,
                              float eps) {
    char q[ZS_SD_VAE_NAME];
    p->cin = cin, p->cout = cout, p->temb = temb, p->eps = eps;
    ZS_TRY(zs_vae_reg_norm(r, &p->norm1, zs_vae_name(q, "%snorm1.", prefix), cin));
    ZS_TRY(zs_vae_reg_conv(r, &p->conv1, zs_vae_name(q, "%sconv1.", prefix), cout, cin, 3));
    if (temb) ZS_TRY(zs_vae_reg_linear(r, &p->temb_proj, zs_vae_name(q, "%stime_emb_proj.", prefix), cout, temb, 1));
    ZS_TRY(zs_vae_reg_norm(r, &p->norm2, zs_vae_name(q, "%snorm2.", prefix), cout));
    ZS_TRY(zs_vae_reg_conv(r, &p->conv2, zs_vae_name(q, "%sconv2.", prefix), cout, cout, 3));
    if (cin != cout) ZS_TRY(zs_vae_reg_conv(r, &p->shortcut, zs_vae_name(q, "%sconv_shortcut.", prefix), cout, cin, 1));
    return ZS_OK;
}

zs_status zs_vae_reg_attn(zs_vae_reg *r, zs_vae_attn *p, const char *prefix, int64_t c) {
    char q[ZS_SD_VAE_NAME];
    zs_vae_pair *l[4] = {&p->q, &p->k, &p->v, &p->out};
    const char *ln[4] = {"to_q.", "to_k.", "to_v.", "to_out.0."};
    int64_t sh[2] = {c, c};
    ZS_TRY(zs_vae_reg_norm(r, &p->norm, zs_vae_name(q, "%sgroup_norm.", prefix), c));
    for (int k = 0; k < 4; k++) {  // linear [c, c] + bias [c]
        zs_vae_name(q, "%s%s", prefix, ln[k]);
        ZS_TRY(reg_one(r, &l[k]->w, 2, sh, q, "weight"));
        ZS_TRY(reg_one(r, &l[k]->b, 1, &c, q, "bias"));
    }
    return ZS_OK;
}

// ---- loading -----------------------------------------------------------------------------------
static int has_prefix(const char *name, const char *const *prefixes, int np) {
    for (int i = 0; i < np; i++)
        if (!strncmp(name, prefixes[i], strlen(prefixes[i]))) return 1;
    return 0;
}

zs_status zs_vae_load_slots(const zs_sd_plan *p, const char *const *prefixes, int np, char (*names)[ZS_SD_VAE_NAME],
                            zs_tensor **tab, int n, const char *what) {
    char *done = calloc((size_t)n, 1);
    if (!done) return ZS_ERR(ZS_ENOMEM, "%s: load table", what);
    zs_status s = ZS_OK;
    int loaded = 0;
    for (int i = p->n_unet_slots; i < p->n_slots && !s; i++) {
        const zs_sd_slot *sl = &p->slots[i];
        if (sl->part != ZS_SD_VAE || !has_prefix(sl->name, prefixes, np)) continue;
        int k = 0;
        while (k < n && strcmp(names[k], sl->name)) k++;
        if (k == n) s = ZS_ERR(ZS_EFORMAT, "%s: plan slot %s has no parameter", what, sl->name);
        if (!s) s = zs_sd_slot_load(p, sl, tab[k], what);
        if (!s && !done[k]) done[k] = 1, loaded++;
    }
    if (!s && loaded != n) {
        int k = 0;
        while (k < n && done[k]) k++;
        s = ZS_ERR(ZS_EFORMAT, "%s: the plan has no slot for parameter %s", what, names[k]);
    }
    free(done);
    return s;
}

// ---- forward -----------------------------------------------------------------------------------
static const zs_conv2d_params P1 = {1, 1, 0, 0, 1}, P3 = {1, 1, 1, 1, 1};

zs_status zs_vae_resnet_fwd_inner(const zs_vae_resnet *p, zs_vae_resnet_acts *k, int G) {
    ZS_TRY(zs_groupnorm_fwd(&k->n1, &k->mean1, &k->rstd1, k->x, &p->norm1.w, &p->norm1.b, G, p->eps, 1));
    ZS_TRY(zs_conv2d_fwd(&k->c1, &k->n1, &p->conv1.w, &p->conv1.b, &P3));
    if (p->temb) {  // + time_emb_proj(SiLU(temb)) per (sample, channel)
        ZS_TRY(zs_linear_fwd(&k->tb, k->temb, &p->temb_proj.w, &p->temb_proj.b));
        ZS_TRY(zs_chanbias_fwd(&k->c1, &k->c1, &k->tb));
    }
    return zs_groupnorm_fwd(&k->n2, &k->mean2, &k->rstd2, &k->c1, &p->norm2.w, &p->norm2.b, G, p->eps, 1);
}

zs_status zs_vae_resnet_fwd(const zs_vae_resnet *p, zs_vae_resnet_acts *k, int G) {
    ZS_TRY(zs_vae_resnet_fwd_inner(p, k, G));
    ZS_TRY(zs_conv2d_fwd(&k->out, &k->n2, &p->conv2.w, &p->conv2.b, &P3));
    if (p->cin != p->cout) {
        ZS_TRY(zs_conv2d_fwd(&k->sc, k->x, &p->shortcut.w, &p->shortcut.b, &P1));
        return zs_add_fwd(&k->out, &k->out, &k->sc);
    }
    return zs_add_fwd(&k->out, &k->out, k->x);
}

// ---- backward ----------------------------------------------------------------------------------
#define GW(pair) (G ? &G->pair.w : NULL)
#define GB(pair) (G ? &G->pair.b : NULL)

zs_status zs_vae_zview(zs_tensor *o, const zs_tensor *buf, const zs_tensor *like) {
    ZS_TRY(zs_view(o, buf, 0, like->ndim, like->shape));
    return zs_zero(o);
}

zs_status zs_vae_resnet_bwd(const zs_vae_resnet *p, zs_vae_resnet *G, const zs_vae_resnet_acts *k, const zs_tensor *dy,
                            zs_tensor *dx, const zs_tensor *s0, const zs_tensor *s1, int g) {
    zs_tensor dn2, dc1, dn1;
    if (p->cin != p->cout) ZS_TRY(zs_conv2d_bwd(dx, GW(shortcut), GB(shortcut), dy, k->x, &p->shortcut.w, &P1));
    else ZS_TRY(zs_add_bwd(dx, NULL, dy));
    ZS_TRY(zs_vae_zview(&dn2, s0, &k->n2));
    ZS_TRY(zs_conv2d_bwd(&dn2, GW(conv2), GB(conv2), dy, &k->n2, &p->conv2.w, &P3));
    ZS_TRY(zs_vae_zview(&dc1, s1, &k->c1));
    ZS_TRY(zs_groupnorm_bwd(&dc1, GW(norm2), GB(norm2), &dn2, &k->c1, &p->norm2.w, &p->norm2.b, &k->mean2, &k->rstd2, g, 1));
    ZS_TRY(zs_vae_zview(&dn1, s0, &k->n1));
    if (p->temb) {  // the per-channel add passes dc1 through; d time_emb_proj from its sums
        zs_tensor dtb = k->dtb;
        ZS_TRY(zs_zero(&dtb));
        ZS_TRY(zs_chanbias_bwd(NULL, &dtb, &dc1));
        ZS_TRY(zs_linear_bwd(k->dtemb, GW(temb_proj), GB(temb_proj), &dtb, k->temb, &p->temb_proj.w));
    }
    ZS_TRY(zs_conv2d_bwd(&dn1, GW(conv1), GB(conv1), &dc1, &k->n1, &p->conv1.w, &P3));
    return zs_groupnorm_bwd(dx, GW(norm1), GB(norm1), &dn1, k->x, &p->norm1.w, &p->norm1.b, &k->mean1, &k->rstd1, g, 1);
}

static zs_status flat(zs_tensor *o, const zs_tensor *t, int64_t rows, int64_t cols) {
    int64_t sh[2] = {rows, cols};
    return zs_view(o, t, 0, 2, sh);
}

zs_status zs_vae_attn_fwd(const zs_vae_attn *p, zs_vae_attn_acts *t, const zs_tensor *x, int G) {
    int64_t N = t->t.shape[0] * t->t.shape[1], C = t->t.shape[2];
    ZS_TRY(zs_groupnorm_fwd(&t->xn, &t->mean, &t->rstd, x, &p->norm.w, &p->norm.b, G, ZS_VAE_EPS, 0));
    ZS_TRY(zs_patchify_fwd(&t->t, &t->xn, 1));  // NCHW -> [B, HW, C]
    zs_tensor t2, q2, k2, v2, o2, p2;
    ZS_TRY(flat(&t2, &t->t, N, C));
    ZS_TRY(flat(&q2, &t->q, N, C));
    ZS_TRY(flat(&k2, &t->k, N, C));
    ZS_TRY(flat(&v2, &t->v, N, C));
    ZS_TRY(flat(&o2, &t->o, N, C));
    ZS_TRY(flat(&p2, &t->p, N, C));
    ZS_TRY(zs_linear_fwd(&q2, &t2, &p->q.w, &p->q.b));
    ZS_TRY(zs_linear_fwd(&k2, &t2, &p->k.w, &p->k.b));
    ZS_TRY(zs_linear_fwd(&v2, &t2, &p->v.w, &p->v.b));
    zs_attn_params ap = {1, 1.0f / sqrtf((float)C), 0};  // one head of width C
    ZS_TRY(zs_attention_fwd(&t->o, &t->lse, &t->q, &t->k, &t->v, &ap));
    ZS_TRY(zs_linear_fwd(&p2, &o2, &p->out.w, &p->out.b));
    ZS_TRY(zs_memcpy(t->out.data, t->out.device, x->data, x->device, zs_nbytes(x)));
    return zs_patchify_bwd(&t->out, &t->p, 1);  // out = x + [B, HW, C] -> NCHW
}
