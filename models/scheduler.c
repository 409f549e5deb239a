// Samplers: config, schedules (host, diffusers' precision path) and the elementwise steps
// (CPU loops here; CUDA in models/scheduler.cu). See models/scheduler.h.
#include "models/scheduler.h"
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine/backend.h"
#include "engine/json.h"
#include "engine/rng.h"
#include "models/scheduler_elem.h"

static const char *const sampler_names[ZS_SAMPLER_COUNT] = {"euler", "ddim", "dpmpp2m"};
// diffusers class per sampler (used in messages)
static const char *const sampler_classes[ZS_SAMPLER_COUNT] = {"EulerDiscreteScheduler", "DDIMScheduler",
                                                             "DPMSolverMultistepScheduler"};

const char *zs_sampler_name(zs_sampler s) { return (unsigned)s < ZS_SAMPLER_COUNT ? sampler_names[s] : "?"; }

zs_status zs_sampler_parse(const char *name, zs_sampler *out) {
    for (int i = 0; i < ZS_SAMPLER_COUNT; i++)
        if (name && !strcmp(name, sampler_names[i])) {
            *out = (zs_sampler)i;
            return ZS_OK;
        }
    return ZS_ERR(ZS_EINVAL, "unknown sampler '%s' (choose euler, ddim or dpmpp2m)", name ? name : "(null)");
}

zs_status zs_pred_type_parse(const char *name, zs_pred_type *out) {
    if (name && !strcmp(name, "epsilon")) *out = ZS_PRED_EPSILON;
    else if (name && !strcmp(name, "v_prediction")) *out = ZS_PRED_V;
    else if (name && (!strcmp(name, "sample") || !strcmp(name, "original_sample"))) *out = ZS_PRED_SAMPLE;
    else
        return ZS_ERR(ZS_EINVAL, "prediction_type '%s' is not supported (epsilon, v_prediction or sample)",
                      name ? name : "(null)");
    return ZS_OK;
}

// ---- config ------------------------------------------------------------------------------
void zs_sched_config_default(zs_sched_config *c, zs_sampler s) {
    memset(c, 0, sizeof *c);
    c->num_train_timesteps = 1000;
    c->beta_start = 0.0001;
    c->beta_end = 0.02;
    c->beta_schedule = ZS_BETAS_LINEAR;
    c->prediction_type = ZS_PRED_EPSILON;
    c->timestep_spacing = s == ZS_SAMPLER_DDIM ? ZS_SPACING_LEADING : ZS_SPACING_LINSPACE;
    c->steps_offset = 0;
    c->clip_sample = 1;
    c->clip_sample_range = 1.0;
    c->set_alpha_to_one = 1;
    c->final_sigmas_zero = 1;
    c->solver_order = 2;
    c->solver_heun = 0;
    c->lower_order_final = 1;
    c->euler_at_final = 0;
    c->use_karras_sigmas = 0;
    c->sigma_min = c->sigma_max = NAN;
    c->timestep_continuous = 0;
}

void zs_sched_config_free(zs_sched_config *c) {
    free(c->trained_betas);
    c->trained_betas = NULL;
}

// Which classes read a field: E(uler), D(DIM), P (DPM-Solver multistep).
enum { F_E = 1, F_D = 2, F_P = 4, F_ALL = 7 };

typedef struct {
    const char *path, *cls;
    cJSON *root;
    unsigned mask;  // the chosen class's bit
} cfg_reader;

// The field if present, not null, and read by the chosen class.
static const cJSON *field(const cfg_reader *r, const char *key, unsigned classes) {
    if (!(classes & r->mask)) return NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->root, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static zs_status get_int(const cfg_reader *r, const char *key, unsigned classes, int lo, int hi, int *out) {
    const cJSON *v = field(r, key, classes);
    if (!v) return ZS_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return ZS_ERR(ZS_EINVAL, "%s: field '%s' must be an integer in [%d, %d]", r->path, key, lo, hi);
    *out = (int)v->valuedouble;
    return ZS_OK;
}

static zs_status get_num(const cfg_reader *r, const char *key, unsigned classes, double *out) {
    const cJSON *v = field(r, key, classes);
    if (!v) return ZS_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return ZS_ERR(ZS_EINVAL, "%s: field '%s' must be a finite number", r->path, key);
    *out = v->valuedouble;
    return ZS_OK;
}

static zs_status get_bool(const cfg_reader *r, const char *key, unsigned classes, int *out) {
    const cJSON *v = field(r, key, classes);
    if (!v) return ZS_OK;
    if (!cJSON_IsBool(v)) return ZS_ERR(ZS_EINVAL, "%s: field '%s' must be true or false", r->path, key);
    *out = cJSON_IsTrue(v);
    return ZS_OK;
}

// String field matched against choices[] (index into *out); NULL-terminated list.
static zs_status get_enum(const cfg_reader *r, const char *key, unsigned classes, const char *const *choices,
                          int *out) {
    const cJSON *v = field(r, key, classes);
    if (!v) return ZS_OK;
    if (cJSON_IsString(v))
        for (int i = 0; choices[i]; i++)
            if (!strcmp(v->valuestring, choices[i])) {
                *out = i;
                return ZS_OK;
            }
    char list[256] = "";
    for (int i = 0; choices[i]; i++) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s'%s'", i ? ", " : "", choices[i]);
    }
    char *got = cJSON_PrintUnformatted(v);
    zs_status st = ZS_ERR(ZS_EUNSUPPORTED, "%s: %s with %s = %s is not supported (supported: %s)", r->path, r->cls,
                          key, got ? got : "?", list);
    free(got);
    return st;
}

