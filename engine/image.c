#include "image.h"
#include <stdio.h>  // before jpeglib.h, which uses FILE
#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include "fileio.h"

// stb_image_write's implementation lives in Debian's libstb; its header declares it.
#include <stb/stb_image_write.h>
// Exported by libstb but declared only in the header's implementation part.
unsigned char *stbi_write_png_to_mem(const unsigned char *pixels, int stride_bytes, int x, int y, int n, int *out_len);

void zs_image_free(zs_image *img) {
    free(img->rgb);
    img->rgb = NULL;
    img->w = img->h = 0;
}

static zs_status alloc_rgb(zs_image *img, uint32_t w, uint32_t h, const char *name) {
    if (w == 0 || h == 0) return ZS_ERR(ZS_EFORMAT, "%s: image has no pixels (%ux%u)", name, w, h);
    if ((int64_t)w * h > ZS_IMAGE_MAX_PIXELS)
        return ZS_ERR(ZS_EFORMAT, "%s: image of %ux%u pixels is larger than the %lld-pixel limit", name, w, h,
                      (long long)ZS_IMAGE_MAX_PIXELS);
    img->rgb = malloc((size_t)w * h * 3);
    if (!img->rgb) return ZS_ERR(ZS_ENOMEM, "%s: cannot allocate a %ux%u image", name, w, h);
    img->w = (int)w;
    img->h = (int)h;
    return ZS_OK;
}

// ---- PNG ----------------------------------------------------------------------------------
typedef struct { const uint8_t *p; size_t n, off; char err[200]; } png_src;

static void png_read_cb(png_structp png, png_bytep out, size_t len) {
    png_src *s = png_get_io_ptr(png);
    if (len > s->n - s->off) png_error(png, "file is truncated");
    memcpy(out, s->p + s->off, len);
    s->off += len;
}
static void png_err_cb(png_structp png, png_const_charp msg) {
    png_src *s = png_get_error_ptr(png);
    snprintf(s->err, sizeof s->err, "%s", msg);
    png_longjmp(png, 1);
}
static void png_warn_cb(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

static zs_status load_png(const uint8_t *buf, size_t n, const char *name, zs_image *img) {
    png_src src = {buf, n, 0, {0}};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_err_cb, png_warn_cb);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return ZS_ERR(ZS_ENOMEM, "%s: libpng init failed", name);
    }
    png_bytep *volatile rows = NULL;
    volatile int grey16 = 0;
    volatile uint32_t nrows = 0;
    if (setjmp(png_jmpbuf(png))) {
        for (uint32_t y = 0; rows && grey16 && y < nrows; y++) free(rows[y]);
        free(rows);
        zs_image_free(img);
        png_destroy_read_struct(&png, &info, NULL);
        return ZS_ERR(ZS_EFORMAT, "%s: bad PNG: %s", name, src.err[0] ? src.err : "decode error");
    }
    png_set_read_fn(png, &src, png_read_cb);
    png_set_user_limits(png, 1u << 24, 1u << 24);
    png_read_info(png, info);
    uint32_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int ct = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    // Everything to 8-bit RGB, as PIL's convert("RGB"): alpha dropped; 16-bit colour and
    // grey+alpha keep the high byte, but 16-bit grey (PIL mode I;16) clamps to 255.
    grey16 = depth == 16 && ct == PNG_COLOR_TYPE_GRAY;
    if (!grey16) png_set_strip_16(png);
    png_set_packing(png);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ct == PNG_COLOR_TYPE_GRAY || ct == PNG_COLOR_TYPE_GRAY_ALPHA) {
        if (png_get_bit_depth(png, info) < 8) png_set_expand_gray_1_2_4_to_8(png);
        png_set_gray_to_rgb(png);
    }
    png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t px = grey16 ? 6 : 3;  // grey16 decodes to 16-bit RGB, narrowed below
    if (png_get_rowbytes(png, info) != (size_t)w * px) png_error(png, "unexpected row layout after conversion");
    zs_status s = alloc_rgb(img, w, h, name);
    if (s) {
        png_destroy_read_struct(&png, &info, NULL);
        return s;
    }
    rows = calloc(h, sizeof(png_bytep));
    if (!rows) png_error(png, "out of memory");
    nrows = h;
    for (uint32_t y = 0; y < h; y++) {
        rows[y] = grey16 ? malloc((size_t)w * 6) : img->rgb + (size_t)y * w * 3;
        if (!rows[y]) png_error(png, "out of memory");
    }
    png_read_image(png, rows);
    for (uint32_t y = 0; grey16 && y < h; y++) {
        for (size_t i = 0; i < (size_t)w * 3; i++) {
            unsigned v = (unsigned)rows[y][2 * i] << 8 | rows[y][2 * i + 1];  // PNG is big-endian
            img->rgb[(size_t)y * w * 3 + i] = (uint8_t)(v > 255 ? 255 : v);
        }
        free(rows[y]);
        rows[y] = NULL;
    }
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return ZS_OK;
}

