// Attention on CUDA for head dims the fused kernels do not cover (> 160: the SD VAE's
// mid-block attention is one head of width 512 over 4,900 to 9,216 tokens), and the F16 / BF16
// backward of long sequences (tensor-core GEMMs; attention.cu picks). Scores are
// materialised one chunk of query rows at a time, with cuBLAS GEMMs (fp32 accumulation):
//   forward   S = scale Q K^T (fp32) ─ row softmax (lse = max + log sum exp) ─ P (dtype) ─ O = P V
//   backward  delta = rowsum(dO * O); S again, P = exp(S - lse); dP = dO V^T (fp32);
//             dS = P (dP - delta); dV += P^T dO; dQ += scale dS K; dK += scale dS^T Q
// A chunk holds R x Lk scores (R chosen so a fp32 buffer stays under 256 MiB). Fixed chunk
// order and deterministic GEMMs: bitwise reproducible. Same semantics as attention.c (causal:
// query i sees keys j <= i + Lk - Lq), any dtype of cuda_ops.cuh.
#include "cuda_ops.cuh"

namespace {

template <typename T> cudaDataType_t cuda_type();
template <> cudaDataType_t cuda_type<float>() { return CUDA_R_32F; }
template <> cudaDataType_t cuda_type<__half>() { return CUDA_R_16F; }
template <> cudaDataType_t cuda_type<__nv_bfloat16>() { return CUDA_R_16BF; }

// Row-major C[M, N] = alpha op(A) op(B) + beta C (op = transpose when t*); A, B of type ab,
// C of type ct; leading dims are row strides. cuBLAS is column-major: C^T = op(B)^T op(A)^T.
zs_status gemm_rm(bool ta, bool tb, int M, int N, int K, float alpha, const void *A, long long lda, const void *B,
                  long long ldb, cudaDataType_t ab, float beta, void *C, long long ldc, cudaDataType_t ct) {
    ZS_CUBLAS_TRY(cublasGemmEx(zs_cublas(), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K,
                               &alpha, B, ab, (int)ldb, A, ab, (int)lda, &beta, C, ct, (int)ldc, CUBLAS_COMPUTE_32F,
                               CUBLAS_GEMM_DEFAULT));
    return ZS_OK;
}

// One warp per score row (as softmax.cu): lse (when given) and P = exp(S - lse) in the dtype;
// masked keys 0. Block (32, 8): 8 rows.
template <typename T>
__global__ void softmax_rows(T *P, float *lse, const float *S, int R, int Lk, int r0, int off, int causal) {
    int r = blockIdx.x * 8 + threadIdx.y, lane = threadIdx.x;
    if (r >= R) return;
    int lim = causal ? r0 + r + off : Lk - 1;  // last visible key
    const float *s = S + (long long)r * Lk;
    float m = -INFINITY, l = 0.f;
    for (int j = lane; j <= lim && j < Lk; j += 32) m = fmaxf(m, s[j]);
    m = warp_max(m);
    for (int j = lane; j <= lim && j < Lk; j += 32) l += expf(s[j] - m);
    l = warp_sum(l);
    float L = lim < 0 ? 0.f : m + logf(l);  // a row that sees no key: P = 0, lse = -inf (attention.c)
    if (lse && lane == 0) lse[r] = lim < 0 ? -INFINITY : L;
    for (int j = lane; j < Lk; j += 32) P[(long long)r * Lk + j] = from_f<T>(j <= lim ? expf(s[j] - L) : 0.f);
}

// P = exp(S - lse) and dS = P (dP - delta), both in the dtype (masked keys 0).
template <typename T>
__global__ void dsoftmax_rows(T *P, T *dS, const float *S, const float *dP, const float *lse, const float *delta, int Lk,
                              int r0, int off, int causal) {
    int r = blockIdx.x, lim = causal ? r0 + r + off : Lk - 1;
    float L = lse[r], dl = delta[r];
    for (int j = threadIdx.x; j < Lk; j += blockDim.x) {
        long long x = (long long)r * Lk + j;
        float p = j <= lim ? expf(S[x] - L) : 0.f;
        P[x] = from_f<T>(p);
        dS[x] = from_f<T>(p * (dP[x] - dl));
    }
}

// delta[i] = dO[i, :] . O[i, :] for rows of one head (row stride ld), one warp per row.
template <typename T> __global__ void row_dot(float *delta, const T *dO, const T *O, long long ld, int rows, int D) {
    int r = blockIdx.x * 8 + (threadIdx.x >> 5);
    if (r >= rows) return;
    float a = 0.f;
    for (int c = threadIdx.x & 31; c < D; c += 32) a += to_f(dO[r * ld + c]) * to_f(O[r * ld + c]);
    a = warp_sum(a);
    if ((threadIdx.x & 31) == 0) delta[r] = a;
}

struct wide {
    int B, H, Lq, Lk, Dk, Dv, causal, R;
    float scale;
};

long long g_chunk_floats = 64LL << 20;  // 64 Mi floats = 256 MiB per fp32 score buffer

int chunk_rows(int Lq, int Lk) {
    long long r = g_chunk_floats / (Lk > 0 ? Lk : 1);
    return (int)(r < 1 ? 1 : r > Lq ? Lq : r);
}

__global__ void fill_f32(float *x, float v, long long n) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i < n) x[i] = v;
}

