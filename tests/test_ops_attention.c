// Attention tests (kernels/attention.h):
//   ops_fd_attention            CPU backward vs finite differences (small family cases),
//                               accumulation, full writes, guards (tests/test_ops.c runner)
//   ops_attention_cpu_vs_f64    CPU twin vs a float64 reference at CLIP / ViT / UNet sizes,
//                               rows that see no key (causal, Lq > Lk), Lk = 1
//   ops_attention_ref_torch     CPU vs PyTorch's scaled_dot_product_attention (fixture from
//                               tools/fixtures/make_attention.py), outputs, lse and grads
//   ops_attention_null_grads    any subset of dq / dk / dv; Lk = 0 and B = 0 calls
//   ops_attention_errors        shape / dtype / device / params errors name op and tensor
//   ops_cuda_attention          (GPU) CUDA vs CPU, every ZT_CASE_TEST family case, 3 dtypes
//   ops_cuda_attention_extra    (GPU) empty rows, grad subsets, determinism, lse NULL,
//                               unsupported head dim
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "engine/backend.h"
#include "kernels/attention.h"
#include "op_fam_attention.h"
#include "op_table.h"
#include "test.h"
#include "test_ops.h"
#include "weights/safetensors.h"

static int verbose(void) { return getenv("ZSMLC_TEST_VERBOSE") != NULL; }

TEST(ops_fd_attention) { return zt_fd_family(&zt_fam_attention_fd); }
GPU_TEST(ops_cuda_attention) { return zt_gpu_family(&zt_fam_attention); }
// Every F16 / BF16 path of attention.cu forced over the same cases (the default, tensor cores
// both ways, is ops_cuda_attention): forward on CUDA cores; backward on CUDA cores, through
// cuBLAS with materialised scores.
GPU_TEST(ops_cuda_attention_paths) {
    static const int modes[3][2] = {{0, 0}, {1, 0}, {1, 1}};
    zt_result r = ZT_PASS;
    for (int m = 0; m < 3 && r == ZT_PASS; m++) {
        zs_attention_cuda_paths(modes[m][0], modes[m][1]);
        r = zt_gpu_family(&zt_fam_attention);
        if (r != ZT_PASS) zt_note(__FILE__, __LINE__, "with tc_fwd %d, bwd path %d", modes[m][0], modes[m][1]);
    }
    zs_attention_cuda_paths(-1, -1);
    return r;
}

// ---- float64 reference --------------------------------------------------------------------
typedef struct {
    int64_t B, H, Lq, Lk, Dk, Dv;
    int causal;
    float scale;
} shp;

static int64_t seen(const shp *s, int64_t i) {
    if (!s->causal) return s->Lk;
    int64_t n = i + s->Lk - s->Lq + 1;
    return n < 0 ? 0 : n > s->Lk ? s->Lk : n;
}

// out, lse (and, when dout is given, dq, dk, dv from zero) in double, row by row.
static void ref_attn(const shp *s, const float *q, const float *k, const float *v, const float *dout, double *out,
                     double *lse, double *dq, double *dk, double *dv) {
    const int64_t H = s->H, Lq = s->Lq, Lk = s->Lk, Dk = s->Dk, Dv = s->Dv;
    double *p = malloc(sizeof(double) * (size_t)(Lk > 0 ? Lk : 1));
    if (dout) {
        memset(dq, 0, sizeof(double) * (size_t)(s->B * Lq * H * Dk));
        memset(dk, 0, sizeof(double) * (size_t)(s->B * Lk * H * Dk));
        memset(dv, 0, sizeof(double) * (size_t)(s->B * Lk * H * Dv));
    }
    for (int64_t b = 0; b < s->B; b++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t i = 0; i < Lq; i++) {
                const float *qi = q + ((b * Lq + i) * H + h) * Dk;
                int64_t n = seen(s, i);
                double m = -INFINITY, l = 0;
                for (int64_t j = 0; j < n; j++) {
                    const float *kj = k + ((b * Lk + j) * H + h) * Dk;
                    double d = 0;
                    for (int64_t c = 0; c < Dk; c++) d += (double)qi[c] * kj[c];
                    p[j] = d * s->scale;
                    m = p[j] > m ? p[j] : m;
                }
                for (int64_t j = 0; j < n; j++) l += exp(p[j] - m);
                for (int64_t j = 0; j < n; j++) p[j] = exp(p[j] - m) / l;
                lse[(b * H + h) * Lq + i] = n ? m + log(l) : -INFINITY;
                double *o = out + ((b * Lq + i) * H + h) * Dv;
                for (int64_t c = 0; c < Dv; c++) {
                    double a = 0;
                    for (int64_t j = 0; j < n; j++) a += p[j] * v[((b * Lk + j) * H + h) * Dv + c];
                    o[c] = a;
                }
                if (!dout) continue;
                const float *g = dout + ((b * Lq + i) * H + h) * Dv;
                double D = 0;
                for (int64_t c = 0; c < Dv; c++) D += (double)g[c] * o[c];
                for (int64_t j = 0; j < n; j++) {
                    const float *kj = k + ((b * Lk + j) * H + h) * Dk, *vj = v + ((b * Lk + j) * H + h) * Dv;
                    double dp = 0;
                    for (int64_t c = 0; c < Dv; c++) dp += (double)g[c] * vj[c];
                    double ds = p[j] * (dp - D) * s->scale;
                    for (int64_t c = 0; c < Dv; c++) dv[((b * Lk + j) * H + h) * Dv + c] += p[j] * g[c];
                    for (int64_t c = 0; c < Dk; c++) {
                        dq[((b * Lq + i) * H + h) * Dk + c] += ds * kj[c];
                        dk[((b * Lk + j) * H + h) * Dk + c] += ds * qi[c];
                    }
                }
            }
    free(p);
}

