// Tests of the convolution-side ops (kernels/conv.h) and the CNN activations ReLU / SiLU:
//   ops_fd_* / ops_cuda_*: the generic family checks (tests/test_ops.c) over op_fam_conv.c;
//   ops_conv2d_direct:     CPU forward and backward vs a direct double-precision loop,
//                          including a case large enough to split the column buffer into
//                          chunks mid-row;
//   ops_ref_conv:          CPU vs PyTorch (tests/fixtures/conv/conv.safetensors from
//                          tools/fixtures/make_conv.py, float64 references) at 1e-5;
//   ops_errors_conv:       argument checks;
//   ops_cuda_conv_deterministic: two CUDA backward runs give identical bits.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "kernels/conv.h"
#include "kernels/ops.h"
#include "op_fam_conv.h"
#include "test.h"
#include "test_ops.h"
#include "weights/safetensors.h"

TEST(ops_fd_conv2d) { return zt_fd_family(&zt_fam_conv2d_fd); }
TEST(ops_fd_batchnorm) { return zt_fd_family(&zt_fam_batchnorm_fd); }
TEST(ops_fd_avgpool) { return zt_fd_family(&zt_fam_avgpool_fd); }
TEST(ops_fd_relu_silu) { return zt_fd_family(&zt_fam_relu_silu_fd); }
GPU_TEST(ops_cuda_conv2d) { return zt_gpu_family(&zt_fam_conv2d); }
GPU_TEST(ops_cuda_batchnorm) { return zt_gpu_family(&zt_fam_batchnorm); }
GPU_TEST(ops_cuda_avgpool) { return zt_gpu_family(&zt_fam_avgpool); }
GPU_TEST(ops_cuda_relu_silu) { return zt_gpu_family(&zt_fam_relu_silu); }

static int verbose(void) { return getenv("ZSMLC_TEST_VERBOSE") != NULL; }

// ---- direct reference ---------------------------------------------------------------------
// y, dx, dw, db of one conv case from the instance's (CPU) inputs and dy, in double.
static void conv_direct(const zt_op_inst *o, double *y, double *dx, double *dw, double *db) {
    const zt_op_case *c = o->c;
    const int64_t N = c->p[0], Cin = c->p[1], H = c->p[2], W = c->p[3], Cout = c->p[4], KH = c->p[5], KW = c->p[6];
    const int64_t G = c->p[7], Cig = Cin / G, Cog = Cout / G, sh = c->rows, sw = c->cols, ph = c->out, pw = c->batch;
    const int64_t Ho = o->out[0].shape[2], Wo = o->out[0].shape[3];
    const float *x = o->in[0].data, *w = o->in[1].data, *b = c->bias ? o->in[2].data : NULL, *dy = o->dy.data;
    memset(dx, 0, sizeof(double) * (size_t)(N * Cin * H * W));
    memset(dw, 0, sizeof(double) * (size_t)(Cout * Cig * KH * KW));
    memset(db, 0, sizeof(double) * (size_t)Cout);
    for (int64_t n = 0; n < N; n++)
        for (int64_t co = 0; co < Cout; co++) {
            const int64_t gi = co / Cog;
            for (int64_t oh = 0; oh < Ho; oh++)
                for (int64_t ow = 0; ow < Wo; ow++) {
                    const int64_t yi = ((n * Cout + co) * Ho + oh) * Wo + ow;
                    double acc = b ? b[co] : 0, d = dy[yi];
                    db[co] += d;
                    for (int64_t ci = 0; ci < Cig; ci++)
                        for (int64_t kh = 0; kh < KH; kh++)
                            for (int64_t kw = 0; kw < KW; kw++) {
                                const int64_t ih = oh * sh - ph + kh, iw = ow * sw - pw + kw;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                const int64_t xi = ((n * Cin + gi * Cig + ci) * H + ih) * W + iw;
                                const int64_t wi = ((co * Cig + ci) * KH + kh) * KW + kw;
                                acc += (double)x[xi] * w[wi];
                                dx[xi] += d * w[wi];
                                dw[wi] += d * x[xi];
                            }
                    y[yi] = acc;
                }
        }
}

