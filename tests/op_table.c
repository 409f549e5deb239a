// The op case table and the uniform case runner (see op_table.h).
#include "op_table.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "engine/rng.h"
#include "kernels/ops.h"

#define T ZT_CASE_TEST
#define B ZT_CASE_BENCH
// Odd, asymmetric sizes catch index mix-ups; a few realistic CLIP / SD sizes; "bench" cases
// are the big ones timed by bench/bench_ops.c (too slow for finite differences).
const zt_op_case zt_op_cases[] = {
    //  name                              kind             batch rows   cols  out    bias eps   flags  fam  p
    {"linear_37x53x29",                ZT_OP_LINEAR,     1, 37,    53,   29,    1, 0,    T, NULL, {0}},
    {"linear_nobias_5x7x3",            ZT_OP_LINEAR,     1, 5,     7,    3,     0, 0,    T, NULL, {0}},
    {"linear_3d_2x9x17x11",            ZT_OP_LINEAR,     2, 18,    17,   11,    1, 0,    T, NULL, {0}},
    {"linear_1x1x1",                   ZT_OP_LINEAR,     1, 1,     1,    1,     1, 0,    T, NULL, {0}},
    {"linear_77x768x3072",             ZT_OP_LINEAR,     1, 77,    768,  3072,  1, 0,    T, NULL, {0}},
    {"linear_4096x768x3072",           ZT_OP_LINEAR,     1, 4096,  768,  3072,  1, 0,    B, NULL, {0}},
    {"layernorm_13x77",                ZT_OP_LAYERNORM,  1, 13,    77,   0,     0, 1e-5f, T, NULL, {0}},
    {"layernorm_3d_2x5x33",            ZT_OP_LAYERNORM,  2, 10,    33,   0,     0, 1e-6f, T, NULL, {0}},
    {"layernorm_4x1",                  ZT_OP_LAYERNORM,  1, 4,     1,    0,     0, 1e-5f, T, NULL, {0}},
    {"layernorm_77x768",               ZT_OP_LAYERNORM,  1, 77,    768,  0,     0, 1e-5f, T, NULL, {0}},
    {"layernorm_4928x1024",            ZT_OP_LAYERNORM,  1, 4928,  1024, 0,     0, 1e-5f, B, NULL, {0}},
    {"softmax_7x50",                   ZT_OP_SOFTMAX,    1, 7,     50,   0,     0, 0,    T, NULL, {0}},
    {"softmax_5x77",                   ZT_OP_SOFTMAX,    1, 5,     77,   0,     0, 0,    T, NULL, {0}},
    {"softmax_3x257",                  ZT_OP_SOFTMAX,    1, 3,     257,  0,     0, 0,    T, NULL, {0}},
    {"softmax_3d_2x3x9",               ZT_OP_SOFTMAX,    2, 6,     9,    0,     0, 0,    T, NULL, {0}},
    {"softmax_924x77",                 ZT_OP_SOFTMAX,    12, 924,  77,   0,     0, 0,    T, NULL, {0}},
    {"softmax_14784x77",               ZT_OP_SOFTMAX,    1, 14784, 77,   0,     0, 0,    B, NULL, {0}},
    {"gelu_7x143",                     ZT_OP_GELU,       1, 7,     143,  0,     0, 0,    T, NULL, {0}},
    {"gelu_77x3072",                   ZT_OP_GELU,       1, 77,    3072, 0,     0, 0,    T, NULL, {0}},
    {"gelu_4096x1024",                 ZT_OP_GELU,       1, 4096,  1024, 0,     0, 0,    B, NULL, {0}},
    {"gelu_tanh_7x143",                ZT_OP_GELU_TANH,  1, 7,     143,  0,     0, 0,    T, NULL, {0}},
    {"gelu_tanh_3d_3x5x11",            ZT_OP_GELU_TANH,  3, 15,    11,   0,     0, 0,    T, NULL, {0}},
    {"gelu_tanh_4096x1024",            ZT_OP_GELU_TANH,  1, 4096,  1024, 0,     0, 0,    B, NULL, {0}},
    {"quickgelu_7x143",                ZT_OP_QUICKGELU,  1, 7,     143,  0,     0, 0,    T, NULL, {0}},
    {"quickgelu_77x3072",              ZT_OP_QUICKGELU,  1, 77,    3072, 0,     0, 0,    T, NULL, {0}},
    {"quickgelu_4096x1024",            ZT_OP_QUICKGELU,  1, 4096,  1024, 0,     0, 0,    B, NULL, {0}},
    {"add_13x37",                      ZT_OP_ADD,        1, 13,    37,   0,     0, 0,    T, NULL, {0}},
    {"add_3d_2x3x5",                   ZT_OP_ADD,        2, 6,     5,    0,     0, 0,    T, NULL, {0}},
    {"add_77x768",                     ZT_OP_ADD,        1, 77,    768,  0,     0, 0,    T, NULL, {0}},
    {"add_4096x1024",                  ZT_OP_ADD,        1, 4096,  1024, 0,     0, 0,    B, NULL, {0}},
    {"embedding_37_v101_c19",          ZT_OP_EMBEDDING,  1, 37,    19,   101,   0, 0,    T, NULL, {0}},
    {"embedding_3d_2x5_v7_c3",         ZT_OP_EMBEDDING,  2, 10,    3,    7,     0, 0,    T, NULL, {0}},
    {"embedding_77_v8192_c768",        ZT_OP_EMBEDDING,  1, 77,    768,  8192,  0, 0,    T, NULL, {0}},
    {"embedding_4096_v49408_c768",     ZT_OP_EMBEDDING,  1, 4096,  768,  49408, 0, 0,    B, NULL, {0}},
};
#undef T
#undef B
const int zt_op_ncases = (int)(sizeof zt_op_cases / sizeof zt_op_cases[0]);

