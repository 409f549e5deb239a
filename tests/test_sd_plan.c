// SD UNet / VAE configs, name tables and the plan-only loader: the real layouts (header-only
// fixtures), the tiny models in both namings binding identical slots, and clear errors for
// unsupported config values and missing / mis-shaped / extra tensors.
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "models/sd_plan.h"
#include "tests/test.h"

static zs_status plan(zs_sd_plan **p, const char *rel, const char *config_rel, unsigned flags) {
    char a[512], b[512];
    zs_sd_plan_opts o = {config_rel ? zt_fixture_path(config_rel, b, sizeof b) : NULL, flags};
    return zs_sd_plan_open(p, zt_fixture_path(rel, a, sizeof a), &o);
}

static int slot_shape_is(const zs_sd_plan *p, zs_sd_part part, const char *name, int ndim, const int64_t *shape) {
    const zs_sd_slot *s = zs_sd_plan_find(p, part, name);
    if (!s || s->ndim != ndim || !s->src) return 0;
    for (int i = 0; i < ndim; i++)
        if (s->shape[i] != shape[i]) return 0;
    return 1;
}
#define SH(...) (const int64_t[]){__VA_ARGS__}

TEST(sd_plan_real_layouts) {
    static const struct {
        const char *rel;
        int version, single, ctx, lin, heads0, unused;
    } cases[] = {
        {"layouts/sd15-diffusers", 1, 0, 768, 0, 8, 0},
        {"layouts/sd21-diffusers", 2, 0, 1024, 1, 5, 0},
        {"layouts/sd15-single/v1-5-pruned.safetensors", 1, 1, 768, 0, 8, 1},
        {"layouts/sd21-single/v2-1_768-ema-pruned.safetensors", 2, 1, 1024, 1, 5, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zs_sd_plan *p;
        CHECK_OK(plan(&p, cases[i].rel, NULL, ZS_ST_ALLOW_HEADER_ONLY));
        int ok = p->version == cases[i].version && p->single_file == cases[i].single &&
                 p->unet.cross_attention_dim == cases[i].ctx && p->unet.use_linear_projection == cases[i].lin &&
                 p->unet.heads[0] == cases[i].heads0 && p->unet.levels == 4 && p->unet.block_out_channels[3] == 1280 &&
                 p->unet.layers_per_block == 2 && p->vae.levels == 4 && p->vae.block_out_channels[3] == 512 &&
                 (p->n_unused > 0) == cases[i].unused && p->n_unet_slots > 600 && p->n_slots - p->n_unet_slots > 200;
        // the mid block uses the last head count; attn2 reads the context; VAE attention is linear
        ok &= slot_shape_is(p, ZS_SD_UNET, "mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight", 2,
                            SH(1280, cases[i].ctx));
        ok &= slot_shape_is(p, ZS_SD_UNET, "up_blocks.3.resnets.2.conv1.weight", 4, SH(320, 640, 3, 3));
        ok &= slot_shape_is(p, ZS_SD_VAE, "decoder.mid_block.attentions.0.to_q.weight", 2, SH(512, 512));
        if (cases[i].single) {
            const zs_sd_slot *s = zs_sd_plan_find(p, ZS_SD_VAE, "decoder.mid_block.attentions.0.to_q.weight");
            ok &= s && s->layout == ZS_SD_NAME_CONV1X1 && !strcmp(s->src->name, "first_stage_model.decoder.mid.attn_1.q.weight");
            ok &= strstr(p->notes, "schedule buffers") && strstr(p->notes, "cond_stage_model") && strstr(p->notes, "assumed");
        }
        if (!ok) zt_note(__FILE__, __LINE__, "%s: version %d notes: %s", cases[i].rel, p->version, p->notes);
        zs_sd_plan_free(p);
        CHECK(ok, "%s planned wrong", cases[i].rel);
    }
    // SD 1.5 single file: the EMA copy is unused, counted in the notes
    zs_sd_plan *p;
    CHECK_OK(plan(&p, "layouts/sd15-single/v1-5-pruned.safetensors", NULL, ZS_ST_ALLOW_HEADER_ONLY));
    int ok = strstr(p->notes, "model_ema") != NULL && strstr(p->notes, "SD 1.x: text encoder cond_stage_model.transformer");
    zs_sd_plan_free(p);
    CHECK(ok, "notes");
    return ZT_PASS;
}

TEST(sd_plan_tiny_same_slots) {
    const char *names[2] = {"sd/sd1-tiny", "sd/sd2-tiny"};
    // the single files also hold the text encoder (cond_stage_model.*), unused by the UNet/VAE plan:
    // sd1 36 transformers-named tensors, sd2 41 OpenCLIP ones (3 layers: the folder's 2 + an extra last
    // layer, token/positional embeddings, ln_final, text_projection); plus 12 schedule buffers
    static const int n_text[2] = {36, 41};
    for (int m = 0; m < 2; m++) {
        char file[64];
        snprintf(file, sizeof file, "%s.safetensors", names[m]);
        zs_sd_plan *a, *b;
        CHECK_OK(plan(&a, names[m], NULL, 0));
        zs_status s = plan(&b, file, names[m], 0);
        if (s != ZS_OK) zs_sd_plan_free(a);
        CHECK_OK(s);
        int ok = a->version == m + 1 && b->version == m + 1 && a->n_slots == b->n_slots &&
                 a->n_unet_slots == b->n_unet_slots && a->n_unused == 0 && b->n_unused == 12 + n_text[m] &&
                 a->vae_format == (m ? ZS_SD_FMT_DIFFUSERS : ZS_SD_FMT_DIFFUSERS_OLD) && b->vae_format == ZS_SD_FMT_LDM;
        // every tensor of the diffusers files is bound (no extras): count = slots
        ok &= zs_st_count(a->unet_st) == a->n_unet_slots && zs_st_count(a->vae_st) == a->n_slots - a->n_unet_slots;
        ok &= zs_st_count(b->unet_st) == b->n_slots + 12 + n_text[m];
        char want[64];
        snprintf(want, sizeof want, "%d tensors: text encoder", n_text[m]);
        ok &= strstr(b->notes, want) != NULL;
        for (int i = 0; ok && i < a->n_slots; i++) {
            const zs_sd_slot *x = &a->slots[i], *y = &b->slots[i];
            ok &= x->part == y->part && !strcmp(x->name, y->name) && x->ndim == y->ndim &&
                  !memcmp(x->shape, y->shape, sizeof x->shape) && x->src && y->src;
            if (!ok) zt_note(__FILE__, __LINE__, "slot %d: %s vs %s", i, x->name, y->name);
        }
        if (!ok) zt_note(__FILE__, __LINE__, "%s: %d/%d slots, unused %d/%d; notes %s", names[m], a->n_slots, b->n_slots,
                         a->n_unused, b->n_unused, b->notes);
        // the heads / cross widths of the tiny configs
        ok &= a->unet.cross_attention_dim == (m ? 48 : 40) && a->unet.heads[2] == (m ? 4 : 2) && a->unet.levels == 3 &&
              a->unet.upcast_attention == m;
        ok &= slot_shape_is(b, ZS_SD_UNET, "up_blocks.0.upsamplers.0.conv.weight", 4, SH(32, 32, 3, 3)) &&
              !strcmp(zs_sd_plan_find(b, ZS_SD_UNET, "up_blocks.0.upsamplers.0.conv.weight")->src->name,
                      "model.diffusion_model.output_blocks.1.1.conv.weight") &&
              !strcmp(zs_sd_plan_find(b, ZS_SD_UNET, "up_blocks.1.upsamplers.0.conv.weight")->src->name,
                      "model.diffusion_model.output_blocks.3.2.conv.weight") &&
              !strcmp(zs_sd_plan_find(b, ZS_SD_VAE, "decoder.up_blocks.1.resnets.0.conv_shortcut.weight")->src->name,
                      "first_stage_model.decoder.up.0.block.0.nin_shortcut.weight");
        zs_sd_plan_free(a);
        zs_sd_plan_free(b);
        CHECK(ok, "%s: folder and single file bind different slots", names[m]);
    }
    // without config_dir a tiny single file is planned against the real SD 1.5 config: clear error
    zs_sd_plan *p;
    CHECK(plan(&p, "sd/sd1-tiny.safetensors", NULL, 0) == ZS_EFORMAT, "default config must not fit the tiny file");
    CHECK(strstr(zs_errmsg(), "model.diffusion_model.input_blocks.0.0.weight is F32 [16, 4, 3, 3], expected [320, 4, 3, 3]"),
          "%s", zs_errmsg());
    return ZT_PASS;
}

static int fails_with(zs_status s, const char *want) {
    if (s == ZS_OK || !strstr(zs_errmsg(), want)) {
        zt_note(__FILE__, __LINE__, "want error containing \"%s\", got %s: %s", want, zs_status_name(s),
                s ? zs_errmsg() : "");
        return 0;
    }
    return 1;
}

static zs_status write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return ZS_ERR(ZS_EIO, "%s", path);
    fputs(text, f);
    fclose(f);
    return ZS_OK;
}