// A field supported only at its default: false / null / the given value.
static zs_status need_false(const cfg_reader *r, const char *key, unsigned classes) {
    const cJSON *v = field(r, key, classes);
    if (!v || cJSON_IsFalse(v)) return ZS_OK;
    char *got = cJSON_PrintUnformatted(v);
    zs_status st = ZS_ERR(ZS_EUNSUPPORTED, "%s: %s with %s = %s is not supported (only false)", r->path, r->cls, key,
                          got ? got : "?");
    free(got);
    return st;
}

zs_status zs_sched_config_read(zs_sched_config *c, zs_sampler s, const char *path) {
    if ((unsigned)s >= ZS_SAMPLER_COUNT) return ZS_ERR(ZS_EINVAL, "sched config: bad sampler %d", (int)s);
    zs_sched_config_default(c, s);
    if (!path) return ZS_OK;
    cfg_reader r = {path, sampler_classes[s], NULL, 1u << s};
    ZS_TRY(zs_json_read_object(path, &r.root));
    zs_status st = ZS_OK;
#define T_(expr)                  \
    do {                          \
        st = (expr);              \
        if (st != ZS_OK) goto done; \
    } while (0)
    T_(get_int(&r, "num_train_timesteps", F_ALL, 1, 100000, &c->num_train_timesteps));
    T_(get_num(&r, "beta_start", F_ALL, &c->beta_start));
    T_(get_num(&r, "beta_end", F_ALL, &c->beta_end));
    static const char *const bs[] = {"linear", "scaled_linear", "squaredcos_cap_v2", NULL};
    int e = (int)c->beta_schedule;
    T_(get_enum(&r, "beta_schedule", F_ALL, bs, &e));
    c->beta_schedule = (zs_beta_sched)e;
    const cJSON *tb = field(&r, "trained_betas", F_ALL);
    if (tb) {
        int n = cJSON_GetArraySize(tb);
        if (!cJSON_IsArray(tb) || n != c->num_train_timesteps) {
            st = ZS_ERR(ZS_EINVAL, "%s: field 'trained_betas' must be null or an array of num_train_timesteps (%d) numbers",
                        path, c->num_train_timesteps);
            goto done;
        }
        c->trained_betas = malloc(sizeof(float) * (size_t)n);
        if (!c->trained_betas) {
            st = ZS_ERR(ZS_ENOMEM, "%s: trained_betas", path);
            goto done;
        }
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, tb) {
            if (!cJSON_IsNumber(it)) {
                st = ZS_ERR(ZS_EINVAL, "%s: field 'trained_betas'[%d] is not a number", path, i);
                goto done;
            }
            c->trained_betas[i++] = (float)it->valuedouble;  // torch.tensor(list, dtype=float32)
        }
        c->beta_schedule = ZS_BETAS_TRAINED;
    }
    static const char *const pt[] = {"epsilon", "v_prediction", "sample", "original_sample", NULL};
    e = (int)c->prediction_type;
    T_(get_enum(&r, "prediction_type", F_ALL, pt, &e));
    c->prediction_type = e == 3 ? ZS_PRED_SAMPLE : (zs_pred_type)e;
    if (s == ZS_SAMPLER_DDIM && e == 3) {
        st = ZS_ERR(ZS_EUNSUPPORTED, "%s: DDIMScheduler with prediction_type = \"original_sample\" is not supported",
                    path);
        goto done;
    }
    static const char *const sp[] = {"linspace", "leading", "trailing", NULL};
    e = (int)c->timestep_spacing;
    T_(get_enum(&r, "timestep_spacing", F_ALL, sp, &e));
    c->timestep_spacing = (zs_spacing)e;
    T_(get_int(&r, "steps_offset", F_ALL, 0, 100000, &c->steps_offset));
    T_(need_false(&r, "rescale_betas_zero_snr", F_ALL));
    T_(need_false(&r, "thresholding", F_D | F_P));
    T_(get_bool(&r, "clip_sample", F_D, &c->clip_sample));
    T_(get_num(&r, "clip_sample_range", F_D, &c->clip_sample_range));
    T_(get_bool(&r, "set_alpha_to_one", F_D, &c->set_alpha_to_one));
    static const char *const interp[] = {"linear", NULL};
    e = 0;
    T_(get_enum(&r, "interpolation_type", F_E, interp, &e));
    T_(get_bool(&r, "use_karras_sigmas", F_E | F_P, &c->use_karras_sigmas));
    T_(get_num(&r, "sigma_min", F_E, &c->sigma_min));
    T_(get_num(&r, "sigma_max", F_E, &c->sigma_max));
    T_(need_false(&r, "use_exponential_sigmas", F_E | F_P));
    T_(need_false(&r, "use_beta_sigmas", F_E | F_P));
    T_(need_false(&r, "use_lu_lambdas", F_P));
    T_(need_false(&r, "use_flow_sigmas", F_P));
    T_(need_false(&r, "use_dynamic_shifting", F_P));
    static const char *const tt[] = {"discrete", "continuous", NULL};
    e = 0;
    T_(get_enum(&r, "timestep_type", F_E, tt, &e));
    c->timestep_continuous = e == 1;  // checked with the final prediction_type in zs_sched_init_config
    static const char *const fs[] = {"sigma_min", "zero", NULL};
    e = c->final_sigmas_zero;
    T_(get_enum(&r, "final_sigmas_type", F_E | F_P, fs, &e));
    c->final_sigmas_zero = e;
    T_(get_int(&r, "solver_order", F_P, 1, 2, &c->solver_order));
    static const char *const at[] = {"dpmsolver++", "deis", NULL};  // deis: diffusers maps it to dpmsolver++
    e = 0;
    T_(get_enum(&r, "algorithm_type", F_P, at, &e));
    static const char *const st_[] = {"midpoint", "heun", "logrho", "bh1", "bh2", NULL};  // last 3 -> midpoint
    e = 0;
    T_(get_enum(&r, "solver_type", F_P, st_, &e));
    c->solver_heun = e == 1;
    T_(get_bool(&r, "lower_order_final", F_P, &c->lower_order_final));
    T_(get_bool(&r, "euler_at_final", F_P, &c->euler_at_final));
    const cJSON *vt = field(&r, "variance_type", F_P);
    if (vt) {
        st = ZS_ERR(ZS_EUNSUPPORTED, "%s: DPMSolverMultistepScheduler with variance_type (learned) is not supported",
                    path);
        goto done;
    }
    const cJSON *lm = field(&r, "lambda_min_clipped", F_P);
    if (lm && !(cJSON_IsNumber(lm) && isinf(lm->valuedouble) && lm->valuedouble < 0)) {
        st = ZS_ERR(ZS_EUNSUPPORTED, "%s: DPMSolverMultistepScheduler with a finite lambda_min_clipped is not supported",
                    path);
        goto done;
    }
