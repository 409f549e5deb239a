// Random-weight CLIP models (see clip_random.h).
#include "models/clip_random.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "engine/rng.h"

zs_clip_vision_cfg zs_clip_cfg_vit_b32(void) {
    zs_clip_vision_cfg c = {224, 224, 3, 32, 768, 12, 12, 3072, 512, ZS_ACT_QUICKGELU, 1e-5f};
    return c;
}
zs_clip_vision_cfg zs_clip_cfg_vit_b16(void) {
    zs_clip_vision_cfg c = zs_clip_cfg_vit_b32();
    c.patch = 16;
    return c;
}
static zs_clip_text_cfg text_cfg(int width, int layers, int heads, int embed, zs_act act) {
    zs_clip_text_cfg c = {49408, 77, width, layers, heads, 4 * width, embed, act, 1e-5f, ZS_POOL_ARGMAX, 49407, layers};
    return c;
}
zs_clip_text_cfg zs_clip_cfg_text_vit_l14(void) { return text_cfg(768, 12, 12, 768, ZS_ACT_QUICKGELU); }
zs_clip_text_cfg zs_clip_cfg_text_vit_h14(void) { return text_cfg(1024, 24, 16, 1024, ZS_ACT_GELU); }
zs_clip_text_cfg zs_clip_cfg_text_vit_b32(void) { return text_cfg(512, 12, 8, 512, ZS_ACT_QUICKGELU); }
zs_clip_resnet_cfg zs_clip_cfg_rn50(void) {
    zs_clip_resnet_cfg c = {{3, 4, 6, 3}, 64, 224, 3, 32, 1024, 1e-5f};
    return c;
}

typedef struct {
    uint64_t seed, offset;
    float *buf;
    int64_t cap;
} filler;

// kind: 0 constant `v`, 1 normal with std `v`.
static zs_status fill(filler *f, zs_tensor *t, int kind, double v) {
    int64_t n = zs_numel(t);
    if (n > f->cap) {
        float *b = realloc(f->buf, (size_t)n * sizeof(float));
        if (!b) return ZS_ERR(ZS_ENOMEM, "clip random: %lld floats for %s", (long long)n, t->name ? t->name : "a tensor");
        f->buf = b, f->cap = n;
    }
    if (kind) {
        zs_rng_normal_host(f->buf, n, f->seed, f->offset);
        f->offset += (uint64_t)n;
        for (int64_t i = 0; i < n; i++) f->buf[i] *= (float)v;
    } else {
        for (int64_t i = 0; i < n; i++) f->buf[i] = (float)v;
    }
    zs_tensor h = zs_tensor_make(f->buf, ZS_F32, ZS_CPU, t->ndim, t->shape);
    return zs_tensor_copy(t, &h);
}

static zs_status fill_block(filler *f, zs_tf_block *b, int W, int M) {
    double sw = 1 / sqrt((double)W), sm = 1 / sqrt((double)M);
    ZS_TRY(fill(f, &b->ln1_w, 0, 1));
    ZS_TRY(fill(f, &b->ln1_b, 0, 0));
    ZS_TRY(fill(f, &b->in_w, 1, sw));
    ZS_TRY(fill(f, &b->in_b, 0, 0));
    ZS_TRY(fill(f, &b->out_w, 1, sw));
    ZS_TRY(fill(f, &b->out_b, 0, 0));
    ZS_TRY(fill(f, &b->ln2_w, 0, 1));
    ZS_TRY(fill(f, &b->ln2_b, 0, 0));
    ZS_TRY(fill(f, &b->fc_w, 1, sw));
    ZS_TRY(fill(f, &b->fc_b, 0, 0));
    ZS_TRY(fill(f, &b->proj_w, 1, sm));
    return fill(f, &b->proj_b, 0, 0);
}

static zs_status fill_text(filler *f, zs_clip_text *t) {
    const zs_clip_text_cfg *c = &t->cfg;
    zs_clip_text_params *p = &t->p;
    ZS_TRY(fill(f, &p->tok, 1, 0.02));
    ZS_TRY(fill(f, &p->pos, 1, 0.01));
    for (int i = 0; i < c->layers; i++) ZS_TRY(fill_block(f, &p->blocks[i], c->width, c->mlp));
    ZS_TRY(fill(f, &p->lnf_w, 0, 1));
    ZS_TRY(fill(f, &p->lnf_b, 0, 0));
    if (c->embed) ZS_TRY(fill(f, &p->proj, 1, 1 / sqrt((double)c->width)));
    return ZS_OK;
}

