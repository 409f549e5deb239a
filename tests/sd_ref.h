// Shared by the SD tests: reference tensors read as host F32, and test data moved between the
// host and a device.
#ifndef ZT_SD_REF_H
#define ZT_SD_REF_H
#include "engine/tensor.h"
#include "weights/safetensors.h"

// Host F32 copy (malloc'd) of reference tensor `name`, or NULL when absent or when its element
// count is not n (n < 0: any) or its rank not ndim (0: any); shape (may be NULL) gets its shape.
float *zt_ref_read(const zs_st *st, const char *name, int64_t n, int ndim, int64_t *shape);
// Host F32 data -> a new device tensor of dtype dt (the caller frees d->data with zs_free).
zs_status zt_to_dev(zs_tensor *d, const float *x, int ndim, const int64_t *shape, zs_device dev, zs_dtype dt);
// A device tensor -> host F32 (x holds zs_numel(t) floats).
zs_status zt_to_host(float *x, const zs_tensor *t);
#endif
