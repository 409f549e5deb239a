// GEGLU on CUDA (formulas in geglu.h): one thread per output element, fp32 math through
// act_math.h (the CPU twin's expression).
#include "act_math.h"
#include "cuda_ops.cuh"
extern "C" {
#include "kernels/unet_cuda.h"
}

template <typename T>
__global__ void geglu_fwd_kernel(T *y, const T *x, long long F, long long n) {
    const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    const long long r = i / F, f = i - r * F, h = r * 2 * F + f;
    y[i] = from_f<T>(to_f(x[h]) * zs_act_f(0, to_f(x[h + F])));
}

template <typename T>
__global__ void geglu_bwd_kernel(T *dx, const T *dy, const T *x, long long F, long long n) {
    const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    const long long r = i / F, f = i - r * F, h = r * 2 * F + f;
    const float d = to_f(dy[i]), gt = to_f(x[h + F]);
    dx[h] = from_f<T>(to_f(dx[h]) + d * zs_act_f(0, gt));
    dx[h + F] = from_f<T>(to_f(dx[h + F]) + d * to_f(x[h]) * zs_act_df(0, gt));
}

template <typename T> static zs_status geglu_fwd(T *y, const T *x, int64_t N, int64_t F) {
    const long long n = N * F;
    geglu_fwd_kernel<T><<<zs_blocks(n, 256), 256, 0, zs_cuda_stream()>>>(y, x, F, n);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

template <typename T> static zs_status geglu_bwd(T *dx, const T *dy, const T *x, int64_t N, int64_t F) {
    const long long n = N * F;
    geglu_bwd_kernel<T><<<zs_blocks(n, 256), 256, 0, zs_cuda_stream()>>>(dx, dy, x, F, n);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

extern "C" zs_status zs_geglu_fwd_cuda(void *y, const void *x, zs_dtype dt, int64_t N, int64_t F) {
    ZS_DISPATCH_DT("geglu_fwd", dt, geglu_fwd<T_>((T_ *)y, (const T_ *)x, N, F));
}

extern "C" zs_status zs_geglu_bwd_cuda(void *dx, const void *dy, const void *x, zs_dtype dt, int64_t N, int64_t F) {
    ZS_DISPATCH_DT("geglu_bwd", dt, geglu_bwd<T_>((T_ *)dx, (const T_ *)dy, (const T_ *)x, N, F));
}
