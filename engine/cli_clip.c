// zsmlc clip-encode / clip-score: CLIP embeddings and zero-shot similarities from a model
// folder or file (models/clip.h layouts).
//
// Tokenizer (unless --tokenizer FILE_OR_DIR): open_clip folders, bare OpenAI files and SD 2.x
// single files use the built-in OpenAI vocabulary with open_clip's cleaning (open_clip.tokenize).
// transformers / diffusers models (and SD 1.x single files) use the first Hugging Face
// tokenizer folder (vocab.json + merges.txt) among: the diffusers pipeline's tokenizer/, the
// model folder itself, ../tokenizer of a pipeline's text_encoder/ folder; else the built-in
// vocabulary with transformers' CLIPTokenizer rules (the vocabulary every CLIP release uses).
// Rows are padded / truncated to the text tower's context length (positions). A token id the
// model has no row for (a tokenizer that does not fit the model) is an error naming the text.
//
// Images: open_clip folders follow open_clip_config.json's preprocess_cfg; transformers folders
// their preprocessor_config.json when present; otherwise OpenAI's CLIP defaults (bicubic,
// shortest side, centre crop; crop offset as the model's library rounds it) at the tower's size.
#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "engine/backend.h"
#include "engine/cli.h"
#include "engine/image.h"
#include "engine/log.h"
#include "models/clip.h"
#include "models/clip_preprocess.h"
#include "models/clip_tokenizer.h"
#include "weights/safetensors.h"

typedef struct {
    const char *cmd, *model, *tokenizer;
    zs_device dev;
    int dev_index;
    zs_dtype dt;
    int batch;
    zs_clip *m;
    zs_tokenizer *tok;
    char tok_desc[12800];
    int ctx;
    zs_clip_prep prep;
    char prep_desc[4700];
    void *dev_buf;  // device staging of an image batch
    size_t dev_bytes;
} clip_run;

typedef struct { char **v; int n, cap; } strvec;

static zs_status sv_push(strvec *s, const char *x) {
    if (s->n == s->cap) {
        int c = s->cap ? s->cap * 2 : 16;
        char **v = realloc(s->v, (size_t)c * sizeof *v);
        if (!v) return ZS_ERR(ZS_ENOMEM, "out of memory");
        s->v = v, s->cap = c;
    }
    if (!(s->v[s->n] = strdup(x))) return ZS_ERR(ZS_ENOMEM, "out of memory");
    s->n++;
    return ZS_OK;
}
static void sv_free(strvec *s) {
    for (int i = 0; i < s->n; i++) free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}
static int file_in(const char *dir, const char *name, char *buf, size_t n) {
    struct stat s;
    int k = snprintf(buf, n, "%s/%s", dir, name);
    return k > 0 && (size_t)k < n && stat(buf, &s) == 0 && S_ISREG(s.st_mode);
}
static int hf_tok_dir(const char *dir) {
    char b[4096];
    return is_dir(dir) && file_in(dir, "vocab.json", b, sizeof b) && file_in(dir, "merges.txt", b, sizeof b);
}

// ---- model, tokenizer, preprocessing ------------------------------------------------------
static zs_status pick_tokenizer(clip_run *r) {
    const zs_clip *m = r->m;
    if (r->tokenizer) {
        ZS_TRY(zs_tok_load(r->tokenizer, &r->tok));
        snprintf(r->tok_desc, sizeof r->tok_desc, "%s (--tokenizer, %s rules)", r->tokenizer,
                 zs_tok_mode_of(r->tok) == ZS_TOK_HF ? "transformers" : "open_clip");
        return ZS_OK;
    }
    if (m->format == ZS_CLIP_FMT_HF) {
        char cand[3][4096];
        int nc = 0;
        if (is_dir(r->model)) {
            snprintf(cand[nc++], sizeof cand[0], "%s/tokenizer", r->model);
            snprintf(cand[nc++], sizeof cand[0], "%s", r->model);
            char idx[4096];
            if (file_in(r->model, "../model_index.json", idx, sizeof idx))
                snprintf(cand[nc++], sizeof cand[0], "%s/../tokenizer", r->model);
        }
        for (int i = 0; i < nc; i++)
            if (hf_tok_dir(cand[i])) {
                ZS_TRY(zs_tok_load_hf_dir(cand[i], &r->tok));
                snprintf(r->tok_desc, sizeof r->tok_desc, "%s (Hugging Face folder, transformers rules)", cand[i]);
                return ZS_OK;
            }
        ZS_TRY(zs_tok_load_builtin(&r->tok));
        zs_tok_set_mode(r->tok, ZS_TOK_HF);
        snprintf(r->tok_desc, sizeof r->tok_desc,
                 "built-in OpenAI vocabulary, transformers rules (no vocab.json + merges.txt next to the model)");
        return ZS_OK;
    }
    ZS_TRY(zs_tok_load_builtin(&r->tok));
    snprintf(r->tok_desc, sizeof r->tok_desc, "built-in OpenAI vocabulary, open_clip rules");
    return ZS_OK;
}

