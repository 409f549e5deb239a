// Stable Diffusion sampling against diffusers' StableDiffusionPipeline on the tiny fixtures
// (tests/fixtures/sd/README.md (c), (d)): txt2img from given embeddings and noise with each
// sampler (final latents, decoded image, pixels), the LDM single file giving the same bytes as
// the folder, and the gradient of sum(image * r) w.r.t. both contexts through 2 Euler steps.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "engine/backend.h"
#include "models/sd_pipeline.h"
#include "tests/sd_ref.h"
#include "tests/files.h"
#include "tests/test.h"

typedef struct {
    zs_st *ref;
    float *cond, *uncond, *noise;
    int64_t esh[3], nsh[4];
    float cfg;
} t2i_ref;

static zs_status ref_open(t2i_ref *r, const char *model) {
    char rel[256], buf[512];
    memset(r, 0, sizeof *r);
    snprintf(rel, sizeof rel, "sd/%s.reference.safetensors", model);
    ZS_TRY(zs_st_open(&r->ref, zt_fixture_path(rel, buf, sizeof buf)));
    r->cond = zt_ref_read(r->ref, "txt2img.prompt_embeds", -1, 3, r->esh);
    r->uncond = zt_ref_read(r->ref, "txt2img.negative_prompt_embeds", -1, 3, NULL);
    r->noise = zt_ref_read(r->ref, "txt2img.noise", -1, 4, r->nsh);
    float *g = zt_ref_read(r->ref, "txt2img.guidance_scale", -1, 1, NULL);
    if (!r->cond || !r->uncond || !r->noise || !g) {
        free(g);
        return ZS_ERR(ZS_EFORMAT, "%s: txt2img inputs missing", rel);
    }
    r->cfg = g[0];
    free(g);
    return ZS_OK;
}

static void ref_close(t2i_ref *r) {
    free(r->cond);
    free(r->uncond);
    free(r->noise);
    if (r->ref) zs_st_close(r->ref);
}

static zs_status open_pipe_on(zs_sd_pipe **p, const char *model, int single, zs_device dev, zs_dtype dt) {
    char a[512], b[512], rel[256];
    zs_sd_pipe_opts o = zs_sd_pipe_default_opts();
    o.no_text = 1;
    snprintf(rel, sizeof rel, single ? "sd/%s.safetensors" : "sd/%s", model);
    if (single) {
        char crel[256];
        snprintf(crel, sizeof crel, "sd/%s", model);
        o.config_dir = zt_fixture_path(crel, b, sizeof b);
    }
    return zs_sd_pipe_open(p, zt_fixture_path(rel, a, sizeof a), &o, dev, dt);
}
static zs_status open_pipe(zs_sd_pipe **p, const char *model, int single) {
    return open_pipe_on(p, model, single, ZS_CPU, ZS_F32);
}

// *x = a malloc'd host F32 copy of device tensor t.
static zs_status download(const zs_tensor *t, float **x) {
    *x = malloc(sizeof(float) * (size_t)zs_numel(t));
    return *x ? zt_to_host(*x, t) : ZS_ERR(ZS_ENOMEM, "test download");
}

// Runs sampler s (steps from the reference) from the reference inputs on the pipeline's
// device: latents and image (host F32, malloc'd).
static zs_status run_t2i(zs_sd_pipe *p, const t2i_ref *r, zs_sampler s, int steps, float **lat, float **img,
                         int64_t *nimg) {
    zs_tensor c = {0}, u = {0}, x = {0};
    const zs_tensor *im = NULL;
    zs_sd_gen g = {steps, r->cfg, s, NULL, NULL};
    zs_status st = zt_to_dev(&c, r->cond, 3, r->esh, p->dev, p->dt);
    if (!st) st = zt_to_dev(&u, r->uncond, 3, r->esh, p->dev, p->dt);
    if (!st) st = zt_to_dev(&x, r->noise, 4, r->nsh, p->dev, p->dt);
    if (!st) st = zs_sd_sample(p, &g, &c, &u, &x);
    if (!st) st = zs_sd_decode(p, &x, &im);
    if (!st) st = download(&x, lat);
    if (!st) st = download(im, img);
    if (!st) *nimg = zs_numel(im);
    zs_free(c.data, p->dev), zs_free(u.data, p->dev), zs_free(x.data, p->dev);
    return st;
}

