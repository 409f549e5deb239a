// CLIP image preprocessing, as the reference libraries do it, so embeddings match:
// - open_clip (image_transform, eval): resize (bicubic, PIL's fixed-point two-pass
//   algorithm, uint8 after each pass), centre crop or pad (top = round-half-even), x / 255,
//   (x - mean) / std in fp32. resize_mode "shortest" (square target: short side -> S, long
//   side int(S * long / short), as torchvision's Resize(int); non-square: ResizeKeepRatio),
//   "longest" (keep ratio, fit the long side; pad with fill) and "squash".
// - Hugging Face CLIPImageProcessor: shortest-edge resize, crop top = floor, rescale in
//   float64 then normalise in fp32: exactly CLIPImageProcessorPil. transformers 5's default
//   (torchvision) processor resizes with its own antialiased bicubic and fuses the rescale;
//   it can differ from this by one grey level at some pixels.
#ifndef ZS_CLIP_PREPROCESS_H
#define ZS_CLIP_PREPROCESS_H
#include "engine/image.h"
#include "engine/status.h"

typedef enum { ZS_PREP_OPENCLIP = 0, ZS_PREP_HF = 1 } zs_prep_style;
typedef enum { ZS_RESIZE_SHORTEST = 0, ZS_RESIZE_LONGEST, ZS_RESIZE_SQUASH } zs_resize_mode;
typedef enum { ZS_INTERP_BICUBIC = 0, ZS_INTERP_BILINEAR } zs_interp;

typedef struct {
    zs_prep_style style;
    int out_h, out_w;      // network input size
    int resize_short;      // HF: size.shortest_edge (0: = out_h)
    zs_resize_mode resize_mode;
    zs_interp interp;
    int fill;              // padding value ("longest" mode)
    float mean[3], std[3];
} zs_clip_prep;

// OpenAI CLIP defaults (mean / std of its training set, bicubic, shortest) at size s.
void zs_clip_prep_default(zs_clip_prep *p, int s);
// From an open_clip hub config's "preprocess_cfg" (open_clip_config.json; fields absent
// keep the defaults) and the vision tower's image size.
zs_status zs_clip_prep_from_openclip(zs_clip_prep *p, const char *config_json_path, int out_h, int out_w);
// From a Hugging Face preprocessor_config.json.
zs_status zs_clip_prep_from_hf(zs_clip_prep *p, const char *preprocessor_config_path);

// img -> out [3, out_h, out_w] F32 (host).
zs_status zs_clip_preprocess(const zs_clip_prep *p, const zs_image *img, float *out);

// PIL's Image.resize(size, BICUBIC / BILINEAR) on 8-bit RGB, bit for bit.
zs_status zs_image_resize_pil(const zs_image *src, int out_w, int out_h, zs_interp interp, zs_image *dst);
#endif
