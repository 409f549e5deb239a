// Stable Diffusion benchmark (suite "sd" of zsmlc_bench): the real SD 1.5 / SD 2.x UNet and VAE
// decoder configs (models/sd_config.h defaults) with random weights (models/sd_random.h):
//   - UNet step with classifier-free guidance = one call at batch 2 (it/s = calls per second):
//     SD 1.5 at 512x512 (64x64 latents, context 77x768), SD 2.x at 768x768 (96x96, 77x1024);
//   - the method's gradient step: SD 2.x UNet at 560x560 (70x70), batch 2, forward with block
//     checkpointing + backward to the sample and the context (no parameter gradients): what
//     each of the 30 sampling steps costs in the text-encoder fine-tuning's backward;
//   - VAE decode at 512 / 768 (batch 1), and its forward + backward at 560 (to the latents);
//   - memory of the gradient through sampling (SD 2.x, 560x560, CFG, 30 steps): arena bytes of
//     UNet + VAE + trajectory at latent sizes 16..48 with the same checkpointing, the linear
//     fit in h*w extrapolated to 70x70, and the exact layout at 70x70 for comparison; and the
//     same gradient run for real at latents 8..16, its measured peak extrapolated the same way.
// On the CPU (F32, one timed call: the real shapes are slow there) and, where a GPU answers,
// CUDA (F32 and BF16, median of --repeat calls). Each timed call is followed by a device sync.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench/bench.h"
#include "bench/bench_common.h"
#include "engine/backend.h"
#include "engine/rng.h"
#include "models/sd_random.h"

typedef enum { K_UNET, K_VAE } bkind;
typedef struct {
    const char *name, *what;
    bkind kind;
    int version, lat, batch, grad;
} bcase;

static const bcase k_cases[] = {
    {"unet_sd15_512", "SD1.5 UNet CFG step 512", K_UNET, 1, 64, 2, 0},
    {"unet_sd2_768", "SD2 UNet CFG step 768", K_UNET, 2, 96, 2, 0},
    {"unet_sd2_560_grad", "SD2 UNet fwd+bwd 560 CFG", K_UNET, 2, 70, 2, 1},
    {"vae_decode_512", "VAE decode 512", K_VAE, 1, 64, 1, 0},
    {"vae_decode_768", "VAE decode 768", K_VAE, 2, 96, 1, 0},
    {"vae_decode_560_grad", "VAE decode fwd+bwd 560", K_VAE, 2, 70, 1, 1},
};

typedef struct {
    const bcase *c;
    zs_device dev;
    zs_sd_unet *u;
    zs_sd_vae v;
    zs_tensor x, ctx, out, dout, dx, dctx;  // UNet: sample / context / output (+ grads); VAE: latents (dout = d image)
    float t[2];
    size_t params, acts;
} bstate;

static zs_status dev_tensor(zs_tensor *t, zs_device dev, zs_dtype dt, int nd, const int64_t *sh, uint64_t seed) {
    *t = zs_tensor_make(NULL, dt, dev, nd, sh);
    ZS_TRY(zs_malloc(&t->data, zs_nbytes(t), dev, "sd bench tensor"));
    return zs_rng_normal(t, seed, 0);
}

static zs_status build(bstate *b, const bcase *c, zs_device dev, zs_dtype dt) {
    memset(b, 0, sizeof *b);
    b->c = c, b->dev = dev;
    int64_t B = c->batch, s = c->lat;
    if (c->kind == K_UNET) {
        zs_sd_unet_config uc;
        zs_sd_unet_config_default(&uc, c->version);
        ZS_TRY(zs_sd_unet_create(&b->u, &uc, dev, dt));
        ZS_TRY(zs_sd_unet_init_random(b->u, 1234));
        ZS_TRY(zs_sd_unet_setup(b->u, B, s, s, 77, c->grad));
        int64_t xs[4] = {B, uc.in_channels, s, s}, cs[3] = {B, 77, uc.cross_attention_dim};
        ZS_TRY(dev_tensor(&b->x, dev, dt, 4, xs, 1));
        ZS_TRY(dev_tensor(&b->ctx, dev, dt, 3, cs, 2));
        ZS_TRY(dev_tensor(&b->out, dev, dt, 4, xs, 3));
        if (c->grad) {
            ZS_TRY(dev_tensor(&b->dout, dev, dt, 4, xs, 4));
            ZS_TRY(dev_tensor(&b->dx, dev, dt, 4, xs, 5));
            ZS_TRY(dev_tensor(&b->dctx, dev, dt, 3, cs, 6));
        }
        b->t[0] = 801, b->t[1] = 801;
        zs_sd_unet_mem m = zs_sd_unet_memory(b->u);
        b->params = m.params, b->acts = m.acts;
        return ZS_OK;
    }
    zs_sd_vae_config vc;
    zs_sd_vae_config_default(&vc, c->version);
    ZS_TRY(zs_sd_vae_init(&b->v, &vc, dev, dt));
    ZS_TRY(zs_sd_vae_init_random(&b->v, 1234));
    ZS_TRY(zs_sd_vae_setup(&b->v, B, s, s, c->grad));
    int64_t ls[4] = {B, vc.latent_channels, s, s};
    ZS_TRY(dev_tensor(&b->x, dev, dt, 4, ls, 1));
    if (c->grad) {
        ZS_TRY(dev_tensor(&b->dout, dev, dt, 4, b->v.a.image.shape, 4));
        ZS_TRY(dev_tensor(&b->dx, dev, dt, 4, ls, 5));
    }
    b->params = b->v.params.cap, b->acts = b->v.acts.cap;
    return ZS_OK;
}

