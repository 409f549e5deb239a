// Tests of the UNet / VAE ops (kernels/groupnorm.h, geglu.h, upsample.h, chanbias.h, timestep.h):
//   ops_fd_* / ops_cuda_*:  the generic family checks (tests/test_ops.c) over op_fam_unet.c
//                           (FD, accumulation, full writes, guards; CUDA vs CPU in
//                           F32 / BF16 / F16);
//   ops_groupnorm_null_grads: each gradient alone equals its value computed with the others;
//   ops_ref_unet:           CPU vs PyTorch / diffusers (tests/fixtures/unet_ops/unet_ops.safetensors
//                           from tools/fixtures/make_unet_ops.py) at 1e-5, timestep embedding
//                           included;
//   ops_errors_unet:        argument checks (chanbias included);
//   ops_cuda_timestep:      timestep embedding, CUDA vs CPU;
//   ops_cuda_unet_deterministic: two CUDA group-norm / resize backward runs, identical bits.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "kernels/chanbias.h"
#include "kernels/geglu.h"
#include "kernels/groupnorm.h"
#include "kernels/timestep.h"
#include "kernels/upsample.h"
#include "op_fam_unet.h"
#include "test.h"
#include "test_ops.h"
#include "weights/safetensors.h"

TEST(ops_fd_groupnorm) { return zt_fd_family(&zt_fam_groupnorm_fd); }
TEST(ops_fd_geglu) { return zt_fd_family(&zt_fam_geglu_fd); }
TEST(ops_fd_upsample) { return zt_fd_family(&zt_fam_upsample_fd); }
TEST(ops_fd_chanbias) { return zt_fd_family(&zt_fam_chanbias_fd); }
GPU_TEST(ops_cuda_groupnorm) { return zt_gpu_family(&zt_fam_groupnorm); }
GPU_TEST(ops_cuda_geglu) { return zt_gpu_family(&zt_fam_geglu); }
GPU_TEST(ops_cuda_upsample) { return zt_gpu_family(&zt_fam_upsample); }
GPU_TEST(ops_cuda_chanbias) { return zt_gpu_family(&zt_fam_chanbias); }

static int verbose(void) { return getenv("ZSMLC_TEST_VERBOSE") != NULL; }

// ---- group norm: gradients alone --------------------------------------------------------------
// dx, dw, db computed one at a time (the others NULL) equal the all-at-once values bit for bit.
TEST(ops_groupnorm_null_grads) {
    for (int k = 0; k < zt_fam_groupnorm_fd.ncases; k++) {
        const zt_op_case *c = &zt_fam_groupnorm_fd.cases[k];
        zt_op_inst o;
        CHECK_OK(zt_op_alloc(&o, c, ZS_CPU, ZS_F32, 1));
        zt_result r = ZT_FAIL;
        float *all[3] = {0};
        zs_status s = zt_op_fill(&o, 91);
        if (!s) s = zt_op_forward(&o);
        if (!s) s = zt_op_zero_grads(&o);
        if (!s) s = zt_op_backward(&o);
        for (int i = 0; i < 3 && !s; i++) {
            int64_t n = zs_numel(&o.din[i]);
            all[i] = malloc((size_t)n * sizeof(float));
            if (!all[i]) s = ZS_ERR(ZS_ENOMEM, "oom");
            else memcpy(all[i], o.din[i].data, (size_t)n * sizeof(float));
        }
        for (int i = 0; i < 3 && !s; i++) {
            s = zt_op_zero_grads(&o);
            zs_tensor *g[3] = {NULL, NULL, NULL};
            g[i] = &o.din[i];
            if (!s)
                s = zs_groupnorm_bwd(g[0], g[1], g[2], &o.dy, &o.in[0], &o.in[1], &o.in[2], &o.out[1], &o.out[2],
                                     (int)c->p[4], (int)c->p[5]);
            if (!s && memcmp(all[i], o.din[i].data, (size_t)zs_numel(&o.din[i]) * sizeof(float))) {
                zt_note(__FILE__, __LINE__, "%s: %s alone differs from the all-gradients run", c->name, o.din_role[i]);
                goto done;
            }
        }
        if (s) {
            zt_note(__FILE__, __LINE__, "%s: %s", c->name, zs_errmsg());
            goto done;
        }
        r = ZT_PASS;
    done:
        for (int i = 0; i < 3; i++) free(all[i]);
        zt_op_free(&o);
        if (r != ZT_PASS) return r;
    }
    return ZT_PASS;
}