TEST(sd_config_errors) {
    char src[512], dir[] = "/tmp/zsmlc_sdXXXXXX", p[700], q[700];
    CHECK(mkdtemp(dir), "mkdtemp");
    int ok = 1;
    static const char *sub[] = {"unet", "vae"};
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/%s", dir, sub[k]);
        mkdir(p, 0755);
        snprintf(p, sizeof p, "%s/%s/diffusion_pytorch_model.safetensors", dir, sub[k]);
        snprintf(q, sizeof q, "sd/sd1-tiny/%s/diffusion_pytorch_model.safetensors", sub[k]);
        char abs[1024];
        ok &= realpath(zt_fixture_path(q, src, sizeof src), abs) && !symlink(abs, p);
        snprintf(q, sizeof q, "sd/sd1-tiny/%s/config.json", sub[k]);
        FILE *f = fopen(zt_fixture_path(q, src, sizeof src), "rb");
        char buf[4096] = {0};
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f) fclose(f);
        ok &= n > 0;
        snprintf(p, sizeof p, "%s/%s/config.json", dir, sub[k]);
        CHECK_OK(write_text(p, buf));
    }
    CHECK(ok, "temp folder");
    zs_sd_plan *pl;
    CHECK_OK(zs_sd_plan_open(&pl, dir, NULL));  // the copy plans as the original
    zs_sd_plan_free(pl);
    static const struct {
        const char *sub, *json, *want;
    } bad[] = {
        {"unet", "{\"act_fn\": \"gelu\"}", "\"act_fn\" = \"gelu\": not supported"},
        {"unet", "{\"time_embedding_type\": \"fourier\"}", "\"time_embedding_type\" = \"fourier\""},
        {"unet", "{\"only_cross_attention\": [true, false, false]}", "\"only_cross_attention\" = [true,false,false]"},
        {"unet", "{\"class_embed_type\": \"timestep\"}", "\"class_embed_type\" = \"timestep\""},
        {"unet", "{\"down_block_types\": [\"DownBlock2D\", \"SimpleCrossAttnDownBlock2D\", \"DownBlock2D\"]}",
         "\"down_block_types\" = "},
        {"unet", "{\"conv_in_kernel\": 5}", "\"conv_in_kernel\" = 5"},
        {"unet", "{\"resnet_time_scale_shift\": \"scale_shift\"}", "\"resnet_time_scale_shift\" = \"scale_shift\""},
        {"unet", "{\"center_input_sample\": true}", "\"center_input_sample\" = true"},
        {"unet", "{\"dual_cross_attention\": true}", "\"dual_cross_attention\" = true"},
        {"unet", "{\"addition_embed_type\": \"text_time\"}", "\"addition_embed_type\" = \"text_time\""},
        {"unet", "{\"foo\": 1}", "\"foo\": unknown UNet2DConditionModel config field"},
        {"unet", "{\"attention_head_dim\": [2, 3]}", "\"attention_head_dim\": expected an integer or a list of 3"},
        {"unet", "{\"attention_head_dim\": 3}", "\"attention_head_dim\"[0] = 3 heads do not divide"},
        // num_attention_heads takes precedence over attention_head_dim (2 in this config)
        {"unet", "{\"num_attention_heads\": 3}", "\"num_attention_heads\"[0] = 3 heads do not divide"},
        {"vae", "{\"shift_factor\": 0.1159}", "\"shift_factor\" = 0.1159: not supported"},
        {"vae", "{\"act_fn\": \"gelu\"}", "\"act_fn\" = \"gelu\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        // the tiny config with one field replaced
        snprintf(q, sizeof q, "sd/sd1-tiny/%s/config.json", bad[i].sub);
        FILE *f = fopen(zt_fixture_path(q, src, sizeof src), "rb");
        char buf[4096] = {0}, out[4096];
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        if (f) fclose(f);
        CHECK(n > 2, "read %s", q);
        // the override goes first: lookups and the field check see it before the original key
        snprintf(out, sizeof out, "{%.*s,%s", (int)(strlen(bad[i].json) - 2), bad[i].json + 1, strchr(buf, '{') + 1);
        snprintf(p, sizeof p, "%s/%s/config.json", dir, bad[i].sub);
        CHECK_OK(write_text(p, out));
        ok &= fails_with(zs_sd_plan_open(&pl, dir, NULL), bad[i].want);
        ok &= strstr(zs_errmsg(), p) != NULL;  // names the file
        CHECK_OK(write_text(p, buf));
    }
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/%s/config.json", dir, sub[k]), remove(p);
        snprintf(p, sizeof p, "%s/%s/diffusion_pytorch_model.safetensors", dir, sub[k]), remove(p);
        snprintf(p, sizeof p, "%s/%s", dir, sub[k]), rmdir(p);
    }
    rmdir(dir);
    return ok ? ZT_PASS : ZT_FAIL;
}