#undef T_
done:
    cJSON_Delete(r.root);
    if (st != ZS_OK) zs_sched_config_free(c);
    return st;
}

// ---- schedules -------------------------------------------------------------------------
// torch.linspace(start, end, steps, dtype=float32) on the CPU: float step, first half
// start + step * i, second half end - step * (steps - 1 - i), each one fused multiply-add
// (what the compiled kernel does; checked bit for bit against torch 2.15 on the fixtures).
static void linspace_f32(float *y, double a, double b, int steps) {
    float start = (float)a, end = (float)b;
    if (steps == 1) {
        y[0] = start;
        return;
    }
    float step = (end - start) / (float)(steps - 1);
    int half = steps / 2;
    for (int i = 0; i < steps; i++)
        y[i] = i < half ? fmaf(step, (float)i, start) : fmaf(-step, (float)(steps - 1 - i), end);
}

static double alpha_bar_cos(double t) {
    double v = cos((t + 0.008) / 1.008 * M_PI / 2);
    return v * v;
}

static zs_status make_alphas_cumprod(zs_sched *s) {
    const zs_sched_config *c = &s->cfg;
    int T = c->num_train_timesteps;
    float *betas = malloc(sizeof(float) * (size_t)T);
    s->alphas_cumprod = malloc(sizeof(float) * (size_t)T);
    if (!betas || !s->alphas_cumprod) {
        free(betas);
        return ZS_ERR(ZS_ENOMEM, "scheduler: alphas_cumprod [%d]", T);
    }
    switch (c->beta_schedule) {
    case ZS_BETAS_TRAINED: memcpy(betas, c->trained_betas, sizeof(float) * (size_t)T); break;
    case ZS_BETAS_LINEAR: linspace_f32(betas, c->beta_start, c->beta_end, T); break;
    case ZS_BETAS_SCALED_LINEAR:
        linspace_f32(betas, pow(c->beta_start, 0.5), pow(c->beta_end, 0.5), T);
        for (int i = 0; i < T; i++) betas[i] = betas[i] * betas[i];
        break;
    case ZS_BETAS_SQUAREDCOS_CAP_V2:
        for (int i = 0; i < T; i++) {
            double t1 = (double)i / T, t2 = (double)(i + 1) / T;
            double b = 1 - alpha_bar_cos(t2) / alpha_bar_cos(t1);
            betas[i] = (float)(b < 0.999 ? b : 0.999);
        }
        break;
    }
    double acc = 1.0;  // torch.cumprod on the CPU accumulates in double
    for (int i = 0; i < T; i++) {
        acc *= (double)(1.0f - betas[i]);
        s->alphas_cumprod[i] = (float)acc;
    }
    free(betas);
    s->final_alpha_cumprod = c->set_alpha_to_one ? 1.0f : s->alphas_cumprod[0];
    return ZS_OK;
}

zs_status zs_sched_init_config(zs_sched *s, zs_sampler sampler, zs_sched_config *c) {
    memset(s, 0, sizeof *s);
    if ((unsigned)sampler >= ZS_SAMPLER_COUNT) {
        zs_sched_config_free(c);
        return ZS_ERR(ZS_EINVAL, "scheduler: bad sampler %d", (int)sampler);
    }
    if (sampler == ZS_SAMPLER_EULER && c->timestep_continuous && c->prediction_type == ZS_PRED_V) {
        zs_sched_config_free(c);
        return ZS_ERR(ZS_EUNSUPPORTED,
                      "scheduler: EulerDiscreteScheduler with timestep_type \"continuous\" and v_prediction is not "
                      "supported");
    }
    s->sampler = sampler;
    s->cfg = *c;
    c->trained_betas = NULL;
    s->init_noise_sigma = 1.0f;
    zs_status st = make_alphas_cumprod(s);
    if (st != ZS_OK) zs_sched_free(s);
    return st;
}

