// kernels/cpu_math.h against libm in double: a dense sweep of the float line (every value in
// [-1e-3, 1e-3] steps of 1e-7, relative steps of 1e-5 elsewhere) plus the special values.
// Bounds are the header's stated accuracies.
#include <float.h>
#include <math.h>
#include "kernels/cpu_math.h"
#include "tests/test.h"

static double ulp_of(double ref) {
    float a = fabsf((float)ref);
    return a < FLT_MIN ? (double)FLT_TRUE_MIN : (double)(nextafterf(a, INFINITY) - a);
}

static float step(float x) { return nextafterf(x, INFINITY) + (fabsf(x) > 1e-3f ? fabsf(x) * 1e-5f : 1e-7f); }

TEST(cpu_math_expf) {
    double worst = 0;
    float at = 0;
    for (float x = -110.0f; x < 95.0f; x = step(x)) {
        double ref = exp((double)x);
        float got = zs_cpu_expf(x);
        if (ref > FLT_MAX) {
            CHECK(got == INFINITY, "exp(%.9g) = %g, want inf", x, got);
            continue;
        }
        double e = fabs(got - ref) / ulp_of(ref);
        if (e > worst) worst = e, at = x;
    }
    zt_note(__FILE__, __LINE__, "expf: worst %.3f ulp at %.9g", worst, at);
    CHECK(worst <= 1.0, "expf error %.3f ulp at %.9g (bound 1)", worst, at);
    CHECK(isnan(zs_cpu_expf(NAN)), "exp(NaN) must be NaN");
    CHECK(zs_cpu_expf(-INFINITY) == 0.0f && zs_cpu_expf(INFINITY) == INFINITY, "exp(+-inf)");
    CHECK(zs_cpu_expf(0.0f) == 1.0f, "exp(0) = %.9g", zs_cpu_expf(0.0f));
    return ZT_PASS;
}

TEST(cpu_math_erff_tanhf) {
    double we = 0, wt = 0;
    float ae = 0, at = 0;
    for (float x = -12.0f; x < 12.0f; x = step(x)) {
        double e = fabs(zs_cpu_erff(x) - erf((double)x));
        if (e > we) we = e, ae = x;
        double ref = tanh((double)x), t = fabs(zs_cpu_tanhf(x) - ref) / ulp_of(ref);
        if (t > wt) wt = t, at = x;
    }
    zt_note(__FILE__, __LINE__, "erff: worst %.3g absolute at %.9g; tanhf: worst %.3f ulp at %.9g", we, ae, wt, at);
    CHECK(we <= 3e-7, "erff error %.3g at %.9g (bound 3e-7)", we, ae);
    CHECK(wt <= 2.0, "tanhf error %.3f ulp at %.9g (bound 2)", wt, at);
    CHECK(isnan(zs_cpu_erff(NAN)) && isnan(zs_cpu_tanhf(NAN)), "NaN must stay NaN");
    CHECK(zs_cpu_erff(-INFINITY) == -1.0f && zs_cpu_erff(INFINITY) == 1.0f, "erf(+-inf)");
    CHECK(zs_cpu_tanhf(-INFINITY) == -1.0f && zs_cpu_tanhf(INFINITY) == 1.0f, "tanh(+-inf)");
    CHECK(signbit(zs_cpu_erff(-0.0f)) && signbit(zs_cpu_tanhf(-0.0f)), "odd functions keep -0");
    return ZT_PASS;
}