static const char *k_kind[ZT_OP_KIND_COUNT] = {"linear", "layernorm", "softmax", "gelu", "gelu_tanh", "quickgelu",
                                              "add", "embedding", "family"};
const char *zt_op_kind_name(zt_op_kind k) { return (unsigned)k < ZT_OP_KIND_COUNT ? k_kind[k] : "?"; }
const char *zt_op_case_kind(const zt_op_case *c) { return c->fam ? c->fam->name : zt_op_kind_name(c->kind); }

int zt_op_count(void) {
    int n = zt_op_ncases;
    for (int f = 0; zt_op_families[f]; f++) n += zt_op_families[f]->ncases;
    return n;
}

const zt_op_case *zt_op_at(int i) {
    if (i < zt_op_ncases) return &zt_op_cases[i];
    i -= zt_op_ncases;
    for (int f = 0; zt_op_families[f]; f++) {
        if (i < zt_op_families[f]->ncases) return &zt_op_families[f]->cases[i];
        i -= zt_op_families[f]->ncases;
    }
    return NULL;
}

static const zs_act k_act[ZT_OP_KIND_COUNT] = {[ZT_OP_GELU] = ZS_ACT_GELU, [ZT_OP_GELU_TANH] = ZS_ACT_GELU_TANH,
                                               [ZT_OP_QUICKGELU] = ZS_ACT_QUICKGELU};
static int is_act(zt_op_kind k) { return k == ZT_OP_GELU || k == ZT_OP_GELU_TANH || k == ZT_OP_QUICKGELU; }

// ---- buffers ----------------------------------------------------------------------------
static const uint8_t k_sentinel[4] = {0xAD, 0xDE, 0xC0, 0x7F};  // 0x7FC0DEAD: a NaN as F32

static void sentinel_fill(uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = k_sentinel[i & 3];
}

