// Group norm (+ optional fused SiLU), forward and backward: checks, dispatch, CPU fp32 twin.
// Formulas in groupnorm.h; CUDA in groupnorm.cu. The CPU twin accumulates the group sums in
// double and works one (n, g) group per OpenMP task; dw / db go through per-(n, c) partial
// sums [N, C] added over n in order (deterministic, the same partition as the CUDA path).
#include <math.h>
#include <stdlib.h>
#include "act_math.h"
#include "groupnorm.h"
#include "op_common.h"
#include "unet_cuda.h"

static void gn_fwd_cpu(float *y, float *mean, float *rstd, const float *x, const float *w, const float *b, int64_t N,
                       int64_t C, int64_t S, int64_t G, float eps, int silu) {
    const int64_t Cg = C / G, M = Cg * S;
#pragma omp parallel for schedule(static) if (N * C * S > 32768)
    for (int64_t ng = 0; ng < N * G; ng++) {
        const int64_t g = ng % G;
        const float *xg = x + ng * M;  // a group is contiguous in NCHW
        float *yg = y + ng * M;
        double s = 0, v = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < M; i++) s += xg[i];
        const float m = (float)(s / (double)M);
#pragma omp simd reduction(+ : v)
        for (int64_t i = 0; i < M; i++) v += ((double)xg[i] - m) * ((double)xg[i] - m);
        const float r = 1.0f / sqrtf((float)(v / (double)M) + eps);
        for (int64_t cl = 0; cl < Cg; cl++) {
            const float wc = w[g * Cg + cl], bc = b[g * Cg + cl];
            const float *xc = xg + cl * S;
            float *yc = yg + cl * S;
            if (silu) {
#pragma omp simd
                for (int64_t s2 = 0; s2 < S; s2++) yc[s2] = zs_act_f(4, (xc[s2] - m) * r * wc + bc);
            } else {
#pragma omp simd
                for (int64_t s2 = 0; s2 < S; s2++) yc[s2] = (xc[s2] - m) * r * wc + bc;
            }
        }
        if (mean) mean[ng] = m;
        if (rstd) rstd[ng] = r;
    }
}

// pw, pb [N, C] scratch: per-(n, c) sums of g xhat and g.
static void gn_bwd_cpu(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, const float *b,
                       const float *mean, const float *rstd, int64_t N, int64_t C, int64_t S, int64_t G, int silu,
                       float *pw, float *pb) {
    const int64_t Cg = C / G, M = Cg * S;
#pragma omp parallel for schedule(static) if (N * C * S > 32768)
    for (int64_t ng = 0; ng < N * G; ng++) {
        const int64_t n = ng / G, g = ng % G;
        const float *xg = x + ng * M, *dyg = dy + ng * M;
        const float m = mean[ng], r = rstd[ng];
        double A = 0, B = 0;  // sum g w, sum g w xhat over the group
        for (int64_t cl = 0; cl < Cg; cl++) {
            const int64_t c = g * Cg + cl;
            const float wc = w[c], bc = silu ? b[c] : 0.0f;
            const float *xc = xg + cl * S, *dyc = dyg + cl * S;
            double sb = 0, sw = 0;
#pragma omp simd reduction(+ : sb, sw)
            for (int64_t s2 = 0; s2 < S; s2++) {
                const float xh = (xc[s2] - m) * r;
                const float gz = silu ? dyc[s2] * zs_act_df(4, xh * wc + bc) : dyc[s2];
                sb += gz;
                sw += (double)gz * xh;
            }
            pb[n * C + c] = (float)sb;
            pw[n * C + c] = (float)sw;
            A += wc * sb;
            B += wc * sw;
        }
        if (!dx) continue;
        const float a = (float)(A / (double)M), bb = (float)(B / (double)M);
        float *dxg = dx + ng * M;
        for (int64_t cl = 0; cl < Cg; cl++) {
            const int64_t c = g * Cg + cl;
            const float wc = w[c], bc = silu ? b[c] : 0.0f;
            const float *xc = xg + cl * S, *dyc = dyg + cl * S;
            float *dxc = dxg + cl * S;
#pragma omp simd
            for (int64_t s2 = 0; s2 < S; s2++) {
                const float xh = (xc[s2] - m) * r;
                const float gz = silu ? dyc[s2] * zs_act_df(4, xh * wc + bc) : dyc[s2];
                dxc[s2] += r * (gz * wc - a - xh * bb);
            }
        }
    }
    if (!dw && !db) return;
    for (int64_t c = 0; c < C; c++) {
        float tw = 0, tb = 0;
        for (int64_t n = 0; n < N; n++) {
            tw += pw[n * C + c];
            tb += pb[n * C + c];
        }
        if (dw) dw[c] += tw;
        if (db) db[c] += tb;
    }
}

