// Per-element arithmetic of the samplers, shared by the CPU loops (models/scheduler.c) and
// the CUDA kernels (models/scheduler.cu). Every forward formula is written in the order
// and float32 roundings of diffusers 0.42.1 on torch (one rounding per torch op; no FMA:
// the device path uses __fmul_rn & co. so nvcc cannot contract), so CPU results equal
// diffusers' bit for bit and CUDA results equal the CPU's.
// Backward coefficients (b[]) are the exact partial derivatives, computed on the host in
// double from the same float32 schedule scalars and rounded once.
#ifndef ZS_SCHEDULER_ELEM_H
#define ZS_SCHEDULER_ELEM_H
#include <stdint.h>
#include "engine/tensor.h"

enum {
    ZS_SE_MUL = 0,  // out = x * c0                       (initial noise * init_noise_sigma)
    ZS_SE_DIV,      // out = x / c0                       (Euler scale_model_input)
    ZS_SE_CFG,      // out = x + c0 * (m - x)             (x = uncond, m = cond, c0 = scale)
    ZS_SE_EULER,    // c0 sigma, c1 dt, c2 c_out (v), c3 sigma^2 + 1 (v)
    ZS_SE_DDIM,     // c0 sqrt(a_t), c1 sqrt(1 - a_t), c2 sqrt(a_prev), c3 sqrt(1 - a_prev), c4 clip range
    ZS_SE_DPM,      // c0 alpha_s, c1 sigma_s (convert); c2 sigma_t/sigma_s, c3 alpha_t (e^-h - 1),
                    // c4 second-order D1 coefficient (0: first order), c5 1 / r0
};
enum { ZS_SE_PRED_EPS = 0, ZS_SE_PRED_V = 1, ZS_SE_PRED_SAMPLE = 2 };

typedef struct {
    int op, pred;
    int clip;    // DDIM: clamp x0 to [-c4, c4]
    int order2;  // DPM: second-order update (reads the previous x0 in p)
    float c[6];  // forward scalars (float32, as diffusers has them)
    float b[6];  // backward coefficients (see zs_se_bwd)
} zs_sched_elem;

#ifdef __CUDACC__
#define ZSE_FN static __device__ __forceinline__
#define ZSE_ADD(a, b) __fadd_rn((a), (b))
#define ZSE_SUB(a, b) __fsub_rn((a), (b))
#define ZSE_MUL(a, b) __fmul_rn((a), (b))
#define ZSE_DIV(a, b) __fdiv_rn((a), (b))
#else
#define ZSE_FN static inline
#define ZSE_ADD(a, b) ((a) + (b))
#define ZSE_SUB(a, b) ((a) - (b))
#define ZSE_MUL(a, b) ((a) * (b))
#define ZSE_DIV(a, b) ((a) / (b))
#endif

// DDIM's x0 prediction and epsilon (before clipping), as diffusers computes them.
ZSE_FN void zs_se_ddim_x0(const zs_sched_elem *e, float x, float m, float *x0, float *eps) {
    float sa = e->c[0], sb = e->c[1];
    if (e->pred == ZS_SE_PRED_EPS) {
        *x0 = ZSE_DIV(ZSE_SUB(x, ZSE_MUL(sb, m)), sa);
        *eps = m;
    } else if (e->pred == ZS_SE_PRED_V) {
        *x0 = ZSE_SUB(ZSE_MUL(sa, x), ZSE_MUL(sb, m));
        *eps = ZSE_ADD(ZSE_MUL(sa, m), ZSE_MUL(sb, x));
    } else {
        *x0 = m;
        *eps = ZSE_DIV(ZSE_SUB(x, ZSE_MUL(sa, m)), sb);
    }
}

