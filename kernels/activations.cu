// Activations (GELU family, ReLU, SiLU) on CUDA: one thread per element, fp32 math (act_math.h).
#include "act_math.h"
#include "cuda_ops.cuh"

template <typename T> __global__ void act_fwd_kernel(int act, T *y, const T *x, long long n) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i < n) y[i] = from_f<T>(zs_act_f(act, to_f(x[i])));
}

template <typename T> __global__ void act_bwd_kernel(int act, T *dx, const T *dy, const T *x, long long n) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i < n) dx[i] = from_f<T>(to_f(dx[i]) + to_f(dy[i]) * zs_act_df(act, to_f(x[i])));
}

template <typename T> static zs_status act_fwd(int act, T *y, const T *x, int64_t n) {
    act_fwd_kernel<T><<<zs_blocks(n, 256), 256, 0, zs_cuda_stream()>>>(act, y, x, n);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

template <typename T> static zs_status act_bwd(int act, T *dx, const T *dy, const T *x, int64_t n) {
    act_bwd_kernel<T><<<zs_blocks(n, 256), 256, 0, zs_cuda_stream()>>>(act, dx, dy, x, n);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

extern "C" zs_status zs_act_fwd_cuda(int act, void *y, const void *x, zs_dtype dt, int64_t n) {
    ZS_DISPATCH_DT("act_fwd", dt, act_fwd<T_>(act, (T_ *)y, (const T_ *)x, n));
}

extern "C" zs_status zs_act_bwd_cuda(int act, void *dx, const void *dy, const void *x, zs_dtype dt, int64_t n) {
    ZS_DISPATCH_DT("act_bwd", dt, act_bwd<T_>(act, (T_ *)dx, (const T_ *)dy, (const T_ *)x, n));
}
