// The attention op family (kernels/attention.h) for the op case table: cases, hooks.
// p[] = {B, H, Lq, Lk, Dk, Dv, causal}; in[] = q, k, v (grads dq, dk, dv); out[0] = out,
// out[1] = lse (F32 [B, H, Lq]); scale = 1 / sqrt(Dk).
// The first ZT_ATTN_NFD cases are the small ones the finite-difference test runs
// (tests/test_ops_attention.c); the other ZT_CASE_TEST ones are realistic sizes for the
// CUDA-vs-CPU test; ZT_CASE_BENCH ones are timed by bench/bench_ops.c
// (ZT_CASE_BENCH_GPU_ONLY: too slow for the CPU twin, timed on CUDA only).
#include <math.h>
#include <stdio.h>
#include "kernels/attention.h"
#include "op_fam_attention.h"
#include "op_table.h"

#define T ZT_CASE_TEST
#define BN ZT_CASE_BENCH
#define G ZT_CASE_BENCH_GPU_ONLY
#define F ZT_OP_FAMILY, 0, 0, 0, 0, 0, 0
#define FAM &zt_fam_attention
static const zt_op_case k_cases[] = {
    // name                               kind flags  fam      B  H  Lq    Lk    Dk   Dv  causal
    // -- finite differences (small, odd sizes; every query / key / head index distinct) ----
    {"attn_2x3_q5_k7_d8",                 F, T,      FAM, {2, 3, 5,    7,    8,   8,   0}},
    {"attn_causal_1x2_l9_d8",             F, T,      FAM, {1, 2, 9,    9,    8,   8,   1}},
    {"attn_q1_k6_d4",                     F, T,      FAM, {2, 2, 1,    6,    4,   4,   0}},
    {"attn_causal_q1_k6_d8",              F, T,      FAM, {1, 2, 1,    6,    8,   8,   1}},  // decode step
    {"attn_causal_q4_k9_d8",              F, T,      FAM, {2, 2, 4,    9,    8,   8,   1}},  // key offset 5
    {"attn_q11_k4_d8",                    F, T,      FAM, {1, 2, 11,   4,    8,   8,   0}},  // Lq > Lk
    {"attn_dk6_dv10_q6_k5",               F, T,      FAM, {1, 2, 6,    5,    6,   10,  0}},  // Dk != Dv
    {"attn_1x1_l1_d3_causal",             F, T,      FAM, {1, 1, 1,    1,    3,   3,   1}},
    // -- CUDA vs CPU at real sizes: CLIP text / image towers, SD UNet, ragged tiles --------
    {"attn_clip_text_77_causal_h8_d64",   F, T,      FAM, {2, 8, 77,   77,   64,  64,  1}},
    {"attn_vit_b32_50_h12_d64",           F, T,      FAM, {2, 12, 50,  50,   64,  64,  0}},
    {"attn_vit_l14_257_h16_d64",          F, T,      FAM, {1, 16, 257, 257,  64,  64,  0}},
    {"attn_sd15_self_256_h8_d40",         F, T,      FAM, {1, 8, 256,  256,  40,  40,  0}},
    {"attn_cross_q1024_k77_h8_d64",       F, T,      FAM, {1, 8, 1024, 77,   64,  64,  0}},
    {"attn_cross_q4096_k77_h2_d40",       F, T,      FAM, {1, 2, 4096, 77,   40,  40,  0}},
    {"attn_sd15_cross_q1024_k77_d80",     F, T,      FAM, {1, 4, 1024, 77,   80,  80,  0}},
    {"attn_ragged_97x131_d128",           F, T,      FAM, {2, 2, 97,   131,  128, 128, 0}},
    {"attn_ragged_causal_131_d160",       F, T,      FAM, {1, 2, 131,  131,  160, 160, 1}},
    {"attn_ragged_causal_97x131_d72",     F, T,      FAM, {2, 3, 97,   131,  72,  72,  1}},
    {"attn_causal_q33_k200_d64",          F, T,      FAM, {1, 4, 33,   200,  64,  64,  1}},
    {"attn_dk64_dv96_q70_k45",            F, T,      FAM, {1, 3, 70,   45,   64,  96,  0}},
    {"attn_causal_1x1_l1_d32",            F, T,      FAM, {3, 1, 1,    1,    32,  32,  1}},
    // -- head dims past the fused kernels (CUDA: materialised scores, attention_wide.cu) ----
    {"attn_wide_q37_k29_d200",            F, T,      FAM, {2, 2, 37,   29,   200, 200, 0}},
    {"attn_wide_causal_q40_k33_dk176_dv232", F, T,   FAM, {1, 2, 40,   33,   176, 232, 1}},
    {"attn_vae_mid_q300_d512",            F, T,      FAM, {1, 1, 300,  300,  512, 512, 0}},
    // -- bench: SD 1.5 (heads 8, head dims 40 / 80 / 160), SD 2.x (head dim 64), CLIP ------
    {"attn_sd15_cross_4096x77_d40",       F, BN,     FAM, {2, 8, 4096, 77,   40,  40,  0}},
    {"attn_sd15_self_256_d160",           F, BN,     FAM, {2, 8, 256,  256,  160, 160, 0}},
    {"attn_clip_l_text_77_causal_b16",    F, BN,     FAM, {16, 12, 77, 77,   64,  64,  1}},
    {"attn_vit_b32_50_b16",               F, BN,     FAM, {16, 12, 50, 50,   64,  64,  0}},
    {"attn_sd15_self_4096_d40",           F, BN | G, FAM, {2, 8, 4096, 4096, 40,  40,  0}},
    {"attn_sd15_self_1024_d80",           F, BN | G, FAM, {2, 8, 1024, 1024, 80,  80,  0}},
    {"attn_sd2_self_9216_d64",            F, BN | G, FAM, {2, 5, 9216, 9216, 64,  64,  0}},
    {"attn_vit_l14_257_b16",              F, BN | G, FAM, {16, 16, 257, 257, 64,  64,  0}},
    {"attn_vae_mid_4900_d512",            F, BN | G, FAM, {1, 1, 4900, 4900, 512, 512, 0}},  // SD 2.x VAE at 560
    {"attn_vae_mid_9216_d512",            F, BN | G, FAM, {1, 1, 9216, 9216, 512, 512, 0}},  // at 768
};
#undef T
#undef BN
#undef G
#undef F
#undef FAM