static double rel_err_d(const float *got, const double *ref, int64_t n) {
    double e = 0, r = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        e += d * d;
        r += ref[i] * ref[i];
        if (!isfinite(got[i])) return INFINITY;
    }
    return sqrt(e) / fmax(sqrt(r), 1e-6);
}

static zt_result direct_case(const zt_op_case *c) {
    zt_op_inst o;
    CHECK_OK(zt_op_alloc(&o, c, ZS_CPU, ZS_F32, 1));
    const int64_t ny = zs_numel(&o.out[0]), nx = zs_numel(&o.in[0]), nw = zs_numel(&o.in[1]);
    double *y = malloc(sizeof(double) * (size_t)(ny + nx + nw + c->p[4]));
    zt_result r = ZT_FAIL;
    char why[160];
    if (!y) goto done;
    double *dx = y + ny, *dw = dx + nx, *db = dw + nw;
    if (zt_op_fill(&o, 77) || zt_op_forward(&o) || zt_op_backward(&o)) {
        zt_note(__FILE__, __LINE__, "%s: %s", c->name, zs_errmsg());
        goto done;
    }
    conv_direct(&o, y, dx, dw, db);
    const struct { const char *what; const float *got; const double *ref; int64_t n; } cmp[4] = {
        {"y", o.out[0].data, y, ny}, {"dx", o.din[0].data, dx, nx}, {"dw", o.din[1].data, dw, nw},
        {"db", c->bias ? o.din[2].data : NULL, db, c->p[4]}};
    for (int i = 0; i < 4; i++) {
        if (!cmp[i].got) continue;
        double e = rel_err_d(cmp[i].got, cmp[i].ref, cmp[i].n);
        if (verbose()) zt_note(__FILE__, __LINE__, "%s %s: rel err %.3g vs direct", c->name, cmp[i].what, e);
        if (!(e <= 1e-5)) {
            zt_note(__FILE__, __LINE__, "%s %s: rel err %.3g vs the direct double loop > 1e-5", c->name, cmp[i].what, e);
            goto done;
        }
    }
    if (!zt_op_guards_ok(&o, why, sizeof why)) {
        zt_note(__FILE__, __LINE__, "%s: guard: %s", c->name, why);
        goto done;
    }
    r = ZT_PASS;
done:
    free(y);
    zt_op_free(&o);
    return r;
}

// Every finite-difference case, plus two whose column buffers (576 rows x 9215 positions,
// over the 4 Mi-float cap) split into chunks that end mid output row.
TEST(ops_conv2d_direct) {
    for (int i = 0; i < zt_fam_conv2d_fd.ncases; i++)
        if (direct_case(&zt_fam_conv2d_fd.cases[i]) != ZT_PASS) return ZT_FAIL;
    static const zt_op_case big[] = {
        ZT_CONV_CASE("conv2d_chunked_97x95", ZT_CASE_TEST, 1, 64, 97, 95, 8, 3, 3, 1, 1, 1, 1, 1, 1),
        ZT_CONV_CASE("conv2d_chunked_g2_s2", ZT_CASE_TEST, 1, 128, 193, 191, 4, 3, 3, 2, 2, 1, 1, 2, 0),
    };
    for (int i = 0; i < 2; i++)
        if (direct_case(&big[i]) != ZT_PASS) return ZT_FAIL;
    return ZT_PASS;
}

// ---- argument checks ----------------------------------------------------------------------