// ---- JPEG ---------------------------------------------------------------------------------
typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void jpeg_err_exit(j_common_ptr c) {
    jpeg_err *e = (jpeg_err *)c->err;
    (*c->err->format_message)(c, e->msg);
    longjmp(e->jb, 1);
}
static void jpeg_quiet(j_common_ptr c, int level) { (void)c, (void)level; }

static zs_status load_jpeg(const uint8_t *buf, size_t n, const char *name, zs_image *img) {
    struct jpeg_decompress_struct d;
    jpeg_err err;
    memset(&d, 0, sizeof d);
    d.err = jpeg_std_error(&err.pub);
    err.pub.error_exit = jpeg_err_exit;
    err.pub.emit_message = jpeg_quiet;
    err.msg[0] = 0;
    if (setjmp(err.jb)) {
        jpeg_destroy_decompress(&d);
        zs_image_free(img);
        return ZS_ERR(ZS_EFORMAT, "%s: bad JPEG: %s", name, err.msg);
    }
    jpeg_create_decompress(&d);
    jpeg_mem_src(&d, buf, (unsigned long)n);
    jpeg_read_header(&d, TRUE);
    // Refuse huge images before libjpeg allocates for them (progressive files buffer
    // every coefficient of the image in jpeg_start_decompress).
    if ((int64_t)d.image_width * d.image_height > ZS_IMAGE_MAX_PIXELS) {
        long long w = d.image_width, h = d.image_height;
        jpeg_destroy_decompress(&d);
        return ZS_ERR(ZS_EFORMAT, "%s: image of %lldx%lld pixels is larger than the %lld-pixel limit", name, w, h,
                      (long long)ZS_IMAGE_MAX_PIXELS);
    }
    // libjpeg's defaults (islow IDCT, fancy upsampling) are what PIL decodes with.
    d.out_color_space = JCS_RGB;  // grey and CMYK/YCCK: libjpeg converts grey; CMYK is refused below
    if (d.jpeg_color_space == JCS_CMYK || d.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&d);
        return ZS_ERR(ZS_EUNSUPPORTED, "%s: CMYK JPEG images are not supported", name);
    }
    jpeg_start_decompress(&d);
    if (d.output_components != 3) {
        jpeg_destroy_decompress(&d);
        return ZS_ERR(ZS_EFORMAT, "%s: JPEG decodes to %d components, expected 3", name, d.output_components);
    }
    zs_status s = alloc_rgb(img, d.output_width, d.output_height, name);
    if (s) {
        jpeg_destroy_decompress(&d);
        return s;
    }
    while (d.output_scanline < d.output_height) {
        JSAMPROW row = img->rgb + (size_t)d.output_scanline * img->w * 3;
        jpeg_read_scanlines(&d, &row, 1);
    }
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    return ZS_OK;
}

zs_status zs_image_load_mem(const uint8_t *buf, size_t n, const char *name, zs_image *img) {
    memset(img, 0, sizeof *img);
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 8 && !memcmp(buf, png_sig, 8)) return load_png(buf, n, name, img);
    if (n >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) return load_jpeg(buf, n, name, img);
    return ZS_ERR(ZS_EFORMAT, "%s: not a PNG or JPEG file (%zu bytes)", name, n);
}

