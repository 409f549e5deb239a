// Public ops, forward and backward: linear, layer norm, softmax, GELU-family activations,
// residual add, embedding. Each family lives in kernels/<family>.c (checks, dispatch, CPU
// fp32 twin) and kernels/<family>.cu (CUDA kernels).
//
// Conventions, for every op:
// - Tensors are contiguous. Leading dims flatten to N rows; the last dim is the feature dim.
// - BACKWARD PASSES ACCUMULATE (+=) INTO EVERY GRADIENT, inputs and parameters alike
//   (llm.c style): callers zero gradients before the first contribution. Any gradient
//   pointer may be NULL: that gradient is not computed.
// - All tensors of one call live on one device. CPU: F32 only (ZS_EUNSUPPORTED otherwise).
//   CUDA: F32, BF16 or F16, one dtype for every float tensor of a call, except layer norm's
//   per-row statistics (F32 always); accumulation is fp32 (cuBLAS without TF32).
// - Shape / dtype / device mismatches return ZS_EINVAL; the message names the op, the
//   tensor (and its ->name when set) and both shapes.
// - CUDA work is queued on the engine stream (zs_cuda_stream); zs_sync waits for it.
// - Forward outputs may alias inputs only where stated (elementwise ops: y may be x / a / b).
#ifndef ZS_OPS_H
#define ZS_OPS_H
#include "engine/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

// ---- linear: y[N, out] = x[N, in] @ w[out, in]^T + b[out] (PyTorch nn.Linear layout) ----
zs_status zs_linear_fwd(zs_tensor *y, const zs_tensor *x, const zs_tensor *w, const zs_tensor *b /* may be NULL */);
// dx[N, in] += dy @ w;  dw[out, in] += dy^T @ x;  db[out] += sum_n dy[n, :].
zs_status zs_linear_bwd(zs_tensor *dx, zs_tensor *dw, zs_tensor *db, const zs_tensor *dy, const zs_tensor *x,
                        const zs_tensor *w);

// ---- layer norm over the last dim: y = (x - mean) * rstd * w + b, rstd = 1/sqrt(var + eps) ----
// x, y [N, C]; w, b [C]; mean, rstd [N] F32 (saved for the backward; may be NULL at inference).
zs_status zs_layernorm_fwd(zs_tensor *y, zs_tensor *mean, zs_tensor *rstd, const zs_tensor *x, const zs_tensor *w,
                           const zs_tensor *b, float eps);
// dx [N, C], dw, db [C]; mean and rstd as saved by zs_layernorm_fwd on the same x.
zs_status zs_layernorm_bwd(zs_tensor *dx, zs_tensor *dw, zs_tensor *db, const zs_tensor *dy, const zs_tensor *x,
                           const zs_tensor *w, const zs_tensor *mean, const zs_tensor *rstd);

// ---- softmax over the last dim: y[N, C] = exp(x - max) / sum(exp(x - max)) ----
zs_status zs_softmax_fwd(zs_tensor *y, const zs_tensor *x);
// dx += y * (dy - sum(dy * y)); takes the forward's output y, not x.
zs_status zs_softmax_bwd(zs_tensor *dx, const zs_tensor *dy, const zs_tensor *y);

// ---- elementwise activations, any shape ----
typedef enum {
    ZS_ACT_GELU = 0,   // x * Phi(x), exact erf form (torch.nn.GELU() default)
    ZS_ACT_GELU_TANH,  // GELU(approximate='tanh'): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    ZS_ACT_QUICKGELU,  // x * sigmoid(1.702 x) (OpenAI CLIP)
    ZS_ACT_RELU,       // max(x, 0) (NaN passes through); derivative 1 for x > 0, else 0 (PyTorch)
    ZS_ACT_SILU,       // x * sigmoid(x) (SiLU / swish: UNet, VAE)
    ZS_ACT_COUNT
} zs_act;
const char *zs_act_name(zs_act a);  // "gelu", "gelu_tanh", "quickgelu", "relu", "silu"
zs_status zs_act_fwd(zs_act a, zs_tensor *y, const zs_tensor *x);
zs_status zs_act_bwd(zs_act a, zs_tensor *dx, const zs_tensor *dy, const zs_tensor *x);  // dx += dy * act'(x)
static inline zs_status zs_gelu_fwd(zs_tensor *y, const zs_tensor *x) { return zs_act_fwd(ZS_ACT_GELU, y, x); }
static inline zs_status zs_gelu_bwd(zs_tensor *dx, const zs_tensor *dy, const zs_tensor *x) {
    return zs_act_bwd(ZS_ACT_GELU, dx, dy, x);
}
static inline zs_status zs_gelu_tanh_fwd(zs_tensor *y, const zs_tensor *x) { return zs_act_fwd(ZS_ACT_GELU_TANH, y, x); }
static inline zs_status zs_gelu_tanh_bwd(zs_tensor *dx, const zs_tensor *dy, const zs_tensor *x) {
    return zs_act_bwd(ZS_ACT_GELU_TANH, dx, dy, x);
}
static inline zs_status zs_quickgelu_fwd(zs_tensor *y, const zs_tensor *x) { return zs_act_fwd(ZS_ACT_QUICKGELU, y, x); }
static inline zs_status zs_quickgelu_bwd(zs_tensor *dx, const zs_tensor *dy, const zs_tensor *x) {
    return zs_act_bwd(ZS_ACT_QUICKGELU, dx, dy, x);
}

// ---- residual add: y = a + b, all the same shape (y may be a or b) ----
zs_status zs_add_fwd(zs_tensor *y, const zs_tensor *a, const zs_tensor *b);
zs_status zs_add_bwd(zs_tensor *da, zs_tensor *db, const zs_tensor *dy);  // da += dy; db += dy

// ---- embedding: y[..., C] = table[ids[...], :]; ids I32 of any shape, table [V, C] ----
// CPU rejects ids outside [0, V) with ZS_EINVAL; CUDA does not check (that would need a
// sync): such ids give zero rows forward and are skipped backward.
zs_status zs_embedding_fwd(zs_tensor *y, const zs_tensor *ids, const zs_tensor *table);
// dtable[ids[n], :] += dy[n, :]. Deterministic on both devices, no atomics: repeated ids
// add up in order of position (CUDA: stable radix sort of the ids, one block per id run).
zs_status zs_embedding_bwd(zs_tensor *dtable, const zs_tensor *dy, const zs_tensor *ids);

// ---- CPU GEMM used by linear (exposed for tests and other CPU ops) ----
// Row-major C[M, N] = op(A)[M, K] @ op(B)[K, N] + beta * C; op = transpose when ta / tb.
// OpenBLAS when built with it, else zs_sgemm_c.
void zs_sgemm_cpu(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                  int64_t ldb, float beta, float *C, int64_t ldc);
// The built-in blocked C GEMM (OpenMP over row blocks), always compiled.
void zs_sgemm_c(int ta, int tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                int64_t ldb, float beta, float *C, int64_t ldc);

#ifdef __cplusplus
}
#endif
#endif
