// Transformer2DModel + BasicTransformerBlock of the SD UNet: registration, layout, forward,
// backward (models/sd_unet.h has the diagram).
#include <math.h>
#include "engine/backend.h"
#include "kernels/attention.h"
#include "kernels/geglu.h"
#include "kernels/groupnorm.h"
#include "kernels/ops.h"
#include "models/patchify.h"
#include "models/sd_unet_internal.h"
#include "models/transformer.h"

// ---- registration ------------------------------------------------------------------------------
static zs_status reg_proj(zs_vae_reg *r, zs_vae_pair *p, const char *prefix, int C, int linear) {
    return linear ? zs_vae_reg_linear(r, p, prefix, C, C, 1) : zs_vae_reg_conv(r, p, prefix, C, C, 1);
}

zs_status zs_unet_reg_xformer(zs_vae_reg *r, zs_unet_xformer *p, const char *prefix, int C, int heads, int layers,
                              int64_t X, int linear) {
    char q[ZS_SD_VAE_NAME];
    p->C = C, p->heads = heads, p->layers = layers, p->linear = linear;
    ZS_TRY(zs_vae_reg_norm(r, &p->norm, zs_vae_name(q, "%snorm.", prefix), C));
    ZS_TRY(reg_proj(r, &p->proj_in, zs_vae_name(q, "%sproj_in.", prefix), C, linear));
    for (int t = 0; t < layers; t++) {
        zs_unet_tblock *b = &p->blk[t];
        zs_vae_pair *n[2] = {&b->norm1, &b->norm2};
        zs_vae_pair *l[2][4] = {{&b->q1, &b->k1, &b->v1, &b->o1}, {&b->q2, &b->k2, &b->v2, &b->o2}};
        const char *ln[4] = {"to_q.", "to_k.", "to_v.", "to_out.0."};
        for (int k = 0; k < 2; k++) {
            ZS_TRY(zs_vae_reg_norm(r, n[k], zs_vae_name(q, "%stransformer_blocks.%d.norm%d.", prefix, t, k + 1), C));
            for (int j = 0; j < 4; j++) {
                zs_vae_name(q, "%stransformer_blocks.%d.attn%d.%s", prefix, t, k + 1, ln[j]);
                ZS_TRY(zs_vae_reg_linear(r, l[k][j], q, C, k && (j == 1 || j == 2) ? X : C, j == 3));
            }
        }
        ZS_TRY(zs_vae_reg_norm(r, &b->norm3, zs_vae_name(q, "%stransformer_blocks.%d.norm3.", prefix, t), C));
        zs_vae_name(q, "%stransformer_blocks.%d.ff.net.0.proj.", prefix, t);  // GEGLU projection
        ZS_TRY(zs_vae_reg_linear(r, &b->ff1, q, 8 * C, C, 1));
        ZS_TRY(zs_vae_reg_linear(r, &b->ff2, zs_vae_name(q, "%stransformer_blocks.%d.ff.net.2.", prefix, t), C, 4 * C, 1));
    }
    return reg_proj(r, &p->proj_out, zs_vae_name(q, "%sproj_out.", prefix), C, linear);
}

