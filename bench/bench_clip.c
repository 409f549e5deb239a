// CLIP benchmark (suite "clip" of zsmlc_bench): real-size towers with random weights
// (models/clip_random.h), end to end:
//   - image encoding throughput (img/s): ViT-B/32, ViT-B/16, RN50 at 224x224;
//   - text encoding throughput (prompts/s) at 77 tokens: the ViT-L/14 text tower (SD 1.x's)
//     and the OpenCLIP ViT-H/14 text tower (SD 2.x's), every layer + pooling + projection;
//   - forward + backward of the ViT-B/32 image tower (all parameter gradients, d_features
//     random, no input gradient).
// On the CPU (F32) and, where a GPU answers, CUDA (F32 and BF16). Each figure is the median
// of --repeat timed calls (CPU default 1, CUDA 5) after one warm-up call, device synchronised after each. Memory is
// what the arenas hold: parameters, gradients (training case) and activations at the batch
// size (forward-only for the encoding cases; with everything the backward keeps for the
// training case).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench/bench.h"
#include "bench/bench_common.h"
#include "engine/backend.h"
#include "engine/rng.h"
#include "models/clip_random.h"

typedef enum { K_IMAGE, K_TEXT, K_TRAIN } bkind;
typedef enum { A_VIT_B32, A_VIT_B16, A_RN50, A_TEXT_L14, A_TEXT_H14 } barch;
typedef struct {
    const char *name, *what;
    bkind kind;
    barch arch;
} bcase;

static const bcase k_cases[] = {
    {"vit_b32_image", "ViT-B/32 image fwd", K_IMAGE, A_VIT_B32},
    {"vit_b16_image", "ViT-B/16 image fwd", K_IMAGE, A_VIT_B16},
    {"rn50_image", "RN50 image fwd", K_IMAGE, A_RN50},
    {"vit_l14_text", "ViT-L/14 text fwd, 77 tok", K_TEXT, A_TEXT_L14},
    {"vit_h14_text", "ViT-H/14 text fwd, 77 tok", K_TEXT, A_TEXT_H14},
    {"vit_b32_image_train", "ViT-B/32 image fwd+bwd", K_TRAIN, A_VIT_B32},
};

typedef struct {
    zs_clip *m;
    bkind kind;
    int64_t B;
    zs_tensor x, dfeat;  // image [B, 3, S, S]; d_features [B, E] (train)
    int32_t *ids;        // text [B, 77]
    size_t params, grads, acts;
} bstate;

static zs_status build(bstate *b, const bcase *c, zs_device dev, zs_dtype dt, int64_t B) {
    memset(b, 0, sizeof *b);
    b->kind = c->kind, b->B = B;
    uint64_t seed = 1234;
    if (c->arch == A_VIT_B32 || c->arch == A_VIT_B16) {
        zs_clip_vision_cfg v = c->arch == A_VIT_B32 ? zs_clip_cfg_vit_b32() : zs_clip_cfg_vit_b16();
        ZS_TRY(zs_clip_init_random(&b->m, NULL, &v, dev, dt, seed));
    } else if (c->arch == A_RN50) {
        zs_clip_resnet_cfg r = zs_clip_cfg_rn50();
        ZS_TRY(zs_clip_init_random_rn(&b->m, NULL, &r, dev, dt, seed));
    } else {
        zs_clip_text_cfg t = c->arch == A_TEXT_L14 ? zs_clip_cfg_text_vit_l14() : zs_clip_cfg_text_vit_h14();
        ZS_TRY(zs_clip_init_random(&b->m, &t, NULL, dev, dt, seed));
    }
    zs_clip *m = b->m;
    if (c->kind == K_TEXT) {
        int64_t L = m->text.n_pos;
        ZS_TRY(zs_clip_text_setup(&m->t, B, L, 0));
        b->ids = malloc((size_t)(B * L) * sizeof *b->ids);
        float *u = malloc((size_t)(B * L) * sizeof *u);
        if (!b->ids || !u) return free(u), ZS_ERR(ZS_ENOMEM, "bench ids");
        zs_rng_uniform_host(u, B * L, seed, 0);
        for (int64_t i = 0; i < B * L; i++) {  // start, 75 random tokens, end: the full context
            int64_t k = i % L;
            b->ids[i] = k == 0 ? 49406 : k == L - 1 ? 49407 : (int32_t)(u[i] * 49405);
        }
        free(u);
        b->params = m->t.params.cap, b->acts = m->t.acts.cap;
        return ZS_OK;
    }
    int ch, h, w;
    zs_clip_image_shape(m, &ch, &h, &w);
    int64_t sh[4] = {B, ch, h, w}, fs[2] = {B, zs_clip_image_embed(m)};
    b->x = zs_tensor_make(NULL, dt, dev, 4, sh);
    ZS_TRY(zs_malloc(&b->x.data, zs_nbytes(&b->x), dev, "bench image"));
    ZS_TRY(zs_rng_normal(&b->x, seed, 0));
    ZS_TRY(zs_clip_image_setup(m, B, c->kind == K_TRAIN));
    if (c->kind == K_TRAIN) {
        ZS_TRY(zs_clip_grads(m));
        b->dfeat = zs_tensor_make(NULL, dt, dev, 2, fs);
        ZS_TRY(zs_malloc(&b->dfeat.data, zs_nbytes(&b->dfeat), dev, "bench d_features"));
        ZS_TRY(zs_rng_normal(&b->dfeat, seed + 1, 0));
    }
    const zs_arena *pa = m->vision_resnet ? &m->r.params : &m->v.params, *ga = m->vision_resnet ? &m->r.grads : &m->v.grads,
                   *aa = m->vision_resnet ? &m->r.acts : &m->v.acts;
    b->params = pa->cap, b->grads = ga->cap, b->acts = aa->cap;
    return ZS_OK;
}

