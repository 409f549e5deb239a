// Stable Diffusion UNet (diffusers UNet2DConditionModel, SD 1.x / 2.x): forward, and backward
// to the sample, the cross-attention context and every parameter, with activation
// checkpointing per block.
//
//   t [B] ─ sinusoid(c0) ─ linear_1 ─ SiLU ─ linear_2 = temb [B, T]        (T = 4 c0)
//   sample [B, in, h, w] ─ conv_in 3x3 ──────────────────────────────────────── skip 0
//   down level i (C = block_out_channels[i]), layers_per_block times:
//       resnet(temb) ─ [transformer(ctx) when CrossAttnDownBlock2D] ───────────── skip
//     (i < n-1) conv 3x3 stride 2 pad 1 ──────────────────────────────────────── skip
//   mid: resnet ─ transformer ─ resnet
//   up level i (C = block_out_channels[n-1-i]), layers_per_block + 1 times:
//       cat(h, skip.pop()) ─ resnet(temb) ─ [transformer when CrossAttnUpBlock2D]
//     (i < n-1) nearest resize to the next skip's size ─ conv 3x3
//   GN + SiLU ─ conv_out 3x3 ─ out [B, out, h, w]
//
// ResnetBlock2D: x ─ GN+SiLU ─ conv1 ─(+ time_emb_proj(SiLU(temb)) per channel)─ GN+SiLU ─
//                conv2 ─(+ x, or conv_shortcut 1x1 (x) when channels change)
//   group norms: norm_num_groups, eps = norm_eps (1e-5).
// Transformer2DModel: x ─ GN (eps 1e-6) ─ proj_in (1x1 conv, or linear on tokens when
//   use_linear_projection) ─ tokens [B, hw, C] ─ BasicTransformerBlock x layers ─ proj_out ─(+ x)
// BasicTransformerBlock: h += attn1(LN1(h)) (self); h += attn2(LN2(h), ctx) (cross: keys /
//   values from ctx [B, L, X]); h += ff(LN3(h)): linear C->8C, GEGLU -> 4C, linear 4C->C.
//   Layer norms eps 1e-5; heads = the config's head count at that level, head dim C / heads,
//   scale head_dim^-0.5; to_q / to_k / to_v without bias. upcast_attention: attention
//   scores and softmax in fp32, which the attention op always does.
//
// Checkpointing: with train = 1 the forward keeps only every block's output (and temb), the
// activations inside a block live in one scratch region sized for the largest block; the
// backward re-runs each block's forward into that scratch, then its backward. Blocks are the
// units of the diagram: conv_in, each resnet, each transformer, each down/up sampler, the
// output head.
//
// Devices: CPU F32; CUDA F32 / BF16 / F16 (group / layer norm statistics and attention
// softmax in F32).
//
// Implementation notes (models/sd_unet.c, sd_unet_xformer.c; resnets from sd_vae_blocks.c):
// - The forward keeps every unit output in both modes (train = 0 only drops the gradient
//   buffers and the backward scratch), so train = 0 and train = 1 forwards are bit-identical.
// - The backward reads sample and ctx again (re-runs) and the kept unit outputs: the inputs
//   must stay alive and unchanged, and no other fwd may run in between; out itself is not
//   read. d_out is read only; d_sample / d_ctx accumulate (+=: the caller zeroes them).
// - time_emb_proj is added by kernels/chanbias.h; up resnets' cat(h, skip) is made by two
//   pitched copies into the scratch, and split back with per-sample adds.
// - Parameters are registered with the plan's shapes: 1x1-conv proj_in / proj_out stay
//   [C, C, 1, 1] and are applied as linears on the tokens (the same memory as [C, C]).
#ifndef ZS_SD_UNET_H
#define ZS_SD_UNET_H
#include <stddef.h>
#include "engine/tensor.h"
#include "models/sd_config.h"
#include "models/sd_plan.h"

typedef struct zs_sd_unet zs_sd_unet;

// Lays out the UNet of config c (parameters uninitialised). On error *out is NULL.
zs_status zs_sd_unet_create(zs_sd_unet **out, const zs_sd_unet_config *c, zs_device dev, zs_dtype dt);
// Loads every UNet slot of the plan (its UNet config must equal the one u was created with);
// LDM 1x1-conv proj_in/out of a linear-projection model load into the linear memory and
// vice versa where the plan's slot layout says so.
zs_status zs_sd_unet_load(zs_sd_unet *u, const zs_sd_plan *p);
// zs_sd_plan_open (opts may be NULL) + create from the plan's UNet config + load.
zs_status zs_sd_unet_open(zs_sd_unet **out, const char *path, const zs_sd_plan_opts *opts, zs_device dev,
                          zs_dtype dt);
void zs_sd_unet_free(zs_sd_unet *u);
const zs_sd_unet_config *zs_sd_unet_cfg(const zs_sd_unet *u);
zs_device zs_sd_unet_device(const zs_sd_unet *u);
zs_dtype zs_sd_unet_dtype(const zs_sd_unet *u);

// Activations for sample [B, in_channels, h, w] and context [B, L, cross_attention_dim];
// any h, w >= 1 (odd sizes as diffusers: each up-sampling targets its skip's size).
// train = 1: keep block outputs for the backward (per-block checkpointing, see above).
zs_status zs_sd_unet_setup(zs_sd_unet *u, int64_t B, int64_t h, int64_t w, int64_t L, int train);
// out [B, out_channels, h, w] = unet(sample, t, ctx); t: B host floats (fractional allowed).
// out may not alias sample. With train = 1 the inputs must stay unchanged until the backward.
zs_status zs_sd_unet_fwd(zs_sd_unet *u, zs_tensor *out, const zs_tensor *sample, const float *t,
                         const zs_tensor *ctx);
// Parameter gradient buffers (zeroed), and zeroing them again.
zs_status zs_sd_unet_grads(zs_sd_unet *u);
zs_status zs_sd_unet_zero_grads(zs_sd_unet *u);
// From d_out (shaped like out): d_sample += and d_ctx += (either may be NULL) and, when
// zs_sd_unet_grads ran, the parameter gradients +=. Needs setup(train = 1) and the forward
// just before, with the same inputs.
zs_status zs_sd_unet_bwd(zs_sd_unet *u, const zs_tensor *d_out, zs_tensor *d_sample, zs_tensor *d_ctx);

// Parameters by index, in the plan's slot order (diffusers names).
int zs_sd_unet_n_params(const zs_sd_unet *u);
const char *zs_sd_unet_param_name(const zs_sd_unet *u, int i);  // NULL out of range
zs_tensor *zs_sd_unet_param(zs_sd_unet *u, int i);
zs_tensor *zs_sd_unet_grad(zs_sd_unet *u, int i);                // NULL before zs_sd_unet_grads

// Bytes held: parameters, gradients (0 before zs_sd_unet_grads), activations of the last
// setup (block outputs + scratch; with train = 1 also the backward's gradient buffers).
typedef struct {
    size_t params, grads, acts, scratch;  // scratch: the part of acts re-used block by block
} zs_sd_unet_mem;
zs_sd_unet_mem zs_sd_unet_memory(const zs_sd_unet *u);
#endif