// ---- layout ------------------------------------------------------------------------------------
zs_status zs_unet_lay_xformer(zs_arena *ar, const zs_unet_xformer *p, zs_unet_xformer_acts *a, zs_dtype dt,
                              int64_t B, int64_t h, int64_t w, int64_t L, int G, int train) {
    int64_t C = p->C, N = h * w, H = p->heads;
    int64_t img[4] = {B, C, h, w}, tok[3] = {B, N, C}, ctx[3] = {B, L, C}, st[2] = {B, G}, rows = B * N;
    int64_t lse[3] = {B, H, N}, f8[3] = {B, N, 8 * C}, f4[3] = {B, N, 4 * C};
#define T(t, sh, nd, what) ZS_TRY(zs_arena_tensor(ar, &(t), dt, nd, sh, "unet.xformer." what))
#define S(t, sh, nd, what) ZS_TRY(zs_arena_tensor(ar, &(t), ZS_F32, nd, sh, "unet.xformer." what))
    T(a->xn, img, 4, "norm");
    S(a->mean, st, 2, "gn.stats");
    S(a->rstd, st, 2, "gn.stats");
    T(a->tok, tok, 3, "tokens");
    T(a->h0, tok, 3, "proj_in");
    T(a->po, tok, 3, "proj_out");
    const zs_tensor *hin = &a->h0;
    for (int t = 0; t < p->layers; t++) {
        zs_unet_tblock_acts *k = &a->blk[t];
        k->h = hin;
        T(k->n1, tok, 3, "n1"); S(k->m1, &rows, 1, "ln.stats"); S(k->r1, &rows, 1, "ln.stats");
        T(k->q1, tok, 3, "q1"); T(k->k1, tok, 3, "k1"); T(k->v1, tok, 3, "v1"); T(k->o1, tok, 3, "o1");
        S(k->l1, lse, 3, "lse1"); T(k->h1, tok, 3, "h1");
        T(k->n2, tok, 3, "n2"); S(k->m2, &rows, 1, "ln.stats"); S(k->r2, &rows, 1, "ln.stats");
        T(k->q2, tok, 3, "q2"); T(k->k2, ctx, 3, "k2"); T(k->v2, ctx, 3, "v2"); T(k->o2, tok, 3, "o2");
        S(k->l2, lse, 3, "lse2"); T(k->h2, tok, 3, "h2");
        T(k->n3, tok, 3, "n3"); S(k->m3, &rows, 1, "ln.stats"); S(k->r3, &rows, 1, "ln.stats");
        T(k->f1, f8, 3, "ff1"); T(k->g, f4, 3, "geglu"); T(k->h3, tok, 3, "h3");
        hin = &k->h3;
    }
    if (train) {
        T(a->dt[0], tok, 3, "d"); T(a->dt[1], tok, 3, "d"); T(a->dA, tok, 3, "d"); T(a->dB, tok, 3, "d");
        T(a->dO, tok, 3, "d"); T(a->dQ, tok, 3, "d"); T(a->dK, tok, 3, "d"); T(a->dV, tok, 3, "d");
        T(a->dN, tok, 3, "d"); T(a->dxn, img, 4, "d");
        T(a->dKc, ctx, 3, "d"); T(a->dVc, ctx, 3, "d"); T(a->dF, f8, 3, "d"); T(a->dG, f4, 3, "d");
    }
#undef T
#undef S
    return ZS_OK;
}

// ---- forward -----------------------------------------------------------------------------------
// The projection weight as a linear [C, C] (a 1x1 conv's [C, C, 1, 1] is the same memory).
static zs_status lin_w(zs_tensor *o, const zs_tensor *w) {
    int64_t sh[2] = {w->shape[0], w->shape[1]};
    return zs_view(o, w, 0, 2, sh);
}

static zs_attn_params aparams(const zs_unet_xformer *p) {
    zs_attn_params ap = {p->heads, 1.0f / sqrtf((float)(p->C / p->heads)), 0};
    return ap;
}

static zs_status block_fwd(const zs_unet_xformer *P, const zs_unet_tblock *p, zs_unet_tblock_acts *k,
                           const zs_tensor *ctx) {
    zs_attn_params ap = aparams(P);
    ZS_TRY(zs_layernorm_fwd(&k->n1, &k->m1, &k->r1, k->h, &p->norm1.w, &p->norm1.b, ZS_UNET_LN_EPS));
    ZS_TRY(zs_linear_fwd(&k->q1, &k->n1, &p->q1.w, NULL));
    ZS_TRY(zs_linear_fwd(&k->k1, &k->n1, &p->k1.w, NULL));
    ZS_TRY(zs_linear_fwd(&k->v1, &k->n1, &p->v1.w, NULL));
    ZS_TRY(zs_attention_fwd(&k->o1, &k->l1, &k->q1, &k->k1, &k->v1, &ap));
    ZS_TRY(zs_linear_fwd(&k->h1, &k->o1, &p->o1.w, &p->o1.b));
    ZS_TRY(zs_add_fwd(&k->h1, &k->h1, k->h));
    ZS_TRY(zs_layernorm_fwd(&k->n2, &k->m2, &k->r2, &k->h1, &p->norm2.w, &p->norm2.b, ZS_UNET_LN_EPS));
    ZS_TRY(zs_linear_fwd(&k->q2, &k->n2, &p->q2.w, NULL));
    ZS_TRY(zs_linear_fwd(&k->k2, ctx, &p->k2.w, NULL));
    ZS_TRY(zs_linear_fwd(&k->v2, ctx, &p->v2.w, NULL));
    ZS_TRY(zs_attention_fwd(&k->o2, &k->l2, &k->q2, &k->k2, &k->v2, &ap));
    ZS_TRY(zs_linear_fwd(&k->h2, &k->o2, &p->o2.w, &p->o2.b));
    ZS_TRY(zs_add_fwd(&k->h2, &k->h2, &k->h1));
    ZS_TRY(zs_layernorm_fwd(&k->n3, &k->m3, &k->r3, &k->h2, &p->norm3.w, &p->norm3.b, ZS_UNET_LN_EPS));
    ZS_TRY(zs_linear_fwd(&k->f1, &k->n3, &p->ff1.w, &p->ff1.b));
    ZS_TRY(zs_geglu_fwd(&k->g, &k->f1));
    ZS_TRY(zs_linear_fwd(&k->h3, &k->g, &p->ff2.w, &p->ff2.b));
    return zs_add_fwd(&k->h3, &k->h3, &k->h2);
}

