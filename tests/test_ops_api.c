// Op API contracts: argument errors (code and message), NULL gradients, the built-in C GEMM.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "engine/rng.h"
#include "kernels/ops.h"
#include "test.h"

// Tensor headers over a dummy buffer: every call below must fail its checks before any
// element is touched.
static float g_dummy[4];
static zs_tensor tn(zs_dtype dt, int nd, int64_t a, int64_t b, int64_t c) {
    int64_t s[3] = {a, b, c};
    return zs_tensor_make(g_dummy, dt, ZS_CPU, nd, s);
}
#define F32(...) tn(ZS_F32, __VA_ARGS__)

// The status must be `want` and the message must contain every listed substring.
static int expect(zs_status got, zs_status want, const char *const *subs, int n) {
    const char *m = zs_errmsg();
    if (got != want) {
        printf("    got %s (%s), expected %s\n", zs_status_name(got), m, zs_status_name(want));
        return 0;
    }
    for (int i = 0; i < n; i++)
        if (!strstr(m, subs[i])) {
            printf("    message \"%s\" lacks \"%s\"\n", m, subs[i]);
            return 0;
        }
    return 1;
}
#define EXPECT(call, want, ...)                                                           \
    do {                                                                                  \
        const char *const subs_[] = {__VA_ARGS__};                                        \
        CHECK(expect((call), (want), subs_, (int)(sizeof subs_ / sizeof subs_[0])), "%s", #call); \
    } while (0)

TEST(ops_errors_linear) {
    zs_tensor x = F32(2, 37, 53, 0), w = F32(2, 29, 53, 0), b = F32(1, 29, 0, 0), y = F32(2, 37, 29, 0);
    zs_tensor w_bad = F32(2, 29, 52, 0), y_bad = F32(2, 37, 28, 0), b_bad = F32(1, 30, 0, 0);
    EXPECT(zs_linear_fwd(&y, &x, &w_bad, &b), ZS_EINVAL, "linear_fwd", "w", "[29, 52]", "[-1, 53]");
    EXPECT(zs_linear_fwd(&y_bad, &x, &w, &b), ZS_EINVAL, "linear_fwd", "y", "[37, 28]", "[37, 29]");
    EXPECT(zs_linear_fwd(&y, &x, &w, &b_bad), ZS_EINVAL, "linear_fwd", "b", "[30]", "[29]");
    w_bad.name = "enc.fc1.weight";
    EXPECT(zs_linear_fwd(&y, &x, &w_bad, &b), ZS_EINVAL, "enc.fc1.weight");
    zs_tensor w16 = tn(ZS_BF16, 2, 29, 53, 0);
    EXPECT(zs_linear_fwd(&y, &x, &w16, &b), ZS_EINVAL, "linear_fwd", "w", "BF16", "F32");
    zs_tensor x16 = tn(ZS_BF16, 2, 37, 53, 0), b16 = tn(ZS_BF16, 1, 29, 0, 0), y16 = tn(ZS_BF16, 2, 37, 29, 0);
    EXPECT(zs_linear_fwd(&y16, &x16, &w16, &b16), ZS_EUNSUPPORTED, "linear_fwd", "BF16", "CPU");
    zs_tensor wg = w;
    wg.device = ZS_CUDA;
    EXPECT(zs_linear_fwd(&y, &x, &wg, &b), ZS_EINVAL, "linear_fwd", "w", "cuda", "cpu");
    EXPECT(zs_linear_fwd(&y, NULL, &w, &b), ZS_EINVAL, "linear_fwd", "x is NULL");
    zs_tensor nomem = x;
    nomem.data = NULL;
    EXPECT(zs_linear_fwd(&y, &nomem, &w, &b), ZS_EINVAL, "no memory");
    zs_tensor dx = F32(2, 37, 53, 0), dw = F32(2, 29, 53, 0), db = F32(1, 29, 0, 0);
    zs_tensor dy_bad = F32(2, 36, 29, 0), dw_bad = F32(2, 53, 29, 0);
    EXPECT(zs_linear_bwd(&dx, &dw, &db, &dy_bad, &x, &w), ZS_EINVAL, "linear_bwd", "dy", "[36, 29]", "[37, 29]");
    EXPECT(zs_linear_bwd(&dx, &dw_bad, &db, &y, &x, &w), ZS_EINVAL, "linear_bwd", "dw", "[53, 29]", "[29, 53]");
    EXPECT(zs_linear_bwd(&dx, &dw, &b_bad, &y, &x, &w), ZS_EINVAL, "linear_bwd", "db", "[30]");
    return ZT_PASS;
}

TEST(ops_errors_layernorm) {
    zs_tensor x = F32(2, 13, 77, 0), w = F32(1, 77, 0, 0), b = F32(1, 77, 0, 0), y = F32(2, 13, 77, 0);
    zs_tensor m = F32(1, 13, 0, 0), r = F32(1, 13, 0, 0), m_bad = F32(1, 12, 0, 0), w_bad = F32(1, 76, 0, 0);
    EXPECT(zs_layernorm_fwd(&y, &m_bad, &r, &x, &w, &b, 1e-5f), ZS_EINVAL, "layernorm_fwd", "mean", "[12]", "[13]");
    EXPECT(zs_layernorm_fwd(&y, &m, &r, &x, &w_bad, &b, 1e-5f), ZS_EINVAL, "layernorm_fwd", "w", "[76]", "[77]");
    EXPECT(zs_layernorm_fwd(&y, &m, &r, &x, &w, &w_bad, 1e-5f), ZS_EINVAL, "layernorm_fwd", "b", "[76]");
    zs_tensor m16 = tn(ZS_BF16, 1, 13, 0, 0);
    EXPECT(zs_layernorm_fwd(&y, &m16, &r, &x, &w, &b, 1e-5f), ZS_EINVAL, "mean", "BF16", "F32");
    EXPECT(zs_layernorm_fwd(&y, &m, &r, &x, &w, &b, -1.0f), ZS_EINVAL, "eps");
    EXPECT(zs_layernorm_fwd(&y, &m, &r, &x, &w, &b, NAN), ZS_EINVAL, "eps");
    EXPECT(zs_layernorm_bwd(&x, &w, &b, &y, &x, &w, NULL, &r), ZS_EINVAL, "layernorm_bwd", "mean is NULL");
    zs_tensor dy_bad = F32(2, 13, 78, 0);
    EXPECT(zs_layernorm_bwd(&x, &w, &b, &dy_bad, &x, &w, &m, &r), ZS_EINVAL, "layernorm_bwd", "dy", "[13, 78]");
    return ZT_PASS;
}

TEST(ops_errors_softmax_act_add) {
    zs_tensor x = F32(2, 5, 77, 0), y = F32(2, 5, 77, 0), y_bad = F32(3, 5, 7, 11);
    EXPECT(zs_softmax_fwd(&y_bad, &x), ZS_EINVAL, "softmax_fwd", "y", "[5, 7, 11]", "[5, 77]");
    EXPECT(zs_softmax_bwd(&y_bad, &x, &y), ZS_EINVAL, "softmax_bwd", "dx", "[5, 7, 11]");
    EXPECT(zs_gelu_fwd(&y_bad, &x), ZS_EINVAL, "gelu_fwd", "y");
    EXPECT(zs_quickgelu_bwd(&y_bad, &y, &x), ZS_EINVAL, "quickgelu_bwd", "dx");
    EXPECT(zs_gelu_tanh_bwd(&y, &y_bad, &x), ZS_EINVAL, "gelu_tanh_bwd", "dy");
    EXPECT(zs_act_fwd(ZS_ACT_COUNT, &y, &x), ZS_EINVAL, "unknown activation");
    zs_tensor y16 = tn(ZS_F16, 2, 5, 77, 0);
    EXPECT(zs_gelu_fwd(&y16, &x), ZS_EINVAL, "gelu_fwd", "F16");
    EXPECT(zs_add_fwd(&y, &x, &y_bad), ZS_EINVAL, "add_fwd", "b", "[5, 7, 11]", "[5, 77]");
    EXPECT(zs_add_bwd(&x, &y_bad, &y), ZS_EINVAL, "add_bwd", "db");
    return ZT_PASS;
}

TEST(ops_errors_embedding) {
    float table[7 * 3], y[4 * 3];
    int32_t ids[4] = {0, 6, 7, 2};
    for (int i = 0; i < 21; i++) table[i] = (float)i;
    for (int i = 0; i < 12; i++) y[i] = -1;
    zs_tensor tt = zs_tensor_make(table, ZS_F32, ZS_CPU, 2, (int64_t[]){7, 3});
    zs_tensor ti = zs_tensor_make(ids, ZS_I32, ZS_CPU, 1, (int64_t[]){4});
    zs_tensor ty = zs_tensor_make(y, ZS_F32, ZS_CPU, 2, (int64_t[]){4, 3});
    EXPECT(zs_embedding_fwd(&ty, &ti, &tt), ZS_EINVAL, "embedding_fwd", "ids[2] = 7", "[0, 7)");
    for (int i = 0; i < 12; i++) CHECK(y[i] == -1, "y written before the ids were checked");
    zs_tensor fi = zs_tensor_make(ids, ZS_F32, ZS_CPU, 1, (int64_t[]){4});
    EXPECT(zs_embedding_fwd(&ty, &fi, &tt), ZS_EINVAL, "embedding_fwd", "ids", "F32", "I32");
    zs_tensor ty_bad = zs_tensor_make(y, ZS_F32, ZS_CPU, 2, (int64_t[]){4, 2});
    EXPECT(zs_embedding_fwd(&ty_bad, &ti, &tt), ZS_EINVAL, "embedding_fwd", "y", "[4, 2]", "[4, 3]");
    EXPECT(zs_embedding_bwd(&tt, &ty, &ti), ZS_EINVAL, "embedding_bwd", "ids[2] = 7");
    for (int i = 0; i < 21; i++) CHECK(table[i] == (float)i, "dtable written before the ids were checked");
    ids[2] = 6;  // valid now; repeated id 6 sums
    CHECK_OK(zs_embedding_fwd(&ty, &ti, &tt));
    CHECK(y[3] == 18 && y[8] == 20 && y[11] == 8, "gathered rows");
    CHECK_OK(zs_embedding_bwd(&tt, &ty, &ti));
    CHECK(table[18] == 18 + 18 + 18 && table[0] == 0 && table[6] == 6 + 6, "scatter-add with a repeated id");
    return ZT_PASS;
}

// Any gradient may be NULL: nothing is computed for it, others are unaffected.
TEST(ops_null_grads) {
    float x[6] = {1, 2, 3, 4, 5, 6}, w[6] = {1, 0, -1, 2, 1, 0}, dy[4] = {1, -1, 2, 0.5f}, dw[6] = {0};
    zs_tensor tx = zs_tensor_make(x, ZS_F32, ZS_CPU, 2, (int64_t[]){2, 3});
    zs_tensor tw = zs_tensor_make(w, ZS_F32, ZS_CPU, 2, (int64_t[]){2, 3});
    zs_tensor tdy = zs_tensor_make(dy, ZS_F32, ZS_CPU, 2, (int64_t[]){2, 2});
    zs_tensor tdw = zs_tensor_make(dw, ZS_F32, ZS_CPU, 2, (int64_t[]){2, 3});
    CHECK_OK(zs_linear_bwd(NULL, &tdw, NULL, &tdy, &tx, &tw));
    // dw = dy^T @ x: row o = sum_n dy[n, o] x[n, :]
    const float want[6] = {1 + 8, 2 + 10, 3 + 12, -1 + 2, -2 + 2.5f, -3 + 3};
    for (int i = 0; i < 6; i++) CHECK(fabsf(dw[i] - want[i]) < 1e-6f, "dw[%d] = %g, want %g", i, dw[i], want[i]);
    CHECK_OK(zs_linear_bwd(NULL, NULL, NULL, &tdy, &tx, &tw));
    CHECK_OK(zs_softmax_bwd(NULL, &tx, &tx));
    CHECK_OK(zs_add_bwd(NULL, NULL, &tx));
    CHECK_OK(zs_gelu_bwd(NULL, &tx, &tx));
    CHECK_OK(zs_embedding_bwd(NULL, &tx, &tx));
    return ZT_PASS;
}

// The built-in C GEMM (used without OpenBLAS) against a double-precision loop, all four
// transpose combinations, sizes that straddle its tiles, beta 0 (C holding NaN), 1, 0.5.
TEST(ops_gemm_c_matches_reference) {
    const int64_t sizes[2][3] = {{37, 29, 53}, {19, 300, 260}};
    for (int si = 0; si < 2; si++) {
        int64_t M = sizes[si][0], N = sizes[si][1], K = sizes[si][2];
        float *A = malloc((size_t)(M * K + K * N + 2 * M * N) * sizeof(float));
        CHECK(A, "oom");
        float *B = A + M * K, *C = B + K * N, *C0 = C + M * N;
        zs_rng_uniform_host(A, M * K + K * N, 11 + (uint64_t)si, 0);
        zs_rng_uniform_host(C0, M * N, 12, 0);
        zt_result r = ZT_PASS;
        for (int ta = 0; ta < 2 && r == ZT_PASS; ta++)
            for (int tb = 0; tb < 2 && r == ZT_PASS; tb++)
                for (int bi = 0; bi < 3 && r == ZT_PASS; bi++) {
                    float beta = bi == 0 ? 0.0f : bi == 1 ? 1.0f : 0.5f;
                    for (int64_t i = 0; i < M * N; i++) C[i] = beta == 0 ? NAN : C0[i];
                    int64_t lda = ta ? M : K, ldb = tb ? K : N;
                    zs_sgemm_c(ta, tb, M, N, K, A, lda, B, ldb, beta, C, N);
                    double num = 0, den = 0;
                    for (int64_t i = 0; i < M; i++)
                        for (int64_t j = 0; j < N; j++) {
                            double s = beta == 0 ? 0 : (double)beta * C0[i * N + j];
                            for (int64_t k = 0; k < K; k++)
                                s += (double)(ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
                            double d = C[i * N + j] - s;
                            num += d * d;
                            den += s * s;
                        }
                    double e = sqrt(num / den);
                    if (!(e < 1e-6)) {
                        zt_note(__FILE__, __LINE__, "M%lld N%lld K%lld ta%d tb%d beta %g: rel err %.3g", (long long)M,
                                (long long)N, (long long)K, ta, tb, beta, e);
                        r = ZT_FAIL;
                    }
                }
        free(A);
        if (r != ZT_PASS) return r;
    }
    return ZT_PASS;
}

// in = 0: y is the bias broadcast (an empty sum), on every device.
static zt_result linear_empty_in(zs_device dev) {
    float b[2] = {1.5f, -2}, y[6];
    int64_t sx[2] = {3, 0}, sw[2] = {2, 0}, sb[1] = {2}, sy[2] = {3, 2};
    zs_tensor x = zs_tensor_make(NULL, ZS_F32, dev, 2, sx), w = zs_tensor_make(NULL, ZS_F32, dev, 2, sw);
    zs_tensor tb = zs_tensor_make(NULL, ZS_F32, dev, 1, sb), ty = zs_tensor_make(NULL, ZS_F32, dev, 2, sy);
    CHECK_OK(zs_malloc(&tb.data, sizeof b, dev, "b"));
    CHECK_OK(zs_malloc(&ty.data, sizeof y, dev, "y"));
    zs_status s = zs_memcpy(tb.data, dev, b, ZS_CPU, sizeof b);
    if (!s) s = zs_linear_fwd(&ty, &x, &w, &tb);
    if (!s) s = zs_memcpy(y, ZS_CPU, ty.data, dev, sizeof y);
    if (!s) s = zs_linear_bwd(&x, &w, &tb, &ty, &x, &w);  // db += column sums of y
    if (!s) s = zs_memcpy(b, ZS_CPU, tb.data, dev, sizeof b);
    zs_free(tb.data, dev);
    zs_free(ty.data, dev);
    CHECK_OK(s);
    for (int i = 0; i < 6; i++) CHECK(y[i] == (i % 2 ? -2.0f : 1.5f), "y[%d] = %g", i, y[i]);
    CHECK(b[0] == 1.5f * 4 && b[1] == -2.0f * 4, "db accumulated: %g %g", b[0], b[1]);
    return ZT_PASS;
}
TEST(ops_linear_empty_in) { return linear_empty_in(ZS_CPU); }
GPU_TEST(ops_cuda_linear_empty_in) { return linear_empty_in(ZS_CUDA); }