// Relative norm error; a reference that is mathematically zero (lk1: one key, so out = v and
// dq = 0) holds rounding noise of O(1) terms in the CPU's GEMMs: absolute floor 1 there.
static double rel_err_d(const float *got, const double *ref, int64_t n) {
    float *r = malloc(sizeof(float) * (size_t)(n ? n : 1));
    if (!r) return INFINITY;
    double nr = 0;
    for (int64_t i = 0; i < n; i++) r[i] = (float)ref[i], nr += ref[i] * ref[i];
    double e = zt_rel_err(got, r, n, sqrt(nr) < 1e-9 ? 1.0 : 1e-6);
    free(r);
    return e;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

// One CPU case vs the reference: forward outputs and gradients at 1e-5 (measured: ~1e-7 out,
// lse; <= 1e-6 grads).
static zt_result cpu_vs_f64(const char *name, shp s) {
    const int64_t nq = s.B * s.Lq * s.H * s.Dk, nk = s.B * s.Lk * s.H * s.Dk, nv = s.B * s.Lk * s.H * s.Dv;
    const int64_t no = s.B * s.Lq * s.H * s.Dv, nl = s.B * s.H * s.Lq;
    const int64_t nall = 3 * nq + 3 * nk + 3 * nv + 3 * no + nl;
    float *buf = calloc((size_t)nall + 1, sizeof(float));
    double *rb = malloc(sizeof(double) * (size_t)(nq + nk + nv + no + nl + 1));
    CHECK(buf && rb, "oom");
    float *q = buf, *k = q + nq, *v = k + nk, *out = v + nv, *dout = out + no, *lse = dout + no;
    float *dq = lse + nl, *dk = dq + nq, *dv = dk + nk;
    double *rdq = rb, *rdk = rdq + nq, *rdv = rdk + nk, *rout = rdv + nv, *rlse = rout + no;
    zt_fill_uniform(q, nq, 11, -2, 2);
    zt_fill_uniform(k, nk, 12, -2, 2);
    zt_fill_uniform(v, nv, 13, -1, 1);
    zt_fill_uniform(dout, no, 14, -1, 1);
    zs_tensor tq = zs_tensor_make(q, ZS_F32, ZS_CPU, 3, (int64_t[3]){s.B, s.Lq, s.H * s.Dk});
    zs_tensor tk = zs_tensor_make(k, ZS_F32, ZS_CPU, 3, (int64_t[3]){s.B, s.Lk, s.H * s.Dk});
    zs_tensor tv = zs_tensor_make(v, ZS_F32, ZS_CPU, 3, (int64_t[3]){s.B, s.Lk, s.H * s.Dv});
    zs_tensor to = zs_tensor_make(out, ZS_F32, ZS_CPU, 3, (int64_t[3]){s.B, s.Lq, s.H * s.Dv});
    zs_tensor tdo = zs_tensor_make(dout, ZS_F32, ZS_CPU, 3, (int64_t[3]){s.B, s.Lq, s.H * s.Dv});
    zs_tensor tl = zs_tensor_make(lse, ZS_F32, ZS_CPU, 3, (int64_t[3]){s.B, s.H, s.Lq});
    zs_tensor tdq = zs_tensor_make(dq, ZS_F32, ZS_CPU, 3, tq.shape), tdk = zs_tensor_make(dk, ZS_F32, ZS_CPU, 3, tk.shape);
    zs_tensor tdv = zs_tensor_make(dv, ZS_F32, ZS_CPU, 3, tv.shape);
    zs_attn_params p = {(int)s.H, s.scale, s.causal};
    zt_result res = ZT_FAIL;
    double t0 = now_ms();
    zs_status st = zs_attention_fwd(&to, &tl, &tq, &tk, &tv, &p);
    double t1 = now_ms();
    if (!st) st = zs_attention_bwd(&tdq, &tdk, &tdv, &tdo, &tq, &tk, &tv, &to, &tl, &p);
    double t2 = now_ms();
    if (st) {
        zt_note(__FILE__, __LINE__, "%s: %s", name, zs_errmsg());
        goto done;
    }
    ref_attn(&s, q, k, v, dout, rout, rlse, rdq, rdk, rdv);
    const struct { const char *role; const float *got; const double *ref; int64_t n; } cmp[] = {
        {"out", out, rout, no}, {"lse", lse, rlse, nl}, {"dq", dq, rdq, nq}, {"dk", dk, rdk, nk}, {"dv", dv, rdv, nv}};
    for (int i = 0; i < 5; i++) {
        double e = rel_err_d(cmp[i].got, cmp[i].ref, cmp[i].n);
        if (verbose()) zt_note(__FILE__, __LINE__, "%s %s: rel err %.3g vs float64", name, cmp[i].role, e);
        if (!(e <= 1e-5)) {
            zt_note(__FILE__, __LINE__, "%s: CPU %s vs float64 reference: rel err %.3g > 1e-5", name, cmp[i].role, e);
            goto done;
        }
    }
    // Rows that see no key: exactly 0 and -inf.
    for (int64_t b = 0; b < s.B; b++)
        for (int64_t h = 0; h < s.H; h++)
            for (int64_t i = 0; i < s.Lq; i++) {
                if (seen(&s, i)) continue;
                if (!(isinf(lse[(b * s.H + h) * s.Lq + i]) && lse[(b * s.H + h) * s.Lq + i] < 0)) {
                    zt_note(__FILE__, __LINE__, "%s: row %lld sees no key but lse is %g", name, (long long)i,
                            lse[(b * s.H + h) * s.Lq + i]);
                    goto done;
                }
                for (int64_t c = 0; c < s.Dv; c++)
                    if (out[((b * s.Lq + i) * s.H + h) * s.Dv + c] != 0) {
                        zt_note(__FILE__, __LINE__, "%s: row %lld sees no key but out is not 0", name, (long long)i);
                        goto done;
                    }
            }
    if (verbose())
        zt_note(__FILE__, __LINE__, "%s: CPU forward %.2f ms, backward %.2f ms", name, t1 - t0, t2 - t1);
    res = ZT_PASS;
done:
    free(buf);
    free(rb);
    return res;
}

TEST(ops_attention_cpu_vs_f64) {
    static const struct { const char *name; shp s; } cases[] = {
        {"clip_text_77_causal_h8_d64", {1, 8, 77, 77, 64, 64, 1, 0.125f}},
        {"vit_b32_50_h12_d64", {1, 12, 50, 50, 64, 64, 0, 0.125f}},
        {"vit_257_h4_d64", {1, 4, 257, 257, 64, 64, 0, 0.125f}},
        {"unet_cross_4096x77_h2_d40", {1, 2, 4096, 77, 40, 40, 0, 0.158113883f}},
        {"causal_lq13_lk5_empty_rows", {2, 2, 13, 5, 8, 8, 1, 0.35355339f}},
        {"causal_offset_q7_k19", {1, 2, 7, 19, 16, 16, 1, 0.25f}},
        {"lk1", {2, 3, 5, 1, 8, 12, 0, 0.3f}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (cpu_vs_f64(cases[i].name, cases[i].s) != ZT_PASS) return ZT_FAIL;
    return ZT_PASS;
}

// ---- PyTorch parity -----------------------------------------------------------------------
#define REF_TOL 1e-5
// Must match tools/fixtures/make_attention.py.
static const char *const k_ref_cases[] = {"self", "causal", "cross", "causal_offset", "causal_empty_rows",
                                          "dk_ne_dv"};

static zs_status ref_load(const zs_st *st, const char *cs, const char *role, zs_tensor *t) {
    char nm[128], a[96], b[96];
    snprintf(nm, sizeof nm, "%s.%s", cs, role);
    const zs_st_entry *e = zs_st_find(st, nm);
    if (!e) return ZS_ERR(ZS_EFORMAT, "attention fixture: %s missing", nm);
    zs_tensor fx = zs_tensor_make(NULL, e->dtype, ZS_CPU, e->ndim, e->shape);
    if (!zs_same_shape(&fx, t))
        return ZS_ERR(ZS_EFORMAT, "attention fixture: %s is %s, expected %s", nm, zs_shape_str(&fx, a, sizeof a),
                      zs_shape_str(t, b, sizeof b));
    return zs_st_read_f32(st, nm, t->data, zs_numel(t));
}

static zt_result ref_case(const zs_st *st, const char *cs) {
    char nm[128];
    snprintf(nm, sizeof nm, "%s.q", cs);
    const zs_st_entry *eq = zs_st_find(st, nm);
    snprintf(nm, sizeof nm, "%s.k", cs);
    const zs_st_entry *ek = zs_st_find(st, nm);
    snprintf(nm, sizeof nm, "%s.v", cs);
    const zs_st_entry *ev = zs_st_find(st, nm);
    float cfg[3];
    snprintf(nm, sizeof nm, "%s.cfg", cs);
    CHECK(eq && ek && ev && eq->ndim == 3 && ek->ndim == 3 && ev->ndim == 3, "attention fixture: case %s malformed",
          cs);
    CHECK_OK(zs_st_read_f32(st, nm, cfg, 3));
    zs_attn_params p = {(int)cfg[0], cfg[1], (int)cfg[2]};
    int64_t B = eq->shape[0], Lq = eq->shape[1], Lk = ek->shape[1], H = p.heads;
    int64_t sq[3] = {B, Lq, eq->shape[2]}, sk[3] = {B, Lk, ek->shape[2]}, sv[3] = {B, Lk, ev->shape[2]};
    int64_t so[3] = {B, Lq, ev->shape[2]}, sl[3] = {B, H, Lq};
    const int64_t *shapes[10] = {sq, sk, sv, so, sl, so, sq, sk, sv, so};
    static const char *const roles[10] = {"q", "k", "v", "out", "lse", "r", "dq", "dk", "dv", "out"};
    zs_tensor t[10];
    float *mem[10] = {0};
    zt_result res = ZT_FAIL;
    for (int i = 0; i < 10; i++) {
        t[i] = zs_tensor_make(NULL, ZS_F32, ZS_CPU, 3, shapes[i]);
        mem[i] = calloc((size_t)zs_numel(&t[i]) + 1, sizeof(float));
        t[i].data = mem[i];
        if (!mem[i]) goto done;
    }
    // t[0..2] inputs, t[5] = r (the upstream gradient); t[3], t[4] the references of out
    // and lse, loaded below; t[9] our out; a separate lse and grads.
    for (int i = 0; i < 3; i++)
        if (ref_load(st, cs, roles[i], &t[i])) goto err;
    if (ref_load(st, cs, "r", &t[5])) goto err;
    {
        float *lse = calloc((size_t)zs_numel(&t[4]) + 1, sizeof(float));
        float *g[3];
        for (int i = 0; i < 3; i++) g[i] = calloc((size_t)zs_numel(&t[i]) + 1, sizeof(float));
        zs_tensor tl = zs_tensor_make(lse, ZS_F32, ZS_CPU, 3, sl);
        zs_tensor tg[3];
        for (int i = 0; i < 3; i++) tg[i] = zs_tensor_make(g[i], ZS_F32, ZS_CPU, 3, shapes[i]);
        zs_status s = (!lse || !g[0] || !g[1] || !g[2]) ? ZS_ERR(ZS_ENOMEM, "oom") : ZS_OK;
        if (!s) s = zs_attention_fwd(&t[9], &tl, &t[0], &t[1], &t[2], &p);
        if (!s) s = zs_attention_bwd(&tg[0], &tg[1], &tg[2], &t[5], &t[0], &t[1], &t[2], &t[9], &tl, &p);
        const float *got[5] = {t[9].data, lse, g[0], g[1], g[2]};
        static const char *const gr[5] = {"out", "lse", "dq", "dk", "dv"};
        int ok = !s;
        if (s) zt_note(__FILE__, __LINE__, "%s: %s", cs, zs_errmsg());
        for (int i = 0; ok && i < 5; i++) {
            int slot = i == 0 ? 3 : i == 1 ? 4 : 4 + i;  // reference tensor slot (6-8: dq, dk, dv)
            if (ref_load(st, cs, gr[i], &t[slot])) { ok = 0; zt_note(__FILE__, __LINE__, "%s", zs_errmsg()); break; }
            double e = zt_rel_err(got[i], t[slot].data, zs_numel(&t[slot]), 1e-6);
            if (verbose()) zt_note(__FILE__, __LINE__, "%s.%s: rel err %.3g vs PyTorch", cs, gr[i], e);
            if (!(e <= REF_TOL)) {
                zt_note(__FILE__, __LINE__, "%s.%s: CPU rel err %.3g vs PyTorch > %g", cs, gr[i], e, REF_TOL);
                ok = 0;
            }
        }
        free(lse);
        for (int i = 0; i < 3; i++) free(g[i]);
        if (ok) res = ZT_PASS;
    }
    goto done;
err:
    zt_note(__FILE__, __LINE__, "%s: %s", cs, zs_errmsg());
done:
    for (int i = 0; i < 10; i++) free(mem[i]);
    return res;
}

TEST(ops_attention_ref_torch) {
    char path[512];
    zs_st *st = NULL;
    CHECK_OK(zs_st_open(&st, zt_fixture_path("attention/attention.safetensors", path, sizeof path)));
    zt_result r = ZT_PASS;
    for (size_t i = 0; i < sizeof k_ref_cases / sizeof k_ref_cases[0] && r == ZT_PASS; i++)
        r = ref_case(st, k_ref_cases[i]);
    zs_st_close(st);
    return r;
}

// ---- grad subsets, empty calls --------------------------------------------------------------
static const zt_op_case k_subset_case = {
    "attn_subset", ZT_OP_FAMILY, 0, 0, 0, 0, 0, 0, 0, &zt_fam_attention, {2, 3, 13, 70, 8, 8, 1}};

// Runs the backward of o with only the grads in mask (bit i: din[i]) from zero; host copies
// of din into g[i] (n floats each).
static zs_status bwd_subset(zt_op_inst *o, int mask, float **g) {
    zs_attn_params p;
    zt_attn_params_of(o->c, &p);
    ZS_TRY(zt_op_zero_grads(o));
    ZS_TRY(zs_attention_bwd(mask & 1 ? &o->din[0] : NULL, mask & 2 ? &o->din[1] : NULL, mask & 4 ? &o->din[2] : NULL,
                            &o->dy, &o->in[0], &o->in[1], &o->in[2], &o->out[0], &o->out[1], &p));
    for (int i = 0; i < 3; i++) ZS_TRY(zt_to_host_f32(&o->din[i], g[i]));
    return ZS_OK;
}

// Every subset of grads gives exactly the full backward's values for the grads it asks for
// and leaves the others untouched (zero).
static zt_result subsets_on(zs_device dev, zs_dtype dt) {
    zt_op_inst o;
    CHECK_OK(zt_op_alloc(&o, &k_subset_case, dev, dt, 1));
    int64_t n[3];
    float *full[3] = {0}, *g[3] = {0};
    zt_result r = ZT_FAIL;
    for (int i = 0; i < 3; i++) {
        n[i] = zs_numel(&o.in[i]);
        full[i] = malloc(sizeof(float) * (size_t)n[i]);
        g[i] = malloc(sizeof(float) * (size_t)n[i]);
        if (!full[i] || !g[i]) goto done;
    }
    if (zt_op_fill(&o, 5) || zt_op_forward(&o) || bwd_subset(&o, 7, full)) {
        zt_note(__FILE__, __LINE__, "%s", zs_errmsg());
        goto done;
    }
    for (int mask = 0; mask < 7; mask++) {
        if (bwd_subset(&o, mask, g)) {
            zt_note(__FILE__, __LINE__, "mask %d: %s", mask, zs_errmsg());
            goto done;
        }
        for (int i = 0; i < 3; i++) {
            int bad = 0;
            for (int64_t x = 0; x < n[i] && !bad; x++) bad = mask >> i & 1 ? g[i][x] != full[i][x] : g[i][x] != 0;
            if (bad) {
                zt_note(__FILE__, __LINE__, "%s %s: grads mask %d: %s differs from the full backward's", zs_device_name(dev),
                        zs_dtype_name(dt), mask, o.din_role[i]);
                goto done;
            }
        }
    }
    char why[160];
    if (!zt_op_guards_ok(&o, why, sizeof why)) {
        zt_note(__FILE__, __LINE__, "%s %s: guard: %s", zs_device_name(dev), zs_dtype_name(dt), why);
        goto done;
    }
    r = ZT_PASS;
done:
    for (int i = 0; i < 3; i++) {
        free(full[i]);
        free(g[i]);
    }
    zt_op_free(&o);
    return r;
}

TEST(ops_attention_null_grads) {
    if (subsets_on(ZS_CPU, ZS_F32) != ZT_PASS) return ZT_FAIL;
    // Lk = 0: every row sees nothing (out 0, lse -inf); B = 0: nothing to do.
    float q[2 * 3 * 4], out[2 * 3 * 4], lse[2 * 2 * 3], dq[2 * 3 * 4];
    memset(q, 0, sizeof q);
    for (int i = 0; i < 24; i++) out[i] = dq[i] = NAN;
    zs_tensor tq = zs_tensor_make(q, ZS_F32, ZS_CPU, 3, (int64_t[3]){2, 3, 4});
    zs_tensor tk = zs_tensor_make(NULL, ZS_F32, ZS_CPU, 3, (int64_t[3]){2, 0, 4});
    zs_tensor tv = zs_tensor_make(NULL, ZS_F32, ZS_CPU, 3, (int64_t[3]){2, 0, 4});
    zs_tensor to = zs_tensor_make(out, ZS_F32, ZS_CPU, 3, (int64_t[3]){2, 3, 4});
    zs_tensor tl = zs_tensor_make(lse, ZS_F32, ZS_CPU, 3, (int64_t[3]){2, 2, 3});
    zs_tensor tdq = zs_tensor_make(dq, ZS_F32, ZS_CPU, 3, (int64_t[3]){2, 3, 4});
    zs_attn_params p = {2, 0.5f, 0};
    CHECK_OK(zs_attention_fwd(&to, &tl, &tq, &tk, &tv, &p));
    for (int i = 0; i < 24; i++) CHECK(out[i] == 0, "Lk = 0: out[%d] = %g, expected 0", i, out[i]);
    for (int i = 0; i < 12; i++) CHECK(isinf(lse[i]) && lse[i] < 0, "Lk = 0: lse[%d] = %g, expected -inf", i, lse[i]);
    CHECK_OK(zs_attention_bwd(&tdq, NULL, NULL, &to, &tq, &tk, &tv, &to, &tl, &p));
    CHECK(isnan(dq[0]), "Lk = 0: the backward touched dq");
    zs_tensor q0 = zs_tensor_make(NULL, ZS_F32, ZS_CPU, 3, (int64_t[3]){0, 3, 4});
    zs_tensor k0 = zs_tensor_make(NULL, ZS_F32, ZS_CPU, 3, (int64_t[3]){0, 5, 4});
    zs_tensor o0 = zs_tensor_make(NULL, ZS_F32, ZS_CPU, 3, (int64_t[3]){0, 3, 4});
    zs_tensor l0 = zs_tensor_make(NULL, ZS_F32, ZS_CPU, 3, (int64_t[3]){0, 2, 3});
    CHECK_OK(zs_attention_fwd(&o0, &l0, &q0, &k0, &k0, &p));
    CHECK_OK(zs_attention_bwd(&q0, &k0, &k0, &o0, &q0, &k0, &k0, &o0, &l0, &p));
    return ZT_PASS;
}

// ---- errors -------------------------------------------------------------------------------
#define EXPECT_ERR(code, expr, ...)                                                                        \
    do {                                                                                                   \
        zs_status s_ = (expr);                                                                             \
        CHECK(s_ == (code), "%s -> %s, expected %s", #expr, zs_status_name(s_), zs_status_name(code));     \
        const char *want_[] = {__VA_ARGS__};                                                               \
        for (size_t w_ = 0; w_ < sizeof want_ / sizeof want_[0]; w_++)                                     \
            CHECK(strstr(zs_errmsg(), want_[w_]), "%s: message \"%s\" lacks \"%s\"", #expr, zs_errmsg(), want_[w_]); \
    } while (0)

TEST(ops_attention_errors) {
    static float mem[8][2 * 5 * 24];
    // q [2, 5, 24] with 3 heads (Dk 8); k, v [2, 7, 24]; out [2, 5, 24]; lse [2, 3, 5]
    zs_tensor q = zs_tensor_make(mem[0], ZS_F32, ZS_CPU, 3, (int64_t[3]){2, 5, 24});
    zs_tensor k = zs_tensor_make(mem[1], ZS_F32, ZS_CPU, 3, (int64_t[3]){2, 7, 24});
    zs_tensor v = zs_tensor_make(mem[2], ZS_F32, ZS_CPU, 3, (int64_t[3]){2, 7, 24});
    zs_tensor o = zs_tensor_make(mem[3], ZS_F32, ZS_CPU, 3, (int64_t[3]){2, 5, 24});
    zs_tensor l = zs_tensor_make(mem[4], ZS_F32, ZS_CPU, 3, (int64_t[3]){2, 3, 5});
    zs_tensor dq = zs_tensor_make(mem[5], ZS_F32, ZS_CPU, 3, (int64_t[3]){2, 5, 24});
    zs_attn_params p = {3, 0.35f, 1};
    k.name = "blk0.attn.k";
    CHECK_OK(zs_attention_fwd(&o, &l, &q, &k, &v, &p));
    CHECK_OK(zs_attention_fwd(&o, NULL, &q, &k, &v, &p));
    CHECK_OK(zs_attention_bwd(&dq, NULL, NULL, &o, &q, &k, &v, &o, &l, &p));

    zs_attn_params p5 = {5, 0.35f, 0}, p0 = {0, 0.35f, 0}, pn = {3, NAN, 0};
    EXPECT_ERR(ZS_EINVAL, zs_attention_fwd(&o, &l, &q, &k, &v, &p5), "attention_fwd", "q", "heads 5");
    EXPECT_ERR(ZS_EINVAL, zs_attention_fwd(&o, &l, &q, &k, &v, &p0), "attention_fwd", "heads 0");
    EXPECT_ERR(ZS_EINVAL, zs_attention_fwd(&o, &l, &q, &k, &v, &pn), "attention_fwd", "scale");
    EXPECT_ERR(ZS_EINVAL, zs_attention_fwd(&o, &l, &q, &k, &v, NULL), "attention_fwd", "params");
    zs_tensor k2 = zs_tensor_make(mem[1], ZS_F32, ZS_CPU, 3, (int64_t[3]){2, 7, 16});
    k2.name = "blk0.attn.k";
    EXPECT_ERR(ZS_EINVAL, zs_attention_fwd(&o, &l, &q, &k2, &v, &p), "attention_fwd", "k", "blk0.attn.k", "[2, 7, 16]");
    zs_tensor v2 = zs_tensor_make(mem[2], ZS_F32, ZS_CPU, 3, (int64_t[3]){2, 6, 24});
    EXPECT_ERR(ZS_EINVAL, zs_attention_fwd(&o, &l, &q, &k, &v2, &p), "attention_fwd", "v", "[2, 6, 24]");
    zs_tensor v3 = zs_tensor_make(mem[2], ZS_F32, ZS_CPU, 3, (int64_t[3]){2, 7, 25});
    EXPECT_ERR(ZS_EINVAL, zs_attention_fwd(&o, &l, &q, &k, &v3, &p), "attention_fwd", "v", "heads 3");
    zs_tensor q2 = zs_tensor_make(mem[0], ZS_F32, ZS_CPU, 2, (int64_t[2]){10, 24});
    EXPECT_ERR(ZS_EINVAL, zs_attention_fwd(&o, &l, &q2, &k, &v, &p), "attention_fwd", "q");
    zs_tensor o2 = zs_tensor_make(mem[3], ZS_F32, ZS_CPU, 3, (int64_t[3]){2, 7, 24});
    EXPECT_ERR(ZS_EINVAL, zs_attention_fwd(&o2, &l, &q, &k, &v, &p), "attention_fwd", "out", "[2, 7, 24]");
    zs_tensor l2 = zs_tensor_make(mem[4], ZS_F32, ZS_CPU, 3, (int64_t[3]){2, 5, 3});
    EXPECT_ERR(ZS_EINVAL, zs_attention_fwd(&o, &l2, &q, &k, &v, &p), "attention_fwd", "lse", "[2, 5, 3]");
    zs_tensor l3 = zs_tensor_make(mem[4], ZS_I32, ZS_CPU, 3, (int64_t[3]){2, 3, 5});
    EXPECT_ERR(ZS_EINVAL, zs_attention_fwd(&o, &l3, &q, &k, &v, &p), "attention_fwd", "lse", "I32");
    zs_tensor qh = zs_tensor_make(mem[0], ZS_F16, ZS_CPU, 3, (int64_t[3]){2, 5, 24});
    EXPECT_ERR(ZS_EUNSUPPORTED, zs_attention_fwd(&o, &l, &qh, &k, &v, &p), "attention_fwd", "q", "F32");
    zs_tensor kc = zs_tensor_make(mem[1], ZS_F32, ZS_CUDA, 3, (int64_t[3]){2, 7, 24});
    EXPECT_ERR(ZS_EINVAL, zs_attention_fwd(&o, &l, &q, &kc, &v, &p), "attention_fwd", "k", "cuda");
    // backward
    EXPECT_ERR(ZS_EINVAL, zs_attention_bwd(&dq, NULL, NULL, &o, &q, &k, &v, &o, NULL, &p), "attention_bwd", "lse");
    EXPECT_ERR(ZS_EINVAL, zs_attention_bwd(&dq, NULL, NULL, NULL, &q, &k, &v, &o, &l, &p), "attention_bwd", "dout");
    zs_tensor dk2 = zs_tensor_make(mem[6], ZS_F32, ZS_CPU, 3, (int64_t[3]){2, 5, 24});
    EXPECT_ERR(ZS_EINVAL, zs_attention_bwd(NULL, &dk2, NULL, &o, &q, &k, &v, &o, &l, &p), "attention_bwd", "dk",
               "[2, 5, 24]");
    EXPECT_ERR(ZS_EINVAL, zs_attention_bwd(&dq, NULL, NULL, &o, &q, &k, &v, &o2, &l, &p), "attention_bwd", "out");
    return ZT_PASS;
}

// ---- CUDA extras ----------------------------------------------------------------------------
// One case on CUDA in dt vs the CPU twin on the same (rounded) inputs: out, lse, grads
// (from zero) at the family tolerance; -inf lse entries must match exactly.
static zt_result cuda_vs_cpu(const zt_op_case *c, zs_dtype dt) {
    zt_op_inst h, d;
    double tol = dt == ZS_F32 ? zt_fam_attention.tol_f32 : dt == ZS_BF16 ? zt_fam_attention.tol_bf16
                                                                          : zt_fam_attention.tol_f16;
    CHECK_OK(zt_op_alloc(&h, c, ZS_CPU, ZS_F32, 1));
    zs_status s = zt_op_alloc(&d, c, ZS_CUDA, dt, 1);
    if (s) zt_op_free(&h);
    CHECK_OK(s);
    zt_result r = ZT_FAIL;
    float *tmp = NULL;
    s = zt_op_fill(&d, 77);  // fill on the device (rounded to dt), copy to the host
    for (int i = 0; i < 3 && !s; i++) s = zs_tensor_copy(&h.in[i], &d.in[i]);
    if (!s) s = zs_tensor_copy(&h.dy, &d.dy);
    if (!s) s = zt_op_zero_grads(&h);
    if (!s) s = zt_op_forward(&h);
    if (!s) s = zt_op_forward(&d);
    if (!s) s = zt_op_backward(&h);
    if (!s) s = zt_op_backward(&d);
    if (!s) s = zs_sync(ZS_CUDA);
    if (s) {
        zt_note(__FILE__, __LINE__, "%s %s: %s", c->name, zs_dtype_name(dt), zs_errmsg());
        goto done;
    }
    const zs_tensor *gt[5] = {&d.out[0], &d.out[1], &d.din[0], &d.din[1], &d.din[2]};
    const zs_tensor *ht[5] = {&h.out[0], &h.out[1], &h.din[0], &h.din[1], &h.din[2]};
    static const char *const role[5] = {"out", "lse", "dq", "dk", "dv"};
    for (int i = 0; i < 5; i++) {
        int64_t n = zs_numel(ht[i]);
        free(tmp);
        tmp = malloc(sizeof(float) * (size_t)n + 4);
        if (!tmp || zt_to_host_f32(gt[i], tmp)) goto done;
        double e = zt_rel_err(tmp, ht[i]->data, n, 1e-6);
        if (verbose()) zt_note(__FILE__, __LINE__, "%s %s %s: rel err %.3g", c->name, zs_dtype_name(dt), role[i], e);
        if (!(e <= tol)) {
            zt_note(__FILE__, __LINE__, "%s %s %s: CUDA vs CPU rel err %.3g > %.3g", c->name, zs_dtype_name(dt),
                    role[i], e, tol);
            goto done;
        }
    }
    char why[160];
    if (!zt_op_guards_ok(&d, why, sizeof why)) {
        zt_note(__FILE__, __LINE__, "%s %s: CUDA guard: %s", c->name, zs_dtype_name(dt), why);
        goto done;
    }
    r = ZT_PASS;
done:
    free(tmp);
    zt_op_free(&h);
    zt_op_free(&d);
    return r;
}

GPU_TEST(ops_cuda_attention_extra) {
    const zs_dtype dts[3] = {ZS_F32, ZS_BF16, ZS_F16};
    // Causal with Lq > Lk: the first Lq - Lk rows see no key (out 0, lse -inf); several
    // query tiles of which the first is all empty.
    static const zt_op_case empty = {"attn_causal_q150_k40_empty_rows", ZT_OP_FAMILY, 0, 0, 0, 0, 0, 0, 0,
                                     &zt_fam_attention, {2, 3, 150, 40, 64, 64, 1}};
    static const zt_op_case empty160 = {"attn_causal_q70_k9_d136", ZT_OP_FAMILY, 0, 0, 0, 0, 0, 0, 0,
                                        &zt_fam_attention, {1, 2, 70, 9, 136, 136, 1}};
    for (int j = 0; j < 3; j++) {
        if (cuda_vs_cpu(&empty, dts[j]) != ZT_PASS) return ZT_FAIL;
        if (cuda_vs_cpu(&empty160, dts[j]) != ZT_PASS) return ZT_FAIL;
        if (subsets_on(ZS_CUDA, dts[j]) != ZT_PASS) return ZT_FAIL;
    }
    // Deterministic backward: two runs, identical bits (no atomics).
    {
        static const zt_op_case c = {"attn_det", ZT_OP_FAMILY, 0, 0, 0, 0, 0, 0, 0, &zt_fam_attention,
                                     {2, 4, 300, 333, 64, 64, 0}};
        zt_op_inst d;
        CHECK_OK(zt_op_alloc(&d, &c, ZS_CUDA, ZS_F32, 0));
        int64_t n = zs_numel(&d.din[1]);
        float *a = malloc(sizeof(float) * (size_t)n * 2);
        zt_result r = ZT_FAIL;
        if (a && !zt_op_fill(&d, 3) && !zt_op_forward(&d) && !zt_op_backward(&d) && !zt_to_host_f32(&d.din[1], a) &&
            !zt_op_zero_grads(&d) && !zt_op_backward(&d) && !zt_to_host_f32(&d.din[1], a + n))
            r = memcmp(a, a + n, (size_t)n * 4) == 0 ? ZT_PASS : ZT_FAIL;
        else
            zt_note(__FILE__, __LINE__, "attn_det: %s", zs_errmsg());
        free(a);
        zt_op_free(&d);
        CHECK(r == ZT_PASS, "attention backward: two identical runs give different dk bits");
    }
    // Wide heads (> 160, attention_wide.cu) in several chunks of query rows: 7 rows of scores
    // per chunk (300 rows: 43 chunks; causal 40 rows: 6); causal rows that see no key.
    {
        static const zt_op_case w1 = {"attn_vae_mid_q300_d512_chunked", ZT_OP_FAMILY, 0, 0, 0, 0, 0, 0, 0,
                                      &zt_fam_attention, {1, 1, 300, 300, 512, 512, 0}};
        static const zt_op_case w2 = {"attn_wide_causal_q40_k33_dk176_dv232_chunked", ZT_OP_FAMILY, 0, 0, 0, 0, 0, 0, 0,
                                      &zt_fam_attention, {1, 2, 40, 33, 176, 232, 1}};
        static const zt_op_case w3 = {"attn_wide_causal_q20_k7_d200_empty_rows", ZT_OP_FAMILY, 0, 0, 0, 0, 0, 0, 0,
                                      &zt_fam_attention, {2, 1, 20, 7, 200, 200, 1}};
        zt_result r = ZT_PASS;
        for (int j = 0; j < 3 && r == ZT_PASS; j++) {
            zs_attention_wide_set_chunk(7 * 300);
            r = cuda_vs_cpu(&w1, dts[j]);
            zs_attention_wide_set_chunk(7 * 33);
            if (r == ZT_PASS) r = cuda_vs_cpu(&w2, dts[j]);
            zs_attention_wide_set_chunk(3 * 7);
            if (r == ZT_PASS) r = cuda_vs_cpu(&w3, dts[j]);
        }
        zs_attention_wide_set_chunk(0);
        if (r != ZT_PASS) return r;
    }
    // lse NULL at inference.
    {
        zt_op_inst d;
        zs_attn_params p;
        static const zt_op_case c2 = {"attn_nolse", ZT_OP_FAMILY, 0, 0, 0, 0, 0, 0, 0, &zt_fam_attention,
                                      {1, 2, 65, 66, 32, 32, 1}};
        zt_op_inst hh;
        zt_attn_params_of(&c2, &p);
        CHECK_OK(zt_op_alloc(&d, &c2, ZS_CUDA, ZS_F32, 1));
        zs_status s = zt_op_alloc(&hh, &c2, ZS_CPU, ZS_F32, 1);
        if (s) zt_op_free(&d);
        CHECK_OK(s);
        float *g = malloc(sizeof(float) * (size_t)zs_numel(&d.out[0]));
        zt_result r = ZT_FAIL;
        if (g && !zt_op_fill(&d, 9) && !zs_tensor_copy(&hh.in[0], &d.in[0]) && !zs_tensor_copy(&hh.in[1], &d.in[1]) &&
            !zs_tensor_copy(&hh.in[2], &d.in[2]) && !zt_op_forward(&hh) &&
            !zs_attention_fwd(&d.out[0], NULL, &d.in[0], &d.in[1], &d.in[2], &p) && !zt_to_host_f32(&d.out[0], g)) {
            double e = zt_rel_err(g, hh.out[0].data, zs_numel(&d.out[0]), 1e-6);
            if (e <= zt_fam_attention.tol_f32) r = ZT_PASS;
            else zt_note(__FILE__, __LINE__, "attn_nolse: out rel err %.3g", e);
        } else {
            zt_note(__FILE__, __LINE__, "attn_nolse: %s", zs_errmsg());
        }
        free(g);
        zt_op_free(&d);
        zt_op_free(&hh);
        CHECK(r == ZT_PASS, "attention forward with lse NULL on CUDA");
    }
    return ZT_PASS;
}
