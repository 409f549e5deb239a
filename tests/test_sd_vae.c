// SD VAE decoder against the tiny diffusers fixtures (tests/fixtures/sd/README.md): the image
// of vae.decode(latents / scaling_factor), the gradients of sum(image * r) w.r.t. the
// (scaled) latents and every decoder / post_quant_conv parameter, and the LDM single file
// giving the same image as the folder.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "models/sd_vae.h"
#include "tests/sd_ref.h"
#include "tests/test.h"

// Decodes the fixture latents with the model at rel (config_rel for single files); *image
// (malloc'd) gets the image, the VAE stays open in v (train set up) with grads when want_grads.
static zs_status decode(zs_sd_vae *v, const zs_st *ref, const char *rel, const char *config_rel, float **image) {
    char a[512], b[512];
    zs_sd_plan_opts o = {config_rel ? zt_fixture_path(config_rel, b, sizeof b) : NULL, 0};
    ZS_TRY(zs_sd_vae_open(v, zt_fixture_path(rel, a, sizeof a), &o, ZS_CPU, ZS_F32));
    const zs_st_entry *e = zs_st_find(ref, "vae.decode.latents");
    if (!e || e->ndim != 4) return ZS_ERR(ZS_EFORMAT, "reference: no vae.decode.latents");
    ZS_TRY(zs_sd_vae_setup(v, e->shape[0], e->shape[2], e->shape[3], 1));
    int64_t n = zs_st_numel(e);
    float *lat = zt_ref_read(ref, "vae.decode.latents", n, 0, NULL);
    if (!lat) return ZS_ERR(ZS_EFORMAT, "reference: vae.decode.latents");
    zs_tensor t = zs_tensor_make(lat, ZS_F32, ZS_CPU, 4, e->shape);
    zs_status s = zs_sd_vae_decode(v, &t);
    free(lat);
    ZS_TRY(s);
    n = zs_numel(&v->a.image);
    *image = malloc(sizeof(float) * (size_t)n);
    if (!*image) return ZS_ERR(ZS_ENOMEM, "test image");
    memcpy(*image, v->a.image.data, sizeof(float) * (size_t)n);
    return ZS_OK;
}

static zt_result folder_case(const char *model) {
    char rel[256], refp[512];
    snprintf(rel, sizeof rel, "sd/%s.reference.safetensors", model);
    zs_st *ref;
    CHECK_OK(zs_st_open(&ref, zt_fixture_path(rel, refp, sizeof refp)));
    zs_sd_vae v;
    float *img = NULL;
    snprintf(rel, sizeof rel, "sd/%s", model);
    zs_status s = decode(&v, ref, rel, NULL, &img);
    if (s) {
        zt_note(__FILE__, __LINE__, "%s: %s", model, zs_errmsg());
        zs_sd_vae_free(&v);
        zs_st_close(ref);
        free(img);
        return ZT_FAIL;
    }
    zt_result res = ZT_PASS;
    int64_t n = zs_numel(&v.a.image);
    float *want = zt_ref_read(ref, "vae.decode.image", n, 0, NULL), *r = zt_ref_read(ref, "vae.decode.r", n, 0, NULL);
    double e_img = want ? zt_rel_err(img, want, n, 1e-6) : INFINITY;
    // backward: d image = r
    double e_lat = INFINITY, worst = 0, kb = 0;
    const char *worst_name = "";
    int nparams = 0;
    zs_sd_plan *plan = NULL;
    char a[512];
    s = zs_sd_vae_grads(&v);
    if (!s && r) {
        zs_tensor dimg = zs_tensor_make(r, ZS_F32, ZS_CPU, 4, v.a.image.shape);
        int64_t nl = zs_numel(&v.a.z);
        float *dl = calloc((size_t)nl, sizeof(float)), *gl = zt_ref_read(ref, "vae.decode.grad.latents", nl, 0, NULL);
        zs_tensor dlat = zs_tensor_make(dl, ZS_F32, ZS_CPU, 4, v.a.z.shape);
        s = dl ? zs_sd_vae_decode_bwd(&v, &dimg, &dlat) : ZS_ENOMEM;
        if (!s && gl) e_lat = zt_rel_err(dl, gl, nl, 1e-6);
        free(dl);
        free(gl);
    }
    if (!s) s = zs_sd_plan_open(&plan, zt_fixture_path(rel, a, sizeof a), NULL);
    for (int i = 0; !s && i < v.n_params; i++) {
        const zs_sd_slot *sl = zs_sd_plan_find(plan, ZS_SD_VAE, v.names[i]);
        char gname[300];
        if (!sl || !sl->src) {
            worst = INFINITY, worst_name = v.names[i];
            break;
        }
        snprintf(gname, sizeof gname, "grad.vae.%s", sl->src->name);
        int64_t m = zs_numel(v.gtab[i]);
        float *g = zt_ref_read(ref, gname, m, 0, NULL);
        // the key bias gradient is ~0 (rounding only): an absolute floor
        int is_kb = strstr(v.names[i], "attentions.0.to_k.bias") != NULL;
        double e = g ? zt_rel_err(v.gtab[i]->data, g, m, is_kb ? 1e-2 : 1e-6) : INFINITY;
        if (is_kb) kb = e;
        else if (!(e <= worst)) worst = e, worst_name = v.names[i];
        if (is_kb && !(e <= 1e-4)) worst = e, worst_name = v.names[i];
        nparams++;
        free(g);
    }
    if (s) {
        zt_note(__FILE__, __LINE__, "%s backward: %s", model, zs_errmsg());
        res = ZT_FAIL;
    }
    // every grad.vae.* of the reference is a decoder parameter we compared
    int nref = 0;
    for (int i = 0; i < zs_st_count(ref); i++) nref += !strncmp(zs_st_at(ref, i)->name, "grad.vae.", 9);
    zt_note(__FILE__, __LINE__,
            "%s: image rel err %.3g, d latents %.3g, %d parameter grads (reference %d): worst %.3g (%s), key bias "
            "%.3g (||got - ref|| / max(||ref||, 1e-2))",
            model, e_img, e_lat, nparams, nref, worst, worst_name, kb);
    if (!(e_img <= 1e-4) || !(e_lat <= 1e-4) || !(worst <= 1e-4) || nparams != v.n_params || nref != nparams)
        res = ZT_FAIL;
    if (res) zt_note(__FILE__, __LINE__, "%s: above the 1e-4 bound", model);
    zs_sd_plan_free(plan);
    free(want);
    free(r);
    free(img);
    zs_sd_vae_free(&v);
    zs_st_close(ref);
    return res;
}

