// Internal to kernels/: argument checks shared by the ops, and the CUDA launchers the
// dispatchers call (implemented in kernels/*.cu, raw pointers, sizes already checked).
#ifndef ZS_OP_COMMON_H
#define ZS_OP_COMMON_H
#include <stdint.h>
#include "engine/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

// One op call: its name, and the device / float dtype every tensor of the call must share.
typedef struct {
    const char *op;
    zs_device dev;
    zs_dtype dt;
} zs_opctx;

// Starts checking a call from its reference tensor (role `what`): non-NULL with memory, and
// a dtype its device computes in (CPU: F32; CUDA: F32/F16/BF16) else ZS_EUNSUPPORTED.
zs_status zs_op_begin(zs_opctx *c, const char *op, const zs_tensor *ref, const char *what);
// t must be non-NULL, have memory, live on c->dev, have dtype dt and (when shape is not
// NULL) that shape (-1 = any). ZS_EINVAL otherwise, naming op, role, ->name and shapes.
zs_status zs_op_arg(const zs_opctx *c, const zs_tensor *t, const char *what, zs_dtype dt, int ndim,
                    const int64_t *shape);
// Same as zs_op_arg with t's expected shape = like's shape, last dim replaced by `last`
// (last < 0: keep like's). Used for "same leading dims" checks.
zs_status zs_op_arg_like(const zs_opctx *c, const zs_tensor *t, const char *what, zs_dtype dt,
                         const zs_tensor *like, int64_t last);
// Rows (product of the leading dims) and last dim of a tensor of >= 1 dims.
void zs_op_rows(const zs_tensor *t, int64_t *N, int64_t *C);
// Role plus ->name for messages: "w" or "w (enc.fc1.weight)"; buf must hold 96 bytes.
const char *zs_op_tname(const zs_tensor *t, const char *what, char *buf, size_t n);

#ifdef ZS_HAVE_CUDA
zs_status zs_linear_fwd_cuda(void *y, const void *x, const void *w, const void *b, zs_dtype dt, int64_t N, int64_t in,
                             int64_t out);
zs_status zs_linear_bwd_cuda(void *dx, void *dw, void *db, const void *dy, const void *x, const void *w, zs_dtype dt,
                             int64_t N, int64_t in, int64_t out);
zs_status zs_layernorm_fwd_cuda(void *y, float *mean, float *rstd, const void *x, const void *w, const void *b,
                                zs_dtype dt, int64_t N, int64_t C, float eps);
zs_status zs_layernorm_bwd_cuda(void *dx, void *dw, void *db, const void *dy, const void *x, const void *w,
                                const float *mean, const float *rstd, zs_dtype dt, int64_t N, int64_t C);
zs_status zs_softmax_fwd_cuda(void *y, const void *x, zs_dtype dt, int64_t N, int64_t C);
zs_status zs_softmax_bwd_cuda(void *dx, const void *dy, const void *y, zs_dtype dt, int64_t N, int64_t C);
zs_status zs_act_fwd_cuda(int act, void *y, const void *x, zs_dtype dt, int64_t n);
zs_status zs_act_bwd_cuda(int act, void *dx, const void *dy, const void *x, zs_dtype dt, int64_t n);
zs_status zs_add_fwd_cuda(void *y, const void *a, const void *b, zs_dtype dt, int64_t n);
zs_status zs_add_bwd_cuda(void *da, void *db, const void *dy, zs_dtype dt, int64_t n);
zs_status zs_embedding_fwd_cuda(void *y, const int32_t *ids, const void *table, zs_dtype dt, int64_t N, int64_t C,
                                int64_t V);
zs_status zs_embedding_bwd_cuda(void *dtable, const int32_t *ids, const void *dy, zs_dtype dt, int64_t N, int64_t C,
                                int64_t V);
#endif

#ifdef __cplusplus
}
#endif
#endif
