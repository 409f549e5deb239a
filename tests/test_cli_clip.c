// zsmlc clip-encode / clip-score, run as the built binary (the zsmlc next to this test binary:
// build/ or build-san/) on tests/fixtures/clip. The fixtures' text towers have 1000-row
// vocabularies, so the built-in OpenAI vocabulary does not fit them (its start / end ids are
// 49406 / 49407): that is an error case here, and the success cases write a tiny byte-level
// Hugging Face tokenizer (vocab.json + empty merges) whose ids fit, with the end token where
// each model pools (the largest id for open_clip's argmax; eos_token_id 7 for hf-clip).
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "models/clip.h"
#include "models/clip_preprocess.h"
#include "tests/cli_env.h"
#include "tests/test.h"

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}
static int exists(const char *p) {
    struct stat s;
    return stat(p, &s) == 0;
}

// A byte-level CLIP vocabulary: 256 byte symbols at base.., their "</w>" forms at base+256..,
// start / end tokens at sot / eot; no merges (every character is a token).
static int write_tokenizer(const char *dir, int base, int sot, int eot) {
    int cs[256], n = 0, is[256] = {0};
    for (int b = 33; b <= 126; b++) is[b] = 1;
    for (int b = 161; b <= 172; b++) is[b] = 1;
    for (int b = 174; b <= 255; b++) is[b] = 1;
    for (int b = 0; b < 256; b++) cs[b] = is[b] ? b : 256 + n++;
    if (mkdir(dir, 0755) != 0) return -1;
    char p[512];
    snprintf(p, sizeof p, "%s/vocab.json", dir);
    FILE *f = fopen(p, "w");
    if (!f) return -1;
    fprintf(f, "{\"<|startoftext|>\": %d, \"<|endoftext|>\": %d", sot, eot);
    for (int b = 0; b < 256; b++) fprintf(f, ", \"\\u%04x\": %d, \"\\u%04x</w>\": %d", cs[b], base + b, cs[b], base + 256 + b);
    fputs("}\n", f);
    if (fclose(f)) return -1;
    snprintf(p, sizeof p, "%s/merges.txt", dir);
    return write_text(p, "#version: 0.2\n");
}

// [n, E] F32 tensor `name` of a safetensors file (malloc'd), or NULL.
static float *read_embeds(const char *path, const char *name, int64_t *n, int64_t *E, char *meta, size_t mn, const char *key) {
    zs_st *st;
    if (zs_st_open(&st, path)) return NULL;
    const zs_st_entry *e = zs_st_find(st, name);
    float *v = NULL;
    if (e && e->ndim == 2 && e->dtype == ZS_F32) {
        *n = e->shape[0], *E = e->shape[1];
        v = malloc((size_t)(*n * *E) * sizeof *v);
        if (v && zs_st_read_f32(st, name, v, *n * *E)) free(v), v = NULL;
    }
    const char *m = key ? zs_st_metadata(st, key) : NULL;
    if (meta) snprintf(meta, mn, "%s", m ? m : "");
    zs_st_close(st);
    return v;
}

static int unit_rows(const float *v, int64_t n, int64_t E) {
    for (int64_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t k = 0; k < E; k++) s += (double)v[i * E + k] * v[i * E + k];
        if (fabs(sqrt(s) - 1) > 1e-5) return 0;
    }
    return 1;
}

// Normalised image embedding of `img` computed with the library (the CLI's result must match).
static zs_status direct_image(const char *model, const char *cfg, const char *img, float *out, int64_t E) {
    zs_clip_opts o = zs_clip_default_opts();
    o.towers = ZS_CLIP_VISION;
    zs_clip *m;
    ZS_TRY(zs_clip_load(&m, model, &o));
    zs_clip_prep p;
    zs_image im = {0};
    int64_t sh[4] = {1, 3, m->vision.image_h, m->vision.image_w};
    float *px = malloc((size_t)(3 * sh[2] * sh[3]) * sizeof *px);
    zs_status s = zs_clip_prep_from_openclip(&p, cfg, m->vision.image_h, m->vision.image_w);
    if (!s) s = zs_image_load(img, &im);
    if (!s) s = zs_clip_preprocess(&p, &im, px);
    zs_tensor x = zs_tensor_make(px, ZS_F32, ZS_CPU, 4, sh);
    if (!s) s = zs_clip_vision_setup(&m->v, 1, 0);
    if (!s) s = zs_clip_vision_fwd(&m->v, &x);
    if (!s && m->v.a.features.shape[1] != E) s = ZS_ERR(ZS_EINVAL, "embedding width %lld", (long long)m->v.a.features.shape[1]);
    if (!s) zs_l2norm_fwd(out, m->v.a.features.data, 1, E);
    zs_image_free(&im);
    free(px);
    zs_clip_free(m);
    return s;
}

