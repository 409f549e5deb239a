// exp, erf and tanh for the CPU twins, written so that GCC vectorises them inside
// `#pragma omp simd` loops: branch-free (selects, not jumps), no libm calls (libm's expf
// stays scalar without -ffast-math, and was most of the time of every activation, softmax and
// group norm on the CPU). tests/test_cpu_math.c measures them against libm in double.
//   zs_cpu_expf   Cephes' reduction and polynomial: <= 1 ulp; 0 below -104, +inf above
//                 88.72, NaN stays NaN, subnormal results kept.
//   zs_cpu_erff   Taylor series below |x| 0.8, Abramowitz & Stegun 7.1.26 above (the formula
//                 PyTorch's vectorised CPU erf uses): absolute error <= 3e-7.
//   zs_cpu_tanhf  Cephes' odd polynomial below |x| 0.625, 1 - 2 / (exp(2|x|) + 1) above:
//                 <= 2 ulp.
#ifndef ZS_CPU_MATH_H
#define ZS_CPU_MATH_H
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float zs_f_of_bits(int32_t i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

// Horner steps, one coefficient per line: p = p * x + c.
#define ZS_HORNER(p, x, c) ((p) = (p) * (x) + (c))

static inline float zs_cpu_expf(float x) {
    // n = round(x / ln2); r = x - n ln2 in two parts (C1 has few bits: n C1 is exact).
    const float xc = x > 88.7228394f ? 88.7228394f : x < -104.0f ? -104.0f : x;  // NaN passes
    const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;     // round to nearest
    const float r = (xc - n * 0.693359375f) + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    ZS_HORNER(p, r, 1.3981999507e-3f);
    ZS_HORNER(p, r, 8.3334519073e-3f);
    ZS_HORNER(p, r, 4.1665795894e-2f);
    ZS_HORNER(p, r, 1.6666665459e-1f);
    ZS_HORNER(p, r, 5.0000001201e-1f);
    p = (p * r * r + r) + 1.0f;
    // 2^n as two factors, so that n in [-150, 128] (subnormal and top results) needs no case.
    const int32_t ni = (int32_t)(n == n ? n : 0.0f),
                  h = ni / 2;  // NaN: any n (r is NaN)
    const float y = p * zs_f_of_bits((h + 127) << 23) * zs_f_of_bits((ni - h + 127) << 23);
    return x > 88.7228394f ? INFINITY : x < -104.0f ? 0.0f : y;
}

static inline float zs_cpu_erff(float x) {
    const float a = fabsf(x), z = x * x;
    // |x| < 0.8: Taylor series to x^21, sum (-1)^k x^(2k+1) / (k! (2k+1)) (A&S cancels near 0).
    float s = 1.0f / 76204800;
    ZS_HORNER(s, z, -1.0f / 6894720);
    ZS_HORNER(s, z, 1.0f / 685440);
    ZS_HORNER(s, z, -1.0f / 75600);
    ZS_HORNER(s, z, 1.0f / 9360);
    ZS_HORNER(s, z, -1.0f / 1320);
    ZS_HORNER(s, z, 1.0f / 216);
    ZS_HORNER(s, z, -1.0f / 42);
    ZS_HORNER(s, z, 0.1f);
    ZS_HORNER(s, z, -1.0f / 3);
    ZS_HORNER(s, z, 1.0f);
    s *= 1.12837916709551257f * x;  // 2 / sqrt(pi)
    // else 1 - t (a1 + a2 t + ... + a5 t^4) exp(-x^2), t = 1 / (1 + p |x|)
    const float t = 1.0f / (1.0f + 0.3275911f * a);
    float q = 1.061405429f;
    ZS_HORNER(q, t, -1.453152027f);
    ZS_HORNER(q, t, 1.421413741f);
    ZS_HORNER(q, t, -0.284496736f);
    ZS_HORNER(q, t, 0.254829592f);
    const float big = copysignf(1.0f - q * t * zs_cpu_expf(-z), x);
    return a < 0.8f ? s : big;
}

static inline float zs_cpu_tanhf(float x) {
    const float a = fabsf(x), z = x * x;
    float s = -5.70498872745e-3f;  // |x| < 0.625: x + x^3 P(x^2)
    ZS_HORNER(s, z, 2.06390887954e-2f);
    ZS_HORNER(s, z, -5.37397155531e-2f);
    ZS_HORNER(s, z, 1.33314422036e-1f);
    ZS_HORNER(s, z, -3.33332819422e-1f);
    s = s * z * x + x;
    const float big = copysignf(1.0f - 2.0f / (zs_cpu_expf(2.0f * a) + 1.0f), x);
    return a < 0.625f ? copysignf(s, x) : big;  // copysign: tanh(-0) = -0
}

#endif
