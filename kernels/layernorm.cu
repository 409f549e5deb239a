// Layer norm on CUDA (formulas in layernorm.c). One warp per row, fp32 statistics, two
// passes for the variance (stable); rows are re-read from L1/L2 rather than held in
// registers, which keeps the kernel valid for any C.
#include "cuda_ops.cuh"

enum { LN_WARPS = 8 };  // rows per block

template <typename T>
__global__ void ln_fwd_kernel(T *y, float *mean, float *rstd, const T *x, const T *w, const T *b, long long N, int C,
                              float eps) {
    long long n = blockIdx.x * (long long)LN_WARPS + threadIdx.y;
    if (n >= N) return;  // whole warp leaves together
    const T *xr = x + n * C;
    int lane = threadIdx.x;
    float s = 0;
    for (int c = lane; c < C; c += 32) s += to_f(xr[c]);
    float m = warp_sum(s) / C;
    float v = 0;
    for (int c = lane; c < C; c += 32) {
        float d = to_f(xr[c]) - m;
        v += d * d;
    }
    float r = 1.0f / sqrtf(warp_sum(v) / C + eps);
    T *yr = y + n * C;
    for (int c = lane; c < C; c += 32) yr[c] = from_f<T>((to_f(xr[c]) - m) * r * to_f(w[c]) + to_f(b[c]));
    if (lane == 0) {
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = r;
    }
}

template <typename T>
__global__ void ln_bwd_dx_kernel(T *dx, const T *dy, const T *x, const T *w, const float *mean, const float *rstd,
                                 long long N, int C) {
    long long n = blockIdx.x * (long long)LN_WARPS + threadIdx.y;
    if (n >= N) return;
    const T *xr = x + n * C, *dyr = dy + n * C;
    float m = mean[n], r = rstd[n], sg = 0, sgx = 0;
    int lane = threadIdx.x;
    // __fmul_rn: no FMA contraction of g, so both loops see the same g (with C = 1 the
    // exact result g - mean(g) = 0 would otherwise come out as rounding noise times rstd).
    for (int c = lane; c < C; c += 32) {
        float g = __fmul_rn(to_f(dyr[c]), to_f(w[c]));
        sg += g;
        sgx += g * (to_f(xr[c]) - m) * r;
    }
    sg = warp_sum(sg) / C;
    sgx = warp_sum(sgx) / C;
    T *dxr = dx + n * C;
    for (int c = lane; c < C; c += 32) {
        float g = __fmul_rn(to_f(dyr[c]), to_f(w[c]));
        dxr[c] = from_f<T>(to_f(dxr[c]) + r * (g - sg - (to_f(xr[c]) - m) * r * sgx));
    }
}

template <typename T>
static zs_status ln_fwd(T *y, float *mean, float *rstd, const T *x, const T *w, const T *b, int64_t N, int64_t C,
                        float eps) {
    ln_fwd_kernel<T><<<zs_blocks(N, LN_WARPS), dim3(32, LN_WARPS), 0, zs_cuda_stream()>>>(y, mean, rstd, x, w, b, N,
                                                                                          (int)C, eps);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

template <typename T>
static zs_status ln_bwd(T *dx, T *dw, T *db, const T *dy, const T *x, const T *w, const float *mean,
                        const float *rstd, int64_t N, int64_t C) {
    cudaStream_t s = zs_cuda_stream();
    if (dx) {
        ln_bwd_dx_kernel<T><<<zs_blocks(N, LN_WARPS), dim3(32, LN_WARPS), 0, s>>>(dx, dy, x, w, mean, rstd, N, (int)C);
        ZS_CUDA_LAUNCHED();
    }
    return colsum_acc<T>(dw, db, dy, x, mean, rstd, N, C);  // dw += sum dy * xhat, db += sum dy
}

extern "C" zs_status zs_layernorm_fwd_cuda(void *y, float *mean, float *rstd, const void *x, const void *w,
                                           const void *b, zs_dtype dt, int64_t N, int64_t C, float eps) {
    if (C > INT32_MAX) return ZS_ERR(ZS_EUNSUPPORTED, "layernorm_fwd on CUDA: C=%lld too large", (long long)C);
    ZS_DISPATCH_DT("layernorm_fwd", dt,
                   ln_fwd<T_>((T_ *)y, mean, rstd, (const T_ *)x, (const T_ *)w, (const T_ *)b, N, C, eps));
}

extern "C" zs_status zs_layernorm_bwd_cuda(void *dx, void *dw, void *db, const void *dy, const void *x, const void *w,
                                           const float *mean, const float *rstd, zs_dtype dt, int64_t N, int64_t C) {
    if (C > INT32_MAX) return ZS_ERR(ZS_EUNSUPPORTED, "layernorm_bwd on CUDA: C=%lld too large", (long long)C);
    ZS_DISPATCH_DT("layernorm_bwd", dt,
                   ln_bwd<T_>((T_ *)dx, (T_ *)dw, (T_ *)db, (const T_ *)dy, (const T_ *)x, (const T_ *)w, mean, rstd,
                              N, C));
}