// x [N, C, *] (ndim >= 2); w [C]; groups divides C. Returns N, C, S (spatial product).
static zs_status check(zs_opctx *c, const char *op, const zs_tensor *x, const zs_tensor *w, int groups, int64_t *N,
                       int64_t *C, int64_t *S) {
    ZS_TRY(zs_op_begin(c, op, x, "x"));
    char a[96];
    if (x->ndim < 2)
        return ZS_ERR(ZS_EINVAL, "%s: %s must be [N, C, *spatial], got %d dims", op, zs_op_tname(x, "x", a, sizeof a),
                      x->ndim);
    *N = x->shape[0], *C = x->shape[1], *S = 1;
    for (int i = 2; i < x->ndim; i++) *S *= x->shape[i];
    if (groups <= 0 || *C % groups)
        return ZS_ERR(ZS_EINVAL, "%s: groups %d must be > 0 and divide C=%lld", op, groups, (long long)*C);
    ZS_TRY(zs_op_arg(c, w, "w", c->dt, 1, C));
    return ZS_OK;
}

zs_status zs_groupnorm_fwd(zs_tensor *y, zs_tensor *mean, zs_tensor *rstd, const zs_tensor *x, const zs_tensor *w,
                           const zs_tensor *b, int groups, float eps, int silu) {
    zs_opctx c;
    int64_t N, C, S;
    ZS_TRY(check(&c, "groupnorm_fwd", x, w, groups, &N, &C, &S));
    ZS_TRY(zs_op_arg(&c, b, "b", c.dt, 1, &C));
    ZS_TRY(zs_op_arg_like(&c, y, "y", c.dt, x, -1));
    const int64_t st[2] = {N, groups};
    if (mean) ZS_TRY(zs_op_arg(&c, mean, "mean", ZS_F32, 2, st));
    if (rstd) ZS_TRY(zs_op_arg(&c, rstd, "rstd", ZS_F32, 2, st));
    if (!(eps >= 0) || !isfinite(eps)) return ZS_ERR(ZS_EINVAL, "groupnorm_fwd: eps %g must be finite and >= 0", eps);
    if (N == 0 || C == 0) return ZS_OK;
    if (S == 0) return ZS_ERR(ZS_EINVAL, "groupnorm_fwd: x has an empty spatial dim (empty groups)");
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_groupnorm_fwd_cuda(y->data, mean ? mean->data : NULL, rstd ? rstd->data : NULL, x->data, w->data,
                                     b->data, c.dt, N, C, S, groups, eps, silu != 0);
#endif
    }
    gn_fwd_cpu(y->data, mean ? mean->data : NULL, rstd ? rstd->data : NULL, x->data, w->data, b->data, N, C, S, groups,
               eps, silu != 0);
    return ZS_OK;
}

zs_status zs_groupnorm_bwd(zs_tensor *dx, zs_tensor *dw, zs_tensor *db, const zs_tensor *dy, const zs_tensor *x,
                           const zs_tensor *w, const zs_tensor *b, const zs_tensor *mean, const zs_tensor *rstd,
                           int groups, int silu) {
    zs_opctx c;
    int64_t N, C, S;
    ZS_TRY(check(&c, "groupnorm_bwd", x, w, groups, &N, &C, &S));
    if (silu) ZS_TRY(zs_op_arg(&c, b, "b (needed with silu)", c.dt, 1, &C));
    ZS_TRY(zs_op_arg_like(&c, dy, "dy", c.dt, x, -1));
    const int64_t st[2] = {N, groups};
    ZS_TRY(zs_op_arg(&c, mean, "mean", ZS_F32, 2, st));
    ZS_TRY(zs_op_arg(&c, rstd, "rstd", ZS_F32, 2, st));
    if (dx) ZS_TRY(zs_op_arg_like(&c, dx, "dx", c.dt, x, -1));
    if (dw) ZS_TRY(zs_op_arg(&c, dw, "dw", c.dt, 1, &C));
    if (db) ZS_TRY(zs_op_arg(&c, db, "db", c.dt, 1, &C));
    if (N == 0 || C == 0 || S == 0 || (!dx && !dw && !db)) return ZS_OK;
    const void *bp = silu ? b->data : NULL;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_groupnorm_bwd_cuda(dx ? dx->data : NULL, dw ? dw->data : NULL, db ? db->data : NULL, dy->data,
                                     x->data, w->data, bp, mean->data, rstd->data, c.dt, N, C, S, groups, silu != 0);
#endif
    }
    float *part = malloc((size_t)(2 * N * C) * sizeof(float));
    if (!part) return ZS_ERR(ZS_ENOMEM, "groupnorm_bwd: %lld floats of scratch", (long long)(2 * N * C));
    gn_bwd_cpu(dx ? dx->data : NULL, dw ? dw->data : NULL, db ? db->data : NULL, dy->data, x->data, w->data, bp,
               mean->data, rstd->data, N, C, S, groups, silu != 0, part, part + N * C);
    free(part);
    return ZS_OK;
}
