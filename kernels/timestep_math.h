// The fp32 argument of the sinusoidal timestep embedding, shared by timestep.c and
// timestep.cu, in diffusers' order of fp32 operations:
//   exponent = fp32(-ln P) * i;  exponent /= fp32(half - shift);  freq = exp(exponent)
//   arg = scale * (t * freq)
// freq is exp in double rounded once to fp32 (the correctly rounded fp32 exp, which glibc's
// expf and PyTorch's fp32 exp give up to an ulp): host and device then agree on every
// frequency, and a 1-ulp frequency difference would move the argument of t = 999 by 6e-5.
// __fmul_rn / __fdiv_rn on the device keep each step one correctly rounded fp32 operation
// (no FMA contraction), as on the host.
#ifndef ZS_TIMESTEP_MATH_H
#define ZS_TIMESTEP_MATH_H
#include <math.h>
#include <stdint.h>
#ifdef __CUDACC__
#define ZS_TS_HD __host__ __device__ __forceinline__
#else
#define ZS_TS_HD static inline
#endif
#ifdef __CUDA_ARCH__
#define ZS_TS_MUL(a, b) __fmul_rn(a, b)
#define ZS_TS_DIV(a, b) __fdiv_rn(a, b)
#else
#define ZS_TS_MUL(a, b) ((a) * (b))
#define ZS_TS_DIV(a, b) ((a) / (b))
#endif

ZS_TS_HD float zs_ts_arg(float t, int64_t i, int64_t half, float shift, float scale, float P) {
    const float e = ZS_TS_DIV(ZS_TS_MUL((float)-log((double)P), (float)i), (float)half - shift);
    return ZS_TS_MUL(scale, ZS_TS_MUL(t, (float)exp((double)e)));
}

#endif
