// Random streams shared by CPU and GPU (see philox.h). A run's stream is (seed, offset):
// callers advance offset by the number of elements they drew, so resumed runs continue
// the same sequence.
#ifndef ZS_RNG_H
#define ZS_RNG_H
#include <stdint.h>
#include "tensor.h"

void zs_rng_uniform_host(float *x, int64_t n, uint64_t seed, uint64_t offset);
void zs_rng_normal_host(float *x, int64_t n, uint64_t seed, uint64_t offset);
// Fills a float tensor (F32 on CPU; F32/F16/BF16 on CUDA) with the stream.
zs_status zs_rng_uniform(zs_tensor *t, uint64_t seed, uint64_t offset);
zs_status zs_rng_normal(zs_tensor *t, uint64_t seed, uint64_t offset);

#ifdef ZS_HAVE_CUDA
zs_status zs_rng_fill_cuda(zs_tensor *t, uint64_t seed, uint64_t offset, int normal);
#endif
#endif