#define OPEN_ENV(e)                                                   \
    cli_env e;                                                        \
    if (zt_cli_open(&e, "clip")) SKIP("no zsmlc binary next to the test binary (build it: make)")

TEST(cli_clip_encode_images) {
    OPEN_ENV(e);
    char model[512], cfg[600], a[512], b[512], out[512], meta[4096];
    zt_fixture_path("clip/openclip-vit", model, sizeof model);
    snprintf(cfg, sizeof cfg, "%s/open_clip_config.json", model);
    zt_fixture_path("clip/images/a.png", a, sizeof a);
    zt_fixture_path("clip/images/b.png", b, sizeof b);
    zt_cli_path(&e, "img.safetensors", out, sizeof out);
    int rc = zt_cli_run(&e, "clip-encode --model %s --image %s %s --out %s --batch 1", model, a, b, out);
    CHECK(rc == 0, "clip-encode exit %d: %s", rc, e.err);
    CHECK(strstr(e.err, "preprocessing: open_clip preprocess_cfg"), "stderr: %s", e.err);
    int64_t n = 0, E = 0;
    float *v = read_embeds(out, "image_embeds", &n, &E, meta, sizeof meta, "images");
    CHECK(v && n == 2 && E == 24, "image_embeds missing or [%lld, %lld]", (long long)n, (long long)E);
    CHECK(unit_rows(v, n, E), "rows are not unit-norm");
    CHECK(strstr(meta, "a.png") && strstr(meta, "b.png") && meta[0] == '[', "metadata images: %s", meta);
    float ref[24];
    CHECK_OK(direct_image(model, cfg, b, ref, E));
    double err = zt_rel_err(v + E, ref, E, 1e-6);
    free(v);
    CHECK(err < 1e-5, "b.png: CLI vs library relative error %.3e", err);
    // transformers folder without preprocessor_config.json: CLIP defaults at 28x28
    zt_fixture_path("clip/hf-clip", model, sizeof model);
    rc = zt_cli_run(&e, "clip-encode --model %s --image %s --out %s", model, a, out);
    CHECK(rc == 0, "hf-clip clip-encode exit %d: %s", rc, e.err);
    v = read_embeds(out, "image_embeds", &n, &E, NULL, 0, NULL);
    int ok = v && n == 1 && E == 20 && unit_rows(v, n, E);
    free(v);
    CHECK(ok, "hf-clip image_embeds");
    // open_clip ModifiedResNet folder (64x64, embed 20)
    zt_fixture_path("clip/openclip-rn", model, sizeof model);
    rc = zt_cli_run(&e, "clip-encode --model %s --image %s %s --out %s", model, a, b, out);
    CHECK(rc == 0, "openclip-rn clip-encode exit %d: %s", rc, e.err);
    v = read_embeds(out, "image_embeds", &n, &E, NULL, 0, NULL);
    ok = v && n == 2 && E == 20 && unit_rows(v, n, E);
    free(v);
    zt_cli_close(&e);
    CHECK(ok, "openclip-rn image_embeds");
    return ZT_PASS;
}

