// Embedding lookup y[n, :] = table[ids[n], :] and its scatter-add backward.
// CUDA: kernels/embedding.cu.
#include <string.h>
#include "op_common.h"
#include "ops.h"

// ids [...] I32, table [V, C], y/dy [..., C] (ids' shape plus C): returns N, C, V.
static zs_status check(zs_opctx *c, const char *op, const zs_tensor *yy, const char *yname, const zs_tensor *ids,
                       const zs_tensor *table, const char *tname, int64_t *N, int64_t *C, int64_t *V) {
    ZS_TRY(zs_op_begin(c, op, table, tname));
    ZS_TRY(zs_op_arg(c, table, tname, c->dt, 2, (int64_t[]){-1, -1}));
    *V = table->shape[0];
    *C = table->shape[1];
    ZS_TRY(zs_op_arg(c, ids, "ids", ZS_I32, ids ? ids->ndim : 0, NULL));
    *N = zs_numel(ids);
    int64_t shape[ZS_MAX_DIMS];
    if (ids->ndim >= ZS_MAX_DIMS) return ZS_ERR(ZS_EINVAL, "%s: ids has %d dims, at most %d", op, ids->ndim, ZS_MAX_DIMS - 1);
    for (int i = 0; i < ids->ndim; i++) shape[i] = ids->shape[i];
    shape[ids->ndim] = *C;
    return zs_op_arg(c, yy, yname, c->dt, ids->ndim + 1, shape);
}

// Host ids must lie in [0, V); checked before anything is written.
static zs_status check_ids(const char *op, const int32_t *ids, int64_t N, int64_t V) {
    for (int64_t n = 0; n < N; n++)
        if (ids[n] < 0 || ids[n] >= V)
            return ZS_ERR(ZS_EINVAL, "%s: ids[%lld] = %d outside the table's [0, %lld)", op, (long long)n, (int)ids[n],
                          (long long)V);
    return ZS_OK;
}

zs_status zs_embedding_fwd(zs_tensor *y, const zs_tensor *ids, const zs_tensor *table) {
    zs_opctx c;
    int64_t N, C, V;
    ZS_TRY(check(&c, "embedding_fwd", y, "y", ids, table, "table", &N, &C, &V));
    if (N == 0 || C == 0) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_embedding_fwd_cuda(y->data, ids->data, table->data, c.dt, N, C, V);
#endif
    }
    const int32_t *id = ids->data;
    ZS_TRY(check_ids(c.op, id, N, V));
    float *yd = y->data;
    const float *td = table->data;
#pragma omp parallel for schedule(static) if (N * C > 65536)
    for (int64_t n = 0; n < N; n++) memcpy(yd + n * C, td + (int64_t)id[n] * C, (size_t)C * sizeof(float));
    return ZS_OK;
}

zs_status zs_embedding_bwd(zs_tensor *dtable, const zs_tensor *dy, const zs_tensor *ids) {
    zs_opctx c;
    int64_t N, C, V;
    if (!dtable) return ZS_OK;
    ZS_TRY(check(&c, "embedding_bwd", dy, "dy", ids, dtable, "dtable", &N, &C, &V));
    if (N == 0 || C == 0) return ZS_OK;
    if (c.dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_embedding_bwd_cuda(dtable->data, ids->data, dy->data, c.dt, N, C, V);
#endif
    }
    const int32_t *id = ids->data;
    ZS_TRY(check_ids(c.op, id, N, V));
    float *g = dtable->data;
    const float *d = dy->data;
    // Column blocks in parallel, ids in order: repeated ids add up deterministically.
#pragma omp parallel for schedule(static) if (N * C > 65536)
    for (int64_t c0 = 0; c0 < C; c0 += 64) {
        int64_t c1 = c0 + 64 < C ? c0 + 64 : C;
        for (int64_t n = 0; n < N; n++) {
            float *gr = g + (int64_t)id[n] * C;
            const float *dr = d + n * C;
            for (int64_t k = c0; k < c1; k++) gr[k] += dr[k];
        }
    }
    return ZS_OK;
}
