// linear: y[N, out] = x[N, in] @ w[out, in]^T + b[out], forward and backward.
// CPU: OpenBLAS sgemm when available, else the blocked C GEMM below. CUDA: kernels/linear.cu.
#include <string.h>
#include "op_common.h"
#include "ops.h"
#ifdef ZS_HAVE_OPENBLAS
#include <cblas.h>
#endif

// ---- CPU GEMM -------------------------------------------------------------------------
// Row-major, alpha = 1. Tiles keep a block of B (KB x JB floats, 128 KiB) in L2 while a
// block of C's rows runs over it; inner loops are contiguous (axpy for B untransposed,
// dot products for B transposed).
enum { GEMM_IB = 16, GEMM_JB = 256, GEMM_KB = 128 };

void zs_sgemm_c(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                int64_t ldb, float beta, float *C, int64_t ldc) {
#pragma omp parallel for schedule(static) if (M * N * K > (1 << 16))
    for (int64_t i0 = 0; i0 < M; i0 += GEMM_IB) {
        int64_t i1 = i0 + GEMM_IB < M ? i0 + GEMM_IB : M;
        for (int64_t i = i0; i < i1; i++)  // beta == 0 must not read C (it may hold NaN)
            for (int64_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0 ? 0 : beta * C[i * ldc + j];
        for (int64_t j0 = 0; j0 < N; j0 += GEMM_JB) {
            int64_t j1 = j0 + GEMM_JB < N ? j0 + GEMM_JB : N;
            for (int64_t k0 = 0; k0 < K; k0 += GEMM_KB) {
                int64_t k1 = k0 + GEMM_KB < K ? k0 + GEMM_KB : K;
                for (int64_t i = i0; i < i1; i++) {
                    float *c = C + i * ldc;
                    if (!tb) {
                        for (int64_t k = k0; k < k1; k++) {
                            float a = ta ? A[k * lda + i] : A[i * lda + k];
                            const float *b = B + k * ldb;
#pragma omp simd
                            for (int64_t j = j0; j < j1; j++) c[j] += a * b[j];
                        }
                    } else {
                        for (int64_t j = j0; j < j1; j++) {
                            const float *b = B + j * ldb;
                            float s = 0;
                            if (!ta) {
                                const float *a = A + i * lda;
#pragma omp simd reduction(+ : s)
                                for (int64_t k = k0; k < k1; k++) s += a[k] * b[k];
                            } else {
                                for (int64_t k = k0; k < k1; k++) s += A[k * lda + i] * b[k];
                            }
                            c[j] += s;
                        }
                    }
                }
            }
        }
    }
}

void zs_sgemm_cpu(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                  int64_t ldb, float beta, float *C, int64_t ldc) {
    if (M <= 0 || N <= 0) return;
#ifdef ZS_HAVE_OPENBLAS
    if (K > 0) {
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)M,
                    (blasint)N, (blasint)K, 1.0f, A, (blasint)lda, B, (blasint)ldb, beta, C, (blasint)ldc);
        return;
    }
#endif
    zs_sgemm_c(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc);
}

// db[c] += sum_n dy[n, c]: column blocks in parallel, rows in order (deterministic).
static void colsum_acc(float *db, const float *dy, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C > 65536)
    for (int64_t c0 = 0; c0 < C; c0 += 64) {
        int64_t c1 = c0 + 64 < C ? c0 + 64 : C;
        float acc[64] = {0};
        for (int64_t n = 0; n < N; n++) {
            const float *r = dy + n * C;
            for (int64_t c = c0; c < c1; c++) acc[c - c0] += r[c];
        }
        for (int64_t c = c0; c < c1; c++) db[c] += acc[c - c0];
    }
}

// ---- checks and dispatch ---------------------------------------------------------------
// x [..., in], w [out, in], b [out], y [..., out]: returns N, in, out.
static zs_status check(zs_opctx *c, const char *op, const zs_tensor *x, const zs_tensor *w, const zs_tensor *b,
                       int64_t *N, int64_t *in, int64_t *out) {
    ZS_TRY(zs_op_begin(c, op, x, "x"));
    zs_op_rows(x, N, in);
    ZS_TRY(zs_op_arg(c, w, "w", c->dt, 2, (int64_t[]){-1, *in}));
    *out = w->shape[0];
    if (b) ZS_TRY(zs_op_arg(c, b, "b", c->dt, 1, out));
    return ZS_OK;
}

#ifdef ZS_HAVE_CUDA
static zs_status cuda_dims(const char *op, int64_t N, int64_t in, int64_t out) {
    if (N > INT32_MAX || in > INT32_MAX || out > INT32_MAX)
        return ZS_ERR(ZS_EUNSUPPORTED, "%s: dims N=%lld in=%lld out=%lld exceed cuBLAS's int range", op, (long long)N,
                      (long long)in, (long long)out);
    return ZS_OK;
}
#endif

zs_status zs_linear_fwd(zs_tensor *y, const zs_tensor *x, const zs_tensor *w, const zs_tensor *b) {
    zs_opctx c;
    int64_t N, in, out;
    ZS_TRY(check(&c, "linear_fwd", x, w, b, &N, &in, &out));
    ZS_TRY(zs_op_arg_like(&c, y, "y", c.dt, x, out));
    if (N == 0 || out == 0) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        ZS_TRY(cuda_dims(c.op, N, in, out));
        return zs_linear_fwd_cuda(y->data, x->data, w->data, b ? b->data : NULL, c.dt, N, in, out);
#endif
    }
    float *yd = y->data;
    if (b) {  // y = b, then y += x @ w^T
        const float *bd = b->data;
#pragma omp parallel for if (N * out > 65536)
        for (int64_t n = 0; n < N; n++) memcpy(yd + n * out, bd, (size_t)out * sizeof(float));
    }
    zs_sgemm_cpu(0, 1, N, out, in, x->data, in, w->data, in, b ? 1.0f : 0.0f, yd, out);
    return ZS_OK;
}

zs_status zs_linear_bwd(zs_tensor *dx, zs_tensor *dw, zs_tensor *db, const zs_tensor *dy, const zs_tensor *x,
                        const zs_tensor *w) {
    zs_opctx c;
    int64_t N, in, out;
    ZS_TRY(check(&c, "linear_bwd", x, w, NULL, &N, &in, &out));
    ZS_TRY(zs_op_arg_like(&c, dy, "dy", c.dt, x, out));
    if (dx) ZS_TRY(zs_op_arg_like(&c, dx, "dx", c.dt, x, -1));
    if (dw) ZS_TRY(zs_op_arg_like(&c, dw, "dw", c.dt, w, -1));
    if (db) ZS_TRY(zs_op_arg(&c, db, "db", c.dt, 1, &out));
    if (N == 0 || out == 0) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        ZS_TRY(cuda_dims(c.op, N, in, out));
        return zs_linear_bwd_cuda(dx ? dx->data : NULL, dw ? dw->data : NULL, db ? db->data : NULL, dy->data, x->data,
                                  w->data, c.dt, N, in, out);
#endif
    }
    if (dx) zs_sgemm_cpu(0, 0, N, in, out, dy->data, out, w->data, in, 1.0f, dx->data, in);   // dy @ w
    if (dw) zs_sgemm_cpu(1, 0, out, in, N, dy->data, out, x->data, in, 1.0f, dw->data, in);   // dy^T @ x
    if (db) colsum_acc(db->data, dy->data, N, out);
    return ZS_OK;
}
