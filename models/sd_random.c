#include "models/sd_random.h"
#include <math.h>
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