static zs_status pick_prep(clip_run *r) {
    int ch, ih, iw;
    zs_clip_image_shape(r->m, &ch, &ih, &iw);
    char p[4096];
    if (is_dir(r->model) && file_in(r->model, "open_clip_config.json", p, sizeof p)) {
        ZS_TRY(zs_clip_prep_from_openclip(&r->prep, p, ih, iw));
        snprintf(r->prep_desc, sizeof r->prep_desc, "open_clip preprocess_cfg of %s", p);
    } else if (is_dir(r->model) && file_in(r->model, "preprocessor_config.json", p, sizeof p)) {
        ZS_TRY(zs_clip_prep_from_hf(&r->prep, p));
        if (r->prep.out_h != ih || r->prep.out_w != iw)
            return ZS_ERR(ZS_EFORMAT, "%s: crop_size %dx%d differs from the vision tower's image size %dx%d", p,
                          r->prep.out_h, r->prep.out_w, ih, iw);
        snprintf(r->prep_desc, sizeof r->prep_desc, "CLIPImageProcessor of %s", p);
    } else {
        zs_clip_prep_default(&r->prep, ih);
        r->prep.out_w = iw;
        if (r->m->format == ZS_CLIP_FMT_HF) r->prep.style = ZS_PREP_HF;
        snprintf(r->prep_desc, sizeof r->prep_desc, "OpenAI CLIP defaults (%s style, no preprocessing config found)",
                 r->prep.style == ZS_PREP_HF ? "transformers" : "open_clip");
    }
    snprintf(r->prep_desc + strlen(r->prep_desc), sizeof r->prep_desc - strlen(r->prep_desc), ", %dx%d", r->prep.out_h,
             r->prep.out_w);
    return ZS_OK;
}

