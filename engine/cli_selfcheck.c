// `zsmlc selfcheck`: the main job until the method's jobs land. Exercises the tokenizer
// (built-in vocabulary), a safetensors write/read round trip, and a small residual MLP
// (linear, layer norm, GELU, add) forward and backward with a finite-difference check;
// with --device cuda the same network runs on the GPU and is compared with the CPU.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "engine/backend.h"
#include "engine/cli.h"
#include "engine/log.h"
#include "engine/rng.h"
#include "kernels/ops.h"
#include "models/clip_tokenizer.h"
#include "weights/safetensors.h"

static zs_status check_tokenizer(void) {
    static const char *texts[] = {"a photo of a cat and a dog",
                                  "A painting of a \xe2\x80\x9c" "bicycle\xe2\x80\x9d next to a traffic light!"};
    zs_tokenizer *tok;
    ZS_TRY(zs_tok_load_builtin(&tok));
    zs_status st = ZS_OK;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0] && !st; i++) {
        int32_t *ids = NULL, row[ZS_CLIP_CONTEXT];
        int n = 0, eot = -1;
        st = zs_tok_encode(tok, texts[i], strlen(texts[i]), &ids, &n);
        if (!st) st = zs_tok_encode_padded(tok, texts[i], strlen(texts[i]), ZS_CLIP_CONTEXT, row, &eot);
        if (!st && (n < 2 || ids[0] != zs_tok_sot(tok) || ids[n - 1] != zs_tok_eot(tok) || eot != n - 1 ||
                    memcmp(row, ids, (size_t)n * sizeof *ids) != 0))
            st = ZS_ERR(ZS_EFORMAT, "tokenizer: inconsistent ids for \"%s\"", texts[i]);
        if (!st) {
            printf("  tokens(\"%s\") =", texts[i]);
            for (int k = 0; k < n; k++) printf(" %d", ids[k]);
            printf("\n");
        }
        free(ids);
    }
    zs_tok_free(tok);
    return st;
}

static zs_status check_safetensors(void) {
    enum { N = 1000 };
    static float a[N], back[N];
    static uint16_t b16[N];
    zs_rng_normal_host(a, N, 42, 0);
    int64_t sh[2] = {40, 25};
    zs_tensor t = zs_tensor_make(a, ZS_F32, ZS_CPU, 2, sh);
    char dir[] = "/tmp/zsmlc_selfcheckXXXXXX", path[64];
    if (!mkdtemp(dir)) return ZS_ERR(ZS_EIO, "selfcheck: cannot make a temp folder");
    snprintf(path, sizeof path, "%s/check.safetensors", dir);
    zs_st_writer *w = NULL;
    zs_st *st = NULL;
    zs_status s = zs_st_writer_new(&w);
    if (!s) s = zs_st_writer_meta(w, "format", "pt");
    if (!s) s = zs_st_writer_add(w, "w.f32", &t, ZS_F32);
    if (!s) s = zs_st_writer_add(w, "w.bf16", &t, ZS_BF16);
    if (!s) s = zs_st_writer_save(w, path);
    if (!s) s = zs_st_open(&st, path);
    if (!s) s = zs_st_read_f32(st, "w.f32", back, N);
    if (!s && memcmp(a, back, sizeof a)) s = ZS_ERR(ZS_EFORMAT, "safetensors: F32 round trip differs");
    if (!s) s = zs_st_read_f32(st, "w.bf16", back, N);
    if (!s) {
        zs_convert(b16, ZS_BF16, a, ZS_F32, N);
        for (int i = 0; i < N && !s; i++)
            if (back[i] != zs_bf16_to_f32(b16[i])) s = ZS_ERR(ZS_EFORMAT, "safetensors: BF16 round trip differs at %d", i);
    }
    if (!s) printf("  safetensors: wrote and read back %d tensors (F32, BF16) in %s\n", zs_st_count(st), path);
    zs_st_close(st);
    zs_st_writer_free(w);
    remove(path);
    rmdir(dir);
    return s;
}

// Residual MLP block, pre-LN as in CLIP: y = x + W2 gelu(W1 LN(x) + b1) + b2;
// loss = sum(y * r). Shapes: x [B, D], W1 [H, D], W2 [D, H].
enum { B = 13, D = 24, H = 40 };
typedef struct {
    float x[B * D], g[D], be[D], w1[H * D], b1[H], w2[D * H], b2[D], r[B * D];
} mlp_params;
typedef struct {
    float loss, dw1[H * D], dg[D], dx[B * D];
} mlp_result;