zs_status zs_sched_init(zs_sched *s, zs_sampler sampler, const char *config_path, const char *prediction_type) {
    memset(s, 0, sizeof *s);
    zs_sched_config c;
    ZS_TRY(zs_sched_config_read(&c, sampler, config_path));
    if (prediction_type) {
        zs_status st = zs_pred_type_parse(prediction_type, &c.prediction_type);
        if (st != ZS_OK) {
            zs_sched_config_free(&c);
            return st;
        }
    }
    return zs_sched_init_config(s, sampler, &c);
}

void zs_sched_free(zs_sched *s) {
    zs_sched_config_free(&s->cfg);
    free(s->alphas_cumprod);
    free(s->timesteps);
    free(s->timesteps_i);
    free(s->sigmas);
    if (s->prev_buf) zs_free(s->prev_buf, s->prev_x0.device);
    memset(s, 0, sizeof *s);
}

// np.linspace(0, stop, num) (float64), element k.
static double np_linspace(double stop, int num, int k) {
    if (num == 1) return 0.0;
    if (k == num - 1) return stop;
    double step = stop / (num - 1);
    return (double)k * step + 0.0;
}

// np.arange(start, 0, -ratio) (float64): length ceil(start / ratio); v0 = start,
// v1 = start - ratio, v_k = start + k * (v1 - start).
static int np_arange_down(double start, double ratio, double *out, int cap) {
    int len = (int)ceil((0.0 - start) / -ratio);
    if (len > cap) len = cap;
    double v1 = start + -ratio, delta = v1 - start;
    for (int k = 0; k < len; k++) out[k] = k == 0 ? start : k == 1 ? v1 : start + k * delta;
    return len;
}

// np.interp(x, arange(T), fp) for float32 fp, in float64.
static double np_interp(double x, const float *fp, int T) {
    if (x <= 0) return fp[0];  // x < xp[0] -> left = fp[0]; x == 0 -> slope * 0 + fp[0]
    if (x >= T - 1) return fp[T - 1];
    int j = (int)floor(x);
    double slope = ((double)fp[j + 1] - (double)fp[j]) / 1.0;
    return slope * (x - j) + (double)fp[j];
}

// _sigma_to_t: the (fractional) timestep of sigma by interpolation in log sigma; log_sigmas
// are float32 (np.log of the float32 schedule), the weights float64 (numpy 2 promotion).
static double sigma_to_t(double sigma, const float *log_sigmas, int T) {
    double ls = log(sigma > 1e-10 ? sigma : 1e-10);
    int low = 0;
    for (int k = 0; k < T; k++)
        if (ls - (double)log_sigmas[k] >= 0) low = k;
    if (low > T - 2) low = T - 2;
    int high = low + 1;
    float lo = log_sigmas[low], hi = log_sigmas[high];
    double w = ((double)lo - ls) / (double)(float)(lo - hi);
    w = w < 0 ? 0 : (w > 1 ? 1 : w);
    return (1 - w) * low + w * high;
}

// use_karras_sigmas (Karras et al. 2022, rho 7): replaces sig[0..n) (the interpolated
// sigmas, float64) and the timesteps, as diffusers' _convert_to_karras + _sigma_to_t.
static zs_status karras(zs_sched *s, const float *full, double *sig, int n) {
    const zs_sched_config *c = &s->cfg;
    int T = c->num_train_timesteps;
    float *logs = malloc(sizeof(float) * (size_t)T);
    if (!logs) return ZS_ERR(ZS_ENOMEM, "scheduler: karras sigmas");
    for (int k = 0; k < T; k++) logs[k] = logf(full[k]);
    double smin, smax;
    if (s->sampler == ZS_SAMPLER_EULER) {  // from the interpolated sigmas, or the config's
        smin = isnan(c->sigma_min) ? sig[n - 1] : c->sigma_min;
        smax = isnan(c->sigma_max) ? sig[0] : c->sigma_max;
    } else {  // DPM: from the whole float32 schedule
        smin = full[0];
        smax = full[T - 1];
    }
    const double rho = 7.0;
    double min_inv = pow(smin, 1 / rho), max_inv = pow(smax, 1 / rho);
    for (int j = 0; j < n; j++) {
        double ramp = np_linspace(1.0, n, j);
        sig[j] = pow(max_inv + ramp * (min_inv - max_inv), rho);
        double t = sigma_to_t(sig[j], logs, T);
        if (s->sampler == ZS_SAMPLER_EULER) {
            s->timesteps[j] = (float)t;
            s->timesteps_i[j] = (int64_t)rint(t);
        } else {
            s->timesteps_i[j] = c->beta_schedule != ZS_BETAS_SQUAREDCOS_CAP_V2 ? (int64_t)rint(t) : (int64_t)t;
            s->timesteps[j] = (float)s->timesteps_i[j];
        }
    }
    free(logs);
    return ZS_OK;
}

