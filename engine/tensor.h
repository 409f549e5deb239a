// Tensors: a typed, shaped, contiguous view of memory on one device. Views share memory;
// ownership lives in arenas (engine/arena.h), llm.c style.
#ifndef ZS_TENSOR_H
#define ZS_TENSOR_H
#include <stddef.h>
#include <stdint.h>
#include "status.h"

// Every dtype safetensors can carry; compute uses F32 (CPU and CUDA) and F16/BF16 (CUDA).
typedef enum {
    ZS_F32 = 0, ZS_F16, ZS_BF16, ZS_F64,
    ZS_I64, ZS_I32, ZS_I16, ZS_I8,
    ZS_U64, ZS_U32, ZS_U16, ZS_U8,
    ZS_BOOL, ZS_F8_E4M3, ZS_F8_E5M2,
    ZS_DTYPE_COUNT
} zs_dtype;

typedef enum { ZS_CPU = 0, ZS_CUDA = 1 } zs_device;

#define ZS_MAX_DIMS 6

typedef struct {
    void *data;
    zs_dtype dtype;
    zs_device device;
    int ndim;
    int64_t shape[ZS_MAX_DIMS];
    const char *name;  // optional, used in error messages; not owned
} zs_tensor;

size_t zs_dtype_size(zs_dtype t);
const char *zs_dtype_name(zs_dtype t);           // safetensors spelling: "F32", "BF16", ...
int zs_dtype_from_name(const char *s, zs_dtype *out);  // 0 on success
int zs_dtype_is_float(zs_dtype t);

int64_t zs_numel(const zs_tensor *t);
size_t zs_nbytes(const zs_tensor *t);
// Builds a tensor header over existing memory (no allocation).
zs_tensor zs_tensor_make(void *data, zs_dtype dt, zs_device dev, int ndim, const int64_t *shape);
// Contiguous view of elements [offset, offset + prod(shape)) of t, with a new shape.
zs_status zs_view(zs_tensor *out, const zs_tensor *t, int64_t offset, int ndim, const int64_t *shape);
// "[2, 3, 4]" into buf.
const char *zs_shape_str(const zs_tensor *t, char *buf, size_t n);
int zs_same_shape(const zs_tensor *a, const zs_tensor *b);
// Error helpers used by op argument checks.
zs_status zs_check_shape(const zs_tensor *t, const char *what, int ndim, const int64_t *shape);

// fp16 / bf16 conversion, round to nearest even (as PyTorch), NaN preserved.
uint16_t zs_f32_to_f16(float f);
float zs_f16_to_f32(uint16_t h);
uint16_t zs_f32_to_bf16(float f);
float zs_bf16_to_f32(uint16_t h);
// Converts n elements between float dtypes (F32/F16/BF16/F64) in host memory.
zs_status zs_convert(void *dst, zs_dtype dst_t, const void *src, zs_dtype src_t, int64_t n);

#endif
