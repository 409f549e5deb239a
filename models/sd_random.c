#include "models/sd_random.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "engine/rng.h"

// 1-D "<...>.weight" = norm weight (1), other 1-D = bias (0), the rest N(0, 1/fan_in).
static zs_status fill_one(zs_tensor *t, const char *name, uint64_t seed, uint64_t *offset, float **buf, int64_t *cap) {
    int64_t n = zs_numel(t);
    if (n > *cap) {
        float *b = realloc(*buf, (size_t)n * sizeof(float));
        if (!b) return ZS_ERR(ZS_ENOMEM, "sd random: %lld floats for %s", (long long)n, name);
        *buf = b, *cap = n;
    }
    size_t len = strlen(name);
    if (t->ndim == 1) {
        float v = len >= 7 && !strcmp(name + len - 7, ".weight") ? 1.0f : 0.0f;
        for (int64_t i = 0; i < n; i++) (*buf)[i] = v;
    } else {
        float sd = (float)(1.0 / sqrt((double)(n / t->shape[0])));
        zs_rng_normal_host(*buf, n, seed, *offset);
        *offset += (uint64_t)n;
        for (int64_t i = 0; i < n; i++) (*buf)[i] *= sd;
    }
    zs_tensor h = zs_tensor_make(*buf, ZS_F32, ZS_CPU, t->ndim, t->shape);
    return zs_tensor_copy(t, &h);
}

zs_status zs_sd_unet_init_random(zs_sd_unet *u, uint64_t seed) {
    float *buf = NULL;
    int64_t cap = 0;
    uint64_t off = 0;
    zs_status s = ZS_OK;
    for (int i = 0; i < zs_sd_unet_n_params(u) && !s; i++)
        s = fill_one(zs_sd_unet_param(u, i), zs_sd_unet_param_name(u, i), seed, &off, &buf, &cap);
    free(buf);
    return s;
}

zs_status zs_sd_vae_init_random(zs_sd_vae *v, uint64_t seed) {
    float *buf = NULL;
    int64_t cap = 0;
    uint64_t off = 0;
    zs_status s = ZS_OK;
    for (int i = 0; i < v->n_params && !s; i++) s = fill_one(v->ptab[i], v->names[i], seed, &off, &buf, &cap);
    free(buf);
    return s;
}

void zs_sd_unet_config_small(zs_sd_unet_config *c) {
    zs_sd_unet_config_default(c, 1);
    c->levels = 2;
    c->block_out_channels[0] = 32, c->block_out_channels[1] = 64;
    c->down_attn[0] = 1, c->down_attn[1] = 0;  // CrossAttnDownBlock2D, DownBlock2D
    c->up_attn[0] = 0, c->up_attn[1] = 1;      // UpBlock2D, CrossAttnUpBlock2D
    c->heads[0] = c->heads[1] = 2;
    c->layers_per_block = 1;
    c->cross_attention_dim = 48;
    c->norm_num_groups = 8;
    c->sample_size = 8;
    c->time_embed_dim = 4 * 32;
}

void zs_sd_vae_config_small(zs_sd_vae_config *c) {
    zs_sd_vae_config_default(c, 1);
    c->levels = 2;
    c->block_out_channels[0] = 32, c->block_out_channels[1] = 64;
    c->layers_per_block = 1;
    c->norm_num_groups = 8;
    c->sample_size = 16;
}

zs_status zs_sd_pipe_random(zs_sd_pipe **out, const zs_sd_unet_config *u, const zs_sd_vae_config *v, int version,
                            const char *pred, zs_device dev, zs_dtype dt, uint64_t seed) {
    *out = NULL;
    zs_sd_pipe *p = calloc(1, sizeof *p);
    if (!p) return ZS_ERR(ZS_ENOMEM, "sd random pipeline");
    p->dev = dev, p->dt = dt, p->version = version, p->unet_ctx = u->cross_attention_dim;
    p->vae_factor = 1 << (v->levels - 1), p->default_size = u->sample_size * p->vae_factor;
    snprintf(p->path, sizeof p->path, "(random SD %d.x-shaped weights)", version);
    snprintf(p->pred, sizeof p->pred, "%s", pred ? pred : version == 2 ? "v_prediction" : "epsilon");
    snprintf(p->notes, sizeof p->notes, "random weights, seed %llu; ", (unsigned long long)seed);
    zs_status s = zs_sd_unet_create(&p->unet, u, dev, dt);
    if (!s) s = zs_sd_unet_init_random(p->unet, seed);
    if (!s) s = zs_sd_vae_init(&p->vae, v, dev, dt);
    if (!s) s = zs_sd_vae_init_random(&p->vae, seed + 1);
    if (s) {
        zs_sd_pipe_free(p);
        return s;
    }
    *out = p;
    return ZS_OK;
}
