// Samplers (diffusers 0.42.1 semantics): Euler discrete (the method's), DDIM (eta 0) and
// DPM-Solver++ 2M, driven the way StableDiffusionPipeline drives them:
//   zs_sched_init(&s, ZS_SAMPLER_EULER, "…/scheduler/scheduler_config.json", NULL);
//   zs_sched_set_timesteps(&s, 30);
//   latents = N(0,1) * init_noise_sigma                  (zs_sched_init_latents / _scale_noise)
//   for i in 0..n-1:
//     in = zs_sched_scale_model_input(latents, i)        (Euler: / sqrt(sigma^2 + 1); else copy)
//     eps = UNet(in, zs_sched_timesteps(&s)[i], …); eps = zs_cfg_combine(uncond, cond, 7.5)
//     zs_sched_step(&s, latents, eps, latents, i)
// Schedules (betas, alphas_cumprod, timesteps, sigmas) are host arrays computed in the
// precision path of diffusers/torch/numpy (torch.linspace's fused multiply-adds, float32
// betas, cumprod accumulated in double, numpy float64 interpolation rounded to float32):
// betas, alphas_cumprod and timesteps equal diffusers' bit for bit (Karras timesteps to
// ~3e-7); sigmas to 1 ulp, because torch's CPU sqrt / log / exp are not correctly rounded
// and this code's libm ones are (tests/test_scheduler.c reports the measured errors).
// Deterministic paths only: Euler with s_churn = 0, DDIM with eta = 0, DPM-Solver++ (not SDE).
// Every step is affine in (latents, model output) for a fixed schedule (DDIM with
// clip_sample: piecewise affine), so each has an exact backward (+= convention of ops.h).
// Tensors: CPU F32; CUDA F32/F16/BF16 (fp32 math); one device and dtype per call.
#ifndef ZS_SCHEDULER_H
#define ZS_SCHEDULER_H
#include <stdint.h>
#include "engine/tensor.h"

typedef enum { ZS_SAMPLER_EULER = 0, ZS_SAMPLER_DDIM, ZS_SAMPLER_DPMPP2M, ZS_SAMPLER_COUNT } zs_sampler;
typedef enum { ZS_PRED_EPSILON = 0, ZS_PRED_V, ZS_PRED_SAMPLE } zs_pred_type;  // = ZS_SE_PRED_*
typedef enum { ZS_SPACING_LINSPACE = 0, ZS_SPACING_LEADING, ZS_SPACING_TRAILING } zs_spacing;
typedef enum { ZS_BETAS_LINEAR = 0, ZS_BETAS_SCALED_LINEAR, ZS_BETAS_SQUAREDCOS_CAP_V2, ZS_BETAS_TRAINED } zs_beta_sched;

const char *zs_sampler_name(zs_sampler s);                 // "euler", "ddim", "dpmpp2m"
zs_status zs_sampler_parse(const char *name, zs_sampler *out);  // error lists the choices

// The fields of scheduler_config.json the chosen sampler's diffusers class reads (fields of
// other classes, `_class_name` included, are ignored as from_config does). Defaults are
// the class's own (they differ: e.g. timestep_spacing is "leading" for DDIM, "linspace" for
// Euler and DPM; clip_sample and set_alpha_to_one default true for DDIM).
typedef struct {
    int num_train_timesteps;
    double beta_start, beta_end;
    zs_beta_sched beta_schedule;
    float *trained_betas;  // [num_train_timesteps] when beta_schedule == ZS_BETAS_TRAINED (owned)
    zs_pred_type prediction_type;
    zs_spacing timestep_spacing;
    int steps_offset;
    int clip_sample;           // DDIM
    double clip_sample_range;  // DDIM
    int set_alpha_to_one;      // DDIM
    int final_sigmas_zero;     // Euler, DPM: final_sigmas_type "zero" (1) or "sigma_min" (0)
    int solver_order;          // DPM: 1 or 2
    int solver_heun;           // DPM: solver_type "heun" (1) or "midpoint" (0)
    int lower_order_final;     // DPM
    int euler_at_final;        // DPM
    int use_karras_sigmas;     // Euler, DPM
    double sigma_min, sigma_max;  // Euler (Karras range; NAN = from the schedule)
    int timestep_continuous;   // Euler: timestep_type "continuous" (unsupported with v_prediction)
} zs_sched_config;

// Defaults of the sampler's diffusers class.
void zs_sched_config_default(zs_sched_config *c, zs_sampler s);
// Defaults, then the file's fields. Values this engine does not implement (thresholding,
// rescale_betas_zero_snr, use_karras_sigmas, interpolation_type other than "linear", …)
// and unknown values are errors naming the field and the file.
zs_status zs_sched_config_read(zs_sched_config *c, zs_sampler s, const char *path);
void zs_sched_config_free(zs_sched_config *c);
zs_status zs_pred_type_parse(const char *name, zs_pred_type *out);  // "epsilon", "v_prediction", "sample"

