#include "rng.h"
#include <math.h>
#include "philox.h"

void zs_rng_uniform_host(float *x, int64_t n, uint64_t seed, uint64_t offset) {
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; i++) x[i] = zs_philox_uniform(seed, offset + (uint64_t)i);
}

// Same values as zs_philox_normal element by element, but one Philox call per 4 elements and
// one log and one sincos per Box-Muller pair (zs_box_muller, as there, so the same bits):
// the per-element form spends 4x the Philox rounds and 2x the logs.
void zs_rng_normal_host(float *x, int64_t n, uint64_t seed, uint64_t offset) {
    if (n <= 0) return;
    uint64_t first = offset >> 2, last = (offset + (uint64_t)n - 1) >> 2;
#pragma omp parallel for if (n > 65536)
    for (int64_t b = 0; b <= (int64_t)(last - first); b++) {
        uint64_t ctr = first + (uint64_t)b;
        uint32_t o[4];
        zs_philox(ctr, seed, o);
        for (int pair = 0; pair < 4; pair += 2) {
            uint64_t idx = ctr * 4 + (uint64_t)pair;  // the pair's even element; idx + 1 is odd
            int take0 = idx >= offset && idx < offset + (uint64_t)n;
            int take1 = idx + 1 >= offset && idx + 1 < offset + (uint64_t)n;
            if (!take0 && !take1) continue;
            double r, a;
            zs_box_muller(o[pair], o[pair + 1], &r, &a);
            double c = cos(a), sn = sin(a);  // GCC fuses the two into one sincos
            if (take0) x[idx - offset] = (float)(r * c);
            if (take1) x[idx + 1 - offset] = (float)(r * sn);
        }
    }
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
