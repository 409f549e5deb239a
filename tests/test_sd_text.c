// Prompt -> text conditioning of the tiny SD fixtures (tests/fixtures/sd, see its README):
// the folder's tokenizer/ (small real-format CLIP vocabulary) gives prompt.ids /
// prompt.negative_ids, the folder's text_encoder/ gives prompt.prompt_embeds /
// prompt.negative_prompt_embeds (what diffusers' encode_prompt used: last_hidden_state), and the
// single file's cond_stage_model.* (SD 1.x transformers names; SD 2.x OpenCLIP names with one
// extra last layer, tokens from layer layers-1 + ln_final) gives the folder's output.
// fp32 CPU, relative norm error <= 1e-4.
#include <stdlib.h>
#include <string.h>
#include "engine/json.h"
#include "models/clip.h"
#include "models/clip_tokenizer.h"
#include "tests/clip_ref.h"
#include "tests/test.h"

#define TOL 1e-4

// Runs the text tower on ids [B, 77] and returns a malloc'd copy of the tokens [B, 77, W].
static zs_status encode(const char *path, int text_heads, const int32_t *ids, int64_t B, float **out, int *width,
                        int *out_layer, int *layers) {
    zs_clip_opts o = zs_clip_default_opts();
    o.towers = ZS_CLIP_TEXT, o.text_heads = text_heads;
    zs_clip *m = NULL;
    ZS_TRY(zs_clip_load(&m, path, &o));
    zs_clip_text *t = &m->t;
    zs_status s = zs_clip_text_setup(t, B, ZS_CLIP_CONTEXT, 0);
    zs_clip_text_in in = {ids, NULL, 0, 0};
    if (!s) s = zs_clip_text_fwd(t, &in);
    if (!s) {
        int64_t n = zs_numel(&t->a.tokens);
        *out = malloc((size_t)n * sizeof(float));
        memcpy(*out, t->a.tokens.data, (size_t)n * sizeof(float));
        *width = t->cfg.width, *out_layer = t->cfg.out_layer, *layers = t->cfg.layers;
    }
    zs_clip_free(m);
    return s;
}

static zt_result run(const char *name, int32_t want_pad) {
    char p[512], rel[256];
    snprintf(rel, sizeof rel, "sd/%s.reference.safetensors", name);
    zs_st *ref = NULL;
    CHECK_OK(zs_st_open(&ref, zt_fixture_path(rel, p, sizeof p)));
    // ---- tokenizer ----
    snprintf(rel, sizeof rel, "sd/%s/tokenizer", name);
    zs_tokenizer *tok = NULL;
    CHECK_OK(zs_tok_load_hf_dir(zt_fixture_path(rel, p, sizeof p), &tok));
    CHECK(zs_tok_mode_of(tok) == ZS_TOK_HF, "mode");
    CHECK(zs_tok_pad(tok) == want_pad, "%s: pad id %d, expected %d", name, zs_tok_pad(tok), want_pad);
    const char *texts[2] = {"prompt.text", "prompt.negative_text"}, *idn[2] = {"prompt.ids", "prompt.negative_ids"};
    int32_t ids[2 * ZS_CLIP_CONTEXT];
    for (int i = 0; i < 2; i++) {
        const zs_st_entry *e = zs_st_find(ref, texts[i]);
        CHECK(e && e->dtype == ZS_U8, "%s: no %s", name, texts[i]);
        int eot = -1;
        CHECK_OK(zs_tok_encode_padded(tok, (const char *)e->data, (size_t)zs_st_numel(e), ZS_CLIP_CONTEXT,
                                      ids + i * ZS_CLIP_CONTEXT, &eot));
        int64_t B = 0, L = 0;
        int32_t *want = zt_clip_ref_ids(ref, idn[i], &B, &L);
        CHECK(want && B == 1 && L == ZS_CLIP_CONTEXT, "%s: %s", name, idn[i]);
        int diff = -1;
        for (int j = 0; j < ZS_CLIP_CONTEXT && diff < 0; j++)
            if (want[j] != ids[i * ZS_CLIP_CONTEXT + j]) diff = j;
        int32_t w = diff >= 0 ? want[diff] : 0, g = diff >= 0 ? ids[i * ZS_CLIP_CONTEXT + diff] : 0;
        free(want);
        CHECK(diff < 0, "%s: %s differ at %d: got %d, want %d", name, idn[i], diff, g, w);
        CHECK(ids[i * ZS_CLIP_CONTEXT + eot] == zs_tok_eot(tok), "%s: end token", name);
    }
    CHECK(ids[ZS_CLIP_CONTEXT - 1] == want_pad, "%s: prompt row should end in padding", name);
    zs_tok_free(tok);
    // ---- text encoder from the folder ----
    float *fold = NULL, *single = NULL;
    int W = 0, ol = 0, nl = 0, W2 = 0, ol2 = 0, nl2 = 0;
    snprintf(rel, sizeof rel, "sd/%s/text_encoder", name);
    CHECK_OK(encode(zt_fixture_path(rel, p, sizeof p), 0, ids, 2, &fold, &W, &ol, &nl));
    CHECK(ol == nl, "%s: folder text encoder out_layer %d of %d", name, ol, nl);
    const char *en[2] = {"prompt.prompt_embeds", "prompt.negative_prompt_embeds"};
    int ok = 1;
    for (int i = 0; i < 2; i++) {
        int64_t n = 0;
        float *want = zt_clip_ref_f32(ref, en[i], &n);
        CHECK(want && n == (int64_t)ZS_CLIP_CONTEXT * W, "%s: %s", name, en[i]);
        double err = zt_rel_err(fold + (size_t)i * ZS_CLIP_CONTEXT * W, want, n, 1e-30);
        free(want);
        printf("    %s: %s (folder text_encoder, width %d, %d layers): rel err %.2e\n", name, en[i], W, nl, err);
        if (!(err <= TOL)) ok = 0;
    }
    CHECK(ok, "%s: folder text encoder differs from the reference", name);
    // ---- the single file, heads from the folder's config ----
    snprintf(rel, sizeof rel, "sd/%s/text_encoder/config.json", name);
    cJSON *cfg = NULL;
    CHECK_OK(zs_json_read_object(zt_fixture_path(rel, p, sizeof p), &cfg));
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(cfg, "num_attention_heads");
    int heads = cJSON_IsNumber(h) ? h->valueint : 0;
    cJSON_Delete(cfg);
    CHECK(heads > 0, "num_attention_heads");
    snprintf(rel, sizeof rel, "sd/%s.safetensors", name);
    CHECK_OK(encode(zt_fixture_path(rel, p, sizeof p), heads, ids, 2, &single, &W2, &ol2, &nl2));
    CHECK(W2 == W && ol2 == nl, "%s: single file width %d, out_layer %d of %d layers", name, W2, ol2, nl2);
    double err = zt_rel_err(single, fold, (int64_t)2 * ZS_CLIP_CONTEXT * W, 1e-30);
    printf("    %s: single file (text_heads %d, %d layers, tokens from layer %d): vs folder rel err %.2e\n", name,
           heads, nl2, ol2, err);
    CHECK(err <= TOL, "%s: single file text encoder differs from the folder's", name);
    free(fold);
    free(single);
    zs_st_close(ref);
    return ZT_PASS;
}

TEST(sd_text_sd1) { return run("sd1-tiny", 924); }  // pad <|endoftext|>, the last id of 925
TEST(sd_text_sd2) { return run("sd2-tiny", 0); }    // pad "!"