static zs_status mlp_run(const mlp_params *p, zs_device dev, mlp_result *res) {
    // One device buffer holds every tensor; host copies in and out.
    enum { NT = 19 };
    const int64_t sizes[NT] = {B * D, D, D, H * D, H, D * H, D, B * D,     // inputs
                               B * D, B, B, B * H, B * H, B * D, B * D,    // ln, mean, rstd, h, a, o, y
                               H * D, D, B * D, B * D};                    // dw1, dg, dx, scratch grads
    size_t total = 0;
    for (int i = 0; i < NT; i++) total += (size_t)sizes[i];
    float *buf = NULL, *host = calloc(total, sizeof(float));
    if (!host) return ZS_ERR(ZS_ENOMEM, "selfcheck: host buffer");
    memcpy(host, p, sizeof *p);
    zs_status s = zs_malloc((void **)&buf, total * sizeof(float), dev, "selfcheck mlp");
    if (!s) s = zs_memcpy(buf, dev, host, ZS_CPU, total * sizeof(float));
    zs_tensor T[NT];
    size_t off = 0;
    for (int i = 0; i < NT; i++) {
        T[i] = zs_tensor_make(buf + off, ZS_F32, dev, 1, &sizes[i]);
        off += (size_t)sizes[i];
    }
#define RESHAPE(t, r, c) ((t).ndim = 2, (t).shape[0] = (r), (t).shape[1] = (c))
    zs_tensor *x = &T[0], *g = &T[1], *be = &T[2], *w1 = &T[3], *b1 = &T[4], *w2 = &T[5], *b2 = &T[6], *r = &T[7];
    zs_tensor *ln = &T[8], *mean = &T[9], *rstd = &T[10], *h = &T[11], *a = &T[12], *o = &T[13], *y = &T[14];
    zs_tensor *dw1 = &T[15], *dg = &T[16], *dx = &T[17];
    RESHAPE(*x, B, D); RESHAPE(*w1, H, D); RESHAPE(*w2, D, H); RESHAPE(*r, B, D); RESHAPE(*ln, B, D);
    RESHAPE(*h, B, H); RESHAPE(*a, B, H); RESHAPE(*o, B, D); RESHAPE(*y, B, D); RESHAPE(*dw1, H, D); RESHAPE(*dx, B, D);
    // Gradient scratch, carved from a second allocation: do, dln, dh, da, dw2, db1, db2, dbe.
    float *gb = NULL;
    size_t gn = (size_t)(2 * B * D + B * D + B * H + B * H + D * H + H + D + D);
    if (!s) s = zs_malloc((void **)&gb, gn * sizeof(float), dev, "selfcheck grads");
    if (!s) s = zs_memset0(gb, dev, gn * sizeof(float));
    if (!s) s = zs_memset0(dw1->data, dev, (size_t)(H * D + D + B * D) * sizeof(float));
    int64_t s_bd[2] = {B, D}, s_bh[2] = {B, H}, s_dh[2] = {D, H}, s_h[1] = {H}, s_d[1] = {D};
    float *q = gb;
    zs_tensor dout = zs_tensor_make(q, ZS_F32, dev, 2, s_bd); q += B * D;
    zs_tensor dln = zs_tensor_make(q, ZS_F32, dev, 2, s_bd); q += B * D;
    zs_tensor dh = zs_tensor_make(q, ZS_F32, dev, 2, s_bh); q += B * H;
    zs_tensor da = zs_tensor_make(q, ZS_F32, dev, 2, s_bh); q += B * H;
    zs_tensor dw2 = zs_tensor_make(q, ZS_F32, dev, 2, s_dh); q += D * H;
    zs_tensor db1 = zs_tensor_make(q, ZS_F32, dev, 1, s_h); q += H;
    zs_tensor db2 = zs_tensor_make(q, ZS_F32, dev, 1, s_d); q += D;
    zs_tensor dbe = zs_tensor_make(q, ZS_F32, dev, 1, s_d); q += D;
    (void)q;
    // forward
    if (!s) s = zs_layernorm_fwd(ln, mean, rstd, x, g, be, 1e-5f);
    if (!s) s = zs_linear_fwd(h, ln, w1, b1);
    if (!s) s = zs_gelu_fwd(a, h);
    if (!s) s = zs_linear_fwd(o, a, w2, b2);
    if (!s) s = zs_add_fwd(y, x, o);
    // backward of loss = sum(y * r): dy = r, which flows to dx (residual) and to o.
    if (!s) s = zs_add_bwd(dx, &dout, r);
    if (!s) s = zs_linear_bwd(&da, &dw2, &db2, &dout, a, w2);
    if (!s) s = zs_gelu_bwd(&dh, &da, h);
    if (!s) s = zs_linear_bwd(&dln, dw1, &db1, &dh, ln, w1);
    if (!s) s = zs_layernorm_bwd(dx, dg, &dbe, &dln, x, g, mean, rstd);
    if (!s) s = zs_sync(dev);
    if (!s) s = zs_memcpy(host, ZS_CPU, buf, dev, total * sizeof(float));
    if (!s) {
        const float *yh = host + ((float *)y->data - buf), *rh = p->r;
        double L = 0;
        for (int i = 0; i < B * D; i++) L += (double)yh[i] * rh[i];
        res->loss = (float)L;
        memcpy(res->dw1, host + ((float *)dw1->data - buf), sizeof res->dw1);
        memcpy(res->dg, host + ((float *)dg->data - buf), sizeof res->dg);
        memcpy(res->dx, host + ((float *)dx->data - buf), sizeof res->dx);
    }
#undef RESHAPE
    zs_free(gb, dev);
    zs_free(buf, dev);
    free(host);
    return s;
}