TEST(ops_errors_conv) {
    static float buf[4096];
    zs_tensor x = zs_tensor_make(buf, ZS_F32, ZS_CPU, 4, (const int64_t[]){1, 4, 5, 5});
    zs_tensor w = zs_tensor_make(buf, ZS_F32, ZS_CPU, 4, (const int64_t[]){6, 2, 3, 3});
    zs_tensor b = zs_tensor_make(buf, ZS_F32, ZS_CPU, 1, (const int64_t[]){6});
    zs_tensor y = zs_tensor_make(buf, ZS_F32, ZS_CPU, 4, (const int64_t[]){1, 6, 5, 5});
    zs_tensor ybad = zs_tensor_make(buf, ZS_F32, ZS_CPU, 4, (const int64_t[]){1, 6, 3, 3});
    zs_tensor xh = zs_tensor_make(buf, ZS_BF16, ZS_CPU, 4, (const int64_t[]){1, 4, 5, 5});
    zs_conv2d_params p = {1, 1, 1, 1, 2};
    CHECK_OK(zs_conv2d_fwd(&y, &x, &w, &b, &p));
    CHECK_ERR(zs_conv2d_fwd(&ybad, &x, &w, &b, &p), ZS_EINVAL, "y");
    CHECK_ERR(zs_conv2d_fwd(&y, &xh, &w, &b, &p), ZS_EUNSUPPORTED, "F32 only");
    zs_conv2d_params p1 = {1, 1, 1, 1, 1};
    CHECK_ERR(zs_conv2d_fwd(&y, &x, &w, &b, &p1), ZS_EINVAL, "groups 1");
    zs_conv2d_params p3 = {1, 1, 1, 1, 3};
    CHECK_ERR(zs_conv2d_fwd(&y, &x, &w, &b, &p3), ZS_EINVAL, "groups 3");
    zs_conv2d_params p0 = {0, 1, 1, 1, 2};
    CHECK_ERR(zs_conv2d_fwd(&y, &x, &w, &b, &p0), ZS_EINVAL, "stride");
    CHECK_ERR(zs_conv2d_fwd(&y, &x, &w, &b, NULL), ZS_EINVAL, "params");
    zs_tensor wbig = zs_tensor_make(buf, ZS_F32, ZS_CPU, 4, (const int64_t[]){6, 2, 9, 3});
    CHECK_ERR(zs_conv2d_fwd(&y, &x, &wbig, &b, &p), ZS_EINVAL, "larger than the padded input");
    zs_tensor bbad = zs_tensor_make(buf, ZS_F32, ZS_CPU, 1, (const int64_t[]){5});
    CHECK_ERR(zs_conv2d_fwd(&y, &x, &w, &bbad, &p), ZS_EINVAL, "b");
    CHECK_ERR(zs_conv2d_bwd(&x, &w, &bbad, &y, &x, &w, &p), ZS_EINVAL, "db");
    CHECK_ERR(zs_conv2d_bwd(&x, &w, NULL, &ybad, &x, &w, &p), ZS_EINVAL, "dy");
    zs_tensor x3 = zs_tensor_make(buf, ZS_F32, ZS_CPU, 3, (const int64_t[]){4, 5, 5});
    CHECK_ERR(zs_conv2d_fwd(&y, &x3, &w, &b, &p), ZS_EINVAL, "x");
    // batch norm
    zs_tensor g4 = zs_tensor_make(buf, ZS_F32, ZS_CPU, 1, (const int64_t[]){4});
    zs_tensor m4 = zs_tensor_make(buf + 64, ZS_F32, ZS_CPU, 1, (const int64_t[]){4});
    zs_tensor v4 = zs_tensor_make(buf + 128, ZS_F32, ZS_CPU, 1, (const int64_t[]){4});
    zs_tensor v4h = zs_tensor_make(buf + 128, ZS_BF16, ZS_CPU, 1, (const int64_t[]){4});
    zs_tensor y4 = zs_tensor_make(buf + 1024, ZS_F32, ZS_CPU, 4, (const int64_t[]){1, 4, 5, 5});
    for (int i = 0; i < 4; i++) buf[128 + i] = 1.0f;
    CHECK_OK(zs_batchnorm_fwd(&y4, &x, &g4, &g4, &m4, &v4, 1e-5f));
    CHECK_ERR(zs_batchnorm_fwd(&y4, &x, &g4, &g4, &m4, &v4h, 1e-5f), ZS_EINVAL, "var");
    CHECK_ERR(zs_batchnorm_fwd(&y4, &x, &b, &g4, &m4, &v4, 1e-5f), ZS_EINVAL, "g");
    CHECK_ERR(zs_batchnorm_fwd(&y4, &x, &g4, &g4, &m4, &v4, -1.0f), ZS_EINVAL, "eps");
    CHECK_ERR(zs_batchnorm_fwd(&y, &x, &g4, &g4, &m4, &v4, 1e-5f), ZS_EINVAL, "y");
    CHECK_ERR(zs_batchnorm_bwd(&y4, &g4, &b, &y4, &x, &g4, &m4, &v4, 1e-5f), ZS_EINVAL, "db");
    // pooling
    zs_tensor yp = zs_tensor_make(buf + 1024, ZS_F32, ZS_CPU, 4, (const int64_t[]){1, 4, 2, 2});
    CHECK_OK(zs_avgpool2d_fwd(&yp, &x, 2, 2));
    CHECK_ERR(zs_avgpool2d_fwd(&yp, &x, 2, 1), ZS_EINVAL, "y");
    CHECK_ERR(zs_avgpool2d_fwd(&yp, &x, 6, 6), ZS_EINVAL, "window");
    CHECK_ERR(zs_avgpool2d_fwd(&yp, &x, 0, 2), ZS_EINVAL, "window");
    CHECK_ERR(zs_avgpool2d_bwd(&x, &y, 2, 2), ZS_EINVAL, "dy");
    // activations: the new kinds have names; an unknown one is still rejected
    CHECK(!strcmp(zs_act_name(ZS_ACT_RELU), "relu") && !strcmp(zs_act_name(ZS_ACT_SILU), "silu"), "act names");
    // empty batch: nothing to do
    zs_tensor x0 = zs_tensor_make(buf, ZS_F32, ZS_CPU, 4, (const int64_t[]){0, 4, 5, 5});
    zs_tensor y0 = zs_tensor_make(buf, ZS_F32, ZS_CPU, 4, (const int64_t[]){0, 6, 5, 5});
    CHECK_OK(zs_conv2d_fwd(&y0, &x0, &w, &b, &p));
    CHECK_OK(zs_conv2d_bwd(&x0, &w, &b, &y0, &x0, &w, &p));
    return ZT_PASS;
}