static zt_result t2i_case(const char *model) {
    t2i_ref r;
    zs_sd_pipe *p = NULL;
    zs_status s = ref_open(&r, model);
    if (!s) s = open_pipe(&p, model, 0);
    int ok = !s;
    for (int k = 0; ok && k < ZS_SAMPLER_COUNT; k++) {
        char name[128];
        int64_t ts[1];
        snprintf(name, sizeof name, "txt2img.%s.timesteps", zs_sampler_name((zs_sampler)k));
        float *tref = zt_ref_read(r.ref, name, -1, 1, ts);
        snprintf(name, sizeof name, "txt2img.%s.latents", zs_sampler_name((zs_sampler)k));
        float *lref = zt_ref_read(r.ref, name, -1, 4, NULL);
        snprintf(name, sizeof name, "txt2img.%s.image", zs_sampler_name((zs_sampler)k));
        float *iref = zt_ref_read(r.ref, name, -1, 4, NULL);
        snprintf(name, sizeof name, "txt2img.%s.pixels", zs_sampler_name((zs_sampler)k));
        const zs_st_entry *pe = zs_st_find(r.ref, name);  // U8 [1, H, W, 3]
        const uint8_t *pref = pe && pe->dtype == ZS_U8 ? pe->data : NULL;
        float *lat = NULL, *img = NULL;
        int64_t ni = 0;
        uint8_t *pix = NULL;
        s = tref && lref && iref && pref ? run_t2i(p, &r, (zs_sampler)k, (int)ts[0], &lat, &img, &ni)
                                         : ZS_ERR(ZS_EFORMAT, "reference %s missing", name);
        int worst = 0;
        if (!s) {
            pix = malloc((size_t)ni);
            s = pix ? zs_sd_to_pixels(&p->vae.a.image, pix) : ZS_ERR(ZS_ENOMEM, "pixels");
        }
        if (!s) {
            double el = zt_rel_err(lat, lref, zs_numel(&p->vae.a.z), 1e-6), ei = zt_rel_err(img, iref, ni, 1e-6);
            for (int64_t i = 0; i < ni; i++) {
                int d = abs((int)pix[i] - (int)pref[i]);
                worst = d > worst ? d : worst;
            }
            printf("    %s %s (%d steps): latents %.2e image %.2e, worst pixel difference %d\n", model,
                   zs_sampler_name((zs_sampler)k), (int)ts[0], el, ei, worst);
            if (!(el < 1e-4 && ei < 1e-4 && worst <= 1)) {
                zt_note(__FILE__, __LINE__, "%s %s differs from diffusers (bounds 1e-4, 1 pixel level)", model,
                        zs_sampler_name((zs_sampler)k));
                ok = 0;
            }
        }
        free(tref), free(lref), free(iref), free(lat), free(img), free(pix);
        if (s) ok = 0;
    }
    if (s) zt_note(__FILE__, __LINE__, "%s: %s", model, zs_errmsg());
    zs_sd_pipe_free(p);
    ref_close(&r);
    return ok ? ZT_PASS : ZT_FAIL;
}

TEST(sd_txt2img_sd1_samplers) { return t2i_case("sd1-tiny"); }
TEST(sd_txt2img_sd2_samplers) { return t2i_case("sd2-tiny"); }

