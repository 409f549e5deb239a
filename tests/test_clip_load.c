// CLIP loading: the real layouts (header-only fixtures, plan only: config, names, shapes),
// clear errors for missing / mis-shaped / extra tensors and unsupported config values, and
// save -> load round trips equal bit for bit in each naming.
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "models/clip.h"
#include "tests/files.h"
#include "tests/test.h"

static zs_status plan(zs_clip **m, const char *rel, unsigned towers) {
    char p[512];
    zs_clip_opts o = zs_clip_default_opts();
    o.plan_only = 1, o.towers = towers;
    return zs_clip_load(m, zt_fixture_path(rel, p, sizeof p), &o);
}

#define CHECK_TEXT(m, W, NL, H, E, ACT, OUT)                                                                   \
    CHECK((m)->text.width == (W) && (m)->text.layers == (NL) && (m)->text.heads == (H) && (m)->text.embed == (E) && \
              (m)->text.act == (ACT) && (m)->text.out_layer == (OUT),                                          \
          "text config: width %d layers %d heads %d embed %d act %d out_layer %d", (m)->text.width,           \
          (m)->text.layers, (m)->text.heads, (m)->text.embed, (int)(m)->text.act, (m)->text.out_layer)
#define CHECK_VISION(m, W, NL, H, P, IMG, E)                                                                       \
    CHECK((m)->vision.width == (W) && (m)->vision.layers == (NL) && (m)->vision.heads == (H) &&                    \
              (m)->vision.patch == (P) && (m)->vision.image_h == (IMG) && (m)->vision.embed == (E),                \
          "vision config: width %d layers %d heads %d patch %d image %d embed %d", (m)->vision.width,             \
          (m)->vision.layers, (m)->vision.heads, (m)->vision.patch, (m)->vision.image_h, (m)->vision.embed)

TEST(clip_layout_vit_b32_openai) {
    zs_clip *m;
    CHECK_OK(plan(&m, "layouts/clip-vit-b-32-openai", 0));
    CHECK_TEXT(m, 512, 12, 8, 512, ZS_ACT_QUICKGELU, 12);
    CHECK_VISION(m, 768, 12, 12, 32, 224, 512);
    CHECK(m->n_unused == 0 && m->n_bind == 2 * 12 * 12 + 5 + 8 + 1, "bound %d, unused %d", m->n_bind, m->n_unused);
    zs_clip_free(m);
    return ZT_PASS;
}

TEST(clip_layout_openclip_vit_h14) {
    zs_clip *m;
    CHECK_OK(plan(&m, "layouts/openclip-vit-h-14-laion2b", 0));
    CHECK_TEXT(m, 1024, 24, 16, 1024, ZS_ACT_GELU, 24);
    CHECK_VISION(m, 1280, 32, 16, 14, 224, 1024);  // head_width 80
    zs_clip_free(m);
    return ZT_PASS;
}

TEST(clip_layout_rn50_text_only) {
    zs_clip *m;
    // the whole model (ModifiedResNet vision tower): tests/test_clip_resnet.c
    CHECK_OK(plan(&m, "layouts/clip-rn50-openai", ZS_CLIP_TEXT));
    CHECK_TEXT(m, 512, 12, 8, 1024, ZS_ACT_QUICKGELU, 12);
    CHECK(m->n_unused > 0, "visual.* should be listed unused");
    zs_clip_free(m);
    return ZT_PASS;
}

TEST(clip_layout_sd_diffusers) {
    zs_clip *m;
    CHECK_OK(plan(&m, "layouts/sd15-diffusers", 0));  // the pipeline folder: its text_encoder/
    CHECK_TEXT(m, 768, 12, 12, 0, ZS_ACT_QUICKGELU, 12);
    CHECK(m->text.pool == ZS_POOL_ARGMAX, "eos_token_id 2 pools at argmax");
    CHECK(m->n_unused == 1 && strstr(m->unused[0], "position_ids"), "position_ids should be the one unused tensor");
    zs_clip_free(m);
    CHECK_OK(plan(&m, "layouts/sd21-diffusers/text_encoder", 0));
    CHECK_TEXT(m, 1024, 23, 16, 0, ZS_ACT_GELU, 23);
    zs_clip_free(m);
    return ZT_PASS;
}