zs_status zs_sched_set_timesteps(zs_sched *s, int n) {
    const zs_sched_config *c = &s->cfg;
    int T = c->num_train_timesteps;
    if (n < 1 || n > T)
        return ZS_ERR(ZS_EINVAL, "scheduler: num_inference_steps %d must be in [1, num_train_timesteps = %d]", n, T);
    free(s->timesteps);
    free(s->timesteps_i);
    free(s->sigmas);
    s->timesteps = NULL;
    s->timesteps_i = NULL;
    s->sigmas = NULL;
    s->n = 0;
    s->steps_done = 0;
    double *tv = malloc(sizeof(double) * (size_t)(n + 2));  // timesteps as numpy holds them
    float *full = malloc(sizeof(float) * (size_t)T);
    s->timesteps = malloc(sizeof(float) * (size_t)n);
    s->timesteps_i = malloc(sizeof(int64_t) * (size_t)n);
    s->sigmas = s->sampler != ZS_SAMPLER_DDIM ? malloc(sizeof(float) * (size_t)(n + 1)) : NULL;
    if (!tv || !full || !s->timesteps || !s->timesteps_i || (s->sampler != ZS_SAMPLER_DDIM && !s->sigmas)) {
        free(tv);
        free(full);
        return ZS_ERR(ZS_ENOMEM, "scheduler: timesteps [%d]", n);
    }
    int len = n;
    zs_status st = ZS_OK;
    if (s->sampler == ZS_SAMPLER_EULER) {
        // float32 timesteps
        for (int j = 0; j < n; j++) {
            float t;
            if (c->timestep_spacing == ZS_SPACING_LINSPACE) {
                t = (float)np_linspace(T - 1, n, n - 1 - j);
            } else if (c->timestep_spacing == ZS_SPACING_LEADING) {
                int64_t ratio = T / n;
                t = (float)((int64_t)(n - 1 - j) * ratio) + (float)c->steps_offset;
            } else {
                t = 0;  // below
            }
            s->timesteps[j] = t;
        }
        if (c->timestep_spacing == ZS_SPACING_TRAILING) {
            len = np_arange_down(T, (double)T / n, tv, n + 2);
            if (len != n) {
                st = ZS_ERR(ZS_EINVAL, "scheduler: trailing spacing gives %d timesteps for %d steps", len, n);
                goto out;
            }
            for (int j = 0; j < n; j++) s->timesteps[j] = (float)rint(tv[j]) - 1.0f;
        }
    } else {
        // int64 timesteps
        for (int j = 0; j < n; j++) {
            int64_t t = 0;
            if (s->sampler == ZS_SAMPLER_DDIM) {
                if (c->timestep_spacing == ZS_SPACING_LINSPACE) t = (int64_t)rint(np_linspace(T - 1, n, n - 1 - j));
                else if (c->timestep_spacing == ZS_SPACING_LEADING) t = (int64_t)(n - 1 - j) * (T / n) + c->steps_offset;
            } else {
                int last = T;  // lambda_min_clipped = -inf
                if (c->timestep_spacing == ZS_SPACING_LINSPACE) t = (int64_t)rint(np_linspace(last - 1, n + 1, n - j));
                else if (c->timestep_spacing == ZS_SPACING_LEADING)
                    t = (int64_t)(n - j) * (last / (n + 1)) + c->steps_offset;
            }
            s->timesteps_i[j] = t;
        }
        if (c->timestep_spacing == ZS_SPACING_TRAILING) {
            len = np_arange_down(T, (double)T / n, tv, n + 2);
            if (len != n) {
                st = ZS_ERR(ZS_EINVAL, "scheduler: trailing spacing gives %d timesteps for %d steps", len, n);
                goto out;
            }
            for (int j = 0; j < n; j++) s->timesteps_i[j] = (int64_t)rint(tv[j]) - 1;
        }
        for (int j = 0; j < n; j++) s->timesteps[j] = (float)s->timesteps_i[j];
    }
    for (int j = 0; j < n; j++) {
        if (s->sampler == ZS_SAMPLER_EULER) s->timesteps_i[j] = (int64_t)rint(s->timesteps[j]);
        if (s->timesteps_i[j] < 0 || s->timesteps_i[j] >= T) {
            st = ZS_ERR(ZS_EINVAL, "scheduler: timestep %lld (step %d of %d) is outside [0, %d): check steps_offset",
                        (long long)s->timesteps_i[j], j, n, T);
            goto out;
        }
    }
    if (s->sigmas) {
        for (int k = 0; k < T; k++) {
            float a = s->alphas_cumprod[k];
            full[k] = sqrtf((1.0f - a) / a);
        }
        for (int j = 0; j < n; j++) tv[j] = np_interp((double)s->timesteps[j], full, T);
        if (c->use_karras_sigmas) {
            st = karras(s, full, tv, n);
            if (st != ZS_OK) goto out;
        }
        float mx = 0;
        for (int j = 0; j < n; j++) {
            s->sigmas[j] = (float)tv[j];
            if (s->sigmas[j] > mx) mx = s->sigmas[j];
        }
        s->sigmas[n] = c->final_sigmas_zero ? 0.0f : full[0];
        if (s->sigmas[n] > mx) mx = s->sigmas[n];
        if (s->sampler == ZS_SAMPLER_EULER)
            s->init_noise_sigma = c->timestep_spacing == ZS_SPACING_LEADING ? sqrtf(mx * mx + 1.0f) : mx;
    }
    s->n = n;
out:
    free(tv);
    free(full);
    return st;
}