static void report_model(const clip_run *r) {
    const zs_clip *m = r->m;
    fprintf(stderr, "zsmlc %s: %s: %s", r->cmd, r->model, m->source);
    if (m->towers & ZS_CLIP_TEXT)
        fprintf(stderr, "; text %d x %d, context %d, vocabulary %d", m->text.width, m->text.layers, m->text.n_pos,
                m->text.vocab);
    if ((m->towers & ZS_CLIP_VISION) && m->vision_resnet)
        fprintf(stderr, "; vision ModifiedResNet layers [%d, %d, %d, %d] width %d, %dx%d", m->resnet.layers[0],
                m->resnet.layers[1], m->resnet.layers[2], m->resnet.layers[3], m->resnet.width, m->resnet.image,
                m->resnet.image);
    else if (m->towers & ZS_CLIP_VISION)
        fprintf(stderr, "; vision ViT %d x %d, %dx%d, patch %d", m->vision.width, m->vision.layers, m->vision.image_h,
                m->vision.image_w, m->vision.patch);
    fprintf(stderr, "; %s %s\n", zs_device_name(r->dev), zs_dtype_name(r->dt));
    if (m->notes[0]) fprintf(stderr, "zsmlc %s: notes: %s\n", r->cmd, m->notes);
    // Tensors of a tower this command does not need are counted apart from truly unused ones.
    int skipped = 0, shown = 0, plen = (int)strlen(m->prefix);
    for (int i = 0; i < m->n_unused; i++) {
        const char *u = m->unused[i];
        zs_clip_tower tw = zs_clip_name_tower(m->format, strncmp(u, m->prefix, (size_t)plen) ? u : u + plen);
        if ((tw == ZS_TOWER_TEXT && !(m->towers & ZS_CLIP_TEXT)) || (tw == ZS_TOWER_VISION && !(m->towers & ZS_CLIP_VISION)))
            skipped++;
    }
    if (skipped)
        fprintf(stderr, "zsmlc %s: %d tensor%s of the %s tower not loaded (not needed)\n", r->cmd, skipped,
                skipped == 1 ? "" : "s", (m->towers & ZS_CLIP_TEXT) ? "vision" : "text");
    if (m->n_unused > skipped) {
        int n = m->n_unused - skipped;
        fprintf(stderr, "zsmlc %s: %d unused tensor%s:", r->cmd, n, n == 1 ? "" : "s");
        for (int i = 0; i < m->n_unused && shown < 4; i++) {
            const char *u = m->unused[i];
            zs_clip_tower tw = zs_clip_name_tower(m->format, strncmp(u, m->prefix, (size_t)plen) ? u : u + plen);
            if ((tw == ZS_TOWER_TEXT && !(m->towers & ZS_CLIP_TEXT)) || (tw == ZS_TOWER_VISION && !(m->towers & ZS_CLIP_VISION)))
                continue;
            fprintf(stderr, "%s %s", shown++ ? "," : "", u);
        }
        fprintf(stderr, "%s\n", n > 4 ? ", ..." : "");
    }
    if (r->tok) fprintf(stderr, "zsmlc %s: tokenizer: %s; context %d\n", r->cmd, r->tok_desc, r->ctx);
    if (m->towers & ZS_CLIP_VISION) fprintf(stderr, "zsmlc %s: preprocessing: %s\n", r->cmd, r->prep_desc);
}

static zs_status open_model(clip_run *r, unsigned towers) {
    if (r->dev == ZS_CUDA) ZS_TRY(zs_cuda_init(r->dev_index));
    zs_clip_opts o = zs_clip_default_opts();
    o.device = r->dev, o.dtype = r->dt, o.towers = towers;
    ZS_TRY(zs_clip_load(&r->m, r->model, &o));
    if (towers & ZS_CLIP_TEXT) {
        r->ctx = r->m->text.n_pos;
        zs_status s = pick_tokenizer(r);
        if (s) return zs_fail_context(s, "tokenizer for %s", r->model);
    }
    if (towers & ZS_CLIP_VISION) ZS_TRY(pick_prep(r));
    report_model(r);
    const zs_clip_text_cfg *tc = &r->m->text;
    if ((towers & ZS_CLIP_TEXT) && tc->pool == ZS_POOL_EOS && zs_tok_eot(r->tok) != tc->eos_id)
        fprintf(stderr, "zsmlc %s: warning: the tokenizer's end token is %d but the model pools at eos_token_id %d\n",
                r->cmd, zs_tok_eot(r->tok), tc->eos_id);
    return ZS_OK;
}

static void close_run(clip_run *r) {
    zs_free(r->dev_buf, r->dev);
    zs_tok_free(r->tok);
    zs_clip_free(r->m);
}

static int64_t text_dim(const zs_clip *m) { return m->text.embed ? m->text.embed : m->text.width; }
static int64_t image_dim(const zs_clip *m) { return zs_clip_image_embed(m); }

