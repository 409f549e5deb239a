#include "clip_ref.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "tests/test.h"

float *zt_clip_ref_f32(zs_st *r, const char *name, int64_t *n) {
    const zs_st_entry *e = zs_st_find(r, name);
    if (!e) return NULL;
    *n = zs_st_numel(e);
    float *b = malloc((size_t)(*n ? *n : 1) * sizeof(float));
    if (b && zs_st_read_f32(r, name, b, *n)) free(b), b = NULL;
    return b;
}

int32_t *zt_clip_ref_ids(zs_st *r, const char *name, int64_t *B, int64_t *L) {
    const zs_st_entry *e = zs_st_find(r, name);
    if (!e || e->dtype != ZS_I64 || e->ndim != 2) return NULL;
    *B = e->shape[0], *L = e->shape[1];
    int32_t *ids = malloc((size_t)(*B * *L) * sizeof *ids);
    for (int64_t i = 0; ids && i < *B * *L; i++) {
        int64_t v;
        memcpy(&v, (const char *)e->data + i * 8, 8);
        ids[i] = (int32_t)v;
    }
    return ids;
}

int zt_clip_cmp(zt_clip_ctx *c, const char *name, const float *got, int64_t n, int need, int grad) {
    int64_t m = 0;
    float *r = zt_clip_ref_f32(c->ref, name, &m);
    if (!r) {
        if (need) zt_note(__FILE__, __LINE__, "reference has no %s", name);
        return !need;
    }
    if (m != n) {
        zt_note(__FILE__, __LINE__, "%s: %lld elements, reference %lld", name, (long long)n, (long long)m);
        free(r);
        return 0;
    }
    double floor = grad ? ZT_CLIP_GRAD_FLOOR : 1e-6;
    size_t ln = strlen(name);
    if (grad && ln > 11 && !strcmp(name + ln - 11, "k_proj.bias")) {
        char q[256];
        int64_t qn = 0;
        snprintf(q, sizeof q, "%.*sq_proj.bias", (int)(ln - 11), name);
        float *qr = zt_clip_ref_f32(c->ref, q, &qn);
        double s2 = 0;
        for (int64_t i = 0; qr && i < qn; i++) s2 += (double)qr[i] * qr[i];
        free(qr);
        if (sqrt(s2) > floor) floor = sqrt(s2);
    }
    double e = zt_rel_err(got, r, n, floor);
    free(r);
    double *worst = grad ? &c->worst_grad : &c->worst_out;
    char *wn = grad ? c->worst_grad_name : c->worst_out_name;
    grad ? c->n_grad++ : c->n_out++;
    if (e > *worst) *worst = e, snprintf(wn, 200, "%s", name);
    if (!(e <= ZT_CLIP_TOL)) {
        zt_note(__FILE__, __LINE__, "%s: relative error %.3e > %.0e", name, e, ZT_CLIP_TOL);
        return 0;
    }
    return 1;
}
