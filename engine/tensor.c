#include "tensor.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct { const char *name; size_t size; } k_dtypes[ZS_DTYPE_COUNT] = {
    [ZS_F32] = {"F32", 4},   [ZS_F16] = {"F16", 2},   [ZS_BF16] = {"BF16", 2}, [ZS_F64] = {"F64", 8},
    [ZS_I64] = {"I64", 8},   [ZS_I32] = {"I32", 4},   [ZS_I16] = {"I16", 2},   [ZS_I8] = {"I8", 1},
    [ZS_U64] = {"U64", 8},   [ZS_U32] = {"U32", 4},   [ZS_U16] = {"U16", 2},   [ZS_U8] = {"U8", 1},
    [ZS_BOOL] = {"BOOL", 1}, [ZS_F8_E4M3] = {"F8_E4M3", 1}, [ZS_F8_E5M2] = {"F8_E5M2", 1},
};

size_t zs_dtype_size(zs_dtype t) { return (unsigned)t < ZS_DTYPE_COUNT ? k_dtypes[t].size : 0; }
const char *zs_dtype_name(zs_dtype t) { return (unsigned)t < ZS_DTYPE_COUNT ? k_dtypes[t].name : "?"; }
int zs_dtype_is_float(zs_dtype t) { return t == ZS_F32 || t == ZS_F16 || t == ZS_BF16 || t == ZS_F64; }

int zs_dtype_from_name(const char *s, zs_dtype *out) {
    for (int i = 0; i < ZS_DTYPE_COUNT; i++)
        if (strcmp(s, k_dtypes[i].name) == 0) { *out = (zs_dtype)i; return 0; }
    return -1;
}

int64_t zs_numel(const zs_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t zs_nbytes(const zs_tensor *t) { return (size_t)zs_numel(t) * zs_dtype_size(t->dtype); }

zs_tensor zs_tensor_make(void *data, zs_dtype dt, zs_device dev, int ndim, const int64_t *shape) {
    zs_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dt;
    t.device = dev;
    t.ndim = ndim < 0 ? 0 : (ndim > ZS_MAX_DIMS ? ZS_MAX_DIMS : ndim);
    for (int i = 0; i < t.ndim; i++) t.shape[i] = shape[i];
    return t;
}

zs_status zs_view(zs_tensor *out, const zs_tensor *t, int64_t offset, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > ZS_MAX_DIMS) return ZS_ERR(ZS_EINVAL, "view of %s: %d dims", t->name ? t->name : "tensor", ndim);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    if (offset < 0 || offset + n > zs_numel(t))
        return ZS_ERR(ZS_EINVAL, "view of %s: elements [%lld, %lld) outside its %lld", t->name ? t->name : "tensor",
                      (long long)offset, (long long)(offset + n), (long long)zs_numel(t));
    *out = zs_tensor_make((char *)t->data + (size_t)offset * zs_dtype_size(t->dtype), t->dtype, t->device, ndim, shape);
    out->name = t->name;
    return ZS_OK;
}

const char *zs_shape_str(const zs_tensor *t, char *buf, size_t n) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

int zs_same_shape(const zs_tensor *a, const zs_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

zs_status zs_check_shape(const zs_tensor *t, const char *what, int ndim, const int64_t *shape) {
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = shape[i] < 0 || t->shape[i] == shape[i];
    if (ok) return ZS_OK;
    char got[128], want[128];
    zs_tensor w = zs_tensor_make(NULL, t->dtype, t->device, ndim, shape);
    return ZS_ERR(ZS_EINVAL, "%s%s%s: shape %s, expected %s (-1 = any)", what, t->name ? " " : "",
                  t->name ? t->name : "", zs_shape_str(t, got, sizeof got), zs_shape_str(&w, want, sizeof want));
}

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

uint16_t zs_f32_to_bf16(float f) {
    uint32_t u = f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
float zs_bf16_to_f32(uint16_t h) { return u2f((uint32_t)h << 16); }

uint16_t zs_f32_to_f16(float f) {
    uint32_t u = f2u(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);  // NaN
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  // rounds to >= 65520: inf
    if (a < 0x38800000u) {  // subnormal or zero in fp16: scale by 2^24 and round
        float v = u2f(a) * 16777216.0f;  // exact
        return (uint16_t)(sign | (uint32_t)lrintf(v));
    }
    uint32_t m = a + 0xfffu + ((a >> 13) & 1u) - 0x38000000u;  // rebias 127 -> 15, round to even
    return (uint16_t)(sign | (m >> 13));
}

float zs_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ffu;
    if (e == 0) return u2f(sign) + (sign ? -1.0f : 1.0f) * (float)m * 5.9604644775390625e-8f;
    if (e == 31) return u2f(sign | 0x7f800000u | (m << 13));
    return u2f(sign | ((e + 112) << 23) | (m << 13));
}

static float load_f(const void *p, zs_dtype t, int64_t i) {
    switch (t) {
    case ZS_F32: return ((const float *)p)[i];
    case ZS_F16: return zs_f16_to_f32(((const uint16_t *)p)[i]);
    case ZS_BF16: return zs_bf16_to_f32(((const uint16_t *)p)[i]);
    case ZS_F64: return (float)((const double *)p)[i];
    default: return 0;
    }
}

zs_status zs_convert(void *dst, zs_dtype dt, const void *src, zs_dtype st, int64_t n) {
    if (!zs_dtype_is_float(dt) || !zs_dtype_is_float(st))
        return ZS_ERR(ZS_EUNSUPPORTED, "convert %s -> %s: only float dtypes", zs_dtype_name(st), zs_dtype_name(dt));
    if (dt == st) { memmove(dst, src, (size_t)n * zs_dtype_size(dt)); return ZS_OK; }
    for (int64_t i = 0; i < n; i++) {
        if (dt == ZS_F64 && st != ZS_F64) { ((double *)dst)[i] = load_f(src, st, i); continue; }
        float v = load_f(src, st, i);
        switch (dt) {
        case ZS_F32: ((float *)dst)[i] = v; break;
        case ZS_F16: ((uint16_t *)dst)[i] = zs_f32_to_f16(v); break;
        case ZS_BF16: ((uint16_t *)dst)[i] = zs_f32_to_bf16(v); break;
        default: break;
        }
    }
    return ZS_OK;
}
