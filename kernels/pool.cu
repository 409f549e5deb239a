// Average pooling on CUDA. Forward: one thread per output. Backward: one thread per input
// element gathering dy over the windows that cover it (no atomics: deterministic); inputs
// past the last full window (floor mode) are covered by none and keep their value.
#include "cuda_ops.cuh"
#include "kernels/conv_cuda.h"

template <typename T>
__global__ void pool_fwd_kernel(T *y, const T *x, long long H, long long W, long long Ho, long long Wo, int k, int s,
                                long long n) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    const long long ow = i % Wo, oh = (i / Wo) % Ho, pl = i / (Wo * Ho);
    const T *w0 = x + pl * H * W + oh * s * W + ow * s;
    float acc = 0;
    for (int a = 0; a < k; a++)
        for (int b = 0; b < k; b++) acc += to_f(w0[a * W + b]);
    y[i] = from_f<T>(acc * (1.0f / ((float)k * (float)k)));
}

template <typename T>
__global__ void pool_bwd_kernel(T *dx, const T *dy, long long H, long long W, long long Ho, long long Wo, int k, int s,
                                long long n) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    const long long iw = i % W, ih = (i / W) % H, pl = i / (W * H);
    // Windows oh with oh s <= ih < oh s + k, i.e. ceil((ih - k + 1) / s) <= oh <= ih / s.
    const long long h0 = ih >= k ? (ih - k) / s + 1 : 0, w0 = iw >= k ? (iw - k) / s + 1 : 0;
    const long long h1 = ih / s < Ho - 1 ? ih / s : Ho - 1, w1 = iw / s < Wo - 1 ? iw / s : Wo - 1;
    const T *d = dy + pl * Ho * Wo;
    float acc = 0;
    for (long long oh = h0; oh <= h1; oh++)
        for (long long ow = w0; ow <= w1; ow++) acc += to_f(d[oh * Wo + ow]);
    if (h0 <= h1 && w0 <= w1) dx[i] = from_f<T>(to_f(dx[i]) + acc * (1.0f / ((float)k * (float)k)));
}

template <typename T>
static zs_status pool_fwd(T *y, const T *x, int64_t NC, int64_t H, int64_t W, int64_t Ho, int64_t Wo, int k, int s) {
    const long long n = NC * Ho * Wo;
    pool_fwd_kernel<T><<<zs_blocks(n, 256), 256, 0, zs_cuda_stream()>>>(y, x, H, W, Ho, Wo, k, s, n);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

template <typename T>
static zs_status pool_bwd(T *dx, const T *dy, int64_t NC, int64_t H, int64_t W, int64_t Ho, int64_t Wo, int k, int s) {
    const long long n = NC * H * W;
    pool_bwd_kernel<T><<<zs_blocks(n, 256), 256, 0, zs_cuda_stream()>>>(dx, dy, H, W, Ho, Wo, k, s, n);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

extern "C" zs_status zs_avgpool2d_fwd_cuda(void *y, const void *x, zs_dtype dt, int64_t NC, int64_t H, int64_t W,
                                           int64_t Ho, int64_t Wo, int k, int s) {
    ZS_DISPATCH_DT("avgpool2d_fwd", dt, pool_fwd<T_>((T_ *)y, (const T_ *)x, NC, H, W, Ho, Wo, k, s));
}

extern "C" zs_status zs_avgpool2d_bwd_cuda(void *dx, const void *dy, zs_dtype dt, int64_t NC, int64_t H, int64_t W,
                                           int64_t Ho, int64_t Wo, int k, int s) {
    ZS_DISPATCH_DT("avgpool2d_bwd", dt, pool_bwd<T_>((T_ *)dx, (const T_ *)dy, NC, H, W, Ho, Wo, k, s));
}
