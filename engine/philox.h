// Philox4x32-10 (Salmon et al., SC'11), counter-based: element i of the stream (seed, offset)
// depends only on (seed, offset + i), so CPU and GPU produce the same numbers in any order
// or partition. Included by C and CUDA; everything is inline.
#ifndef ZS_PHILOX_H
#define ZS_PHILOX_H
#include <math.h>
#include <stdint.h>
#ifdef __CUDACC__
#define ZS_HD __host__ __device__ __forceinline__
#else
#define ZS_HD static inline
#endif

ZS_HD void zs_philox(uint64_t ctr, uint64_t seed, uint32_t out[4]) {
    uint32_t c0 = (uint32_t)ctr, c1 = (uint32_t)(ctr >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

// Uniform in [0, 1) with 24 random bits (exact in float).
ZS_HD float zs_u32_to_unit(uint32_t u) { return (float)(u >> 8) * (1.0f / 16777216.0f); }

// Element idx of the uniform stream.
ZS_HD float zs_philox_uniform(uint64_t seed, uint64_t idx) {
    uint32_t o[4];
    zs_philox(idx >> 2, seed, o);
    return zs_u32_to_unit(o[idx & 3]);
}

// Box-Muller in polar form on two words: the normal pair is (r cos a, r sin a).
ZS_HD void zs_box_muller(uint32_t w0, uint32_t w1, double *r, double *a) {
    double u1 = ((double)(w0 >> 8) + 1.0) * (1.0 / 16777216.0);  // (0, 1]
    double u2 = (double)(w1 >> 8) * (1.0 / 16777216.0);           // [0, 1)
    *r = sqrt(-2.0 * log(u1));
    *a = 6.283185307179586476925 * u2;
}

// Element idx of the standard normal stream: Box-Muller on the word pairs (0,1) and (2,3)
// of counter idx/4 (cos for even idx, sin for odd). Computed in double and rounded, so
// host libm and CUDA agree to the last float bit in all but vanishingly rare ties.
ZS_HD float zs_philox_normal(uint64_t seed, uint64_t idx) {
    uint32_t o[4];
    zs_philox(idx >> 2, seed, o);
    int pair = (int)(idx & 2);
    double r, a;
    zs_box_muller(o[pair], o[pair + 1], &r, &a);
    return (float)((idx & 1) ? r * sin(a) : r * cos(a));
}

#endif
