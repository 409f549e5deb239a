// CLIP image preprocessing against open_clip's and transformers' own outputs
// (tests/fixtures/clip/images/preprocess.safetensors, tools/fixtures/make_clip.py).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "models/clip_preprocess.h"
#include "test.h"
#include "weights/safetensors.h"

static zt_result check_image(const zs_st *st, const char *n, double *worst_hf) {
    char path[512], key[64];
    zs_image img;
    snprintf(key, sizeof key, "clip/images/%s.png", n);
    CHECK_OK(zs_image_load(zt_fixture_path(key, path, sizeof path), &img));
    snprintf(key, sizeof key, "%s.u8", n);
    const zs_st_entry *u8 = zs_st_find(st, key);
    CHECK(u8 && u8->end - u8->begin == (uint64_t)img.w * img.h * 3 && !memcmp(u8->data, img.rgb, u8->end - u8->begin),
          "%s: decoded pixels differ from PIL's", n);
    float mean[3], sd[3];
    CHECK_OK(zs_st_read_f32(st, "mean", mean, 3));
    CHECK_OK(zs_st_read_f32(st, "std", sd, 3));
    static const struct { const char *suffix; zs_prep_style style; int h, w; } cases[] = {
        {"open_clip_32", ZS_PREP_OPENCLIP, 32, 32},
        {"open_clip_28x35", ZS_PREP_OPENCLIP, 28, 35},
        {"hf_pil_32", ZS_PREP_HF, 32, 32},
        {"hf_32", ZS_PREP_HF, 32, 32},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        zs_clip_prep p;
        zs_clip_prep_default(&p, cases[c].h);
        p.out_w = cases[c].w;
        p.style = cases[c].style;
        memcpy(p.mean, mean, sizeof mean);
        memcpy(p.std, sd, sizeof sd);
        int64_t n_out = 3 * (int64_t)cases[c].h * cases[c].w;
        float *got = malloc(sizeof(float) * n_out), *ref = malloc(sizeof(float) * n_out);
        CHECK(got && ref, "oom");
        snprintf(key, sizeof key, "%s.%s", n, cases[c].suffix);
        zs_status s = zs_st_read_f32(st, key, ref, n_out);
        if (!s) s = zs_clip_preprocess(&p, &img, got);
        double maxd = 0;
        for (int64_t i = 0; !s && i < n_out; i++) maxd = fmax(maxd, fabs((double)got[i] - ref[i]));
        free(got);
        free(ref);
        CHECK_OK(s);
        // Bit-exact with PIL-based pipelines; transformers' default torchvision resize may
        // differ by one grey level (1/255/std) at some pixels.
        double tol = strcmp(cases[c].suffix, "hf_32") ? 0 : 1.0 / 255 / 0.25 + 1e-6;
        if (!strcmp(cases[c].suffix, "hf_32")) *worst_hf = fmax(*worst_hf, maxd);
        CHECK(maxd <= tol, "%s: max |diff| %.3g > %.3g", key, maxd, tol);
    }
    zs_image_free(&img);
    return ZT_PASS;
}

TEST(clip_preprocess_matches_references) {
    char path[512];
    zs_st *st;
    CHECK_OK(zs_st_open(&st, zt_fixture_path("clip/images/preprocess.safetensors", path, sizeof path)));
    double worst = 0;
    zt_result r = check_image(st, "a", &worst);
    if (r == ZT_PASS) r = check_image(st, "b", &worst);
    zs_st_close(st);
    if (getenv("ZSMLC_TEST_VERBOSE")) zt_note(__FILE__, __LINE__, "hf (torchvision resize) max |diff| %.3g", worst);
    return r;
}

TEST(clip_preprocess_resize_matches_pil) {
    // The resized uint8 intermediates (before cropping) must equal PIL's exactly.
    char path[512], key[64];
    zs_st *st;
    CHECK_OK(zs_st_open(&st, zt_fixture_path("clip/images/preprocess.safetensors", path, sizeof path)));
    const char *names[2] = {"a", "b"}, *sfx[2] = {"open_clip_32", "open_clip_28x35"};
    zt_result r = ZT_PASS;
    for (int i = 0; i < 2 && r == ZT_PASS; i++) {
        zs_image img, out;
        snprintf(key, sizeof key, "clip/images/%s.png", names[i]);
        CHECK_OK(zs_image_load(zt_fixture_path(key, path, sizeof path), &img));
        for (int j = 0; j < 2 && r == ZT_PASS; j++) {
            snprintf(key, sizeof key, "%s.%s.resized_u8", names[i], sfx[j]);
            const zs_st_entry *e = zs_st_find(st, key);
            if (!e || e->ndim != 3) { zt_note(__FILE__, __LINE__, "%s missing", key); r = ZT_FAIL; break; }
            if (zs_image_resize_pil(&img, (int)e->shape[1], (int)e->shape[0], ZS_INTERP_BICUBIC, &out)) {
                zt_note(__FILE__, __LINE__, "%s", zs_errmsg());
                r = ZT_FAIL;
                break;
            }
            if (memcmp(out.rgb, e->data, e->end - e->begin)) {
                zt_note(__FILE__, __LINE__, "%s: resize differs from PIL", key);
                r = ZT_FAIL;
            }
            zs_image_free(&out);
        }
        zs_image_free(&img);
    }
    zs_st_close(st);
    return r;
}

TEST(clip_preprocess_config_errors) {
    char path[] = "/tmp/zsmlc_prep_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    const char *bad = "{\"crop_size\": {\"height\": 224, \"width\": 224}, \"size\": {\"height\": 224}, \"image_mean\": [0.5, 0.5, 0.5]}";
    CHECK(write(fd, bad, strlen(bad)) == (ssize_t)strlen(bad), "write");
    close(fd);
    zs_clip_prep p;
    zs_status s = zs_clip_prep_from_hf(&p, path);
    remove(path);
    CHECK(s == ZS_EUNSUPPORTED && strstr(zs_errmsg(), "shortest_edge") && strstr(zs_errmsg(), path), "%s", zs_errmsg());
    CHECK(zs_clip_prep_from_hf(&p, "/nonexistent/preprocessor_config.json") == ZS_EIO, "missing file");
    return ZT_PASS;
}
