// Comparing CLIP towers with the reference fixtures of tests/fixtures/clip (shared by
// tests/test_clip.c and tests/test_clip_resnet.c): worst errors are tracked per run.
#ifndef ZT_CLIP_REF_H
#define ZT_CLIP_REF_H
#include "engine/tensor.h"
#include "weights/safetensors.h"

#define ZT_CLIP_TOL 1e-4         // relative norm error, outputs and gradients
#define ZT_CLIP_GRAD_FLOOR 1e-3  // absolute floor for gradients

typedef struct {
    zs_st *ref;
    double worst_out, worst_grad;
    char worst_out_name[200], worst_grad_name[200];
    int n_out, n_grad;
} zt_clip_ctx;

// Host F32 copy of a stored float tensor (malloc'd; NULL if absent); *n its element count.
float *zt_clip_ref_f32(zs_st *r, const char *name, int64_t *n);
// I64 [B, L] token ids as int32 (malloc'd; NULL if absent or not I64 [B, L]).
int32_t *zt_clip_ref_ids(zs_st *r, const char *name, int64_t *B, int64_t *L);
// Compares n floats with a stored tensor (which must exist when `need`); 0 on failure.
// k_proj.bias gradients are mathematically zero (softmax ignores a constant shift): their
// floor is the norm of the same layer's q_proj.bias gradient.
int zt_clip_cmp(zt_clip_ctx *c, const char *name, const float *got, int64_t n, int need, int grad);
#endif
