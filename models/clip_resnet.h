// CLIP ModifiedResNet vision tower (OpenAI CLIP / open_clip RN50, RN101, RN50x4, ...):
//
//   image [B, C, S, S] ─ stem: 3 x (3x3 conv ─ BN ─ ReLU) (first with stride 2) ─ avgpool(2) = stem
//     ─ layer1..layer4: bottlenecks (stage s: planes P = width * 2^s, output 4P; the first
//       block of stages 2..4 has stride 2) = layer1..layer4 outputs (NCHW)
//     ─ attention pool: tokens [mean; HW positions] + positional embedding, one query (the
//       mean token) over all HW + 1 tokens, c_proj = features [B, E]
//
// Bottleneck (stride s, input Cin, planes P):
//   x ─ conv1 1x1 ─ BN ─ ReLU ─ conv2 3x3 pad 1 (+ hook G(x)) ─ BN ─ ReLU ─ avgpool(s) ─ conv3 1x1 ─ BN ─(+)─ ReLU ─ y
//   └─ identity, or (when s > 1 or Cin != 4P) avgpool(s) ─ conv 1x1 ─ BN ──────────────────┘
//
// BatchNorm runs in inference form (running statistics, eps 1e-5) forward and backward:
// gradients reach every input and, when gradient buffers exist, the BN weights / biases and
// the convolutions; the running statistics are constants (their gradients stay zero).
// Device-agnostic (every step goes through kernels/ops.h, conv.h, attention.h, patchify.h):
// CPU F32, CUDA F32 / BF16 / F16 (BN statistics F32 always).
//
// The 3x3 conv hook: each bottleneck may carry a zs_rn_hook that adds G(x) to conv2's output
// (y = conv2(x) + G(x), x = conv2's input) and backpropagates through G, so a feature-fusion
// module can wrap the conv without copying the backbone.
#ifndef ZS_CLIP_RESNET_H
#define ZS_CLIP_RESNET_H
#include "engine/arena.h"
#include "kernels/attention.h"
#include "kernels/conv.h"
#include "kernels/ops.h"

typedef struct {
    int layers[4];   // bottlenecks per stage (RN50: 3, 4, 6, 3)
    int width;       // stem width W (RN50: 64); stage s planes W * 2^s, feature dim 32 W
    int image;       // S: square input; the attention pool has (S / 32)^2 + 1 positions
    int channels;    // 3
    int heads;       // attention-pool heads (32 W must be divisible by it)
    int embed;       // E: c_proj output (the CLIP embedding)
    float eps;       // BatchNorm eps (1e-5)
} zs_clip_resnet_cfg;

typedef struct {
    zs_tensor w, b;       // [C] activation dtype
    zs_tensor mean, var;  // [C] F32 running statistics (buffers: no gradient)
} zs_rn_bn;
#define ZS_RN_BN_NTENSORS 4

typedef struct {
    int cin, planes, stride, ds;  // ds: has the downsample branch
    int64_t h, w;                 // input spatial size; output (h / stride, w / stride)
    zs_tensor conv1;              // [P, Cin, 1, 1]
    zs_rn_bn bn1;                 // [P]
    zs_tensor conv2;              // [P, P, 3, 3]
    zs_rn_bn bn2;                 // [P]
    zs_tensor conv3;              // [4P, P, 1, 1]
    zs_rn_bn bn3;                 // [4P]
    zs_tensor ds_conv;            // [4P, Cin, 1, 1]  (ds only; open_clip "downsample.0")
    zs_rn_bn ds_bn;               // [4P]             (ds only; "downsample.1")
} zs_rn_block;
// Tensor order: conv1, bn1 (w, b, mean, var), conv2, bn2, conv3, bn3, ds_conv, ds_bn.
#define ZS_RN_BLOCK_NTENSORS 20
zs_tensor *zs_rn_block_tensor(zs_rn_block *p, int i);  // NULL for ds tensors of a block without ds

// Parameters (the gradient struct has the same type).
typedef struct {
    zs_tensor conv1;         // [W/2, C, 3, 3] stride 2, pad 1
    zs_rn_bn bn1;            // [W/2]
    zs_tensor conv2;         // [W/2, W/2, 3, 3] pad 1
    zs_rn_bn bn2;            // [W/2]
    zs_tensor conv3;         // [W, W/2, 3, 3] pad 1
    zs_rn_bn bn3;            // [W]
    zs_rn_block *blocks;     // [nblocks], stage by stage
    zs_tensor pos;           // [1 + G*G, D]  D = 32 W, G = S / 32
    zs_tensor q_w, k_w, v_w; // [D, D]
    zs_tensor q_b, k_b, v_b; // [D]
    zs_tensor c_w;           // [E, D]
    zs_tensor c_b;           // [E]
} zs_clip_resnet_params;
// Head tensor order: conv1, bn1 (4), conv2, bn2 (4), conv3, bn3 (4), pos, q_w, q_b, k_w, k_b,
// v_w, v_b, c_w, c_b.
#define ZS_RN_HEAD_NTENSORS 24
zs_tensor *zs_rn_head_tensor(zs_clip_resnet_params *p, int i);

