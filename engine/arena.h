// Arenas: one allocation per kind (parameters, gradients, activations, scratch), sized up
// front. A measuring arena (created with zs_arena_measure) hands out NULL data and only
// sums sizes, so a model can lay itself out twice: once to size, once for real.
#ifndef ZS_ARENA_H
#define ZS_ARENA_H
#include <stddef.h>
#include "tensor.h"

typedef struct {
    const char *name;  // "params", "grads", "acts", "scratch": used in errors
    zs_device device;
    char *base;        // NULL while measuring
    size_t cap, used, peak;
    int measuring;
} zs_arena;

#define ZS_ARENA_ALIGN 256

void zs_arena_measure(zs_arena *a, const char *name, zs_device dev);
zs_status zs_arena_init(zs_arena *a, const char *name, zs_device dev, size_t bytes);
void zs_arena_free(zs_arena *a);
// Carves a tensor out of the arena (zeroed memory is not promised).
zs_status zs_arena_tensor(zs_arena *a, zs_tensor *t, zs_dtype dt, int ndim, const int64_t *shape, const char *name);
// Mark / release for scratch use: everything allocated after the mark is dropped.
size_t zs_arena_mark(const zs_arena *a);
void zs_arena_reset(zs_arena *a, size_t mark);

#endif