static zs_status step(void *ctx) {
    bstate *b = ctx;
    zs_clip *m = b->m;
    if (b->kind == K_TEXT) {
        zs_clip_text_in in = {b->ids, NULL, 0, 1};
        return zs_clip_text_fwd(&m->t, &in);
    }
    ZS_TRY(zs_clip_image_fwd(m, &b->x));
    if (b->kind == K_TRAIN) ZS_TRY(zs_clip_image_bwd(m, &b->dfeat, NULL));
    return ZS_OK;
}

static void destroy(bstate *b) {
    zs_device dev = b->m ? b->m->device : ZS_CPU;
    zs_free(b->x.data, dev);
    zs_free(b->dfeat.data, dev);
    free(b->ids);
    zs_clip_free(b->m);
    memset(b, 0, sizeof *b);
}

static void usage(void) {
    printf("usage: zsmlc_bench --suite clip [--out FILE] [--filter SUBSTR] [--repeat N] [--batch N]\n"
           "                   [--device cpu|cuda|all]\n"
           "  CLIP towers at real sizes, random weights: image img/s (ViT-B/32, ViT-B/16, RN50), text\n"
           "  prompts/s at 77 tokens (ViT-L/14, ViT-H/14 text towers), ViT-B/32 image fwd+bwd; memory per\n"
           "  config. Defaults: batch 2 and 1 timed call (after a warm-up) on the CPU; batch 64 and the\n"
           "  median of 5 calls on CUDA.\n");
}

int zs_bench_clip(int argc, char **argv, int append) {
    const char *out = NULL, *filter = NULL, *devs = "all";
    int repeat = 0, batch = 0;  // 0: defaults (CPU: 1 timed call, CUDA: 5)
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--out") && more) out = argv[++i];
        else if (!strcmp(a, "--filter") && more) filter = argv[++i];
        else if (!strcmp(a, "--repeat") && more) repeat = atoi(argv[++i]);
        else if (!strcmp(a, "--batch") && more) batch = atoi(argv[++i]);
        else if (!strcmp(a, "--device") && more) devs = argv[++i];
        else if (!strcmp(a, "--all")) continue;  // the ops suite's option (--suite all)
        else { usage(); return strcmp(a, "--help") ? 2 : 0; }
    }
    zb_run runs[3];
    int nruns = 0, rr = repeat < 0 || batch < 0 ? 2 : zb_runs(devs, runs, &nruns);
    if (rr == 2) usage();
    if (rr) return rr;
    FILE *js;
    if (zb_begin(out, append, &js)) return 1;
    printf("\n%-20s %-26s %-4s %-4s %5s %10s %10s %9s %8s %9s %8s %9s\n", "case", "what", "dev", "type", "batch", "ms/batch",
           "ms/item", "items/s", "params M", "params MB", "grads MB", "acts MB");
    int rc = 0;
    if (repeat > 64) repeat = 64;
    for (int ri = 0; ri < nruns; ri++)
        for (size_t ci = 0; ci < sizeof k_cases / sizeof k_cases[0]; ci++) {
            const bcase *c = &k_cases[ci];
            if (filter && !strstr(c->name, filter)) continue;
            zs_device dev = runs[ri].dev;
            zs_dtype dt = runs[ri].dt;
            int64_t B = batch ? batch : dev == ZS_CPU ? 2 : 64;
            int rep = repeat ? repeat : dev == ZS_CPU ? 1 : 5;
            bstate b;
            double t0 = zb_now_ms();
            zs_status s = build(&b, c, dev, dt, B);
            double init_ms = zb_now_ms() - t0;
            double ms = 0;
            if (!s) s = zb_time_median(step, &b, dev, 1, rep, &ms);
            if (s) {
                fprintf(stderr, "zsmlc_bench: %s on %s %s: %s\n", c->name, zs_device_name(dev), zs_dtype_name(dt), zs_errmsg());
                rc = 1;
                destroy(&b);
                continue;
            }
            double per = ms / (double)B, rate = 1e3 / per;
            int64_t np = zs_clip_param_count(b.m);
            printf("%-20s %-26s %-4s %-4s %5lld %10.1f %10.2f %9.2f %8.1f %9.1f %8.1f %9.1f\n", c->name, c->what,
                   zs_device_name(dev), zs_dtype_name(dt), (long long)B, ms, per, rate, (double)np / 1e6, zb_mib(b.params),
                   zb_mib(b.grads), zb_mib(b.acts));
            fflush(stdout);
            if (js) {
                fprintf(js,
                        "{\"suite\": \"clip\", \"case\": \"%s\", \"what\": \"%s\", \"device\": \"%s\", \"dtype\": \"%s\", "
                        "\"batch\": %lld, \"ms\": %.6g, \"ms_per_item\": %.6g, \"per_s\": %.6g, \"unit\": \"%s\", "
                        "\"train\": %s, \"params\": %lld, \"params_bytes\": %zu, \"grads_bytes\": %zu, "
                        "\"acts_bytes\": %zu, \"init_ms\": %.6g}\n",
                        c->name, c->what, zs_device_name(dev), zs_dtype_name(dt), (long long)B, ms, per, rate,
                        c->kind == K_TEXT ? "prompts" : "images", c->kind == K_TRAIN ? "true" : "false", (long long)np,
                        b.params, b.grads, b.acts, init_ms);
                fflush(js);
            }
            destroy(&b);
        }
    printf("(MB = MiB; acts: forward-only activations at the batch size, or everything the backward keeps for\n"
           " the fwd+bwd case; params M counts elements incl. BN running statistics)\n");
    if (js) fclose(js);
    if (out) printf("wrote %s\n", out);
    return rc;
}