static zs_status step(void *ctx) {
    bstate *b = ctx;
    if (b->c->kind == K_UNET) {
        ZS_TRY(zs_sd_unet_fwd(b->u, &b->out, &b->x, b->t, &b->ctx));
        return b->c->grad ? zs_sd_unet_bwd(b->u, &b->dout, &b->dx, &b->dctx) : ZS_OK;
    }
    ZS_TRY(zs_sd_vae_decode(&b->v, &b->x));
    return b->c->grad ? zs_sd_vae_decode_bwd(&b->v, &b->dout, &b->dx) : ZS_OK;
}

static void destroy(bstate *b) {
    zs_tensor *t[6] = {&b->x, &b->ctx, &b->out, &b->dout, &b->dx, &b->dctx};
    for (int i = 0; i < 6; i++) zs_free(t[i]->data, b->dev);
    zs_sd_unet_free(b->u);
    zs_sd_vae_free(&b->v);
    memset(b, 0, sizeof *b);
}

// Bytes the gradient through sampling holds at latent size s x s (SD 2.x, CFG batch 2, 30
// steps): UNet params + activations (train), VAE params + activations (train), trajectory.
static zs_status grad_bytes(zs_device dev, zs_dtype dt, int64_t s, size_t *total, size_t *unet_acts, size_t *vae_acts) {
    zs_sd_unet_config uc;
    zs_sd_vae_config vc;
    zs_sd_unet_config_default(&uc, 2);
    zs_sd_vae_config_default(&vc, 2);
    zs_sd_unet *u = NULL;
    zs_sd_vae v = {0};
    zs_status st = zs_sd_unet_create(&u, &uc, dev, dt);
    if (!st) st = zs_sd_unet_setup(u, 2, s, s, 77, 1);
    if (!st) st = zs_sd_vae_init(&v, &vc, dev, dt);
    if (!st) st = zs_sd_vae_setup(&v, 1, s, s, 1);
    if (!st) {
        zs_sd_unet_mem m = zs_sd_unet_memory(u);
        size_t traj = (size_t)31 * 4 * s * s * zs_dtype_size(dt), work = (size_t)12 * 2 * 4 * s * s * zs_dtype_size(dt);
        *unet_acts = m.acts, *vae_acts = v.acts.cap;
        *total = m.params + m.acts + v.params.cap + v.acts.cap + traj + work;
    }
    zs_sd_unet_free(u);
    zs_sd_vae_free(&v);
    return st;
}

static int memory_report(zs_device dev, zs_dtype dt, FILE *js) {
    const int64_t small[4] = {16, 24, 32, 48};
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    printf("\ngradient through sampling, SD 2.x 560x560, CFG, 30 steps, %s %s (arena bytes):\n", zs_device_name(dev),
           zs_dtype_name(dt));
    printf("  %8s %12s %12s %12s\n", "latents", "total MiB", "UNet acts", "VAE acts");
    for (int i = 0; i < 5; i++) {
        int64_t s = i < 4 ? small[i] : 70;
        size_t tot, ua, va;
        if (grad_bytes(dev, dt, s, &tot, &ua, &va)) {
            fprintf(stderr, "zsmlc_bench: sd memory at %lld: %s\n", (long long)s, zs_errmsg());
            return 1;
        }
        double x = (double)(s * s), y = (double)tot;
        if (i < 4) sx += x, sy += y, sxx += x * x, sxy += x * y;
        printf("  %5lldx%-2lld %12.1f %12.1f %12.1f%s\n", (long long)s, (long long)s, zb_mib(tot), zb_mib(ua), zb_mib(va),
               i < 4 ? "" : "  (exact layout)");
        if (i == 4) {
            double k = (4 * sxy - sx * sy) / (4 * sxx - sx * sx), c0 = (sy - k * sx) / 4, pred = c0 + k * x;
            printf("  fit on 16..48: %.1f MiB + %.4f MiB per latent pixel -> 70x70: %.1f MiB predicted, %.1f exact\n",
                   zb_mib((size_t)c0), zb_mib((size_t)k), zb_mib((size_t)pred), zb_mib(tot));
            if (js)
                fprintf(js,
                        "{\"suite\": \"sd\", \"case\": \"grad_memory_sd2_560\", \"device\": \"%s\", \"dtype\": \"%s\", "
                        "\"fixed_bytes\": %.0f, \"bytes_per_latent_pixel\": %.1f, \"predicted_bytes\": %.0f, "
                        "\"exact_bytes\": %zu, \"unet_acts_bytes\": %zu, \"vae_acts_bytes\": %zu}\n",
                        zs_device_name(dev), zs_dtype_name(dt), c0, k, pred, tot, ua, va);
        }
    }
    printf("  (independent of the step count but for the trajectory of 31 x 4 x h x w; the text encoder, its\n"
           "   optimizer state and the CLIP discriminator come on top: see the clip suite)\n");
    return 0;
}