// ---- argument checks ----------------------------------------------------------------------

TEST(ops_errors_unet) {
    static float buf[8192];
    float *p = buf;
    // group norm
    zs_tensor x = zs_tensor_make(p, ZS_F32, ZS_CPU, 4, (const int64_t[]){2, 6, 3, 3});
    zs_tensor y = zs_tensor_make(p + 1024, ZS_F32, ZS_CPU, 4, (const int64_t[]){2, 6, 3, 3});
    zs_tensor w = zs_tensor_make(p + 2048, ZS_F32, ZS_CPU, 1, (const int64_t[]){6});
    zs_tensor w5 = zs_tensor_make(p + 2048, ZS_F32, ZS_CPU, 1, (const int64_t[]){5});
    zs_tensor m = zs_tensor_make(p + 2100, ZS_F32, ZS_CPU, 2, (const int64_t[]){2, 3});
    zs_tensor r = zs_tensor_make(p + 2200, ZS_F32, ZS_CPU, 2, (const int64_t[]){2, 3});
    zs_tensor mbad = zs_tensor_make(p + 2100, ZS_F32, ZS_CPU, 1, (const int64_t[]){6});
    zs_tensor x1 = zs_tensor_make(p, ZS_F32, ZS_CPU, 1, (const int64_t[]){6});
    zs_tensor xh = zs_tensor_make(p, ZS_BF16, ZS_CPU, 4, (const int64_t[]){2, 6, 3, 3});
    for (int i = 0; i < 108; i++) p[i] = (float)(i % 7);
    for (int i = 0; i < 6; i++) p[2048 + i] = 1.0f;
    CHECK_OK(zs_groupnorm_fwd(&y, &m, &r, &x, &w, &w, 3, 1e-5f, 1));
    CHECK_OK(zs_groupnorm_fwd(&y, NULL, NULL, &x, &w, &w, 3, 1e-5f, 0));
    CHECK_ERR(zs_groupnorm_fwd(&y, &m, &r, &x, &w, &w, 4, 1e-5f, 0), ZS_EINVAL, "groups 4");
    CHECK_ERR(zs_groupnorm_fwd(&y, &m, &r, &x, &w, &w, 0, 1e-5f, 0), ZS_EINVAL, "groups 0");
    CHECK_ERR(zs_groupnorm_fwd(&y, &m, &r, &x, &w5, &w, 3, 1e-5f, 0), ZS_EINVAL, "w");
    CHECK_ERR(zs_groupnorm_fwd(&y, &m, &r, &x, &w, &w5, 3, 1e-5f, 0), ZS_EINVAL, "b");
    CHECK_ERR(zs_groupnorm_fwd(&y, &mbad, &r, &x, &w, &w, 3, 1e-5f, 0), ZS_EINVAL, "mean");
    CHECK_ERR(zs_groupnorm_fwd(&y, &m, &r, &x, &w, &w, 3, -1.0f, 0), ZS_EINVAL, "eps");
    CHECK_ERR(zs_groupnorm_fwd(&y, &m, &r, &x1, &w, &w, 3, 1e-5f, 0), ZS_EINVAL, "[N, C, *spatial]");
    CHECK_ERR(zs_groupnorm_fwd(&y, &m, &r, &xh, &w, &w, 3, 1e-5f, 0), ZS_EUNSUPPORTED, "F32 only");
    CHECK_ERR(zs_groupnorm_fwd(&w, &m, &r, &x, &w, &w, 3, 1e-5f, 0), ZS_EINVAL, "y");
    CHECK_OK(zs_groupnorm_bwd(&y, &w, &w, &y, &x, &w, NULL, &m, &r, 3, 0));
    CHECK_ERR(zs_groupnorm_bwd(&y, &w, &w, &y, &x, &w, NULL, &m, &r, 3, 1), ZS_EINVAL, "needed with silu");
    CHECK_ERR(zs_groupnorm_bwd(&y, &w, &w, &y, &x, &w, NULL, &mbad, &r, 3, 0), ZS_EINVAL, "mean");
    CHECK_ERR(zs_groupnorm_bwd(&y, &w5, NULL, &y, &x, &w, NULL, &m, &r, 3, 0), ZS_EINVAL, "dw");
    CHECK_ERR(zs_groupnorm_bwd(&y, NULL, NULL, &w, &x, &w, NULL, &m, &r, 3, 0), ZS_EINVAL, "dy");
    // GEGLU
    zs_tensor gx = zs_tensor_make(p, ZS_F32, ZS_CPU, 2, (const int64_t[]){3, 8});
    zs_tensor gy = zs_tensor_make(p + 1024, ZS_F32, ZS_CPU, 2, (const int64_t[]){3, 4});
    zs_tensor godd = zs_tensor_make(p, ZS_F32, ZS_CPU, 2, (const int64_t[]){3, 7});
    CHECK_OK(zs_geglu_fwd(&gy, &gx));
    CHECK_ERR(zs_geglu_fwd(&gx, &gx), ZS_EINVAL, "y");
    CHECK_ERR(zs_geglu_fwd(&gy, &godd), ZS_EINVAL, "even");
    CHECK_ERR(zs_geglu_bwd(&gx, &gx, &gx), ZS_EINVAL, "dy");
    CHECK_ERR(zs_geglu_bwd(&gy, &gy, &gx), ZS_EINVAL, "dx");
    CHECK_OK(zs_geglu_bwd(NULL, &gy, &gx));
    // nearest resize
    zs_tensor ux = zs_tensor_make(p, ZS_F32, ZS_CPU, 4, (const int64_t[]){1, 2, 3, 4});
    zs_tensor uy = zs_tensor_make(p + 1024, ZS_F32, ZS_CPU, 4, (const int64_t[]){1, 2, 7, 2});
    zs_tensor uyc = zs_tensor_make(p + 1024, ZS_F32, ZS_CPU, 4, (const int64_t[]){1, 3, 7, 2});
    zs_tensor uy0 = zs_tensor_make(p + 1024, ZS_F32, ZS_CPU, 4, (const int64_t[]){1, 2, 0, 2});
    zs_tensor u3 = zs_tensor_make(p, ZS_F32, ZS_CPU, 3, (const int64_t[]){2, 3, 4});
    CHECK_OK(zs_upsample_nearest_fwd(&uy, &ux));
    CHECK_OK(zs_upsample_nearest_bwd(&ux, &uy));
    CHECK_ERR(zs_upsample_nearest_fwd(&uyc, &ux), ZS_EINVAL, "y");
    CHECK_ERR(zs_upsample_nearest_fwd(&uy0, &ux), ZS_EINVAL, "empty");
    CHECK_ERR(zs_upsample_nearest_fwd(&uy, &u3), ZS_EINVAL, "[N, C, H, W]");
    CHECK_ERR(zs_upsample_nearest_bwd(&ux, &uyc), ZS_EINVAL, "dy");
    // per-(sample, channel) bias
    zs_tensor cbx = zs_tensor_make(p, ZS_F32, ZS_CPU, 4, (const int64_t[]){2, 3, 2, 2});
    zs_tensor cbb = zs_tensor_make(p + 2048, ZS_F32, ZS_CPU, 2, (const int64_t[]){2, 3});
    zs_tensor cbb1 = zs_tensor_make(p + 2048, ZS_F32, ZS_CPU, 1, (const int64_t[]){3});
    zs_tensor cby = zs_tensor_make(p + 1024, ZS_F32, ZS_CPU, 4, (const int64_t[]){2, 3, 2, 1});
    CHECK_OK(zs_chanbias_fwd(&cbx, &cbx, &cbb));
    CHECK_OK(zs_chanbias_bwd(NULL, &cbb, &cbx));
    CHECK_ERR(zs_chanbias_fwd(&cbx, &cbx, &cbb1), ZS_EINVAL, "b");
    CHECK_ERR(zs_chanbias_fwd(&cby, &cbx, &cbb), ZS_EINVAL, "y");
    CHECK_ERR(zs_chanbias_fwd(&cbx, &x1, &cbb), ZS_EINVAL, "[N, C, *spatial]");
    CHECK_ERR(zs_chanbias_bwd(&cby, NULL, &cbx), ZS_EINVAL, "dx");
    CHECK_ERR(zs_chanbias_bwd(NULL, &cbb1, &cbx), ZS_EINVAL, "db");
    // timestep embedding
    zs_tensor t = zs_tensor_make(p, ZS_F32, ZS_CPU, 1, (const int64_t[]){3});
    zs_tensor e = zs_tensor_make(p + 1024, ZS_F32, ZS_CPU, 2, (const int64_t[]){3, 8});
    zs_tensor e1 = zs_tensor_make(p + 1024, ZS_F32, ZS_CPU, 2, (const int64_t[]){3, 1});
    zs_tensor e2 = zs_tensor_make(p + 1024, ZS_F32, ZS_CPU, 2, (const int64_t[]){3, 2});
    zs_tensor eb = zs_tensor_make(p + 1024, ZS_F32, ZS_CPU, 2, (const int64_t[]){4, 8});
    zs_tensor ti = zs_tensor_make(p, ZS_I32, ZS_CPU, 1, (const int64_t[]){3});
    CHECK_OK(zs_timestep_embedding(&e, &t, 1, 0, 1, 10000));
    CHECK_OK(zs_timestep_embedding(&e2, &t, 1, 0, 1, 10000));
    CHECK_ERR(zs_timestep_embedding(&e1, &t, 1, 0, 1, 10000), ZS_EINVAL, "shift");
    CHECK_ERR(zs_timestep_embedding(&e2, &t, 1, 1, 1, 10000), ZS_EINVAL, "shift");
    CHECK_ERR(zs_timestep_embedding(&eb, &t, 1, 0, 1, 10000), ZS_EINVAL, "t");
    CHECK_ERR(zs_timestep_embedding(&e, &ti, 1, 0, 1, 10000), ZS_EINVAL, "t");
    CHECK_ERR(zs_timestep_embedding(&e, &t, 1, 0, 1, 0), ZS_EINVAL, "max_period");
    CHECK_ERR(zs_timestep_embedding(&t, &t, 1, 0, 1, 10000), ZS_EINVAL, "[B, dim]");
    // empty batches: nothing to do
    zs_tensor x0 = zs_tensor_make(p, ZS_F32, ZS_CPU, 4, (const int64_t[]){0, 6, 3, 3});
    zs_tensor m0 = zs_tensor_make(p, ZS_F32, ZS_CPU, 2, (const int64_t[]){0, 3});
    CHECK_OK(zs_groupnorm_fwd(&x0, &m0, &m0, &x0, &w, &w, 3, 1e-5f, 1));
    CHECK_OK(zs_groupnorm_bwd(&x0, &w, &w, &x0, &x0, &w, &w, &m0, &m0, 3, 1));
    return ZT_PASS;
}

