// 2-D convolution (NCHW, stride, zero padding, groups, optional bias), forward and backward.
// CPU twin: im2col + GEMM (zs_sgemm_cpu: OpenBLAS when built with it), one image of the
// batch at a time and, within it, chunks of output positions, so the column buffer stays
// under CONV_COL_CAP floats whatever the image size. Per image n, group g, chunk [p0, p1)
// of the Ho * Wo output positions (R = Cin/G * KH * KW rows of the column buffer):
//   col[R, P]          = im2col(x[n, g])                  (1x1, stride 1, no pad: x itself)
//   y[n, g][:, p0:p1]  = w_g[Cout/G, R] @ col (+ b, written into y first)
//   dw_g              += dy[n, g][:, p0:p1] @ col^T
//   dcol[R, P]         = w_g^T @ dy[n, g][:, p0:p1];  dx[n, g] += col2im(dcol)
//   db[co]            += sum over n, positions of dy[n, co]
// Every sum runs in a fixed order (images, chunks in order; OpenMP only over independent
// rows / channels): the CPU results are deterministic. CUDA: kernels/conv2d.cu (cuDNN).
#include <stdlib.h>
#include <string.h>
#include "conv.h"
#include "conv_cuda.h"
#include "op_common.h"
#include "ops.h"

#define CONV_COL_CAP (4 << 20)  // floats per column buffer (16 MiB)

// ---- im2col / col2im over the output positions [p0, p1) -----------------------------------
// x: the Cig channels of one image and group; col: [R, p1 - p0].
static void im2col(float *col, const float *x, const zs_conv_geom *g, int64_t Cig, int64_t p0, int64_t p1) {
    const int64_t KK = g->KH * g->KW, R = Cig * KK, P = p1 - p0;
#pragma omp parallel for schedule(static) if (R * P > 32768)
    for (int64_t r = 0; r < R; r++) {
        const int64_t ci = r / KK, kh = (r / g->KW) % g->KH, kw = r % g->KW;
        const float *xc = x + ci * g->H * g->W;
        float *dst = col + r * P;
        // Output columns whose input column iw = ow * sw - pw + kw lies in [0, W).
        int64_t lo = g->pw - kw > 0 ? (g->pw - kw + g->sw - 1) / g->sw : 0;
        int64_t hi = (g->W - 1 + g->pw - kw) >= 0 ? (g->W - 1 + g->pw - kw) / g->sw + 1 : 0;
        if (hi > g->Wo) hi = g->Wo;
        if (lo > hi) lo = hi;
        int64_t p = p0;
        while (p < p1) {
            const int64_t oh = p / g->Wo, ow0 = p % g->Wo;
            const int64_t ow1 = (p1 - p) < (g->Wo - ow0) ? ow0 + (p1 - p) : g->Wo;  // this output row's part
            const int64_t ih = oh * g->sh - g->ph + kh;
            float *d = dst + (p - p0);  // d[ow - ow0] is column (oh, ow)
            if (ih < 0 || ih >= g->H) {
                for (int64_t ow = ow0; ow < ow1; ow++) d[ow - ow0] = 0;
            } else {
                const float *xr = xc + ih * g->W;  // x[ih, iw], iw = ow * sw - pw + kw
                const int64_t off = kw - g->pw;
                for (int64_t ow = ow0; ow < ow1; ow++) d[ow - ow0] = (ow >= lo && ow < hi) ? xr[ow * g->sw + off] : 0;
            }
            p += ow1 - ow0;
        }
    }
}

