// Stable Diffusion VAE encoder: layout, loading, forward (see models/sd_vae_enc.h).
#include "models/sd_vae_enc.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "kernels/conv.h"
#include "kernels/groupnorm.h"
#include "kernels/ops.h"
#include "models/sd_vae_blocks.h"


// ---- parameters ------------------------------------------------------------------------------
// Same order as the plan's slots (models/sd_plan.c vae_slots).
static zs_status layout_params(zs_vae_reg *r, zs_sd_vae_enc_params *p, const zs_sd_vae_config *c) {
    int n = c->levels, L = c->layers_per_block, cm = c->block_out_channels[n - 1], z2 = 2 * c->latent_channels;
    char q[ZS_SD_VAE_NAME];
    ZS_TRY(zs_vae_reg_conv(r, &p->conv_in, "encoder.conv_in.", c->block_out_channels[0], c->in_channels, 3));
    int prev = c->block_out_channels[0];
    for (int i = 0; i < n; i++) {
        int ch = c->block_out_channels[i];
        for (int j = 0; j < L; j++)
            ZS_TRY(zs_vae_reg_resnet(r, &p->down[i][j], zs_vae_name(q, "encoder.down_blocks.%d.resnets.%d.", i, j), j ? ch : prev, ch));
        if (i < n - 1)
            ZS_TRY(zs_vae_reg_conv(r, &p->downconv[i], zs_vae_name(q, "encoder.down_blocks.%d.downsamplers.0.conv.", i), ch, ch, 3));
        prev = ch;
    }
    ZS_TRY(zs_vae_reg_resnet(r, &p->mid[0], "encoder.mid_block.resnets.0.", cm, cm));
    if (c->mid_block_add_attention) {
        ZS_TRY(zs_vae_reg_attn(r, &p->attn, "encoder.mid_block.attentions.0.", cm));
    }
    ZS_TRY(zs_vae_reg_resnet(r, &p->mid[1], "encoder.mid_block.resnets.1.", cm, cm));
    ZS_TRY(zs_vae_reg_norm(r, &p->norm_out, "encoder.conv_norm_out.", cm));
    ZS_TRY(zs_vae_reg_conv(r, &p->conv_out, "encoder.conv_out.", z2, cm, 3));
    return zs_vae_reg_conv(r, &p->quant_conv, "quant_conv.", z2, z2, 1);
}

zs_status zs_sd_vae_enc_init(zs_sd_vae_enc *e, const zs_sd_vae_config *c, zs_device dev, zs_dtype dt) {
    memset(e, 0, sizeof *e);
    int bad = c->levels < 1 || c->levels > ZS_SD_MAX_LEVELS || c->layers_per_block < 0 ||
              c->layers_per_block > ZS_SD_VAE_MAX_RESNETS || c->latent_channels < 1 || c->in_channels < 1 ||
              c->norm_num_groups < 1;
    for (int i = 0; !bad && i < c->levels; i++)
        bad |= c->block_out_channels[i] < 1 || c->block_out_channels[i] % c->norm_num_groups;
    if (bad)
        return ZS_ERR(ZS_EINVAL, "sd vae encoder: unsupported config (levels %d, layers_per_block %d (at most %d), "
                      "in %d, latent %d, groups %d dividing every block width)", c->levels, c->layers_per_block,
                      ZS_SD_VAE_MAX_RESNETS, c->in_channels, c->latent_channels, c->norm_num_groups);
    e->cfg = *c;
    e->dev = dev, e->dtype = dt;
    zs_arena m;
    zs_sd_vae_enc_params tmp;
    zs_arena_measure(&m, "vae enc params", dev);
    zs_vae_reg r = {&m, dt, 0, NULL, NULL};
    zs_status s = layout_params(&r, &tmp, c);
    if (!s) {
        e->n_params = r.n;
        e->names = calloc((size_t)r.n, sizeof *e->names);
        e->ptab = calloc((size_t)r.n, sizeof *e->ptab);
        if (!e->names || !e->ptab) s = ZS_ERR(ZS_ENOMEM, "sd vae encoder: parameter table");
    }
    if (!s) s = zs_arena_init(&e->params, "vae enc params", dev, m.peak + ZS_ARENA_ALIGN);
    if (!s) {
        zs_vae_reg r2 = {&e->params, dt, 0, e->names, e->ptab};
        s = layout_params(&r2, &e->p, c);
    }
    if (s) zs_sd_vae_enc_free(e);
    return s;
}

void zs_sd_vae_enc_free(zs_sd_vae_enc *e) {
    zs_arena_free(&e->params);
    zs_arena_free(&e->acts);
    free(e->names);
    free(e->ptab);
    memset(e, 0, sizeof *e);
}