// Normalised embeddings of texts[0..n) into out [n, E]; batches of r->batch.
static zs_status encode_texts(clip_run *r, char *const *texts, int n, float *out) {
    zs_clip_text *t = &r->m->t;
    int64_t E = text_dim(r->m), L = r->ctx;
    int32_t *ids = malloc((size_t)r->batch * (size_t)L * sizeof *ids);
    float *feat = malloc((size_t)r->batch * (size_t)E * sizeof *feat);
    zs_status s = ids && feat ? ZS_OK : ZS_ERR(ZS_ENOMEM, "out of memory");
    for (int b0 = 0; b0 < n && !s; b0 += r->batch) {
        int nb = n - b0 < r->batch ? n - b0 : r->batch;
        for (int i = 0; i < nb && !s; i++) {
            const char *txt = texts[b0 + i];
            int32_t *row = ids + (int64_t)i * L, *raw = NULL;
            int nraw = 0;
            s = zs_tok_encode(r->tok, txt, strlen(txt), &raw, &nraw);
            free(raw);
            if (!s && nraw > L)
                fprintf(stderr, "zsmlc %s: warning: text %d \"%s\" is %d tokens, truncated to %lld\n", r->cmd, b0 + i + 1, txt, nraw,
                        (long long)L);
            if (!s) s = zs_tok_encode_padded(r->tok, txt, strlen(txt), (int)L, row, NULL);
            for (int64_t k = 0; k < L && !s; k++)
                if (row[k] < 0 || row[k] >= r->m->text.vocab)
                    s = ZS_ERR(ZS_EINVAL,
                               "text %d \"%s\": token id %d is outside the model's vocabulary of %d: the tokenizer (%s) "
                               "does not fit this model; give one with --tokenizer",
                               b0 + i + 1, txt, row[k], r->m->text.vocab, r->tok_desc);
        }
        if (!s) s = zs_clip_text_setup(t, nb, L, 0);
        zs_clip_text_in in = {ids, NULL, 0, 1};
        if (!s) s = zs_clip_text_fwd(t, &in);
        int64_t sh[2] = {nb, E};
        zs_tensor h = zs_tensor_make(feat, ZS_F32, ZS_CPU, 2, sh);
        if (!s) s = zs_tensor_copy(&h, &t->a.features);
        if (!s) zs_l2norm_fwd(out + (int64_t)b0 * E, feat, nb, E);
    }
    free(ids);
    free(feat);
    return s;
}

// Normalised embeddings of n <= r->batch images into out [n, E] (ViT or ModifiedResNet).
static zs_status encode_images(clip_run *r, char *const *paths, int n, float *out) {
    int ch, ih, iw;
    zs_clip_image_shape(r->m, &ch, &ih, &iw);
    int64_t E = image_dim(r->m), chw = (int64_t)ch * ih * iw;
    if (ch != 3) return ZS_ERR(ZS_EUNSUPPORTED, "%s: the vision tower takes %d channels, not RGB", r->model, ch);
    float *px = malloc((size_t)n * (size_t)chw * sizeof *px), *feat = malloc((size_t)n * (size_t)E * sizeof *feat);
    zs_status s = px && feat ? ZS_OK : ZS_ERR(ZS_ENOMEM, "out of memory");
    for (int i = 0; i < n && !s; i++) {
        zs_image img = {0};
        s = zs_image_load(paths[i], &img);
        if (!s) s = zs_clip_preprocess(&r->prep, &img, px + i * chw);
        if (s) s = zs_fail_context(s, "%s", paths[i]);
        zs_image_free(&img);
    }
    int64_t sh[4] = {n, ch, ih, iw}, fs[2] = {n, E};
    zs_tensor host = zs_tensor_make(px, ZS_F32, ZS_CPU, 4, sh), x = host;
    if (!s && (r->dev != ZS_CPU || r->dt != ZS_F32)) {
        x = zs_tensor_make(NULL, r->dt, r->dev, 4, sh);
        size_t need = zs_nbytes(&x);
        if (need > r->dev_bytes) {
            zs_free(r->dev_buf, r->dev);
            r->dev_buf = NULL, r->dev_bytes = 0;
            s = zs_malloc(&r->dev_buf, need, r->dev, "image batch");
            if (!s) r->dev_bytes = need;
        }
        x.data = r->dev_buf;
        if (!s) s = zs_tensor_copy(&x, &host);
    }
    if (!s) s = zs_clip_image_setup(r->m, n, 0);
    if (!s) s = zs_clip_image_fwd(r->m, &x);
    const zs_tensor *f = s ? NULL : zs_clip_image_features(r->m);
    if (!s && !f) s = ZS_ERR(ZS_EINVAL, "%s: no image features after the forward", r->model);
    zs_tensor h = zs_tensor_make(feat, ZS_F32, ZS_CPU, 2, fs);
    if (!s) s = zs_tensor_copy(&h, f);
    if (!s) zs_l2norm_fwd(out, feat, n, E);
    free(px);
    free(feat);
    return s;
}

// ---- options -------------------------------------------------------------------------------
typedef struct {
    const char *model, *out, *labels, *tokenizer, *device, *dtype;
    int batch;
    strvec texts, images;
} cli_opts;

