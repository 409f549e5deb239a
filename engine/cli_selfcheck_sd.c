// The self-check's Stable Diffusion part: a small built-in SD 1.x-shaped model with random
// weights (models/sd_random.h), no files. Sampling with CFG (4 Euler steps) and the VAE give a
// finite image; the gradient of a loss on the decoded image through 2 sampling steps matches a
// central finite difference along a random direction of the text context; with a GPU the
// CUDA image matches the CPU's.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "engine/backend.h"
#include "engine/cli.h"
#include "engine/rng.h"
#include "models/sd_random.h"

typedef struct {
    zs_sd_pipe *p;
    zs_tensor cond, uncond, noise, lat, dcond, dimg;
    float *host;  // scratch for host copies
} sd_check;

static zs_status dev_tensor(zs_tensor *t, const zs_sd_pipe *p, int nd, const int64_t *sh) {
    *t = zs_tensor_make(NULL, p->dt, p->dev, nd, sh);
    ZS_TRY(zs_malloc(&t->data, zs_nbytes(t), p->dev, "selfcheck sd"));
    return zs_zero(t);
}

static void check_free(sd_check *c) {
    zs_tensor *t[6] = {&c->cond, &c->uncond, &c->noise, &c->lat, &c->dcond, &c->dimg};
    for (int i = 0; i < 6; i++) zs_free(t[i]->data, c->p ? c->p->dev : ZS_CPU);
    zs_sd_pipe_free(c->p);
    free(c->host);
}

static zs_status check_open(sd_check *c, zs_device dev) {
    zs_sd_unet_config u;
    zs_sd_vae_config v;
    zs_sd_unet_config_small(&u);
    zs_sd_vae_config_small(&v);
    ZS_TRY(zs_sd_pipe_random(&c->p, &u, &v, 1, NULL, dev, ZS_F32, 7));
    int64_t es[3] = {1, 77, u.cross_attention_dim}, ls[4] = {1, u.in_channels, 8, 8}, is[4] = {1, 3, 16, 16};
    ZS_TRY(dev_tensor(&c->cond, c->p, 3, es));
    ZS_TRY(dev_tensor(&c->uncond, c->p, 3, es));
    ZS_TRY(dev_tensor(&c->dcond, c->p, 3, es));
    ZS_TRY(dev_tensor(&c->noise, c->p, 4, ls));
    ZS_TRY(dev_tensor(&c->lat, c->p, 4, ls));
    ZS_TRY(dev_tensor(&c->dimg, c->p, 4, is));
    ZS_TRY(zs_rng_normal(&c->cond, 11, 0));
    ZS_TRY(zs_rng_normal(&c->uncond, 12, 0));
    ZS_TRY(zs_rng_normal(&c->noise, 13, 0));
    ZS_TRY(zs_rng_normal(&c->dimg, 14, 0));
    c->host = malloc(sizeof(float) * 77 * 64 * 16);
    return c->host ? ZS_OK : ZS_ERR(ZS_ENOMEM, "selfcheck sd");
}

// Image of 4 Euler steps with CFG 7.5 from the fixed noise, into host (3 x 16 x 16 floats).
static zs_status sample(sd_check *c, float *host) {
    zs_sd_gen g = {4, 7.5f, ZS_SAMPLER_EULER, NULL, NULL};
    const zs_tensor *img;
    ZS_TRY(zs_tensor_copy(&c->lat, &c->noise));
    ZS_TRY(zs_sd_sample(c->p, &g, &c->cond, &c->uncond, &c->lat));
    ZS_TRY(zs_sd_decode(c->p, &c->lat, &img));
    zs_tensor h = zs_tensor_make(host, ZS_F32, ZS_CPU, 4, img->shape);
    return zs_tensor_copy(&h, img);
}

