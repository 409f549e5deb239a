#include "clip_preprocess.h"
#include <cjson/cJSON.h>
#include "engine/json.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void zs_clip_prep_default(zs_clip_prep *p, int s) {
    static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    memset(p, 0, sizeof *p);
    p->out_h = p->out_w = s;
    memcpy(p->mean, mean, sizeof mean);
    memcpy(p->std, std, sizeof std);
}

// ---- PIL resampling (Pillow's Resample.c: precompute_coeffs, 8-bit fixed point) -----------
#define PREC_BITS (32 - 8 - 2)

static double bicubic(double x) {  // a = -0.5
    const double a = -0.5;
    if (x < 0) x = -x;
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
}
static double triangle(double x) {
    if (x < 0) x = -x;
    return x < 1 ? 1 - x : 0;
}

// Per output index: first input index, count and fixed-point weights (ksize per row).
static int coeffs(int in_size, int out_size, zs_interp interp, int **bounds, int32_t **kk) {
    double support0 = interp == ZS_INTERP_BICUBIC ? 2.0 : 1.0;
    double (*filter)(double) = interp == ZS_INTERP_BICUBIC ? bicubic : triangle;
    double scale = (double)in_size / out_size, fscale = scale < 1 ? 1 : scale, support = support0 * fscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *w = malloc(sizeof(double) * (size_t)ksize);
    *bounds = malloc(sizeof(int) * 2 * (size_t)out_size);
    *kk = calloc((size_t)out_size * ksize, sizeof(int32_t));
    if (!w || !*bounds || !*kk) { free(w); return -1; }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0, ss = 1.0 / fscale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) ww += w[x] = filter((x + xmin - center + 0.5) * ss);
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0 ? w[x] / ww : w[x];
            (*kk)[xx * ksize + x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PREC_BITS)) : (int32_t)(0.5 + v * (1 << PREC_BITS));
        }
        (*bounds)[2 * xx] = xmin;
        (*bounds)[2 * xx + 1] = xmax;
    }
    free(w);
    return ksize;
}

static uint8_t clip8(int32_t v) {
    if (v >= (1 << PREC_BITS << 8)) return 255;
    if (v <= 0) return 0;
    return (uint8_t)(v >> PREC_BITS);
}

// One pass along x (horiz) or y: src [h, w, 3] -> dst, sizes already set.
static void pass(const zs_image *src, zs_image *dst, int horiz, int ksize, const int *bounds, const int32_t *kk) {
#pragma omp parallel for if (dst->h * dst->w > 65536)
    for (int y = 0; y < dst->h; y++)
        for (int x = 0; x < dst->w; x++) {
            int o = horiz ? x : y, lo = bounds[2 * o], n = bounds[2 * o + 1];
            const int32_t *k = kk + (size_t)o * ksize;
            for (int c = 0; c < 3; c++) {
                int32_t ss = 1 << (PREC_BITS - 1);
                for (int i = 0; i < n; i++) {
                    int sx = horiz ? lo + i : x, sy = horiz ? y : lo + i;
                    ss += src->rgb[((size_t)sy * src->w + sx) * 3 + c] * k[i];
                }
                dst->rgb[((size_t)y * dst->w + x) * 3 + c] = clip8(ss);
            }
        }
}

zs_status zs_image_resize_pil(const zs_image *src, int out_w, int out_h, zs_interp interp, zs_image *dst) {
    memset(dst, 0, sizeof *dst);
    if (out_w <= 0 || out_h <= 0 || (int64_t)out_w * out_h > ZS_IMAGE_MAX_PIXELS)
        return ZS_ERR(ZS_EINVAL, "resize to %dx%d: bad size", out_w, out_h);
    zs_image cur = *src, tmp = {0, 0, NULL};
    zs_status s = ZS_OK;
    // Horizontal first, then vertical, each rounding to 8 bits, as Pillow does.
    for (int horiz = 1; horiz >= 0 && !s; horiz--) {
        int in_size = horiz ? cur.w : cur.h, out_size = horiz ? out_w : out_h;
        if (in_size == out_size) continue;
        int *bounds = NULL;
        int32_t *kk = NULL;
        int ksize = coeffs(in_size, out_size, interp, &bounds, &kk);
        zs_image nxt = {horiz ? out_w : cur.w, horiz ? cur.h : out_h, NULL};
        nxt.rgb = ksize > 0 ? malloc((size_t)nxt.w * nxt.h * 3) : NULL;
        if (!nxt.rgb) s = ZS_ERR(ZS_ENOMEM, "resize to %dx%d", out_w, out_h);
        else pass(&cur, &nxt, horiz, ksize, bounds, kk);
        free(bounds);
        free(kk);
        if (s) break;
        zs_image_free(&tmp);
        tmp = nxt;
        cur = nxt;
    }
    if (s) { zs_image_free(&tmp); return s; }
    if (!tmp.rgb) {  // same size: a copy
        tmp.w = src->w, tmp.h = src->h;
        tmp.rgb = malloc((size_t)src->w * src->h * 3);
        if (!tmp.rgb) return ZS_ERR(ZS_ENOMEM, "resize copy");
        memcpy(tmp.rgb, src->rgb, (size_t)src->w * src->h * 3);
    }
    *dst = tmp;
    return ZS_OK;
}