// The LDM single file (configs from the folder) gives the folder's bytes.
TEST(sd_txt2img_single_file_equals_folder) {
    const char *models[2] = {"sd1-tiny", "sd2-tiny"};
    for (int m = 0; m < 2; m++) {
        t2i_ref r;
        zs_sd_pipe *a = NULL, *b = NULL;
        float *la = NULL, *ia = NULL, *lb = NULL, *ib = NULL;
        int64_t na = 0, nb = 0;
        zs_status s = ref_open(&r, models[m]);
        if (!s) s = open_pipe(&a, models[m], 0);
        if (!s) s = open_pipe(&b, models[m], 1);
        if (!s) s = run_t2i(a, &r, ZS_SAMPLER_DPMPP2M, 3, &la, &ia, &na);
        if (!s) s = run_t2i(b, &r, ZS_SAMPLER_DPMPP2M, 3, &lb, &ib, &nb);
        int same = !s && na == nb && !memcmp(ia, ib, sizeof(float) * (size_t)na) && a->version == b->version;
        if (s) zt_note(__FILE__, __LINE__, "%s: %s", models[m], zs_errmsg());
        free(la), free(ia), free(lb), free(ib);
        zs_sd_pipe_free(a);
        zs_sd_pipe_free(b);
        ref_close(&r);
        CHECK(!s, "%s failed", models[m]);
        CHECK(same, "%s: single file and folder give different images", models[m]);
    }
    return ZT_PASS;
}

// Gradient of sum(image * r) through 2 Euler steps with CFG, w.r.t. both contexts.
static zt_result grad_case_on(const char *model, zs_device dev, zs_dtype dt, double bound) {
    t2i_ref r;
    zs_sd_pipe *p = NULL;
    zs_sd_grad g = {0};
    zs_status s = ref_open(&r, model);
    if (!s) s = open_pipe_on(&p, model, 0, dev, dt);
    float *R = s ? NULL : zt_ref_read(r.ref, "txt2img.grad.r", -1, 4, NULL);
    float *iref = s ? NULL : zt_ref_read(r.ref, "txt2img.grad.image", -1, 4, NULL);
    float *gc = s ? NULL : zt_ref_read(r.ref, "txt2img.grad.grad.prompt_embeds", -1, 3, NULL);
    float *gu = s ? NULL : zt_ref_read(r.ref, "txt2img.grad.grad.negative_prompt_embeds", -1, 3, NULL);
    if (!s && !(R && iref && gc && gu)) s = ZS_ERR(ZS_EFORMAT, "txt2img.grad reference missing");
    int64_t ne = r.esh[0] * r.esh[1] * r.esh[2];
    float *zeros = calloc((size_t)ne, sizeof(float)), *dc = NULL, *du = NULL, *img = NULL;
    zs_tensor c = {0}, u = {0}, n = {0}, tdc = {0}, tdu = {0}, dimg = {0};
    const zs_tensor *im = NULL;
    double e[3] = {1, 1, 1};
    if (!s) s = zt_to_dev(&c, r.cond, 3, r.esh, p->dev, p->dt);
    if (!s) s = zt_to_dev(&u, r.uncond, 3, r.esh, p->dev, p->dt);
    if (!s) s = zt_to_dev(&n, r.noise, 4, r.nsh, p->dev, p->dt);
    if (!s) s = zt_to_dev(&tdc, zeros, 3, r.esh, p->dev, p->dt);
    if (!s) s = zt_to_dev(&tdu, zeros, 3, r.esh, p->dev, p->dt);
    zs_sd_gen gen = {2, r.cfg, ZS_SAMPLER_EULER, NULL, NULL};
    if (!s) s = zs_sd_grad_forward(&g, p, &gen, &c, &u, &n, &im);
    if (!s) s = download(im, &img);
    if (!s) s = zt_to_dev(&dimg, R, 4, im->shape, p->dev, p->dt);
    if (!s) s = zs_sd_grad_backward(&g, &dimg, &tdc, &tdu);
    if (!s) s = download(&tdc, &dc);
    if (!s) s = download(&tdu, &du);
    if (!s) {
        e[0] = zt_rel_err(img, iref, zs_numel(im), 1e-6), e[1] = zt_rel_err(dc, gc, ne, 1e-6), e[2] = zt_rel_err(du, gu, ne, 1e-6);
        printf("    %s %s %s grad through 2 Euler steps: image %.2e d prompt %.2e d negative %.2e\n", model,
               zs_device_name(dev), zs_dtype_name(dt), e[0], e[1], e[2]);
    } else {
        zt_note(__FILE__, __LINE__, "%s: %s", model, zs_errmsg());
    }
    zs_tensor *ts[6] = {&c, &u, &n, &tdc, &tdu, &dimg};
    for (int i = 0; i < 6; i++) zs_free(ts[i]->data, dev);
    zs_sd_grad_free(&g);
    zs_sd_pipe_free(p);
    ref_close(&r);
    free(R), free(iref), free(gc), free(gu), free(dc), free(du), free(zeros), free(img);
    CHECK(!s, "%s failed", model);
    CHECK(e[0] < bound && e[1] < bound && e[2] < bound, "%s: gradient through sampling differs (bound %g)", model, bound);
    return ZT_PASS;
}
static zt_result grad_case(const char *model) { return grad_case_on(model, ZS_CPU, ZS_F32, 1e-4); }