template <typename T>
zs_status fwd(T *out, float *lse, const T *q, const T *k, const T *v, const wide &w) {
    cudaStream_t st = zs_cuda_stream();
    cudaDataType_t ty = cuda_type<T>();
    long long ldq = (long long)w.H * w.Dk, ldv = (long long)w.H * w.Dv;
    float *S = NULL;
    T *P = NULL;
    ZS_CUDA_TRY(cudaMallocAsync((void **)&S, sizeof(float) * (size_t)w.R * w.Lk, st));
    zs_status s = ZS_OK;
    cudaError_t e = cudaMallocAsync((void **)&P, sizeof(T) * (size_t)w.R * w.Lk, st);
    if (e != cudaSuccess) s = ZS_ERR(ZS_ENOMEM, "attention (wide heads): score buffer: %s", cudaGetErrorString(e));
    for (int b = 0; b < w.B && !s; b++)
        for (int h = 0; h < w.H && !s; h++)
            for (int r0 = 0; r0 < w.Lq && !s; r0 += w.R) {
                int R = w.Lq - r0 < w.R ? w.Lq - r0 : w.R;
                const T *qb = q + ((long long)b * w.Lq + r0) * ldq + (long long)h * w.Dk;
                const T *kb = k + (long long)b * w.Lk * ldq + (long long)h * w.Dk;
                const T *vb = v + (long long)b * w.Lk * ldv + (long long)h * w.Dv;
                T *ob = out + ((long long)b * w.Lq + r0) * ldv + (long long)h * w.Dv;
                float *lb = lse ? lse + ((long long)b * w.H + h) * w.Lq + r0 : NULL;
                s = gemm_rm(false, true, R, w.Lk, w.Dk, w.scale, qb, ldq, kb, ldq, ty, 0.f, S, w.Lk, CUDA_R_32F);
                if (!s) softmax_rows<T><<<(R + 7) / 8, dim3(32, 8), 0, st>>>(P, lb, S, R, w.Lk, r0, w.Lk - w.Lq, w.causal);
                if (!s) s = gemm_rm(false, false, R, w.Dv, w.Lk, 1.f, P, w.Lk, vb, ldv, ty, 0.f, ob, ldv, ty);
            }
    cudaFreeAsync(S, st);
    if (P) cudaFreeAsync(P, st);
    if (!s) ZS_CUDA_TRY(cudaGetLastError());
    return s;
}

template <typename T>
zs_status bwd(T *dq, T *dk, T *dv, const T *dout, const T *q, const T *k, const T *v, const T *out, const float *lse,
              const wide &w) {
    cudaStream_t st = zs_cuda_stream();
    cudaDataType_t ty = cuda_type<T>();
    long long ldq = (long long)w.H * w.Dk, ldv = (long long)w.H * w.Dv;
    size_t n = (size_t)w.R * w.Lk;
    float *S = NULL, *dP = NULL, *delta = NULL;
    T *P = NULL, *dS = NULL;
    zs_status s = ZS_OK;
    cudaError_t e = cudaMallocAsync((void **)&S, sizeof(float) * n, st);
    if (e == cudaSuccess) e = cudaMallocAsync((void **)&dP, sizeof(float) * n, st);
    if (e == cudaSuccess) e = cudaMallocAsync((void **)&P, sizeof(T) * n, st);
    if (e == cudaSuccess) e = cudaMallocAsync((void **)&dS, sizeof(T) * n, st);
    if (e == cudaSuccess) e = cudaMallocAsync((void **)&delta, sizeof(float) * (size_t)w.Lq, st);
    if (e != cudaSuccess) s = ZS_ERR(ZS_ENOMEM, "attention backward (wide heads): buffers: %s", cudaGetErrorString(e));
    for (int b = 0; b < w.B && !s; b++)
        for (int h = 0; h < w.H && !s; h++) {
            const T *qh = q + (long long)b * w.Lq * ldq + (long long)h * w.Dk;
            const T *kh = k + (long long)b * w.Lk * ldq + (long long)h * w.Dk;
            const T *vh = v + (long long)b * w.Lk * ldv + (long long)h * w.Dv;
            const T *oh = out + (long long)b * w.Lq * ldv + (long long)h * w.Dv;
            const T *doh = dout + (long long)b * w.Lq * ldv + (long long)h * w.Dv;
            const float *lh = lse + ((long long)b * w.H + h) * w.Lq;
            row_dot<T><<<(w.Lq + 7) / 8, 256, 0, st>>>(delta, doh, oh, ldv, w.Lq, w.Dv);
            for (int r0 = 0; r0 < w.Lq && !s; r0 += w.R) {
                int R = w.Lq - r0 < w.R ? w.Lq - r0 : w.R;
                const T *qb = qh + (long long)r0 * ldq, *dob = doh + (long long)r0 * ldv;
                s = gemm_rm(false, true, R, w.Lk, w.Dk, w.scale, qb, ldq, kh, ldq, ty, 0.f, S, w.Lk, CUDA_R_32F);
                if (!s) s = gemm_rm(false, true, R, w.Lk, w.Dv, 1.f, dob, ldv, vh, ldv, ty, 0.f, dP, w.Lk, CUDA_R_32F);
                if (!s)
                    dsoftmax_rows<T><<<R, 256, 0, st>>>(P, dS, S, dP, lh + r0, delta + r0, w.Lk, r0, w.Lk - w.Lq, w.causal);
                T *dvh = dv ? dv + (long long)b * w.Lk * ldv + (long long)h * w.Dv : NULL;
                T *dkh = dk ? dk + (long long)b * w.Lk * ldq + (long long)h * w.Dk : NULL;
                T *dqb = dq ? dq + ((long long)b * w.Lq + r0) * ldq + (long long)h * w.Dk : NULL;
                if (!s && dvh) s = gemm_rm(true, false, w.Lk, w.Dv, R, 1.f, P, w.Lk, dob, ldv, ty, 1.f, dvh, ldv, ty);
                if (!s && dqb) s = gemm_rm(false, false, R, w.Dk, w.Lk, w.scale, dS, w.Lk, kh, ldq, ty, 1.f, dqb, ldq, ty);
                if (!s && dkh) s = gemm_rm(true, false, w.Lk, w.Dk, R, w.scale, dS, w.Lk, qb, ldq, ty, 1.f, dkh, ldq, ty);
            }
        }
    void *bufs[5] = {S, dP, P, dS, delta};
    for (int i = 0; i < 5; i++)
        if (bufs[i]) cudaFreeAsync(bufs[i], st);
    if (!s) ZS_CUDA_TRY(cudaGetLastError());
    return s;
}