// dx (the Cig channels of one image and group) += col2im(col), col [R, p1 - p0]. Parallel
// over input channels: each thread owns its channel's rows of col (deterministic).
static void col2im_add(float *dx, const float *col, const zs_conv_geom *g, int64_t Cig, int64_t p0, int64_t p1) {
    const int64_t KK = g->KH * g->KW, P = p1 - p0;
#pragma omp parallel for schedule(static) if (Cig * KK * P > 32768)
    for (int64_t ci = 0; ci < Cig; ci++) {
        float *dxc = dx + ci * g->H * g->W;
        for (int64_t kk = 0; kk < KK; kk++) {
            const int64_t kh = kk / g->KW, kw = kk % g->KW;
            const float *src = col + (ci * KK + kk) * P;
            int64_t lo = g->pw - kw > 0 ? (g->pw - kw + g->sw - 1) / g->sw : 0;
            int64_t hi = (g->W - 1 + g->pw - kw) >= 0 ? (g->W - 1 + g->pw - kw) / g->sw + 1 : 0;
            if (hi > g->Wo) hi = g->Wo;
            int64_t p = p0;
            while (p < p1) {
                const int64_t oh = p / g->Wo, ow0 = p % g->Wo;
                const int64_t ow1 = (p1 - p) < (g->Wo - ow0) ? ow0 + (p1 - p) : g->Wo;
                const int64_t ih = oh * g->sh - g->ph + kh;
                if (ih >= 0 && ih < g->H) {
                    const float *s = src + (p - p0);  // s[ow - ow0] is column (oh, ow)
                    float *xr = dxc + ih * g->W;
                    const int64_t off = kw - g->pw, a = ow0 > lo ? ow0 : lo, b = ow1 < hi ? ow1 : hi;
                    for (int64_t ow = a; ow < b; ow++) xr[ow * g->sw + off] += s[ow - ow0];
                }
                p += ow1 - ow0;
            }
        }
    }
}

static int is_pointwise(const zs_conv_geom *g) {  // col == x: 1x1, stride 1, no padding
    return g->KH == 1 && g->KW == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0;
}

// Output positions per chunk: the column buffer [R, chunk] stays under CONV_COL_CAP floats.
static int64_t chunk_of(const zs_conv_geom *g, int64_t R) {
    int64_t P = g->Ho * g->Wo, c = CONV_COL_CAP / (R > 0 ? R : 1);
    if (c < 1) c = 1;
    return c < P ? c : P;
}

static zs_status conv_fwd_cpu(float *y, const float *x, const float *w, const float *b, const zs_conv_geom *g) {
    const int64_t Cig = g->Cin / g->G, Cog = g->Cout / g->G, R = Cig * g->KH * g->KW;
    const int64_t HW = g->H * g->W, P = g->Ho * g->Wo, pc = chunk_of(g, R);
    const int pt = is_pointwise(g);
    float *col = NULL;
    if (!pt && !(col = malloc((size_t)(R * pc) * sizeof(float))))
        return ZS_ERR(ZS_ENOMEM, "conv2d_fwd: column buffer of %lld floats", (long long)(R * pc));
    for (int64_t n = 0; n < g->N; n++) {
        float *yn = y + n * g->Cout * P;
        if (b) {
#pragma omp parallel for schedule(static) if (g->Cout * P > 65536)
            for (int64_t co = 0; co < g->Cout; co++)
                for (int64_t p = 0; p < P; p++) yn[co * P + p] = b[co];
        }
        for (int64_t gi = 0; gi < g->G; gi++) {
            const float *xg = x + (n * g->Cin + gi * Cig) * HW, *wg = w + gi * Cog * R;
            float *yg = yn + gi * Cog * P;
            for (int64_t p0 = 0; p0 < P; p0 += pc) {
                const int64_t p1 = p0 + pc < P ? p0 + pc : P;
                if (pt) {
                    zs_sgemm_cpu(0, 0, Cog, p1 - p0, R, wg, R, xg + p0, HW, b ? 1.0f : 0.0f, yg + p0, P);
                } else {
                    im2col(col, xg, g, Cig, p0, p1);
                    zs_sgemm_cpu(0, 0, Cog, p1 - p0, R, wg, R, col, p1 - p0, b ? 1.0f : 0.0f, yg + p0, P);
                }
            }
        }
    }
    free(col);
    return ZS_OK;
}