// Allocates t (ndim dims of lead[] then last, last < 0: none) with optional guard padding.
static zs_status alloc_t(zt_op_inst *o, zs_tensor *t, zs_dtype dt, int nlead, const int64_t *lead, int64_t last,
                         const char *role, int guard) {
    int64_t shape[ZS_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < nlead; i++) shape[nd++] = lead[i];
    if (last >= 0) shape[nd++] = last;
    *t = zs_tensor_make(NULL, dt, o->dev, nd, shape);
    t->name = role;
    if (o->nbuf >= ZT_MAXBUF) return ZS_ERR(ZS_EINVAL, "op_table: too many buffers");
    size_t bytes = zs_nbytes(t), pad = guard ? ZT_PAD : 0, total = bytes + 2 * pad;
    char *base;
    ZS_TRY(zs_malloc((void **)&base, total, o->dev, role));
    o->buf[o->nbuf].base = base;
    o->buf[o->nbuf].bytes = bytes;
    o->buf[o->nbuf].guard = guard;
    o->nbuf++;
    t->data = base + pad;
    if (guard) {  // whole buffer sentinel: pads stay so, outputs must overwrite theirs
        uint8_t *h = malloc(total);
        if (!h) return ZS_ERR(ZS_ENOMEM, "op_table: sentinel staging");
        sentinel_fill(h, total);
        zs_status s = zs_memcpy(base, o->dev, h, ZS_CPU, total);
        free(h);
        ZS_TRY(s);
    }
    return ZS_OK;
}

zs_status zt_alloc_tensor(zt_op_inst *o, zs_tensor *t, zs_dtype dt, int ndim, const int64_t *shape, const char *role,
                          int guard) {
    return alloc_t(o, t, dt, ndim, shape, -1, role, guard);
}

int zt_op_guards_ok(const zt_op_inst *o, char *why, size_t n) {
    uint8_t pad[2][ZT_PAD], want[ZT_PAD];
    sentinel_fill(want, ZT_PAD);
    for (int i = 0; i < o->nbuf; i++) {
        if (!o->buf[i].guard) continue;
        if (zs_memcpy(pad[0], ZS_CPU, o->buf[i].base, o->dev, ZT_PAD) ||
            zs_memcpy(pad[1], ZS_CPU, o->buf[i].base + ZT_PAD + o->buf[i].bytes, o->dev, ZT_PAD)) {
            snprintf(why, n, "reading guards of buffer %d: %s", i, zs_errmsg());
            return 0;
        }
        // Sentinels continue across the data: the pattern phase after it is (bytes & 3).
        uint8_t want_after[ZT_PAD];
        for (int k = 0; k < ZT_PAD; k++) want_after[k] = k_sentinel[(ZT_PAD + o->buf[i].bytes + k) & 3];
        for (int side = 0; side < 2; side++)
            if (memcmp(pad[side], side ? want_after : want, ZT_PAD)) {
                snprintf(why, n, "%s of buffer %d (%zu bytes) overwritten", side ? "padding after" : "padding before", i,
                         o->buf[i].bytes);
                return 0;
            }
    }
    return 1;
}

void zt_op_free(zt_op_inst *o) {
    for (int i = 0; i < o->nbuf; i++) zs_free(o->buf[i].base, o->dev);
    o->nbuf = 0;
}

