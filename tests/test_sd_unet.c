// SD UNet against the tiny diffusers fixtures (tests/fixtures/sd/README.md, unet.a / unet.b):
// out = unet(sample, t, ctx), the gradients of sum(out * r) w.r.t. sample, ctx and (case a)
// every parameter; the LDM single files; checkpointing re-runs being exact; errors.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "models/sd_unet.h"
#include "tests/sd_ref.h"
#include "tests/test.h"

static zs_status open_ref(zs_st **ref, const char *model) {
    char rel[256], p[512];
    snprintf(rel, sizeof rel, "sd/%s.reference.safetensors", model);
    return zs_st_open(ref, zt_fixture_path(rel, p, sizeof p));
}

// The folder (single = 0) or the LDM single file with the folder's configs.
static zs_status open_unet(zs_sd_unet **u, const char *model, int single, zs_device dev, zs_dtype dt) {
    char rel[256], a[512], b[512];
    snprintf(rel, sizeof rel, "sd/%s", model);
    zt_fixture_path(rel, b, sizeof b);
    if (!single) return zs_sd_unet_open(u, b, NULL, dev, dt);
    zs_sd_plan_opts o = {b, 0};
    snprintf(rel, sizeof rel, "sd/%s.safetensors", model);
    return zs_sd_unet_open(u, zt_fixture_path(rel, a, sizeof a), &o, dev, dt);
}

// ---- one forward (+ backward) on a device, results on the host ------------------------------------
typedef struct {
    float *out, *ds, *dc, *grads;  // grads: every parameter's gradient, concatenated in order
    int64_t no, ns, nc, ng;
} outs;

static void outs_free(outs *o) {
    free(o->out);
    free(o->ds);
    free(o->dc);
    free(o->grads);
    memset(o, 0, sizeof *o);
}

#define REF(var, name, n)                                                                  \
    do {                                                                                   \
        snprintf(nm, sizeof nm, "unet.%c.%s", cs, name);                                   \
        if (!s && !(var = zt_ref_read(ref, nm, n, 0, NULL))) s = ZS_ERR(ZS_EFORMAT, "reference: %s", nm); \
    } while (0)

// Case cs ('a' / 'b') through u: setup(train), forward; with train the backward from r
// (parameter grads when zs_sd_unet_grads ran).
static zs_status run_case(zs_sd_unet *u, const zs_st *ref, char cs, int train, outs *o) {
    char nm[128];
    memset(o, 0, sizeof *o);
    snprintf(nm, sizeof nm, "unet.%c.sample", cs);
    const zs_st_entry *es = zs_st_find(ref, nm);
    snprintf(nm, sizeof nm, "unet.%c.encoder_hidden_states", cs);
    const zs_st_entry *ec = zs_st_find(ref, nm);
    if (!es || !ec || es->ndim != 4 || ec->ndim != 3) return ZS_ERR(ZS_EFORMAT, "reference: no unet.%c inputs", cs);
    zs_device dev = zs_sd_unet_device(u);
    zs_dtype dt = zs_sd_unet_dtype(u);
    int64_t os[4] = {es->shape[0], zs_sd_unet_cfg(u)->out_channels, es->shape[2], es->shape[3]};
    o->ns = zs_st_numel(es), o->nc = zs_st_numel(ec), o->no = os[0] * os[1] * os[2] * os[3];
    float *hs = NULL, *hc = NULL, *ht = NULL, *hr = NULL;
    zs_tensor S = {0}, C = {0}, O = {0}, R = {0}, DS = {0}, DC = {0};
    zs_status s = zs_sd_unet_setup(u, es->shape[0], es->shape[2], es->shape[3], ec->shape[1], train);
    REF(hs, "sample", o->ns);
    REF(hc, "encoder_hidden_states", o->nc);
    REF(ht, "timestep", es->shape[0]);
    REF(hr, "r", o->no);
    o->out = calloc((size_t)o->no, sizeof(float));
    o->ds = calloc((size_t)o->ns, sizeof(float));
    o->dc = calloc((size_t)o->nc, sizeof(float));
    if (!s && (!o->out || !o->ds || !o->dc)) s = ZS_ERR(ZS_ENOMEM, "test outs");
    if (!s) s = zt_to_dev(&S, hs, 4, es->shape, dev, dt);
    if (!s) s = zt_to_dev(&C, hc, 3, ec->shape, dev, dt);
    if (!s) s = zt_to_dev(&O, o->out, 4, os, dev, dt);
    if (!s) s = zs_sd_unet_fwd(u, &O, &S, ht, &C);
    if (!s) s = zt_to_host(o->out, &O);
    if (!s && train) {
        s = zt_to_dev(&R, hr, 4, os, dev, dt);
        if (!s) s = zt_to_dev(&DS, o->ds, 4, es->shape, dev, dt);  // zeros
        if (!s) s = zt_to_dev(&DC, o->dc, 3, ec->shape, dev, dt);
        if (!s) s = zs_sd_unet_bwd(u, &R, &DS, &DC);
        if (!s) s = zt_to_host(o->ds, &DS);
        if (!s) s = zt_to_host(o->dc, &DC);
        int n = zs_sd_unet_n_params(u);
        if (!s && zs_sd_unet_grad(u, 0)) {
            for (int i = 0; i < n; i++) o->ng += zs_numel(zs_sd_unet_grad(u, i));
            o->grads = malloc(sizeof(float) * (size_t)o->ng);
            if (!o->grads) s = ZS_ERR(ZS_ENOMEM, "test grads");
            for (int64_t i = 0, off = 0; !s && i < n; off += zs_numel(zs_sd_unet_grad(u, (int)i)), i++)
                s = zt_to_host(o->grads + off, zs_sd_unet_grad(u, (int)i));
        }
    }
    zs_tensor *all[6] = {&S, &C, &O, &R, &DS, &DC};
    for (int i = 0; i < 6; i++) zs_free(all[i]->data, dev);
    free(hs), free(hc), free(ht), free(hr);
    if (s) outs_free(o);
    return s;
}

