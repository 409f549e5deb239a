// CLIP transformer towers against tests/fixtures/clip (PyTorch float64 references, see its
// README): every stored output and every parameter / image gradient, fp32 CPU, relative
// norm error <= 1e-4 (gradients with an absolute floor: k-projection bias gradients are
// mathematically zero).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "models/clip.h"
#include "tests/clip_ref.h"
#include "tests/test.h"


typedef zt_clip_ctx ctx_t;
static int cmp_t(ctx_t *c, const char *name, const zs_tensor *t, int need) {
    return zt_clip_cmp(c, name, t->data, zs_numel(t), need, 0);
}

typedef struct {
    const char *model, *ref;
    unsigned towers;
    int text_heads;
} clip_case;

static zt_result run_case(const clip_case *k) {
    char mp[512], rp[512];
    zt_fixture_path(k->model, mp, sizeof mp);
    zt_fixture_path(k->ref, rp, sizeof rp);
    zs_clip_opts o = zs_clip_default_opts();
    o.towers = k->towers, o.text_heads = k->text_heads;
    zs_clip *m = NULL;
    ctx_t c = {0};
    CHECK_OK(zs_st_open(&c.ref, rp));
    CHECK_OK(zs_clip_load(&m, mp, &o));
    int ok = 1, has_t = (m->towers & ZS_CLIP_TEXT) != 0, has_v = (m->towers & ZS_CLIP_VISION) != 0;
    int32_t *ids = NULL;
    float *img = NULL, *dimg = NULL, *dtf = NULL, *dif = NULL, *logits = NULL, *buf = NULL;
    int64_t B = 0, L = 0, Bi = 0, n = 0, E = 0;
    char name[64];
    // ---- forward ----
    if (has_t) {
        zs_clip_text *t = &m->t;
        ids = zt_clip_ref_ids(c.ref, "input_ids", &B, &L);
        CHECK(ids, "no input_ids");
        CHECK_OK(zs_clip_text_setup(t, B, L, 1));
        zs_clip_text_in in = {ids, NULL, 0, 1};
        CHECK_OK(zs_clip_text_fwd(t, &in));
        for (int i = 0; i <= t->cfg.layers; i++) {
            snprintf(name, sizeof name, "text.hidden.%d", i);
            ok &= cmp_t(&c, name, &t->a.hidden[i], 1);
        }
        ok &= cmp_t(&c, t->cfg.out_layer == t->cfg.layers ? "text.last_hidden_state" : "text.penultimate_ln", &t->a.tokens, 1);
        ok &= cmp_t(&c, "text.pooled", &t->a.pooled, 1);
        if (t->cfg.embed) ok &= cmp_t(&c, "text_features", &t->a.features, 1);
        float *pi = zt_clip_ref_f32(c.ref, "text.pool_index", &n);  // I64 is not float: compare by hand
        free(pi);
        const zs_st_entry *pe = zs_st_find(c.ref, "text.pool_index");
        for (int64_t b = 0; pe && b < B; b++) {
            int64_t v;
            memcpy(&v, (const char *)pe->data + b * 8, 8);
            CHECK(v == t->a.pool_idx[b], "pool index of row %lld: %d, reference %lld", (long long)b, t->a.pool_idx[b], (long long)v);
        }
        E = t->a.features.shape[1];
    }
    if (has_v) {
        zs_clip_vision *v = &m->v;
        const zs_st_entry *ie = zs_st_find(c.ref, "image");
        CHECK(ie && ie->ndim == 4, "no image");
        img = zt_clip_ref_f32(c.ref, "image", &n);
        Bi = ie->shape[0];
        CHECK_OK(zs_clip_vision_setup(v, Bi, 1));
        zs_tensor x = zs_tensor_make(img, ZS_F32, ZS_CPU, 4, ie->shape);
        CHECK_OK(zs_clip_vision_fwd(v, &x));
        for (int i = 0; i <= v->cfg.layers; i++) {
            snprintf(name, sizeof name, "image.hidden.%d", i);
            ok &= cmp_t(&c, name, &v->a.hidden[i], 1);
        }
        ok &= cmp_t(&c, "image.last_hidden_state", &v->a.hidden[v->cfg.layers], 0);
        ok &= cmp_t(&c, "image.pooled", &v->a.pooled, 0);
        if (v->cfg.embed) ok &= cmp_t(&c, "image_features", &v->a.features, 1);
        E = v->a.features.shape[1];
        dimg = calloc((size_t)n, sizeof(float));
    }
    if (has_t && has_v) {
        logits = malloc((size_t)(B * Bi) * sizeof(float));
        float *tn = malloc((size_t)(B * E) * sizeof(float)), *in = malloc((size_t)(Bi * E) * sizeof(float));
        CHECK_OK(zs_clip_logits(m, logits, tn, in));
        ok &= zt_clip_cmp(&c, "logits_per_image", logits, B * Bi, 1, 0);
        ok &= zt_clip_cmp(&c, "text_features_norm", tn, B * E, 1, 0);
        ok &= zt_clip_cmp(&c, "image_features_norm", in, Bi * E, 1, 0);
        free(tn), free(in);
    }
    // ---- backward: the stored loss's upstream gradients ----
    CHECK_OK(zs_clip_grads(m));
    int64_t nr;
    float *r_logits = zt_clip_ref_f32(c.ref, "loss.r_logits", &nr), *r_text = zt_clip_ref_f32(c.ref, "loss.r_text", &nr);
    float *r_image = zt_clip_ref_f32(c.ref, "loss.r_image", &nr), *r_tokens = zt_clip_ref_f32(c.ref, "loss.r_tokens", &nr);
    float *r_pooled = zt_clip_ref_f32(c.ref, "loss.r_pooled", &nr), *r_pen = zt_clip_ref_f32(c.ref, "loss.r_penultimate", &nr);
    if (has_t) dtf = calloc((size_t)(B * E), sizeof(float));
    if (has_v) dif = calloc((size_t)(Bi * E), sizeof(float));
    if (r_logits) CHECK_OK(zs_clip_logits_bwd(m, r_logits, dtf, dif));
    if (has_t) {
        zs_clip_text *t = &m->t;
        if (r_text) for (int64_t i = 0; i < B * E; i++) dtf[i] += r_text[i];
        zs_tensor dtok = t->a.tokens, dpool = t->a.pooled, dfeat = t->a.features;
        float *rt = r_pen ? r_pen : r_tokens;
        dtok.data = rt, dpool.data = r_pooled, dfeat.data = dtf;
        CHECK_OK(zs_clip_text_bwd(t, rt ? &dtok : NULL, r_pooled ? &dpool : NULL, (r_text || r_logits) ? &dfeat : NULL, NULL));
    }
    if (has_v) {
        zs_clip_vision *v = &m->v;
        if (r_image) for (int64_t i = 0; i < Bi * E; i++) dif[i] += r_image[i];
        zs_tensor dh = v->a.hidden[v->cfg.layers], dfeat = v->a.features, dx = zs_tensor_make(dimg, ZS_F32, ZS_CPU, 4, zs_st_find(c.ref, "image")->shape);
        dh.data = r_tokens, dfeat.data = dif;
        CHECK_OK(zs_clip_vision_bwd(v, (!has_t && r_tokens) ? &dh : NULL, NULL, (r_image || r_logits) ? &dfeat : NULL, &dx));
        ok &= zt_clip_cmp(&c, "grad.image", dimg, n, 1, 1);
    }
    for (int i = 0; i < m->n_bind; i++) {
        const zs_clip_binding *b = &m->bind[i];
        int64_t ne = 1;
        for (int d = 0; d < b->file_ndim; d++) ne *= b->file_shape[d];
        buf = realloc(buf, (size_t)ne * sizeof(float));
        CHECK_OK(zs_clip_read_bound(m, i, 1, buf, ne));
        char gname[256];
        snprintf(gname, sizeof gname, "grad.%s", b->name);
        ok &= zt_clip_cmp(&c, gname, buf, ne, b->entry.slot != ZS_SLOT_LOGIT_SCALE, 1);
    }
    printf("    %s: %d outputs, worst %.2e (%s); %d gradients, worst %.2e (%s)\n", k->model, c.n_out, c.worst_out,
           c.worst_out_name[0] ? c.worst_out_name : "-", c.n_grad, c.worst_grad, c.worst_grad_name);
    free(r_logits), free(r_text), free(r_image), free(r_tokens), free(r_pooled), free(r_pen);
    free(ids), free(img), free(dimg), free(dtf), free(dif), free(logits), free(buf);
    zs_clip_free(m);
    zs_st_close(c.ref);
    return ok ? ZT_PASS : ZT_FAIL;
}