zs_status zt_op_alloc(zt_op_inst *o, const zt_op_case *c, zs_device dev, zs_dtype dt, int guard) {
    memset(o, 0, sizeof *o);
    o->c = c;
    o->dev = dev;
    o->dt = dt;
    int64_t lead[2] = {c->rows}, one[1] = {0};
    int nl = 1;
    if (c->batch > 1) {
        lead[0] = c->batch;
        lead[1] = c->rows / c->batch;
        nl = 2;
    }
    zs_status s = ZS_OK;
#define A(t, d, nlead, ld, last, role) \
    if (!s) s = alloc_t(o, t, d, nlead, ld, last, role, guard)
    if (c->fam) s = c->fam->alloc(o, guard);
    else switch (c->kind) {
    case ZT_OP_LINEAR:
        o->nin = c->bias ? 3 : 2;
        o->in_role[0] = "x", o->in_role[1] = "w", o->in_role[2] = "b";
        o->din_role[0] = "dx", o->din_role[1] = "dw", o->din_role[2] = "db";
        A(&o->in[0], dt, nl, lead, c->cols, "x");
        one[0] = c->out;
        A(&o->in[1], dt, 1, one, c->cols, "w");
        if (c->bias) A(&o->in[2], dt, 1, one, -1, "b");
        o->nout = 1;
        A(&o->out[0], dt, nl, lead, c->out, "y");
        break;
    case ZT_OP_LAYERNORM:
        o->nin = 3;
        o->in_role[0] = "x", o->in_role[1] = "w", o->in_role[2] = "b";
        o->din_role[0] = "dx", o->din_role[1] = "dw", o->din_role[2] = "db";
        A(&o->in[0], dt, nl, lead, c->cols, "x");
        one[0] = c->cols;
        A(&o->in[1], dt, 1, one, -1, "w");
        A(&o->in[2], dt, 1, one, -1, "b");
        o->nout = 3;
        o->out_role[1] = "mean", o->out_role[2] = "rstd";
        A(&o->out[0], dt, nl, lead, c->cols, "y");
        one[0] = c->rows;
        A(&o->out[1], ZS_F32, 1, one, -1, "mean");
        A(&o->out[2], ZS_F32, 1, one, -1, "rstd");
        break;
    case ZT_OP_ADD:
        o->nin = 2;
        o->in_role[0] = "a", o->in_role[1] = "b";
        o->din_role[0] = "da", o->din_role[1] = "db";
        A(&o->in[0], dt, nl, lead, c->cols, "a");
        A(&o->in[1], dt, nl, lead, c->cols, "b");
        o->nout = 1;
        A(&o->out[0], dt, nl, lead, c->cols, "y");
        break;
    case ZT_OP_EMBEDDING:
        o->nin = 1;
        o->in_role[0] = "table", o->din_role[0] = "dtable";
        one[0] = c->out;
        A(&o->in[0], dt, 1, one, c->cols, "table");
        A(&o->ids, ZS_I32, nl, lead, -1, "ids");
        o->nout = 1;
        A(&o->out[0], dt, nl, lead, c->cols, "y");
        break;
    default:  // softmax and activations: x -> y
        o->nin = 1;
        o->in_role[0] = "x", o->din_role[0] = "dx";
        A(&o->in[0], dt, nl, lead, c->cols, "x");
        o->nout = 1;
        A(&o->out[0], dt, nl, lead, c->cols, "y");
        break;
    }
    o->out_role[0] = "y";
    A(&o->dy, dt, o->out[0].ndim - 1, o->out[0].shape, o->out[0].shape[o->out[0].ndim - 1], "dy");
    for (int i = 0; i < o->nin; i++)
        A(&o->din[i], dt, o->in[i].ndim, o->in[i].shape, -1, o->din_role[i]);
#undef A
    if (s) zt_op_free(o);
    return s;
}

// ---- data -------------------------------------------------------------------------------
zs_status zt_to_host_f32(const zs_tensor *t, float *dst) {
    zs_tensor h = zs_tensor_make(dst, ZS_F32, ZS_CPU, t->ndim, t->shape);
    return zs_tensor_copy(&h, t);
}

zs_status zt_from_host_f32(zs_tensor *t, const float *src) {
    zs_tensor h = zs_tensor_make((void *)src, ZS_F32, ZS_CPU, t->ndim, t->shape);
    return zs_tensor_copy(t, &h);
}

zs_status zt_op_zero_grads(zt_op_inst *o) {
    for (int i = 0; i < o->nin; i++) ZS_TRY(zs_memset0(o->din[i].data, o->dev, zs_nbytes(&o->din[i])));
    return ZS_OK;
}

