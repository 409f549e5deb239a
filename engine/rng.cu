// GPU fill of the Philox streams: the same element function as the host (philox.h).
#include "cuda_common.cuh"
#include "philox.h"
extern "C" {
#include "rng.h"
}

template <typename T> __device__ T from_f32(float v);
template <> __device__ float from_f32<float>(float v) { return v; }
template <> __device__ __half from_f32<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

template <typename T>
__global__ void rng_fill_kernel(T *x, long long n, uint64_t seed, uint64_t offset, int normal) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    uint64_t idx = offset + (uint64_t)i;
    x[i] = from_f32<T>(normal ? zs_philox_normal(seed, idx) : zs_philox_uniform(seed, idx));
}

extern "C" zs_status zs_rng_fill_cuda(zs_tensor *t, uint64_t seed, uint64_t offset, int normal) {
    long long n = zs_numel(t);
    if (n == 0) return ZS_OK;
    cudaStream_t s = zs_cuda_stream();
    switch (t->dtype) {
    case ZS_F32: rng_fill_kernel<<<zs_blocks(n, 256), 256, 0, s>>>((float *)t->data, n, seed, offset, normal); break;
    case ZS_F16: rng_fill_kernel<<<zs_blocks(n, 256), 256, 0, s>>>((__half *)t->data, n, seed, offset, normal); break;
    case ZS_BF16:
        rng_fill_kernel<<<zs_blocks(n, 256), 256, 0, s>>>((__nv_bfloat16 *)t->data, n, seed, offset, normal);
        break;
    default: return ZS_ERR(ZS_EUNSUPPORTED, "rng fill of %s: dtype %s", t->name ? t->name : "tensor", zs_dtype_name(t->dtype));
    }
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}