// ---- elementwise dispatch ---------------------------------------------------------------
static zs_status check_t(const char *op, const zs_tensor *t, const char *what, const zs_tensor *ref) {
    char b1[64], b2[64];
    if (!t || !t->data) return ZS_ERR(ZS_EINVAL, "%s: %s missing", op, what);
    if (ref && (!zs_same_shape(t, ref) || t->device != ref->device || t->dtype != ref->dtype))
        return ZS_ERR(ZS_EINVAL, "%s: %s%s%s is %s %s %s, expected %s %s %s", op, what, t->name ? " " : "",
                      t->name ? t->name : "", zs_device_name(t->device), zs_dtype_name(t->dtype),
                      zs_shape_str(t, b1, sizeof b1), zs_device_name(ref->device), zs_dtype_name(ref->dtype),
                      zs_shape_str(ref, b2, sizeof b2));
    if (t->device == ZS_CPU && t->dtype != ZS_F32)
        return ZS_ERR(ZS_EUNSUPPORTED, "%s: %s is %s on the CPU (F32 only)", op, what, zs_dtype_name(t->dtype));
    if (t->device == ZS_CUDA && t->dtype != ZS_F32 && t->dtype != ZS_F16 && t->dtype != ZS_BF16)
        return ZS_ERR(ZS_EUNSUPPORTED, "%s: %s is %s on CUDA", op, what, zs_dtype_name(t->dtype));
    return ZS_OK;
}

static zs_status elem_fwd(const char *op, const zs_sched_elem *e, zs_tensor *out, const zs_tensor *x,
                          const zs_tensor *m, zs_tensor *p) {
    ZS_TRY(check_t(op, x, "input", NULL));
    ZS_TRY(check_t(op, out, "output", x));
    if (m) ZS_TRY(check_t(op, m, "model output", x));
    if (p) ZS_TRY(check_t(op, p, "state", x));
    int64_t n = zs_numel(x);
    if (n == 0) return ZS_OK;
    if (x->device == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_sched_elem_fwd_cuda(e, x->dtype, out->data, x->data, m ? m->data : NULL, p ? p->data : NULL, n);
#else
        return ZS_ERR(ZS_EUNSUPPORTED, "%s: built without CUDA", op);
#endif
    }
    float *o = out->data, *pd = p ? p->data : NULL;
    const float *xd = x->data, *md = m ? m->data : NULL;
    zs_sched_elem ev = *e;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float pv = pd && ev.order2 ? pd[i] : 0.0f;
        float y = zs_se_fwd(&ev, xd[i], md ? md[i] : 0.0f, &pv);
        if (pd) pd[i] = pv;
        o[i] = y;
    }
    return ZS_OK;
}

static zs_status elem_bwd(const char *op, const zs_sched_elem *e, zs_tensor *dx, zs_tensor *dm, const zs_tensor *g,
                          const zs_tensor *x, const zs_tensor *m, zs_tensor *carry) {
    ZS_TRY(check_t(op, g, "d_out", NULL));
    if (dx) ZS_TRY(check_t(op, dx, "d_input", g));
    if (dm) ZS_TRY(check_t(op, dm, "d_model_output", g));
    if (x) ZS_TRY(check_t(op, x, "input", g));
    if (m) ZS_TRY(check_t(op, m, "model output", g));
    if (carry) ZS_TRY(check_t(op, carry, "d_carry", g));
    int64_t n = zs_numel(g);
    if (n == 0) return ZS_OK;
    if (g->device == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_sched_elem_bwd_cuda(e, g->dtype, dx ? dx->data : NULL, dm ? dm->data : NULL, g->data,
                                      x ? x->data : NULL, m ? m->data : NULL, carry ? carry->data : NULL, n);
#else
        return ZS_ERR(ZS_EUNSUPPORTED, "%s: built without CUDA", op);
#endif
    }
    float *dxd = dx ? dx->data : NULL, *dmd = dm ? dm->data : NULL, *cd = carry ? carry->data : NULL;
    const float *gd = g->data, *xd = x ? x->data : NULL, *md = m ? m->data : NULL;
    zs_sched_elem ev = *e;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++)
        zs_se_bwd(&ev, gd[i], xd ? xd[i] : 0.0f, md ? md[i] : 0.0f, dxd ? &dxd[i] : NULL, dmd ? &dmd[i] : NULL,
                  cd ? &cd[i] : NULL);
    return ZS_OK;
}

// ---- noise, model input, CFG ---------------------------------------------------------------
zs_status zs_sched_scale_noise(const zs_sched *s, zs_tensor *latents) {
    zs_sched_elem e = {.op = ZS_SE_MUL, .c = {s->init_noise_sigma}, .b = {s->init_noise_sigma}};
    return elem_fwd("sched_scale_noise", &e, latents, latents, NULL, NULL);
}

zs_status zs_sched_init_latents(const zs_sched *s, zs_tensor *latents, uint64_t seed, uint64_t offset) {
    ZS_TRY(zs_rng_normal(latents, seed, offset));
    return zs_sched_scale_noise(s, latents);
}

static zs_status check_step(const zs_sched *s, const char *op, int i) {
    if (s->n == 0) return ZS_ERR(ZS_EINVAL, "%s: set_timesteps was not called", op);
    if (i < 0 || i >= s->n) return ZS_ERR(ZS_EINVAL, "%s: step index %d outside [0, %d)", op, i, s->n);
    return ZS_OK;
}

