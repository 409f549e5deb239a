// Stable Diffusion sampling, decoding and the gradient through sampling (see
// models/sd_pipeline.h): the sampler loop with CFG shared by both, the VAE with its optional
// upcast, and the backward walk over the steps.
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "kernels/ops.h"
#include "models/sd_pipeline.h"

// ---- sampling --------------------------------------------------------------------------------
// Working tensors of one sampling run: UNet input / context / output for nb = B or 2B rows.
typedef zs_sd_run run;

static zs_status batch_view(zs_tensor *v, const zs_tensor *t, int64_t row0, int64_t rows) {
    int64_t sh[ZS_MAX_DIMS];
    memcpy(sh, t->shape, sizeof sh);
    sh[0] = rows;
    return zs_view(v, t, row0 * (zs_numel(t) / t->shape[0]), t->ndim, sh);
}

// Lays out the run's tensors in arena a (measure or real).
static zs_status run_layout(run *r, zs_arena *a, const zs_sd_pipe *p, int64_t B, int64_t h, int64_t w, float cfg) {
    const zs_sd_unet_config *c = zs_sd_unet_cfg(p->unet);
    r->B = B, r->cfg_on = cfg > 1, r->cfg = cfg, r->nb = r->cfg_on ? 2 * B : B;
    int64_t x[4] = {r->nb, c->in_channels, h, w}, o[4] = {r->nb, c->out_channels, h, w},
            e[4] = {B, c->out_channels, h, w}, k[3] = {r->nb, ZS_CLIP_CONTEXT, c->cross_attention_dim};
    ZS_TRY(zs_arena_tensor(a, &r->xin, p->dt, 4, x, "sd.unet_in"));
    ZS_TRY(zs_arena_tensor(a, &r->ctx, p->dt, 3, k, "sd.context"));
    ZS_TRY(zs_arena_tensor(a, &r->out, p->dt, 4, o, "sd.unet_out"));
    if (r->cfg_on) return zs_arena_tensor(a, &r->eps, p->dt, 4, e, "sd.guided");
    return batch_view(&r->eps, &r->out, 0, B);
}

// ctx = [uncond; cond] (or cond).
static zs_status run_context(run *r, const zs_tensor *cond, const zs_tensor *uncond) {
    int64_t sh[3] = {r->B, ZS_CLIP_CONTEXT, r->ctx.shape[2]};
    ZS_TRY(zs_check_shape(cond, "sd pipeline: cond", 3, sh));
    zs_tensor v;
    ZS_TRY(batch_view(&v, &r->ctx, r->nb - r->B, r->B));
    ZS_TRY(zs_tensor_copy(&v, cond));
    if (!r->cfg_on) return ZS_OK;
    if (!uncond) return ZS_ERR(ZS_EINVAL, "sd pipeline: guidance %g > 1 needs the unconditional embeddings", r->cfg);
    ZS_TRY(zs_check_shape(uncond, "sd pipeline: uncond", 3, sh));
    ZS_TRY(batch_view(&v, &r->ctx, 0, r->B));
    return zs_tensor_copy(&v, uncond);
}

// r->eps = the guided model output at step i for latents x.
static zs_status run_model(run *r, zs_sd_pipe *p, const zs_sched *s, int i, const zs_tensor *x) {
    zs_tensor a, b;
    ZS_TRY(batch_view(&a, &r->xin, 0, r->B));
    ZS_TRY(zs_sched_scale_model_input(s, &a, x, i));
    if (r->cfg_on) {
        ZS_TRY(batch_view(&b, &r->xin, r->B, r->B));
        ZS_TRY(zs_tensor_copy(&b, &a));
    }
    float t[512];
    if (r->nb > (int64_t)(sizeof t / sizeof t[0])) return ZS_ERR(ZS_EINVAL, "sd pipeline: batch %lld too large", (long long)r->B);
    for (int64_t k = 0; k < r->nb; k++) t[k] = zs_sched_timesteps(s)[i];
    ZS_TRY(zs_sd_unet_fwd(p->unet, &r->out, &r->xin, t, &r->ctx));
    if (!r->cfg_on) return ZS_OK;
    ZS_TRY(batch_view(&a, &r->out, 0, r->B));
    ZS_TRY(batch_view(&b, &r->out, r->B, r->B));
    return zs_cfg_combine(&r->eps, &a, &b, r->cfg);
}