zs_status zs_image_load(const char *path, zs_image *img) {
    memset(img, 0, sizeof *img);
    FILE *f = fopen(path, "rb");
    if (!f) return ZS_ERR(ZS_EIO, "%s: cannot open", path);
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            uint8_t *nb = cap > (1u << 30) ? NULL : realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return ZS_ERR(ZS_ENOMEM, "%s: file too large to read", path);
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    zs_status s = bad ? ZS_ERR(ZS_EIO, "%s: read error", path) : zs_image_load_mem(buf, n, path, img);
    free(buf);
    return s;
}

static void be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

// One tEXt chunk (ASCII value) or iTXt chunk (UTF-8 value, uncompressed), length + type + data + CRC.
static uint8_t *text_chunk(const char *key, const char *val, size_t *len) {
    size_t k = strlen(key), v = strlen(val), ascii = 1;
    for (size_t i = 0; i < v; i++) ascii &= (unsigned char)val[i] < 0x80;
    size_t d = ascii ? k + 1 + v : k + 5 + v;  // iTXt: key 0 flag method lang 0 tkey 0 text
    uint8_t *c = malloc(d + 12);
    if (!c) return NULL;
    be32(c, (uint32_t)d);
    memcpy(c + 4, ascii ? "tEXt" : "iTXt", 4);
    uint8_t *q = c + 8;
    memcpy(q, key, k), q += k, *q++ = 0;
    if (!ascii) *q++ = 0, *q++ = 0, *q++ = 0, *q++ = 0;
    memcpy(q, val, v);
    be32(c + 8 + d, (uint32_t)crc32(crc32(0L, Z_NULL, 0), c + 4, (uInt)(d + 4)));
    *len = d + 12;
    return c;
}

zs_status zs_image_save_png_text(const char *path, const zs_image *img, const char *const *kv, int n_kv) {
    if (!img->rgb || img->w <= 0 || img->h <= 0) return ZS_ERR(ZS_EINVAL, "%s: empty image", path);
    for (int i = 0; i < n_kv; i++) {
        size_t k = strlen(kv[2 * i]);
        if (k < 1 || k > 79) return ZS_ERR(ZS_EINVAL, "%s: PNG text key '%s' must have 1..79 bytes", path, kv[2 * i]);
    }
    int len = 0;
    uint8_t *png = stbi_write_png_to_mem(img->rgb, img->w * 3, img->w, img->h, 3, &len);
    if (!png || len < 33) {
        free(png);
        return ZS_ERR(ZS_ENOMEM, "%s: PNG encoding failed", path);
    }
    // signature (8) + IHDR chunk (25) first, then the text chunks, then the rest (IDAT, IEND)
    zs_iov *parts = calloc((size_t)n_kv + 2, sizeof *parts);
    zs_status s = parts ? ZS_OK : ZS_ERR(ZS_ENOMEM, "%s", path);
    if (!s) parts[0] = (zs_iov){png, 33};
    for (int i = 0; i < n_kv && !s; i++) {
        size_t cl = 0;
        parts[i + 1].data = text_chunk(kv[2 * i], kv[2 * i + 1], &cl);
        parts[i + 1].n = cl;
        if (!parts[i + 1].data) s = ZS_ERR(ZS_ENOMEM, "%s: text chunk", path);
    }
    if (!s) parts[n_kv + 1] = (zs_iov){png + 33, (size_t)len - 33};
    if (!s) s = zs_write_file_atomic(path, parts, n_kv + 2);
    for (int i = 0; parts && i < n_kv; i++) free((void *)parts[i + 1].data);
    free(parts);
    free(png);
    return s;
}

zs_status zs_image_save_png(const char *path, const zs_image *img) { return zs_image_save_png_text(path, img, NULL, 0); }

int zs_fuzz_image(const uint8_t *data, size_t size) {
    zs_image img;
    if (zs_image_load_mem(data, size, "fuzz", &img) == ZS_OK) zs_image_free(&img);
    return 0;
}