// Parses the options both commands share; list options (--text, --image, --images) take every
// argument up to the next one starting with "--". Returns 0, or 2 on a usage error.
static int parse(const char *cmd, int argc, char **argv, cli_opts *o, const char *list1, const char *list2) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        strvec *lst = (list1 && !strcmp(a, list1)) ? &o->texts : (list2 && !strcmp(a, list2)) ? &o->images : NULL;
        if (lst) {
            int k = 0;
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) {
                if (sv_push(lst, argv[++i])) return 1;
                k++;
            }
            if (!k) {
                fprintf(stderr, "zsmlc %s: %s needs at least one value\n", cmd, a);
                return 2;
            }
        } else if (!strcmp(a, "--model") && more) o->model = argv[++i];
        else if (!strcmp(a, "--out") && more) o->out = argv[++i];
        else if (!strcmp(a, "--labels") && more && !list1) o->labels = argv[++i];
        else if (!strcmp(a, "--tokenizer") && more) o->tokenizer = argv[++i];
        else if (!strcmp(a, "--device") && more) o->device = argv[++i];
        else if (!strcmp(a, "--dtype") && more) o->dtype = argv[++i];
        else if (!strcmp(a, "--batch") && more) {
            char *end;
            long b = strtol(argv[++i], &end, 10);
            if (*end || b < 1 || b > 1 << 20) {
                fprintf(stderr, "zsmlc %s: --batch must be a positive integer, not '%s'\n", cmd, argv[i]);
                return 2;
            }
            o->batch = (int)b;
        } else {
            fprintf(stderr, "zsmlc %s: unknown or incomplete option '%s'\n", cmd, a);
            return 2;
        }
    }
    return 0;
}

// Device, dtype and batch into r; 0 or 2 (usage).
static int setup_run(const char *cmd, const cli_opts *o, clip_run *r) {
    memset(r, 0, sizeof *r);
    r->cmd = cmd, r->model = o->model, r->tokenizer = o->tokenizer;
    r->batch = o->batch ? o->batch : 16;
    const char *why = zs_cli_device_dtype(o->device, o->dtype, ZS_F32, &r->dev, &r->dev_index, &r->dt);
    if (why) fprintf(stderr, "zsmlc %s: %s\n", cmd, why);
    return why ? 2 : 0;
}

static char *json_array(const strvec *v) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < v->n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(v->v[i]));
    char *s = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    return s;
}

// ---- clip-encode ---------------------------------------------------------------------------
static int encode_usage(void) {
    fprintf(stderr,
            "usage: zsmlc clip-encode --model PATH (--text TEXT... | --image FILE...) --out FILE.safetensors\n"
            "                         [--device cpu|cuda[:N]] [--dtype f32|bf16|f16] [--batch N] [--tokenizer PATH]\n"
            "  writes L2-normalised embeddings: text_embeds or image_embeds [N, E] F32, with metadata\n"
            "  (model, source, texts / images as a JSON array, tokenizer or preprocessing)\n");
    return 2;
}

