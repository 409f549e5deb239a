// Stable Diffusion text-to-image, as diffusers' StableDiffusionPipeline runs it, and its
// gradient: a loss on the decoded image of an N-step sampling run, back to the text
// embeddings (the text-encoder fine-tuning of METHOD.md).
//
//   prompt ─ tokenizer (77 ids, the model's pad) ─ CLIP text encoder ─ cond [B, 77, X]
//   negative ─ (same) ─ uncond [B, 77, X]                                     (CFG > 1 only)
//   latents = noise * init_noise_sigma
//   for each step i: x = scale_model_input(latents); [u; c] = UNet([x; x], t_i, [uncond; cond])
//                    eps = u + cfg (c - u); latents = sampler step(latents, eps)
//   image = VAE decode(latents / scaling_factor)     pixels = round(clamp(image/2 + 1/2) * 255)
//
// Which pieces and defaults (stated in notes):
// - a diffusers folder: unet/, vae/, scheduler/scheduler_config.json, text_encoder/,
//   tokenizer/ (text encoder and tokenizer optional: absent ones make prompts unusable, given
//   embeddings still work);
// - a single file: UNet, VAE and cond_stage_model from the file; the scheduler, prediction
//   type and tokenizer come from opts->config_dir's folder when given, else the documented
//   defaults of the detected version: SD 1.x epsilon, SD 2.x v_prediction (the 768-v model;
//   SD 2.x base needs --prediction-type epsilon), scaled_linear betas 0.00085..0.012,
//   steps_offset 1, clip_sample / set_alpha_to_one false (the SD configs' values), the
//   built-in CLIP vocabulary in transformers' mode, padded with <|endoftext|> (SD 1.x) or
//   "!" (SD 2.x).
//
// Gradient through sampling (zs_sd_grad_*): checkpointing per sampling step (only each
// step's input latents are kept; the UNet call is re-run in the backward) and per UNet block
// (models/sd_unet.h), so memory is one UNet call's block outputs + one block's internals +
// the VAE decoder's activations, independent of the number of steps.
#ifndef ZS_SD_PIPELINE_H
#define ZS_SD_PIPELINE_H
#include "engine/arena.h"
#include "models/clip.h"
#include "models/clip_tokenizer.h"
#include "models/scheduler.h"
#include "models/sd_unet.h"
#include "models/sd_vae.h"

typedef struct {
    const char *config_dir;        // single files: a diffusers folder whose configs / tokenizer apply
    const char *prediction_type;   // "epsilon" / "v_prediction" / "sample" overrides; NULL keeps
    const char *scheduler_config;  // a scheduler_config.json overriding the model's
    int upcast_attention;          // -1 keeps the config's; 0 / 1 override (fp32 softmax either way)
    int no_text;                   // skip the text encoder and tokenizer (embeddings given)
} zs_sd_pipe_opts;
zs_sd_pipe_opts zs_sd_pipe_default_opts(void);

typedef struct {
    char path[1024];               // the model it was opened from
    int version;                   // 1 / 2
    int single_file;
    zs_device dev;
    zs_dtype dt;
    zs_sd_unet *unet;
    zs_sd_vae vae;
    zs_clip *text;                 // NULL without a text encoder
    zs_tokenizer *tok;             // NULL without a tokenizer
    int32_t pad_id;
    int unet_ctx;                  // X, the UNet's cross_attention_dim
    char sched_path[1200];         // "" = the built-in defaults of `version`
    char pred[16];                 // prediction type override ("" = the scheduler config's)
    int vae_factor;                // image size / latent size
    int default_size;              // unet sample_size * vae_factor (pixels)
    char notes[3072];              // what was detected / assumed
} zs_sd_pipe;

zs_status zs_sd_pipe_open(zs_sd_pipe **out, const char *path, const zs_sd_pipe_opts *o, zs_device dev, zs_dtype dt);
void zs_sd_pipe_free(zs_sd_pipe *p);
int zs_sd_pipe_ctx_dim(const zs_sd_pipe *p);  // X, the UNet's cross_attention_dim