// ---- PyTorch parity -----------------------------------------------------------------------
// Must match make_conv.py's cases. cfg: conv [stride_h, stride_w, pad_h, pad_w, groups],
// avgpool [k, s] (I32 "<case>.cfg"); batch norm: F32 "<case>.eps".
enum { REF_CONV, REF_BN, REF_POOL, REF_RELU, REF_SILU };
static const struct { const char *name; int kind; } k_ref[] = {
    {"conv_basic", REF_CONV},    {"conv_s2_odd", REF_CONV}, {"conv_groups", REF_CONV}, {"conv_1x1", REF_CONV},
    {"conv_patch", REF_CONV},    {"conv_rect", REF_CONV},   {"conv_nonsquare", REF_CONV},
    {"bn_4d", REF_BN},           {"bn_2d", REF_BN},         {"pool_k2", REF_POOL},     {"pool_k3", REF_POOL},
    {"pool_k3s2", REF_POOL},     {"relu", REF_RELU},        {"silu", REF_SILU},
};
#define REF_TOL 1e-5

static int read_cfg(const zs_st *st, const char *cs, int32_t *v, int n) {
    const zs_st_entry *e = zt_ref_find(st, cs, "cfg");
    if (!e || e->dtype != ZS_I32 || zs_st_numel(e) != n || !e->data) return 0;
    memcpy(v, e->data, sizeof(int32_t) * (size_t)n);
    return 1;
}

