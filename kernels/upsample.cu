// Nearest resize on CUDA (upsample.h): forward one thread per output element; backward one
// thread per dx element gathering its readers' dy (ranges by binary search over the monotone
// index rule of upsample_math.h), rows then columns in increasing order as the CPU twin:
// deterministic, no atomics.
#include "cuda_ops.cuh"
#include "upsample_math.h"
extern "C" {
#include "kernels/unet_cuda.h"
}

template <typename T>
__global__ void up_fwd_kernel(T *y, const T *x, long long H, long long W, long long Ho, long long Wo, float sh,
                              float sw, long long n) {
    const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    const long long ow = i % Wo, t = i / Wo, oh = t % Ho, p = t / Ho;
    y[i] = x[(p * H + zs_nearest_src(oh, sh, H)) * W + zs_nearest_src(ow, sw, W)];
}

template <typename T>
__global__ void up_bwd_kernel(T *dx, const T *dy, long long H, long long W, long long Ho, long long Wo, float sh,
                              float sw, long long n) {
    const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    const long long w = i % W, t = i / W, h = t % H, p = t / H;
    const long long h0 = zs_nearest_first(h, sh, H, Ho), h1 = zs_nearest_first(h + 1, sh, H, Ho);
    const long long w0 = zs_nearest_first(w, sw, W, Wo), w1 = zs_nearest_first(w + 1, sw, W, Wo);
    const T *dyp = dy + p * Ho * Wo;
    float s = 0;
    for (long long oh = h0; oh < h1; oh++)
        for (long long ow = w0; ow < w1; ow++) s += to_f(dyp[oh * Wo + ow]);
    dx[i] = from_f<T>(to_f(dx[i]) + s);
}

template <typename T>
static zs_status up_fwd(T *y, const T *x, int64_t NC, int64_t H, int64_t W, int64_t Ho, int64_t Wo) {
    const long long n = NC * Ho * Wo;
    up_fwd_kernel<T><<<zs_blocks(n, 256), 256, 0, zs_cuda_stream()>>>(y, x, H, W, Ho, Wo, zs_nearest_scale(H, Ho),
                                                                     zs_nearest_scale(W, Wo), n);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

template <typename T>
static zs_status up_bwd(T *dx, const T *dy, int64_t NC, int64_t H, int64_t W, int64_t Ho, int64_t Wo) {
    const long long n = NC * H * W;
    up_bwd_kernel<T><<<zs_blocks(n, 256), 256, 0, zs_cuda_stream()>>>(dx, dy, H, W, Ho, Wo, zs_nearest_scale(H, Ho),
                                                                     zs_nearest_scale(W, Wo), n);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

extern "C" zs_status zs_upsample_nearest_fwd_cuda(void *y, const void *x, zs_dtype dt, int64_t NC, int64_t H,
                                                  int64_t W, int64_t Ho, int64_t Wo) {
    ZS_DISPATCH_DT("upsample_nearest_fwd", dt, up_fwd<T_>((T_ *)y, (const T_ *)x, NC, H, W, Ho, Wo));
}

extern "C" zs_status zs_upsample_nearest_bwd_cuda(void *dx, const void *dy, zs_dtype dt, int64_t NC, int64_t H,
                                                  int64_t W, int64_t Ho, int64_t Wo) {
    ZS_DISPATCH_DT("upsample_nearest_bwd", dt, up_bwd<T_>((T_ *)dx, (const T_ *)dy, NC, H, W, Ho, Wo));
}
