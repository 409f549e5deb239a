#include "weights/sd_names.h"
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define U ZS_SD_UNET
#define V ZS_SD_VAE
#define CONV ZS_SD_NAME_CONV1X1

// UNet ResnetBlock2D: diffusers -> LDM ResBlock
static const zs_sd_leaf ldm_unet_res[] = {
    {"norm1.", "in_layers.0.", 0}, {"conv1.", "in_layers.2.", 0}, {"time_emb_proj.", "emb_layers.1.", 0},
    {"norm2.", "out_layers.0.", 0}, {"conv2.", "out_layers.3.", 0}, {"conv_shortcut.", "skip_connection.", 0},
    {NULL, NULL, 0},
};
// VAE ResnetBlock2D: same names except the shortcut
static const zs_sd_leaf ldm_vae_res[] = {
    {"conv_shortcut.", "nin_shortcut.", 0}, {"", "", 0}, {NULL, NULL, 0},
};
// VAE mid-block attention: LDM AttnBlock holds 1x1 convs
static const zs_sd_leaf ldm_vae_attn[] = {
    {"group_norm.", "norm.", 0}, {"to_q.", "q.", CONV}, {"to_k.", "k.", CONV}, {"to_v.", "v.", CONV},
    {"to_out.0.", "proj_out.", CONV}, {NULL, NULL, 0},
};
// diffusers' legacy VAE attention names (nn.Linear, same shapes)
static const zs_sd_leaf old_vae_attn[] = {
    {"group_norm.", "group_norm.", 0}, {"to_q.", "query.", 0}, {"to_k.", "key.", 0}, {"to_v.", "value.", 0},
    {"to_out.0.", "proj_attn.", 0}, {NULL, NULL, 0},
};

static const zs_sd_name diffusers[] = {
    {U, "", "", ZS_SD_IDX_SAME, NULL},
    {V, "", "", ZS_SD_IDX_SAME, NULL},
};

static const zs_sd_name diffusers_old[] = {
    {V, "encoder.mid_block.attentions.0.", "encoder.mid_block.attentions.0.", ZS_SD_IDX_SAME, old_vae_attn},
    {V, "decoder.mid_block.attentions.0.", "decoder.mid_block.attentions.0.", ZS_SD_IDX_SAME, old_vae_attn},
    {U, "", "", ZS_SD_IDX_SAME, NULL},
    {V, "", "", ZS_SD_IDX_SAME, NULL},
};