// The family case of fixture case cs (sizes from its tensors' shapes).
static int ref_case_of(const zs_st *st, const char *cs, int kind, zt_op_case *c) {
    memset(c, 0, sizeof *c);
    c->name = cs;
    c->kind = ZT_OP_FAMILY;
    c->flags = ZT_CASE_TEST;
    const zs_st_entry *x = zt_ref_find(st, cs, "x");
    if (!x) return 0;
    if (kind == REF_CONV) {
        const zs_st_entry *w = zt_ref_find(st, cs, "w");
        int32_t v[5];
        if (x->ndim != 4 || !w || w->ndim != 4 || !read_cfg(st, cs, v, 5)) return 0;
        c->fam = &zt_fam_conv2d;
        c->rows = v[0], c->cols = v[1], c->out = v[2], c->batch = v[3], c->bias = zt_ref_find(st, cs, "b") != NULL;
        const int64_t p[8] = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], w->shape[0], w->shape[2], w->shape[3], v[4]};
        memcpy(c->p, p, sizeof p);
    } else if (kind == REF_BN) {
        const zs_st_entry *e = zt_ref_find(st, cs, "eps");
        if ((x->ndim != 2 && x->ndim != 4) || !e || zs_st_read_f32(st, e->name, &c->eps, 1)) return 0;
        c->fam = &zt_fam_batchnorm;
        c->p[0] = x->shape[0], c->p[1] = x->shape[1];
        if (x->ndim == 4) c->p[2] = x->shape[2], c->p[3] = x->shape[3];
    } else if (kind == REF_POOL) {
        int32_t v[2];
        if (x->ndim != 4 || !read_cfg(st, cs, v, 2)) return 0;
        c->fam = &zt_fam_avgpool;
        const int64_t p[6] = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], v[0], v[1]};
        memcpy(c->p, p, sizeof p);
    } else {
        if (x->ndim != 4) return 0;
        c->fam = &zt_fam_relu_silu;
        const int64_t p[5] = {kind == REF_RELU ? ZS_ACT_RELU : ZS_ACT_SILU, x->shape[0], x->shape[1], x->shape[2],
                              x->shape[3]};
        memcpy(c->p, p, sizeof p);
    }
    return 1;
}

static zt_result ref_one(const zs_st *st, const char *cs, int kind) {
    zt_op_case c;
    CHECK(ref_case_of(st, cs, kind, &c), "conv fixture: case %s missing or malformed", cs);
    return zt_ref_run(st, &c, 1, REF_TOL);
}

TEST(ops_ref_conv) {
    char path[512];
    zs_st *st = NULL;
    zs_status s = zs_st_open(&st, zt_fixture_path("conv/conv.safetensors", path, sizeof path));
    CHECK(s == ZS_OK, "%s (regenerate with `make fixtures`)", zs_errmsg());
    zt_result r = ZT_PASS;
    for (size_t i = 0; i < sizeof k_ref / sizeof k_ref[0] && r == ZT_PASS; i++) r = ref_one(st, k_ref[i].name, k_ref[i].kind);
    zs_st_close(st);
    return r;
}

// ---- CUDA determinism ---------------------------------------------------------------------
// Backward twice from zero: identical bits (deterministic cuDNN algorithms, channel sums
// without atomics).
GPU_TEST(ops_cuda_conv_deterministic) {
    static const zt_op_case cs[] = {
        ZT_CONV_CASE("det_conv_3x3_64_56", ZT_CASE_TEST, 4, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1, 1),
        ZT_CONV_CASE("det_conv_patch32", ZT_CASE_TEST, 8, 3, 224, 224, 768, 32, 32, 32, 32, 0, 0, 1, 1),
        ZT_BN_CASE("det_bn_8x256x56", ZT_CASE_TEST, 8, 256, 56, 56, 1e-5f),
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        if (zt_cuda_bwd_twice_same(&cs[i]) != ZT_PASS) return ZT_FAIL;
    CHECK(zs_conv2d_cuda_nondeterministic_plans() == 0, "%d conv backward plans took a non-deterministic algorithm",
          zs_conv2d_cuda_nondeterministic_plans());
    return ZT_PASS;
}