// ---- PyTorch / diffusers parity ---------------------------------------------------------------
// Must match make_unet_ops.py's cases.
enum { REF_GN, REF_GEGLU, REF_UP, REF_TS };
static const struct { const char *name; int kind; } k_ref[] = {
    {"gn_4d", REF_GN},     {"gn_silu_4d", REF_GN}, {"gn_2d", REF_GN},     {"gn_silu_3d", REF_GN},
    {"gn_silu_g32", REF_GN}, {"geglu_a", REF_GEGLU}, {"geglu_b", REF_GEGLU}, {"up_2x", REF_UP},
    {"up_35_70", REF_UP},  {"up_9_18", REF_UP},    {"up_odd", REF_UP},    {"up_down", REF_UP},
    {"up_560_224", REF_UP}, {"up_13_560", REF_UP}, {"ts_sd", REF_TS},     {"ts_odd", REF_TS},
    {"ts_scale", REF_TS},
};
#define REF_TOL 1e-5

static int read_i32(const zs_st *st, const char *cs, const char *role, int32_t *v, int n) {
    const zs_st_entry *e = zt_ref_find(st, cs, role);
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
    const zs_st_entry *x = zt_ref_find(st, cs, "x"), *y = zt_ref_find(st, cs, "y");
    if (!x || !y) return 0;
    if (kind == REF_GN) {
        const zs_st_entry *e = zt_ref_find(st, cs, "eps");
        int32_t v[2];
        if (x->ndim < 2 || x->ndim > 4 || !e || zs_st_read_f32(st, e->name, &c->eps, 1) || !read_i32(st, cs, "cfg", v, 2))
            return 0;
        c->fam = &zt_fam_groupnorm;
        c->p[0] = x->shape[0], c->p[1] = x->shape[1], c->p[4] = v[0], c->p[5] = v[1];
        if (x->ndim > 2) c->p[2] = x->shape[2];
        if (x->ndim > 3) c->p[3] = x->shape[3];
    } else if (kind == REF_GEGLU) {
        if (x->ndim != 3) return 0;
        c->fam = &zt_fam_geglu;
        c->p[0] = x->shape[0], c->p[1] = x->shape[1], c->p[2] = x->shape[2] / 2;
    } else {
        if (x->ndim != 4 || y->ndim != 4) return 0;
        c->fam = &zt_fam_upsample;
        const int64_t p[6] = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], y->shape[2], y->shape[3]};
        memcpy(c->p, p, sizeof p);
    }
    return 1;
}