// The gradient through sampling run for real (random SD 2.x weights, CFG 7.5, 2 Euler steps,
// loss on the decoded image) at latent sizes `sizes`, the peak memory measured after each
// (zs_mem_high_water, reset first: CPU peak RSS, CUDA device memory in use), fitted linearly in h*w and
// extrapolated to 70x70 (560x560), beside the arena layout there (memory_report).
static int measured_report(zs_device dev, zs_dtype dt, FILE *js) {
    const int64_t sizes[3] = {8, 12, 16};
    zs_sd_unet_config uc;
    zs_sd_vae_config vc;
    zs_sd_unet_config_default(&uc, 2);
    zs_sd_vae_config_default(&vc, 2);
    zs_sd_pipe *p = NULL;
    zs_status s = zs_mem_high_water_reset(dev);  // earlier cases of this run must not count
    if (!s) s = zs_sd_pipe_random(&p, &uc, &vc, 2, NULL, dev, dt, 99);
    double x[3], y[3];
    printf("\ngradient through sampling run (SD 2.x, random weights, CFG, 2 Euler steps), %s %s, measured:\n",
           zs_device_name(dev), zs_dtype_name(dt));
    for (int i = 0; i < 3 && !s; i++) {
        int64_t L = sizes[i], es[3] = {1, 77, uc.cross_attention_dim}, ls[4] = {1, 4, L, L};
        zs_tensor c = {0}, u = {0}, n = {0}, d = {0}, g = {0};
        zs_sd_grad r = {0};
        const zs_tensor *img = NULL;
        double t0 = zb_now_ms();
        s = dev_tensor(&c, dev, dt, 3, es, 1);
        if (!s) s = dev_tensor(&u, dev, dt, 3, es, 2);
        if (!s) s = dev_tensor(&g, dev, dt, 3, es, 3);
        if (!s) s = dev_tensor(&n, dev, dt, 4, ls, 4);
        zs_sd_gen gen = {2, 7.5f, ZS_SAMPLER_EULER, NULL, NULL};
        if (!s) s = zs_sd_grad_forward(&r, p, &gen, &c, &u, &n, &img);
        if (!s) s = dev_tensor(&d, dev, dt, 4, img->shape, 5);
        if (!s) s = zs_sd_grad_backward(&r, &d, &g, NULL);
        if (!s) s = zs_sync(dev);
        size_t hw = 0;
        if (!s) s = zs_mem_high_water(dev, &hw);
        x[i] = (double)(L * L), y[i] = (double)hw;
        if (!s) printf("  %3lldx%-3lld latents (%4lld px): peak %9.1f MiB, %.1f s\n", (long long)L, (long long)L,
                       (long long)(L * 8), zb_mib(hw), (zb_now_ms() - t0) / 1e3);
        zs_sd_grad_free(&r);
        zs_tensor *ts[5] = {&c, &u, &n, &d, &g};
        for (int k = 0; k < 5; k++) zs_free(ts[k]->data, dev);
    }
    zs_sd_pipe_free(p);
    if (s) {
        fprintf(stderr, "zsmlc_bench: measured gradient run: %s\n", zs_errmsg());
        return 1;
    }
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (int i = 0; i < 3; i++) sx += x[i], sy += y[i], sxx += x[i] * x[i], sxy += x[i] * y[i];
    double k = (3 * sxy - sx * sy) / (3 * sxx - sx * sx), c0 = (sy - k * sx) / 3, pred = c0 + k * 4900;
    printf("  fit: %.1f MiB + %.4f MiB per latent pixel -> 70x70 (560x560): %.1f MiB (the process / device total,\n"
           "  weights included; steps add only 4 h w values each)\n", zb_mib((size_t)c0), zb_mib((size_t)k),
           zb_mib((size_t)pred));
    if (js)
        fprintf(js,
                "{\"suite\": \"sd\", \"case\": \"grad_run_memory_sd2\", \"device\": \"%s\", \"dtype\": \"%s\", "
                "\"peak_bytes\": [%.0f, %.0f, %.0f], \"latents\": [8, 12, 16], \"predicted_560_bytes\": %.0f}\n",
                zs_device_name(dev), zs_dtype_name(dt), y[0], y[1], y[2], pred);
    return 0;
}

