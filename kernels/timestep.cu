// Sinusoidal timestep embedding on CUDA (timestep.h): one thread per (b, i < half) pair,
// the fp32 argument of timestep_math.h, sinf / cosf (full-range, not the fast intrinsics).
#include "cuda_ops.cuh"
#include "timestep_math.h"
extern "C" {
#include "kernels/unet_cuda.h"
}

template <typename T>
__global__ void ts_kernel(T *emb, const float *t, long long dim, long long half, int flip, float shift, float scale,
                          float P, long long n) {
    const long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (k >= n) return;
    const long long b = k / half, i = k - b * half;
    const float a = zs_ts_arg(t[b], i, half, shift, scale, P);
    T *e = emb + b * dim;
    e[flip ? half + i : i] = from_f<T>(sinf(a));
    e[flip ? i : half + i] = from_f<T>(cosf(a));
    if ((dim & 1) && i == 0) e[dim - 1] = from_f<T>(0.0f);
}

template <typename T>
static zs_status ts_run(T *emb, const float *t, int64_t B, int64_t dim, int flip, float shift, float scale, float P) {
    const long long half = dim / 2, n = B * half;
    ts_kernel<T><<<zs_blocks(n, 256), 256, 0, zs_cuda_stream()>>>(emb, t, dim, half, flip, shift, scale, P, n);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

extern "C" zs_status zs_timestep_embedding_cuda(void *emb, const float *t, zs_dtype dt, int64_t B, int64_t dim,
                                                int flip, float shift, float scale, float max_period) {
    ZS_DISPATCH_DT("timestep_embedding", dt, ts_run<T_>((T_ *)emb, t, B, dim, flip, shift, scale, max_period));
}