static zt_result ref_ts(const zs_st *st, const char *cs) {
    const zs_st_entry *te = zt_ref_find(st, cs, "t");
    int32_t cfg[2];
    float par[3];
    CHECK(te && te->ndim == 1 && read_i32(st, cs, "cfg", cfg, 2) && zt_ref_find(st, cs, "par") &&
              !zs_st_read_f32(st, zt_ref_find(st, cs, "par")->name, par, 3),
          "unet_ops fixture: timestep case %s missing or malformed", cs);
    const int64_t B = te->shape[0], dim = cfg[0];
    float *buf = malloc((size_t)(B + B * dim) * sizeof(float));
    CHECK(buf, "oom");
    zs_tensor t = zs_tensor_make(buf, ZS_F32, ZS_CPU, 1, &B);
    zs_tensor e = zs_tensor_make(buf + B, ZS_F32, ZS_CPU, 2, (const int64_t[]){B, dim});
    zs_status s = zt_ref_load(st, cs, "t", &t);
    if (!s) s = zs_timestep_embedding(&e, &t, cfg[1], par[0], par[1], par[2]);
    zt_result r = ZT_FAIL;
    if (s) zt_note(__FILE__, __LINE__, "%s: %s", cs, zs_errmsg());
    else r = zt_ref_cmp(st, cs, "y", &e, REF_TOL);
    free(buf);
    return r;
}

