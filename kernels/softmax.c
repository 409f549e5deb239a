// Softmax over the last dim, forward and backward. CUDA: kernels/softmax.cu.
//   y = exp(x - max) / sum(exp(x - max));  dx += y * (dy - sum(dy * y))
#include <math.h>
#include "cpu_math.h"
#include "op_common.h"
#include "ops.h"

static void softmax_fwd_cpu(float *y, const float *x, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C > 32768)
    for (int64_t n = 0; n < N; n++) {
        const float *xr = x + n * C;
        float *yr = y + n * C;
        float m = -INFINITY, s = 0;
        for (int64_t c = 0; c < C; c++) m = xr[c] > m ? xr[c] : m;
#pragma omp simd reduction(+ : s)
        for (int64_t c = 0; c < C; c++) {
            yr[c] = zs_cpu_expf(xr[c] - m);
            s += yr[c];
        }
        float inv = 1.0f / s;
        for (int64_t c = 0; c < C; c++) yr[c] *= inv;
    }
}

static void softmax_bwd_cpu(float *dx, const float *dy, const float *y, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C > 32768)
    for (int64_t n = 0; n < N; n++) {
        const float *dyr = dy + n * C, *yr = y + n * C;
        float *dxr = dx + n * C;
        float d = 0;
#pragma omp simd reduction(+ : d)
        for (int64_t c = 0; c < C; c++) d += dyr[c] * yr[c];
#pragma omp simd
        for (int64_t c = 0; c < C; c++) dxr[c] += yr[c] * (dyr[c] - d);
    }
}

zs_status zs_softmax_fwd(zs_tensor *y, const zs_tensor *x) {
    zs_opctx c;
    int64_t N, C;
    ZS_TRY(zs_op_begin(&c, "softmax_fwd", x, "x"));
    zs_op_rows(x, &N, &C);
    ZS_TRY(zs_op_arg_like(&c, y, "y", c.dt, x, -1));
    if (N == 0) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_softmax_fwd_cuda(y->data, x->data, c.dt, N, C);
#endif
    }
    softmax_fwd_cpu(y->data, x->data, N, C);
    return ZS_OK;
}

zs_status zs_softmax_bwd(zs_tensor *dx, const zs_tensor *dy, const zs_tensor *y) {
    zs_opctx c;
    int64_t N, C;
    ZS_TRY(zs_op_begin(&c, "softmax_bwd", y, "y"));
    zs_op_rows(y, &N, &C);
    ZS_TRY(zs_op_arg_like(&c, dy, "dy", c.dt, y, -1));
    if (dx) ZS_TRY(zs_op_arg_like(&c, dx, "dx", c.dt, y, -1));
    if (!dx || N == 0) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_softmax_bwd_cuda(dx->data, dy->data, y->data, c.dt, N, C);
#endif
    }
    softmax_bwd_cpu(dx->data, dy->data, y->data, N, C);
    return ZS_OK;
}