// The conv2 hook of one bottleneck. fwd: y += G(x) (x = conv2's input, y = conv2's output,
// both [B, P, H, W]). bwd: dx += (dG/dx)^T dy, with the same x; the hook accumulates its own
// parameter gradients. `block` is the flat bottleneck index (zs_clip_resnet_block_index).
typedef struct {
    zs_status (*fwd)(void *user, int block, zs_tensor *y, const zs_tensor *x);
    zs_status (*bwd)(void *user, int block, zs_tensor *dx, const zs_tensor *dy, const zs_tensor *x);
    void *user;
} zs_rn_hook;

// Activations of one bottleneck. Training keeps every block's; inference shares one set.
typedef struct {
    zs_tensor c1, h1;  // [B, P, H, W]    conv1 out; relu(bn1(c1))
    zs_tensor c2, h2;  // [B, P, H, W]    conv2 out (+ hook); relu(bn2(c2))
    zs_tensor p2;      // [B, P, Ho, Wo]  avgpool(h2) (stride > 1; else == h2)
    zs_tensor c3;      // [B, 4P, Ho, Wo] conv3 out
    zs_tensor dp;      // [B, Cin, Ho, Wo] avgpool(x) (ds with stride > 1; else == x)
    zs_tensor dc;      // [B, 4P, Ho, Wo] downsample conv out (ds)
    zs_tensor y;       // [B, 4P, Ho, Wo] block output (kept in both modes)
} zs_rn_block_acts;

typedef struct {
    int64_t B;
    int train;
    zs_tensor image;           // [B, C, S, S] copy of the input (train)
    zs_tensor s_c1, s_h1, s_c2, s_h2, s_c3, s_h3;  // stem: [B, W/2, S/2, S/2] x 4, [B, W, S/2, S/2] x 2
    zs_tensor stem;            // [B, W, S/4, S/4]
    zs_rn_block_acts *blocks;  // [nblocks]
    zs_tensor *stage_out;      // [4] views: layer1..layer4 outputs (the last block's y)
    zs_tensor ds_tmp;          // [max] scratch for the downsample BN output
    // attention pool (D = 32 W, T = 1 + G*G tokens)
    zs_tensor pt;              // [B, G*G, D] layer4 output as tokens
    zs_tensor mean;            // [B, D, 1, 1]
    zs_tensor emb;             // [B, T, D] [mean; tokens] + pos
    zs_tensor tok0;            // [B, D] emb[:, 0]
    zs_tensor q;               // [B, 1, D]
    zs_tensor k, v;            // [B, T, D]
    zs_tensor att;             // [B, 1, D]
    zs_tensor lse;             // [B, H, 1] F32
    zs_tensor features;        // [B, E]
    // backward scratch (train)
    zs_tensor g0, g1, g2, g3, g4;  // [max activation numel] each, viewed as needed
    zs_tensor datt, dq;            // [B, 1, D]
    zs_tensor dtok0;               // [B, D]
    zs_tensor dk, dv, demb;        // [B, T, D]
    zs_tensor dpt;                 // [B, G*G, D]
    zs_tensor dmean;               // [B, D, 1, 1]
    int64_t max_numel;
} zs_clip_resnet_acts;

typedef struct {
    zs_clip_resnet_cfg cfg;
    int nblocks;
    int64_t D, G;               // feature dim 32 W; attention-pool grid side
    zs_device dev;
    zs_dtype dtype;
    int shapes_only;
    zs_clip_resnet_params p, g;
    zs_arena params, grads, acts;
    zs_clip_resnet_acts a;
    zs_rn_hook *hooks;          // [nblocks]; fwd == NULL: none
} zs_clip_resnet;

zs_status zs_clip_resnet_init(zs_clip_resnet *r, const zs_clip_resnet_cfg *c, zs_device dev, zs_dtype dt, int shapes_only);
void zs_clip_resnet_free(zs_clip_resnet *r);
// Gradient buffers (zeroed). Without them the backward computes input gradients only (a
// frozen backbone: d_image and the hooks' gradients).
zs_status zs_clip_resnet_grads(zs_clip_resnet *r);
zs_status zs_clip_resnet_zero_grads(zs_clip_resnet *r);
zs_status zs_clip_resnet_setup(zs_clip_resnet *r, int64_t B, int train);
// Bytes the activation arena of zs_clip_resnet_setup(r, B, train) takes (works on a plan-only
// tower too; allocates nothing on the device). Parameters: r->params.peak (gradients the same).
zs_status zs_clip_resnet_act_bytes(zs_clip_resnet *r, int64_t B, int train, size_t *bytes);
// Flat index of bottleneck `idx` of stage s (0..3), and back; -1 / error when out of range.
int zs_clip_resnet_block_index(const zs_clip_resnet *r, int stage, int idx);
void zs_clip_resnet_block_pos(const zs_clip_resnet *r, int block, int *stage, int *idx);
// Installs (h != NULL, h->fwd set) or removes the conv2 hook of a bottleneck.
zs_status zs_clip_resnet_set_hook(zs_clip_resnet *r, int block, const zs_rn_hook *h);

// image: [B, C, S, S] on the model's device and dtype (already normalised).
zs_status zs_clip_resnet_fwd(zs_clip_resnet *r, const zs_tensor *image);
// d_features [B, E]; accumulates into r->g (when allocated), the hooks and d_image (may be NULL).
zs_status zs_clip_resnet_bwd(zs_clip_resnet *r, const zs_tensor *d_features, zs_tensor *d_image);
#endif
