// Image decoding: every encoding of tests/fixtures/images/ decodes to exactly the pixels
// PIL's convert("RGB") gives (tools/fixtures/make_images.py); bad files get clear errors.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <png.h>
#include "engine/fileio.h"
#include "engine/image.h"
#include "test.h"
#include "weights/safetensors.h"

TEST(image_decode_matches_pil) {
    char path[1100], dir[512];
    zs_st *st;
    CHECK_OK(zs_st_open(&st, zt_fixture_path("images/decoded.safetensors", path, sizeof path)));
    zt_fixture_path("images", dir, sizeof dir);
    int n = zs_st_count(st), bad = 0;
    for (int i = 0; i < n; i++) {
        const zs_st_entry *e = zs_st_at(st, i);
        snprintf(path, sizeof path, "%s/%s", dir, e->name);
        zs_image img;
        zs_status s = zs_image_load(path, &img);
        if (s) { zt_note(__FILE__, __LINE__, "%s: %s", e->name, zs_errmsg()); bad++; continue; }
        size_t nb = (size_t)img.w * img.h * 3;
        int same = e->dtype == ZS_U8 && e->ndim == 3 && e->shape[0] == img.h && e->shape[1] == img.w &&
                   e->end - e->begin == nb && memcmp(e->data, img.rgb, nb) == 0;
        if (!same) {
            int maxd = 0;
            if (e->end - e->begin == nb)
                for (size_t k = 0; k < nb; k++) {
                    int d = abs((int)((const uint8_t *)e->data)[k] - img.rgb[k]);
                    if (d > maxd) maxd = d;
                }
            zt_note(__FILE__, __LINE__, "%s: %dx%d decoded, differs from PIL (max |diff| %d)", e->name, img.w, img.h, maxd);
            bad++;
        }
        zs_image_free(&img);
    }
    zs_st_close(st);
    CHECK(n >= 12 && bad == 0, "%d of %d images differ from PIL", bad, n);
    return ZT_PASS;
}

TEST(image_bad_files) {
    static const uint8_t junk[] = "GIF89a not supported";
    zs_image img;
    CHECK(zs_image_load_mem(junk, sizeof junk, "x.gif", &img) == ZS_EFORMAT && strstr(zs_errmsg(), "x.gif") &&
              strstr(zs_errmsg(), "not a PNG or JPEG"), "%s", zs_errmsg());
    CHECK(zs_image_load("/nonexistent/a.png", &img) == ZS_EIO && strstr(zs_errmsg(), "/nonexistent/a.png"), "%s",
          zs_errmsg());
    char path[512];
    zs_image good;
    CHECK_OK(zs_image_load(zt_fixture_path("images/rgb.png", path, sizeof path), &good));
    zs_image_free(&good);
    // Truncations of a valid PNG and JPEG: every prefix fails cleanly, except a PNG cut
    // only in its 12-byte IEND trailer (the pixels are whole; PIL reads those too) and a
    // JPEG whose short scan libjpeg pads, as PIL does.
    const char *names[2] = {"images/rgb.png", "images/baseline420.jpg"};
    for (int f = 0; f < 2; f++) {
        FILE *fp = fopen(zt_fixture_path(names[f], path, sizeof path), "rb");
        CHECK(fp, "open %s", path);
        static uint8_t buf[1 << 16];
        size_t n = fread(buf, 1, sizeof buf, fp);
        fclose(fp);
        for (size_t cut = 0; cut < n; cut += 7) {
            zs_status s = zs_image_load_mem(buf, cut, "cut", &img);
            if (s == ZS_OK) { zs_image_free(&img); CHECK(f == 1 || cut >= n - 12, "truncated PNG (%zu of %zu bytes) decoded", cut, n); }
            else CHECK(strstr(zs_errmsg(), "cut"), "error names the file: %s", zs_errmsg());
        }
    }
    return ZT_PASS;
}

