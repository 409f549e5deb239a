// The patchify family (models/patchify.h): the ViT patch convolution's reshaping of an
// image into rows of flattened patches, and its scatter backward. p = {B, C, H, W, P}.
#include <stdio.h>
#include "models/patchify.h"
#include "op_table.h"

#define T ZT_CASE_TEST
#define B ZT_CASE_BENCH
#define PATCH_CASE(name, flags, b, c, h, w, p) \
    {name, ZT_OP_FAMILY, 0, 0, 0, 0, 0, 0, flags, &zt_fam_patchify, {b, c, h, w, p, 0, 0, 0}}
extern const zt_op_family zt_fam_patchify;

static const zt_op_case k_cases[] = {
    //          name                          flags B   C  H    W    P
    PATCH_CASE("patchify_2x3x8x12_p4",        T,    2,  3, 8,   12,  4),
    PATCH_CASE("patchify_remainder_1x2x9x11_p4", T, 1,  2, 9,   11,  4),  // rows/cols past the grid get no gradient
    PATCH_CASE("patchify_1x3x7x7_p7",         T,    1,  3, 7,   7,   7),
    PATCH_CASE("patchify_2x3x28x35_p7",       T,    2,  3, 28,  35,  7),
    PATCH_CASE("patchify_vit_b32_4x224",      T,    4,  3, 224, 224, 32),
    PATCH_CASE("patchify_vit_b32_b64",        B,    64, 3, 224, 224, 32),
};

static zs_status alloc(zt_op_inst *o, int guard) {
    const int64_t *p = o->c->p, gh = p[2] / p[4], gw = p[3] / p[4];
    o->nin = 1;
    o->in_role[0] = "x", o->din_role[0] = "dx";
    ZS_TRY(zt_alloc_tensor(o, &o->in[0], o->dt, 4, (const int64_t[]){p[0], p[1], p[2], p[3]}, "x", guard));
    o->nout = 1;
    return zt_alloc_tensor(o, &o->out[0], o->dt, 3, (const int64_t[]){p[0], gh * gw, p[1] * p[4] * p[4]}, "y", guard);
}
static zs_status fill(zt_op_inst *o, uint64_t seed) { return zt_fill_tensor(&o->in[0], seed, 1, -1, 1); }
static zs_status forward(zt_op_inst *o) { return zs_patchify_fwd(&o->out[0], &o->in[0], (int)o->c->p[4]); }
static zs_status backward(zt_op_inst *o) { return zs_patchify_bwd(&o->din[0], &o->dy, (int)o->c->p[4]); }

static void cost(const zt_op_case *c, int bwd, size_t e, double *flops, double *bytes) {
    const int64_t *p = c->p;
    double y = (double)(p[0] * (p[2] / p[4]) * (p[3] / p[4]) * p[1] * p[4] * p[4]);
    *flops = 0;
    *bytes = (double)e * (bwd ? 3 * y : 2 * y);  // bwd: dy read, dx read + write
}
static const char *shape(const zt_op_case *c, char *buf, size_t n) {
    const int64_t *p = c->p;
    snprintf(buf, n, "x[%lld,%lld,%lld,%lld] P%lld", (long long)p[0], (long long)p[1], (long long)p[2], (long long)p[3],
             (long long)p[4]);
    return buf;
}

// A permutation: FD is exact up to fp32 rounding of L (measured 0). CUDA moves values
// unchanged (forward exact); the backward's += onto the prefill rounds once in BF16 / F16
// (2^-9 / 2^-11 relative per element).
const zt_op_family zt_fam_patchify = {
    "patchify", k_cases, (int)(sizeof k_cases / sizeof k_cases[0]), 1e-2, 1e-5, 1e-6, 1e-2, 2e-3,
    alloc, fill, forward, backward, cost, shape,
};