static zs_status check_latents(const zs_sd_pipe *p, const zs_tensor *x) {
    const zs_sd_unet_config *c = zs_sd_unet_cfg(p->unet);
    if (x->ndim != 4 || x->shape[1] != c->in_channels || x->shape[0] < 1)
        return ZS_ERR(ZS_EINVAL, "sd pipeline: latents must be [B, %d, h, w]", c->in_channels);
    if (x->device != p->dev || x->dtype != p->dt) return ZS_ERR(ZS_EINVAL, "sd pipeline: latents on another device / dtype");
    return ZS_OK;
}

// The steps, from latents scaled by init_noise_sigma; traj (may be NULL) gets each step's input.
static zs_status run_steps(run *r, zs_sd_pipe *p, zs_sched *s, const zs_sd_gen *g, zs_tensor *x, zs_tensor *traj) {
    ZS_TRY(zs_sd_unet_setup(p->unet, r->nb, x->shape[2], x->shape[3], ZS_CLIP_CONTEXT, traj != NULL));
    for (int i = 0; i < g->steps; i++) {
        if (traj) ZS_TRY(zs_tensor_copy(&traj[i], x));
        ZS_TRY(run_model(r, p, s, i, x));
        ZS_TRY(zs_sched_step(s, x, &r->eps, x, i));
        if (g->on_step) g->on_step(g->user, i + 1, g->steps);
    }
    return ZS_OK;
}

static zs_status sched_for(const zs_sd_pipe *p, const zs_sd_gen *g, zs_sched *s) {
    if (g->steps < 1) return ZS_ERR(ZS_EINVAL, "sd pipeline: steps must be >= 1 (got %d)", g->steps);
    ZS_TRY(zs_sd_pipe_sched(p, g->sampler, s));
    zs_status st = zs_sched_set_timesteps(s, g->steps);
    if (st) zs_sched_free(s);
    return st;
}

zs_status zs_sd_sample(zs_sd_pipe *p, const zs_sd_gen *g, const zs_tensor *cond, const zs_tensor *uncond,
                       zs_tensor *latents) {
    ZS_TRY(check_latents(p, latents));
    zs_sched s;
    ZS_TRY(sched_for(p, g, &s));
    run r;
    zs_arena m, a = {0};
    zs_arena_measure(&m, "sd sampling", p->dev);
    zs_status st = run_layout(&r, &m, p, latents->shape[0], latents->shape[2], latents->shape[3], g->cfg);
    if (!st) st = zs_arena_init(&a, "sd sampling", p->dev, m.peak);
    if (!st) st = run_layout(&r, &a, p, latents->shape[0], latents->shape[2], latents->shape[3], g->cfg);
    if (!st) st = run_context(&r, cond, uncond);
    if (!st) st = zs_sched_scale_noise(&s, latents);
    if (!st) st = run_steps(&r, p, &s, g, latents, NULL);
    zs_arena_free(&a);
    zs_sched_free(&s);
    return st;
}

// Decodes latents with the VAE (train: set up for its backward), converting them first when the
// VAE runs in another dtype (force_upcast).
static zs_status vae_decode(zs_sd_pipe *p, const zs_tensor *latents, int train) {
    ZS_TRY(zs_sd_vae_setup(&p->vae, latents->shape[0], latents->shape[2], latents->shape[3], train));
    if (p->vae.dtype == latents->dtype) return zs_sd_vae_decode(&p->vae, latents);
    zs_tensor t = zs_tensor_make(NULL, p->vae.dtype, p->dev, 4, latents->shape);
    ZS_TRY(zs_malloc(&t.data, zs_nbytes(&t), p->dev, "sd pipeline: VAE latents"));
    zs_status s = zs_tensor_copy(&t, latents);
    if (!s) s = zs_sd_vae_decode(&p->vae, &t);
    zs_free(t.data, p->dev);
    return s;
}