const char *zs_sd_vae_enc_param_name(const zs_sd_vae_enc *e, int i) {
    return i >= 0 && i < e->n_params ? e->names[i] : NULL;
}

// ---- loading ---------------------------------------------------------------------------------
zs_status zs_sd_vae_enc_load(zs_sd_vae_enc *e, const zs_sd_plan *p) {
    const zs_sd_vae_config *a = &e->cfg, *b = &p->vae;
    int same = a->levels == b->levels && a->layers_per_block == b->layers_per_block &&
               a->latent_channels == b->latent_channels && a->in_channels == b->in_channels &&
               a->norm_num_groups == b->norm_num_groups && a->mid_block_add_attention == b->mid_block_add_attention &&
               !memcmp(a->block_out_channels, b->block_out_channels, sizeof a->block_out_channels);
    if (!same) return ZS_ERR(ZS_EINVAL, "sd vae encoder: the plan's VAE config differs from the encoder's");
    static const char *const parts[2] = {"encoder.", "quant_conv."};
    return zs_vae_load_slots(p, parts, 2, e->names, e->ptab, e->n_params, "sd vae encoder");
}

zs_status zs_sd_vae_enc_open(zs_sd_vae_enc *e, const char *path, const zs_sd_plan_opts *opts, zs_device dev,
                             zs_dtype dt) {
    zs_sd_plan *p;
    memset(e, 0, sizeof *e);
    ZS_TRY(zs_sd_plan_open(&p, path, opts));
    zs_status s = zs_sd_vae_enc_init(e, &p->vae, dev, dt);
    if (!s) s = zs_sd_vae_enc_load(e, p);
    zs_sd_plan_free(p);
    if (s) zs_sd_vae_enc_free(e);
    return s;
}

// ---- forward ---------------------------------------------------------------------------------
// One pass over the network, carving activations out of arena ar as it goes: with dry = 1 (a
// measuring arena) no kernel runs, so the same code sizes the arena.
typedef struct {
    const zs_sd_vae_enc *e;
    zs_arena *ar;
    int dry;
    int64_t B;
} pass;

#define K(call)                  \
    do {                         \
        if (!ps->dry) ZS_TRY(call); \
    } while (0)

static const zs_conv2d_params P1 = {1, 1, 0, 0, 1}, P3 = {1, 1, 1, 1, 1}, PD = {2, 2, 0, 0, 1};

static zs_status act4(pass *ps, zs_tensor *t, int64_t C, int64_t h, int64_t w, const char *name) {
    int64_t sh[4] = {ps->B, C, h, w};
    return zs_arena_tensor(ps->ar, t, ps->e->dtype, 4, sh, name);
}
static zs_status stats(pass *ps, zs_tensor *t) {
    int64_t sh[2] = {ps->B, ps->e->cfg.norm_num_groups};
    return zs_arena_tensor(ps->ar, t, ZS_F32, 2, sh, "vae enc gn stats");
}
// The shared blocks (models/sd_vae_blocks.c) on temporaries carved after `out`, released
// once the block is done (only block outputs are kept: no backward here).
static zs_status resnet(pass *ps, const zs_vae_resnet *p, const zs_tensor *x, zs_tensor *out) {
    int64_t h = x->shape[2], w = x->shape[3];
    ZS_TRY(act4(ps, out, p->cout, h, w, "vae enc resnet out"));
    size_t mark = zs_arena_mark(ps->ar);
    zs_vae_resnet_acts k = {.x = x, .out = *out};
    ZS_TRY(act4(ps, &k.n1, p->cin, h, w, "vae enc resnet n1"));
    ZS_TRY(act4(ps, &k.c1, p->cout, h, w, "vae enc resnet c1"));
    ZS_TRY(act4(ps, &k.n2, p->cout, h, w, "vae enc resnet n2"));
    ZS_TRY(stats(ps, &k.mean1));
    ZS_TRY(stats(ps, &k.rstd1));
    k.mean2 = k.mean1, k.rstd2 = k.rstd1;  // not kept for a backward: share them
    if (p->cin != p->cout) ZS_TRY(act4(ps, &k.sc, p->cout, h, w, "vae enc resnet shortcut"));
    K(zs_vae_resnet_fwd(p, &k, ps->e->cfg.norm_num_groups));
    zs_arena_reset(ps->ar, mark);
    return ZS_OK;
}