TEST(sd_grad_through_sampling_sd1) { return grad_case("sd1-tiny"); }
TEST(sd_grad_through_sampling_sd2) { return grad_case("sd2-tiny"); }

// CUDA: txt2img per sampler and the gradient case against diffusers, F32 at the CPU's bounds
// and BF16 / F16 loosely (bound 0.1 chosen, not yet measured on a GPU; the random UNets amplify
// rounding: their latents reach std ~18).
static zt_result cuda_case(zs_dtype dt, double bound) {
    const char *models[2] = {"sd1-tiny", "sd2-tiny"};
    CHECK_OK(zs_cuda_init(0));
    int ok = 1;
    for (int m = 0; m < 2; m++) {
        t2i_ref r;
        zs_sd_pipe *p = NULL;
        zs_status s = ref_open(&r, models[m]);
        if (!s) s = open_pipe_on(&p, models[m], 0, ZS_CUDA, dt);
        if (!s && dt == ZS_F16 && p->vae.dtype != ZS_F32) s = ZS_ERR(ZS_EINVAL, "F16 pipeline without the VAE upcast");
        for (int k = 0; !s && k < ZS_SAMPLER_COUNT; k++) {
            char name[128];
            int64_t ts[1], ni = 0;
            snprintf(name, sizeof name, "txt2img.%s.timesteps", zs_sampler_name((zs_sampler)k));
            float *tref = zt_ref_read(r.ref, name, -1, 1, ts), *lat = NULL, *img = NULL;
            snprintf(name, sizeof name, "txt2img.%s.image", zs_sampler_name((zs_sampler)k));
            float *iref = zt_ref_read(r.ref, name, -1, 4, NULL);
            s = tref && iref ? run_t2i(p, &r, (zs_sampler)k, (int)ts[0], &lat, &img, &ni) : ZS_ERR(ZS_EFORMAT, "%s", name);
            double e = s ? 1 : zt_rel_err(img, iref, ni, 1e-6);
            if (!s) printf("    cuda %s %s %s: image %.2e\n", zs_dtype_name(dt), models[m], zs_sampler_name((zs_sampler)k), e);
            ok &= !s && e < bound;
            free(tref), free(iref), free(lat), free(img);
        }
        if (s) zt_note(__FILE__, __LINE__, "%s: %s", models[m], zs_errmsg()), ok = 0;
        zs_sd_pipe_free(p);
        ref_close(&r);
    }
    CHECK(ok, "CUDA %s txt2img differs from diffusers (bound %g)", zs_dtype_name(dt), bound);
    return ZT_PASS;
}
GPU_TEST(sd_txt2img_cuda_f32) { return cuda_case(ZS_F32, 1e-4); }
// Reduced-precision bounds, set before any GPU run from diffusers itself in bf16 / fp16 on
// these fixtures (CPU torch as a proxy): worst image error bf16 4.9e-2 (sd2, Euler), fp16
// 6.5e-3; about 2x and 5x margin.
GPU_TEST(sd_txt2img_cuda_bf16) { return cuda_case(ZS_BF16, 1e-1); }
GPU_TEST(sd_txt2img_cuda_f16) { return cuda_case(ZS_F16, 3e-2); }  // the VAE upcast to F32 (force_upcast)
GPU_TEST(sd_grad_through_sampling_cuda) {
    CHECK_OK(zs_cuda_init(0));
    zt_result r = grad_case_on("sd1-tiny", ZS_CUDA, ZS_F32, 1e-4);
    if (r == ZT_PASS) r = grad_case_on("sd2-tiny", ZS_CUDA, ZS_F32, 1e-4);
    // diffusers in bf16 (CPU torch, as above): image 5.3e-2, d prompt / negative 7.9e-2
    if (r == ZT_PASS) r = grad_case_on("sd2-tiny", ZS_CUDA, ZS_BF16, 2e-1);
    return r;
}

