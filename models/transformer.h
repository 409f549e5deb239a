// The pre-LN residual transformer block shared by CLIP's text and vision towers
// (OpenAI ResidualAttentionBlock / transformers CLIPEncoderLayer):
//
//   x ─┬─ LN1 ─ q,k,v = 3 linears ─ attention ─ out_proj ─(+)─┬─ LN2 ─ fc ─ act ─ proj ─(+)─ y
//      └──────────────────────────────────────────────────────┘ └───────────────────────┘
//
// The q, k and v weights are row blocks of one stacked in_proj [3W, W] tensor (OpenAI's
// layout; transformers' q_proj / k_proj / v_proj map to its thirds), used as three linears so
// attention gets contiguous [B, L, W] inputs. Device-agnostic: everything goes through ops.
#ifndef ZS_TRANSFORMER_H
#define ZS_TRANSFORMER_H
#include "engine/arena.h"
#include "kernels/ops.h"

typedef struct {
    int width;   // W
    int heads;   // H, W % H == 0
    int mlp;     // M, hidden width of the MLP
    zs_act act;  // GELU (LAION / SD 2.x) or QuickGELU (OpenAI)
    float eps;   // layer norm epsilon
    int causal;  // text towers
} zs_tf_cfg;

// Parameters of one block (the gradient struct has the same type).
typedef struct {
    zs_tensor ln1_w, ln1_b;    // [W]
    zs_tensor in_w;            // [3W, W]  rows: q, k, v
    zs_tensor in_b;            // [3W]
    zs_tensor out_w;           // [W, W]
    zs_tensor out_b;           // [W]
    zs_tensor ln2_w, ln2_b;    // [W]
    zs_tensor fc_w;            // [M, W]
    zs_tensor fc_b;            // [M]
    zs_tensor proj_w;          // [W, M]
    zs_tensor proj_b;          // [W]
} zs_tf_block;
#define ZS_TF_BLOCK_NTENSORS 12

// What the backward needs from one block's forward (x and y live with the tower).
typedef struct {
    zs_tensor ln1, ln2;                     // [B, L, W]
    zs_tensor ln1_mean, ln1_rstd;           // [B*L] F32
    zs_tensor ln2_mean, ln2_rstd;           // [B*L] F32
    zs_tensor q, k, v, attn;                // [B, L, W]
    zs_tensor lse;                          // [B, H, L] F32
    zs_tensor mid;                          // [B, L, W] x + attention branch
    zs_tensor fc, act;                      // [B, L, M]
} zs_tf_acts;

// Backward scratch, one set shared by every block of a tower.
typedef struct {
    zs_tensor dmid, dln, dq, dk, dv, dattn;  // [B, L, W]
    zs_tensor dfc, dact;                     // [B, L, M]
} zs_tf_scratch;

// Lays out a block's tensors in an arena (measuring or real). `what` prefixes the names.
zs_status zs_tf_block_alloc(zs_arena *a, zs_tf_block *p, const zs_tf_cfg *c, zs_dtype dt);
zs_status zs_tf_acts_alloc(zs_arena *a, zs_tf_acts *t, const zs_tf_cfg *c, int64_t B, int64_t L, zs_dtype dt);
zs_status zs_tf_scratch_alloc(zs_arena *a, zs_tf_scratch *s, const zs_tf_cfg *c, int64_t B, int64_t L, zs_dtype dt);
// Tensors of a block in a fixed order (for iterating: zeroing grads, counting).
zs_tensor *zs_tf_block_tensor(zs_tf_block *p, int i);

// y[B, L, W] = block(x[B, L, W]); x and y must not alias.
zs_status zs_tf_block_fwd(const zs_tf_cfg *c, const zs_tf_block *p, zs_tf_acts *a, const zs_tensor *x, zs_tensor *y);
// dx += d(block)/dx · dy; g (the block's gradients) +=. x is the forward's input.
zs_status zs_tf_block_bwd(const zs_tf_cfg *c, const zs_tf_block *p, zs_tf_block *g, const zs_tf_acts *a,
                          zs_tf_scratch *s, const zs_tensor *x, const zs_tensor *dy, zs_tensor *dx);

// Small helpers shared by the towers.
// Row r (of n) of a [n, ...] tensor as a contiguous view of `rows` rows.
zs_status zs_rows_view(zs_tensor *out, const zs_tensor *t, int64_t r, int64_t rows);
zs_status zs_zero(zs_tensor *t);
#endif