// Open + grads + run_case.
static zs_status run_model(const char *model, int single, zs_device dev, zs_dtype dt, const zs_st *ref, char cs,
                           int train, outs *o) {
    zs_sd_unet *u;
    ZS_TRY(open_unet(&u, model, single, dev, dt));
    zs_status s = train ? zs_sd_unet_grads(u) : ZS_OK;
    if (!s) s = run_case(u, ref, cs, train, o);
    zs_sd_unet_free(u);
    return s;
}

// ---- against the reference --------------------------------------------------------------------
static zt_result ref_case(const char *model) {
    zs_st *ref;
    CHECK_OK(open_ref(&ref, model));
    zs_sd_unet *u;
    zs_status s = open_unet(&u, model, 0, ZS_CPU, ZS_F32);
    if (!s) s = zs_sd_unet_grads(u);
    zt_result res = ZT_PASS;
    for (int c = 0; !s && c < 2; c++) {
        char cs = "ab"[c], nm[300];
        outs o;
        if (!s) s = zs_sd_unet_zero_grads(u);
        if (!s) s = run_case(u, ref, cs, 1, &o);
        if (s) break;
        snprintf(nm, sizeof nm, "unet.%c.out", cs);
        float *w = zt_ref_read(ref, nm, o.no, 0, NULL);
        snprintf(nm, sizeof nm, "unet.%c.grad.sample", cs);
        float *gs = zt_ref_read(ref, nm, o.ns, 0, NULL);
        snprintf(nm, sizeof nm, "unet.%c.grad.encoder_hidden_states", cs);
        float *gc = zt_ref_read(ref, nm, o.nc, 0, NULL);
        double e[3] = {w ? zt_rel_err(o.out, w, o.no, 1e-6) : INFINITY, gs ? zt_rel_err(o.ds, gs, o.ns, 1e-6) : INFINITY,
                       gc ? zt_rel_err(o.dc, gc, o.nc, 1e-6) : INFINITY};
        free(w), free(gs), free(gc);
        double worst = 0;
        const char *wn = "";
        int np = zs_sd_unet_n_params(u), nref = 0, ncmp = 0;
        if (cs == 'a') {  // every parameter gradient; the folder's names are the engine's
            for (int i = 0; i < np; i++) {
                snprintf(nm, sizeof nm, "grad.unet.%s", zs_sd_unet_param_name(u, i));
                int64_t m = zs_numel(zs_sd_unet_grad(u, i));
                float *g = zt_ref_read(ref, nm, m, 0, NULL);
                double ei = g ? zt_rel_err(zs_sd_unet_grad(u, i)->data, g, m, 1e-6) : INFINITY;
                if (!(ei <= worst)) worst = ei, wn = zs_sd_unet_param_name(u, i);
                ncmp += g != NULL;
                free(g);
            }
            for (int i = 0; i < zs_st_count(ref); i++) nref += !strncmp(zs_st_at(ref, i)->name, "grad.unet.", 10);
            zt_note(__FILE__, __LINE__, "%s case a: %d parameter grads (reference %d), worst rel err %.3g (%s)", model,
                    ncmp, nref, worst, wn);
            if (!(worst <= 1e-4) || ncmp != np || nref != np) res = ZT_FAIL;
        }
        zt_note(__FILE__, __LINE__, "%s case %c: out rel err %.3g, d sample %.3g, d ctx %.3g (||got - ref|| / ||ref||)",
                model, cs, e[0], e[1], e[2]);
        if (!(e[0] <= 1e-4) || !(e[1] <= 1e-4) || !(e[2] <= 1e-4)) res = ZT_FAIL;
        outs_free(&o);
    }
    if (s) {
        zt_note(__FILE__, __LINE__, "%s: %s", model, zs_errmsg());
        res = ZT_FAIL;
    }
    if (res) zt_note(__FILE__, __LINE__, "%s: above the 1e-4 bound", model);
    zs_sd_unet_free(u);
    zs_st_close(ref);
    return res;
}