// d_latents = the VAE backward's gradient w.r.t. its latents (overwritten), in d_latents' dtype.
static zs_status vae_decode_bwd(zs_sd_pipe *p, const zs_tensor *d_image, zs_tensor *d_latents) {
    ZS_TRY(zs_zero(d_latents));
    if (p->vae.dtype == d_latents->dtype) return zs_sd_vae_decode_bwd(&p->vae, d_image, d_latents);
    zs_tensor t = zs_tensor_make(NULL, p->vae.dtype, p->dev, 4, d_latents->shape);
    ZS_TRY(zs_malloc(&t.data, zs_nbytes(&t), p->dev, "sd pipeline: VAE d_latents"));
    zs_status s = zs_zero(&t);
    if (!s) s = zs_sd_vae_decode_bwd(&p->vae, d_image, &t);
    if (!s) s = zs_tensor_copy(d_latents, &t);
    zs_free(t.data, p->dev);
    return s;
}

zs_status zs_sd_decode(zs_sd_pipe *p, const zs_tensor *latents, const zs_tensor **image) {
    ZS_TRY(check_latents(p, latents));
    int train = p->vae.acts.base && p->vae.a.train && p->vae.a.B == latents->shape[0] &&
                p->vae.a.h == latents->shape[2] && p->vae.a.w == latents->shape[3];
    ZS_TRY(vae_decode(p, latents, train));
    *image = &p->vae.a.image;
    return ZS_OK;
}

// ---- gradient through sampling -----------------------------------------------------------------
// Latents [B, 4, h, w] of noise's shape; the run and the gradient tensors in arena a.
static zs_status grad_layout(zs_sd_grad *r, zs_arena *a, const zs_tensor *noise) {
    const zs_sd_pipe *p = r->p;
    const int64_t *x = noise->shape;
    ZS_TRY(run_layout(&r->run, a, p, x[0], x[2], x[3], r->g.cfg));
    for (int i = 0; i <= r->g.steps; i++) ZS_TRY(zs_arena_tensor(a, &r->traj[i], p->dt, 4, x, "sd.trajectory"));
    zs_tensor *b[4] = {&r->dx, &r->dx2, &r->deps, &r->carry};
    for (int i = 0; i < 4; i++) ZS_TRY(zs_arena_tensor(a, b[i], p->dt, 4, x, "sd.d_latents"));
    ZS_TRY(zs_arena_tensor(a, &r->dxin, p->dt, 4, r->run.xin.shape, "sd.d_unet_in"));
    ZS_TRY(zs_arena_tensor(a, &r->dout, p->dt, 4, r->run.out.shape, "sd.d_unet_out"));
    return zs_arena_tensor(a, &r->dctx, p->dt, 3, r->run.ctx.shape, "sd.d_context");
}

static zs_status host_layout(zs_sd_grad *r, zs_arena *a) {
    ZS_TRY(zs_arena_tensor(a, &r->dctx_step, ZS_F32, 3, r->run.ctx.shape, "sd.d_context (step, F32)"));
    return zs_arena_tensor(a, &r->dctx_sum, ZS_F32, 3, r->run.ctx.shape, "sd.d_context (sum, F32)");
}

zs_status zs_sd_grad_forward(zs_sd_grad *r, zs_sd_pipe *p, const zs_sd_gen *g, const zs_tensor *cond,
                             const zs_tensor *uncond, const zs_tensor *noise, const zs_tensor **image) {
    memset(r, 0, sizeof *r);
    ZS_TRY(check_latents(p, noise));
    r->g = *g;
    ZS_TRY(sched_for(p, g, &r->sched));
    r->p = p;  // from here zs_sd_grad_free releases the scheduler
    r->traj = calloc((size_t)g->steps + 1, sizeof *r->traj);
    if (!r->traj) {
        zs_sd_grad_free(r);
        return ZS_ERR(ZS_ENOMEM, "sd gradient: trajectory");
    }
    zs_arena m;
    zs_arena_measure(&m, "sd gradient", p->dev);
    zs_status s = grad_layout(r, &m, noise);
    if (!s) s = zs_arena_init(&r->mem, "sd gradient", p->dev, m.peak);
    if (!s) s = grad_layout(r, &r->mem, noise);
    zs_arena_measure(&m, "sd gradient (host)", ZS_CPU);
    if (!s) s = host_layout(r, &m);
    if (!s) s = zs_arena_init(&r->host, "sd gradient (host)", ZS_CPU, m.peak);
    if (!s) s = host_layout(r, &r->host);
    if (!s) s = run_context(&r->run, cond, uncond);
    zs_tensor *x = &r->traj[g->steps];  // the running latents end as the final ones
    if (!s) s = zs_tensor_copy(x, noise);
    if (!s) s = zs_sched_scale_noise(&r->sched, x);
    if (!s) s = run_steps(&r->run, p, &r->sched, g, x, r->traj);
    if (!s) s = vae_decode(p, x, 1);
    if (s) {
        zs_sd_grad_free(r);
        return s;
    }
    *image = &p->vae.a.image;
    return ZS_OK;
}