#define CASE(fn, ...)                                 \
    TEST(fn) {                                        \
        static const clip_case k = {__VA_ARGS__};     \
        return run_case(&k);                          \
    }
CASE(clip_openclip_vit_parity, "clip/openclip-vit", "clip/openclip-vit.reference.safetensors", 0, 0)
CASE(clip_openai_bare_parity, "clip/openai_vit.safetensors", "clip/openai_vit.reference.safetensors", 0, 0)
CASE(clip_hf_clip_parity, "clip/hf-clip", "clip/hf-clip.reference.safetensors", 0, 0)
CASE(clip_hf_text_proj_parity, "clip/hf-text-proj", "clip/hf-text-proj.reference.safetensors", 0, 0)
CASE(clip_hf_vision_proj_parity, "clip/hf-vision-proj", "clip/hf-vision-proj.reference.safetensors", 0, 0)
CASE(clip_sd1_text_parity, "clip/sd1-text", "clip/sd1-text.reference.safetensors", 0, 0)
CASE(clip_sd2_text_parity, "clip/sd2-text", "clip/sd2-text.reference.safetensors", 0, 0)
// The SD 2.x single file has no config: the fixture's 2 heads (ViT-H has width / 64) are given.
CASE(clip_sd2_single_file_parity, "clip/sd2_text_openclip.safetensors", "clip/sd2_text_openclip.reference.safetensors",
     ZS_CLIP_TEXT, 2)

