// Shared by kernels/*.cu: fp32 load/store of F32/F16/BF16 elements, warp reductions, and
// the per-dtype dispatch of a templated launcher.
#ifndef ZS_CUDA_OPS_CUH
#define ZS_CUDA_OPS_CUH
#include "engine/cuda_common.cuh"
extern "C" {
#include "kernels/op_common.h"
}

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Evaluates `return EXPR;` with T_ typedef'd to the dtype's element type (float, __half,
// __nv_bfloat16), e.g. ZS_DISPATCH_DT("op", dt, launch<T_>((T_ *)y, n)).
#define ZS_DISPATCH_DT(op, dt, ...)                                                               \
    switch (dt) {                                                                                \
    case ZS_F32: { typedef float T_; return __VA_ARGS__; }                                       \
    case ZS_F16: { typedef __half T_; return __VA_ARGS__; }                                      \
    case ZS_BF16: { typedef __nv_bfloat16 T_; return __VA_ARGS__; }                              \
    default: return ZS_ERR(ZS_EUNSUPPORTED, "%s on CUDA: dtype %s", op, zs_dtype_name(dt));      \
    }

// ---- deterministic column sums over rows (bias and layer norm parameter gradients) ------
// sb[c] = sum_n dy[n, c] and, when x is given, sw[c] = sum_n dy[n, c] * (x[n, c] - mean[n]) * rstd[n].
// Stage 1: block (bx, by) sums rows [by * rows_per, ...) of columns [32 bx, 32 bx + 32) into
// fp32 partials [R, C]; stage 2 adds the R partials in order and accumulates into dw / db.
// Fixed partition and order: bitwise reproducible.
template <typename T>
__global__ void colsum_partial_kernel(float *pw, float *pb, const T *dy, const T *x, const float *mean,
                                      const float *rstd, long long N, long long C, long long rows_per) {
    __shared__ float sw[16][33], sb[16][33];
    long long c = blockIdx.x * 32LL + threadIdx.x;
    long long n0 = blockIdx.y * rows_per, n1 = n0 + rows_per < N ? n0 + rows_per : N;
    float aw = 0, ab = 0;
    if (c < C)
        for (long long n = n0 + threadIdx.y; n < n1; n += 16) {
            float d = to_f(dy[n * C + c]);
            ab += d;
            if (x) aw += d * (to_f(x[n * C + c]) - mean[n]) * rstd[n];
        }
    sw[threadIdx.y][threadIdx.x] = aw;
    sb[threadIdx.y][threadIdx.x] = ab;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float tw = 0, tb = 0;
        for (int k = 0; k < 16; k++) {
            tw += sw[k][threadIdx.x];
            tb += sb[k][threadIdx.x];
        }
        if (pw) pw[blockIdx.y * C + c] = tw;
        pb[blockIdx.y * C + c] = tb;
    }
}

template <typename T>
__global__ void colsum_final_kernel(T *dw, T *db, const float *pw, const float *pb, long long R, long long C) {
    long long c = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (c >= C) return;
    float tw = 0, tb = 0;
    for (long long r = 0; r < R; r++) {
        if (dw) tw += pw[r * C + c];
        tb += pb[r * C + c];
    }
    if (dw) dw[c] = from_f<T>(to_f(dw[c]) + tw);
    if (db) db[c] = from_f<T>(to_f(db[c]) + tb);
}

// dw (needs x, mean, rstd) and / or db += column sums of dy [N, C]; scratch from the
// stream-ordered allocator.
template <typename T>
static zs_status colsum_acc(T *dw, T *db, const T *dy, const T *x, const float *mean, const float *rstd, long long N,
                            long long C) {
    if ((!dw && !db) || N <= 0 || C <= 0) return ZS_OK;
    cudaStream_t s = zs_cuda_stream();
    long long R = (N + 63) / 64;
    if (R > 4096) R = 4096;
    long long rows_per = (N + R - 1) / R;
    R = (N + rows_per - 1) / rows_per;  // no empty chunks
    float *part = NULL;
    ZS_CUDA_TRY(cudaMallocAsync((void **)&part, (size_t)(2 * R * C) * sizeof(float), s));
    float *pw = dw ? part : NULL, *pb = part + R * C;
    colsum_partial_kernel<T><<<dim3(zs_blocks(C, 32), (unsigned)R), dim3(32, 16), 0, s>>>(
        pw, pb, dy, dw ? x : (const T *)NULL, mean, rstd, N, C, rows_per);
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) {
        colsum_final_kernel<T><<<zs_blocks(C, 256), 256, 0, s>>>(dw, db, pw, pb, R, C);
        e = cudaGetLastError();
    }
    cudaError_t f = cudaFreeAsync(part, s);
    if (e != cudaSuccess) return ZS_ERR(ZS_ECUDA, "column sums (%lld x %lld): %s", N, C, cudaGetErrorString(e));
    ZS_CUDA_TRY(f);
    return ZS_OK;
}

#endif