// Rewrites src to dst without `drop`, with `reshape` stored as a flat [numel] tensor, plus `extra`
// (a copy of `reshape`'s data under another name).
// squeeze: store `reshape` as 2-D [d0, d1] instead (a 1x1 conv as the linear it is).
static zs_status rewrite_ex(const char *src, const char *dst, const char *drop, const char *reshape, const char *extra,
                            int squeeze) {
    zs_st *st;
    ZS_TRY(zs_st_open(&st, src));
    zs_st_writer *w;
    zs_status s = zs_st_writer_new(&w);
    for (int i = 0; s == ZS_OK && i < zs_st_count(st); i++) {
        const zs_st_entry *e = zs_st_at(st, i);
        if (drop && !strcmp(e->name, drop)) continue;
        zs_tensor t = zs_tensor_make((void *)e->data, e->dtype, ZS_CPU, e->ndim, e->shape);
        int64_t flat = zs_st_numel(e);
        if (reshape && !strcmp(e->name, reshape)) {
            t = zs_tensor_make((void *)e->data, e->dtype, ZS_CPU, squeeze ? 2 : 1, squeeze ? e->shape : &flat);
            if (extra) s = zs_st_writer_add(w, extra, &t, ZS_ST_KEEP);
            if (s != ZS_OK || extra) t = zs_tensor_make((void *)e->data, e->dtype, ZS_CPU, e->ndim, e->shape);
        }
        if (s == ZS_OK) s = zs_st_writer_add(w, e->name, &t, ZS_ST_KEEP);
    }
    if (s == ZS_OK) s = zs_st_writer_save(w, dst);
    zs_st_writer_free(w);
    zs_st_close(st);
    return s;
}

