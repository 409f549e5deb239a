// Layer norm over the last dim, forward and backward. CUDA: kernels/layernorm.cu.
//   xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps) (biased variance, as PyTorch)
//   y = xhat * w + b
//   dx += rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w
//   dw += sum_n dy * xhat, db += sum_n dy
#include <math.h>
#include "op_common.h"
#include "ops.h"

static void ln_fwd_cpu(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b, int64_t N,
                       int64_t C, float eps) {
#pragma omp parallel for schedule(static) if (N * C > 32768)
    for (int64_t n = 0; n < N; n++) {
        const float *xr = x + n * C;
        float *yr = y + n * C;
        float s = 0, v = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t c = 0; c < C; c++) s += xr[c];
        float m = s / (float)C;
#pragma omp simd reduction(+ : v)
        for (int64_t c = 0; c < C; c++) v += (xr[c] - m) * (xr[c] - m);
        float r = 1.0f / sqrtf(v / (float)C + eps);
        for (int64_t c = 0; c < C; c++) yr[c] = (xr[c] - m) * r * w[c] + b[c];
        if (mean) mean[n] = m;
        if (rstd) rstd[n] = r;
    }
}

static void ln_bwd_cpu(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                       const float *mean, const float *rstd, int64_t N, int64_t C) {
    if (dx) {
#pragma omp parallel for schedule(static) if (N * C > 32768)
        for (int64_t n = 0; n < N; n++) {
            const float *xr = x + n * C, *dyr = dy + n * C;
            float m = mean[n], r = rstd[n], sg = 0, sgx = 0;
#pragma omp simd reduction(+ : sg, sgx)
            for (int64_t c = 0; c < C; c++) {
                float g = dyr[c] * w[c];
                sg += g;
                sgx += g * (xr[c] - m) * r;
            }
            sg /= (float)C;
            sgx /= (float)C;
            float *dxr = dx + n * C;
            for (int64_t c = 0; c < C; c++) dxr[c] += r * (dyr[c] * w[c] - sg - (xr[c] - m) * r * sgx);
        }
    }
    if (!dw && !db) return;
    // Parameter grads: column blocks in parallel, rows in order (deterministic).
#pragma omp parallel for schedule(static) if (N * C > 32768)
    for (int64_t c0 = 0; c0 < C; c0 += 64) {
        int64_t c1 = c0 + 64 < C ? c0 + 64 : C;
        float aw[64] = {0}, ab[64] = {0};
        for (int64_t n = 0; n < N; n++) {
            const float *xr = x + n * C, *dyr = dy + n * C;
            float m = mean[n], r = rstd[n];
            for (int64_t c = c0; c < c1; c++) {
                aw[c - c0] += dyr[c] * (xr[c] - m) * r;
                ab[c - c0] += dyr[c];
            }
        }
        for (int64_t c = c0; c < c1; c++) {
            if (dw) dw[c] += aw[c - c0];
            if (db) db[c] += ab[c - c0];
        }
    }
}

// x [..., C]; w, b [C]: returns N, C.
static zs_status check(zs_opctx *c, const char *op, const zs_tensor *x, const zs_tensor *w, int64_t *N, int64_t *C) {
    ZS_TRY(zs_op_begin(c, op, x, "x"));
    zs_op_rows(x, N, C);
    ZS_TRY(zs_op_arg(c, w, "w", c->dt, 1, C));
    return ZS_OK;
}

zs_status zs_layernorm_fwd(zs_tensor *y, zs_tensor *mean, zs_tensor *rstd, const zs_tensor *x, const zs_tensor *w,
                           const zs_tensor *b, float eps) {
    zs_opctx c;
    int64_t N, C;
    ZS_TRY(check(&c, "layernorm_fwd", x, w, &N, &C));
    ZS_TRY(zs_op_arg(&c, b, "b", c.dt, 1, &C));
    ZS_TRY(zs_op_arg_like(&c, y, "y", c.dt, x, -1));
    if (mean) ZS_TRY(zs_op_arg(&c, mean, "mean", ZS_F32, 1, &N));
    if (rstd) ZS_TRY(zs_op_arg(&c, rstd, "rstd", ZS_F32, 1, &N));
    if (!(eps >= 0) || !isfinite(eps)) return ZS_ERR(ZS_EINVAL, "layernorm_fwd: eps %g must be finite and >= 0", eps);
    if (N == 0) return ZS_OK;
    if (C == 0) return ZS_ERR(ZS_EINVAL, "layernorm_fwd: x has an empty last dim");
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_layernorm_fwd_cuda(y->data, mean ? mean->data : NULL, rstd ? rstd->data : NULL, x->data, w->data,
                                     b->data, c.dt, N, C, eps);
#endif
    }
    ln_fwd_cpu(y->data, mean ? mean->data : NULL, rstd ? rstd->data : NULL, x->data, w->data, b->data, N, C, eps);
    return ZS_OK;
}

zs_status zs_layernorm_bwd(zs_tensor *dx, zs_tensor *dw, zs_tensor *db, const zs_tensor *dy, const zs_tensor *x,
                           const zs_tensor *w, const zs_tensor *mean, const zs_tensor *rstd) {
    zs_opctx c;
    int64_t N, C;
    ZS_TRY(check(&c, "layernorm_bwd", x, w, &N, &C));
    ZS_TRY(zs_op_arg_like(&c, dy, "dy", c.dt, x, -1));
    ZS_TRY(zs_op_arg(&c, mean, "mean", ZS_F32, 1, &N));
    ZS_TRY(zs_op_arg(&c, rstd, "rstd", ZS_F32, 1, &N));
    if (dx) ZS_TRY(zs_op_arg_like(&c, dx, "dx", c.dt, x, -1));
    if (dw) ZS_TRY(zs_op_arg(&c, dw, "dw", c.dt, 1, &C));
    if (db) ZS_TRY(zs_op_arg(&c, db, "db", c.dt, 1, &C));
    if (N == 0 || C == 0) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_layernorm_bwd_cuda(dx ? dx->data : NULL, dw ? dw->data : NULL, db ? db->data : NULL, dy->data,
                                     x->data, w->data, mean->data, rstd->data, c.dt, N, C);
#endif
    }
    ln_bwd_cpu(dx ? dx->data : NULL, dw ? dw->data : NULL, db ? db->data : NULL, dy->data, x->data, w->data,
               mean->data, rstd->data, N, C);
    return ZS_OK;
}
