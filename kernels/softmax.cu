// Softmax on CUDA (formulas in softmax.c). One warp per row, fp32 math; the row is read
// three times (max, sum, write), from L1/L2 after the first, so any C works.
#include "cuda_ops.cuh"

enum { SM_WARPS = 8 };  // rows per block

template <typename T> __global__ void softmax_fwd_kernel(T *y, const T *x, long long N, int C) {
    long long n = blockIdx.x * (long long)SM_WARPS + threadIdx.y;
    if (n >= N) return;
    const T *xr = x + n * C;
    int lane = threadIdx.x;
    float m = -INFINITY;
    for (int c = lane; c < C; c += 32) m = fmaxf(m, to_f(xr[c]));
    m = warp_max(m);
    float s = 0;
    for (int c = lane; c < C; c += 32) s += expf(to_f(xr[c]) - m);
    float inv = 1.0f / warp_sum(s);
    T *yr = y + n * C;
    for (int c = lane; c < C; c += 32) yr[c] = from_f<T>(expf(to_f(xr[c]) - m) * inv);
}

template <typename T> __global__ void softmax_bwd_kernel(T *dx, const T *dy, const T *y, long long N, int C) {
    long long n = blockIdx.x * (long long)SM_WARPS + threadIdx.y;
    if (n >= N) return;
    const T *dyr = dy + n * C, *yr = y + n * C;
    int lane = threadIdx.x;
    float d = 0;
    for (int c = lane; c < C; c += 32) d += to_f(dyr[c]) * to_f(yr[c]);
    d = warp_sum(d);
    T *dxr = dx + n * C;
    for (int c = lane; c < C; c += 32) dxr[c] = from_f<T>(to_f(dxr[c]) + to_f(yr[c]) * (to_f(dyr[c]) - d));
}

template <typename T> static zs_status softmax_fwd(T *y, const T *x, int64_t N, int64_t C) {
    softmax_fwd_kernel<T><<<zs_blocks(N, SM_WARPS), dim3(32, SM_WARPS), 0, zs_cuda_stream()>>>(y, x, N, (int)C);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

template <typename T> static zs_status softmax_bwd(T *dx, const T *dy, const T *y, int64_t N, int64_t C) {
    softmax_bwd_kernel<T><<<zs_blocks(N, SM_WARPS), dim3(32, SM_WARPS), 0, zs_cuda_stream()>>>(dx, dy, y, N, (int)C);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

extern "C" zs_status zs_softmax_fwd_cuda(void *y, const void *x, zs_dtype dt, int64_t N, int64_t C) {
    if (C > INT32_MAX) return ZS_ERR(ZS_EUNSUPPORTED, "softmax_fwd on CUDA: C=%lld too large", (long long)C);
    ZS_DISPATCH_DT("softmax_fwd", dt, softmax_fwd<T_>((T_ *)y, (const T_ *)x, N, C));
}

extern "C" zs_status zs_softmax_bwd_cuda(void *dx, const void *dy, const void *y, zs_dtype dt, int64_t N, int64_t C) {
    if (C > INT32_MAX) return ZS_ERR(ZS_EUNSUPPORTED, "softmax_bwd on CUDA: C=%lld too large", (long long)C);
    ZS_DISPATCH_DT("softmax_bwd", dt, softmax_bwd<T_>((T_ *)dx, (const T_ *)dy, (const T_ *)y, N, C));
}
