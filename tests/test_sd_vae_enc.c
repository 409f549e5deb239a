// SD VAE encoder against the tiny diffusers fixtures (tests/fixtures/sd/README.md,
// vae.encode.*): moments = quant_conv(encoder(image)), mean, logvar, std; the LDM single file
// giving the same moments as the folder; errors.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "models/sd_vae_enc.h"
#include "tests/sd_ref.h"
#include "tests/test.h"

// Encodes the fixture image with the model at rel (config_rel for single files); *moments
// (malloc'd, shape in ms) gets the quant_conv output.
static zs_status encode_on(zs_device dev, zs_dtype dt, const zs_st *ref, const char *rel, const char *config_rel,
                           float **moments, int64_t ms[4]);
static zs_status encode(const zs_st *ref, const char *rel, const char *config_rel, float **moments, int64_t ms[4]) {
    return encode_on(ZS_CPU, ZS_F32, ref, rel, config_rel, moments, ms);
}

// The same on any device: image and moments staged through device tensors.
static zs_status encode_on(zs_device dev, zs_dtype dt, const zs_st *ref, const char *rel, const char *config_rel,
                           float **moments, int64_t ms[4]) {
    char a[512], b[512];
    zs_sd_plan_opts o = {config_rel ? zt_fixture_path(config_rel, b, sizeof b) : NULL, 0};
    zs_sd_vae_enc e;
    *moments = NULL;
    ZS_TRY(zs_sd_vae_enc_open(&e, zt_fixture_path(rel, a, sizeof a), &o, dev, dt));
    const zs_st_entry *en = zs_st_find(ref, "vae.encode.image");
    float *img = en && en->ndim == 4 ? zt_ref_read(ref, "vae.encode.image", zs_st_numel(en), 0, NULL) : NULL;
    zs_status s = img ? ZS_OK : ZS_ERR(ZS_EFORMAT, "reference: vae.encode.image");
    if (!s) s = zs_sd_vae_enc_moments_shape(&e, en->shape[0], en->shape[2], en->shape[3], ms);
    if (!s) {
        *moments = malloc(sizeof(float) * (size_t)(ms[0] * ms[1] * ms[2] * ms[3]));
        if (!*moments) s = ZS_ERR(ZS_ENOMEM, "test moments");
    }
    if (!s) {
        zs_tensor th = zs_tensor_make(img, ZS_F32, ZS_CPU, 4, en->shape), mh = zs_tensor_make(*moments, ZS_F32, ZS_CPU, 4, ms);
        zs_tensor t = zs_tensor_make(NULL, dt, dev, 4, en->shape), m = zs_tensor_make(NULL, dt, dev, 4, ms),
                  m2 = zs_tensor_make(NULL, dt, dev, 4, ms);
        s = zs_malloc(&t.data, zs_nbytes(&t), dev, "test image");
        if (!s) s = zs_malloc(&m.data, zs_nbytes(&m), dev, "test moments");
        if (!s) s = zs_malloc(&m2.data, zs_nbytes(&m2), dev, "test moments");
        if (!s) s = zs_tensor_copy(&t, &th);
        if (!s) s = zs_sd_vae_enc_encode(&e, &t, &m);
        // a second encode reuses the activation arena and gives the same moments
        float *again = s ? NULL : malloc(zs_nbytes(&mh));
        zs_tensor ah = zs_tensor_make(again, ZS_F32, ZS_CPU, 4, ms);
        if (!s && !again) s = ZS_ERR(ZS_ENOMEM, "test moments");
        if (!s) s = zs_sd_vae_enc_encode(&e, &t, &m2);
        if (!s) s = zs_tensor_copy(&mh, &m);
        if (!s) s = zs_tensor_copy(&ah, &m2);
        if (!s && memcmp(again, *moments, zs_nbytes(&mh))) s = ZS_ERR(ZS_EINVAL, "second encode differs");
        free(again);
        zs_free(t.data, dev), zs_free(m.data, dev), zs_free(m2.data, dev);
    }
    free(img);
    zs_sd_vae_enc_free(&e);
    if (s) free(*moments), *moments = NULL;
    return s;
}