// open_clip RN50-style folder: the text tower's forward, and the DualCoOp context vectors
// (ctx replaces the token embeddings at positions 1..4; loss sum(norm(features) * r)).
TEST(clip_openclip_rn_text_dualcoop) {
    char mp[512], rp[512];
    zs_clip_opts o = zs_clip_default_opts();
    o.towers = ZS_CLIP_TEXT;
    zs_clip *m = NULL;
    ctx_t c = {0};
    CHECK_OK(zs_st_open(&c.ref, zt_fixture_path("clip/openclip-rn.reference.safetensors", rp, sizeof rp)));
    CHECK_OK(zs_clip_load(&m, zt_fixture_path("clip/openclip-rn", mp, sizeof mp), &o));
    CHECK(m->vision_resnet && m->n_unused > 0, "the ResNet tower should be listed as unused");
    zs_clip_text *t = &m->t;
    int64_t B, L, n, nr;
    int32_t *ids = zt_clip_ref_ids(c.ref, "input_ids", &B, &L);
    CHECK_OK(zs_clip_text_setup(t, B, L, 1));
    zs_clip_text_in in = {ids, NULL, 0, 1};
    CHECK_OK(zs_clip_text_fwd(t, &in));
    int ok = cmp_t(&c, "text.last_hidden_state", &t->a.tokens, 1) & cmp_t(&c, "text_features", &t->a.features, 1);
    free(ids);
    // DualCoOp
    ids = zt_clip_ref_ids(c.ref, "ctx.input_ids", &B, &L);
    float *ctxv = zt_clip_ref_f32(c.ref, "ctx", &n), *r = zt_clip_ref_f32(c.ref, "ctx.r", &nr);
    const zs_st_entry *ce = zs_st_find(c.ref, "ctx");
    CHECK(ids && ctxv && r && ce, "DualCoOp tensors missing");
    float *dctx = calloc((size_t)n, sizeof(float));
    zs_tensor ctx = zs_tensor_make(ctxv, ZS_F32, ZS_CPU, 2, ce->shape), dc = zs_tensor_make(dctx, ZS_F32, ZS_CPU, 2, ce->shape);
    CHECK_OK(zs_clip_text_setup(t, B, L, 1));
    zs_clip_text_in cin = {ids, &ctx, 1, 1};
    CHECK_OK(zs_clip_text_fwd(t, &cin));
    ok &= cmp_t(&c, "ctx.text_features", &t->a.features, 1);
    int64_t E = t->a.features.shape[1];
    float *tn = malloc((size_t)(B * E) * sizeof(float)), *dtf = calloc((size_t)(B * E), sizeof(float));
    zs_l2norm_fwd(tn, t->a.features.data, B, E);
    ok &= zt_clip_cmp(&c, "ctx.text_features_norm", tn, B * E, 1, 0);
    zs_l2norm_bwd(dtf, r, t->a.features.data, B, E);
    CHECK_OK(zs_clip_grads(m));
    zs_tensor dfeat = t->a.features;
    dfeat.data = dtf;
    CHECK_OK(zs_clip_text_bwd(t, NULL, NULL, &dfeat, &dc));
    ok &= zt_clip_cmp(&c, "grad.ctx", dctx, n, 1, 1);
    printf("    openclip-rn text + DualCoOp: %d outputs, worst %.2e (%s); grad.ctx %.2e\n", c.n_out, c.worst_out,
           c.worst_out_name, c.worst_grad);
    free(ids), free(ctxv), free(r), free(dctx), free(tn), free(dtf);
    zs_clip_free(m);
    zs_st_close(c.ref);
    return ok ? ZT_PASS : ZT_FAIL;
}