typedef struct {
    zs_sampler sampler;
    zs_sched_config cfg;
    float *alphas_cumprod;  // [num_train_timesteps], float32 as torch.cumprod gives it
    float final_alpha_cumprod;  // DDIM
    int n;                  // inference steps (0 before set_timesteps)
    float *timesteps;       // [n]: what the UNet sees (integer-valued for DDIM / DPM)
    int64_t *timesteps_i;   // [n]: integer timesteps (DDIM / DPM; Euler: rounded)
    float *sigmas;          // [n + 1] (Euler, DPM; NULL for DDIM)
    float init_noise_sigma;
    // DPM-Solver++ 2M state: the previous step's x0 prediction, steps taken since set_timesteps.
    int steps_done;
    zs_tensor prev_x0;
    void *prev_buf;
} zs_sched;

// config_path: a scheduler_config.json (NULL: the class defaults). prediction_type:
// "epsilon" / "v_prediction" / "sample" overrides the config's, NULL keeps it.
zs_status zs_sched_init(zs_sched *s, zs_sampler sampler, const char *config_path, const char *prediction_type);
// Takes ownership of c->trained_betas.
zs_status zs_sched_init_config(zs_sched *s, zs_sampler sampler, zs_sched_config *c);
void zs_sched_free(zs_sched *s);
// Builds timesteps / sigmas for n steps and resets the DPM state.
zs_status zs_sched_set_timesteps(zs_sched *s, int n);
static inline int zs_sched_num_steps(const zs_sched *s) { return s->n; }
static inline const float *zs_sched_timesteps(const zs_sched *s) { return s->timesteps; }
static inline float zs_sched_init_noise_sigma(const zs_sched *s) { return s->init_noise_sigma; }

// Initial latents: latents = N(0,1) (Philox stream (seed, offset), engine/rng.h) * init_noise_sigma.
zs_status zs_sched_init_latents(const zs_sched *s, zs_tensor *latents, uint64_t seed, uint64_t offset);
// latents *= init_noise_sigma in place (latents given as plain N(0,1) noise, e.g. from a file).
zs_status zs_sched_scale_noise(const zs_sched *s, zs_tensor *latents);

// out = the UNet input for step i (Euler: latents / sqrt(sigma_i^2 + 1); DDIM, DPM: a copy).
// out may be latents.
zs_status zs_sched_scale_model_input(const zs_sched *s, zs_tensor *out, const zs_tensor *latents, int i);
// d_latents += d_out * d out / d latents.
zs_status zs_sched_scale_model_input_bwd(const zs_sched *s, zs_tensor *d_latents, const zs_tensor *d_out, int i);

// latents_out = step i (0-based, over zs_sched_timesteps) from latents_in and the (guided)
// model output. latents_out may be latents_in. DPM-Solver++ 2M keeps the previous x0
// prediction, so its steps must run in order 0, 1, … after set_timesteps (checked).
zs_status zs_sched_step(zs_sched *s, zs_tensor *latents_out, const zs_tensor *model_output,
                        const zs_tensor *latents_in, int i);
// Backward of step i: d_latents_in += J_x^T d_out, d_model_output += J_m^T d_out (either may
// be NULL). latents_in / model_output: the step's inputs, needed only for DDIM with
// clip_sample (else may be NULL). d_carry (DPM, required there; ignored otherwise): on entry
// the gradient w.r.t. step i's x0 prediction coming from step i+1 (zeros before the last
// step's backward), on exit the gradient w.r.t. step i-1's x0 prediction. Run the
// backwards in order n-1, …, 0 with one d_carry tensor (zeroed once).
zs_status zs_sched_step_bwd(const zs_sched *s, int i, zs_tensor *d_latents_in, zs_tensor *d_model_output,
                            const zs_tensor *d_latents_out, const zs_tensor *latents_in,
                            const zs_tensor *model_output, zs_tensor *d_carry);

// Classifier-free guidance, as the pipeline: out = uncond + scale * (cond - uncond); out may
// alias either input. Backward: d_uncond += (1 - scale) d_out, d_cond += scale d_out.
zs_status zs_cfg_combine(zs_tensor *out, const zs_tensor *uncond, const zs_tensor *cond, float scale);
zs_status zs_cfg_combine_bwd(zs_tensor *d_uncond, zs_tensor *d_cond, const zs_tensor *d_out, float scale);
// out = x / c, each element computed in fp32 and rounded once to the dtype (the VAE's
// latents / scaling_factor, as diffusers divides); out may be x. Backward: dx += dout / c.
zs_status zs_elem_div(zs_tensor *out, const zs_tensor *x, float c);
zs_status zs_elem_div_bwd(zs_tensor *dx, const zs_tensor *d_out, float c);

#endif