enum { P_B, P_H, P_LQ, P_LK, P_DK, P_DV, P_CAUSAL };

void zt_attn_params_of(const zt_op_case *c, zs_attn_params *p) {
    p->heads = (int)c->p[P_H];
    p->scale = 1.0f / sqrtf((float)c->p[P_DK]);
    p->causal = (int)c->p[P_CAUSAL];
}

static zs_status fam_alloc(zt_op_inst *o, int guard) {
    const int64_t *p = o->c->p, B = p[P_B], H = p[P_H], Lq = p[P_LQ], Lk = p[P_LK], Dk = p[P_DK], Dv = p[P_DV];
    const int64_t sq[3] = {B, Lq, H * Dk}, sk[3] = {B, Lk, H * Dk}, sv[3] = {B, Lk, H * Dv}, so[3] = {B, Lq, H * Dv},
                  sl[3] = {B, H, Lq};
    o->nin = 3;
    o->in_role[0] = "q", o->in_role[1] = "k", o->in_role[2] = "v";
    o->din_role[0] = "dq", o->din_role[1] = "dk", o->din_role[2] = "dv";
    ZS_TRY(zt_alloc_tensor(o, &o->in[0], o->dt, 3, sq, "q", guard));
    ZS_TRY(zt_alloc_tensor(o, &o->in[1], o->dt, 3, sk, "k", guard));
    ZS_TRY(zt_alloc_tensor(o, &o->in[2], o->dt, 3, sv, "v", guard));
    o->nout = 2;
    o->out_role[0] = "out", o->out_role[1] = "lse";
    ZS_TRY(zt_alloc_tensor(o, &o->out[0], o->dt, 3, so, "out", guard));
    ZS_TRY(zt_alloc_tensor(o, &o->out[1], ZS_F32, 3, sl, "lse", guard));
    return ZS_OK;
}

// q, k in [-2, 2): scaled scores have a standard deviation of about 1.3 whatever the head
// dim (uniform(-a, a) products: var a^4 / 9 per term, times Dk terms, times scale^2 = 1 /
// Dk), so rows range from peaked to flat; v in [-1, 1).
static zs_status fam_fill(zt_op_inst *o, uint64_t seed) {
    ZS_TRY(zt_fill_tensor(&o->in[0], seed, 1, -2, 2));
    ZS_TRY(zt_fill_tensor(&o->in[1], seed, 2, -2, 2));
    ZS_TRY(zt_fill_tensor(&o->in[2], seed, 3, -1, 1));
    return ZS_OK;
}

static zs_status fam_forward(zt_op_inst *o) {
    zs_attn_params p;
    zt_attn_params_of(o->c, &p);
    return zs_attention_fwd(&o->out[0], &o->out[1], &o->in[0], &o->in[1], &o->in[2], &p);
}