static zs_status rewrite(const char *src, const char *dst, const char *drop, const char *reshape, const char *extra) {
    return rewrite_ex(src, dst, drop, reshape, extra, 0);
}

TEST(sd_plan_errors_tensors) {
    char src[512], cfg[512], dir[] = "/tmp/zsmlc_sdXXXXXX", p[600];
    zt_fixture_path("sd/sd1-tiny.safetensors", src, sizeof src);
    zt_fixture_path("sd/sd1-tiny", cfg, sizeof cfg);
    CHECK(mkdtemp(dir), "mkdtemp");
    snprintf(p, sizeof p, "%s/x.safetensors", dir);
    zs_sd_plan_opts o = {cfg, 0};
    zs_sd_plan *pl = NULL;
    int ok = 1;
    CHECK_OK(rewrite(src, p, NULL, NULL, NULL));
    CHECK_OK(zs_sd_plan_open(&pl, p, &o));
    zs_sd_plan_free(pl);
    CHECK_OK(rewrite(src, p, "model.diffusion_model.output_blocks.3.2.conv.bias", NULL, NULL));
    ok &= fails_with(zs_sd_plan_open(&pl, p, &o),
                     "missing tensor model.diffusion_model.output_blocks.3.2.conv.bias (unet slot up_blocks.1.upsamplers.0.conv.bias [24])");
    CHECK_OK(rewrite(src, p, "first_stage_model.decoder.mid.attn_1.proj_out.bias", NULL, NULL));
    ok &= fails_with(zs_sd_plan_open(&pl, p, &o), "missing tensor first_stage_model.decoder.mid.attn_1.proj_out.bias");
    CHECK_OK(rewrite(src, p, NULL, "first_stage_model.encoder.mid.attn_1.k.weight", NULL));
    ok &= fails_with(zs_sd_plan_open(&pl, p, &o),
                     "tensor first_stage_model.encoder.mid.attn_1.k.weight is F32 [1024], expected [32, 32, 1, 1] "
                     "(vae slot encoder.mid_block.attentions.0.to_k.weight)");
    CHECK_OK(rewrite(src, p, NULL, "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", NULL));
    ok &= fails_with(zs_sd_plan_open(&pl, p, &o),
                     "tensor model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight is F32 [640], "
                     "expected [16, 40]");
    CHECK_OK(rewrite(src, p, NULL, "model.diffusion_model.out.0.bias", "model.diffusion_model.input_blocks.1.1.transformer_blocks.1.norm1.bias"));
    ok &= fails_with(zs_sd_plan_open(&pl, p, &o),
                     "extra tensor model.diffusion_model.input_blocks.1.1.transformer_blocks.1.norm1.bias: not a unet parameter");
    // VAE attention stored linear [C, C] in a single file binds too (diffusers' converter accepts it)
    CHECK_OK(rewrite_ex(src, p, NULL, "first_stage_model.decoder.mid.attn_1.v.weight", NULL, 1));
    CHECK_OK(zs_sd_plan_open(&pl, p, &o));
    const zs_sd_slot *sv = zs_sd_plan_find(pl, ZS_SD_VAE, "decoder.mid_block.attentions.0.to_v.weight");
    const zs_sd_slot *sq = zs_sd_plan_find(pl, ZS_SD_VAE, "decoder.mid_block.attentions.0.to_q.weight");
    ok &= sv && sv->layout == ZS_SD_NAME_PLAIN && sv->src->ndim == 2 && sq && sq->layout == ZS_SD_NAME_CONV1X1;
    zs_sd_plan_free(pl);
    // an extra tensor outside the UNet / VAE is listed as unused, not an error
    // (sd1-tiny.safetensors holds 36 text encoder tensors already; this adds a 37th)
    CHECK_OK(rewrite(src, p, NULL, "model.diffusion_model.out.0.bias", "cond_stage_model.transformer.text_model.embeddings.position_ids"));
    CHECK_OK(zs_sd_plan_open(&pl, p, &o));
    ok &= pl->n_unused == 49 && strstr(pl->notes, "37 tensors: text encoder") && strstr(pl->notes, "12 tensors: LatentDiffusion schedule");
    if (!ok) zt_note(__FILE__, __LINE__, "notes: %s", pl->notes);
    zs_sd_plan_free(pl);
    remove(p);
    rmdir(dir);
    return ok ? ZT_PASS : ZT_FAIL;
}