static void scale_elem(const zs_sched *s, int i, zs_sched_elem *e) {
    memset(e, 0, sizeof *e);
    if (s->sampler == ZS_SAMPLER_EULER) {
        float sg = s->sigmas[i];
        e->op = ZS_SE_DIV;
        e->c[0] = sqrtf(sg * sg + 1.0f);
        e->b[0] = (float)(1.0 / e->c[0]);
    } else {
        e->op = ZS_SE_MUL;
        e->c[0] = 1.0f;
        e->b[0] = 1.0f;
    }
}

zs_status zs_sched_scale_model_input(const zs_sched *s, zs_tensor *out, const zs_tensor *latents, int i) {
    ZS_TRY(check_step(s, "sched_scale_model_input", i));
    zs_sched_elem e;
    scale_elem(s, i, &e);
    return elem_fwd("sched_scale_model_input", &e, out, latents, NULL, NULL);
}

zs_status zs_sched_scale_model_input_bwd(const zs_sched *s, zs_tensor *d_latents, const zs_tensor *d_out, int i) {
    ZS_TRY(check_step(s, "sched_scale_model_input_bwd", i));
    zs_sched_elem e;
    scale_elem(s, i, &e);
    return elem_bwd("sched_scale_model_input_bwd", &e, d_latents, NULL, d_out, NULL, NULL, NULL);
}

zs_status zs_cfg_combine(zs_tensor *out, const zs_tensor *uncond, const zs_tensor *cond, float scale) {
    zs_sched_elem e = {.op = ZS_SE_CFG, .c = {scale}};
    return elem_fwd("cfg_combine", &e, out, uncond, cond, NULL);
}

zs_status zs_cfg_combine_bwd(zs_tensor *d_uncond, zs_tensor *d_cond, const zs_tensor *d_out, float scale) {
    zs_sched_elem e = {.op = ZS_SE_CFG, .b = {(float)(1.0 - (double)scale), scale}};
    return elem_bwd("cfg_combine_bwd", &e, d_uncond, d_cond, d_out, NULL, NULL, NULL);
}

zs_status zs_elem_div(zs_tensor *out, const zs_tensor *x, float c) {
    zs_sched_elem e = {.op = ZS_SE_DIV, .c = {c}};
    return elem_fwd("elem_div", &e, out, x, NULL, NULL);
}

zs_status zs_elem_div_bwd(zs_tensor *dx, const zs_tensor *d_out, float c) {
    zs_sched_elem e = {.op = ZS_SE_DIV, .b = {(float)(1.0 / c)}};
    return elem_bwd("elem_div_bwd", &e, dx, NULL, d_out, NULL, NULL, NULL);
}

// ---- steps -----------------------------------------------------------------------------
static void dpm_alpha_sigma(float sg, float *alpha, float *sigma) {
    *alpha = 1.0f / sqrtf(sg * sg + 1.0f);
    *sigma = sg * *alpha;
}

static int dpm_second_order(const zs_sched *s, int i) {
    const zs_sched_config *c = &s->cfg;
    int lower_final = i == s->n - 1 &&
                      (c->euler_at_final || (c->lower_order_final && s->n < 15) || c->final_sigmas_zero);
    return !(c->solver_order == 1 || i == 0 || lower_final);
}