static zs_status fill_vision(filler *f, zs_clip_vision *v) {
    const zs_clip_vision_cfg *c = &v->cfg;
    zs_clip_vision_params *p = &v->p;
    double sw = 1 / sqrt((double)c->width);
    ZS_TRY(fill(f, &p->patch_w, 1, 1 / sqrt((double)c->channels * c->patch * c->patch)));
    ZS_TRY(fill(f, &p->cls, 1, sw));
    ZS_TRY(fill(f, &p->pos, 1, sw));
    ZS_TRY(fill(f, &p->ln_pre_w, 0, 1));
    ZS_TRY(fill(f, &p->ln_pre_b, 0, 0));
    for (int i = 0; i < c->layers; i++) ZS_TRY(fill_block(f, &p->blocks[i], c->width, c->mlp));
    ZS_TRY(fill(f, &p->ln_post_w, 0, 1));
    ZS_TRY(fill(f, &p->ln_post_b, 0, 0));
    if (c->embed) ZS_TRY(fill(f, &p->proj, 1, sw));
    return ZS_OK;
}

static zs_status fill_conv(filler *f, zs_tensor *t) {
    double fan = (double)t->shape[1] * (t->ndim == 4 ? (double)t->shape[2] * t->shape[3] : 1);
    return fill(f, t, 1, 1 / sqrt(fan));
}
static zs_status fill_bn(filler *f, zs_rn_bn *b) {
    ZS_TRY(fill(f, &b->w, 0, 1));
    ZS_TRY(fill(f, &b->b, 0, 0));
    ZS_TRY(fill(f, &b->mean, 0, 0));
    return fill(f, &b->var, 0, 1);
}

static zs_status fill_resnet(filler *f, zs_clip_resnet *r) {
    zs_clip_resnet_params *p = &r->p;
    double sd = 1 / sqrt((double)r->D);
    ZS_TRY(fill_conv(f, &p->conv1));
    ZS_TRY(fill_bn(f, &p->bn1));
    ZS_TRY(fill_conv(f, &p->conv2));
    ZS_TRY(fill_bn(f, &p->bn2));
    ZS_TRY(fill_conv(f, &p->conv3));
    ZS_TRY(fill_bn(f, &p->bn3));
    for (int i = 0; i < r->nblocks; i++) {
        zs_rn_block *b = &p->blocks[i];
        ZS_TRY(fill_conv(f, &b->conv1));
        ZS_TRY(fill_bn(f, &b->bn1));
        ZS_TRY(fill_conv(f, &b->conv2));
        ZS_TRY(fill_bn(f, &b->bn2));
        ZS_TRY(fill_conv(f, &b->conv3));
        ZS_TRY(fill_bn(f, &b->bn3));
        if (b->ds) {
            ZS_TRY(fill_conv(f, &b->ds_conv));
            ZS_TRY(fill_bn(f, &b->ds_bn));
        }
    }
    ZS_TRY(fill(f, &p->pos, 1, sd));
    zs_tensor *w[4] = {&p->q_w, &p->k_w, &p->v_w, &p->c_w}, *bias[4] = {&p->q_b, &p->k_b, &p->v_b, &p->c_b};
    for (int i = 0; i < 4; i++) {
        ZS_TRY(fill(f, w[i], 1, sd));
        ZS_TRY(fill(f, bias[i], 0, 0));
    }
    return ZS_OK;
}