// ---- the pipeline -------------------------------------------------------------------------
static int round_half_even(double v) {
    double r = nearbyint(v);  // default rounding mode: ties to even, as Python's round
    return (int)r;
}

zs_status zs_clip_preprocess(const zs_clip_prep *p, const zs_image *img, float *out) {
    int H = p->out_h, W = p->out_w, h = img->h, w = img->w, nh, nw;
    if (H <= 0 || W <= 0 || h <= 0 || w <= 0) return ZS_ERR(ZS_EINVAL, "preprocess: empty image or target");
    if (p->style == ZS_PREP_HF || (p->resize_mode == ZS_RESIZE_SHORTEST && H == W)) {
        // torchvision Resize(int) / HF shortest_edge: short side -> S, long side truncated.
        int S = p->style == ZS_PREP_HF && p->resize_short > 0 ? p->resize_short : H;
        if (w <= h) nw = S, nh = (int)((double)S * h / w);
        else nh = S, nw = (int)((double)S * w / h);
        if ((w <= h ? w : h) == S) nw = w, nh = h;
    } else if (p->resize_mode == ZS_RESIZE_SQUASH) {
        nh = H, nw = W;
    } else {  // ResizeKeepRatio: shortest (longest = 0) or longest (= 1)
        double rh = (double)h / H, rw = (double)w / W;
        double ratio = p->resize_mode == ZS_RESIZE_LONGEST ? (rh > rw ? rh : rw) : (rh < rw ? rh : rw);
        nh = round_half_even(h / ratio), nw = round_half_even(w / ratio);
    }
    if (nh < 1) nh = 1;
    if (nw < 1) nw = 1;
    zs_image r;
    ZS_TRY(zs_image_resize_pil(img, nw, nh, p->interp, &r));
    // Centre crop, padding with `fill` where the image is smaller (torchvision pads first).
    int pad_l = W > nw ? (W - nw) / 2 : 0, pad_t = H > nh ? (H - nh) / 2 : 0;
    int ph = nh > H ? nh : H, pw = nw > W ? nw : W;  // padded size
    int top = p->style == ZS_PREP_HF ? (ph - H) / 2 : round_half_even((ph - H) / 2.0);
    int left = p->style == ZS_PREP_HF ? (pw - W) / 2 : round_half_even((pw - W) / 2.0);
    for (int c = 0; c < 3; c++) {
        float m = p->mean[c], sd = p->std[c];
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int sy = y + top - pad_t, sx = x + left - pad_l;
                int u = sy >= 0 && sy < nh && sx >= 0 && sx < nw ? r.rgb[((size_t)sy * nw + sx) * 3 + c] : p->fill;
                // open_clip: ToTensor (u / 255 in fp32) then Normalize; transformers' PIL
                // backend rescales in float64 (u * (1/255)), casts to fp32, then normalises.
                float t = p->style == ZS_PREP_HF ? (float)((double)u * (1.0 / 255.0)) : (float)u / 255.0f;
                float v = (t - m) / sd;
                out[((size_t)c * H + y) * W + x] = v;
            }
    }
    zs_image_free(&r);
    return ZS_OK;
}

// ---- configs ------------------------------------------------------------------------------
static zs_status read3(const cJSON *o, const char *key, float *v, const char *path) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!a) return ZS_OK;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 3) return ZS_ERR(ZS_EFORMAT, "%s: %s must be a list of 3 numbers", path, key);
    for (int i = 0; i < 3; i++) {
        const cJSON *e = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(e)) return ZS_ERR(ZS_EFORMAT, "%s: %s[%d] is not a number", path, key, i);
        v[i] = (float)e->valuedouble;
    }
    if (!strcmp(key, "std") || !strcmp(key, "image_std"))
        for (int i = 0; i < 3; i++)
            if (!(v[i] > 0)) return ZS_ERR(ZS_EFORMAT, "%s: %s[%d] = %g must be > 0", path, key, i, v[i]);
    return ZS_OK;
}