// The whole pipeline from prompt strings (tokenizer, text encoder, CFG with the negative
// prompt, sampler, UNet, VAE) against StableDiffusionPipeline (prompt.* references), for the
// folder and for the single file with --config-dir's tokenizer.
static zt_result prompt_case_on(const char *model, int single, zs_device dev, zs_dtype dt) {
    char rel[256], a[512], b[512];
    t2i_ref r;
    zs_sd_pipe *p = NULL;
    zs_status s = ref_open(&r, model);
    zs_sd_pipe_opts o = zs_sd_pipe_default_opts();
    snprintf(rel, sizeof rel, single ? "sd/%s.safetensors" : "sd/%s", model);
    zt_fixture_path(rel, a, sizeof a);
    if (single) snprintf(rel, sizeof rel, "sd/%s", model), o.config_dir = zt_fixture_path(rel, b, sizeof b);
    if (!s) s = zs_sd_pipe_open(&p, a, &o, dev, dt);
    const zs_st_entry *te = s ? NULL : zs_st_find(r.ref, "prompt.text"), *ne = s ? NULL : zs_st_find(r.ref, "prompt.negative_text");
    const zs_st_entry *ie = s ? NULL : zs_st_find(r.ref, "prompt.ids"), *nie = s ? NULL : zs_st_find(r.ref, "prompt.negative_ids");
    if (!s && !(te && ne && ie && nie)) s = ZS_ERR(ZS_EFORMAT, "prompt.* references missing");
    char *text[2] = {NULL, NULL};
    int ids_ok = 0, ok = 1;
    if (!s) {
        const zs_st_entry *e[2] = {te, ne}, *ids[2] = {ie, nie};
        ids_ok = 1;
        for (int k = 0; k < 2; k++) {
            text[k] = calloc((size_t)zs_st_numel(e[k]) + 1, 1);
            if (text[k]) memcpy(text[k], e[k]->data, (size_t)zs_st_numel(e[k]));
            int32_t got[77];
            const int64_t *want = ids[k]->data;  // I64 [1, 77]
            if (!text[k] || zs_sd_pipe_tokenize(p, (const char *const *)&text[k], 1, got)) ids_ok = 0;
            for (int j = 0; ids_ok && j < 77; j++) ids_ok &= got[j] == want[j];
        }
    }
    float *cond = NULL, *uncond = NULL;
    if (!s) {
        zs_tensor c = zs_tensor_make(NULL, ZS_F32, ZS_CPU, 3, r.esh), u = c;
        c.data = cond = malloc(zs_nbytes(&c)), u.data = uncond = malloc(zs_nbytes(&u));
        if (!cond || !uncond) s = ZS_ERR(ZS_ENOMEM, "embeddings");
        if (!s) s = zs_sd_pipe_encode(p, (const char *const *)&text[0], 1, &c);
        if (!s) s = zs_sd_pipe_encode(p, (const char *const *)&text[1], 1, &u);
    }
    t2i_ref rp = r;  // the same noise and guidance, the encoder's embeddings
    rp.cond = cond, rp.uncond = uncond;
    for (int k = 0; !s && k < ZS_SAMPLER_COUNT; k++) {
        char name[128];
        int64_t ts[1], ni = 0;
        snprintf(name, sizeof name, "txt2img.%s.timesteps", zs_sampler_name((zs_sampler)k));
        float *tref = zt_ref_read(r.ref, name, -1, 1, ts), *lat = NULL, *img = NULL;
        snprintf(name, sizeof name, "prompt.%s.latents", zs_sampler_name((zs_sampler)k));
        float *lref = zt_ref_read(r.ref, name, -1, 4, NULL);
        snprintf(name, sizeof name, "prompt.%s.pixels", zs_sampler_name((zs_sampler)k));
        const zs_st_entry *pe = zs_st_find(r.ref, name);
        uint8_t *pix = NULL;
        s = tref && lref && pe ? run_t2i(p, &rp, (zs_sampler)k, (int)ts[0], &lat, &img, &ni) : ZS_ERR(ZS_EFORMAT, "%s", name);
        if (!s) s = (pix = malloc((size_t)ni)) ? zs_sd_to_pixels(&p->vae.a.image, pix) : ZS_ERR(ZS_ENOMEM, "pixels");
        if (!s) {
            int worst = 0;
            const uint8_t *pr = pe->data;
            for (int64_t i = 0; i < ni; i++) worst = abs((int)pix[i] - (int)pr[i]) > worst ? abs((int)pix[i] - (int)pr[i]) : worst;
            double el = zt_rel_err(lat, lref, zs_numel(&p->vae.a.z), 1e-6);
            printf("    %s%s %s %s prompt -> %s: latents %.2e, worst pixel difference %d\n", model,
                   single ? " (single file)" : "", zs_device_name(dev), zs_dtype_name(dt), zs_sampler_name((zs_sampler)k),
                   el, worst);
            ok &= el < 1e-4 && worst <= 1;
        }
        free(tref), free(lref), free(lat), free(img), free(pix);
    }
    if (s) zt_note(__FILE__, __LINE__, "%s: %s", model, zs_errmsg());
    free(text[0]), free(text[1]), free(cond), free(uncond);
    zs_sd_pipe_free(p);
    ref_close(&r);
    CHECK(!s, "%s failed", model);
    CHECK(ids_ok, "%s: token ids differ from the folder tokenizer's (prompt.ids)", model);
    CHECK(ok, "%s: prompt -> image differs from diffusers (bounds: latents 1e-4, 1 pixel level)", model);
    return ZT_PASS;
}
static zt_result prompt_case(const char *model, int single) { return prompt_case_on(model, single, ZS_CPU, ZS_F32); }
TEST(sd_prompt_to_image_sd1) { return prompt_case("sd1-tiny", 0); }
TEST(sd_prompt_to_image_sd2) { return prompt_case("sd2-tiny", 0); }
TEST(sd_prompt_to_image_single_files) {
    zt_result r = prompt_case("sd1-tiny", 1);
    return r == ZT_PASS ? prompt_case("sd2-tiny", 1) : r;
}
// The same on CUDA in F32 (the text encoder, sampler, UNet and VAE there), same bounds.
GPU_TEST(sd_prompt_to_image_cuda_f32) {
    CHECK_OK(zs_cuda_init(0));
    zt_result r = prompt_case_on("sd1-tiny", 0, ZS_CUDA, ZS_F32);
    return r == ZT_PASS ? prompt_case_on("sd2-tiny", 1, ZS_CUDA, ZS_F32) : r;
}