TEST(sd_vae_decode_sd1) { return folder_case("sd1-tiny"); }
TEST(sd_vae_decode_sd2) { return folder_case("sd2-tiny"); }

// The LDM single files (1x1-conv attention weights) decode bit-identically to the folders.
TEST(sd_vae_single_file) {
    const char *models[2] = {"sd1-tiny", "sd2-tiny"};
    for (int m = 0; m < 2; m++) {
        char refp[512], rel[256], dir[256], file[256];
        snprintf(rel, sizeof rel, "sd/%s.reference.safetensors", models[m]);
        snprintf(dir, sizeof dir, "sd/%s", models[m]);
        snprintf(file, sizeof file, "sd/%s.safetensors", models[m]);
        zs_st *ref;
        CHECK_OK(zs_st_open(&ref, zt_fixture_path(rel, refp, sizeof refp)));
        zs_sd_vae v1, v2;
        memset(&v2, 0, sizeof v2);
        float *i1 = NULL, *i2 = NULL;
        zs_status s = decode(&v1, ref, dir, NULL, &i1);
        int64_t n = s ? 0 : zs_numel(&v1.a.image);
        if (!s) s = decode(&v2, ref, file, dir, &i2);
        int same = !s && !memcmp(i1, i2, sizeof(float) * (size_t)n);
        if (s) zt_note(__FILE__, __LINE__, "%s: %s", models[m], zs_errmsg());
        free(i1);
        free(i2);
        zs_sd_vae_free(&v1);
        zs_sd_vae_free(&v2);
        zs_st_close(ref);
        CHECK(!s && same, "%s: single file image differs from the folder's", models[m]);
    }
    return ZT_PASS;
}