// loss = sum(image * dimg) of the 2-step run; with grad, d cond into c->dcond.
static zs_status loss_of(sd_check *c, int grad, double *loss) {
    zs_sd_gen g = {2, 7.5f, ZS_SAMPLER_EULER, NULL, NULL};
    zs_sd_grad r;
    const zs_tensor *img;
    ZS_TRY(zs_sd_grad_forward(&r, c->p, &g, &c->cond, &c->uncond, &c->noise, &img));
    float *a = c->host, *b = c->host + 3 * 16 * 16;
    zs_tensor ha = zs_tensor_make(a, ZS_F32, ZS_CPU, 4, img->shape), hb = zs_tensor_make(b, ZS_F32, ZS_CPU, 4, img->shape);
    zs_status s = zs_tensor_copy(&ha, img);
    if (!s) s = zs_tensor_copy(&hb, &c->dimg);
    *loss = 0;
    for (int i = 0; !s && i < 3 * 16 * 16; i++) *loss += (double)a[i] * b[i];
    if (!s && grad) s = zs_zero(&c->dcond);
    if (!s && grad) s = zs_sd_grad_backward(&r, &c->dimg, &c->dcond, NULL);
    zs_sd_grad_free(&r);
    return s;
}

zs_status zs_selfcheck_sd(int use_cuda) {
    sd_check c = {0};
    float img[3 * 16 * 16], gimg[3 * 16 * 16];
    zs_status s = check_open(&c, ZS_CPU);
    if (!s) s = sample(&c, img);
    double mean = 0;
    for (int i = 0; !s && i < 3 * 16 * 16; i++) {
        if (!isfinite(img[i])) s = ZS_ERR(ZS_ENAN, "sd: non-finite image value");
        mean += img[i] / (3 * 16 * 16);
    }
    // d loss / d cond along a random direction u: <d cond, u> vs (L(c + h u) - L(c - h u)) / 2h
    double l0, lp, lm, dd = 0, h = 1e-2;
    int64_t n = c.p ? 77 * (int64_t)zs_sd_pipe_ctx_dim(c.p) : 1;
    float *g = malloc(sizeof(float) * (size_t)n), *u = malloc(sizeof(float) * (size_t)n), *x = malloc(sizeof(float) * (size_t)n);
    if (!s && (!g || !u || !x)) s = ZS_ERR(ZS_ENOMEM, "selfcheck sd");
    if (!s) s = loss_of(&c, 1, &l0);
    zs_tensor hg = zs_tensor_make(g, ZS_F32, ZS_CPU, 3, c.cond.shape), hx = zs_tensor_make(x, ZS_F32, ZS_CPU, 3, c.cond.shape);
    if (!s) s = zs_tensor_copy(&hg, &c.dcond);
    if (!s) s = zs_tensor_copy(&hx, &c.cond);
    if (!s) zs_rng_normal_host(u, n, 15, 0);
    for (int64_t i = 0; !s && i < n; i++) dd += (double)g[i] * u[i], x[i] += (float)h * u[i];
    if (!s) s = zs_tensor_copy(&c.cond, &hx);
    if (!s) s = loss_of(&c, 0, &lp);
    for (int64_t i = 0; !s && i < n; i++) x[i] -= (float)(2 * h) * u[i];
    if (!s) s = zs_tensor_copy(&c.cond, &hx);
    if (!s) s = loss_of(&c, 0, &lm);
    double fd = (lp - lm) / (2 * h), err = fabs(fd - dd) / fmax(fabs(fd), 1e-6);
    free(g), free(u), free(x);
    check_free(&c);
    if (s) return s;
    printf("  sd (cpu): small SD 1.x-shaped model, random weights: 4 Euler steps with CFG + VAE -> 16x16 image, "
           "mean %.4f; gradient through 2 steps vs finite difference: %.4g vs %.4g (rel. err %.1e)\n", mean, dd, fd, err);
    if (!(err < 1e-2)) return ZS_ERR(ZS_ENAN, "sd: the gradient through sampling disagrees with a finite difference");
    if (!use_cuda) return ZS_OK;
    sd_check d = {0};
    s = check_open(&d, ZS_CUDA);
    if (!s) s = sample(&d, gimg);
    check_free(&d);
    if (s) return s;
    double num = 0, den = 0;
    for (int i = 0; i < 3 * 16 * 16; i++) num += (gimg[i] - img[i]) * (gimg[i] - img[i]), den += img[i] * img[i];
    double e = sqrt(num / fmax(den, 1e-30));
    printf("  sd (cuda): image rel. err vs cpu %.2e\n", e);
    return e < 1e-4 ? ZS_OK : ZS_ERR(ZS_ENAN, "sd: CUDA image differs from the CPU (rel. err %.2e)", e);
}