zs_status zs_unet_xformer_fwd(const zs_unet_xformer *p, zs_unet_xformer_acts *a, int G) {
    zs_tensor wi, wo;
    ZS_TRY(lin_w(&wi, &p->proj_in.w));
    ZS_TRY(lin_w(&wo, &p->proj_out.w));
    ZS_TRY(zs_groupnorm_fwd(&a->xn, &a->mean, &a->rstd, a->x, &p->norm.w, &p->norm.b, G, ZS_UNET_XF_GN_EPS, 0));
    ZS_TRY(zs_patchify_fwd(&a->tok, &a->xn, 1));  // NCHW -> [B, hw, C]
    ZS_TRY(zs_linear_fwd(&a->h0, &a->tok, &wi, &p->proj_in.b));
    for (int t = 0; t < p->layers; t++) ZS_TRY(block_fwd(p, &p->blk[t], &a->blk[t], a->ctx));
    ZS_TRY(zs_linear_fwd(&a->po, &a->blk[p->layers - 1].h3, &wo, &p->proj_out.b));
    ZS_TRY(zs_memcpy(a->out->data, a->out->device, a->x->data, a->x->device, zs_nbytes(a->x)));
    return zs_patchify_bwd(a->out, &a->po, 1);  // out = x + tokens -> NCHW
}

// ---- backward ----------------------------------------------------------------------------------
#define GP(f) (g ? &g->f : NULL)

// Self (ctx NULL: keys / values from n) or cross attention: dh (+=) from the attention output
// gradient dy; dn (zeroed here) gets d n, then flows through the layer norm into dh.
static zs_status attn_bwd(const zs_unet_xformer *P, zs_unet_xformer_acts *a, const zs_vae_pair *q, const zs_vae_pair *kk,
                          const zs_vae_pair *v, const zs_vae_pair *o, zs_vae_pair *gq, zs_vae_pair *gk, zs_vae_pair *gv,
                          zs_vae_pair *go, const zs_tensor *n, const zs_tensor *qa, const zs_tensor *ka,
                          const zs_tensor *va, const zs_tensor *oa, const zs_tensor *lse, const zs_tensor *ctx,
                          zs_tensor *dctx, const zs_tensor *dy) {
    zs_attn_params ap = aparams(P);
    zs_tensor *dk = ctx ? &a->dKc : &a->dK, *dv = ctx ? &a->dVc : &a->dV;
    zs_tensor *z[5] = {&a->dO, &a->dQ, dk, dv, &a->dN};
    for (int i = 0; i < 5; i++) ZS_TRY(zs_zero(z[i]));
    ZS_TRY(zs_linear_bwd(&a->dO, go ? &go->w : NULL, go ? &go->b : NULL, dy, oa, &o->w));
    ZS_TRY(zs_attention_bwd(&a->dQ, dk, dv, &a->dO, qa, ka, va, oa, lse, &ap));
    ZS_TRY(zs_linear_bwd(&a->dN, gq ? &gq->w : NULL, NULL, &a->dQ, n, &q->w));
    const zs_tensor *src = ctx ? ctx : n;
    zs_tensor *dsrc = ctx ? dctx : &a->dN;
    ZS_TRY(zs_linear_bwd(dsrc, gk ? &gk->w : NULL, NULL, dk, src, &kk->w));
    return zs_linear_bwd(dsrc, gv ? &gv->w : NULL, NULL, dv, src, &v->w);
}