// Errors: backward without train, wrong latent shape.
TEST(sd_vae_errors) {
    char a[512];
    zs_sd_vae v;
    CHECK_OK(zs_sd_vae_open(&v, zt_fixture_path("sd/sd1-tiny", a, sizeof a), NULL, ZS_CPU, ZS_F32));
    CHECK_OK(zs_sd_vae_setup(&v, 1, 3, 2, 0));
    float lat[4 * 3 * 3] = {0}, img[3 * 6 * 4] = {0};
    int64_t bad[4] = {1, 4, 3, 3}, ish[4] = {1, 3, 6, 4};
    zs_tensor t = zs_tensor_make(lat, ZS_F32, ZS_CPU, 4, bad), d = zs_tensor_make(img, ZS_F32, ZS_CPU, 4, ish);
    zs_status s1 = zs_sd_vae_decode(&v, &t);
    t.shape[3] = 2;
    zs_status s2 = zs_sd_vae_decode(&v, &t);
    zs_status s3 = zs_sd_vae_decode_bwd(&v, &d, NULL);
    zs_sd_vae_free(&v);
    CHECK(s1 == ZS_EINVAL && s2 == ZS_OK && s3 == ZS_EINVAL, "statuses %d %d %d", s1, s2, s3);
    return ZT_PASS;
}

// ---- one run on a device, results on the host ------------------------------------------------
typedef struct {
    float *img, *dlat, *grads;  // grads: every parameter's gradient, concatenated in layout order
    int64_t ni, nl, ng;
    size_t acts;                // activation arena bytes
} outs;

static void outs_free(outs *o) {
    free(o->img);
    free(o->dlat);
    free(o->grads);
    memset(o, 0, sizeof *o);
}

static zs_status run_on(zs_device dev, zs_dtype dt, const char *model, const zs_st *ref, int train, outs *o) {
    char a[512], rel[256];
    zs_sd_vae v;
    memset(o, 0, sizeof *o);
    snprintf(rel, sizeof rel, "sd/%s", model);
    ZS_TRY(zs_sd_vae_open(&v, zt_fixture_path(rel, a, sizeof a), NULL, dev, dt));
    const zs_st_entry *e = zs_st_find(ref, "vae.decode.latents");
    zs_tensor lat = {0}, r = {0}, dl = {0};
    float *hl = NULL, *hr = NULL;
    zs_status s = e && e->ndim == 4 ? ZS_OK : ZS_ERR(ZS_EFORMAT, "reference: no vae.decode.latents");
    if (!s) s = zs_sd_vae_setup(&v, e->shape[0], e->shape[2], e->shape[3], train);
    if (!s) {
        o->nl = zs_st_numel(e), o->ni = zs_numel(&v.a.image);
        hl = zt_ref_read(ref, "vae.decode.latents", o->nl, 0, NULL);
        hr = zt_ref_read(ref, "vae.decode.r", o->ni, 0, NULL);
        o->img = calloc((size_t)o->ni, sizeof(float));
        o->dlat = calloc((size_t)o->nl, sizeof(float));
        s = hl && hr && o->img && o->dlat ? ZS_OK : ZS_ERR(ZS_EFORMAT, "reference: latents / r");
    }
    if (!s) s = zt_to_dev(&lat, hl, 4, e->shape, dev, dt);
    if (!s) s = zs_sd_vae_decode(&v, &lat);
    if (!s) s = zt_to_host(o->img, &v.a.image);
    o->acts = zs_sd_vae_memory(&v).acts;
    if (!s && train) {
        s = zs_sd_vae_grads(&v);
        if (!s) s = zt_to_dev(&r, hr, 4, v.a.image.shape, dev, dt);
        if (!s) s = zt_to_dev(&dl, o->dlat, 4, e->shape, dev, dt);  // zeros
        if (!s) s = zs_sd_vae_decode_bwd(&v, &r, &dl);
        if (!s) s = zt_to_host(o->dlat, &dl);
        for (int i = 0; i < v.n_params; i++) o->ng += zs_numel(v.gtab[i]);
        o->grads = s ? NULL : malloc(sizeof(float) * (size_t)o->ng);
        if (!s && !o->grads) s = ZS_ERR(ZS_ENOMEM, "test grads");
        for (int64_t i = 0, off = 0; !s && i < v.n_params; off += zs_numel(v.gtab[i]), i++)
            s = zt_to_host(o->grads + off, v.gtab[i]);
    }
    zs_free(lat.data, dev);
    zs_free(r.data, dev);
    zs_free(dl.data, dev);
    free(hl);
    free(hr);
    zs_sd_vae_free(&v);
    if (s) outs_free(o);
    return s;
}