wide wide_of(int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t Dk, int64_t Dv, float scale, int causal) {
    wide w = {(int)B, (int)H, (int)Lq, (int)Lk, (int)Dk, (int)Dv, causal, chunk_rows((int)Lq, (int)Lk), scale};
    return w;
}

}  // namespace

extern "C" zs_status zs_attention_wide_fwd_cuda(void *out, float *lse, const void *q, const void *k, const void *v,
                                                zs_dtype dt, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t Dk,
                                                int64_t Dv, float scale, int causal) {
    // INT32_MAX - 256: the kernels' strided loops over keys must not wrap.
    if (Lq > INT32_MAX || Lk > INT32_MAX - 256 || H * Dk > INT32_MAX || H * Dv > INT32_MAX)
        return ZS_ERR(ZS_EUNSUPPORTED, "attention_fwd on CUDA (wide heads): sizes beyond 32-bit GEMM dimensions");
    if (Lk < 1) {  // no keys: out 0, lse -inf (attention.c)
        cudaStream_t st = zs_cuda_stream();
        ZS_CUDA_TRY(cudaMemsetAsync(out, 0, (size_t)(B * Lq * H * Dv) * zs_dtype_size(dt), st));
        if (lse && B * H * Lq > 0) fill_f32<<<zs_blocks(B * H * Lq, 256), 256, 0, st>>>(lse, -INFINITY, B * H * Lq);
        ZS_CUDA_TRY(cudaGetLastError());
        return ZS_OK;
    }
    wide w = wide_of(B, H, Lq, Lk, Dk, Dv, scale, causal);
    ZS_DISPATCH_DT("attention_fwd", dt, fwd<T_>((T_ *)out, lse, (const T_ *)q, (const T_ *)k, (const T_ *)v, w));
}

extern "C" zs_status zs_attention_wide_bwd_cuda(void *dq, void *dk, void *dv, const void *dout, const void *q,
                                                const void *k, const void *v, const void *out, const float *lse,
                                                zs_dtype dt, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t Dk,
                                                int64_t Dv, float scale, int causal) {
    if (Lq > INT32_MAX || Lk > INT32_MAX - 256 || H * Dk > INT32_MAX || H * Dv > INT32_MAX)
        return ZS_ERR(ZS_EUNSUPPORTED, "attention_bwd on CUDA (wide heads): sizes beyond 32-bit GEMM dimensions");
    if (Lk < 1) return ZS_OK;  // no keys: no gradient (attention.c returns before this)
    wide w = wide_of(B, H, Lq, Lk, Dk, Dv, scale, causal);
    ZS_DISPATCH_DT("attention_bwd", dt,
                   bwd<T_>((T_ *)dq, (T_ *)dk, (T_ *)dv, (const T_ *)dout, (const T_ *)q, (const T_ *)k, (const T_ *)v,
                           (const T_ *)out, lse, w));
}

// Test hook: the score buffer's size in floats (<= 0 restores 256 MiB), so that small cases
// run in several chunks.
extern "C" void zs_attention_wide_set_chunk(long long floats) { g_chunk_floats = floats > 0 ? floats : 64LL << 20; }
