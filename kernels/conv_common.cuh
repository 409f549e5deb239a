// Shared by kernels/conv2d.cu and kernels/batchnorm.cu: the cuDNN status check, and the
// deterministic per-channel sums over [N, C, S] tensors (conv db, batch-norm dg / db).
#ifndef ZS_CONV_COMMON_CUH
#define ZS_CONV_COMMON_CUH
// cuDNN 9 marks the legacy convolution API (descriptors, cudnnConvolution*) deprecated; its
// headers only attach the attribute when CUDNN_WARN_DEPRECATED is defined. nvcc runs with
// -Werror all-warnings, so make sure it is not: zsmlc uses that API on purpose (simple,
// heuristic algorithm choice, no graph API needed for plain convolutions).
#undef CUDNN_WARN_DEPRECATED
#include <cudnn.h>
#include "cuda_ops.cuh"
#include "kernels/conv_cuda.h"

#define ZS_CUDNN_TRY(call)                                                                         \
    do {                                                                                           \
        cudnnStatus_t e_ = (call);                                                                 \
        if (e_ != CUDNN_STATUS_SUCCESS) return ZS_ERR(ZS_ECUDA, "%s: %s", #call, cudnnGetErrorString(e_)); \
    } while (0)

// ---- per-channel sums, fixed partition and order (bitwise reproducible, no atomics) -------
// Element j in [0, N S) of channel c is t[(n C + c) S + s], j = n S + s.
// Stage 1: block (c, r) sums elements [r per, (r + 1) per) of channel c: thread t takes
// j = j0 + t, j0 + t + 256, ...; warps reduce by shuffles, warp 0 adds the 8 warp sums in
// order. pb[r C + c] = sum dy, pg[r C + c] = sum dy * (x - mean[c]) (when x is given).
template <typename T>
__global__ void chansum_partial_kernel(float *pg, float *pb, const T *dy, const T *x, const float *mean, long long N,
                                       long long C, long long S, long long per) {
    __shared__ float wg[8], wb[8];
    const long long c = blockIdx.x, M = N * S, j0 = blockIdx.y * per, j1 = j0 + per < M ? j0 + per : M;
    const float m = x ? mean[c] : 0.0f;
    float ag = 0, ab = 0;
    for (long long j = j0 + threadIdx.x; j < j1; j += 256) {
        const long long n = j / S, s = j - n * S, i = (n * C + c) * S + s;
        const float d = to_f(dy[i]);
        ab += d;
        if (x) ag += d * (to_f(x[i]) - m);
    }
    ab = warp_sum(ab);
    ag = warp_sum(ag);
    if ((threadIdx.x & 31) == 0) {
        wb[threadIdx.x >> 5] = ab;
        wg[threadIdx.x >> 5] = ag;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        float tb = 0, tg = 0;
        for (int k = 0; k < 8; k++) {
            tb += wb[k];
            tg += wg[k];
        }
        pb[blockIdx.y * C + c] = tb;
        if (pg) pg[blockIdx.y * C + c] = tg;
    }
}

// dg[c] += scale[c] * sum_r pg[r, c] (scale: var given: 1 / sqrt(var + eps), else 1);
// db[c] += sum_r pb[r, c]; partials added in order.
template <typename T>
__global__ void chansum_final_kernel(T *dg, T *db, const float *pg, const float *pb, const float *var, float eps,
                                     long long R, long long C) {
    const long long c = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (c >= C) return;
    float tg = 0, tb = 0;
    for (long long r = 0; r < R; r++) {
        if (dg) tg += pg[r * C + c];
        tb += pb[r * C + c];
    }
    if (dg) dg[c] = from_f<T>(to_f(dg[c]) + tg * (var ? 1.0f / sqrtf(var[c] + eps) : 1.0f));
    if (db) db[c] = from_f<T>(to_f(db[c]) + tb);
}

// db[c] += sum dy[:, c, :]; dg[c] += sum dy[:, c, :] * (x[:, c, :] - mean[c]) / sqrt(var[c] + eps)
// (dg needs x, mean, var). Scratch from the stream-ordered allocator.
template <typename T>
static zs_status chansum_acc(T *dg, T *db, const T *dy, const T *x, const float *mean, const float *var, float eps,
                             long long N, long long C, long long S) {
    if ((!dg && !db) || N <= 0 || C <= 0 || S <= 0) return ZS_OK;
    if (C > 2147483647LL) return ZS_ERR(ZS_EUNSUPPORTED, "channel sums: %lld channels exceed the grid", C);
    cudaStream_t st = zs_cuda_stream();
    const long long M = N * S;
    long long R = (M + 4095) / 4096;  // about 4096 elements a block, at most 1024 chunks
    if (R > 1024) R = 1024;
    const long long per = (M + R - 1) / R;
    R = (M + per - 1) / per;  // no empty chunks
    float *part = NULL;
    ZS_CUDA_TRY(cudaMallocAsync((void **)&part, (size_t)(2 * R * C) * sizeof(float), st));
    float *pb = part, *pg = dg ? part + R * C : NULL;
    chansum_partial_kernel<T><<<dim3((unsigned)C, (unsigned)R), 256, 0, st>>>(pg, pb, dy, dg ? x : (const T *)NULL,
                                                                             mean, N, C, S, per);
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) {
        chansum_final_kernel<T><<<zs_blocks(C, 256), 256, 0, st>>>(dg, db, pg, pb, dg ? var : (const float *)NULL, eps,
                                                                  R, C);
        e = cudaGetLastError();
    }
    cudaError_t f = cudaFreeAsync(part, st);
    if (e != cudaSuccess) return ZS_ERR(ZS_ECUDA, "channel sums (%lld x %lld x %lld): %s", N, C, S, cudaGetErrorString(e));
    ZS_CUDA_TRY(f);
    return ZS_OK;
}

#endif