// dy: d h3; dx (zeroed) += d h.
static zs_status block_bwd(const zs_unet_xformer *P, const zs_unet_tblock *p, zs_unet_tblock *g,
                           zs_unet_xformer_acts *a, const zs_unet_tblock_acts *k, const zs_tensor *ctx,
                           const zs_tensor *dy, zs_tensor *dx, zs_tensor *dctx) {
    zs_tensor *dh2 = &a->dA, *dh1 = &a->dB;
    // feed-forward
    ZS_TRY(zs_zero(dh2));
    ZS_TRY(zs_add_bwd(dh2, NULL, dy));
    ZS_TRY(zs_zero(&a->dG));
    ZS_TRY(zs_zero(&a->dF));
    ZS_TRY(zs_zero(&a->dN));
    ZS_TRY(zs_linear_bwd(&a->dG, GP(ff2.w), GP(ff2.b), dy, &k->g, &p->ff2.w));
    ZS_TRY(zs_geglu_bwd(&a->dF, &a->dG, &k->f1));
    ZS_TRY(zs_linear_bwd(&a->dN, GP(ff1.w), GP(ff1.b), &a->dF, &k->n3, &p->ff1.w));
    ZS_TRY(zs_layernorm_bwd(dh2, GP(norm3.w), GP(norm3.b), &a->dN, &k->h2, &p->norm3.w, &k->m3, &k->r3));
    // cross attention
    ZS_TRY(zs_zero(dh1));
    ZS_TRY(zs_add_bwd(dh1, NULL, dh2));
    ZS_TRY(attn_bwd(P, a, &p->q2, &p->k2, &p->v2, &p->o2, GP(q2), GP(k2), GP(v2), GP(o2), &k->n2, &k->q2, &k->k2,
                    &k->v2, &k->o2, &k->l2, ctx, dctx, dh2));
    ZS_TRY(zs_layernorm_bwd(dh1, GP(norm2.w), GP(norm2.b), &a->dN, &k->h1, &p->norm2.w, &k->m2, &k->r2));
    // self attention
    ZS_TRY(zs_add_bwd(dx, NULL, dh1));
    ZS_TRY(attn_bwd(P, a, &p->q1, &p->k1, &p->v1, &p->o1, GP(q1), GP(k1), GP(v1), GP(o1), &k->n1, &k->q1, &k->k1,
                    &k->v1, &k->o1, &k->l1, NULL, NULL, dh1));
    return zs_layernorm_bwd(dx, GP(norm1.w), GP(norm1.b), &a->dN, k->h, &p->norm1.w, &k->m1, &k->r1);
}

zs_status zs_unet_xformer_bwd(const zs_unet_xformer *p, zs_unet_xformer *g, zs_unet_xformer_acts *a,
                              const zs_tensor *dy, zs_tensor *dx, zs_tensor *dctx, int G) {
    zs_tensor wi, wo, gwi, gwo;
    ZS_TRY(lin_w(&wi, &p->proj_in.w));
    ZS_TRY(lin_w(&wo, &p->proj_out.w));
    if (g) ZS_TRY(lin_w(&gwi, &g->proj_in.w));
    if (g) ZS_TRY(lin_w(&gwo, &g->proj_out.w));
    ZS_TRY(zs_add_bwd(dx, NULL, dy));                      // residual
    ZS_TRY(zs_patchify_fwd(&a->dA, dy, 1));                // d proj_out output, tokens
    int c = 0;
    ZS_TRY(zs_zero(&a->dt[c]));
    ZS_TRY(zs_linear_bwd(&a->dt[c], g ? &gwo : NULL, GP(proj_out.b), &a->dA, &a->blk[p->layers - 1].h3, &wo));
    for (int t = p->layers - 1; t >= 0; t--, c ^= 1) {
        ZS_TRY(zs_zero(&a->dt[c ^ 1]));
        ZS_TRY(block_bwd(p, &p->blk[t], GP(blk[t]), a, &a->blk[t], a->ctx, &a->dt[c], &a->dt[c ^ 1], dctx));
    }
    ZS_TRY(zs_zero(&a->dN));
    ZS_TRY(zs_linear_bwd(&a->dN, g ? &gwi : NULL, GP(proj_in.b), &a->dt[c], &a->tok, &wi));
    ZS_TRY(zs_zero(&a->dxn));
    ZS_TRY(zs_patchify_bwd(&a->dxn, &a->dN, 1));
    return zs_groupnorm_bwd(dx, GP(norm.w), GP(norm.b), &a->dxn, a->x, &p->norm.w, &p->norm.b, &a->mean, &a->rstd, G, 0);
}