// ---- CUDA against the CPU (F32, then BF16 loosely): openclip-vit forward and backward ----
typedef struct {
    float *feat_t, *feat_i, *grads, *dimg;
    int64_t nt, ni, ng, nimg;
} dev_run;

static zs_status upload(zs_tensor *dst, const zs_tensor *like, const float *host) {
    *dst = *like;
    ZS_TRY(zs_malloc(&dst->data, zs_nbytes(like), like->device, "test upload"));
    zs_tensor h = zs_tensor_make((void *)host, ZS_F32, ZS_CPU, like->ndim, like->shape);
    return zs_tensor_copy(dst, &h);
}

static zs_status run_on(zs_device dev, zs_dtype dt, zs_st *ref, dev_run *r) {
    char mp[512];
    zs_clip_opts o = zs_clip_default_opts();
    o.device = dev, o.dtype = dt;
    zs_clip *m;
    ZS_TRY(zs_clip_load(&m, zt_fixture_path("clip/openclip-vit", mp, sizeof mp), &o));
    int64_t B, L, n;
    int32_t *ids = zt_clip_ref_ids(ref, "input_ids", &B, &L);
    float *img = zt_clip_ref_f32(ref, "image", &n), *rt = zt_clip_ref_f32(ref, "loss.r_text", &n), *ri = zt_clip_ref_f32(ref, "loss.r_image", &n);
    float *rtok = zt_clip_ref_f32(ref, "loss.r_tokens", &n);
    const zs_st_entry *ie = zs_st_find(ref, "image");
    zs_tensor x = {0}, dx = {0}, dtf = {0}, dif = {0}, dtok = {0}, himg = zs_tensor_make(img, ZS_F32, ZS_CPU, 4, ie->shape);
    zs_status s = zs_clip_text_setup(&m->t, B, L, 1);
    zs_clip_text_in in = {ids, NULL, 0, 1};
    if (!s) s = zs_clip_text_fwd(&m->t, &in);
    if (!s) s = zs_clip_vision_setup(&m->v, ie->shape[0], 1);
    x = himg, x.device = dev, x.dtype = dt;
    if (!s) s = upload(&x, &x, img);
    if (!s) s = zs_clip_vision_fwd(&m->v, &x);
    if (!s) s = zs_clip_grads(m);
    if (!s) s = upload(&dtf, &m->t.a.features, rt);
    if (!s) s = upload(&dif, &m->v.a.features, ri);
    if (!s) s = upload(&dtok, &m->t.a.tokens, rtok);
    if (!s) s = upload(&dx, &x, img);
    if (!s) s = zs_memset0(dx.data, dev, zs_nbytes(&dx));
    if (!s) s = zs_clip_text_bwd(&m->t, &dtok, NULL, &dtf, NULL);
    if (!s) s = zs_clip_vision_bwd(&m->v, NULL, NULL, &dif, &dx);
    r->nt = zs_numel(&m->t.a.features), r->ni = zs_numel(&m->v.a.features), r->nimg = zs_numel(&dx), r->ng = 0;
    for (int i = 0; i < m->n_bind; i++) {
        int64_t k = 1;
        for (int d = 0; d < m->bind[i].file_ndim; d++) k *= m->bind[i].file_shape[d];
        r->ng += k;
    }
    r->feat_t = malloc((size_t)(r->nt + r->ni + r->ng + r->nimg) * sizeof(float));
    r->feat_i = r->feat_t + r->nt, r->grads = r->feat_i + r->ni, r->dimg = r->grads + r->ng;
    zs_tensor h1 = zs_tensor_make(r->feat_t, ZS_F32, ZS_CPU, 2, m->t.a.features.shape);
    zs_tensor h2 = zs_tensor_make(r->feat_i, ZS_F32, ZS_CPU, 2, m->v.a.features.shape);
    zs_tensor h3 = zs_tensor_make(r->dimg, ZS_F32, ZS_CPU, 4, ie->shape);
    if (!s) s = zs_tensor_copy(&h1, &m->t.a.features);
    if (!s) s = zs_tensor_copy(&h2, &m->v.a.features);
    if (!s) s = zs_tensor_copy(&h3, &dx);
    float *g = r->grads;
    for (int i = 0; i < m->n_bind && !s; i++) {
        int64_t k = 1;
        for (int d = 0; d < m->bind[i].file_ndim; d++) k *= m->bind[i].file_shape[d];
        if (m->bind[i].entry.slot != ZS_SLOT_LOGIT_SCALE) s = zs_clip_read_bound(m, i, 1, g, k);
        else g[0] = 0;
        g += k;
    }
    zs_free(x.data, dev), zs_free(dx.data, dev), zs_free(dtf.data, dev), zs_free(dif.data, dev), zs_free(dtok.data, dev);
    free(ids), free(img), free(rt), free(ri), free(rtok);
    zs_clip_free(m);
    return s;
}