static zs_status conv_bwd_cpu(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                              const zs_conv_geom *g) {
    const int64_t Cig = g->Cin / g->G, Cog = g->Cout / g->G, R = Cig * g->KH * g->KW;
    const int64_t HW = g->H * g->W, P = g->Ho * g->Wo, pc = chunk_of(g, R);
    const int pt = is_pointwise(g);
    if (db) {  // per channel: images, then positions, in order
#pragma omp parallel for schedule(static) if (g->N * g->Cout * P > 65536)
        for (int64_t co = 0; co < g->Cout; co++) {
            float acc = 0;
            for (int64_t n = 0; n < g->N; n++) {
                const float *d = dy + (n * g->Cout + co) * P;
                float s = 0;
                for (int64_t p = 0; p < P; p++) s += d[p];
                acc += s;
            }
            db[co] += acc;
        }
    }
    if (!dx && !dw) return ZS_OK;
    float *col = NULL, *dcol = NULL;
    if (!pt) {
        col = dw ? malloc((size_t)(R * pc) * sizeof(float)) : NULL;
        dcol = dx ? malloc((size_t)(R * pc) * sizeof(float)) : NULL;
        if ((dw && !col) || (dx && !dcol)) {
            free(col);
            free(dcol);
            return ZS_ERR(ZS_ENOMEM, "conv2d_bwd: column buffers of %lld floats", (long long)(R * pc));
        }
    }
    for (int64_t n = 0; n < g->N; n++) {
        for (int64_t gi = 0; gi < g->G; gi++) {
            const int64_t xo = (n * g->Cin + gi * Cig) * HW;
            const float *xg = x + xo, *wg = w + gi * Cog * R, *dyg = dy + (n * g->Cout + gi * Cog) * P;
            for (int64_t p0 = 0; p0 < P; p0 += pc) {
                const int64_t p1 = p0 + pc < P ? p0 + pc : P, pn = p1 - p0;
                if (dw) {  // dw_g[Cog, R] += dy_g[:, p0:p1] @ col^T
                    const float *cb = xg + p0;
                    int64_t ldc = HW;
                    if (!pt) {
                        im2col(col, xg, g, Cig, p0, p1);
                        cb = col, ldc = pn;
                    }
                    zs_sgemm_cpu(0, 1, Cog, R, pn, dyg + p0, P, cb, ldc, 1.0f, dw + gi * Cog * R, R);
                }
                if (dx) {  // dcol[R, pn] = w_g^T @ dy_g[:, p0:p1]; dx += col2im(dcol)
                    if (pt) {
                        zs_sgemm_cpu(1, 0, R, pn, Cog, wg, R, dyg + p0, P, 1.0f, dx + xo + p0, HW);
                    } else {
                        zs_sgemm_cpu(1, 0, R, pn, Cog, wg, R, dyg + p0, P, 0.0f, dcol, pn);
                        col2im_add(dx + xo, dcol, g, Cig, p0, p1);
                    }
                }
            }
        }
    }
    free(col);
    free(dcol);
    return ZS_OK;
}

// ---- checks and dispatch ---------------------------------------------------------------
static zs_status check(zs_opctx *c, const char *op, const zs_tensor *x, const zs_tensor *w, const zs_conv2d_params *p,
                       zs_conv_geom *g) {
    ZS_TRY(zs_op_begin(c, op, x, "x"));
    ZS_TRY(zs_op_arg(c, x, "x", c->dt, 4, (const int64_t[]){-1, -1, -1, -1}));
    ZS_TRY(zs_op_arg(c, w, "w", c->dt, 4, (const int64_t[]){-1, -1, -1, -1}));
    if (!p) return ZS_ERR(ZS_EINVAL, "%s: params is NULL", op);
    if (p->stride_h < 1 || p->stride_w < 1 || p->pad_h < 0 || p->pad_w < 0 || p->groups < 1)
        return ZS_ERR(ZS_EINVAL, "%s: stride %dx%d must be >= 1, padding %dx%d >= 0, groups %d >= 1", op, p->stride_h,
                      p->stride_w, p->pad_h, p->pad_w, p->groups);
    memset(g, 0, sizeof *g);
    g->N = x->shape[0], g->Cin = x->shape[1], g->H = x->shape[2], g->W = x->shape[3];
    g->Cout = w->shape[0], g->KH = w->shape[2], g->KW = w->shape[3];
    g->sh = p->stride_h, g->sw = p->stride_w, g->ph = p->pad_h, g->pw = p->pad_w, g->G = p->groups;
    char sx[128], sw[128];
    zs_shape_str(x, sx, sizeof sx);
    zs_shape_str(w, sw, sizeof sw);
    if (g->Cin % g->G || g->Cout % g->G || w->shape[1] != g->Cin / g->G)
        return ZS_ERR(ZS_EINVAL, "%s: x %s and w %s do not fit groups %d (w is [Cout, Cin / groups, KH, KW], Cin and "
                      "Cout divisible by groups)", op, sx, sw, p->groups);
    if (g->KH < 1 || g->KW < 1 || g->Cout < 1 || g->Cin < 1 || g->H < 1 || g->W < 1)
        return ZS_ERR(ZS_EINVAL, "%s: empty kernel, channels or image: x %s, w %s", op, sx, sw);
    if (g->H + 2 * g->ph < g->KH || g->W + 2 * g->pw < g->KW)
        return ZS_ERR(ZS_EINVAL, "%s: kernel %lldx%lld larger than the padded input (x %s, padding %dx%d)", op,
                      (long long)g->KH, (long long)g->KW, sx, p->pad_h, p->pad_w);
    g->Ho = (g->H + 2 * g->ph - g->KH) / g->sh + 1;
    g->Wo = (g->W + 2 * g->pw - g->KW) / g->sw + 1;
    return ZS_OK;
}