zs_status zs_sd_grad_backward(zs_sd_grad *r, const zs_tensor *d_image, zs_tensor *d_cond, zs_tensor *d_uncond) {
    zs_sd_pipe *p = r->p;
    if (!p || !r->traj) return ZS_ERR(ZS_EINVAL, "sd gradient: backward without a forward");
    run *rr = &r->run;
    zs_tensor *dx = &r->dx, *dx2 = &r->dx2;
    ZS_TRY(vae_decode_bwd(p, d_image, dx));  // d final latents
    ZS_TRY(zs_zero(&r->carry));
    ZS_TRY(zs_zero(&r->dctx_sum));
    for (int i = r->g.steps - 1; i >= 0; i--) {
        const zs_tensor *x = &r->traj[i];
        ZS_TRY(run_model(rr, p, &r->sched, i, x));  // re-run step i's UNet call (kept for its backward)
        ZS_TRY(zs_zero(dx2));
        ZS_TRY(zs_zero(&r->deps));
        ZS_TRY(zs_sched_step_bwd(&r->sched, i, dx2, &r->deps, dx, x, &rr->eps, &r->carry));
        ZS_TRY(zs_zero(&r->dout));
        zs_tensor a, b;
        if (rr->cfg_on) {
            ZS_TRY(batch_view(&a, &r->dout, 0, rr->B));
            ZS_TRY(batch_view(&b, &r->dout, rr->B, rr->B));
            ZS_TRY(zs_cfg_combine_bwd(&a, &b, &r->deps, r->g.cfg));
        } else {
            ZS_TRY(zs_add_bwd(&r->dout, NULL, &r->deps));
        }
        ZS_TRY(zs_zero(&r->dxin));
        ZS_TRY(zs_zero(&r->dctx));
        ZS_TRY(zs_sd_unet_bwd(p->unet, &r->dout, &r->dxin, &r->dctx));
        ZS_TRY(zs_tensor_copy(&r->dctx_step, &r->dctx));
        ZS_TRY(zs_add_fwd(&r->dctx_sum, &r->dctx_sum, &r->dctx_step));
        for (int64_t h = 0; h < rr->nb; h += rr->B) {
            ZS_TRY(batch_view(&a, &r->dxin, h, rr->B));
            ZS_TRY(zs_sched_scale_model_input_bwd(&r->sched, dx2, &a, i));
        }
        zs_tensor *t = dx;
        dx = dx2, dx2 = t;
    }
    ZS_TRY(zs_tensor_copy(&r->dctx, &r->dctx_sum));
    zs_tensor a;
    if (d_cond) {
        ZS_TRY(batch_view(&a, &r->dctx, rr->nb - rr->B, rr->B));
        ZS_TRY(zs_add_fwd(d_cond, d_cond, &a));
    }
    if (d_uncond && rr->cfg_on) {
        ZS_TRY(batch_view(&a, &r->dctx, 0, rr->B));
        ZS_TRY(zs_add_fwd(d_uncond, d_uncond, &a));
    }
    return ZS_OK;
}

void zs_sd_grad_free(zs_sd_grad *r) {
    zs_arena_free(&r->mem);
    zs_arena_free(&r->host);
    free(r->traj);
    if (r->p) zs_sched_free(&r->sched);
    memset(r, 0, sizeof *r);
}