static const zs_sd_name ldm[] = {
    {U, "conv_in.", "input_blocks.0.0.", ZS_SD_IDX_SAME, NULL},
    {U, "time_embedding.linear_1.", "time_embed.0.", ZS_SD_IDX_SAME, NULL},
    {U, "time_embedding.linear_2.", "time_embed.2.", ZS_SD_IDX_SAME, NULL},
    {U, "down_blocks.%d.resnets.%d.", "input_blocks.%d.0.", ZS_SD_IDX_DOWN, ldm_unet_res},
    {U, "down_blocks.%d.attentions.%d.", "input_blocks.%d.1.", ZS_SD_IDX_DOWN, NULL},
    {U, "down_blocks.%d.downsamplers.0.conv.", "input_blocks.%d.0.op.", ZS_SD_IDX_DOWNSAMPLE, NULL},
    {U, "mid_block.resnets.0.", "middle_block.0.", ZS_SD_IDX_SAME, ldm_unet_res},
    {U, "mid_block.attentions.0.", "middle_block.1.", ZS_SD_IDX_SAME, NULL},
    {U, "mid_block.resnets.1.", "middle_block.2.", ZS_SD_IDX_SAME, ldm_unet_res},
    {U, "up_blocks.%d.resnets.%d.", "output_blocks.%d.0.", ZS_SD_IDX_UP, ldm_unet_res},
    {U, "up_blocks.%d.attentions.%d.", "output_blocks.%d.1.", ZS_SD_IDX_UP, NULL},
    {U, "up_blocks.%d.upsamplers.0.conv.", "output_blocks.%d.%d.conv.", ZS_SD_IDX_UPSAMPLE, NULL},
    {U, "conv_norm_out.", "out.0.", ZS_SD_IDX_SAME, NULL},
    {U, "conv_out.", "out.2.", ZS_SD_IDX_SAME, NULL},

    {V, "encoder.conv_in.", "encoder.conv_in.", ZS_SD_IDX_SAME, NULL},
    {V, "encoder.down_blocks.%d.resnets.%d.", "encoder.down.%d.block.%d.", ZS_SD_IDX_SAME, ldm_vae_res},
    {V, "encoder.down_blocks.%d.downsamplers.0.conv.", "encoder.down.%d.downsample.conv.", ZS_SD_IDX_SAME, NULL},
    {V, "encoder.mid_block.resnets.0.", "encoder.mid.block_1.", ZS_SD_IDX_SAME, ldm_vae_res},
    {V, "encoder.mid_block.attentions.0.", "encoder.mid.attn_1.", ZS_SD_IDX_SAME, ldm_vae_attn},
    {V, "encoder.mid_block.resnets.1.", "encoder.mid.block_2.", ZS_SD_IDX_SAME, ldm_vae_res},
    {V, "encoder.conv_norm_out.", "encoder.norm_out.", ZS_SD_IDX_SAME, NULL},
    {V, "encoder.conv_out.", "encoder.conv_out.", ZS_SD_IDX_SAME, NULL},
    {V, "quant_conv.", "quant_conv.", ZS_SD_IDX_SAME, NULL},
    {V, "post_quant_conv.", "post_quant_conv.", ZS_SD_IDX_SAME, NULL},
    {V, "decoder.conv_in.", "decoder.conv_in.", ZS_SD_IDX_SAME, NULL},
    {V, "decoder.mid_block.resnets.0.", "decoder.mid.block_1.", ZS_SD_IDX_SAME, ldm_vae_res},
    {V, "decoder.mid_block.attentions.0.", "decoder.mid.attn_1.", ZS_SD_IDX_SAME, ldm_vae_attn},
    {V, "decoder.mid_block.resnets.1.", "decoder.mid.block_2.", ZS_SD_IDX_SAME, ldm_vae_res},
    {V, "decoder.up_blocks.%d.resnets.%d.", "decoder.up.%d.block.%d.", ZS_SD_IDX_REVERSE, ldm_vae_res},
    {V, "decoder.up_blocks.%d.upsamplers.0.conv.", "decoder.up.%d.upsample.conv.", ZS_SD_IDX_REVERSE, NULL},
    {V, "decoder.conv_norm_out.", "decoder.norm_out.", ZS_SD_IDX_SAME, NULL},
    {V, "decoder.conv_out.", "decoder.conv_out.", ZS_SD_IDX_SAME, NULL},
};

const zs_sd_name *zs_sd_names(zs_sd_format f, int *count) {
    switch (f) {
    case ZS_SD_FMT_LDM: *count = (int)(sizeof ldm / sizeof ldm[0]); return ldm;
    case ZS_SD_FMT_DIFFUSERS_OLD: *count = (int)(sizeof diffusers_old / sizeof diffusers_old[0]); return diffusers_old;
    default: *count = (int)(sizeof diffusers / sizeof diffusers[0]); return diffusers;
    }
}

const char *zs_sd_format_name(zs_sd_format f) {
    return f == ZS_SD_FMT_LDM ? "ldm" : f == ZS_SD_FMT_DIFFUSERS_OLD ? "diffusers-old-vae-attention" : "diffusers";
}

const char *zs_sd_prefix(zs_sd_format f, zs_sd_part part) {
    if (f != ZS_SD_FMT_LDM) return "";
    return part == ZS_SD_UNET ? "model.diffusion_model." : "first_stage_model.";
}

// Matches the prefix pattern against name; returns the length matched (or -1) and the indices.
static int match_prefix(const char *pat, const char *name, int *idx, int *nidx) {
    const char *p = pat, *s = name;
    *nidx = 0;
    while (*p) {
        if (p[0] == '%' && p[1] == 'd') {
            if (!isdigit((unsigned char)*s) || *nidx >= 2) return -1;
            char *end;
            long v = strtol(s, &end, 10);
            if (v > 100000 || (s[0] == '0' && end != s + 1)) return -1;
            idx[(*nidx)++] = (int)v;
            s = end, p += 2;
        } else if (*p++ != *s++) {
            return -1;
        }
    }
    return (int)(s - name);
}

