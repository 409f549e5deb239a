// Batch norm (inference form) on CUDA: elementwise forward / dx kernels in fp32 math, and
// dg / db through the deterministic per-channel sums of conv_common.cuh.
#include "conv_common.cuh"

template <typename T>
__global__ void bn_fwd_kernel(T *y, const T *x, const T *g, const T *b, const float *mean, const float *var, float eps,
                              long long C, long long S, long long n) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    const long long c = (i / S) % C;
    const float k = to_f(g[c]) * (1.0f / sqrtf(var[c] + eps));
    y[i] = from_f<T>((to_f(x[i]) - mean[c]) * k + to_f(b[c]));
}

template <typename T>
__global__ void bn_dx_kernel(T *dx, const T *dy, const T *g, const float *var, float eps, long long C, long long S,
                             long long n) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    const long long c = (i / S) % C;
    const float k = to_f(g[c]) * (1.0f / sqrtf(var[c] + eps));
    dx[i] = from_f<T>(to_f(dx[i]) + to_f(dy[i]) * k);
}

template <typename T>
static zs_status bn_fwd(T *y, const T *x, const T *g, const T *b, const float *mean, const float *var, float eps,
                        int64_t N, int64_t C, int64_t S) {
    const long long n = N * C * S;
    bn_fwd_kernel<T><<<zs_blocks(n, 256), 256, 0, zs_cuda_stream()>>>(y, x, g, b, mean, var, eps, C, S, n);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

template <typename T>
static zs_status bn_bwd(T *dx, T *dg, T *db, const T *dy, const T *x, const T *g, const float *mean, const float *var,
                        float eps, int64_t N, int64_t C, int64_t S) {
    if (dx) {
        const long long n = N * C * S;
        bn_dx_kernel<T><<<zs_blocks(n, 256), 256, 0, zs_cuda_stream()>>>(dx, dy, g, var, eps, C, S, n);
        ZS_CUDA_LAUNCHED();
    }
    return chansum_acc<T>(dg, db, dy, x, mean, var, eps, N, C, S);
}

extern "C" zs_status zs_batchnorm_fwd_cuda(void *y, const void *x, const void *g, const void *b, const float *mean,
                                           const float *var, float eps, zs_dtype dt, int64_t N, int64_t C, int64_t S) {
    ZS_DISPATCH_DT("batchnorm_fwd", dt,
                   bn_fwd<T_>((T_ *)y, (const T_ *)x, (const T_ *)g, (const T_ *)b, mean, var, eps, N, C, S));
}

extern "C" zs_status zs_batchnorm_bwd_cuda(void *dx, void *dg, void *db, const void *dy, const void *x, const void *g,
                                           const float *mean, const float *var, float eps, zs_dtype dt, int64_t N,
                                           int64_t C, int64_t S) {
    ZS_DISPATCH_DT("batchnorm_bwd", dt,
                   bn_bwd<T_>((T_ *)dx, (T_ *)dg, (T_ *)db, (const T_ *)dy, (const T_ *)x, (const T_ *)g, mean, var,
                              eps, N, C, S));
}