// A sampler with the model's scheduler config (or defaults) and the prediction override.
zs_status zs_sd_pipe_sched(const zs_sd_pipe *p, zs_sampler sampler, zs_sched *s);
// Token ids [n, 77] (host) and text-encoder output [n, 77, X] (device tensor, set up by the caller).
zs_status zs_sd_pipe_tokenize(const zs_sd_pipe *p, const char *const *texts, int n, int32_t *ids);
zs_status zs_sd_pipe_encode(zs_sd_pipe *p, const char *const *texts, int n, zs_tensor *embeds);

typedef void (*zs_sd_step_fn)(void *user, int step, int steps);

typedef struct {
    int steps;
    float cfg;                     // guidance scale; <= 1: no unconditional pass (as diffusers)
    zs_sampler sampler;
    zs_sd_step_fn on_step;         // may be NULL
    void *user;
} zs_sd_gen;

// latents [B, 4, h, w] on entry plain N(0, 1) noise, on exit the final latents; cond /
// uncond [B, 77, X] (uncond unused when cfg <= 1).
zs_status zs_sd_sample(zs_sd_pipe *p, const zs_sd_gen *g, const zs_tensor *cond, const zs_tensor *uncond,
                       zs_tensor *latents);
// Decodes latents [B, 4, h, w]; *image points at the VAE's output [B, 3, 8h, 8w] (valid until
// the next decode or setup). An F16 pipeline runs the VAE in F32 when its config has
// force_upcast (as diffusers): the image is then F32.
zs_status zs_sd_decode(zs_sd_pipe *p, const zs_tensor *latents, const zs_tensor **image);
// Host conversion of decoded images [B, 3, H, W] (device) to pixels [B, H, W, 3]:
// round((x / 2 + 0.5).clamp(0, 1) * 255), fp32, ties to even (numpy), as diffusers does.
zs_status zs_sd_to_pixels(const zs_tensor *image, uint8_t *pixels);

// The working tensors of one sampling run: UNet input / context / output for nb = B rows, or
// 2B with CFG ([uncond; cond]); eps the guided output [B, 4, h, w] (a view of out without CFG).
typedef struct {
    int64_t B, nb;
    int cfg_on;
    float cfg;
    zs_tensor xin, ctx, out, eps;
} zs_sd_run;

// Gradient through sampling. forward: runs zs_sd_sample keeping each step's input latents,
// then decodes for training; *image is the decoded image (d_image: its shape and dtype,
// F32 when the VAE is upcast). backward: from d_image, adds the gradients w.r.t. cond and
// uncond (either may be NULL; shaped as given to forward).
typedef struct {
    zs_sd_pipe *p;
    zs_sd_gen g;
    zs_sched sched;
    zs_sd_run run;                 // the forward's UNet input / context / output, reused backward
    zs_arena mem;                  // trajectory + run + gradient tensors
    zs_tensor *traj;               // [steps + 1] of [B, 4, h, w]: each step's input, then the final latents
    zs_tensor dx, dx2, dxin, deps, dout, dctx, carry;  // d latents (x2), d UNet in / out / context, DPM carry
    // d context summed over the steps in F32 on the host (one rounding to the dtype at the
    // end, not one per step): [nb, L, C] each, the step's d context converted, and the sum.
    zs_arena host;
    zs_tensor dctx_step, dctx_sum;
} zs_sd_grad;
zs_status zs_sd_grad_forward(zs_sd_grad *r, zs_sd_pipe *p, const zs_sd_gen *g, const zs_tensor *cond,
                             const zs_tensor *uncond, const zs_tensor *noise, const zs_tensor **image);
zs_status zs_sd_grad_backward(zs_sd_grad *r, const zs_tensor *d_image, zs_tensor *d_cond, zs_tensor *d_uncond);
void zs_sd_grad_free(zs_sd_grad *r);
#endif
