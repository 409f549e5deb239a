// Images: PNG and JPEG decoding to 8-bit RGB (libpng, libjpeg-turbo: hardened, fuzzed
// upstream and here), PNG writing (stb_image_write, atomically). Decoding follows what
// PIL's Image.open(f).convert("RGB") gives, as open_clip and transformers read images:
// alpha dropped (not composited), grey replicated, palettes expanded, 16-bit reduced to
// 8 bits by taking the high byte, EXIF orientation ignored.
#ifndef ZS_IMAGE_H
#define ZS_IMAGE_H
#include <stddef.h>
#include <stdint.h>
#include "status.h"

typedef struct {
    int w, h;       // pixels
    uint8_t *rgb;   // [h, w, 3], row-major, malloc'd
} zs_image;

#define ZS_IMAGE_MAX_PIXELS (1ll << 27)  // 134 Mpx; larger images are refused (decompression bombs)

// Reads a PNG or JPEG (sniffed from the first bytes). Errors name the file.
zs_status zs_image_load(const char *path, zs_image *img);
zs_status zs_image_load_mem(const uint8_t *buf, size_t n, const char *name, zs_image *img);
// Writes an 8-bit RGB PNG at path atomically (engine/fileio.h).
zs_status zs_image_save_png(const char *path, const zs_image *img);
// The same with n_kv text chunks after the header: kv = {key0, value0, key1, ...}; keys of 1..79
// Latin-1 bytes; ASCII values go in tEXt chunks, others in iTXt (UTF-8).
zs_status zs_image_save_png_text(const char *path, const zs_image *img, const char *const *kv, int n_kv);
void zs_image_free(zs_image *img);

// Fuzz entry: decodes data as an image file; always returns 0.
int zs_fuzz_image(const uint8_t *data, size_t size);
#endif