TEST(clip_layout_sd_single_files) {
    zs_clip *m;
    CHECK_OK(plan(&m, "layouts/sd21-single/v2-1_768-ema-pruned.safetensors", 0));
    CHECK(!strcmp(m->prefix, "cond_stage_model.model."), "prefix %s", m->prefix);
    CHECK_TEXT(m, 1024, 24, 16, 1024, ZS_ACT_GELU, 23);  // SD 2.x: layer 23 + ln_final
    CHECK(m->towers == ZS_CLIP_TEXT, "text only");
    zs_clip_free(m);
    CHECK_OK(plan(&m, "layouts/sd15-single/v1-5-pruned.safetensors", 0));
    CHECK(!strcmp(m->prefix, "cond_stage_model.transformer."), "prefix %s", m->prefix);
    CHECK_TEXT(m, 768, 12, 12, 0, ZS_ACT_QUICKGELU, 12);
    zs_clip_free(m);
    return ZT_PASS;
}

// ---- errors -----------------------------------------------------------------------------
static int load_fails_with(const char *path, const char *needle) {
    zs_clip *m = NULL;
    zs_status s = zs_clip_load(&m, path, NULL);
    int ok = s != ZS_OK && !m && strstr(zs_errmsg(), needle);
    if (!ok) zt_note(__FILE__, __LINE__, "%s: status %s, message \"%s\", wanted \"%s\"", path, zs_status_name(s),
                     s ? zs_errmsg() : "", needle);
    zs_clip_free(m);
    return ok;
}

TEST(clip_load_errors_tensors) {
    char src[512], dir[] = "/tmp/zsmlc_clipXXXXXX", p[600];
    zt_fixture_path("clip/openai_vit.safetensors", src, sizeof src);
    CHECK(mkdtemp(dir), "mkdtemp");
    snprintf(p, sizeof p, "%s/x.safetensors", dir);
    int ok = 1;
    CHECK_OK(zt_st_rewrite(src, p, "transformer.resblocks.1.ln_2.bias", NULL, NULL));
    ok &= load_fails_with(p, "missing tensor transformer.resblocks.1.ln_2.bias");
    CHECK_OK(zt_st_rewrite(src, p, NULL, "visual.ln_post.weight", NULL));
    ok &= load_fails_with(p, "tensor visual.ln_post.weight is F32 [7], expected");
    CHECK_OK(zt_st_rewrite(src, p, NULL, NULL, "transformer.resblocks.0.attn.q_norm.weight"));
    ok &= load_fails_with(p, "extra tensor transformer.resblocks.0.attn.q_norm.weight");
    CHECK_OK(zt_st_rewrite(src, p, NULL, NULL, "visual.transformer.resblocks.5.ln_1.bias"));
    ok &= load_fails_with(p, "extra tensor visual.transformer.resblocks.5.ln_1.bias: the config has 2 layers");
    remove(p);
    rmdir(dir);
    return ok ? ZT_PASS : ZT_FAIL;
}

static zs_status write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return ZS_ERR(ZS_EIO, "%s", path);
    fputs(text, f);
    fclose(f);
    return ZS_OK;
}

TEST(clip_load_errors_config) {
    char dir[] = "/tmp/zsmlc_clipXXXXXX", p[600];
    CHECK(mkdtemp(dir), "mkdtemp");
    snprintf(p, sizeof p, "%s/open_clip_config.json", dir);
    int ok = 1;
    CHECK_OK(write_text(p, "{\"model_cfg\": {\"embed_dim\": 8, \"text_cfg\": {\"width\": 32, \"ls_init_value\": 0.1}}}"));
    ok &= load_fails_with(dir, "text_cfg.ls_init_value = 0.1: not supported");
    CHECK_OK(write_text(p, "{\"model_cfg\": {\"embed_dim\": 8, \"text_cfg\": {\"pool_type\": \"last\"}}}"));
    ok &= load_fails_with(dir, "pool_type = \"last\"");
    CHECK_OK(write_text(p, "{\"model_cfg\": {\"embed_dim\": 8, \"vision_cfg\": {\"frobnicate\": 1}}}"));
    ok &= load_fails_with(dir, "vision_cfg.frobnicate: unknown open_clip config field");
    remove(p);
    snprintf(p, sizeof p, "%s/config.json", dir);
    CHECK_OK(write_text(p, "{\"architectures\": [\"CLIPTextModel\"], \"hidden_act\": \"relu\"}"));
    ok &= load_fails_with(dir, "config.hidden_act = \"relu\"");
    CHECK_OK(write_text(p, "{\"architectures\": [\"CLIPSegForImageSegmentation\"]}"));
    ok &= load_fails_with(dir, "CLIPSegForImageSegmentation");
    remove(p);
    rmdir(dir);
    return ok ? ZT_PASS : ZT_FAIL;
}