TEST(sd_unet_sd1) { return ref_case("sd1-tiny"); }
TEST(sd_unet_sd2) { return ref_case("sd2-tiny"); }

// The LDM single files (sd1: conv proj_in/out; sd2: linear) give the folder's out bit for bit.
TEST(sd_unet_single_file) {
    const char *models[2] = {"sd1-tiny", "sd2-tiny"};
    for (int m = 0; m < 2; m++) {
        zs_st *ref;
        CHECK_OK(open_ref(&ref, models[m]));
        outs a, b;
        memset(&b, 0, sizeof b);
        zs_status s = run_model(models[m], 0, ZS_CPU, ZS_F32, ref, 'a', 0, &a);
        if (!s) s = run_model(models[m], 1, ZS_CPU, ZS_F32, ref, 'a', 0, &b);
        int same = !s && !memcmp(a.out, b.out, sizeof(float) * (size_t)a.no);
        if (s) zt_note(__FILE__, __LINE__, "%s: %s", models[m], zs_errmsg());
        outs_free(&a);
        outs_free(&b);
        zs_st_close(ref);
        CHECK(!s && same, "%s: single file out differs from the folder's", models[m]);
    }
    return ZT_PASS;
}

// Checkpointing re-runs are exact: two forward + backward passes agree bit for bit, and the
// train = 0 forward equals the train = 1 forward.
TEST(sd_unet_repeat) {
    zs_st *ref;
    CHECK_OK(open_ref(&ref, "sd2-tiny"));
    zs_sd_unet *u;
    outs a, b, c;
    memset(&b, 0, sizeof b), memset(&c, 0, sizeof c);
    zs_status s = open_unet(&u, "sd2-tiny", 0, ZS_CPU, ZS_F32);
    if (!s) s = zs_sd_unet_grads(u);
    if (!s) s = run_case(u, ref, 'b', 1, &a);
    if (!s) s = zs_sd_unet_zero_grads(u);
    if (!s) s = run_case(u, ref, 'b', 1, &b);
    zs_sd_unet_mem mt = zs_sd_unet_memory(u);
    if (!s) s = run_case(u, ref, 'b', 0, &c);
    zs_sd_unet_mem mi = zs_sd_unet_memory(u);
    int same = !s && !memcmp(a.out, b.out, sizeof(float) * (size_t)a.no) &&
               !memcmp(a.ds, b.ds, sizeof(float) * (size_t)a.ns) && !memcmp(a.dc, b.dc, sizeof(float) * (size_t)a.nc) &&
               a.ng == b.ng && !memcmp(a.grads, b.grads, sizeof(float) * (size_t)a.ng);
    int same_inf = !s && !memcmp(a.out, c.out, sizeof(float) * (size_t)a.no);
    if (s) zt_note(__FILE__, __LINE__, "%s", zs_errmsg());
    zt_note(__FILE__, __LINE__, "memory: params %zu, grads %zu, acts train %zu (scratch %zu), inference %zu (scratch %zu)",
            mt.params, mt.grads, mt.acts, mt.scratch, mi.acts, mi.scratch);
    outs_free(&a), outs_free(&b), outs_free(&c);
    zs_sd_unet_free(u);
    zs_st_close(ref);
    CHECK(same && same_inf, "repeat %d, inference vs train forward %d", same, same_inf);
    CHECK(mi.acts < mt.acts && mt.scratch > 0 && mi.grads == mt.grads && mt.grads == mt.params, "memory report");
    return ZT_PASS;
}