TEST(cli_clip_encode_text) {
    OPEN_ENV(e);
    char model[512], out[512], tok[512], meta[4096];
    zt_fixture_path("clip/hf-clip", model, sizeof model);
    zt_cli_path(&e, "txt.safetensors", out, sizeof out);
    zt_cli_path(&e, "tok_hf", tok, sizeof tok);
    CHECK(write_tokenizer(tok, 10, 6, 7) == 0, "cannot write %s", tok);
    // the built-in vocabulary's ids do not fit a 1000-row embedding: a clear error, no output
    int rc = zt_cli_run(&e, "clip-encode --model %s --text 'a cat' --out %s", model, out);
    CHECK(rc == 1 && strstr(e.err, "outside the model's vocabulary of 1000") && strstr(e.err, "a cat") && !exists(out),
          "built-in vocabulary on hf-clip: exit %d: %s", rc, e.err);
    rc = zt_cli_run(&e, "clip-encode --model %s --tokenizer %s --text 'a cat' 'two dogs on grass' x --out %s --batch 2", model, tok, out);
    CHECK(rc == 0, "clip-encode exit %d: %s", rc, e.err);
    int64_t n = 0, E = 0;
    float *v = read_embeds(out, "text_embeds", &n, &E, meta, sizeof meta, "texts");
    int ok = v && n == 3 && E == 20 && unit_rows(v, n, E);
    free(v);
    CHECK(ok, "text_embeds [%lld, %lld]", (long long)n, (long long)E);
    CHECK(!strcmp(meta, "[\"a cat\",\"two dogs on grass\",\"x\"]"), "metadata texts: %s", meta);
    // usage errors exit 2
    CHECK(zt_cli_run(&e, "clip-encode --model %s --out %s", model, out) == 2, "no --text/--image: %s", e.err);
    CHECK(zt_cli_run(&e, "clip-encode --model %s --text a --image b --out %s", model, out) == 2, "both: %s", e.err);
    zt_cli_close(&e);
    return ZT_PASS;
}

typedef struct { char image[1024], label[1024]; double cos, logit; } score_row;

static int read_csv(const char *path, score_row *rows, int cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[1024];
    int n = 0;
    if (!fgets(line, sizeof line, f) || strcmp(line, "image,label,cos,logit\n")) n = -2;
    while (n >= 0 && fgets(line, sizeof line, f)) {
        // fields: image (no commas here), label (maybe quoted), cos, logit: split from the right
        char *c3 = strrchr(line, ','), *c2 = NULL, *c1 = strchr(line, ',');
        if (c3) *c3 = 0, c2 = strrchr(line, ',');
        if (n == cap || !c1 || !c2 || c1 == c2) { n = -3; break; }
        *c1 = *c2 = 0;
        snprintf(rows[n].image, sizeof rows[n].image, "%s", line);
        snprintf(rows[n].label, sizeof rows[n].label, "%s", c1 + 1);
        rows[n].cos = atof(c2 + 1), rows[n].logit = atof(c3 + 1);
        n++;
    }
    fclose(f);
    return n;
}

static int read_jsonl(const char *path, score_row *rows, int cap) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line);
        const cJSON *im = cJSON_GetObjectItem(j, "image"), *lb = cJSON_GetObjectItem(j, "label");
        const cJSON *c = cJSON_GetObjectItem(j, "cos"), *l = cJSON_GetObjectItem(j, "logit");
        if (n == cap || !cJSON_IsString(im) || !cJSON_IsString(lb) || !cJSON_IsNumber(c) || !cJSON_IsNumber(l)) {
            cJSON_Delete(j);
            n = -2;
            break;
        }
        snprintf(rows[n].image, sizeof rows[n].image, "%s", im->valuestring);
        snprintf(rows[n].label, sizeof rows[n].label, "%s", lb->valuestring);
        rows[n].cos = c->valuedouble, rows[n].logit = l->valuedouble;
        n++;
        cJSON_Delete(j);
    }
    fclose(f);
    return n;
}