int zs_cmd_clip_encode(int argc, char **argv) {
    const char *cmd = "clip-encode";
    cli_opts o = {0};
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return encode_usage(), 0;
    int rc = parse(cmd, argc, argv, &o, "--text", "--image");
    if (!rc && (!o.model || !o.out || (o.texts.n > 0) == (o.images.n > 0))) {
        fprintf(stderr, "zsmlc %s: needs --model, --out and one of --text / --image\n", cmd);
        rc = 2;
    }
    clip_run r;
    if (!rc) rc = setup_run(cmd, &o, &r);
    if (rc) {
        sv_free(&o.texts), sv_free(&o.images);
        return rc == 2 ? encode_usage() : zs_cli_fail(cmd, ZS_ENOMEM);
    }
    int text = o.texts.n > 0;
    const strvec *items = text ? &o.texts : &o.images;
    float *emb = NULL;
    char *list = NULL;
    zs_st_writer *w = NULL;
    zs_status s = open_model(&r, text ? ZS_CLIP_TEXT : ZS_CLIP_VISION);
    int64_t E = 0;
    if (!s) {
        E = text ? text_dim(r.m) : image_dim(r.m);
        emb = malloc((size_t)items->n * (size_t)E * sizeof *emb);
        if (!emb) s = ZS_ERR(ZS_ENOMEM, "out of memory");
    }
    if (!s && text) s = encode_texts(&r, items->v, items->n, emb);
    for (int b0 = 0; !s && !text && b0 < items->n; b0 += r.batch) {
        int nb = items->n - b0 < r.batch ? items->n - b0 : r.batch;
        s = encode_images(&r, items->v + b0, nb, emb + (int64_t)b0 * E);
    }
    if (!s) s = zs_st_writer_new(&w);
    if (!s && !(list = json_array(items))) s = ZS_ERR(ZS_ENOMEM, "out of memory");
    char num[32];
    snprintf(num, sizeof num, "%d", r.ctx);
    if (!s) s = zs_st_writer_meta(w, "format", "pt");
    if (!s) s = zs_st_writer_meta(w, "zsmlc", "clip-encode " ZSMLC_VERSION);
    if (!s) s = zs_st_writer_meta(w, "model", r.model);
    if (!s) s = zs_st_writer_meta(w, "source", r.m->source);
    if (!s) s = zs_st_writer_meta(w, text ? "texts" : "images", list);
    if (!s && text) s = zs_st_writer_meta(w, "tokenizer", r.tok_desc);
    if (!s && text) s = zs_st_writer_meta(w, "context_length", num);
    if (!s && !text) s = zs_st_writer_meta(w, "preprocessing", r.prep_desc);
    if (!s && r.m->notes[0]) s = zs_st_writer_meta(w, "notes", r.m->notes);
    int64_t sh[2] = {items->n, E};
    zs_tensor t = zs_tensor_make(emb, ZS_F32, ZS_CPU, 2, sh);
    if (!s) s = zs_st_writer_add(w, text ? "text_embeds" : "image_embeds", &t, ZS_F32);
    if (!s) s = zs_st_writer_save(w, o.out);
    if (!s) fprintf(stderr, "zsmlc %s: wrote %s: %s [%d, %lld]\n", cmd, o.out, text ? "text_embeds" : "image_embeds",
                    items->n, (long long)E);
    zs_st_writer_free(w);
    free(list);
    free(emb);
    close_run(&r);
    sv_free(&o.texts), sv_free(&o.images);
    return s ? zs_cli_fail(cmd, s) : 0;
}

// ---- clip-score ----------------------------------------------------------------------------
// Labels file: "name" or "name<TAB>text" per line; blank lines and lines starting with '#'
// skipped; names must be unique and non-empty.
static char *trim(char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = 0;
    return s;
}