// Writes pat with each "%d" replaced by the next index.
static int fill(char *out, size_t n, const char *pat, const int *idx, int nidx) {
    size_t k = 0;
    int used = 0;
    for (const char *p = pat; *p; p++) {
        if (p[0] == '%' && p[1] == 'd' && used < nidx) {
            int w = snprintf(out + k, n > k ? n - k : 0, "%d", idx[used++]);
            if (w < 0 || (size_t)w >= (n > k ? n - k : 0)) return -1;
            k += (size_t)w, p++;
        } else {
            if (k + 1 >= n) return -1;
            out[k++] = *p;
        }
    }
    if (k >= n) return -1;
    out[k] = 0;
    return (int)k;
}

zs_status zs_sd_file_name(zs_sd_format f, zs_sd_part part, const char *engine, const zs_sd_geom *g, char *out,
                          size_t n, zs_sd_name_layout *layout) {
    int count;
    const zs_sd_name *t = zs_sd_names(f, &count);
    for (int r = 0; r < count; r++) {
        int idx[2], ni, m;
        if (t[r].part != part || (m = match_prefix(t[r].engine, engine, idx, &ni)) < 0) continue;
        int fi[2] = {ni > 0 ? idx[0] : 0, ni > 1 ? idx[1] : 0}, fn = ni, L = g->layers_per_block;
        switch (t[r].rule) {
        case ZS_SD_IDX_SAME: break;
        case ZS_SD_IDX_DOWN: fi[0] = 1 + idx[0] * (L + 1) + idx[1], fn = 1; break;
        case ZS_SD_IDX_DOWNSAMPLE: fi[0] = (idx[0] + 1) * (L + 1); break;
        case ZS_SD_IDX_UP: fi[0] = idx[0] * (L + 1) + idx[1], fn = 1; break;
        case ZS_SD_IDX_UPSAMPLE:
            fi[0] = idx[0] * (L + 1) + L;
            fi[1] = g->up_attn && idx[0] < g->levels && g->up_attn[idx[0]] ? 2 : 1, fn = 2;
            break;
        case ZS_SD_IDX_REVERSE: fi[0] = g->levels - 1 - idx[0]; break;
        }
        const char *pre = zs_sd_prefix(f, part), *rest = engine + m;
        size_t k = strlen(pre);
        if (k >= n) return ZS_ERR(ZS_EINVAL, "name too long: %s", engine);
        memcpy(out, pre, k + 1);
        int w = fill(out + k, n - k, t[r].file, fi, fn);
        if (w < 0) return ZS_ERR(ZS_EINVAL, "name too long: %s", engine);
        k += (size_t)w;
        *layout = ZS_SD_NAME_PLAIN;
        if (t[r].leaves) {
            const zs_sd_leaf *l = t[r].leaves;
            while (l->engine && strncmp(rest, l->engine, strlen(l->engine))) l++;
            if (!l->engine) return ZS_ERR(ZS_EINVAL, "%s: no %s name for \"%s\"", engine, zs_sd_format_name(f), rest);
            size_t fl = strlen(l->file);
            if (k + fl >= n) return ZS_ERR(ZS_EINVAL, "name too long: %s", engine);
            memcpy(out + k, l->file, fl + 1);
            k += fl, rest += strlen(l->engine);
            if (!strcmp(rest, "weight")) *layout = l->layout;
        }
        if (k + strlen(rest) >= n) return ZS_ERR(ZS_EINVAL, "name too long: %s", engine);
        strcpy(out + k, rest);
        return ZS_OK;
    }
    return ZS_ERR(ZS_EINVAL, "%s: no %s name for engine slot %s", part == ZS_SD_UNET ? "unet" : "vae",
                  zs_sd_format_name(f), engine);
}

const char *zs_sd_other_group(const char *name) {
    static const char *sched[] = {"betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                                  "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod",
                                  "sqrt_recip_alphas_cumprod", "sqrt_recipm1_alphas_cumprod", "posterior_variance",
                                  "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2",
                                  "logvar"};
    if (!strncmp(name, "cond_stage_model.", 17)) return "text encoder (cond_stage_model.*): another component";
    if (!strncmp(name, "model_ema.", 10)) return "EMA weights (model_ema.*): unused";
    for (size_t i = 0; i < sizeof sched / sizeof sched[0]; i++)
        if (!strcmp(name, sched[i])) return "LatentDiffusion schedule buffers: unused";
    return "other: unused";
}
