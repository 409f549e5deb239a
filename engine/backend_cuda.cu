// CUDA side of the backend: device selection, memory, the engine stream, library handles.
#include <cudnn.h>
#include <nccl.h>
#include <stdio.h>
#include "cuda_common.cuh"
extern "C" {
#include "backend.h"
}

static cudaStream_t g_stream;
static cublasHandle_t g_cublas;
static cublasLtHandle_t g_cublaslt;
static int g_inited = 0;

const char *zs_cublas_status_str(cublasStatus_t s) { return cublasGetStatusString(s); }

extern "C" int zs_cuda_available_impl(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) { cudaGetLastError(); return 0; }
    return n > 0;
}

extern "C" zs_status zs_cuda_init_impl(int device_index) {
    if (g_inited) return ZS_OK;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0)
        return ZS_ERR(ZS_ECUDA, "no CUDA device available (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    if (device_index >= n) return ZS_ERR(ZS_EINVAL, "--device cuda:%d: only %d GPU(s)", device_index, n);
    ZS_CUDA_TRY(cudaSetDevice(device_index));
    ZS_CUDA_TRY(cudaStreamCreateWithFlags(&g_stream, cudaStreamNonBlocking));
    ZS_CUBLAS_TRY(cublasCreate(&g_cublas));
    ZS_CUBLAS_TRY(cublasSetStream(g_cublas, g_stream));
    ZS_CUBLAS_TRY(cublasLtCreate(&g_cublaslt));
    // Ops take scratch with cudaMallocAsync; keep freed blocks in the pool instead of
    // returning them to the driver at every synchronisation.
    cudaMemPool_t pool;
    ZS_CUDA_TRY(cudaDeviceGetDefaultMemPool(&pool, device_index));
    uint64_t keep = UINT64_MAX;
    ZS_CUDA_TRY(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    g_inited = 1;
    return ZS_OK;
}

extern "C" cudaStream_t zs_cuda_stream(void) { return g_stream; }
extern "C" cublasHandle_t zs_cublas(void) { return g_cublas; }
extern "C" cublasLtHandle_t zs_cublaslt(void) { return g_cublaslt; }

extern "C" zs_status zs_cuda_malloc(void **p, size_t bytes, const char *what) {
    if (!g_inited) ZS_TRY(zs_cuda_init_impl(0));
    cudaError_t e = cudaMalloc(p, bytes ? bytes : 1);
    if (e == cudaErrorMemoryAllocation) {  // ops' freed scratch may sit in the pool (kept above): return it, retry
        cudaGetLastError();
        if (zs_cuda_pool_trim() == ZS_OK) e = cudaMalloc(p, bytes ? bytes : 1);
    }
    if (e != cudaSuccess) {
        size_t fr = 0, tot = 0;
        cudaGetLastError();
        cudaMemGetInfo(&fr, &tot);
        return ZS_ERR(ZS_ENOMEM, "%s: cudaMalloc of %zu bytes failed (%s; %zu of %zu free)", what, bytes,
                      cudaGetErrorString(e), fr, tot);
    }
    return ZS_OK;
}

extern "C" void zs_cuda_free(void *p) { cudaFree(p); }

extern "C" zs_status zs_cuda_pool_trim(void) {
    if (!g_inited) return ZS_OK;
    int dev = 0;
    cudaMemPool_t pool;
    ZS_CUDA_TRY(cudaStreamSynchronize(g_stream));
    ZS_CUDA_TRY(cudaGetDevice(&dev));
    ZS_CUDA_TRY(cudaDeviceGetDefaultMemPool(&pool, dev));
    ZS_CUDA_TRY(cudaMemPoolTrimTo(pool, 0));
    return ZS_OK;
}

extern "C" zs_status zs_cuda_memcpy(void *dst, int dst_dev, const void *src, int src_dev, size_t bytes) {
    cudaMemcpyKind k = dst_dev ? (src_dev ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                               : (src_dev ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
    ZS_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, k, g_stream));
    if (!dst_dev) ZS_CUDA_TRY(cudaStreamSynchronize(g_stream));  // host reads it next
    return ZS_OK;
}

extern "C" zs_status zs_cuda_memcpy2d(void *dst, size_t dpitch, int dst_dev, const void *src, size_t spitch, int src_dev,
                                      size_t width, size_t rows) {
    cudaMemcpyKind k = dst_dev ? (src_dev ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                               : (src_dev ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
    ZS_CUDA_TRY(cudaMemcpy2DAsync(dst, dpitch, src, spitch, width, rows, k, g_stream));
    if (!dst_dev) ZS_CUDA_TRY(cudaStreamSynchronize(g_stream));
    return ZS_OK;
}

extern "C" zs_status zs_cuda_mem_used(size_t *bytes) {
    size_t fr = 0, tot = 0;
    ZS_CUDA_TRY(cudaMemGetInfo(&fr, &tot));
    *bytes = tot - fr;
    return ZS_OK;
}

extern "C" zs_status zs_cuda_memset0(void *p, size_t bytes) {
    ZS_CUDA_TRY(cudaMemsetAsync(p, 0, bytes, g_stream));
    return ZS_OK;
}

extern "C" zs_status zs_cuda_sync(void) {
    ZS_CUDA_TRY(cudaStreamSynchronize(g_stream));
    ZS_CUDA_TRY(cudaGetLastError());
    return ZS_OK;
}

extern "C" void zs_cuda_build_info(char *buf, size_t n) {
    int rt = 0, drv = 0, ndev = 0;
    cudaRuntimeGetVersion(&rt);
    if (cudaDriverGetVersion(&drv) != cudaSuccess) drv = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess) { cudaGetLastError(); ndev = 0; }
    int nccl = 0;
    ncclGetVersion(&nccl);
    size_t k = (size_t)snprintf(buf, n, "cuda runtime: %d.%d (built for %d.%d), driver: %d.%d, GPUs: %d\n", rt / 1000,
                                (rt % 1000) / 10, CUDART_VERSION / 1000, (CUDART_VERSION % 1000) / 10, drv / 1000,
                                (drv % 1000) / 10, ndev);
    if (k < n) k += (size_t)snprintf(buf + k, n - k, "cudnn: %zu, nccl: %d, cublas: %d\n", cudnnGetVersion(), nccl,
                                     (int)cublasLtGetVersion());
    for (int i = 0; i < ndev && k < n; i++) {
        cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, i) == cudaSuccess)
            k += (size_t)snprintf(buf + k, n - k, "gpu %d: %s, sm_%d%d, %.1f GiB\n", i, p.name, p.major, p.minor,
                                  p.totalGlobalMem / 1073741824.0);
    }
}
