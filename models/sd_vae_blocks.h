// Building blocks shared by the VAE decoder (models/sd_vae.c) and encoder
// (models/sd_vae_enc.c): parameter registration in diffusers naming, and the forward of
// ResnetBlock2D and the mid-block attention (structs and diagrams in models/sd_vae.h).
#ifndef ZS_SD_VAE_BLOCKS_H
#define ZS_SD_VAE_BLOCKS_H
#include "models/sd_vae.h"

#define ZS_VAE_EPS 1e-6f  // every AutoencoderKL group norm

// Lays parameters out in an arena, in the plan's slot order; with names set it also records
// each parameter's name and tensor (names == NULL: measuring / counting only).
typedef struct {
    zs_arena *a;
    zs_dtype dt;
    int n;                            // parameters laid out so far
    char (*names)[ZS_SD_VAE_NAME];
    zs_tensor **tab;
} zs_vae_reg;

// q (ZS_SD_VAE_NAME chars) = the formatted name; returns q.
const char *zs_vae_name(char *q, const char *fmt, ...) ZS_PRINTF(2, 3);
zs_status zs_vae_reg_conv(zs_vae_reg *r, zs_vae_pair *p, const char *prefix, int64_t o, int64_t i, int64_t k);
zs_status zs_vae_reg_norm(zs_vae_reg *r, zs_vae_pair *p, const char *prefix, int64_t c);
zs_status zs_vae_reg_resnet(zs_vae_reg *r, zs_vae_resnet *p, const char *prefix, int cin, int cout);
// The UNet's ResnetBlock2D: time_emb_proj [cout, temb] after conv1, group norm eps.
zs_status zs_vae_reg_resnet_t(zs_vae_reg *r, zs_vae_resnet *p, const char *prefix, int cin, int cout, int64_t temb,
                              float eps);
// linear [o, i] (+ bias [o] when bias)
zs_status zs_vae_reg_linear(zs_vae_reg *r, zs_vae_pair *p, const char *prefix, int64_t o, int64_t i, int bias);
// The mid-block attention "<prefix>group_norm.", "to_q." ... "to_out.0." (width c).
zs_status zs_vae_reg_attn(zs_vae_reg *r, zs_vae_attn *p, const char *prefix, int64_t c);

// Loads every VAE slot of the plan whose name starts with one of the np prefixes into the
// parameter of that name (names / tab: the model's n parameters); each parameter exactly once.
zs_status zs_vae_load_slots(const zs_sd_plan *p, const char *const *prefixes, int np, char (*names)[ZS_SD_VAE_NAME],
                            zs_tensor **tab, int n, const char *what);

// k->x and every tensor of k set up (shapes as in zs_vae_resnet_acts); G groups.
zs_status zs_vae_resnet_fwd(const zs_vae_resnet *p, zs_vae_resnet_acts *k, int G);
// Only what the backward reads (n1, c1 (+ tb), n2 and the statistics): a checkpointed
// backward's re-run; k->out and k->sc are neither read nor written.
zs_status zs_vae_resnet_fwd_inner(const zs_vae_resnet *p, zs_vae_resnet_acts *k, int G);
// dy: gradient of k->out; dx (shaped like k->x) +=; G: parameter gradients (+=, may be NULL);
// s0, s1: scratch of at least max(cin, cout) * B*h*w and cout * B*h*w elements. s1 may be
// k->n2's memory: n2 is read only by conv2's backward, which runs before s1 is first written.
zs_status zs_vae_resnet_bwd(const zs_vae_resnet *p, zs_vae_resnet *G, const zs_vae_resnet_acts *k, const zs_tensor *dy,
                            zs_tensor *dx, const zs_tensor *s0, const zs_tensor *s1, int groups);
// A zeroed view of buffer buf shaped like `like`.
zs_status zs_vae_zview(zs_tensor *o, const zs_tensor *buf, const zs_tensor *like);
// t's forward tensors (xn, mean, rstd, t, q, k, v, o, lse, p, out) set up; out = x + attn(x).
zs_status zs_vae_attn_fwd(const zs_vae_attn *p, zs_vae_attn_acts *t, const zs_tensor *x, int G);
#endif
