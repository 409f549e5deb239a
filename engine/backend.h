// Backend: where memory lives and which implementation an op runs. Every op dispatches on
// its tensors' device; CPU is always built, CUDA when ZS_HAVE_CUDA is defined.
#ifndef ZS_BACKEND_H
#define ZS_BACKEND_H
#include <stddef.h>
#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

// Parses "cpu" / "cuda" / "cuda:N".
zs_status zs_device_parse(const char *s, zs_device *dev, int *index);
const char *zs_device_name(zs_device d);

// 1 if built with CUDA and at least one GPU answers; never fails.
int zs_cuda_available(void);
zs_status zs_cuda_init(int device_index);  // selects the GPU, creates the stream and cuBLAS handle

// Memory on a device. zs_free(NULL) is a no-op.
zs_status zs_malloc(void **p, size_t bytes, zs_device dev, const char *what);
void zs_free(void *p, zs_device dev);
zs_status zs_memcpy(void *dst, zs_device dd, const void *src, zs_device sd, size_t bytes);
zs_status zs_memset0(void *p, zs_device dev, size_t bytes);
// rows rows of `width` bytes each, from src (row pitch spitch) to dst (pitch dpitch): strided
// copies (padding, cropping) as one call on either device.
zs_status zs_memcpy2d(void *dst, size_t dpitch, zs_device dd, const void *src, size_t spitch, zs_device sd, size_t width,
                      size_t rows);
zs_status zs_sync(zs_device dev);  // waits for queued work; reports asynchronous CUDA errors
// Peak memory so far: CPU, the process's peak resident set (VmHWM); CUDA, the device memory in
// use now (total - free), which includes the allocation pool's cached blocks (the pool keeps
// freed scratch), so after a run it is that run's high-water mark plus other processes'.
zs_status zs_mem_high_water(zs_device dev, size_t *bytes);
// Starts a new measurement: CPU, the peak RSS falls to the current RSS (/proc/self/clear_refs);
// CUDA, the allocation pool returns its cached blocks to the driver.
zs_status zs_mem_high_water_reset(zs_device dev);

// Copies between tensors of the same shape; converts float dtypes on the way (host staging).
zs_status zs_tensor_copy(zs_tensor *dst, const zs_tensor *src);

// What is built in, for `zsmlc --version`: fills buf with lines "key: value".
void zs_build_info(char *buf, size_t n);

#ifdef ZS_HAVE_CUDA
// Implemented in engine/backend_cuda.cu.
int zs_cuda_available_impl(void);
zs_status zs_cuda_init_impl(int device_index);
zs_status zs_cuda_malloc(void **p, size_t bytes, const char *what);
void zs_cuda_free(void *p);
zs_status zs_cuda_memcpy(void *dst, int dst_dev, const void *src, int src_dev, size_t bytes);
zs_status zs_cuda_memset0(void *p, size_t bytes);
zs_status zs_cuda_memcpy2d(void *dst, size_t dpitch, int dst_dev, const void *src, size_t spitch, int src_dev, size_t width,
                           size_t rows);
zs_status zs_cuda_sync(void);
zs_status zs_cuda_mem_used(size_t *bytes);
zs_status zs_cuda_pool_trim(void);
void zs_cuda_build_info(char *buf, size_t n);
#endif

#ifdef __cplusplus
}
#endif
#endif
