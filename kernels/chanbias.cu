// Per-(sample, channel) bias on CUDA (chanbias.h): forward and dx one thread per element;
// db one block per (n, c) plane, each thread summing a fixed stride of it, then a fixed
// warp / block tree: deterministic, no atomics.
#include "cuda_ops.cuh"
extern "C" {
#include "kernels/unet_cuda.h"
}

template <typename T>
__global__ void cb_fwd_kernel(T *y, const T *x, const T *b, long long S, long long n) {
    const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    y[i] = from_f<T>(to_f(x[i]) + to_f(b[i / S]));
}

template <typename T>
__global__ void cb_dx_kernel(T *dx, const T *dy, long long n) {
    const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    dx[i] = from_f<T>(to_f(dx[i]) + to_f(dy[i]));
}

// 256 threads per plane.
template <typename T>
__global__ void cb_db_kernel(T *db, const T *dy, long long S) {
    __shared__ float part[8];
    const long long p = blockIdx.x;
    const T *g = dy + p * S;
    float acc = 0;
    for (long long s = threadIdx.x; s < S; s += blockDim.x) acc += to_f(g[s]);
    acc = warp_sum(acc);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = acc;
    __syncthreads();
    if (threadIdx.x == 0) {
        float t = 0;
        for (int k = 0; k < 8; k++) t += part[k];
        db[p] = from_f<T>(to_f(db[p]) + t);
    }
}

template <typename T>
static zs_status cb_fwd(T *y, const T *x, const T *b, int64_t P, int64_t S) {
    const long long n = P * S;
    cb_fwd_kernel<T><<<zs_blocks(n, 256), 256, 0, zs_cuda_stream()>>>(y, x, b, S, n);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

template <typename T>
static zs_status cb_bwd(T *dx, T *db, const T *dy, int64_t P, int64_t S) {
    const long long n = P * S;
    if (dx) {
        cb_dx_kernel<T><<<zs_blocks(n, 256), 256, 0, zs_cuda_stream()>>>(dx, dy, n);
        ZS_CUDA_LAUNCHED();
    }
    if (db) {
        cb_db_kernel<T><<<(unsigned)P, 256, 0, zs_cuda_stream()>>>(db, dy, S);
        ZS_CUDA_LAUNCHED();
    }
    return ZS_OK;
}

extern "C" zs_status zs_chanbias_fwd_cuda(void *y, const void *x, const void *b, zs_dtype dt, int64_t P, int64_t S) {
    ZS_DISPATCH_DT("chanbias_fwd", dt, cb_fwd<T_>((T_ *)y, (const T_ *)x, (const T_ *)b, P, S));
}

extern "C" zs_status zs_chanbias_bwd_cuda(void *dx, void *db, const void *dy, zs_dtype dt, int64_t P, int64_t S) {
    ZS_DISPATCH_DT("chanbias_bwd", dt, cb_bwd<T_>((T_ *)dx, (T_ *)db, (const T_ *)dy, P, S));
}
