// Op tests over the case table (tests/op_table.c), per op family:
//   ops_fd_<op>:   CPU backward vs central finite differences of L = sum(y * r), r random,
//                  L in double from the fp32 forward; accumulate semantics (grads prefilled
//                  P must end as P + grad); outputs fully written; sentinel guards intact.
//   ops_cuda_<op>: (GPU) CUDA vs CPU forward and backward in F32, BF16 and F16, guards.
//   ops_errors_*:  shape / dtype / device mismatches give ZS_EINVAL with useful messages.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "engine/rng.h"
#include "kernels/ops.h"
#include "op_table.h"
#include "test.h"
#include "test_ops.h"

// FD step (relative: h * max(1, |v|)) and tolerance (norm-relative error over the checked
// elements) per op, about 10x the errors measured at introduction (linear 4e-5, layer norm
// 1.3e-4, softmax 1.6e-4, activations 1.2e-5, add 8e-7, embedding 0). Linear, add and
// embedding are linear in each input, so only the fp32 rounding of y shows; the others also
// carry the O(h^2) truncation error.
static const struct { double h, tol; } k_fd[ZT_OP_KIND_COUNT] = {
    [ZT_OP_LINEAR] = {1e-2, 5e-4},    [ZT_OP_LAYERNORM] = {1e-2, 2e-3}, [ZT_OP_SOFTMAX] = {1e-2, 2e-3},
    [ZT_OP_GELU] = {1e-2, 1e-3},      [ZT_OP_GELU_TANH] = {1e-2, 1e-3}, [ZT_OP_QUICKGELU] = {1e-2, 1e-3},
    [ZT_OP_ADD] = {1e-2, 1e-5},       [ZT_OP_EMBEDDING] = {1e-2, 1e-5},
};
enum { FD_ALL = 256, FD_PICK = 40 };  // tensors above FD_ALL elements: FD_PICK sampled ones

static int verbose(void) { return getenv("ZSMLC_TEST_VERBOSE") != NULL; }
static uint64_t name_seed(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

// L = sum(y * r) in double, from the CPU instance's current forward output.
static double loss(const zt_op_inst *o) {
    const float *y = o->out[0].data, *r = o->dy.data;
    double L = 0;
    for (int64_t i = 0, n = zs_numel(&o->out[0]); i < n; i++) L += (double)y[i] * r[i];
    return L;
}

static int all_finite(const float *p, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(p[i])) return 0;
    return 1;
}

// Indices of input `which` to check: all, or a deterministic sample (for embedding, half of
// it from rows the ids touch, where the gradient lives).
static int pick(const zt_op_inst *o, int which, int64_t *idx, uint64_t seed) {
    int64_t n = zs_numel(&o->in[which]);
    if (n <= FD_ALL) {
        for (int64_t i = 0; i < n; i++) idx[i] = i;
        return (int)n;
    }
    float u[2 * FD_PICK];
    zs_rng_uniform_host(u, 2 * FD_PICK, seed, 0);
    int k = 0;
    idx[k++] = 0;
    idx[k++] = n - 1;
    if (o->c->kind == ZT_OP_EMBEDDING) {
        const int32_t *ids = o->ids.data;
        int64_t nid = zs_numel(&o->ids), C = o->c->cols;
        for (int i = 0; i < FD_PICK / 2; i++)
            idx[k++] = (int64_t)ids[(int64_t)(u[i] * nid) % nid] * C + (int64_t)(u[FD_PICK + i] * C) % C;
    }
    while (k < FD_PICK) {
        idx[k] = (int64_t)(u[k] * (float)n) % n;
        k++;
    }
    return k;
}

