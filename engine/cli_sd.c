// zsmlc txt2img: Stable Diffusion text-to-image (models/sd_pipeline.h) to PNG files with the
// generation parameters in a PNG text chunk ("parameters").
//
// Noise: --init-noise FILE.safetensors (one tensor `latents` [B, 4, H/8, W/8] of plain N(0, 1)
// noise, which the sampler scales by its initial sigma as diffusers does with given latents),
// else the engine's Philox stream of --seed: element k of the [B, 4, h, w] noise is the same
// on every device and for every batch size, so image i of a batch equals the same seed's
// image i of a larger batch.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "engine/backend.h"
#include "engine/cli.h"
#include "engine/image.h"
#include "engine/log.h"
#include "engine/rng.h"
#include "models/sd_pipeline.h"
#include "weights/safetensors.h"

typedef struct {
    const char *model, *prompt, *negative, *out, *noise, *device, *dtype, *config_dir, *pred, *sched_cfg;
    int steps, batch, w, h, upcast;
    float cfg;
    unsigned long long seed;
    zs_sampler sampler;
} t2i_opts;

static const char *k_usage =
    "usage: zsmlc txt2img --model DIR_OR_FILE --prompt TEXT [--negative TEXT] [--steps N (50)]\n"
    "         [--cfg S (7.5)] [--sampler euler|ddim|dpmpp2m] [--seed S (0)] [--size WxH] [--batch B]\n"
    "         [--init-noise FILE.safetensors] [--device cpu|cuda[:i]] [--dtype f32|bf16|f16]\n"
    "         [--config-dir DIR] [--prediction-type epsilon|v_prediction] [--upcast-attention 0|1]\n"
    "         [--scheduler-config FILE] --out PATH\n"
    "  --out: a .png file; with --batch > 1 a folder or a name containing {i}\n"
    "  --config-dir: for single files, a diffusers folder whose configs, tokenizer and scheduler apply\n";

static int usage_err(const char *msg, const char *arg) {
    fprintf(stderr, "zsmlc txt2img: %s%s%s\n%s", msg, arg ? " " : "", arg ? arg : "", k_usage);
    return 2;
}

// "bad value for OPT: VALUE (want WHAT)".
static int bad_value(const char *opt, const char *v, const char *want) {
    char m[256];
    snprintf(m, sizeof m, "bad value for %s: '%s' (want %s)", opt, v, want);
    return usage_err(m, NULL);
}

static int parse(int argc, char **argv, t2i_opts *o) {
    memset(o, 0, sizeof *o);
    o->steps = 50, o->cfg = 7.5f, o->batch = 0, o->upcast = -1, o->sampler = ZS_SAMPLER_EULER;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        char *end = NULL;
        if (!more) return usage_err("missing value after", a);
        const char *v = argv[++i];
        errno = 0;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--prompt")) o->prompt = v;
        else if (!strcmp(a, "--negative")) o->negative = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--init-noise")) o->noise = v;
        else if (!strcmp(a, "--device")) o->device = v;
        else if (!strcmp(a, "--dtype")) o->dtype = v;
        else if (!strcmp(a, "--config-dir")) o->config_dir = v;
        else if (!strcmp(a, "--prediction-type")) o->pred = v;
        else if (!strcmp(a, "--scheduler-config")) o->sched_cfg = v;
        else if (!strcmp(a, "--sampler")) {
            if (zs_sampler_parse(v, &o->sampler)) return usage_err(zs_errmsg(), NULL);
        } else if (!strcmp(a, "--steps") || !strcmp(a, "--batch") || !strcmp(a, "--upcast-attention")) {
            long x = strtol(v, &end, 10);
            int lo = strcmp(a, "--upcast-attention") ? 1 : 0, hi = strcmp(a, "--upcast-attention") ? 100000 : 1;
            if (errno || *end || x < lo || x > hi)
                return bad_value(a, v, lo ? "a whole number from 1 to 100000" : "0 or 1");
            *(a[2] == 's' ? &o->steps : a[2] == 'b' ? &o->batch : &o->upcast) = (int)x;
        } else if (!strcmp(a, "--cfg")) {
            o->cfg = strtof(v, &end);
            if (errno || *end || !(o->cfg >= 0 && o->cfg < 1e4f)) return bad_value(a, v, "a number in [0, 10000)");
        } else if (!strcmp(a, "--seed")) {
            o->seed = strtoull(v, &end, 10);
            if (errno || *end || v[0] == '-' || !v[0]) return bad_value(a, v, "a whole number from 0 to 2^64 - 1");
        } else if (!strcmp(a, "--size")) {
            int n = 0;
            if (sscanf(v, "%dx%d%n", &o->w, &o->h, &n) != 2 || v[n] || o->w < 1 || o->h < 1 || o->w > 16384 ||
                o->h > 16384)
                return bad_value(a, v, "WxH, each from 1 to 16384");
        } else {
            return usage_err("unknown option", a);
        }
    }
    if (!o->model || !o->prompt || !o->out) return usage_err("--model, --prompt and --out are required", NULL);
    return 0;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

