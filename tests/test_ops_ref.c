// CPU ops vs PyTorch: tests/fixtures/ops/ops.safetensors (tools/fixtures/make_ops.py) holds
// random inputs, torch's outputs and the gradients of L = sum(y * r) for each case; the CPU
// forward outputs and backward gradients must match at norm-relative error 1e-5.
#include <stdlib.h>
#include <string.h>
#include "op_table.h"
#include "test.h"
#include "weights/safetensors.h"

#define REF_TOL 1e-5

// Must match make_ops.py's cases (name, op).
static const struct { const char *name; zt_op_kind kind; } k_cases[] = {
    {"linear", ZT_OP_LINEAR},       {"linear_nobias", ZT_OP_LINEAR}, {"layernorm", ZT_OP_LAYERNORM},
    {"layernorm_3d", ZT_OP_LAYERNORM}, {"softmax", ZT_OP_SOFTMAX},  {"softmax_3d", ZT_OP_SOFTMAX},
    {"gelu", ZT_OP_GELU},           {"gelu_tanh", ZT_OP_GELU_TANH},  {"quickgelu", ZT_OP_QUICKGELU},
    {"add", ZT_OP_ADD},             {"embedding", ZT_OP_EMBEDDING},
};

static const zs_st_entry *find(const zs_st *st, const char *cs, const char *role) {
    char nm[128];
    snprintf(nm, sizeof nm, "%s.%s", cs, role);
    return zs_st_find(st, nm);
}

// Case sizes from the fixture's shapes: the main input (x / a / ids) gives the leading dims.
static int case_from(const zs_st *st, const char *cs, zt_op_kind k, zt_op_case *c) {
    memset(c, 0, sizeof *c);
    c->name = cs;
    c->kind = k;
    const zs_st_entry *x = find(st, cs, k == ZT_OP_ADD ? "a" : k == ZT_OP_EMBEDDING ? "ids" : "x");
    const zs_st_entry *w = find(st, cs, k == ZT_OP_EMBEDDING ? "table" : "w");
    if (!x || x->ndim < 1 || x->ndim > 3 || ((k == ZT_OP_LINEAR || k == ZT_OP_EMBEDDING) && (!w || w->ndim != 2)))
        return 0;
    int lead = k == ZT_OP_EMBEDDING ? x->ndim : x->ndim - 1;  // ids have no feature dim
    c->batch = lead == 2 ? x->shape[0] : 1;
    c->rows = 1;
    for (int i = 0; i < lead; i++) c->rows *= x->shape[i];
    c->cols = k == ZT_OP_EMBEDDING ? w->shape[1] : x->shape[x->ndim - 1];
    if (k == ZT_OP_LINEAR) c->out = w->shape[0], c->bias = find(st, cs, "b") != NULL;
    if (k == ZT_OP_EMBEDDING) c->out = w->shape[0];
    return 1;
}

// Loads "<case>.<role>" into t (CPU F32), checking the shape first.
static zs_status load(const zs_st *st, const char *cs, const char *role, zs_tensor *t) {
    const zs_st_entry *e = find(st, cs, role);
    char nm[128], a[96], b[96];
    snprintf(nm, sizeof nm, "%s.%s", cs, role);
    if (!e) return ZS_ERR(ZS_EFORMAT, "ops fixture: %s missing", nm);
    zs_tensor fx = zs_tensor_make(NULL, e->dtype, ZS_CPU, e->ndim, e->shape);
    if (!zs_same_shape(&fx, t))
        return ZS_ERR(ZS_EFORMAT, "ops fixture: %s is %s, the case wants %s", nm, zs_shape_str(&fx, a, sizeof a),
                      zs_shape_str(t, b, sizeof b));
    if (t->dtype == ZS_I32) {
        if (e->dtype != ZS_I32 || !e->data) return ZS_ERR(ZS_EFORMAT, "ops fixture: %s is not I32", nm);
        memcpy(t->data, e->data, (size_t)zs_numel(t) * 4);
        return ZS_OK;
    }
    return zs_st_read_f32(st, nm, t->data, zs_numel(t));
}

static zt_result cmp(const zs_st *st, const char *cs, const char *role, const zs_tensor *got) {
    int64_t n = zs_numel(got);
    float *ref = malloc((size_t)n * sizeof(float) + 4);
    CHECK(ref, "oom");
    zs_tensor r = zs_tensor_make(ref, ZS_F32, ZS_CPU, got->ndim, got->shape);
    zs_status s = load(st, cs, role, &r);
    double e = s ? 0 : zt_rel_err(got->data, ref, n, 1e-6);
    free(ref);
    CHECK_OK(s);
    if (getenv("ZSMLC_TEST_VERBOSE")) zt_note(__FILE__, __LINE__, "%s.%s: rel err %.3g", cs, role, e);
    CHECK(e <= REF_TOL, "%s.%s: rel err %.3g vs PyTorch > %g", cs, role, e, REF_TOL);
    return ZT_PASS;
}

static zt_result ref_case(const zs_st *st, const char *cs, zt_op_kind k) {
    zt_op_case c;
    CHECK(case_from(st, cs, k, &c), "ops fixture: case %s missing or malformed", cs);
    if (k == ZT_OP_LAYERNORM) {
        const zs_st_entry *e = find(st, cs, "eps");
        CHECK(e && zs_st_read_f32(st, e->name, &c.eps, 1) == ZS_OK, "%s.eps: %s", cs, zs_errmsg());
    }
    zt_op_inst o;
    CHECK_OK(zt_op_alloc(&o, &c, ZS_CPU, ZS_F32, 1));
    zt_result r = ZT_FAIL;
    zs_status s = ZS_OK;
    for (int i = 0; i < o.nin && !s; i++) s = load(st, cs, o.in_role[i], &o.in[i]);
    if (!s && k == ZT_OP_EMBEDDING) s = load(st, cs, "ids", &o.ids);
    if (!s) s = load(st, cs, "r", &o.dy);
    if (!s) s = zt_op_forward(&o);
    if (s) {
        zt_note(__FILE__, __LINE__, "%s: %s", cs, zs_errmsg());
        goto done;
    }
    for (int j = 0; j < o.nout; j++)
        if (cmp(st, cs, o.out_role[j], &o.out[j]) != ZT_PASS) goto done;
    if ((s = zt_op_zero_grads(&o)) != ZS_OK || (s = zt_op_backward(&o)) != ZS_OK) {
        zt_note(__FILE__, __LINE__, "%s backward: %s", cs, zs_errmsg());
        goto done;
    }
    for (int i = 0; i < o.nin; i++)
        if (cmp(st, cs, o.din_role[i], &o.din[i]) != ZT_PASS) goto done;
    char why[160];
    if (!zt_op_guards_ok(&o, why, sizeof why)) {
        zt_note(__FILE__, __LINE__, "%s: guard: %s", cs, why);
        goto done;
    }
    r = ZT_PASS;
done:
    zt_op_free(&o);
    return r;
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