static zt_result fd_case(const zt_op_case *c) {
    zt_op_inst o;
    uint64_t seed = name_seed(c->name);
    CHECK_OK(zt_op_alloc(&o, c, ZS_CPU, ZS_F32, 1));
    float *g0[ZT_MAXT] = {0}, *pre[ZT_MAXT] = {0};
    zt_result res = ZT_FAIL;
#define FAIL_IF(cond, ...)                                   \
    do {                                                     \
        if (cond) {                                          \
            zt_note(__FILE__, __LINE__, "%s: ", c->name);    \
            zt_note(__FILE__, __LINE__, __VA_ARGS__);        \
            goto done;                                       \
        }                                                    \
    } while (0)
#define OK_OR_FAIL(expr) FAIL_IF((expr) != ZS_OK, "%s: %s", #expr, zs_errmsg())
    char why[160];
    OK_OR_FAIL(zt_op_fill(&o, seed));
    OK_OR_FAIL(zt_op_forward(&o));
    for (int j = 0; j < o.nout; j++)
        FAIL_IF(!all_finite(o.out[j].data, zs_numel(&o.out[j])), "forward left %s not fully written", o.out_role[j]);
    // Analytic gradients from zero.
    OK_OR_FAIL(zt_op_backward(&o));
    for (int i = 0; i < o.nin; i++) {
        int64_t n = zs_numel(&o.din[i]);
        g0[i] = malloc((size_t)n * sizeof(float));
        pre[i] = malloc((size_t)n * sizeof(float));
        FAIL_IF(!g0[i] || !pre[i], "out of memory");
        memcpy(g0[i], o.din[i].data, (size_t)n * sizeof(float));
        FAIL_IF(!all_finite(g0[i], n), "%s not finite", o.din_role[i]);
    }
    // Accumulation: grads prefilled with P must end as P + g0.
    for (int i = 0; i < o.nin; i++) {
        int64_t n = zs_numel(&o.din[i]);
        zs_rng_uniform_host(pre[i], n, seed + 77 + (uint64_t)i, 0);
        for (int64_t k = 0; k < n; k++) pre[i][k] = 2 * pre[i][k] - 1;
        memcpy(o.din[i].data, pre[i], (size_t)n * sizeof(float));
    }
    OK_OR_FAIL(zt_op_backward(&o));
    for (int i = 0; i < o.nin; i++) {
        int64_t n = zs_numel(&o.din[i]);
        for (int64_t k = 0; k < n; k++) pre[i][k] += g0[i][k];
        double e = zt_rel_err(o.din[i].data, pre[i], n, 1e-6);
        FAIL_IF(e > 1e-6, "%s does not accumulate: rel err %.3g vs prefill + grad", o.din_role[i], e);
    }
    FAIL_IF(!zt_op_guards_ok(&o, why, sizeof why), "guard: %s", why);
    // Finite differences.
    double h = c->fam ? c->fam->fd_h : k_fd[c->kind].h, tol = c->fam ? c->fam->fd_tol : k_fd[c->kind].tol;
    for (int i = 0; i < o.nin; i++) {
        int64_t idx[FD_ALL > FD_PICK ? FD_ALL : FD_PICK];
        float got[FD_ALL > FD_PICK ? FD_ALL : FD_PICK], fd[FD_ALL > FD_PICK ? FD_ALL : FD_PICK];
        int m = pick(&o, i, idx, seed + 1000 + (uint64_t)i);
        float *x = o.in[i].data;
        for (int k = 0; k < m; k++) {
            float v = x[idx[k]];
            double step = h * (fabs(v) > 1 ? fabs(v) : 1);
            float xp = (float)(v + step), xm = (float)(v - step);
            x[idx[k]] = xp;
            OK_OR_FAIL(zt_op_forward(&o));
            double Lp = loss(&o);
            x[idx[k]] = xm;
            OK_OR_FAIL(zt_op_forward(&o));
            double Lm = loss(&o);
            x[idx[k]] = v;
            fd[k] = (float)((Lp - Lm) / ((double)xp - (double)xm));
            got[k] = g0[i][idx[k]];
        }
        double e = zt_rel_err(got, fd, m, 1e-4);
        if (verbose()) zt_note(__FILE__, __LINE__, "%s d%s: %d elements, fd rel err %.3g", c->name, o.in_role[i], m, e);
        FAIL_IF(!(e <= tol), "%s vs finite differences: rel err %.3g > %.3g over %d elements (h %.g)", o.din_role[i], e,
                tol, m, h);
    }
    OK_OR_FAIL(zt_op_forward(&o));
    FAIL_IF(!zt_op_guards_ok(&o, why, sizeof why), "guard: %s", why);
    res = ZT_PASS;
done:
    for (int i = 0; i < ZT_MAXT; i++) {
        free(g0[i]);
        free(pre[i]);
    }
    zt_op_free(&o);
    return res;
#undef OK_OR_FAIL
#undef FAIL_IF
}