// Output path of image i of B.
static zs_status out_path(const char *out, int i, int B, char *buf, size_t n) {
    const char *brace = strstr(out, "{i}");
    size_t len = strlen(out);
    int k;
    if (brace) k = snprintf(buf, n, "%.*s%d%s", (int)(brace - out), out, i, brace + 3);
    else if (is_dir(out) || (len && out[len - 1] == '/')) k = snprintf(buf, n, "%s%s%05d.png", out, out[len - 1] == '/' ? "" : "/", i);
    else if (B == 1) k = snprintf(buf, n, "%s", out);
    else return ZS_ERR(ZS_EINVAL, "--out %s: with --batch %d give a folder or a name containing {i}", out, B);
    if (k < 0 || (size_t)k >= n) return ZS_ERR(ZS_EINVAL, "--out %s: path too long", out);
    return ZS_OK;
}

// Reads --init-noise into a host F32 buffer [B, C, h, w].
static zs_status read_noise(const char *path, int C, float **x, int64_t shape[4]) {
    zs_st *st;
    ZS_TRY(zs_st_open(&st, path));
    const zs_st_entry *e = zs_st_find(st, "latents");
    zs_status s = ZS_OK;
    if (!e) s = ZS_ERR(ZS_EFORMAT, "%s: no tensor named latents", path);
    else if (e->ndim != 4 || e->shape[1] != C || e->shape[0] < 1)
        s = ZS_ERR(ZS_EFORMAT, "%s: tensor latents must be [B, %d, H/8, W/8]", path, C);
    if (!s) {
        memcpy(shape, e->shape, 4 * sizeof *shape);
        *x = malloc(sizeof **x * (size_t)zs_st_numel(e));
        s = *x ? zs_st_read_f32(st, "latents", *x, zs_st_numel(e)) : ZS_ERR(ZS_ENOMEM, "%s", path);
    }
    zs_st_close(st);
    return s;
}

static void on_step(void *progress, int step, int steps) {
    (void)step, (void)steps;
    zs_progress_step(progress, 1, NULL);
}