// One element forward. p: DPM's previous x0 (read when order2, then overwritten with this
// step's x0); unused otherwise.
ZSE_FN float zs_se_fwd(const zs_sched_elem *e, float x, float m, float *p) {
    const float *c = e->c;
    switch (e->op) {
    case ZS_SE_MUL: return ZSE_MUL(x, c[0]);
    case ZS_SE_DIV: return ZSE_DIV(x, c[0]);
    case ZS_SE_CFG: return ZSE_ADD(x, ZSE_MUL(c[0], ZSE_SUB(m, x)));
    case ZS_SE_EULER: {
        float pred;
        if (e->pred == ZS_SE_PRED_EPS) pred = ZSE_SUB(x, ZSE_MUL(c[0], m));
        else if (e->pred == ZS_SE_PRED_V) pred = ZSE_ADD(ZSE_MUL(m, c[2]), ZSE_DIV(x, c[3]));
        else pred = m;
        float der = ZSE_DIV(ZSE_SUB(x, pred), c[0]);
        return ZSE_ADD(x, ZSE_MUL(der, c[1]));
    }
    case ZS_SE_DDIM: {
        float x0, eps;
        zs_se_ddim_x0(e, x, m, &x0, &eps);
        if (e->clip) x0 = x0 < -c[4] ? -c[4] : (x0 > c[4] ? c[4] : x0);
        return ZSE_ADD(ZSE_MUL(c[2], x0), ZSE_MUL(c[3], eps));
    }
    case ZS_SE_DPM: {
        float x0;
        if (e->pred == ZS_SE_PRED_EPS) x0 = ZSE_DIV(ZSE_SUB(x, ZSE_MUL(c[1], m)), c[0]);
        else if (e->pred == ZS_SE_PRED_V) x0 = ZSE_SUB(ZSE_MUL(c[0], x), ZSE_MUL(c[1], m));
        else x0 = m;
        float out = ZSE_SUB(ZSE_MUL(c[2], x), ZSE_MUL(c[3], x0));
        if (e->order2) {
            float d1 = ZSE_MUL(c[5], ZSE_SUB(x0, *p));
            out = ZSE_SUB(out, ZSE_MUL(c[4], d1));
        }
        *p = x0;
        return out;
    }
    }
    return 0.0f;
}

// One element backward, accumulating: dx += d out/d x * g, dm += d out/d m * g.
// MUL / DIV / CFG / EULER: b0 = d/dx, b1 = d/dm. DDIM: b0, b1 unclipped; b2, b3 where x0 is
// clamped (the clamp passes no gradient outside [-r, r], as torch.clamp). DPM: b0 = c2,
// b2 = d out/d x0, b3 = d out/d x0_prev, b4 = d x0/d x, b5 = d x0/d m; carry holds d x0 (from
// the next step) on entry and d x0_prev on exit (may be NULL: then taken as 0, not written).
ZSE_FN void zs_se_bwd(const zs_sched_elem *e, float g, float x, float m, float *dx, float *dm, float *carry) {
    const float *b = e->b;
    // Written with the no-contraction helpers too, so that CUDA equals the CPU bit for bit.
    if (e->op == ZS_SE_DPM) {
        float gx0 = ZSE_ADD(ZSE_MUL(b[2], g), carry ? *carry : 0.0f);
        if (carry) *carry = ZSE_MUL(b[3], g);
        if (dx) *dx = ZSE_ADD(*dx, ZSE_ADD(ZSE_MUL(b[0], g), ZSE_MUL(b[4], gx0)));
        if (dm) *dm = ZSE_ADD(*dm, ZSE_MUL(b[5], gx0));
        return;
    }
    float kx = b[0], km = b[1];
    if (e->op == ZS_SE_DDIM && e->clip) {
        float x0, eps;
        zs_se_ddim_x0(e, x, m, &x0, &eps);
        if (x0 < -e->c[4] || x0 > e->c[4]) {
            kx = b[2];
            km = b[3];
        }
    }
    if (dx) *dx = ZSE_ADD(*dx, ZSE_MUL(kx, g));
    if (dm) *dm = ZSE_ADD(*dm, ZSE_MUL(km, g));
}

#ifdef __cplusplus
extern "C" {
#endif
#ifdef ZS_HAVE_CUDA
// models/scheduler.cu: the two loops above over n elements of dtype dt (F32/F16/BF16; math
// in fp32). x, m, p, dx, dm, carry may be NULL where the op does not use them.
zs_status zs_sched_elem_fwd_cuda(const zs_sched_elem *e, zs_dtype dt, void *out, const void *x, const void *m,
                                 void *p, int64_t n);
zs_status zs_sched_elem_bwd_cuda(const zs_sched_elem *e, zs_dtype dt, void *dx, void *dm, const void *g,
                                 const void *x, const void *m, void *carry, int64_t n);
#endif
#ifdef __cplusplus
}
#endif
#endif