// Errors: wrong shapes, backward without train, a different config, no crash.
TEST(sd_unet_errors) {
    zs_sd_unet *u, *u2;
    CHECK_OK(open_unet(&u, "sd1-tiny", 0, ZS_CPU, ZS_F32));
    CHECK_OK(zs_sd_unet_setup(u, 1, 4, 6, 5, 0));
    float x[4 * 4 * 6] = {0}, o[4 * 4 * 6], ctx[5 * 40] = {0}, t = 10;
    int64_t ss[4] = {1, 4, 4, 6}, cs[3] = {1, 5, 40};
    zs_tensor S = zs_tensor_make(x, ZS_F32, ZS_CPU, 4, ss), O = zs_tensor_make(o, ZS_F32, ZS_CPU, 4, ss),
              C = zs_tensor_make(ctx, ZS_F32, ZS_CPU, 3, cs);
    CHECK_OK(zs_sd_unet_fwd(u, &O, &S, &t, &C));
    S.shape[1] = 3;
    zs_status s1 = zs_sd_unet_fwd(u, &O, &S, &t, &C);
    CHECK(s1 == ZS_EINVAL && strstr(zs_errmsg(), "sample"), "wrong sample: %d %s", s1, zs_errmsg());
    S.shape[1] = 4, C.shape[2] = 48;
    zs_status s2 = zs_sd_unet_fwd(u, &O, &S, &t, &C);
    CHECK(s2 == ZS_EINVAL && strstr(zs_errmsg(), "encoder_hidden_states"), "wrong ctx: %d %s", s2, zs_errmsg());
    C.shape[2] = 40;
    zs_status s3 = zs_sd_unet_bwd(u, &O, NULL, NULL);
    CHECK(s3 == ZS_EINVAL && strstr(zs_errmsg(), "train"), "bwd without train: %d %s", s3, zs_errmsg());
    zs_status s4 = zs_sd_unet_fwd(u, &S, &S, &t, &C);
    CHECK(s4 == ZS_EINVAL, "aliasing out: %d", s4);
    // sd2's plan into the sd1 model
    char a[512];
    zs_sd_plan *p;
    CHECK_OK(zs_sd_plan_open(&p, zt_fixture_path("sd/sd2-tiny", a, sizeof a), NULL));
    zs_status s5 = zs_sd_unet_load(u, p);
    CHECK(s5 == ZS_EINVAL && strstr(zs_errmsg(), "cross_attention_dim"), "other config: %d %s", s5, zs_errmsg());
    zs_sd_unet_config bad = *zs_sd_unet_cfg(u);
    bad.heads[1] = 5;
    zs_status s6 = zs_sd_unet_create(&u2, &bad, ZS_CPU, ZS_F32);
    CHECK(s6 == ZS_EINVAL && !u2, "bad heads: %d", s6);
    zs_sd_plan_free(p);
    zs_sd_unet_free(u);
    return ZT_PASS;
}

// ---- CUDA --------------------------------------------------------------------------------------
static zt_result cuda_case(zs_dtype dt, double bound, double gbound) {
    zs_st *ref;
    CHECK_OK(zs_cuda_init(0));
    CHECK_OK(open_ref(&ref, "sd1-tiny"));
    outs c, g;
    memset(&g, 0, sizeof g);
    zs_status s = run_model("sd1-tiny", 0, ZS_CPU, ZS_F32, ref, 'a', 1, &c);
    if (!s) s = run_model("sd1-tiny", 0, ZS_CUDA, dt, ref, 'a', 1, &g);
    zs_st_close(ref);
    if (s) {
        zt_note(__FILE__, __LINE__, "%s", zs_errmsg());
        outs_free(&c);
        return ZT_FAIL;
    }
    double e[4] = {zt_rel_err(g.out, c.out, c.no, 1e-6), zt_rel_err(g.ds, c.ds, c.ns, 1e-6),
                   zt_rel_err(g.dc, c.dc, c.nc, 1e-6), zt_rel_err(g.grads, c.grads, c.ng, 1e-6)};
    printf("    sd unet cuda %s vs cpu: out %.2e d sample %.2e d ctx %.2e param grads %.2e (bounds %g, grads %g)\n",
           zs_dtype_name(dt), e[0], e[1], e[2], e[3], bound, gbound);
    outs_free(&c);
    outs_free(&g);
    CHECK(e[0] < bound && e[1] < gbound && e[2] < gbound && e[3] < gbound, "CUDA %s differs from the CPU",
          zs_dtype_name(dt));
    return ZT_PASS;
}

// sd1-tiny case a, forward + backward: F32 within 1e-4 (relative norm) everywhere.
GPU_TEST(sd_unet_cuda_f32_matches_cpu) { return cuda_case(ZS_F32, 1e-4, 1e-4); }
// BF16 (8-bit mantissa) through ~20 units: out within 5e-2, the gradients (d sample, d ctx,
// parameters) within 1e-1, as the CLIP BF16 test bounds them.
GPU_TEST(sd_unet_cuda_bf16_matches_cpu) { return cuda_case(ZS_BF16, 5e-2, 1e-1); }