GPU_TEST(clip_cuda_matches_cpu) {
    char rp[512];
    zs_st *ref;
    CHECK_OK(zs_cuda_init(0));
    CHECK_OK(zs_st_open(&ref, zt_fixture_path("clip/openclip-vit.reference.safetensors", rp, sizeof rp)));
    dev_run c = {0}, g = {0}, h = {0};
    CHECK_OK(run_on(ZS_CPU, ZS_F32, ref, &c));
    CHECK_OK(run_on(ZS_CUDA, ZS_F32, ref, &g));
    CHECK_OK(run_on(ZS_CUDA, ZS_BF16, ref, &h));
    double e[4] = {zt_rel_err(g.feat_t, c.feat_t, c.nt, 1e-6), zt_rel_err(g.feat_i, c.feat_i, c.ni, 1e-6),
                   zt_rel_err(g.grads, c.grads, c.ng, 1e-6), zt_rel_err(g.dimg, c.dimg, c.nimg, 1e-6)};
    double b[4] = {zt_rel_err(h.feat_t, c.feat_t, c.nt, 1e-6), zt_rel_err(h.feat_i, c.feat_i, c.ni, 1e-6),
                   zt_rel_err(h.grads, c.grads, c.ng, 1e-6), zt_rel_err(h.dimg, c.dimg, c.nimg, 1e-6)};
    printf("    cuda f32 vs cpu: text %.2e image %.2e grads %.2e d_image %.2e\n", e[0], e[1], e[2], e[3]);
    printf("    cuda bf16 vs cpu: text %.2e image %.2e grads %.2e d_image %.2e\n", b[0], b[1], b[2], b[3]);
    free(c.feat_t), free(g.feat_t), free(h.feat_t);
    zs_st_close(ref);
    CHECK(e[0] < 1e-4 && e[1] < 1e-4 && e[2] < 1e-4 && e[3] < 1e-4, "CUDA F32 differs from the CPU");
    CHECK(b[0] < 5e-2 && b[1] < 5e-2 && b[2] < 1e-1 && b[3] < 1e-1, "CUDA BF16 too far from the CPU");
    return ZT_PASS;
}

// The device-comparison driver on the CPU twice: deterministic, bit for bit.
TEST(clip_cpu_deterministic) {
    char rp[512];
    zs_st *ref;
    CHECK_OK(zs_st_open(&ref, zt_fixture_path("clip/openclip-vit.reference.safetensors", rp, sizeof rp)));
    dev_run a = {0}, b = {0};
    CHECK_OK(run_on(ZS_CPU, ZS_F32, ref, &a));
    CHECK_OK(run_on(ZS_CPU, ZS_F32, ref, &b));
    int same = !memcmp(a.feat_t, b.feat_t, (size_t)(a.nt + a.ni + a.ng + a.nimg) * sizeof(float));
    free(a.feat_t), free(b.feat_t);
    zs_st_close(ref);
    CHECK(same, "two CPU runs differ");
    return ZT_PASS;
}
