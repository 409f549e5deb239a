// Residual add on CUDA: one thread per element, fp32 math.
#include "cuda_ops.cuh"

template <typename T> __global__ void add_fwd_kernel(T *y, const T *a, const T *b, long long n) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i < n) y[i] = from_f<T>(to_f(a[i]) + to_f(b[i]));
}

// da and db may be the same buffer (then it gets dy twice, in this thread, in order).
template <typename T> __global__ void add_bwd_kernel(T *da, T *db, const T *dy, long long n) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    float g = to_f(dy[i]);
    if (da) da[i] = from_f<T>(to_f(da[i]) + g);
    if (db) db[i] = from_f<T>(to_f(db[i]) + g);
}

template <typename T> static zs_status add_fwd(T *y, const T *a, const T *b, int64_t n) {
    add_fwd_kernel<T><<<zs_blocks(n, 256), 256, 0, zs_cuda_stream()>>>(y, a, b, n);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

template <typename T> static zs_status add_bwd(T *da, T *db, const T *dy, int64_t n) {
    add_bwd_kernel<T><<<zs_blocks(n, 256), 256, 0, zs_cuda_stream()>>>(da, db, dy, n);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

extern "C" zs_status zs_add_fwd_cuda(void *y, const void *a, const void *b, zs_dtype dt, int64_t n) {
    ZS_DISPATCH_DT("add_fwd", dt, add_fwd<T_>((T_ *)y, (const T_ *)a, (const T_ *)b, n));
}

extern "C" zs_status zs_add_bwd_cuda(void *da, void *db, const void *dy, zs_dtype dt, int64_t n) {
    ZS_DISPATCH_DT("add_bwd", dt, add_bwd<T_>((T_ *)da, (T_ *)db, (const T_ *)dy, n));
}