// The name tables alone: LDM block index arithmetic for SD 1.5's geometry (L = 2, 4 levels).
TEST(sd_names_ldm_arithmetic) {
    static const int up_attn[4] = {0, 1, 1, 1};
    zs_sd_geom g = {4, 2, up_attn};
    static const char *pairs[][2] = {
        {"down_blocks.0.resnets.0.norm1.weight", "model.diffusion_model.input_blocks.1.0.in_layers.0.weight"},
        {"down_blocks.1.attentions.1.proj_in.weight", "model.diffusion_model.input_blocks.5.1.proj_in.weight"},
        {"down_blocks.2.downsamplers.0.conv.bias", "model.diffusion_model.input_blocks.9.0.op.bias"},
        {"down_blocks.3.resnets.1.conv2.weight", "model.diffusion_model.input_blocks.11.0.out_layers.3.weight"},
        {"mid_block.resnets.1.time_emb_proj.bias", "model.diffusion_model.middle_block.2.emb_layers.1.bias"},
        {"up_blocks.0.resnets.2.conv_shortcut.weight", "model.diffusion_model.output_blocks.2.0.skip_connection.weight"},
        {"up_blocks.0.upsamplers.0.conv.weight", "model.diffusion_model.output_blocks.2.1.conv.weight"},
        {"up_blocks.1.upsamplers.0.conv.weight", "model.diffusion_model.output_blocks.5.2.conv.weight"},
        {"up_blocks.3.attentions.2.transformer_blocks.0.ff.net.2.bias",
         "model.diffusion_model.output_blocks.11.1.transformer_blocks.0.ff.net.2.bias"},
        {"time_embedding.linear_2.weight", "model.diffusion_model.time_embed.2.weight"},
        {"conv_out.bias", "model.diffusion_model.out.2.bias"},
    };
    char out[300];
    zs_sd_name_layout l;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        CHECK_OK(zs_sd_file_name(ZS_SD_FMT_LDM, ZS_SD_UNET, pairs[i][0], &g, out, sizeof out, &l));
        CHECK(!strcmp(out, pairs[i][1]) && l == ZS_SD_NAME_PLAIN, "%s -> %s", pairs[i][0], out);
    }
    zs_sd_geom gv = {4, 2, NULL};
    CHECK_OK(zs_sd_file_name(ZS_SD_FMT_LDM, ZS_SD_VAE, "decoder.up_blocks.0.resnets.2.conv1.weight", &gv, out, sizeof out, &l));
    CHECK(!strcmp(out, "first_stage_model.decoder.up.3.block.2.conv1.weight"), "%s", out);
    CHECK_OK(zs_sd_file_name(ZS_SD_FMT_LDM, ZS_SD_VAE, "encoder.mid_block.attentions.0.to_out.0.weight", &gv, out, sizeof out, &l));
    CHECK(!strcmp(out, "first_stage_model.encoder.mid.attn_1.proj_out.weight") && l == ZS_SD_NAME_CONV1X1, "%s", out);
    CHECK_OK(zs_sd_file_name(ZS_SD_FMT_LDM, ZS_SD_VAE, "encoder.mid_block.attentions.0.to_out.0.bias", &gv, out, sizeof out, &l));
    CHECK(l == ZS_SD_NAME_PLAIN, "bias layout");
    CHECK_OK(zs_sd_file_name(ZS_SD_FMT_DIFFUSERS_OLD, ZS_SD_VAE, "decoder.mid_block.attentions.0.to_v.bias", &gv, out, sizeof out, &l));
    CHECK(!strcmp(out, "decoder.mid_block.attentions.0.value.bias"), "%s", out);
    CHECK_OK(zs_sd_file_name(ZS_SD_FMT_DIFFUSERS, ZS_SD_UNET, "up_blocks.1.upsamplers.0.conv.bias", &g, out, sizeof out, &l));
    CHECK(!strcmp(out, "up_blocks.1.upsamplers.0.conv.bias"), "%s", out);
    return ZT_PASS;
}

