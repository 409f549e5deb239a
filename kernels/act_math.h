// Scalar activation formulas shared by the CPU twin (activations.c) and the CUDA kernels
// (activations.cu), so both compute the same expression.
#ifndef ZS_ACT_MATH_H
#define ZS_ACT_MATH_H
#include <math.h>
#ifdef __CUDACC__
#define ZS_ACT_HD __host__ __device__ __forceinline__
#define ZS_EXPF expf
#define ZS_ERFF erff
#define ZS_TANHF tanhf
#else  // the CPU twin: vectorisable versions (cpu_math.h), same expressions around them
#include "cpu_math.h"
#define ZS_ACT_HD static inline
#define ZS_EXPF zs_cpu_expf
#define ZS_ERFF zs_cpu_erff
#define ZS_TANHF zs_cpu_tanhf
#endif

#define ZS_SQRT1_2 0.70710678118654752440f     // 1/sqrt(2)
#define ZS_INV_SQRT_2PI 0.39894228040143267794f  // 1/sqrt(2 pi)
#define ZS_SQRT_2_PI 0.79788456080286535588f   // sqrt(2/pi)

// act: 0 gelu (erf), 1 gelu tanh, 2 quickgelu, 3 relu, 4 silu (zs_act order).
ZS_ACT_HD float zs_act_f(int act, float x) {
    if (act == 0) return 0.5f * x * (1.0f + ZS_ERFF(x * ZS_SQRT1_2));
    if (act == 1) return 0.5f * x * (1.0f + ZS_TANHF(ZS_SQRT_2_PI * (x + 0.044715f * x * x * x)));
    if (act == 3) return x < 0.0f ? 0.0f : x;  // NaN stays NaN, as torch.relu
    if (act == 4) return x / (1.0f + ZS_EXPF(-x));
    return x / (1.0f + ZS_EXPF(-1.702f * x));
}

// d act / dx.
ZS_ACT_HD float zs_act_df(int act, float x) {
    if (act == 0) return 0.5f * (1.0f + ZS_ERFF(x * ZS_SQRT1_2)) + x * ZS_INV_SQRT_2PI * ZS_EXPF(-0.5f * x * x);
    if (act == 1) {
        float t = ZS_TANHF(ZS_SQRT_2_PI * (x + 0.044715f * x * x * x));
        return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * ZS_SQRT_2_PI * (1.0f + 3.0f * 0.044715f * x * x);
    }
    if (act == 3) return x <= 0.0f ? 0.0f : 1.0f;  // threshold_backward: 0 for x <= 0 (x == 0 included)
    float k = act == 4 ? 1.0f : 1.702f;           // silu / quickgelu: x * sigmoid(k x)
    float s = 1.0f / (1.0f + ZS_EXPF(-k * x));
    return s + k * x * s * (1.0f - s);
}

#endif
