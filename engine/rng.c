#include "rng.h"
#include <math.h>
#include "philox.h"

void zs_rng_uniform_host(float *x, int64_t n, uint64_t seed, uint64_t offset) {
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; i++) x[i] = zs_philox_uniform(seed, offset + (uint64_t)i);
}

void zs_rng_normal_host(float *x, int64_t n, uint64_t seed, uint64_t offset) {
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; i++) x[i] = zs_philox_normal(seed, offset + (uint64_t)i);
}

static zs_status fill(zs_tensor *t, uint64_t seed, uint64_t offset, int normal) {
    if (t->device == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_rng_fill_cuda(t, seed, offset, normal);
#else
        return ZS_ERR(ZS_EUNSUPPORTED, "rng on CUDA: built without CUDA");
#endif
    }
    if (t->dtype != ZS_F32)
        return ZS_ERR(ZS_EUNSUPPORTED, "rng fill of %s: CPU tensors are F32, got %s", t->name ? t->name : "tensor",
                      zs_dtype_name(t->dtype));
    (normal ? zs_rng_normal_host : zs_rng_uniform_host)((float *)t->data, zs_numel(t), seed, offset);
    return ZS_OK;
}

zs_status zs_rng_uniform(zs_tensor *t, uint64_t seed, uint64_t offset) { return fill(t, seed, offset, 0); }
zs_status zs_rng_normal(zs_tensor *t, uint64_t seed, uint64_t offset) { return fill(t, seed, offset, 1); }