static zt_result ref_one(const zs_st *st, const char *cs, int kind) {
    if (kind == REF_TS) return ref_ts(st, cs);
    zt_op_case c;
    CHECK(ref_case_of(st, cs, kind, &c), "unet_ops fixture: case %s missing or malformed", cs);
    return zt_ref_run(st, &c, 1, REF_TOL);
}

TEST(ops_ref_unet) {
    char path[512];
    zs_st *st = NULL;
    zs_status s = zs_st_open(&st, zt_fixture_path("unet_ops/unet_ops.safetensors", path, sizeof path));
    CHECK(s == ZS_OK, "%s (regenerate with `make fixtures`)", zs_errmsg());
    zt_result r = ZT_PASS;
    for (size_t i = 0; i < sizeof k_ref / sizeof k_ref[0] && r == ZT_PASS; i++) r = ref_one(st, k_ref[i].name, k_ref[i].kind);
    zs_st_close(st);
    return r;
}

// ---- timestep embedding on CUDA -----------------------------------------------------------------
// CPU vs CUDA on the SD timesteps 0..999 (and fractional ones): F32 1e-5 (sinf / cosf and
// expf of the same fp32 arguments, a few ulp apart on the device); BF16 / F16: one rounding.
static zt_result ts_gpu_case(int64_t B, int64_t dim, int flip, float shift, float scale, float P, zs_dtype dt) {
    float *h = malloc((size_t)(B + 2 * B * dim) * sizeof(float));
    CHECK(h, "oom");
    float *he = h + B, *hg = he + B * dim;
    for (int64_t b = 0; b < B; b++) h[b] = (float)(b * 999 / (B > 1 ? B - 1 : 1)) + (b % 3 == 1 ? 0.5f : 0.0f);
    zs_tensor t = zs_tensor_make(h, ZS_F32, ZS_CPU, 1, &B);
    zs_tensor e = zs_tensor_make(he, ZS_F32, ZS_CPU, 2, (const int64_t[]){B, dim});
    zs_tensor dtt = zs_tensor_make(NULL, ZS_F32, ZS_CUDA, 1, &B);
    zs_tensor de = zs_tensor_make(NULL, dt, ZS_CUDA, 2, (const int64_t[]){B, dim});
    zt_result r = ZT_FAIL;
    zs_status s = zs_malloc(&dtt.data, (size_t)B * 4, ZS_CUDA, "t");
    if (!s) s = zs_malloc(&de.data, (size_t)(B * dim) * 4, ZS_CUDA, "emb");
    if (!s) s = zs_tensor_copy(&dtt, &t);
    if (!s) s = zs_timestep_embedding(&e, &t, flip, shift, scale, P);
    if (!s) s = zs_timestep_embedding(&de, &dtt, flip, shift, scale, P);
    if (!s) s = zt_to_host_f32(&de, hg);
    if (s) {
        zt_note(__FILE__, __LINE__, "timestep B %lld dim %lld: %s", (long long)B, (long long)dim, zs_errmsg());
    } else {
        const double tol = dt == ZS_F32 ? 1e-5 : dt == ZS_BF16 ? 1e-2 : 2e-3;
        double err = zt_rel_err(hg, he, B * dim, 1e-6);
        if (verbose()) zt_note(__FILE__, __LINE__, "timestep dim %lld %s: rel err %.3g", (long long)dim, zs_dtype_name(dt), err);
        if (err <= tol) r = ZT_PASS;
        else zt_note(__FILE__, __LINE__, "timestep dim %lld %s: CUDA vs CPU rel err %.3g > %g", (long long)dim,
                     zs_dtype_name(dt), err, tol);
    }
    zs_free(dtt.data, ZS_CUDA);
    zs_free(de.data, ZS_CUDA);
    free(h);
    return r;
}