// Inference layout (train = 0: no gradient buffers, block outputs in two turn-taking buffers)
// decodes the same image with less than half the activation memory; the
// helper's train run matches the reference (checks run_on itself, which the GPU test uses).
TEST(sd_vae_inference_matches_train) {
    char refp[512];
    zs_st *ref;
    CHECK_OK(zs_st_open(&ref, zt_fixture_path("sd/sd2-tiny.reference.safetensors", refp, sizeof refp)));
    outs inf, tr;
    zs_status s = run_on(ZS_CPU, ZS_F32, "sd2-tiny", ref, 0, &inf);
    if (!s) s = run_on(ZS_CPU, ZS_F32, "sd2-tiny", ref, 1, &tr);
    if (s) {
        zt_note(__FILE__, __LINE__, "%s", zs_errmsg());
        zs_st_close(ref);
        return ZT_FAIL;
    }
    int same = !memcmp(inf.img, tr.img, sizeof(float) * (size_t)tr.ni);
    float *gl = zt_ref_read(ref, "vae.decode.grad.latents", tr.nl, 0, NULL);
    double e = gl ? zt_rel_err(tr.dlat, gl, tr.nl, 1e-6) : INFINITY;
    size_t ai = inf.acts, at = tr.acts;
    free(gl);
    outs_free(&inf);
    outs_free(&tr);
    zs_st_close(ref);
    CHECK(same && e <= 1e-4, "inference image differs from the train layout's (%d) or d latents off (%.3g)", same, e);
    // inference: block outputs take turns in two buffers instead of all being kept
    CHECK(ai < at / 2, "inference activations %zu bytes, train %zu", ai, at);
    return ZT_PASS;
}

GPU_TEST(sd_vae_cuda_matches_cpu) {
    char refp[512];
    zs_st *ref;
    CHECK_OK(zs_cuda_init(0));
    CHECK_OK(zs_st_open(&ref, zt_fixture_path("sd/sd1-tiny.reference.safetensors", refp, sizeof refp)));
    outs c, g;
    zs_status s = run_on(ZS_CPU, ZS_F32, "sd1-tiny", ref, 1, &c);
    if (!s) s = run_on(ZS_CUDA, ZS_F32, "sd1-tiny", ref, 1, &g);
    zs_st_close(ref);
    if (s) {
        zt_note(__FILE__, __LINE__, "%s", zs_errmsg());
        outs_free(&c);
        return ZT_FAIL;
    }
    double e[3] = {zt_rel_err(g.img, c.img, c.ni, 1e-6), zt_rel_err(g.dlat, c.dlat, c.nl, 1e-6),
                   zt_rel_err(g.grads, c.grads, c.ng, 1e-6)};
    printf("    sd vae cuda f32 vs cpu: image %.2e d latents %.2e grads %.2e\n", e[0], e[1], e[2]);
    outs_free(&c);
    outs_free(&g);
    CHECK(e[0] < 1e-4 && e[1] < 1e-4 && e[2] < 1e-4, "CUDA F32 differs from the CPU");
    return ZT_PASS;
}

// The backward re-runs every block's forward (checkpointing): decode + backward run twice give
// bit-identical image, d latents and parameter gradients, and match an inference decode.
TEST(sd_vae_train_repeatable) {
    char refp[512];
    zs_st *ref;
    CHECK_OK(zs_st_open(&ref, zt_fixture_path("sd/sd1-tiny.reference.safetensors", refp, sizeof refp)));
    outs o[3];
    memset(o, 0, sizeof o);
    zs_status s = run_on(ZS_CPU, ZS_F32, "sd1-tiny", ref, 1, &o[0]);
    if (!s) s = run_on(ZS_CPU, ZS_F32, "sd1-tiny", ref, 1, &o[1]);
    if (!s) s = run_on(ZS_CPU, ZS_F32, "sd1-tiny", ref, 0, &o[2]);
    zs_st_close(ref);
    int same = !s && !memcmp(o[0].img, o[1].img, sizeof(float) * (size_t)o[0].ni) &&
               !memcmp(o[0].img, o[2].img, sizeof(float) * (size_t)o[0].ni) &&
               !memcmp(o[0].dlat, o[1].dlat, sizeof(float) * (size_t)o[0].nl) && o[0].ng == o[1].ng &&
               !memcmp(o[0].grads, o[1].grads, sizeof(float) * (size_t)o[0].ng);
    if (s) zt_note(__FILE__, __LINE__, "%s", zs_errmsg());
    for (int i = 0; i < 3; i++) outs_free(&o[i]);
    CHECK(!s && same, "repeated decode + backward, or the inference decode, differ");
    return ZT_PASS;
}