static double rel(const float *a, const float *b, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), den += (double)b[i] * b[i];
    return sqrt(num / (den > 1e-30 ? den : 1e-30));
}

static zs_status check_ops(int use_cuda) {
    static mlp_params p;
    static mlp_result cpu, gpu, tmp;
    float *f = (float *)&p;
    zs_rng_normal_host(f, (int64_t)(sizeof p / sizeof(float)), 7, 0);
    for (int i = 0; i < D; i++) p.g[i] = 1.0f + 0.2f * p.g[i];
    ZS_TRY(mlp_run(&p, ZS_CPU, &cpu));
    // Central finite differences on a few W1 entries and gains (the forward runs in fp32).
    double num = 0, den = 0;
    for (int k = 0; k < 8; k++) {
        float *wp = k < 6 ? &p.w1[(k * 97) % (H * D)] : &p.g[(k * 5) % D];
        float grad = k < 6 ? cpu.dw1[(k * 97) % (H * D)] : cpu.dg[(k * 5) % D];
        float w0 = *wp, eps = 1e-2f;
        *wp = w0 + eps;
        ZS_TRY(mlp_run(&p, ZS_CPU, &tmp));
        double lp = tmp.loss;
        *wp = w0 - eps;
        ZS_TRY(mlp_run(&p, ZS_CPU, &tmp));
        *wp = w0;
        double fd = (lp - tmp.loss) / (2.0 * eps);
        num += (fd - grad) * (fd - grad);
        den += fd * fd;
    }
    double fd_err = sqrt(num / den);
    printf("  ops (cpu): residual MLP loss %.6f, backward vs finite differences rel. err %.2e\n", cpu.loss, fd_err);
    if (!(fd_err < 2e-2)) return ZS_ERR(ZS_ENAN, "ops: backward disagrees with finite differences (%.3g)", fd_err);
    if (!use_cuda) return ZS_OK;
    ZS_TRY(mlp_run(&p, ZS_CUDA, &gpu));
    double e1 = fabs(gpu.loss - cpu.loss) / fabs(cpu.loss), e2 = rel(gpu.dw1, cpu.dw1, H * D), e3 = rel(gpu.dx, cpu.dx, B * D);
    printf("  ops (cuda): loss %.6f; rel. err vs cpu: loss %.2e, dW1 %.2e, dx %.2e\n", gpu.loss, e1, e2, e3);
    if (!(e1 < 1e-4 && e2 < 1e-4 && e3 < 1e-4)) return ZS_ERR(ZS_ENAN, "ops: CUDA differs from the CPU");
    return ZS_OK;
}

int zs_cmd_selfcheck(int argc, char **argv) {
    zs_device dev = ZS_CPU;
    int idx = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--device") && i + 1 < argc) {
            zs_status s = zs_device_parse(argv[++i], &dev, &idx);
            if (s) return zs_cli_fail("selfcheck", s);
        } else {
            fprintf(stderr, "usage: zsmlc selfcheck [--device cpu|cuda[:N]]\n");
            return 2;
        }
    }
    if (dev == ZS_CUDA) {
        zs_status s = zs_cuda_init(idx);
        if (s) return zs_cli_fail("selfcheck", s);
    }
    double t0 = zs_now();
    printf("zsmlc selfcheck (%s)\n", dev == ZS_CUDA ? "cpu and cuda" : "cpu");
    zs_status s;
    if ((s = check_tokenizer())) return zs_cli_fail("selfcheck", s);
    if ((s = check_safetensors())) return zs_cli_fail("selfcheck", s);
    if ((s = check_ops(dev == ZS_CUDA))) return zs_cli_fail("selfcheck", s);
    if ((s = zs_selfcheck_sd(dev == ZS_CUDA))) return zs_cli_fail("selfcheck", s);
    printf("selfcheck: ok (%.2f s)\n", zs_now() - t0);
    return 0;
}