static zt_result folder_case(const char *model) {
    char rel[256], refp[512];
    snprintf(rel, sizeof rel, "sd/%s.reference.safetensors", model);
    zs_st *ref;
    CHECK_OK(zs_st_open(&ref, zt_fixture_path(rel, refp, sizeof refp)));
    snprintf(rel, sizeof rel, "sd/%s", model);
    float *mom = NULL;
    int64_t ms[4];
    zs_status s = encode(ref, rel, NULL, &mom, ms);
    if (s) {
        zt_note(__FILE__, __LINE__, "%s: %s", model, zs_errmsg());
        zs_st_close(ref);
        return ZT_FAIL;
    }
    int64_t nm = ms[0] * ms[1] * ms[2] * ms[3], half = nm / 2, hs[4] = {ms[0], ms[1] / 2, ms[2], ms[3]};
    const zs_st_entry *en = zs_st_find(ref, "vae.encode.moments");
    int shape_ok = en && en->ndim == 4 && !memcmp(en->shape, ms, sizeof ms);
    double err[4] = {INFINITY, INFINITY, INFINITY, INFINITY};
    const char *names[4] = {"vae.encode.moments", "vae.encode.mean", "vae.encode.logvar", "vae.encode.std"};
    float *got = malloc(sizeof(float) * (size_t)half);
    zs_tensor mt = zs_tensor_make(mom, ZS_F32, ZS_CPU, 4, ms), ot = zs_tensor_make(got, ZS_F32, ZS_CPU, 4, hs);
    for (int k = 0; k < 4 && got; k++) {
        int64_t n = k ? half : nm;
        float *want = zt_ref_read(ref, names[k], n, 0, NULL);
        zs_status sk = k == 0 ? ZS_OK : k == 1 ? zs_sd_vae_enc_mean(&mt, &ot) : k == 2 ? zs_sd_vae_enc_logvar(&mt, &ot)
                                                                                    : zs_sd_vae_enc_std(&mt, &ot);
        if (want && !sk) err[k] = zt_rel_err(k ? got : mom, want, n, 1e-6);
        free(want);
    }
    zt_note(__FILE__, __LINE__,
            "%s: moments [%lld, %lld, %lld, %lld] rel err %.3g, mean %.3g, logvar %.3g, std %.3g "
            "(||got - ref|| / max(||ref||, 1e-6))",
            model, (long long)ms[0], (long long)ms[1], (long long)ms[2], (long long)ms[3], err[0], err[1], err[2],
            err[3]);
    free(got);
    free(mom);
    zs_st_close(ref);
    CHECK(shape_ok, "%s: moments shape differs from the reference's", model);
    for (int k = 0; k < 4; k++) CHECK(err[k] <= 1e-4, "%s: %s above the 1e-4 bound", model, names[k]);
    return ZT_PASS;
}

TEST(sd_vae_enc_sd1) { return folder_case("sd1-tiny"); }
TEST(sd_vae_enc_sd2) { return folder_case("sd2-tiny"); }

// The LDM single files (1x1-conv attention weights) encode bit-identically to the folders.
TEST(sd_vae_enc_single_file) {
    const char *models[2] = {"sd1-tiny", "sd2-tiny"};
    for (int m = 0; m < 2; m++) {
        char refp[512], rel[256], dir[256], file[256];
        snprintf(rel, sizeof rel, "sd/%s.reference.safetensors", models[m]);
        snprintf(dir, sizeof dir, "sd/%s", models[m]);
        snprintf(file, sizeof file, "sd/%s.safetensors", models[m]);
        zs_st *ref;
        CHECK_OK(zs_st_open(&ref, zt_fixture_path(rel, refp, sizeof refp)));
        float *m1 = NULL, *m2 = NULL;
        int64_t s1[4], s2[4];
        zs_status s = encode(ref, dir, NULL, &m1, s1);
        if (!s) s = encode(ref, file, dir, &m2, s2);
        int same = !s && !memcmp(s1, s2, sizeof s1) &&
                   !memcmp(m1, m2, sizeof(float) * (size_t)(s1[0] * s1[1] * s1[2] * s1[3]));
        if (s) zt_note(__FILE__, __LINE__, "%s: %s", models[m], zs_errmsg());
        free(m1);
        free(m2);
        zs_st_close(ref);
        CHECK(!s && same, "%s: single file moments differ from the folder's", models[m]);
    }
    return ZT_PASS;
}