static zs_status init(zs_clip *m, const zs_clip_text_cfg *tc, const zs_clip_vision_cfg *vc, const zs_clip_resnet_cfg *rc,
                      uint64_t seed) {
    if (!tc && !vc && !rc) return ZS_ERR(ZS_EINVAL, "clip random: no tower");
    if (rc && tc && tc->embed != rc->embed)
        return ZS_ERR(ZS_EINVAL, "clip random: text and vision projections differ (%d vs %d)", tc->embed, rc->embed);
    if (m->device == ZS_CPU && m->dtype != ZS_F32)
        return ZS_ERR(ZS_EUNSUPPORTED, "clip random: the CPU computes in F32 only (asked for %s)", zs_dtype_name(m->dtype));
    if (tc && vc && tc->embed != vc->embed)
        return ZS_ERR(ZS_EINVAL, "clip random: text and vision projections differ (%d vs %d)", tc->embed, vc->embed);
    filler f = {seed, 0, NULL, 0};
    zs_status s = ZS_OK;
    if (tc) {
        m->text = *tc;
        m->towers |= ZS_CLIP_TEXT;
        s = zs_clip_text_init(&m->t, tc, m->device, m->dtype, 0);
        if (!s) s = fill_text(&f, &m->t);
    }
    if (vc && !s) {
        m->vision = *vc;
        m->towers |= ZS_CLIP_VISION;
        s = zs_clip_vision_init(&m->v, vc, m->device, m->dtype, 0);
        if (!s) s = fill_vision(&f, &m->v);
    }
    if (rc && !s) {
        m->resnet = *rc;
        m->vision_resnet = 1;
        m->towers |= ZS_CLIP_VISION;
        s = zs_clip_resnet_init(&m->r, rc, m->device, m->dtype, 0);
        if (!s) s = fill_resnet(&f, &m->r);
    }
    free(f.buf);
    m->has_logit_scale = tc && (vc || rc);
    m->logit_scale = (float)log(1 / 0.07);
    return s;
}

static zs_status make(zs_clip **out, const zs_clip_text_cfg *text, const zs_clip_vision_cfg *vision,
                      const zs_clip_resnet_cfg *resnet, zs_device dev, zs_dtype dt, uint64_t seed) {
    *out = NULL;
    zs_clip *m = calloc(1, sizeof *m);
    if (!m) return ZS_ERR(ZS_ENOMEM, "clip random: model struct");
    m->format = ZS_CLIP_FMT_OPENAI;
    m->device = dev, m->dtype = dt;
    snprintf(m->source, sizeof m->source, "random (seed %llu)", (unsigned long long)seed);
    snprintf(m->notes, sizeof m->notes, "random weights from configs in code");
    zs_status s = init(m, text, vision, resnet, seed);
    if (s) {
        zs_clip_free(m);
        return s;
    }
    *out = m;
    return ZS_OK;
}

zs_status zs_clip_init_random(zs_clip **out, const zs_clip_text_cfg *text, const zs_clip_vision_cfg *vision,
                              zs_device dev, zs_dtype dt, uint64_t seed) {
    return make(out, text, vision, NULL, dev, dt, seed);
}

zs_status zs_clip_init_random_rn(zs_clip **out, const zs_clip_text_cfg *text, const zs_clip_resnet_cfg *resnet,
                                 zs_device dev, zs_dtype dt, uint64_t seed) {
    return make(out, text, NULL, resnet, dev, dt, seed);
}

int64_t zs_clip_param_count(zs_clip *m) {
    int64_t n = 0;
    if (m->towers & ZS_CLIP_TEXT)
        for (int i = 0; i < zs_clip_text_count(&m->t); i++) n += zs_numel(zs_clip_text_tensor(&m->t, &m->t.p, i));
    if ((m->towers & ZS_CLIP_VISION) && m->vision_resnet) {
        for (int i = 0; i < ZS_RN_HEAD_NTENSORS; i++) n += zs_numel(zs_rn_head_tensor(&m->r.p, i));
        for (int b = 0; b < m->r.nblocks; b++)
            for (int i = 0; i < ZS_RN_BLOCK_NTENSORS; i++) {
                zs_tensor *t = zs_rn_block_tensor(&m->r.p.blocks[b], i);
                if (t) n += zs_numel(t);
            }
    } else if (m->towers & ZS_CLIP_VISION) {
        for (int i = 0; i < zs_clip_vision_count(&m->v); i++) n += zs_numel(zs_clip_vision_tensor(&m->v, &m->v.p, i));
    }
    return n + (m->has_logit_scale ? 1 : 0);
}
