// PyTorch's nearest source index (aten nearest_idx / nearest_neighbor_compute_source_index,
// size= given, no scale): scale = (float)in / (float)out, src = min(floor(dst * scale), in - 1)
// in fp32; shared by upsample.c and upsample.cu.
#ifndef ZS_UPSAMPLE_MATH_H
#define ZS_UPSAMPLE_MATH_H
#include <math.h>
#include <stdint.h>
#ifdef __CUDACC__
#define ZS_UP_HD __host__ __device__ __forceinline__
#else
#define ZS_UP_HD static inline
#endif

ZS_UP_HD float zs_nearest_scale(int64_t in, int64_t out) { return (float)in / (float)out; }

ZS_UP_HD int64_t zs_nearest_src(int64_t dst, float scale, int64_t in) {
#ifdef __CUDA_ARCH__
    const int64_t s = (int64_t)floorf(__fmul_rn((float)dst, scale));
#else
    const int64_t s = (int64_t)floorf((float)dst * scale);
#endif
    return s < in - 1 ? s : in - 1;
}

// The outputs reading input index i: [lo, hi) (src is non-decreasing in dst; empty when
// nobody reads i). Binary searches for the first dst with src >= i and >= i + 1.
ZS_UP_HD int64_t zs_nearest_first(int64_t i, float scale, int64_t in, int64_t out) {
    int64_t lo = 0, hi = out;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (zs_nearest_src(mid, scale, in) >= i) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

#endif
