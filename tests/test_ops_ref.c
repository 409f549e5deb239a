// CPU ops vs PyTorch: tests/fixtures/ops/ops.safetensors (tools/fixtures/make_ops.py) holds
// random inputs, torch's outputs and the gradients of L = sum(y * r) for each case; the CPU
// forward outputs and backward gradients must match at norm-relative error 1e-5.
#include <stdlib.h>
#include <string.h>
#include "op_table.h"
#include "test.h"
#include "test_ops.h"
#include "weights/safetensors.h"

#define REF_TOL 1e-5

// Must match make_ops.py's cases (name, op).
static const struct { const char *name; zt_op_kind kind; } k_cases[] = {
    {"linear", ZT_OP_LINEAR},       {"linear_nobias", ZT_OP_LINEAR}, {"layernorm", ZT_OP_LAYERNORM},
    {"layernorm_3d", ZT_OP_LAYERNORM}, {"softmax", ZT_OP_SOFTMAX},  {"softmax_3d", ZT_OP_SOFTMAX},
    {"gelu", ZT_OP_GELU},           {"gelu_tanh", ZT_OP_GELU_TANH},  {"quickgelu", ZT_OP_QUICKGELU},
    {"add", ZT_OP_ADD},             {"embedding", ZT_OP_EMBEDDING},
};

// Case sizes from the fixture's shapes: the main input (x / a / ids) gives the leading dims.
static int case_from(const zs_st *st, const char *cs, zt_op_kind k, zt_op_case *c) {
    memset(c, 0, sizeof *c);
    c->name = cs;
    c->kind = k;
    const zs_st_entry *x = zt_ref_find(st, cs, k == ZT_OP_ADD ? "a" : k == ZT_OP_EMBEDDING ? "ids" : "x");
    const zs_st_entry *w = zt_ref_find(st, cs, k == ZT_OP_EMBEDDING ? "table" : "w");
    if (!x || x->ndim < 1 || x->ndim > 3 || ((k == ZT_OP_LINEAR || k == ZT_OP_EMBEDDING) && (!w || w->ndim != 2)))
        return 0;
    int lead = k == ZT_OP_EMBEDDING ? x->ndim : x->ndim - 1;  // ids have no feature dim
    c->batch = lead == 2 ? x->shape[0] : 1;
    c->rows = 1;
    for (int i = 0; i < lead; i++) c->rows *= x->shape[i];
    c->cols = k == ZT_OP_EMBEDDING ? w->shape[1] : x->shape[x->ndim - 1];
    if (k == ZT_OP_LINEAR) c->out = w->shape[0], c->bias = zt_ref_find(st, cs, "b") != NULL;
    if (k == ZT_OP_EMBEDDING) c->out = w->shape[0];
    return 1;
}

static zt_result ref_case(const zs_st *st, const char *cs, zt_op_kind k) {
    zt_op_case c;
    CHECK(case_from(st, cs, k, &c), "ops fixture: case %s missing or malformed", cs);
    if (k == ZT_OP_LAYERNORM) {
        const zs_st_entry *e = zt_ref_find(st, cs, "eps");
        CHECK(e && zs_st_read_f32(st, e->name, &c.eps, 1) == ZS_OK, "%s.eps: %s", cs, zs_errmsg());
    }
    return zt_ref_run(st, &c, ZT_MAXT, REF_TOL);
}

static zt_result ref_kind(zt_op_kind k) {
    char path[512];
    zs_st *st = NULL;
    zs_status s = zs_st_open(&st, zt_fixture_path("ops/ops.safetensors", path, sizeof path));
    CHECK(s == ZS_OK, "%s (regenerate with `make fixtures`)", zs_errmsg());
    zt_result r = ZT_PASS;
    int n = 0;
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0] && r == ZT_PASS; i++)
        if (k_cases[i].kind == k) {
            r = ref_case(st, k_cases[i].name, k);
            n++;
        }
    zs_st_close(st);
    CHECK(n > 0, "no fixture case for %s", zt_op_kind_name(k));
    return r;
}

TEST(ops_ref_linear) { return ref_kind(ZT_OP_LINEAR); }
TEST(ops_ref_layernorm) { return ref_kind(ZT_OP_LAYERNORM); }
TEST(ops_ref_softmax) { return ref_kind(ZT_OP_SOFTMAX); }
TEST(ops_ref_gelu) { return ref_kind(ZT_OP_GELU); }
TEST(ops_ref_gelu_tanh) { return ref_kind(ZT_OP_GELU_TANH); }
TEST(ops_ref_quickgelu) { return ref_kind(ZT_OP_QUICKGELU); }
TEST(ops_ref_add) { return ref_kind(ZT_OP_ADD); }
TEST(ops_ref_embedding) { return ref_kind(ZT_OP_EMBEDDING); }