static zs_status fam_backward(zt_op_inst *o) {
    zs_attn_params p;
    zt_attn_params_of(o->c, &p);
    return zs_attention_bwd(&o->din[0], &o->din[1], &o->din[2], &o->dy, &o->in[0], &o->in[1], &o->in[2], &o->out[0],
                            &o->out[1], &p);
}

// Model flops: 2 (Dk + Dv) per visible (query, key) pair forward (QK^T and PV), 2.5x that
// backward (the FlashAttention convention; the kernels recompute more). Bytes: each tensor
// once; the backward reads q, k, v, out, dout, lse and reads + writes dq, dk, dv.
static void fam_cost(const zt_op_case *c, int bwd, size_t e, double *flops, double *bytes) {
    const int64_t *p = c->p;
    double B = (double)p[P_B], H = (double)p[P_H], Lq = (double)p[P_LQ], Lk = (double)p[P_LK];
    double Dk = (double)p[P_DK], Dv = (double)p[P_DV], pairs = Lq * Lk;
    if (p[P_CAUSAL]) {
        pairs = 0;
        for (int64_t i = 0; i < p[P_LQ]; i++) {
            int64_t n = i + p[P_LK] - p[P_LQ] + 1;
            pairs += (double)(n < 0 ? 0 : n > p[P_LK] ? p[P_LK] : n);
        }
    }
    *flops = B * H * pairs * 2 * (Dk + Dv) * (bwd ? 2.5 : 1.0);
    double q = B * Lq * H * Dk, k = B * Lk * H * Dk, v = B * Lk * H * Dv, o = B * Lq * H * Dv, l = B * H * Lq;
    *bytes = bwd ? e * (q + k + v + 2 * o + 2 * (q + k + v)) + 4 * l : e * (q + k + v + o) + 4 * l;
}

static const char *fam_shape_str(const zt_op_case *c, char *buf, size_t n) {
    const int64_t *p = c->p;
    if (p[P_DK] == p[P_DV])
        snprintf(buf, n, "%lldx%lld q%lld k%lld d%lld%s", (long long)p[P_B], (long long)p[P_H], (long long)p[P_LQ],
                 (long long)p[P_LK], (long long)p[P_DK], p[P_CAUSAL] ? " causal" : "");
    else
        snprintf(buf, n, "%lldx%lld q%lld k%lld dk%lld dv%lld%s", (long long)p[P_B], (long long)p[P_H],
                 (long long)p[P_LQ], (long long)p[P_LK], (long long)p[P_DK], (long long)p[P_DV],
                 p[P_CAUSAL] ? " causal" : "");
    return buf;
}

// Tolerances. FD: step 1e-2 (relative), norm-relative tolerance 5e-4, about 10x the largest
// error measured at introduction (4.4e-5, dk of attn_causal_q4_k9_d8). CUDA vs CPU on inputs
// already rounded to the dtype: F32 differs from the CPU twin only in summation order (both
// measured against float64: <= 5e-7 out, <= 1.2e-6 grads, so 2e-5 leaves >10x room); BF16 /
// F16: one rounding of each output to 8 / 11 significant bits (about 1e-3 / 3e-4 norm-
// relative), the backward's delta = dout . out read from the rounded out (amplified where
// dp - delta is small), and the prefill + gradient rounding of the accumulating backward.
const zt_op_family zt_fam_attention = {
    .name = "attention",
    .cases = k_cases,
    .ncases = (int)(sizeof k_cases / sizeof k_cases[0]),
    .fd_h = 1e-2,
    .fd_tol = 5e-4,
    .tol_f32 = 2e-5,
    .tol_bf16 = 2e-2,
    .tol_f16 = 5e-3,
    .alloc = fam_alloc,
    .fill = fam_fill,
    .forward = fam_forward,
    .backward = fam_backward,
    .cost = fam_cost,
    .shape_str = fam_shape_str,
};

// The finite-difference subset: the same hooks over the small cases only.
const zt_op_family zt_fam_attention_fd = {
    .name = "attention",
    .cases = k_cases,
    .ncases = ZT_ATTN_NFD,
    .fd_h = 1e-2,
    .fd_tol = 5e-4,
    .tol_f32 = 2e-5,
    .tol_bf16 = 2e-2,
    .tol_f16 = 5e-3,
    .alloc = fam_alloc,
    .fill = fam_fill,
    .forward = fam_forward,
    .backward = fam_backward,
    .cost = fam_cost,
    .shape_str = fam_shape_str,
};