static zs_status copy_text(const char *rel, const char *dst) {
    char src[512], buf[8192] = {0};
    FILE *f = fopen(zt_fixture_path(rel, src, sizeof src), "rb");
    if (!f) return ZS_ERR(ZS_EIO, "%s", src);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return write_text(dst, buf);
}

// A diffusers folder (sd2-tiny, current VAE attention names): missing / extra tensors in
// unet/ and vae/, and a VAE config without mid-block attention against weights that have it.
TEST(sd_plan_errors_folder) {
    char dir[] = "/tmp/zsmlc_sdXXXXXX", p[600], src[512], rel[200];
    CHECK(mkdtemp(dir), "mkdtemp");
    static const char *sub[] = {"unet", "vae"};
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/%s", dir, sub[k]);
        mkdir(p, 0755);
        snprintf(rel, sizeof rel, "sd/sd2-tiny/%s/config.json", sub[k]);
        snprintf(p, sizeof p, "%s/%s/config.json", dir, sub[k]);
        CHECK_OK(copy_text(rel, p));
        snprintf(rel, sizeof rel, "sd/sd2-tiny/%s/diffusion_pytorch_model.safetensors", sub[k]);
        snprintf(p, sizeof p, "%s/%s/diffusion_pytorch_model.safetensors", dir, sub[k]);
        CHECK_OK(rewrite(zt_fixture_path(rel, src, sizeof src), p, NULL, NULL, NULL));
    }
    zs_sd_plan *pl;
    CHECK_OK(zs_sd_plan_open(&pl, dir, NULL));
    int ok = pl->version == 2 && pl->vae_format == ZS_SD_FMT_DIFFUSERS && pl->n_unused == 0;
    zs_sd_plan_free(pl);
    char up[600], vp[600], ucfg[600], vsrc[512], usrc[512];
    snprintf(up, sizeof up, "%s/unet/diffusion_pytorch_model.safetensors", dir);
    snprintf(vp, sizeof vp, "%s/vae/diffusion_pytorch_model.safetensors", dir);
    snprintf(ucfg, sizeof ucfg, "%s/vae/config.json", dir);
    zt_fixture_path("sd/sd2-tiny/unet/diffusion_pytorch_model.safetensors", usrc, sizeof usrc);
    zt_fixture_path("sd/sd2-tiny/vae/diffusion_pytorch_model.safetensors", vsrc, sizeof vsrc);
    CHECK_OK(rewrite(usrc, up, "up_blocks.2.attentions.1.transformer_blocks.0.attn2.to_v.weight", NULL, NULL));
    ok &= fails_with(zs_sd_plan_open(&pl, dir, NULL),
                     "missing tensor up_blocks.2.attentions.1.transformer_blocks.0.attn2.to_v.weight (unet slot");
    CHECK_OK(rewrite(usrc, up, NULL, "conv_in.bias", "add_embedding.linear_1.bias"));
    ok &= fails_with(zs_sd_plan_open(&pl, dir, NULL), "extra tensor add_embedding.linear_1.bias: not a unet parameter");
    CHECK_OK(rewrite(usrc, up, NULL, NULL, NULL));
    CHECK_OK(rewrite(vsrc, vp, NULL, "decoder.conv_out.weight", NULL));
    ok &= fails_with(zs_sd_plan_open(&pl, dir, NULL), "tensor decoder.conv_out.weight is F32 [432], expected [3, 16, 3, 3]");
    CHECK_OK(rewrite(vsrc, vp, NULL, NULL, NULL));
    CHECK_OK(write_text(ucfg, "{\"block_out_channels\": [16, 32], \"layers_per_block\": 1, \"norm_num_groups\": 8, "
                              "\"down_block_types\": [\"DownEncoderBlock2D\", \"DownEncoderBlock2D\"], "
                              "\"up_block_types\": [\"UpDecoderBlock2D\", \"UpDecoderBlock2D\"], \"mid_block_add_attention\": false}"));
    ok &= fails_with(zs_sd_plan_open(&pl, dir, NULL), "extra tensor decoder.mid_block.attentions.0.group_norm.bias: not a vae parameter");
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/%s/config.json", dir, sub[k]), remove(p);
        snprintf(p, sizeof p, "%s/%s/diffusion_pytorch_model.safetensors", dir, sub[k]), remove(p);
        snprintf(p, sizeof p, "%s/%s", dir, sub[k]), rmdir(p);
    }
    rmdir(dir);
    return ok ? ZT_PASS : ZT_FAIL;
}

// The config fuzz target's seed corpus (tests/fuzz/corpus/fuzz_sd_config) replayed: no crash, no leak.
TEST(sd_config_fuzz_corpus) {
    int n = zt_replay_corpus("fuzz_sd_config", zs_fuzz_sd_config);
    CHECK(n >= 10, "only %d corpus files", n);
    return ZT_PASS;
}