static zs_status read_labels(const char *path, strvec *names, strvec *texts) {
    FILE *f = fopen(path, "r");
    if (!f) return ZS_ERR(ZS_EIO, "labels file %s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, *first = NULL;
    zs_status s = ZS_OK;
    for (ssize_t len; !s && (len = getline(&line, &cap, f)) >= 0;) {
        lineno++;
        if ((size_t)len != strlen(line)) {
            s = ZS_ERR(ZS_EFORMAT, "%s:%d: NUL byte in the line", path, lineno);
            break;
        }
        line[strcspn(line, "\r\n")] = 0;
        char *l = line;
        if (l[0] == '#' || !*trim(l)) continue;
        char *tab = strchr(l, '\t'), *name = l, *text = l;
        if (tab) *tab = 0, text = trim(tab + 1);
        name = trim(name);
        if (!*name) { s = ZS_ERR(ZS_EFORMAT, "%s:%d: empty label name", path, lineno); break; }
        if (tab && !*text) { s = ZS_ERR(ZS_EFORMAT, "%s:%d: label '%s' has an empty text after the tab", path, lineno, name); break; }
        for (int i = 0; i < names->n && !s; i++)
            if (!strcmp(names->v[i], name))
                s = ZS_ERR(ZS_EFORMAT, "%s:%d: duplicate label '%s' (first on line %d)", path, lineno, name, first[i]);
        if (s) break;
        int *nf = realloc(first, (size_t)(names->n + 1) * sizeof *nf);
        if (!nf) { s = ZS_ERR(ZS_ENOMEM, "out of memory"); break; }
        first = nf;
        first[names->n] = lineno;
        s = sv_push(names, name);
        if (!s) s = sv_push(texts, tab ? text : name);
    }
    if (!s && ferror(f)) s = ZS_ERR(ZS_EIO, "labels file %s: read error", path);
    if (!s && !names->n) s = ZS_ERR(ZS_EFORMAT, "labels file %s: no labels", path);
    free(line);
    free(first);
    fclose(f);
    return s;
}

static int image_ext(const char *name) {
    const char *d = strrchr(name, '.');
    return d && (!strcasecmp(d, ".png") || !strcasecmp(d, ".jpg") || !strcasecmp(d, ".jpeg"));
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Every argument: a folder gives its .png/.jpg/.jpeg files (sorted), a file itself.
static zs_status collect_images(const strvec *args, strvec *out) {
    for (int i = 0; i < args->n; i++) {
        const char *a = args->v[i];
        struct stat sb;
        if (stat(a, &sb) != 0) return ZS_ERR(ZS_EIO, "image %s: %s", a, strerror(errno));
        if (!S_ISDIR(sb.st_mode)) {
            ZS_TRY(sv_push(out, a));
            continue;
        }
        DIR *d = opendir(a);
        if (!d) return ZS_ERR(ZS_EIO, "image folder %s: %s", a, strerror(errno));
        int before = out->n;
        zs_status s = ZS_OK;
        for (struct dirent *de; !s && (de = readdir(d));) {
            if (de->d_name[0] == '.' || !image_ext(de->d_name)) continue;
            size_t n = strlen(a) + strlen(de->d_name) + 2;
            char *p = malloc(n);
            if (!p) { s = ZS_ERR(ZS_ENOMEM, "out of memory"); break; }
            snprintf(p, n, "%s%s%s", a, a[strlen(a) - 1] == '/' ? "" : "/", de->d_name);
            if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) s = sv_push(out, p);
            free(p);
        }
        closedir(d);
        ZS_TRY(s);
        if (out->n == before) return ZS_ERR(ZS_EINVAL, "image folder %s: no .png, .jpg or .jpeg files", a);
        qsort(out->v + before, (size_t)(out->n - before), sizeof *out->v, cmp_str);
    }
    return ZS_OK;
}

static void csv_field(FILE *f, const char *s) {
    if (!s[strcspn(s, ",\"\r\n")]) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static int score_usage(void) {
    fprintf(stderr,
            "usage: zsmlc clip-score --model PATH --images DIR_OR_FILE... --labels FILE --out FILE.csv|FILE.jsonl\n"
            "                        [--batch N] [--device cpu|cuda[:N]] [--dtype f32|bf16|f16] [--tokenizer PATH]\n"
            "  per image and label: cosine similarity and logit = exp(logit_scale) * cos\n"
            "  labels: one per line, 'name' or 'name<TAB>text to encode'; '#' lines and blank lines skipped\n"
            "  a folder gives its .png/.jpg/.jpeg files in name order; the output is written atomically\n");
    return 2;
}

int zs_cmd_clip_score(int argc, char **argv) {
    const char *cmd = "clip-score";
    cli_opts o = {0};
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return score_usage(), 0;
    int rc = parse(cmd, argc, argv, &o, NULL, "--images"), jsonl = 0;
    if (!rc && (!o.model || !o.out || !o.labels || !o.images.n)) {
        fprintf(stderr, "zsmlc %s: needs --model, --images, --labels and --out\n", cmd);
        rc = 2;
    }
    if (!rc) {
        const char *d = strrchr(o.out, '.');
        if (d && !strcasecmp(d, ".jsonl")) jsonl = 1;
        else if (!d || strcasecmp(d, ".csv")) {
            fprintf(stderr, "zsmlc %s: --out must end in .csv or .jsonl: %s\n", cmd, o.out);
            rc = 2;
        }
    }
    clip_run r;
    if (!rc) rc = setup_run(cmd, &o, &r);
    if (rc) {
        sv_free(&o.texts), sv_free(&o.images);
        return rc == 2 ? score_usage() : zs_cli_fail(cmd, ZS_ENOMEM);
    }
    strvec names = {0}, texts = {0}, images = {0};
    float *tn = NULL, *in = NULL;
    FILE *f = NULL;
    char *tmp = NULL;
    // Inputs first (cheap, and their errors name the file), then the model.
    zs_status s = read_labels(o.labels, &names, &texts);
    if (!s) s = collect_images(&o.images, &images);
    if (!s) s = open_model(&r, ZS_CLIP_TEXT | ZS_CLIP_VISION);
    int64_t E = s ? 0 : text_dim(r.m);
    if (!s && E != image_dim(r.m)) s = ZS_ERR(ZS_EFORMAT, "%s: text and image embeddings differ in width", r.model);
    if (!s) {
        tn = malloc((size_t)names.n * (size_t)E * sizeof *tn);
        in = malloc((size_t)r.batch * (size_t)E * sizeof *in);
        size_t n = strlen(o.out) + 16;
        tmp = malloc(n);
        if (!tn || !in || !tmp) s = ZS_ERR(ZS_ENOMEM, "out of memory");
        else snprintf(tmp, n, "%s.tmp.XXXXXX", o.out);
    }
    double scale = 100;
    if (!s && r.m->has_logit_scale) scale = exp((double)r.m->logit_scale);
    else if (!s) fprintf(stderr, "zsmlc %s: no logit_scale in the model: logits use 100\n", cmd);
    if (!s) s = encode_texts(&r, texts.v, texts.n, tn);
    if (!s) {
        int fd = mkstemp(tmp);
        if (fd < 0) {
            s = ZS_ERR(ZS_EIO, "%s: cannot create a temporary file next to it: %s", o.out, strerror(errno));
            free(tmp), tmp = NULL;
        } else {
            mode_t um = umask(0);
            umask(um);
            if (fchmod(fd, 0666 & ~um) != 0 || !(f = fdopen(fd, "w"))) {
                s = ZS_ERR(ZS_EIO, "%s: %s", tmp, strerror(errno));
                close(fd);
            }
        }
    }
    if (!s && !jsonl) fputs("image,label,cos,logit\n", f);
    zs_progress pg;
    int show = !s && images.n > r.batch;
    if (show) zs_progress_begin(&pg, "images", images.n);
    for (int b0 = 0; !s && b0 < images.n; b0 += r.batch) {
        int nb = images.n - b0 < r.batch ? images.n - b0 : r.batch;
        s = encode_images(&r, images.v + b0, nb, in);
        for (int i = 0; !s && i < nb; i++)
            for (int j = 0; j < names.n; j++) {
                double c = 0;
                for (int64_t k = 0; k < E; k++) c += (double)in[i * E + k] * tn[j * E + k];
                const char *img = images.v[b0 + i];
                if (jsonl) {
                    fputs("{\"image\": ", f);
                    zs_json_write_string(f, img);
                    fputs(", \"label\": ", f);
                    zs_json_write_string(f, names.v[j]);
                    fprintf(f, ", \"cos\": %.8g, \"logit\": %.8g}\n", (float)c, (float)(scale * c));
                } else {
                    csv_field(f, img);
                    fputc(',', f);
                    csv_field(f, names.v[j]);
                    fprintf(f, ",%.8g,%.8g\n", (float)c, (float)(scale * c));
                }
            }
        if (show && !s) zs_progress_step(&pg, nb, NULL);
    }
    if (show) zs_progress_end(&pg);
    if (f) {
        if (!s && (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0))
            s = ZS_ERR(ZS_EIO, "%s: write failed: %s", tmp, strerror(errno));
        if (fclose(f) != 0 && !s) s = ZS_ERR(ZS_EIO, "%s: write failed: %s", tmp, strerror(errno));
        if (!s && rename(tmp, o.out) != 0) s = ZS_ERR(ZS_EIO, "%s: cannot rename to %s: %s", tmp, o.out, strerror(errno));
        if (s) unlink(tmp);
    }
    if (!s)
        fprintf(stderr, "zsmlc %s: wrote %s: %d images x %d labels (logit scale %.4g)\n", cmd, o.out, images.n, names.n,
                scale);
    free(tmp);
    free(tn);
    free(in);
    sv_free(&names), sv_free(&texts), sv_free(&images);
    close_run(&r);
    sv_free(&o.texts), sv_free(&o.images);
    return s ? zs_cli_fail(cmd, s) : 0;
}