static void usage(void) {
    printf("usage: zsmlc_bench --suite sd [--out FILE] [--filter SUBSTR] [--repeat N] [--device cpu|cuda|all]\n"
           "  SD 1.5 / 2.x UNet and VAE at real sizes with random weights: UNet CFG step it/s at 512 / 768,\n"
           "  the 560x560 UNet / VAE fwd+bwd of the gradient through sampling, VAE decode, and the memory of\n"
           "  the gradient through sampling (filter \"memory\": arena layout; \"measured\": a real run's peak).\n"
           "  CPU: 1 timed call; CUDA: median of 5.\n");
}

int zs_bench_sd(int argc, char **argv, int append) {
    const char *out = NULL, *filter = NULL, *devs = "all";
    int repeat = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--out") && more) out = argv[++i];
        else if (!strcmp(a, "--filter") && more) filter = argv[++i];
        else if (!strcmp(a, "--repeat") && more) repeat = atoi(argv[++i]);
        else if (!strcmp(a, "--device") && more) devs = argv[++i];
        else if (!strcmp(a, "--all") || !strcmp(a, "--batch")) { if (a[2] == 'b') i++; continue; }  // other suites' options
        else { usage(); return strcmp(a, "--help") ? 2 : 0; }
    }
    zb_run runs[3];
    int nruns = 0, rr = repeat < 0 ? 2 : zb_runs(devs, runs, &nruns);
    if (rr == 2) usage();
    if (rr) return rr;
    FILE *js;
    if (zb_begin(out, append, &js)) return 1;
    int rc = 0;
    if (repeat > 64) repeat = 64;
    printf("\n%-20s %-26s %-4s %-4s %10s %8s %10s %9s\n", "case", "what", "dev", "type", "ms/call", "it/s", "params MB",
           "acts MB");
    for (int ri = 0; ri < nruns; ri++) {
        for (size_t ci = 0; ci < sizeof k_cases / sizeof k_cases[0]; ci++) {
            const bcase *c = &k_cases[ci];
            if (filter && !strstr(c->name, filter)) continue;
            zs_device dev = runs[ri].dev;
            zs_dtype dt = runs[ri].dt;
            int rep = repeat ? repeat : dev == ZS_CPU ? 1 : 5;
            bstate b;
            zs_status s = build(&b, c, dev, dt);
            double ms = 0;  // CUDA: one warm-up call (the CPU's single call is slow enough)
            if (!s) s = zb_time_median(step, &b, dev, dev != ZS_CPU, rep, &ms);
            if (s) {
                fprintf(stderr, "zsmlc_bench: %s on %s %s: %s\n", c->name, zs_device_name(dev), zs_dtype_name(dt), zs_errmsg());
                rc = 1;
                destroy(&b);
                continue;
            }
            printf("%-20s %-26s %-4s %-4s %10.1f %8.3f %10.1f %9.1f\n", c->name, c->what, zs_device_name(dev),
                   zs_dtype_name(dt), ms, 1e3 / ms, zb_mib(b.params), zb_mib(b.acts));
            fflush(stdout);
            if (js) {
                fprintf(js,
                        "{\"suite\": \"sd\", \"case\": \"%s\", \"what\": \"%s\", \"device\": \"%s\", \"dtype\": \"%s\", "
                        "\"batch\": %d, \"latent\": %d, \"ms\": %.6g, \"it_per_s\": %.6g, \"train\": %s, "
                        "\"params_bytes\": %zu, \"acts_bytes\": %zu}\n",
                        c->name, c->what, zs_device_name(dev), zs_dtype_name(dt), c->batch, c->lat, ms, 1e3 / ms,
                        c->grad ? "true" : "false", b.params, b.acts);
                fflush(js);
            }
            destroy(&b);
        }
        if (!filter || strstr("memory", filter)) rc |= memory_report(runs[ri].dev, runs[ri].dt, js);
        if (!filter || strstr("measured", filter)) rc |= measured_report(runs[ri].dev, runs[ri].dt, js);
    }
    printf("(MB = MiB; acts: what the arenas hold at that size, with the backward's buffers for the fwd+bwd\n"
           " cases; it/s = calls per second, one call = one CFG sampling step at batch 2)\n");
    if (js) fclose(js);
    if (out) printf("wrote %s\n", out);
    return rc;
}
