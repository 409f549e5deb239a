// Shared by every .cu file: status-returning checks, the engine's stream and handles.
#ifndef ZS_CUDA_COMMON_CUH
#define ZS_CUDA_COMMON_CUH
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
extern "C" {
#include "status.h"
#include "tensor.h"
}

extern "C" cudaStream_t zs_cuda_stream(void);
extern "C" cublasHandle_t zs_cublas(void);
extern "C" cublasLtHandle_t zs_cublaslt(void);
const char *zs_cublas_status_str(cublasStatus_t s);

#define ZS_CUDA_TRY(call)                                                                         \
    do {                                                                                          \
        cudaError_t e_ = (call);                                                                  \
        if (e_ != cudaSuccess) return ZS_ERR(ZS_ECUDA, "%s: %s", #call, cudaGetErrorString(e_)); \
    } while (0)
#define ZS_CUBLAS_TRY(call)                                                                           \
    do {                                                                                              \
        cublasStatus_t e_ = (call);                                                                   \
        if (e_ != CUBLAS_STATUS_SUCCESS) return ZS_ERR(ZS_ECUDA, "%s: %s", #call, zs_cublas_status_str(e_)); \
    } while (0)
// After a kernel launch: configuration errors show up here, execution errors at zs_sync.
#define ZS_CUDA_LAUNCHED() ZS_CUDA_TRY(cudaGetLastError())

static inline unsigned zs_blocks(long long n, int threads) { return (unsigned)((n + threads - 1) / threads); }

#endif
