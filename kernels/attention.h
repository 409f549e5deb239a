// Multi-head scaled-dot-product attention, fused (flash-style: the [Lq, Lk] score matrix is
// never stored; the forward saves one log-sum-exp per query row for the backward).
// Same conventions as kernels/ops.h: contiguous tensors, one device per call, CPU F32, CUDA
// F32 / BF16 / F16 with fp32 accumulation; the backward ACCUMULATES (+=) into dq, dk, dv.
#ifndef ZS_ATTENTION_H
#define ZS_ATTENTION_H
#include "engine/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int heads;    // H: q / k widths are H * Dk, v's H * Dv
    float scale;  // applied to q.k (usually 1 / sqrt(Dk))
    int causal;   // 1: query i sees keys j <= i + (Lk - Lq) (text towers; Lq == Lk there)
} zs_attn_params;

// q [B, Lq, H*Dk], k [B, Lk, H*Dk], v [B, Lk, H*Dv] -> out [B, Lq, H*Dv] (heads side by side,
// as nn.MultiheadAttention and diffusers lay them out); lse [B, H, Lq] F32, the
// log-sum-exp of each query row's scaled scores (may be NULL when no backward follows).
zs_status zs_attention_fwd(zs_tensor *out, zs_tensor *lse, const zs_tensor *q, const zs_tensor *k, const zs_tensor *v,
                           const zs_attn_params *p);
// dq, dk, dv (+=; any may be NULL) from dout, with the forward's inputs, out and lse.
zs_status zs_attention_bwd(zs_tensor *dq, zs_tensor *dk, zs_tensor *dv, const zs_tensor *dout, const zs_tensor *q,
                           const zs_tensor *k, const zs_tensor *v, const zs_tensor *out, const zs_tensor *lse,
                           const zs_attn_params *p);

// Test hooks for the CUDA paths (no-ops in builds without CUDA):
// the wide-head path's score buffer in floats (attention_wide.cu; <= 0: the default 256 MiB),
// so that small cases run in several chunks of query rows;
void zs_attention_wide_set_chunk(long long floats);
// force the F16 / BF16 paths (attention.cu): tc_fwd 1 / 0 = forward on tensor cores or not;
// bwd 0 = CUDA-core kernels, 1 = cuBLAS with materialised scores, 2 = tensor cores; -1 (either)
// restores the default (tensor cores; ZS_ATTN=simt / gemm in the environment).
void zs_attention_cuda_paths(int tc_fwd, int bwd);

#ifdef __cplusplus
}
#endif
#endif