GPU_TEST(ops_cuda_timestep) {
    const zs_dtype dts[3] = {ZS_F32, ZS_BF16, ZS_F16};
    for (int j = 0; j < 3; j++) {
        if (ts_gpu_case(1000, 320, 1, 0, 1, 10000, dts[j]) != ZT_PASS) return ZT_FAIL;
        if (ts_gpu_case(7, 1281, 0, 1, 1, 10000, dts[j]) != ZT_PASS) return ZT_FAIL;
        if (ts_gpu_case(2, 8, 1, 0, 2, 100, dts[j]) != ZT_PASS) return ZT_FAIL;
    }
    return ZT_PASS;
}

// ---- CUDA determinism ---------------------------------------------------------------------
GPU_TEST(ops_cuda_unet_deterministic) {
    static const zt_op_case cs[] = {
        ZT_GN_CASE("det_gn_silu_4x320x64x64", ZT_CASE_TEST, 4, 320, 64, 64, 32, 1, 1e-5f),
        ZT_UP_CASE("det_up_2x640x35_to_70", ZT_CASE_TEST, 2, 640, 35, 35, 70, 70),
    };
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        if (zt_cuda_bwd_twice_same(&cs[i]) != ZT_PASS) return ZT_FAIL;
    return ZT_PASS;
}