int zs_cmd_txt2img(int argc, char **argv) {
    const char *cmd = "txt2img";
    t2i_opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc;
    zs_device dev;
    zs_dtype dt;
    int dev_index;
    const char *why = zs_cli_device_dtype(o.device, o.dtype, ZS_BF16, &dev, &dev_index, &dt);
    if (why) return usage_err(why, NULL);
    if (dev == ZS_CUDA) {
        zs_status cs = zs_cuda_init(dev_index);
        if (cs) return zs_cli_fail(cmd, cs);
    }
    zs_sd_pipe_opts po = zs_sd_pipe_default_opts();
    po.config_dir = o.config_dir, po.prediction_type = o.pred, po.scheduler_config = o.sched_cfg;
    po.upcast_attention = o.upcast;
    zs_sd_pipe *p = NULL;
    zs_status s = zs_sd_pipe_open(&p, o.model, &po, dev, dt);
    if (s) return zs_cli_fail(cmd, s);
    fprintf(stderr, "zsmlc %s: %s: SD %d.x, %s %s; %s\n", cmd, o.model, p->version, zs_device_name(dev),
            zs_dtype_name(dt), p->notes);

    float *noise_host = NULL;
    int64_t ns[4] = {0};
    int C = zs_sd_unet_cfg(p->unet)->in_channels, f = p->vae_factor;
    if (o.noise) s = read_noise(o.noise, C, &noise_host, ns);
    int B = o.batch ? o.batch : o.noise ? (int)ns[0] : 1;
    int W = o.w ? o.w : o.noise ? (int)ns[3] * f : p->default_size, H = o.h ? o.h : o.noise ? (int)ns[2] * f : p->default_size;
    if (!s && (W % f || H % f)) s = ZS_ERR(ZS_EINVAL, "--size %dx%d: width and height must be multiples of %d", W, H, f);
    if (!s && o.noise && (ns[0] != B || ns[2] * f != H || ns[3] * f != W))
        s = ZS_ERR(ZS_EINVAL, "%s: latents [%lld, %d, %lld, %lld] do not fit --batch %d --size %dx%d", o.noise,
                   (long long)ns[0], C, (long long)ns[2], (long long)ns[3], B, W, H);
    int64_t lsh[4] = {B, C, H / f, W / f}, esh[3] = {B, ZS_CLIP_CONTEXT, zs_sd_pipe_ctx_dim(p)};
    zs_tensor lat = {0}, cond = {0}, uncond = {0};
    void *mem[3] = {NULL, NULL, NULL};
    zs_tensor *ts[3] = {&lat, &cond, &uncond};
    for (int i = 0; i < 3 && !s; i++) {
        *ts[i] = zs_tensor_make(NULL, dt, dev, i ? 3 : 4, i ? esh : lsh);
        s = zs_malloc(&mem[i], zs_nbytes(ts[i]), dev, "txt2img tensors");
        ts[i]->data = mem[i];
    }
    if (!s && noise_host) {
        zs_tensor h = zs_tensor_make(noise_host, ZS_F32, ZS_CPU, 4, lsh);
        s = zs_tensor_copy(&lat, &h);
    } else if (!s) {
        s = zs_rng_normal(&lat, o.seed, 0);
    }
    const char *neg = o.negative ? o.negative : "";
    const char **texts = calloc((size_t)B * 2, sizeof *texts);
    if (!s && !texts) s = ZS_ERR(ZS_ENOMEM, "prompts");
    for (int i = 0; !s && i < B; i++) texts[i] = o.prompt, texts[B + i] = neg;
    if (!s) s = zs_sd_pipe_encode(p, texts, B, &cond);
    if (!s && o.cfg > 1) s = zs_sd_pipe_encode(p, texts + B, B, &uncond);
    zs_progress pg;
    zs_sd_gen g = {o.steps, o.cfg, o.sampler, on_step, &pg};
    if (!s) {
        fprintf(stderr, "zsmlc %s: %d image%s %dx%d, %s, %d steps, guidance %g, seed %llu%s\n", cmd, B, B == 1 ? "" : "s", W, H,
                zs_sampler_name(o.sampler), o.steps, o.cfg, o.seed, o.noise ? " (noise from --init-noise)" : "");
        zs_progress_begin(&pg, "steps", o.steps);
        s = zs_sd_sample(p, &g, &cond, &uncond, &lat);
        zs_progress_end(&pg);
    }
    const zs_tensor *img = NULL;
    if (!s) s = zs_sd_decode(p, &lat, &img);
    uint8_t *pix = NULL;
    if (!s) {
        pix = malloc((size_t)B * H * W * 3);
        s = pix ? zs_sd_to_pixels(img, pix) : ZS_ERR(ZS_ENOMEM, "pixels");
    }
    for (int i = 0; !s && i < B; i++) {
        char path[4096], params[8192];
        s = out_path(o.out, i, B, path, sizeof path);
        if (s) break;
        snprintf(params, sizeof params,
                 "%s\nNegative prompt: %s\nSteps: %d, Sampler: %s, CFG scale: %g, Seed: %llu, Batch index: %d, Size: %dx%d, "
                 "Model: %s, Noise: %s, Device: %s %s, zsmlc %s",
                 o.prompt, neg, o.steps, zs_sampler_name(o.sampler), o.cfg, o.seed, i, W, H, o.model,
                 o.noise ? o.noise : "philox", zs_device_name(dev), zs_dtype_name(dt), ZSMLC_VERSION);
        const char *kv[2] = {"parameters", params};
        zs_image im = {W, H, pix + (size_t)i * H * W * 3};
        s = zs_image_save_png_text(path, &im, kv, 1);
        if (!s) fprintf(stderr, "zsmlc %s: wrote %s\n", cmd, path);
    }
    free(pix);
    free(texts);
    free(noise_host);
    for (int i = 0; i < 3; i++) zs_free(mem[i], dev);
    zs_sd_pipe_free(p);
    return s ? zs_cli_fail(cmd, s) : 0;
}