static zs_status attention(pass *ps, const zs_vae_attn *p, const zs_tensor *x, zs_tensor *out) {
    int64_t C = x->shape[1], h = x->shape[2], w = x->shape[3];
    int64_t tok[3] = {ps->B, h * w, C}, lsh[3] = {ps->B, 1, h * w};
    ZS_TRY(act4(ps, out, C, h, w, "vae enc attn out"));
    size_t mark = zs_arena_mark(ps->ar);
    zs_vae_attn_acts t = {.out = *out};
    ZS_TRY(act4(ps, &t.xn, C, h, w, "vae enc attn norm"));
    ZS_TRY(stats(ps, &t.mean));
    ZS_TRY(stats(ps, &t.rstd));
    zs_tensor *tt[6] = {&t.t, &t.q, &t.k, &t.v, &t.o, &t.p};
    for (int i = 0; i < 6; i++) ZS_TRY(zs_arena_tensor(ps->ar, tt[i], ps->e->dtype, 3, tok, "vae enc attn tokens"));
    ZS_TRY(zs_arena_tensor(ps->ar, &t.lse, ZS_F32, 3, lsh, "vae enc attn lse"));
    K(zs_vae_attn_fwd(p, &t, x, ps->e->cfg.norm_num_groups));
    zs_arena_reset(ps->ar, mark);
    return ZS_OK;
}

// y [B, C, H+1, W+1] = x zero-padded by one column on the right and one row at the bottom
// (diffusers Downsample2D's F.pad(x, (0, 1, 0, 1))): zero, then one strided copy per channel.
static zs_status pad01(zs_tensor *y, const zs_tensor *x) {
    int64_t BC = x->shape[0] * x->shape[1], H = x->shape[2], W = x->shape[3];
    size_t es = zs_dtype_size(x->dtype);
    ZS_TRY(zs_memset0(y->data, y->device, zs_nbytes(y)));
    for (int64_t i = 0; i < BC; i++)
        ZS_TRY(zs_memcpy2d((char *)y->data + (size_t)(i * (H + 1) * (W + 1)) * es, (size_t)(W + 1) * es, y->device,
                           (const char *)x->data + (size_t)(i * H * W) * es, (size_t)W * es, x->device, (size_t)W * es,
                           (size_t)H));
    return ZS_OK;
}

static zs_status run(pass *ps, const zs_tensor *image, zs_tensor *moments) {
    const zs_sd_vae_enc *e = ps->e;
    const zs_sd_vae_enc_params *p = &e->p;
    const zs_sd_vae_config *c = &e->cfg;
    int n = c->levels, L = c->layers_per_block;
    int64_t h = image->shape[2], w = image->shape[3];
    zs_tensor cin, rs[ZS_SD_MAX_LEVELS][ZS_SD_VAE_MAX_RESNETS], pd, dc[ZS_SD_MAX_LEVELS], mid0, at, mid1, nout, cout, mean,
        rstd;
    ZS_TRY(act4(ps, &cin, c->block_out_channels[0], h, w, "vae enc conv_in"));
    K(zs_conv2d_fwd(&cin, image, &p->conv_in.w, &p->conv_in.b, &P3));
    const zs_tensor *x = &cin;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < L; j++) {
            ZS_TRY(resnet(ps, &p->down[i][j], x, &rs[i][j]));
            x = &rs[i][j];
        }
        if (i < n - 1) {
            int64_t C = x->shape[1];
            ZS_TRY(act4(ps, &dc[i], C, (h - 2) / 2 + 1, (w - 2) / 2 + 1, "vae enc downsample"));
            size_t mark = zs_arena_mark(ps->ar);
            ZS_TRY(act4(ps, &pd, C, h + 1, w + 1, "vae enc downsample pad"));
            K(pad01(&pd, x));
            K(zs_conv2d_fwd(&dc[i], &pd, &p->downconv[i].w, &p->downconv[i].b, &PD));
            zs_arena_reset(ps->ar, mark);
            h = (h - 2) / 2 + 1, w = (w - 2) / 2 + 1;
            x = &dc[i];
        }
    }
    ZS_TRY(resnet(ps, &p->mid[0], x, &mid0));
    x = &mid0;
    if (c->mid_block_add_attention) {
        ZS_TRY(attention(ps, &p->attn, x, &at));
        x = &at;
    }
    ZS_TRY(resnet(ps, &p->mid[1], x, &mid1));
    ZS_TRY(act4(ps, &nout, mid1.shape[1], h, w, "vae enc conv_norm_out"));
    ZS_TRY(stats(ps, &mean));
    ZS_TRY(stats(ps, &rstd));
    ZS_TRY(act4(ps, &cout, 2 * c->latent_channels, h, w, "vae enc conv_out"));
    K(zs_groupnorm_fwd(&nout, &mean, &rstd, &mid1, &p->norm_out.w, &p->norm_out.b, c->norm_num_groups, ZS_VAE_EPS, 1));
    K(zs_conv2d_fwd(&cout, &nout, &p->conv_out.w, &p->conv_out.b, &P3));
    K(zs_conv2d_fwd(moments, &cout, &p->quant_conv.w, &p->quant_conv.b, &P1));
    return ZS_OK;
}