// The step's scalars (forward c[], backward b[]), all from the float32 schedule.
static void step_elem(const zs_sched *s, int i, zs_sched_elem *e) {
    memset(e, 0, sizeof *e);
    const zs_sched_config *c = &s->cfg;
    e->pred = (int)c->prediction_type;
    if (s->sampler == ZS_SAMPLER_EULER) {
        float sg = s->sigmas[i];
        float sh = sg * (0.0f + 1.0f);  // sigma_hat, s_churn = 0
        float dt = s->sigmas[i + 1] - sh;
        e->op = ZS_SE_EULER;
        e->c[0] = sh;
        e->c[1] = dt;
        e->c[2] = -sg / sqrtf(sg * sg + 1.0f);
        e->c[3] = sg * sg + 1.0f;
        double S = sh, D = dt;
        if (e->pred == ZS_SE_PRED_EPS) {
            e->b[0] = 1.0f;
            e->b[1] = (float)D;
        } else if (e->pred == ZS_SE_PRED_V) {
            e->b[0] = (float)(1.0 + D / S * (1.0 - 1.0 / (double)e->c[3]));
            e->b[1] = (float)(-D * (double)e->c[2] / S);
        } else {
            e->b[0] = (float)(1.0 + D / S);
            e->b[1] = (float)(-D / S);
        }
    } else if (s->sampler == ZS_SAMPLER_DDIM) {
        int64_t t = s->timesteps_i[i], prev = t - c->num_train_timesteps / s->n;
        float at = s->alphas_cumprod[t];
        float ap = prev >= 0 ? s->alphas_cumprod[prev] : s->final_alpha_cumprod;
        float bt = 1.0f - at;
        e->op = ZS_SE_DDIM;
        e->c[0] = sqrtf(at);
        e->c[1] = sqrtf(bt);
        e->c[2] = sqrtf(ap);
        e->c[3] = sqrtf((1.0f - ap) - 0.0f);
        e->c[4] = (float)c->clip_sample_range;
        e->clip = c->clip_sample;
        double sa = e->c[0], sb = e->c[1], sp = e->c[2], sq = e->c[3], ax, am, ex, em;
        if (e->pred == ZS_SE_PRED_EPS) ax = 1 / sa, am = -sb / sa, ex = 0, em = 1;
        else if (e->pred == ZS_SE_PRED_V) ax = sa, am = -sb, ex = sb, em = sa;
        else ax = 0, am = 1, ex = 1 / sb, em = -sa / sb;
        e->b[0] = (float)(sp * ax + sq * ex);
        e->b[1] = (float)(sp * am + sq * em);
        e->b[2] = (float)(sq * ex);
        e->b[3] = (float)(sq * em);
    } else {
        float al_t, si_t, al_s, si_s;
        dpm_alpha_sigma(s->sigmas[i + 1], &al_t, &si_t);
        dpm_alpha_sigma(s->sigmas[i], &al_s, &si_s);
        float lam_t = logf(al_t) - logf(si_t), lam_s = logf(al_s) - logf(si_s);
        float h = lam_t - lam_s;
        float em1 = expf(-h) - 1.0f;
        e->op = ZS_SE_DPM;
        e->c[0] = al_s;
        e->c[1] = si_s;
        e->c[2] = si_t / si_s;
        e->c[3] = al_t * em1;
        e->order2 = dpm_second_order(s, i);
        if (e->order2) {
            float al_1, si_1;
            dpm_alpha_sigma(s->sigmas[i - 1], &al_1, &si_1);
            float lam_1 = logf(al_1) - logf(si_1);
            float r0 = (lam_s - lam_1) / h;
            e->c[5] = 1.0f / r0;
            // midpoint: - 0.5 * (alpha_t (e^-h - 1)) * D1; heun: + (alpha_t ((e^-h - 1) / h + 1)) * D1
            e->c[4] = c->solver_heun ? -(al_t * (em1 / h + 1.0f)) : 0.5f * e->c[3];
        }
        double ax, am;
        if (e->pred == ZS_SE_PRED_EPS) ax = 1.0 / al_s, am = -(double)si_s / al_s;
        else if (e->pred == ZS_SE_PRED_V) ax = al_s, am = -(double)si_s;
        else ax = 0, am = 1;
        double k0 = -(double)e->c[3] - (double)e->c[4] * e->c[5], kp = (double)e->c[4] * e->c[5];
        e->b[0] = e->c[2];
        e->b[2] = (float)k0;
        e->b[3] = (float)kp;
        e->b[4] = (float)ax;
        e->b[5] = (float)am;
    }
}

zs_status zs_sched_step(zs_sched *s, zs_tensor *latents_out, const zs_tensor *model_output,
                        const zs_tensor *latents_in, int i) {
    ZS_TRY(check_step(s, "sched_step", i));
    zs_sched_elem e;
    step_elem(s, i, &e);
    if (s->sampler != ZS_SAMPLER_DPMPP2M) return elem_fwd("sched_step", &e, latents_out, latents_in, model_output, NULL);
    if (i != s->steps_done)
        return ZS_ERR(ZS_EINVAL, "sched_step: dpmpp2m steps must run in order after set_timesteps: got step %d, expected %d",
                      i, s->steps_done);
    ZS_TRY(check_t("sched_step", latents_in, "input", NULL));
    zs_tensor *p = &s->prev_x0;
    if (!s->prev_buf || !zs_same_shape(p, latents_in) || p->device != latents_in->device ||
        p->dtype != latents_in->dtype) {
        if (s->prev_buf) zs_free(s->prev_buf, p->device);
        s->prev_buf = NULL;
        void *buf;
        ZS_TRY(zs_malloc(&buf, zs_nbytes(latents_in), latents_in->device, "dpmpp2m previous x0"));
        s->prev_buf = buf;
        *p = zs_tensor_make(buf, latents_in->dtype, latents_in->device, latents_in->ndim, latents_in->shape);
        p->name = "dpmpp2m previous x0";
    }
    ZS_TRY(elem_fwd("sched_step", &e, latents_out, latents_in, model_output, p));
    s->steps_done++;
    return ZS_OK;
}

zs_status zs_sched_step_bwd(const zs_sched *s, int i, zs_tensor *d_latents_in, zs_tensor *d_model_output,
                            const zs_tensor *d_latents_out, const zs_tensor *latents_in,
                            const zs_tensor *model_output, zs_tensor *d_carry) {
    ZS_TRY(check_step(s, "sched_step_bwd", i));
    zs_sched_elem e;
    step_elem(s, i, &e);
    if (s->sampler == ZS_SAMPLER_DDIM && e.clip) {
        if (!latents_in || !model_output)
            return ZS_ERR(ZS_EINVAL, "sched_step_bwd: DDIM with clip_sample needs the step's latents_in and model_output");
    } else {
        latents_in = model_output = NULL;
    }
    if (s->sampler == ZS_SAMPLER_DPMPP2M) {
        if (!d_carry) return ZS_ERR(ZS_EINVAL, "sched_step_bwd: dpmpp2m needs d_carry");
    } else {
        d_carry = NULL;
    }
    return elem_bwd("sched_step_bwd", &e, d_latents_in, d_model_output, d_latents_out, latents_in, model_output,
                    d_carry);
}