#ifdef ZS_HAVE_CUDA
static zs_status cuda_dims(const char *op, const zs_conv_geom *g) {  // cuDNN's 4-d descriptors take int
    const int64_t m = INT32_MAX;
    if (g->N * g->Cin * g->H * g->W > m || g->N * g->Cout * g->Ho * g->Wo > m || g->Cout * g->Cin * g->KH * g->KW > m ||
        g->ph > m || g->pw > m || g->sh > m || g->sw > m)
        return ZS_ERR(ZS_EUNSUPPORTED, "%s: tensors above 2^31 elements are not supported on CUDA (cuDNN)", op);
    return ZS_OK;
}
#endif

#ifndef ZS_HAVE_CUDA
int zs_conv2d_cuda_nondeterministic_plans(void) { return 0; }
#endif

zs_status zs_conv2d_fwd(zs_tensor *y, const zs_tensor *x, const zs_tensor *w, const zs_tensor *b,
                        const zs_conv2d_params *p) {
    zs_opctx c;
    zs_conv_geom g;
    ZS_TRY(check(&c, "conv2d_fwd", x, w, p, &g));
    if (b) ZS_TRY(zs_op_arg(&c, b, "b", c.dt, 1, &g.Cout));
    ZS_TRY(zs_op_arg(&c, y, "y", c.dt, 4, (const int64_t[]){g.N, g.Cout, g.Ho, g.Wo}));
    if (g.N == 0) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        ZS_TRY(cuda_dims(c.op, &g));
        return zs_conv2d_fwd_cuda(y->data, x->data, w->data, b ? b->data : NULL, c.dt, &g);
#endif
    }
    return conv_fwd_cpu(y->data, x->data, w->data, b ? b->data : NULL, &g);
}

zs_status zs_conv2d_bwd(zs_tensor *dx, zs_tensor *dw, zs_tensor *db, const zs_tensor *dy, const zs_tensor *x,
                        const zs_tensor *w, const zs_conv2d_params *p) {
    zs_opctx c;
    zs_conv_geom g;
    ZS_TRY(check(&c, "conv2d_bwd", x, w, p, &g));
    ZS_TRY(zs_op_arg(&c, dy, "dy", c.dt, 4, (const int64_t[]){g.N, g.Cout, g.Ho, g.Wo}));
    if (dx) ZS_TRY(zs_op_arg_like(&c, dx, "dx", c.dt, x, -1));
    if (dw) ZS_TRY(zs_op_arg_like(&c, dw, "dw", c.dt, w, -1));
    if (db) ZS_TRY(zs_op_arg(&c, db, "db", c.dt, 1, &g.Cout));
    if (g.N == 0 || (!dx && !dw && !db)) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        ZS_TRY(cuda_dims(c.op, &g));
        return zs_conv2d_bwd_cuda(dx ? dx->data : NULL, dw ? dw->data : NULL, db ? db->data : NULL, dy->data, x->data,
                                  w->data, c.dt, &g);
#endif
    }
    return conv_bwd_cpu(dx ? dx->data : NULL, dw ? dw->data : NULL, db ? db->data : NULL, dy->data, x->data, w->data,
                        &g);
}
