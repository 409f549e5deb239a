#include "models/transformer.h"
#include <math.h>
#include "engine/backend.h"
#include "kernels/attention.h"

zs_status zs_rows_view(zs_tensor *out, const zs_tensor *t, int64_t r, int64_t rows) {
    int64_t sh[ZS_MAX_DIMS], inner = 1;
    sh[0] = rows;
    for (int i = 1; i < t->ndim; i++) sh[i] = t->shape[i], inner *= t->shape[i];
    return zs_view(out, t, r * inner, t->ndim, sh);
}

zs_status zs_zero(zs_tensor *t) { return zs_memset0(t->data, t->device, zs_nbytes(t)); }

zs_tensor *zs_tf_block_tensor(zs_tf_block *p, int i) {
    zs_tensor *all[ZS_TF_BLOCK_NTENSORS] = {&p->ln1_w, &p->ln1_b, &p->in_w,  &p->in_b, &p->out_w,  &p->out_b,
                                             &p->ln2_w, &p->ln2_b, &p->fc_w, &p->fc_b, &p->proj_w, &p->proj_b};
    return i >= 0 && i < ZS_TF_BLOCK_NTENSORS ? all[i] : NULL;
}

zs_status zs_tf_block_alloc(zs_arena *a, zs_tf_block *p, const zs_tf_cfg *c, zs_dtype dt) {
    int64_t W = c->width, M = c->mlp;
    int64_t w1[1] = {W}, w3[1] = {3 * W}, m1[1] = {M}, in[2] = {3 * W, W}, ww[2] = {W, W}, mw[2] = {M, W}, wm[2] = {W, M};
    ZS_TRY(zs_arena_tensor(a, &p->ln1_w, dt, 1, w1, "ln1.weight"));
    ZS_TRY(zs_arena_tensor(a, &p->ln1_b, dt, 1, w1, "ln1.bias"));
    ZS_TRY(zs_arena_tensor(a, &p->in_w, dt, 2, in, "in_proj.weight"));
    ZS_TRY(zs_arena_tensor(a, &p->in_b, dt, 1, w3, "in_proj.bias"));
    ZS_TRY(zs_arena_tensor(a, &p->out_w, dt, 2, ww, "out_proj.weight"));
    ZS_TRY(zs_arena_tensor(a, &p->out_b, dt, 1, w1, "out_proj.bias"));
    ZS_TRY(zs_arena_tensor(a, &p->ln2_w, dt, 1, w1, "ln2.weight"));
    ZS_TRY(zs_arena_tensor(a, &p->ln2_b, dt, 1, w1, "ln2.bias"));
    ZS_TRY(zs_arena_tensor(a, &p->fc_w, dt, 2, mw, "fc.weight"));
    ZS_TRY(zs_arena_tensor(a, &p->fc_b, dt, 1, m1, "fc.bias"));
    ZS_TRY(zs_arena_tensor(a, &p->proj_w, dt, 2, wm, "proj.weight"));
    ZS_TRY(zs_arena_tensor(a, &p->proj_b, dt, 1, w1, "proj.bias"));
    return ZS_OK;
}

zs_status zs_tf_acts_alloc(zs_arena *a, zs_tf_acts *t, const zs_tf_cfg *c, int64_t B, int64_t L, zs_dtype dt) {
    int64_t blw[3] = {B, L, c->width}, blm[3] = {B, L, c->mlp}, n[1] = {B * L}, lse[3] = {B, c->heads, L};
    ZS_TRY(zs_arena_tensor(a, &t->ln1, dt, 3, blw, "ln1"));
    ZS_TRY(zs_arena_tensor(a, &t->ln2, dt, 3, blw, "ln2"));
    ZS_TRY(zs_arena_tensor(a, &t->ln1_mean, ZS_F32, 1, n, "ln1.mean"));
    ZS_TRY(zs_arena_tensor(a, &t->ln1_rstd, ZS_F32, 1, n, "ln1.rstd"));
    ZS_TRY(zs_arena_tensor(a, &t->ln2_mean, ZS_F32, 1, n, "ln2.mean"));
    ZS_TRY(zs_arena_tensor(a, &t->ln2_rstd, ZS_F32, 1, n, "ln2.rstd"));
    ZS_TRY(zs_arena_tensor(a, &t->q, dt, 3, blw, "q"));
    ZS_TRY(zs_arena_tensor(a, &t->k, dt, 3, blw, "k"));
    ZS_TRY(zs_arena_tensor(a, &t->v, dt, 3, blw, "v"));
    ZS_TRY(zs_arena_tensor(a, &t->attn, dt, 3, blw, "attn"));
    ZS_TRY(zs_arena_tensor(a, &t->lse, ZS_F32, 3, lse, "attn.lse"));
    ZS_TRY(zs_arena_tensor(a, &t->mid, dt, 3, blw, "mid"));
    ZS_TRY(zs_arena_tensor(a, &t->fc, dt, 3, blm, "fc"));
    ZS_TRY(zs_arena_tensor(a, &t->act, dt, 3, blm, "act"));
    return ZS_OK;
}

zs_status zs_tf_scratch_alloc(zs_arena *a, zs_tf_scratch *s, const zs_tf_cfg *c, int64_t B, int64_t L, zs_dtype dt) {
    int64_t blw[3] = {B, L, c->width}, blm[3] = {B, L, c->mlp};
    ZS_TRY(zs_arena_tensor(a, &s->dmid, dt, 3, blw, "d.mid"));
    ZS_TRY(zs_arena_tensor(a, &s->dln, dt, 3, blw, "d.ln"));
    ZS_TRY(zs_arena_tensor(a, &s->dq, dt, 3, blw, "d.q"));
    ZS_TRY(zs_arena_tensor(a, &s->dk, dt, 3, blw, "d.k"));
    ZS_TRY(zs_arena_tensor(a, &s->dv, dt, 3, blw, "d.v"));
    ZS_TRY(zs_arena_tensor(a, &s->dattn, dt, 3, blw, "d.attn"));
    ZS_TRY(zs_arena_tensor(a, &s->dfc, dt, 3, blm, "d.fc"));
    ZS_TRY(zs_arena_tensor(a, &s->dact, dt, 3, blm, "d.act"));
    return ZS_OK;
}