// ---- variant folders: only diffusion_pytorch_model.fp16.safetensors / model.bf16.safetensors ----
// dst/<sub>/<stem>.<variant>.safetensors = src/<sub>/<stem>.safetensors stored in dtype dt.
static zs_status write_variant(const char *src, const char *dst, const char *sub, const char *stem, const char *variant,
                               zs_dtype dt) {
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s/%s/%s.safetensors", src, sub, stem);
    snprintf(b, sizeof b, "%s/%s/%s.%s.safetensors", dst, sub, stem, variant);
    zs_st *st;
    zs_st_writer *w = NULL;
    ZS_TRY(zs_st_open(&st, a));
    zs_status s = zs_st_writer_new(&w);
    for (int i = 0; !s && i < zs_st_count(st); i++) {
        const zs_st_entry *e = zs_st_at(st, i);
        float *x = zt_ref_read(st, e->name, -1, 0, NULL);
        zs_tensor t = zs_tensor_make(x, ZS_F32, ZS_CPU, e->ndim, e->shape);
        s = x ? zs_st_writer_add(w, e->name, &t, dt) : ZS_ERR(ZS_EFORMAT, "%s: %s", a, e->name);
        free(x);
    }
    if (!s) s = zs_st_writer_meta(w, "format", "pt");
    if (!s) s = zs_st_writer_save(w, b);
    zs_st_writer_free(w);
    zs_st_close(st);
    return s;
}