static zt_result fd_kind(zt_op_kind k) {
    int n = 0;
    for (int i = 0; i < zt_op_ncases; i++) {
        const zt_op_case *c = &zt_op_cases[i];
        if (c->kind != k || !(c->flags & ZT_CASE_TEST)) continue;
        if (fd_case(c) != ZT_PASS) return ZT_FAIL;
        n++;
    }
    CHECK(n > 0, "no test cases for %s", zt_op_kind_name(k));
    return ZT_PASS;
}

zt_result zt_fd_family(const zt_op_family *f) {
    int n = 0;
    for (int i = 0; i < f->ncases; i++) {
        if (!(f->cases[i].flags & ZT_CASE_TEST)) continue;
        if (fd_case(&f->cases[i]) != ZT_PASS) return ZT_FAIL;
        n++;
    }
    CHECK(n > 0, "no test cases for %s", f->name);
    return ZT_PASS;
}

TEST(ops_fd_linear) { return fd_kind(ZT_OP_LINEAR); }
TEST(ops_fd_layernorm) { return fd_kind(ZT_OP_LAYERNORM); }
TEST(ops_fd_softmax) { return fd_kind(ZT_OP_SOFTMAX); }
TEST(ops_fd_gelu) { return fd_kind(ZT_OP_GELU); }
TEST(ops_fd_gelu_tanh) { return fd_kind(ZT_OP_GELU_TANH); }
TEST(ops_fd_quickgelu) { return fd_kind(ZT_OP_QUICKGELU); }
TEST(ops_fd_add) { return fd_kind(ZT_OP_ADD); }
TEST(ops_fd_embedding) { return fd_kind(ZT_OP_EMBEDDING); }

// ---- CUDA vs CPU ------------------------------------------------------------------------
// Inputs are rounded to the GPU dtype first, so the comparison measures the op's own
// error: F32 1e-5 (cuBLAS in fp32, no TF32); BF16 / F16 outputs carry one rounding to 8 / 11
// significant bits (2^-9 / 2^-11 relative) plus fp32-accumulation order differences.
static double gpu_tol(const zt_op_case *c, zs_dtype dt) {
    if (c->fam) return dt == ZS_F32 ? c->fam->tol_f32 : dt == ZS_BF16 ? c->fam->tol_bf16 : c->fam->tol_f16;
    return dt == ZS_F32 ? 1e-5 : dt == ZS_BF16 ? 2e-2 : 5e-3;
}

static zs_status round_to(zs_tensor *t, zs_dtype dt) {  // host F32 tensor, values rounded to dt
    if (dt == ZS_F32) return ZS_OK;
    int64_t n = zs_numel(t);
    uint16_t *tmp = malloc((size_t)n * 2 + 2);
    if (!tmp) return ZS_ERR(ZS_ENOMEM, "round_to");
    zs_status s = zs_convert(tmp, dt, t->data, ZS_F32, n);
    if (!s) s = zs_convert(t->data, ZS_F32, tmp, dt, n);
    free(tmp);
    return s;
}