// Uniform [lo, hi) from stream (seed, k).
static zs_status fill_t(zs_tensor *t, uint64_t seed, uint64_t k, float lo, float hi) {
    int64_t n = zs_numel(t);
    float *h = malloc((size_t)(n ? n : 1) * sizeof(float));
    if (!h) return ZS_ERR(ZS_ENOMEM, "op_table: fill staging");
    zs_rng_uniform_host(h, n, seed ^ (k * 0x9E3779B97F4A7C15ull), 0);
    for (int64_t i = 0; i < n; i++) h[i] = lo + (hi - lo) * h[i];
    zs_status s = zt_from_host_f32(t, h);
    free(h);
    return s;
}

zs_status zt_fill_tensor(zs_tensor *t, uint64_t seed, uint64_t k, float lo, float hi) {
    return fill_t(t, seed, k, lo, hi);
}

zs_status zt_op_fill(zt_op_inst *o, uint64_t seed) {
    const zt_op_case *c = o->c;
    if (c->fam) ZS_TRY(c->fam->fill(o, seed));
    else switch (c->kind) {
    case ZT_OP_LINEAR:
        ZS_TRY(fill_t(&o->in[0], seed, 1, -1, 1));
        ZS_TRY(fill_t(&o->in[1], seed, 2, -1, 1));
        if (c->bias) ZS_TRY(fill_t(&o->in[2], seed, 3, -1, 1));
        break;
    case ZT_OP_LAYERNORM:  // nonzero row means; weight around 1, bias around 0, both random
        ZS_TRY(fill_t(&o->in[0], seed, 1, -1.5f, 2.5f));
        ZS_TRY(fill_t(&o->in[1], seed, 2, 0.5f, 1.5f));
        ZS_TRY(fill_t(&o->in[2], seed, 3, -1, 1));
        break;
    case ZT_OP_SOFTMAX: ZS_TRY(fill_t(&o->in[0], seed, 1, -4, 4)); break;
    case ZT_OP_ADD:
        ZS_TRY(fill_t(&o->in[0], seed, 1, -1, 1));
        ZS_TRY(fill_t(&o->in[1], seed, 2, -1, 1));
        break;
    case ZT_OP_EMBEDDING: {
        ZS_TRY(fill_t(&o->in[0], seed, 1, -1, 1));
        int64_t n = zs_numel(&o->ids);
        float *u = malloc((size_t)n * sizeof(float));
        int32_t *id = malloc((size_t)n * sizeof(int32_t));
        if (!u || !id) { free(u); free(id); return ZS_ERR(ZS_ENOMEM, "op_table: ids staging"); }
        zs_rng_uniform_host(u, n, seed ^ 0xE3B1D, 0);
        for (int64_t i = 0; i < n; i++) id[i] = (int32_t)(u[i] * (float)c->out) % (int32_t)c->out;
        // Make sure of both table ends and a repeated id (the scatter-add must sum them).
        if (n > 0) id[0] = (int32_t)c->out - 1;
        if (n > 1) id[1] = 0;
        if (n > 3) id[n - 1] = id[2];
        zs_status s = zs_memcpy(o->ids.data, o->dev, id, ZS_CPU, (size_t)n * sizeof(int32_t));
        free(u);
        free(id);
        ZS_TRY(s);
        break;
    }
    default: ZS_TRY(fill_t(&o->in[0], seed, 1, -5, 5)); break;  // activations
    }
    ZS_TRY(fill_t(&o->dy, seed, 9, -1, 1));
    return zt_op_zero_grads(o);
}

// ---- running ----------------------------------------------------------------------------
zs_status zt_op_forward(zt_op_inst *o) {
    if (o->c->fam) return o->c->fam->forward(o);
    switch (o->c->kind) {
    case ZT_OP_LINEAR: return zs_linear_fwd(&o->out[0], &o->in[0], &o->in[1], o->c->bias ? &o->in[2] : NULL);
    case ZT_OP_LAYERNORM:
        return zs_layernorm_fwd(&o->out[0], &o->out[1], &o->out[2], &o->in[0], &o->in[1], &o->in[2], o->c->eps);
    case ZT_OP_SOFTMAX: return zs_softmax_fwd(&o->out[0], &o->in[0]);
    case ZT_OP_ADD: return zs_add_fwd(&o->out[0], &o->in[0], &o->in[1]);
    case ZT_OP_EMBEDDING: return zs_embedding_fwd(&o->out[0], &o->ids, &o->in[0]);
    default:
        if (is_act(o->c->kind)) return zs_act_fwd(k_act[o->c->kind], &o->out[0], &o->in[0]);
        return ZS_ERR(ZS_EINVAL, "op_table: unknown op kind %d", (int)o->c->kind);
    }
}