TEST(image_png_write_roundtrip) {
    zs_image a = {31, 9, malloc(31 * 9 * 3)}, b;
    CHECK(a.rgb, "oom");
    for (int i = 0; i < 31 * 9 * 3; i++) a.rgb[i] = (uint8_t)(i * 37);
    char path[] = "/tmp/zsmlc_img_XXXXXX.png";
    int fd = mkstemps(path, 4);
    CHECK(fd >= 0, "mkstemps");
    close(fd);
    zs_status s = zs_image_save_png(path, &a);
    if (!s) s = zs_image_load(path, &b);
    remove(path);
    int same = !s && b.w == 31 && b.h == 9 && !memcmp(a.rgb, b.rgb, 31 * 9 * 3);
    if (!s) zs_image_free(&b);
    zs_image_free(&a);
    CHECK_OK(s);
    CHECK(same, "PNG round trip differs");
    CHECK(zs_image_save_png("/nonexistent/dir/x.png", &(zs_image){1, 1, (uint8_t[3]){0}}) == ZS_EIO, "bad dir");
    return ZT_PASS;
}

// How many of the two kv pairs libpng finds in path's text chunks (pair 0 tEXt, pair 1 iTXt).
static void count_text(const char *path, const char *const *kv, int *found, int *types_ok) {
    FILE *f = fopen(path, "rb");
    png_structp png = f ? png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL) : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (info && !setjmp(png_jmpbuf(png))) {
        png_init_io(png, f);
        png_read_info(png, info);
        png_textp t;
        int n = 0;
        png_get_text(png, info, &t, &n);
        for (int i = 0; i < n; i++)
            for (int k = 0; k < 2; k++)
                if (!strcmp(t[i].key, kv[2 * k]) && !strcmp(t[i].text, kv[2 * k + 1])) {
                    (*found)++;
                    *types_ok &= t[i].compression == (k ? PNG_ITXT_COMPRESSION_NONE : PNG_TEXT_COMPRESSION_NONE);
                }
    }
    if (png) png_destroy_read_struct(&png, info ? &info : NULL, NULL);
    if (f) fclose(f);
}

// Text chunks as libpng reads them back: an ASCII value in tEXt, a UTF-8 one in iTXt; the pixels
// unchanged; an injected write failure leaves the previous file in place.
TEST(image_png_text_chunks) {
    zs_image a = {5, 3, malloc(5 * 3 * 3)}, b;
    CHECK(a.rgb, "oom");
    for (int i = 0; i < 5 * 3 * 3; i++) a.rgb[i] = (uint8_t)(i * 11);
    char path[] = "/tmp/zsmlc_txt_XXXXXX.png";
    int fd = mkstemps(path, 4);
    CHECK(fd >= 0, "mkstemps");
    close(fd);
    const char *kv[4] = {"parameters", "a photo of a cat\nSteps: 3", "Comment", "caf\xc3\xa9 \xe2\x98\x95"};
    zs_status s = zs_image_save_png_text(path, &a, kv, 2);
    if (!s) s = zs_image_load(path, &b);
    int same = !s && b.w == 5 && b.h == 3 && !memcmp(a.rgb, b.rgb, 5 * 3 * 3);
    if (!s) zs_image_free(&b);
    int found = 0, types_ok = 1;
    if (!s) count_text(path, kv, &found, &types_ok);
    zs_write_fault = 1;  // a failed write keeps the old file
    zs_status s2 = zs_image_save_png_text(path, &(zs_image){1, 1, (uint8_t[3]){0}}, kv, 1);
    zs_write_fault = 0;
    zs_image c = {0};
    zs_status s3 = zs_image_load(path, &c);
    int kept = !s3 && c.w == 5;
    zs_image_free(&c);
    remove(path);
    zs_image_free(&a);
    CHECK_OK(s);
    CHECK(same, "pixels differ after writing text chunks");
    CHECK(found == 2 && types_ok, "text chunks: %d of 2 found, types %s", found, types_ok ? "ok" : "wrong");
    CHECK(s2 == ZS_EIO && kept, "a failed write replaced the file");
    const char *bad[2] = {"", "x"};
    CHECK(zs_image_save_png_text(path, &(zs_image){1, 1, (uint8_t[3]){0}}, bad, 1) == ZS_EINVAL, "empty key accepted");
    return ZT_PASS;
}

// The fuzz target's seed corpus (tests/fuzz/corpus/fuzz_image) replayed: no crash, no leak.
TEST(image_fuzz_corpus) {
    int n = zt_replay_corpus("fuzz_image", zs_fuzz_image);
    CHECK(n > 5, "only %d corpus files", n);
    return ZT_PASS;
}