// ---- save -> load round trips ------------------------------------------------------------
// Loads `rel`, saves it (into a folder with the same config when cfg is set), reloads, and
// compares every bound tensor with the first load and with the original file's bytes.
static zt_result round_trip(const char *rel, const char *cfg, const char *wfile, const char *orig_file, int heads) {
    char src[512], dir[] = "/tmp/zsmlc_clipXXXXXX", out[700], cp[700], of[700];
    zt_fixture_path(rel, src, sizeof src);
    CHECK(mkdtemp(dir), "mkdtemp");
    zs_clip_opts o = zs_clip_default_opts();
    o.text_heads = heads;
    zs_clip *a = NULL, *b = NULL;
    CHECK_OK(zs_clip_load(&a, src, &o));
    snprintf(out, sizeof out, "%s/%s", dir, wfile);
    if (cfg) {
        snprintf(cp, sizeof cp, "%s/%s", dir, cfg);
        snprintf(of, sizeof of, "%s/%s", src, cfg);
        CHECK_OK(zt_copy_file(of, cp));
    }
    CHECK_OK(zs_clip_save(a, out));
    CHECK_OK(zs_clip_load(&b, cfg ? dir : out, &o));
    CHECK(a->n_bind == b->n_bind, "bound %d vs %d", a->n_bind, b->n_bind);
    zs_st *so, *sn;
    snprintf(of, sizeof of, "%s%s%s", src, orig_file ? "/" : "", orig_file ? orig_file : "");
    CHECK_OK(zs_st_open(&so, of));
    CHECK_OK(zs_st_open(&sn, out));
    int ok = 1;
    for (int i = 0; i < a->n_bind && ok; i++) {
        const zs_clip_binding *x = &a->bind[i];
        CHECK(!strcmp(x->name, b->bind[i].name), "binding %d: %s vs %s", i, x->name, b->bind[i].name);
        const zs_st_entry *e1 = zs_st_find(so, x->name), *e2 = zs_st_find(sn, x->name);
        CHECK(e1 && e2 && e1->dtype == e2->dtype && e1->end - e1->begin == e2->end - e2->begin &&
                  !memcmp(e1->data, e2->data, e1->end - e1->begin),
              "%s differs from the original file", x->name);
        int64_t n = (int64_t)(e1->end - e1->begin) / (int64_t)zs_dtype_size(e1->dtype);
        float *p = malloc((size_t)n * 2 * sizeof(float));
        CHECK_OK(zs_clip_read_bound(a, i, 0, p, n));
        CHECK_OK(zs_clip_read_bound(b, i, 0, p + n, n));
        ok = !memcmp(p, p + n, (size_t)n * sizeof(float));
        free(p);
        CHECK(ok, "%s differs after the round trip", x->name);
    }
    // Unused tensors (position_ids, ...) travel unchanged.
    CHECK(zs_st_count(sn) == a->n_bind + a->n_unused, "saved %d tensors for %d bound + %d unused", zs_st_count(sn),
          a->n_bind, a->n_unused);
    for (int i = 0; i < a->n_unused; i++) {
        const zs_st_entry *e1 = zs_st_find(so, a->unused[i]), *e2 = zs_st_find(sn, a->unused[i]);
        CHECK(e1 && e2 && e1->dtype == e2->dtype && e1->end - e1->begin == e2->end - e2->begin &&
                  !memcmp(e1->data, e2->data, e1->end - e1->begin),
              "unused %s not carried over unchanged", a->unused[i]);
    }
    printf("    %s: %d tensors saved and reloaded bit for bit\n", rel, a->n_bind);
    zs_st_close(so);
    zs_st_close(sn);
    zs_clip_free(a);
    zs_clip_free(b);
    remove(out);
    if (cfg) remove(cp);
    rmdir(dir);
    return ZT_PASS;
}

TEST(clip_save_round_trip_open_clip) {
    return round_trip("clip/openclip-vit", "open_clip_config.json", "open_clip_model.safetensors",
                      "open_clip_model.safetensors", 0);
}
TEST(clip_save_round_trip_hf) { return round_trip("clip/hf-clip", "config.json", "model.safetensors", "model.safetensors", 0); }
TEST(clip_save_round_trip_hf_text) {
    return round_trip("clip/sd1-text", "config.json", "model.safetensors", "model.safetensors", 0);
}
TEST(clip_save_round_trip_openai_bare) {
    return round_trip("clip/openai_vit.safetensors", NULL, "openai.safetensors", NULL, 0);
}
TEST(clip_save_round_trip_sd2_single) {
    return round_trip("clip/sd2_text_openclip.safetensors", NULL, "sd2.safetensors", NULL, 2);
}