// Errors: wrong image channels, wrong moments shape, too small an image, bad helper shapes.
TEST(sd_vae_enc_errors) {
    char a[512];
    zs_sd_vae_enc e;
    CHECK_OK(zs_sd_vae_enc_open(&e, zt_fixture_path("sd/sd1-tiny", a, sizeof a), NULL, ZS_CPU, ZS_F32));
    float img[3 * 8 * 8] = {0}, mom[64 * 8] = {0};
    int64_t ish[4] = {1, 3, 8, 8}, bad_c[4] = {1, 2, 8, 8}, ms[4];
    zs_status s0 = zs_sd_vae_enc_moments_shape(&e, 1, 8, 8, ms);
    zs_tensor t = zs_tensor_make(img, ZS_F32, ZS_CPU, 4, ish), m = zs_tensor_make(mom, ZS_F32, ZS_CPU, 4, ms);
    zs_tensor tb = zs_tensor_make(img, ZS_F32, ZS_CPU, 4, bad_c);
    zs_status s1 = zs_sd_vae_enc_encode(&e, &tb, &m);
    m.shape[3] += 1;
    zs_status s2 = zs_sd_vae_enc_encode(&e, &t, &m);
    m.shape[3] -= 1;
    zs_status s3 = zs_sd_vae_enc_encode(&e, &t, &m);
    int64_t tiny[4];
    zs_status s4 = zs_sd_vae_enc_moments_shape(&e, 1, 1, 8, tiny);
    zs_tensor half = zs_tensor_make(img, ZS_F32, ZS_CPU, 4, ms);  // not [B, z, h, w]
    zs_status s5 = zs_sd_vae_enc_std(&m, &half);
    zs_sd_vae_enc_free(&e);
    CHECK(!s0 && s1 == ZS_EINVAL && s2 == ZS_EINVAL && !s3 && s4 == ZS_EINVAL && s5 == ZS_EINVAL,
          "statuses %d %d %d %d %d %d", s0, s1, s2, s3, s4, s5);
    return ZT_PASS;
}

// The helpers: channel split, the logvar clamp to [-30, 20], std = exp(logvar / 2), batches.
TEST(sd_vae_enc_gaussian) {
    // moments [2, 2, 1, 2]: batch b, channel 0 = mean, channel 1 = logvar
    float m[8] = {1, -2, -50, 0.5f, 3, 4, 25, -1}, o[4];
    int64_t ms[4] = {2, 2, 1, 2}, os[4] = {2, 1, 1, 2};
    zs_tensor mt = zs_tensor_make(m, ZS_F32, ZS_CPU, 4, ms), ot = zs_tensor_make(o, ZS_F32, ZS_CPU, 4, os);
    CHECK_OK(zs_sd_vae_enc_mean(&mt, &ot));
    CHECK(o[0] == 1 && o[1] == -2 && o[2] == 3 && o[3] == 4, "mean %g %g %g %g", o[0], o[1], o[2], o[3]);
    CHECK_OK(zs_sd_vae_enc_logvar(&mt, &ot));
    CHECK(o[0] == -30 && o[1] == 0.5f && o[2] == 20 && o[3] == -1, "logvar %g %g %g %g", o[0], o[1], o[2], o[3]);
    CHECK_OK(zs_sd_vae_enc_std(&mt, &ot));
    CHECK(o[0] == expf(-15.0f) && o[1] == expf(0.25f) && o[2] == expf(10.0f) && o[3] == expf(-0.5f), "std %g %g %g %g",
          o[0], o[1], o[2], o[3]);
    return ZT_PASS;
}

// CUDA F32 against the CPU (the asymmetric pad's strided copies included), and BF16 loosely.
GPU_TEST(sd_vae_enc_cuda_matches_cpu) {
    char refp[512];
    zs_st *ref;
    CHECK_OK(zs_cuda_init(0));
    CHECK_OK(zs_st_open(&ref, zt_fixture_path("sd/sd1-tiny.reference.safetensors", refp, sizeof refp)));
    float *c = NULL, *g = NULL, *h = NULL;
    int64_t ms[4], ms2[4], ms3[4];
    zs_status s = encode_on(ZS_CPU, ZS_F32, ref, "sd/sd1-tiny", NULL, &c, ms);
    if (!s) s = encode_on(ZS_CUDA, ZS_F32, ref, "sd/sd1-tiny", NULL, &g, ms2);
    if (!s) s = encode_on(ZS_CUDA, ZS_BF16, ref, "sd/sd1-tiny", NULL, &h, ms3);
    zs_st_close(ref);
    double e32 = 1, e16 = 1;
    if (!s) {
        int64_t n = ms[0] * ms[1] * ms[2] * ms[3];
        e32 = zt_rel_err(g, c, n, 1e-6), e16 = zt_rel_err(h, c, n, 1e-6);
        printf("    sd vae encoder cuda vs cpu: f32 %.2e bf16 %.2e\n", e32, e16);
    } else {
        zt_note(__FILE__, __LINE__, "%s", zs_errmsg());
    }
    free(c), free(g), free(h);
    CHECK(!s, "encode failed");
    CHECK(e32 < 1e-4 && e16 < 5e-2, "CUDA differs from the CPU (bounds: F32 1e-4, BF16 5e-2)");
    return ZT_PASS;
}