// A copy of sd1-tiny holding only half-precision variant weight files (as a user's
// `variant="fp16"` download): same configs, tokenizer and scheduler.
static zs_status make_variant_folder(const char *src, char *dir, const char *variant, zs_dtype dt) {
    static const char *files[] = {"model_index.json", "scheduler/scheduler_config.json", "unet/config.json",
                                  "vae/config.json", "text_encoder/config.json", "tokenizer/vocab.json",
                                  "tokenizer/merges.txt", "tokenizer/tokenizer_config.json",
                                  "tokenizer/special_tokens_map.json"};
    static const char *subs[] = {"scheduler", "unet", "vae", "text_encoder", "tokenizer"};
    if (!mkdtemp(dir)) return ZS_ERR(ZS_EIO, "mkdtemp %s", dir);
    char a[1024], b[1024];
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        snprintf(b, sizeof b, "%s/%s", dir, subs[i]);
        if (mkdir(b, 0755)) return ZS_ERR(ZS_EIO, "mkdir %s", b);
    }
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(a, sizeof a, "%s/%s", src, files[i]), snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        ZS_TRY(zt_copy_file(a, b));
    }
    ZS_TRY(write_variant(src, dir, "unet", "diffusion_pytorch_model", variant, dt));
    ZS_TRY(write_variant(src, dir, "vae", "diffusion_pytorch_model", variant, dt));
    return write_variant(src, dir, "text_encoder", "model", variant, dt);
}

// The variant folder loads (weights widened to F32) and gives the folder's image up to the
// weights' rounding: fp16 (11-bit mantissa) 1e-2, bf16 (8-bit) 5e-2 relative, measured
// values printed.
TEST(sd_variant_folders) {
    char src[512];
    zt_fixture_path("sd/sd1-tiny", src, sizeof src);
    t2i_ref r;
    CHECK_OK(ref_open(&r, "sd1-tiny"));
    struct { const char *variant; zs_dtype dt; double bound; } v[2] = {{"fp16", ZS_F16, 1e-2}, {"bf16", ZS_BF16, 5e-2}};
    float *l0 = NULL, *i0 = NULL;
    int64_t n0 = 0;
    zs_sd_pipe *p = NULL;
    zs_status s = open_pipe(&p, "sd1-tiny", 0);
    if (!s) s = run_t2i(p, &r, ZS_SAMPLER_EULER, 3, &l0, &i0, &n0);
    zs_sd_pipe_free(p);
    int ok = !s;
    for (int k = 0; ok && k < 2; k++) {
        char dir[] = "/tmp/zsmlc_variant_XXXXXX", cmd[600];
        float *l = NULL, *im = NULL;
        int64_t n = 0;
        p = NULL;
        s = make_variant_folder(src, dir, v[k].variant, v[k].dt);
        zs_sd_pipe_opts o = zs_sd_pipe_default_opts();
        o.no_text = 1;
        if (!s) s = zs_sd_pipe_open(&p, dir, &o, ZS_CPU, ZS_F32);
        if (!s) s = run_t2i(p, &r, ZS_SAMPLER_EULER, 3, &l, &im, &n);
        double e = s || n != n0 ? 1 : zt_rel_err(im, i0, n, 1e-6);
        if (!s) printf("    sd1-tiny %s variant folder: image vs the fp32 folder %.2e (bound %g)\n", v[k].variant, e, v[k].bound);
        else zt_note(__FILE__, __LINE__, "%s: %s", v[k].variant, zs_errmsg());
        ok &= !s && e < v[k].bound;
        zs_sd_pipe_free(p);
        free(l), free(im);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) zt_note(__FILE__, __LINE__, "could not remove %s", dir);
    }
    free(l0), free(i0);
    ref_close(&r);
    CHECK(ok, "variant folders");
    return ZT_PASS;
}
