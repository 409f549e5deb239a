// linear on CUDA: cuBLAS GEMMs (cublasGemmEx, CUBLAS_COMPUTE_32F: fp32 accumulation and no
// TF32 for F32 inputs), a bias broadcast kernel, and db via the deterministic column sums of
// cuda_ops.cuh. Row-major tensors are seen by the column-major cuBLAS as their transposes:
//   y^T[out, N]   = w (= op_T(w^T stored [in, out]))  @ x^T[in, N]
//   dx^T[in, N]  += w^T[in, out] @ dy^T[out, N]
//   dw^T[in, out] += x^T[in, N] @ dy[N, out] (= op_T(dy^T stored [out, N]))
#include "cuda_ops.cuh"

template <typename T> static cudaDataType_t cuda_type();
template <> cudaDataType_t cuda_type<float>() { return CUDA_R_32F; }
template <> cudaDataType_t cuda_type<__half>() { return CUDA_R_16F; }
template <> cudaDataType_t cuda_type<__nv_bfloat16>() { return CUDA_R_16BF; }

// y[n, o] = b[o] for n < N (the GEMM then adds with beta = 1: one rounding of y).
template <typename T> __global__ void bias_fill_kernel(T *y, const T *b, long long N, long long out) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i < N * out) y[i] = b[i % out];
}

// Column-major C[m, n] = op(A) @ op(B) + beta C, all of T, fp32 compute.
template <typename T>
static zs_status gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const T *A, int lda, const T *B,
                      int ldb, float beta, T *C, int ldc) {
    const float alpha = 1.0f;
    cudaDataType_t t = cuda_type<T>();
    // cuBLAS wants leading dims >= 1 even for empty matrices (in = 0); nothing is read then.
    lda = lda > 1 ? lda : 1;
    ldb = ldb > 1 ? ldb : 1;
    ldc = ldc > 1 ? ldc : 1;
    ZS_CUBLAS_TRY(cublasGemmEx(zs_cublas(), ta, tb, m, n, k, &alpha, A, t, lda, B, t, ldb, &beta, C, t, ldc,
                               CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return ZS_OK;
}

template <typename T>
static zs_status linear_fwd(T *y, const T *x, const T *w, const T *b, int64_t N, int64_t in, int64_t out) {
    if (b) {
        bias_fill_kernel<<<zs_blocks(N * out, 256), 256, 0, zs_cuda_stream()>>>(y, b, N, out);
        ZS_CUDA_LAUNCHED();
    }
    return gemm<T>(CUBLAS_OP_T, CUBLAS_OP_N, (int)out, (int)N, (int)in, w, (int)in, x, (int)in, b ? 1.0f : 0.0f, y,
                   (int)out);
}

template <typename T>
static zs_status linear_bwd(T *dx, T *dw, T *db, const T *dy, const T *x, const T *w, int64_t N, int64_t in,
                            int64_t out) {
    if (dx) ZS_TRY(gemm<T>(CUBLAS_OP_N, CUBLAS_OP_N, (int)in, (int)N, (int)out, w, (int)in, dy, (int)out, 1.0f, dx, (int)in));
    if (dw) ZS_TRY(gemm<T>(CUBLAS_OP_N, CUBLAS_OP_T, (int)in, (int)out, (int)N, x, (int)in, dy, (int)out, 1.0f, dw, (int)in));
    return colsum_acc<T>(NULL, db, dy, NULL, NULL, NULL, N, out);  // db += column sums of dy
}

extern "C" zs_status zs_linear_fwd_cuda(void *y, const void *x, const void *w, const void *b, zs_dtype dt, int64_t N,
                                        int64_t in, int64_t out) {
    ZS_DISPATCH_DT("linear_fwd", dt, linear_fwd<T_>((T_ *)y, (const T_ *)x, (const T_ *)w, (const T_ *)b, N, in, out));
}

extern "C" zs_status zs_linear_bwd_cuda(void *dx, void *dw, void *db, const void *dy, const void *x, const void *w,
                                        zs_dtype dt, int64_t N, int64_t in, int64_t out) {
    ZS_DISPATCH_DT("linear_bwd", dt,
                   linear_bwd<T_>((T_ *)dx, (T_ *)dw, (T_ *)db, (const T_ *)dy, (const T_ *)x, (const T_ *)w, N, in, out));
}