// Third `i` (0 q, 1 k, 2 v) of the stacked in_proj weight / bias.
static zs_status qkv_w(zs_tensor *o, const zs_tensor *w, int i) { return zs_rows_view(o, w, i * (w->shape[0] / 3), w->shape[0] / 3); }

static zs_attn_params attn_params(const zs_tf_cfg *c) {
    zs_attn_params ap = {c->heads, 1.0f / sqrtf((float)(c->width / c->heads)), c->causal};
    return ap;
}

zs_status zs_tf_block_fwd(const zs_tf_cfg *c, const zs_tf_block *p, zs_tf_acts *a, const zs_tensor *x, zs_tensor *y) {
    float eps = c->eps;
    zs_attn_params ap = attn_params(c);
    // attention branch
    ZS_TRY(zs_layernorm_fwd(&a->ln1, &a->ln1_mean, &a->ln1_rstd, x, &p->ln1_w, &p->ln1_b, eps));
    zs_tensor *qkv[3] = {&a->q, &a->k, &a->v};
    for (int i = 0; i < 3; i++) {
        zs_tensor w, b;
        ZS_TRY(qkv_w(&w, &p->in_w, i));
        ZS_TRY(qkv_w(&b, &p->in_b, i));
        ZS_TRY(zs_linear_fwd(qkv[i], &a->ln1, &w, &b));
    }
    ZS_TRY(zs_attention_fwd(&a->attn, &a->lse, &a->q, &a->k, &a->v, &ap));
    ZS_TRY(zs_linear_fwd(&a->mid, &a->attn, &p->out_w, &p->out_b));
    ZS_TRY(zs_add_fwd(&a->mid, &a->mid, x));
    // MLP branch
    ZS_TRY(zs_layernorm_fwd(&a->ln2, &a->ln2_mean, &a->ln2_rstd, &a->mid, &p->ln2_w, &p->ln2_b, eps));
    ZS_TRY(zs_linear_fwd(&a->fc, &a->ln2, &p->fc_w, &p->fc_b));
    ZS_TRY(zs_act_fwd(c->act, &a->act, &a->fc));
    ZS_TRY(zs_linear_fwd(y, &a->act, &p->proj_w, &p->proj_b));
    return zs_add_fwd(y, y, &a->mid);
}

zs_status zs_tf_block_bwd(const zs_tf_cfg *c, const zs_tf_block *p, zs_tf_block *g, const zs_tf_acts *a,
                          zs_tf_scratch *s, const zs_tensor *x, const zs_tensor *dy, zs_tensor *dx) {
    zs_attn_params ap = attn_params(c);
    // MLP branch: y = mid + proj(act(fc(LN2(mid))))
    ZS_TRY(zs_zero(&s->dact));
    ZS_TRY(zs_zero(&s->dfc));
    ZS_TRY(zs_zero(&s->dln));
    ZS_TRY(zs_zero(&s->dmid));
    ZS_TRY(zs_linear_bwd(&s->dact, &g->proj_w, &g->proj_b, dy, &a->act, &p->proj_w));
    ZS_TRY(zs_act_bwd(c->act, &s->dfc, &s->dact, &a->fc));
    ZS_TRY(zs_linear_bwd(&s->dln, &g->fc_w, &g->fc_b, &s->dfc, &a->ln2, &p->fc_w));
    ZS_TRY(zs_add_bwd(&s->dmid, NULL, dy));
    ZS_TRY(zs_layernorm_bwd(&s->dmid, &g->ln2_w, &g->ln2_b, &s->dln, &a->mid, &p->ln2_w, &a->ln2_mean, &a->ln2_rstd));
    // attention branch: mid = x + out_proj(attention(q, k, v of LN1(x)))
    ZS_TRY(zs_zero(&s->dattn));
    ZS_TRY(zs_zero(&s->dq));
    ZS_TRY(zs_zero(&s->dk));
    ZS_TRY(zs_zero(&s->dv));
    ZS_TRY(zs_zero(&s->dln));
    ZS_TRY(zs_linear_bwd(&s->dattn, &g->out_w, &g->out_b, &s->dmid, &a->attn, &p->out_w));
    ZS_TRY(zs_attention_bwd(&s->dq, &s->dk, &s->dv, &s->dattn, &a->q, &a->k, &a->v, &a->attn, &a->lse, &ap));
    zs_tensor *dqkv[3] = {&s->dq, &s->dk, &s->dv};
    for (int i = 0; i < 3; i++) {
        zs_tensor w, gw, gb;
        ZS_TRY(qkv_w(&w, &p->in_w, i));
        ZS_TRY(qkv_w(&gw, &g->in_w, i));
        ZS_TRY(qkv_w(&gb, &g->in_b, i));
        ZS_TRY(zs_linear_bwd(&s->dln, &gw, &gb, dqkv[i], &a->ln1, &w));
    }
    ZS_TRY(zs_add_bwd(dx, NULL, &s->dmid));
    return zs_layernorm_bwd(dx, &g->ln1_w, &g->ln1_b, &s->dln, x, &p->ln1_w, &a->ln1_mean, &a->ln1_rstd);
}