// clip-score on openclip-vit (both formats) against clip-encode's embeddings and the model's
// logit scale.
TEST(cli_clip_score_csv_jsonl) {
    OPEN_ENV(e);
    char model[512], imgs[512], a[512], b[512], tok[512], labels[512], csv[512], jsl[512], te[512], ie[512];
    zt_fixture_path("clip/openclip-vit", model, sizeof model);
    zt_fixture_path("clip/images", imgs, sizeof imgs);
    zt_fixture_path("clip/images/a.png", a, sizeof a);
    zt_fixture_path("clip/images/b.png", b, sizeof b);
    zt_cli_path(&e, "tok_oc", tok, sizeof tok);
    zt_cli_path(&e, "labels.txt", labels, sizeof labels);
    zt_cli_path(&e, "scores.csv", csv, sizeof csv);
    zt_cli_path(&e, "scores.jsonl", jsl, sizeof jsl);
    zt_cli_path(&e, "t.safetensors", te, sizeof te);
    zt_cli_path(&e, "i.safetensors", ie, sizeof ie);
    CHECK(write_tokenizer(tok, 0, 998, 999) == 0, "cannot write %s", tok);
    CHECK(!write_text(labels, "# zero-shot labels\ncat\n\ndog\ta photo of a dog\n  \nbird, small\n"), "labels");
    int rc = zt_cli_run(&e, "clip-score --model %s --tokenizer %s --images %s --labels %s --out %s --batch 1", model, tok, imgs,
                 labels, csv);
    CHECK(rc == 0, "clip-score csv exit %d: %s", rc, e.err);
    rc = zt_cli_run(&e, "clip-score --model %s --tokenizer %s --images %s %s --labels %s --out %s", model, tok, a, b, labels, jsl);
    CHECK(rc == 0, "clip-score jsonl exit %d: %s", rc, e.err);
    rc = zt_cli_run(&e, "clip-encode --model %s --tokenizer %s --text cat 'a photo of a dog' 'bird, small' --out %s", model, tok, te);
    CHECK(rc == 0, "clip-encode text exit %d: %s", rc, e.err);
    rc = zt_cli_run(&e, "clip-encode --model %s --image %s %s --out %s", model, a, b, ie);
    CHECK(rc == 0, "clip-encode image exit %d: %s", rc, e.err);
    int64_t nt, ni, E, E2;
    float *tv = read_embeds(te, "text_embeds", &nt, &E, NULL, 0, NULL), *iv = read_embeds(ie, "image_embeds", &ni, &E2, NULL, 0, NULL);
    zs_clip *m;
    CHECK_OK(zs_clip_load(&m, model, NULL));
    double scale = exp((double)m->logit_scale);
    zs_clip_free(m);
    score_row rc_rows[16], rj_rows[16];
    int ncsv = read_csv(csv, rc_rows, 16), njs = read_jsonl(jsl, rj_rows, 16);
    int ok = tv && iv && nt == 3 && ni == 2 && E == E2;
    const char *names[3] = {"cat", "dog", "\"bird, small\""}, *jnames[3] = {"cat", "dog", "bird, small"};
    ok = ok && ncsv == 6 && njs == 6;
    double worst = 0;
    for (int r = 0; ok && r < 6; r++) {
        int i = r / 3, j = r % 3;
        double dot = 0;
        for (int64_t k = 0; k < E; k++) dot += (double)iv[i * E + k] * tv[j * E + k];
        for (int f = 0; f < 2; f++) {
            const score_row *s = f ? &rj_rows[r] : &rc_rows[r];
            const char *nm = f ? jnames[j] : names[j];
            ok &= !strcmp(s->label, nm) && strstr(s->image, i ? "b.png" : "a.png") != NULL;
            ok &= s->cos >= -1 && s->cos <= 1 && fabs(s->logit - scale * s->cos) <= 1e-5 * scale;
            if (fabs(s->cos - dot) > worst) worst = fabs(s->cos - dot);
        }
        if (!ok) zt_note(__FILE__, __LINE__, "row %d: %s / %s cos %g logit %g (dot %g, scale %g)", r, rc_rows[r].image,
                         rc_rows[r].label, rc_rows[r].cos, rc_rows[r].logit, dot, scale);
    }
    free(tv), free(iv);
    zt_cli_close(&e);
    CHECK(ok, "rows: csv %d, jsonl %d (expected 6 each), or values off", ncsv, njs);
    CHECK(worst < 1e-5, "cos differs from clip-encode's embeddings by %.3e", worst);
    return ZT_PASS;
}