zs_status zs_sd_vae_enc_moments_shape(const zs_sd_vae_enc *e, int64_t B, int64_t H, int64_t W, int64_t shape[4]) {
    const zs_sd_vae_config *c = &e->cfg;
    if (!e->params.base) return ZS_ERR(ZS_EINVAL, "sd vae encoder: not initialised");
    int64_t h = H, w = W;
    int ok = B >= 1 && h >= 1 && w >= 1;
    for (int i = 0; ok && i < c->levels - 1; i++) {
        ok = h >= 2 && w >= 2;
        h = (h - 2) / 2 + 1, w = (w - 2) / 2 + 1;
    }
    if (!ok)
        return ZS_ERR(ZS_EINVAL, "sd vae encoder: image [%lld, %d, %lld, %lld] too small for %d downsamples",
                      (long long)B, c->in_channels, (long long)H, (long long)W, c->levels - 1);
    shape[0] = B, shape[1] = 2 * c->latent_channels, shape[2] = h, shape[3] = w;
    return ZS_OK;
}

zs_status zs_sd_vae_enc_encode(zs_sd_vae_enc *e, const zs_tensor *image, zs_tensor *moments_out) {
    const zs_sd_vae_config *c = &e->cfg;
    if (!e->params.base) return ZS_ERR(ZS_EINVAL, "sd vae encoder: encode before init / open");
    if (image->ndim != 4 || image->shape[1] != c->in_channels)
        return ZS_ERR(ZS_EINVAL, "sd vae encoder: image must be [B, %d, H, W]", c->in_channels);
    if (image->device != e->dev || image->dtype != e->dtype || moments_out->device != e->dev ||
        moments_out->dtype != e->dtype)
        return ZS_ERR(ZS_EINVAL, "sd vae encoder: image / moments must be on the encoder's device and dtype");
    int64_t ms[4];
    ZS_TRY(zs_sd_vae_enc_moments_shape(e, image->shape[0], image->shape[2], image->shape[3], ms));
    ZS_TRY(zs_check_shape(moments_out, "sd vae encoder: moments", 4, ms));
    zs_arena m;
    zs_arena_measure(&m, "vae enc acts", e->dev);
    pass dry = {e, &m, 1, image->shape[0]};
    ZS_TRY(run(&dry, image, moments_out));
    if (!e->acts.base || e->acts.cap < m.peak + ZS_ARENA_ALIGN) {
        zs_arena_free(&e->acts);
        ZS_TRY(zs_arena_init(&e->acts, "vae enc acts", e->dev, m.peak + ZS_ARENA_ALIGN));
    }
    zs_arena_reset(&e->acts, 0);
    pass real = {e, &e->acts, 0, image->shape[0]};
    return run(&real, image, moments_out);
}

// ---- the diagonal Gaussian -------------------------------------------------------------------
static zs_status gauss(const zs_tensor *m, zs_tensor *out, int which, const char *what) {
    if (m->ndim != 4 || m->shape[1] % 2 || m->device != ZS_CPU || m->dtype != ZS_F32 || out->device != ZS_CPU ||
        out->dtype != ZS_F32)
        return ZS_ERR(ZS_EINVAL, "sd vae encoder %s: moments must be CPU F32 [B, 2 z, h, w], out CPU F32", what);
    int64_t z = m->shape[1] / 2, hw = m->shape[2] * m->shape[3], sh[4] = {m->shape[0], z, m->shape[2], m->shape[3]};
    ZS_TRY(zs_check_shape(out, what, 4, sh));
    const float *s = m->data;
    float *o = out->data;
    for (int64_t b = 0; b < m->shape[0]; b++)
        for (int64_t i = 0; i < z * hw; i++) {
            float x = s[(b * 2 * z + (which ? z : 0)) * hw + i];
            if (which) {
                x = x < -30.0f ? -30.0f : x > 20.0f ? 20.0f : x;
                if (which == 2) x = expf(0.5f * x);
            }
            o[b * z * hw + i] = x;
        }
    return ZS_OK;
}

zs_status zs_sd_vae_enc_mean(const zs_tensor *moments, zs_tensor *out) { return gauss(moments, out, 0, "mean"); }
zs_status zs_sd_vae_enc_logvar(const zs_tensor *moments, zs_tensor *out) { return gauss(moments, out, 1, "logvar"); }
zs_status zs_sd_vae_enc_std(const zs_tensor *moments, zs_tensor *out) { return gauss(moments, out, 2, "std"); }
