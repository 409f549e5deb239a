// GELU (erf), GELU (tanh approximation), QuickGELU, ReLU and SiLU, forward and backward; the scalar
// formulas are in act_math.h, shared with activations.cu.
#include <stdio.h>
#include "act_math.h"
#include "op_common.h"
#include "ops.h"

static const char *k_names[ZS_ACT_COUNT] = {"gelu", "gelu_tanh", "quickgelu", "relu", "silu"};
const char *zs_act_name(zs_act a) { return (unsigned)a < ZS_ACT_COUNT ? k_names[a] : "?"; }

static zs_status check_act(zs_act a, const char *dir, char *op, size_t n) {
    if ((unsigned)a >= ZS_ACT_COUNT) return ZS_ERR(ZS_EINVAL, "act_%s: unknown activation %d", dir, (int)a);
    snprintf(op, n, "%s_%s", k_names[a], dir);
    return ZS_OK;
}

zs_status zs_act_fwd(zs_act a, zs_tensor *y, const zs_tensor *x) {
    char op[32];
    zs_opctx c;
    ZS_TRY(check_act(a, "fwd", op, sizeof op));
    ZS_TRY(zs_op_begin(&c, op, x, "x"));
    ZS_TRY(zs_op_arg_like(&c, y, "y", c.dt, x, -1));
    int64_t n = zs_numel(x);
    if (n == 0) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_act_fwd_cuda((int)a, y->data, x->data, c.dt, n);
#endif
    }
    float *yd = y->data;
    const float *xd = x->data;
    switch ((int)a) {  // a constant activation in each loop, so that the loop vectorises
#define ZS_ACT_FWD(K)                                                                  \
    case K:                                                                           \
        _Pragma("omp parallel for simd schedule(static) if (n > 32768)")               \
        for (int64_t i = 0; i < n; i++) yd[i] = zs_act_f(K, xd[i]);                    \
        break;
        ZS_ACT_FWD(0) ZS_ACT_FWD(1) ZS_ACT_FWD(2) ZS_ACT_FWD(3) ZS_ACT_FWD(4)
    }
    return ZS_OK;
}

zs_status zs_act_bwd(zs_act a, zs_tensor *dx, const zs_tensor *dy, const zs_tensor *x) {
    char op[32];
    zs_opctx c;
    ZS_TRY(check_act(a, "bwd", op, sizeof op));
    ZS_TRY(zs_op_begin(&c, op, x, "x"));
    ZS_TRY(zs_op_arg_like(&c, dy, "dy", c.dt, x, -1));
    if (dx) ZS_TRY(zs_op_arg_like(&c, dx, "dx", c.dt, x, -1));
    int64_t n = zs_numel(x);
    if (!dx || n == 0) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_act_bwd_cuda((int)a, dx->data, dy->data, x->data, c.dt, n);
#endif
    }
    float *dxd = dx->data;
    const float *dyd = dy->data, *xd = x->data;
    switch ((int)a) {
#define ZS_ACT_BWD(K)                                                                  \
    case K:                                                                           \
        _Pragma("omp parallel for simd schedule(static) if (n > 32768)")               \
        for (int64_t i = 0; i < n; i++) dxd[i] += dyd[i] * zs_act_df(K, xd[i]);        \
        break;
        ZS_ACT_BWD(0) ZS_ACT_BWD(1) ZS_ACT_BWD(2) ZS_ACT_BWD(3) ZS_ACT_BWD(4)
    }
    return ZS_OK;
}