TEST(cli_clip_score_errors) {
    OPEN_ENV(e);
    char model[512], a[512], tok[512], labels[512], dup[512], bad[512], out[512], empty[512];
    zt_fixture_path("clip/openclip-vit", model, sizeof model);
    zt_fixture_path("clip/images/a.png", a, sizeof a);
    zt_cli_path(&e, "tok_oc", tok, sizeof tok);
    zt_cli_path(&e, "labels.txt", labels, sizeof labels);
    zt_cli_path(&e, "dup_labels.txt", dup, sizeof dup);
    zt_cli_path(&e, "empty_name.txt", empty, sizeof empty);
    zt_cli_path(&e, "broken.png", bad, sizeof bad);
    zt_cli_path(&e, "out.csv", out, sizeof out);
    CHECK(write_tokenizer(tok, 0, 998, 999) == 0, "cannot write %s", tok);
    CHECK(!write_text(labels, "cat\ndog\n"), "labels");
    CHECK(!write_text(dup, "# x\ncat\ndog\ncat\ta cat\n"), "labels");
    CHECK(!write_text(empty, "cat\n\tno name\n"), "labels");
    CHECK(!write_text(bad, "\x89PNG\r\n\x1a\nthis is not a png"), "bad png");
    // missing model
    int rc = zt_cli_run(&e, "clip-score --model %s/nope --tokenizer %s --images %s --labels %s --out %s", e.dir, tok, a, labels, out);
    CHECK(rc == 1 && strstr(e.err, "/nope") && !exists(out), "missing model: exit %d: %s", rc, e.err);
    // duplicate label: names the file and line
    rc = zt_cli_run(&e, "clip-score --model %s --tokenizer %s --images %s --labels %s --out %s", model, tok, a, dup, out);
    CHECK(rc == 1 && strstr(e.err, "dup_labels.txt:4") && strstr(e.err, "duplicate label 'cat' (first on line 2)") && !exists(out),
          "duplicate label: exit %d: %s", rc, e.err);
    rc = zt_cli_run(&e, "clip-score --model %s --tokenizer %s --images %s --labels %s --out %s", model, tok, a, empty, out);
    CHECK(rc == 1 && strstr(e.err, "empty_name.txt:2: empty label name") && !exists(out), "empty name: exit %d: %s", rc, e.err);
    // unreadable image after a good one (the first batch is written): no output remains, an
    // existing output file is untouched
    CHECK(!write_text(out, "old\n"), "out");
    rc = zt_cli_run(&e, "clip-score --model %s --tokenizer %s --images %s %s --labels %s --out %s --batch 1", model, tok, a, bad,
             labels, out);
    FILE *f = fopen(out, "r");
    char got[16] = {0};
    if (f) {
        if (!fgets(got, sizeof got, f)) got[0] = 0;
        fclose(f);
    }
    CHECK(rc == 1 && strstr(e.err, "broken.png") && !strcmp(got, "old\n"), "bad image: exit %d, out '%s': %s", rc, got, e.err);
    unlink(out);
    // missing image file, bad --out extension, built-in vocabulary on a 1000-token model
    rc = zt_cli_run(&e, "clip-score --model %s --tokenizer %s --images %s/none.png --labels %s --out %s", model, tok, e.dir, labels, out);
    CHECK(rc == 1 && strstr(e.err, "none.png") && !exists(out), "missing image: exit %d: %s", rc, e.err);
    rc = zt_cli_run(&e, "clip-score --model %s --images %s --labels %s --out %s/x.txt", model, a, labels, e.dir);
    CHECK(rc == 2, "bad extension: exit %d: %s", rc, e.err);
    rc = zt_cli_run(&e, "clip-score --model %s --images %s --labels %s --out %s", model, a, labels, out);
    CHECK(rc == 1 && strstr(e.err, "outside the model's vocabulary") && !exists(out), "builtin vocab: exit %d: %s", rc, e.err);
    // nothing but the inputs is left in the folder (no temp files)
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -q tmp", e.dir);
    int leftovers = system(cmd) == 0;
    zt_cli_close(&e);
    CHECK(!leftovers, "a temporary file was left behind");
    return ZT_PASS;
}