static zt_result cmp_tensor(const char *what, const zs_tensor *gpu, const zs_tensor *cpu, double tol) {
    int64_t n = zs_numel(cpu);
    float *g = malloc((size_t)n * sizeof(float) + 4);
    CHECK(g, "oom");
    zs_status s = zt_to_host_f32(gpu, g);
    double e = s ? INFINITY : zt_rel_err(g, cpu->data, n, 1e-6);
    free(g);
    CHECK_OK(s);
    if (verbose()) zt_note(__FILE__, __LINE__, "%s: rel err %.3g", what, e);
    CHECK(e <= tol, "%s: CUDA vs CPU rel err %.3g > %.3g", what, e, tol);
    return ZT_PASS;
}

static zt_result gpu_case(const zt_op_case *c, zs_dtype dt) {
    zt_op_inst h, d;
    uint64_t seed = name_seed(c->name) + 5;
    char what[160], why[160];
    double tol = gpu_tol(c, dt);
    CHECK_OK(zt_op_alloc(&h, c, ZS_CPU, ZS_F32, 1));
    zs_status s = zt_op_alloc(&d, c, ZS_CUDA, dt, 1);
    if (s) zt_op_free(&h);
    CHECK_OK(s);
    zt_result r = ZT_FAIL;
#define STEP(expr)                                                                         \
    do {                                                                                   \
        if ((s = (expr)) != ZS_OK) {                                                       \
            zt_note(__FILE__, __LINE__, "%s %s: %s: %s", c->name, zs_dtype_name(dt), #expr, zs_errmsg()); \
            goto done;                                                                     \
        }                                                                                  \
    } while (0)
#define CMP(role_, g_, cpu_, tol_)                                                           \
    do {                                                                                     \
        snprintf(what, sizeof what, "%s %s %s", c->name, zs_dtype_name(dt), role_);           \
        if (cmp_tensor(what, g_, cpu_, tol_) != ZT_PASS) goto done;                          \
    } while (0)
    STEP(zt_op_fill(&h, seed));
    for (int i = 0; i < h.nin; i++) STEP(round_to(&h.in[i], dt));
    STEP(round_to(&h.dy, dt));
    for (int i = 0; i < h.nin; i++) STEP(zs_tensor_copy(&d.in[i], &h.in[i]));
    STEP(zs_tensor_copy(&d.dy, &h.dy));
    if (c->kind == ZT_OP_EMBEDDING) STEP(zs_tensor_copy(&d.ids, &h.ids));
    for (int i = 0; i < h.naux; i++) STEP(zs_tensor_copy(&d.aux[i], &h.aux[i]));
    STEP(zt_op_forward(&h));
    STEP(zt_op_forward(&d));
    STEP(zs_sync(ZS_CUDA));
    for (int j = 0; j < h.nout; j++) CMP(h.out_role[j], &d.out[j], &h.out[j], j && !c->fam ? 1e-5 : tol);
    // Backward onto the same (rounded) nonzero prefill on both sides: accumulation included.
    for (int i = 0; i < h.nin; i++) {
        STEP(zs_rng_uniform(&h.din[i], seed + 31 + (uint64_t)i, 0));
        STEP(round_to(&h.din[i], dt));
        STEP(zs_tensor_copy(&d.din[i], &h.din[i]));
    }
    STEP(zt_op_backward(&h));
    STEP(zt_op_backward(&d));
    STEP(zs_sync(ZS_CUDA));
    for (int i = 0; i < h.nin; i++) CMP(h.din_role[i], &d.din[i], &h.din[i], tol);
    if (!zt_op_guards_ok(&d, why, sizeof why)) {
        zt_note(__FILE__, __LINE__, "%s %s: CUDA guard: %s", c->name, zs_dtype_name(dt), why);
        goto done;
    }
    r = ZT_PASS;
done:
    zt_op_free(&h);
    zt_op_free(&d);
    return r;
#undef STEP
#undef CMP
}

static zt_result gpu_kind(zt_op_kind k) {
    const zs_dtype dts[3] = {ZS_F32, ZS_BF16, ZS_F16};
    for (int i = 0; i < zt_op_ncases; i++) {
        const zt_op_case *c = &zt_op_cases[i];
        if (c->kind != k || !(c->flags & ZT_CASE_TEST)) continue;
        for (int j = 0; j < 3; j++)
            if (gpu_case(c, dts[j]) != ZT_PASS) return ZT_FAIL;
    }
    return ZT_PASS;
}

zt_result zt_gpu_family(const zt_op_family *f) {
    const zs_dtype dts[3] = {ZS_F32, ZS_BF16, ZS_F16};
    for (int i = 0; i < f->ncases; i++) {
        if (!(f->cases[i].flags & ZT_CASE_TEST)) continue;
        for (int j = 0; j < 3; j++)
            if (gpu_case(&f->cases[i], dts[j]) != ZT_PASS) return ZT_FAIL;
    }
    return ZT_PASS;
}

GPU_TEST(ops_cuda_linear) { return gpu_kind(ZT_OP_LINEAR); }
GPU_TEST(ops_cuda_layernorm) { return gpu_kind(ZT_OP_LAYERNORM); }
GPU_TEST(ops_cuda_softmax) { return gpu_kind(ZT_OP_SOFTMAX); }
GPU_TEST(ops_cuda_gelu) { return gpu_kind(ZT_OP_GELU); }
GPU_TEST(ops_cuda_gelu_tanh) { return gpu_kind(ZT_OP_GELU_TANH); }
GPU_TEST(ops_cuda_quickgelu) { return gpu_kind(ZT_OP_QUICKGELU); }
GPU_TEST(ops_cuda_add) { return gpu_kind(ZT_OP_ADD); }
GPU_TEST(ops_cuda_embedding) { return gpu_kind(ZT_OP_EMBEDDING); }

// CUDA scatter-add is deterministic: two runs give identical bits (many repeated ids).
GPU_TEST(ops_cuda_embedding_bwd_deterministic) {
    const zt_op_case c = {"emb_det", ZT_OP_EMBEDDING, 1, 4096, 96, 13, 0, 0, 0, NULL, {0}};
    return zt_cuda_bwd_twice_same(&c);
}

// (GPU) forward + backward twice on identical inputs: the gradients must agree bit for bit
// (no float atomics anywhere in the backward).
zt_result zt_cuda_bwd_twice_same(const zt_op_case *c) {
    zt_op_inst d;
    CHECK_OK(zt_op_alloc(&d, c, ZS_CUDA, ZS_F32, 0));
    int64_t tot = 0;
    for (int i = 0; i < d.nin; i++) tot += zs_numel(&d.din[i]);
    float *a = malloc((size_t)tot * 8 + 8);
    zt_result r = ZT_FAIL;
    zs_status s = a ? ZS_OK : ZS_ERR(ZS_ENOMEM, "oom");
    if (!s) s = zt_op_fill(&d, 11);
    if (!s) s = zt_op_forward(&d);
    for (int pass = 0; pass < 2 && !s; pass++) {
        if (!s) s = zt_op_zero_grads(&d);
        if (!s) s = zt_op_backward(&d);
        float *q = a + pass * tot;
        for (int i = 0; i < d.nin && !s; i++) {
            s = zt_to_host_f32(&d.din[i], q);
            q += zs_numel(&d.din[i]);
        }
    }
    if (s) zt_note(__FILE__, __LINE__, "%s: %s", c->name, zs_errmsg());
    else if (memcmp(a, a + tot, (size_t)tot * 4)) zt_note(__FILE__, __LINE__, "%s: two backward runs differ", c->name);
    else r = ZT_PASS;
    free(a);
    zt_op_free(&d);
    return r;
}
