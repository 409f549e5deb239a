// Patchify on CUDA: one thread per patch element; each image pixel is touched by at most one
// thread, so the backward's += needs no atomics.
#include "kernels/cuda_ops.cuh"
extern "C" {
#include "models/patchify.h"
}

template <typename T>
__global__ void patchify_kernel(T *img, T *pt, int bwd, long long B, long long C, long long H, long long W, long long P) {
    long long GH = H / P, GW = W / P, K = C * P * P, n = B * GH * GW * K;
    long long e = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (e >= n) return;
    long long k = e % K, row = e / K, g = row % (GH * GW), b = row / (GH * GW);
    long long c = k / (P * P), i = (k / P) % P, j = k % P;
    long long src = ((b * C + c) * H + (g / GW) * P + i) * W + (g % GW) * P + j;
    if (bwd) img[src] = from_f<T>(to_f(img[src]) + to_f(pt[e]));
    else pt[e] = img[src];
}

template <typename T> static zs_status launch(T *img, T *pt, int bwd, long long B, long long C, long long H, long long W,
                                              long long P) {
    long long n = B * (H / P) * (W / P) * C * P * P;
    if (n == 0) return ZS_OK;
    patchify_kernel<T><<<zs_blocks(n, 256), 256, 0, zs_cuda_stream()>>>(img, pt, bwd, B, C, H, W, P);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

extern "C" zs_status zs_patchify_cuda(void *img, void *patches, int bwd, zs_dtype dt, int64_t B, int64_t C, int64_t H,
                                      int64_t W, int64_t P) {
    ZS_DISPATCH_DT("patchify", dt, launch<T_>((T_ *)img, (T_ *)patches, bwd, B, C, H, W, P));
}