zs_status zs_clip_prep_from_openclip(zs_clip_prep *p, const char *path, int out_h, int out_w) {
    zs_clip_prep_default(p, out_h);
    p->out_w = out_w;
    cJSON *root;
    zs_status s = zs_json_read_object(path, &root);
    if (s) return s;
    const cJSON *pc = cJSON_GetObjectItemCaseSensitive(root, "preprocess_cfg");
    s = ZS_OK;
    if (pc) {
        s = read3(pc, "mean", p->mean, path);
        if (!s) s = read3(pc, "std", p->std, path);
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(pc, "interpolation");
        if (!s && it) {
            if (cJSON_IsString(it) && !strcmp(it->valuestring, "bicubic")) p->interp = ZS_INTERP_BICUBIC;
            else if (cJSON_IsString(it) && !strcmp(it->valuestring, "bilinear")) p->interp = ZS_INTERP_BILINEAR;
            else s = ZS_ERR(ZS_EUNSUPPORTED, "%s: preprocess_cfg.interpolation must be \"bicubic\" or \"bilinear\"", path);
        }
        const cJSON *rm = cJSON_GetObjectItemCaseSensitive(pc, "resize_mode");
        if (!s && rm) {
            const char *v = cJSON_IsString(rm) ? rm->valuestring : "";
            if (!strcmp(v, "shortest")) p->resize_mode = ZS_RESIZE_SHORTEST;
            else if (!strcmp(v, "longest")) p->resize_mode = ZS_RESIZE_LONGEST;
            else if (!strcmp(v, "squash")) p->resize_mode = ZS_RESIZE_SQUASH;
            else s = ZS_ERR(ZS_EFORMAT, "%s: preprocess_cfg.resize_mode must be shortest, longest or squash", path);
        }
        const cJSON *fc = cJSON_GetObjectItemCaseSensitive(pc, "fill_color");
        if (!s && fc) {
            if (cJSON_IsNumber(fc) && fc->valueint >= 0 && fc->valueint <= 255) p->fill = fc->valueint;
            else s = ZS_ERR(ZS_EFORMAT, "%s: preprocess_cfg.fill_color must be 0..255", path);
        }
    }
    cJSON_Delete(root);
    return s;
}

zs_status zs_clip_prep_from_hf(zs_clip_prep *p, const char *path) {
    cJSON *root;
    zs_status s = zs_json_read_object(path, &root);
    if (s) return s;
    zs_clip_prep_default(p, 224);
    p->style = ZS_PREP_HF;
    s = read3(root, "image_mean", p->mean, path);
    if (!s) s = read3(root, "image_std", p->std, path);
    const cJSON *crop = cJSON_GetObjectItemCaseSensitive(root, "crop_size"), *size = cJSON_GetObjectItemCaseSensitive(root, "size");
    const cJSON *ch = cJSON_IsObject(crop) ? cJSON_GetObjectItemCaseSensitive(crop, "height") : crop;
    const cJSON *cw = cJSON_IsObject(crop) ? cJSON_GetObjectItemCaseSensitive(crop, "width") : crop;
    const cJSON *se = cJSON_IsObject(size) ? cJSON_GetObjectItemCaseSensitive(size, "shortest_edge") : size;
    if (!s && !(cJSON_IsNumber(ch) && cJSON_IsNumber(cw) && ch->valueint > 0 && cw->valueint > 0))
        s = ZS_ERR(ZS_EFORMAT, "%s: crop_size must give a positive height and width", path);
    if (!s && !(cJSON_IsNumber(se) && se->valueint > 0))
        s = ZS_ERR(ZS_EUNSUPPORTED, "%s: size must be {\"shortest_edge\": N} (other resize rules are not supported)", path);
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(root, "resample");
    if (!s && rs && !(cJSON_IsNumber(rs) && (rs->valueint == 3 || rs->valueint == 2)))
        s = ZS_ERR(ZS_EUNSUPPORTED, "%s: resample %d: only 3 (bicubic) and 2 (bilinear)", path, rs->valueint);
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(root, "rescale_factor");
    if (!s && sc && !(cJSON_IsNumber(sc) && fabs(sc->valuedouble * 255.0 - 1.0) < 1e-9))
        s = ZS_ERR(ZS_EUNSUPPORTED, "%s: rescale_factor must be 1/255", path);
    if (!s) {
        p->out_h = ch->valueint, p->out_w = cw->valueint, p->resize_short = se->valueint;
        p->interp = rs && rs->valueint == 2 ? ZS_INTERP_BILINEAR : ZS_INTERP_BICUBIC;
    }
    cJSON_Delete(root);
    return s;
}
