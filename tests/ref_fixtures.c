// Running op cases against reference fixtures (tools/fixtures/make_*.py): tensors are named
// "<case>.<role>" (inputs x / w / b / ..., outputs y / ..., "r" the upstream gradient of
// L = sum(y * r), gradients dx / dw / ...). Shared by tests/test_ops_ref.c and the family
// test files.
#include <stdlib.h>
#include <string.h>
#include "test_ops.h"

const zs_st_entry *zt_ref_find(const zs_st *st, const char *cs, const char *role) {
    char nm[160];
    snprintf(nm, sizeof nm, "%s.%s", cs, role);
    return zs_st_find(st, nm);
}

zs_status zt_ref_load(const zs_st *st, const char *cs, const char *role, zs_tensor *t) {
    const zs_st_entry *e = zt_ref_find(st, cs, role);
    char nm[160], a[96], b[96];
    snprintf(nm, sizeof nm, "%s.%s", cs, role);
    if (!e) return ZS_ERR(ZS_EFORMAT, "fixture: %s missing", nm);
    zs_tensor fx = zs_tensor_make(NULL, e->dtype, ZS_CPU, e->ndim, e->shape);
    if (!zs_same_shape(&fx, t))
        return ZS_ERR(ZS_EFORMAT, "fixture: %s is %s, the case wants %s", nm, zs_shape_str(&fx, a, sizeof a),
                      zs_shape_str(t, b, sizeof b));
    if (t->dtype == ZS_I32) {
        if (e->dtype != ZS_I32 || !e->data) return ZS_ERR(ZS_EFORMAT, "fixture: %s is not I32", nm);
        memcpy(t->data, e->data, (size_t)zs_numel(t) * 4);
        return ZS_OK;
    }
    return zs_st_read_f32(st, nm, t->data, zs_numel(t));
}

zt_result zt_ref_cmp(const zs_st *st, const char *cs, const char *role, const zs_tensor *got, double tol) {
    int64_t n = zs_numel(got);
    float *ref = malloc((size_t)n * sizeof(float) + 4);
    CHECK(ref, "oom");
    zs_tensor r = zs_tensor_make(ref, ZS_F32, ZS_CPU, got->ndim, got->shape);
    zs_status s = zt_ref_load(st, cs, role, &r);
    double e = s ? 0 : zt_rel_err(got->data, ref, n, 1e-6);
    free(ref);
    CHECK_OK(s);
    if (getenv("ZSMLC_TEST_VERBOSE")) zt_note(__FILE__, __LINE__, "%s.%s: rel err %.3g vs reference", cs, role, e);
    CHECK(e <= tol, "%s.%s: rel err %.3g vs the reference > %g", cs, role, e, tol);
    return ZT_PASS;
}

zt_result zt_ref_run(const zs_st *st, const zt_op_case *c, int ncmp_out, double tol) {
    const char *cs = c->name;
    zt_op_inst o;
    CHECK_OK(zt_op_alloc(&o, c, ZS_CPU, ZS_F32, 1));
    zt_result r = ZT_FAIL;
    zs_status s = ZS_OK;
    char why[160];
    for (int i = 0; i < o.nin && !s; i++) s = zt_ref_load(st, cs, o.in_role[i], &o.in[i]);
    for (int i = 0; i < o.naux && !s; i++) s = zt_ref_load(st, cs, o.aux[i].name, &o.aux[i]);
    if (!s && c->kind == ZT_OP_EMBEDDING) s = zt_ref_load(st, cs, "ids", &o.ids);
    if (!s) s = zt_ref_load(st, cs, "r", &o.dy);
    if (!s) s = zt_op_forward(&o);
    if (s) {
        zt_note(__FILE__, __LINE__, "%s: %s", cs, zs_errmsg());
        goto done;
    }
    for (int j = 0; j < o.nout && j < ncmp_out; j++)
        if (zt_ref_cmp(st, cs, o.out_role[j], &o.out[j], tol) != ZT_PASS) goto done;
    if ((s = zt_op_zero_grads(&o)) != ZS_OK || (s = zt_op_backward(&o)) != ZS_OK) {
        zt_note(__FILE__, __LINE__, "%s backward: %s", cs, zs_errmsg());
        goto done;
    }
    for (int i = 0; i < o.nin; i++)
        if (zt_ref_cmp(st, cs, o.din_role[i], &o.din[i], tol) != ZT_PASS) goto done;
    if (!zt_op_guards_ok(&o, why, sizeof why)) {
        zt_note(__FILE__, __LINE__, "%s: guard: %s", cs, why);
        goto done;
    }
    r = ZT_PASS;
done:
    zt_op_free(&o);
    return r;
}