zs_status zt_op_backward(zt_op_inst *o) {
    if (o->c->fam) return o->c->fam->backward(o);
    switch (o->c->kind) {
    case ZT_OP_LINEAR:
        return zs_linear_bwd(&o->din[0], &o->din[1], o->c->bias ? &o->din[2] : NULL, &o->dy, &o->in[0], &o->in[1]);
    case ZT_OP_LAYERNORM:
        return zs_layernorm_bwd(&o->din[0], &o->din[1], &o->din[2], &o->dy, &o->in[0], &o->in[1], &o->out[1],
                                &o->out[2]);
    case ZT_OP_SOFTMAX: return zs_softmax_bwd(&o->din[0], &o->dy, &o->out[0]);
    case ZT_OP_ADD: return zs_add_bwd(&o->din[0], &o->din[1], &o->dy);
    case ZT_OP_EMBEDDING: return zs_embedding_bwd(&o->din[0], &o->dy, &o->ids);
    default:
        if (is_act(o->c->kind)) return zs_act_bwd(k_act[o->c->kind], &o->din[0], &o->dy, &o->in[0]);
        return ZS_ERR(ZS_EINVAL, "op_table: unknown op kind %d", (int)o->c->kind);
    }
}

// ---- bench helpers ------------------------------------------------------------------------
void zt_op_cost(const zt_op_case *c, int bwd, size_t e, double *flops, double *bytes) {
    double N = (double)c->rows, C = (double)c->cols, O = (double)c->out;
    *flops = 0;
    if (c->fam) {
        c->fam->cost(c, bwd, e, flops, bytes);
        return;
    }
    switch (c->kind) {
    case ZT_OP_LINEAR:  // fwd: read x, w, write y; bwd: read dy, x, w, read+write dx, dw
        *flops = (bwd ? 4.0 : 2.0) * N * C * O;
        *bytes = bwd ? e * (N * O + 2 * (N * C + O * C) + N * C + O * C) : e * (N * C + O * C + N * O);
        break;
    case ZT_OP_LAYERNORM: *bytes = bwd ? e * 4 * N * C : e * 2 * N * C; break;  // bwd: dy, x, dx r+w
    case ZT_OP_SOFTMAX: *bytes = bwd ? e * 4 * N * C : e * 2 * N * C; break;    // bwd: dy, y, dx r+w
    case ZT_OP_ADD: *bytes = e * 3 * N * C * (bwd ? 5.0 / 3 : 1); break;       // bwd: dy, da r+w, db r+w
    case ZT_OP_EMBEDDING: *bytes = bwd ? e * 3 * N * C : e * 2 * N * C; break;  // rows touched only
    default: *bytes = bwd ? e * 4 * N * C : e * 2 * N * C; break;             // act bwd: dy, x, dx r+w
    }
}

const char *zt_op_shape_str(const zt_op_case *c, char *buf, size_t n) {
    long long N = c->rows, C = c->cols, O = c->out;
    if (c->fam) return c->fam->shape_str(c, buf, n);
    switch (c->kind) {
    case ZT_OP_LINEAR: snprintf(buf, n, "x[%lld, %lld] w[%lld, %lld]%s", N, C, O, C, c->bias ? " +b" : ""); break;
    case ZT_OP_EMBEDDING: snprintf(buf, n, "ids[%lld] table[%lld, %lld]", N, O, C); break;
    default: snprintf(buf, n, "x[%lld, %lld]", N, C); break;
    }
    return buf;
}
