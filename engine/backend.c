#include "backend.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef ZS_HAVE_OPENBLAS
#include <cblas.h>
#endif

zs_status zs_device_parse(const char *s, zs_device *dev, int *index) {
    *index = 0;
    if (strcmp(s, "cpu") == 0) { *dev = ZS_CPU; return ZS_OK; }
    if (strncmp(s, "cuda", 4) == 0) {
        *dev = ZS_CUDA;
        if (s[4] == 0) return ZS_OK;
        char *end;
        long i = s[4] == ':' ? strtol(s + 5, &end, 10) : -1;
        if (s[4] == ':' && s[5] && *end == 0 && i >= 0 && i < 1024) { *index = (int)i; return ZS_OK; }
    }
    return ZS_ERR(ZS_EINVAL, "--device: '%s' is not cpu, cuda or cuda:N", s);
}

const char *zs_device_name(zs_device d) { return d == ZS_CUDA ? "cuda" : "cpu"; }

int zs_cuda_available(void) {
#ifdef ZS_HAVE_CUDA
    return zs_cuda_available_impl();
#else
    return 0;
#endif
}

zs_status zs_cuda_init(int device_index) {
#ifdef ZS_HAVE_CUDA
    return zs_cuda_init_impl(device_index);
#else
    (void)device_index;
    return ZS_ERR(ZS_EUNSUPPORTED, "this zsmlc was built without CUDA (make CUDA=1)");
#endif
}

zs_status zs_malloc(void **p, size_t bytes, zs_device dev, const char *what) {
    *p = NULL;
    if (dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_cuda_malloc(p, bytes, what);
#else
        return ZS_ERR(ZS_EUNSUPPORTED, "%s: CUDA memory requested, built without CUDA", what);
#endif
    }
    if (bytes == 0) bytes = 1;
    // 256-byte alignment, as cudaMalloc gives, so arena offsets mean the same on both
    // devices; aligned_alloc wants the size rounded up to the alignment.
    *p = aligned_alloc(256, (bytes + 255) / 256 * 256);
    if (!*p) return ZS_ERR(ZS_ENOMEM, "%s: cannot allocate %zu bytes on the host", what, bytes);
    return ZS_OK;
}

void zs_free(void *p, zs_device dev) {
    if (!p) return;
#ifdef ZS_HAVE_CUDA
    if (dev == ZS_CUDA) { zs_cuda_free(p); return; }
#endif
    (void)dev;
    free(p);
}

zs_status zs_mem_high_water(zs_device dev, size_t *bytes) {
    *bytes = 0;
    if (dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_cuda_mem_used(bytes);
#else
        return ZS_ERR(ZS_EUNSUPPORTED, "memory: built without CUDA");
#endif
    }
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return ZS_ERR(ZS_EUNSUPPORTED, "memory: no /proc/self/status");
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %llu kB", &kb) == 1) break;
    fclose(f);
    if (!kb) return ZS_ERR(ZS_EUNSUPPORTED, "memory: no VmHWM in /proc/self/status");
    *bytes = (size_t)kb * 1024;
    return ZS_OK;
}

zs_status zs_mem_high_water_reset(zs_device dev) {
    if (dev == ZS_CUDA) {
#ifdef ZS_HAVE_CUDA
        return zs_cuda_pool_trim();
#else
        return ZS_ERR(ZS_EUNSUPPORTED, "memory: built without CUDA");
#endif
    }
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return ZS_ERR(ZS_EUNSUPPORTED, "memory: cannot open /proc/self/clear_refs");
    int ok = fputs("5", f) >= 0;
    ok &= fclose(f) == 0;
    return ok ? ZS_OK : ZS_ERR(ZS_EUNSUPPORTED, "memory: writing /proc/self/clear_refs failed");
}

zs_status zs_memcpy2d(void *dst, size_t dpitch, zs_device dd, const void *src, size_t spitch, zs_device sd, size_t width,
                      size_t rows) {
    if (width == 0 || rows == 0) return ZS_OK;
    if (width > dpitch || width > spitch) return ZS_ERR(ZS_EINVAL, "memcpy2d: width %zu exceeds a pitch", width);
    if (dd == ZS_CPU && sd == ZS_CPU) {
        for (size_t r = 0; r < rows; r++) memmove((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
        return ZS_OK;
    }
#ifdef ZS_HAVE_CUDA
    return zs_cuda_memcpy2d(dst, dpitch, dd == ZS_CUDA, src, spitch, sd == ZS_CUDA, width, rows);
#else
    return ZS_ERR(ZS_EUNSUPPORTED, "memcpy2d: CUDA memory, built without CUDA");
#endif
}

zs_status zs_memcpy(void *dst, zs_device dd, const void *src, zs_device sd, size_t bytes) {
    if (bytes == 0) return ZS_OK;
    if (dd == ZS_CPU && sd == ZS_CPU) { memmove(dst, src, bytes); return ZS_OK; }
#ifdef ZS_HAVE_CUDA
    return zs_cuda_memcpy(dst, dd == ZS_CUDA, src, sd == ZS_CUDA, bytes);
#else
    return ZS_ERR(ZS_EUNSUPPORTED, "copy to or from CUDA memory: built without CUDA");
#endif
}

zs_status zs_memset0(void *p, zs_device dev, size_t bytes) {
    if (dev == ZS_CPU) { memset(p, 0, bytes); return ZS_OK; }
#ifdef ZS_HAVE_CUDA
    return zs_cuda_memset0(p, bytes);
#else
    return ZS_ERR(ZS_EUNSUPPORTED, "memset of CUDA memory: built without CUDA");
#endif
}

zs_status zs_sync(zs_device dev) {
#ifdef ZS_HAVE_CUDA
    if (dev == ZS_CUDA) return zs_cuda_sync();
#endif
    (void)dev;
    return ZS_OK;
}

zs_status zs_tensor_copy(zs_tensor *dst, const zs_tensor *src) {
    if (zs_numel(dst) != zs_numel(src)) {
        char a[96], b[96];
        return ZS_ERR(ZS_EINVAL, "copy %s -> %s: %s vs %s elements differ", src->name ? src->name : "tensor",
                      dst->name ? dst->name : "tensor", zs_shape_str(src, a, sizeof a), zs_shape_str(dst, b, sizeof b));
    }
    if (dst->dtype == src->dtype) return zs_memcpy(dst->data, dst->device, src->data, src->device, zs_nbytes(src));
    // Different dtypes: stage through the host.
    int64_t n = zs_numel(src);
    void *s = src->data, *d = dst->data, *hs = NULL, *hd = NULL;
    zs_status st = ZS_OK;
    if (src->device != ZS_CPU) {
        st = zs_malloc(&hs, zs_nbytes(src), ZS_CPU, "copy staging");
        if (!st) st = zs_memcpy(hs, ZS_CPU, src->data, src->device, zs_nbytes(src));
        s = hs;
    }
    if (!st && dst->device != ZS_CPU) {
        st = zs_malloc(&hd, zs_nbytes(dst), ZS_CPU, "copy staging");
        d = hd;
    }
    if (!st) st = zs_convert(d, dst->dtype, s, src->dtype, n);
    if (!st && hd) st = zs_memcpy(dst->data, dst->device, hd, ZS_CPU, zs_nbytes(dst));
    zs_free(hs, ZS_CPU);
    zs_free(hd, ZS_CPU);
    return st;
}

void zs_build_info(char *buf, size_t n) {
    size_t k = 0;
#define ADD(...) do { int w_ = snprintf(buf + k, n - k, __VA_ARGS__); if (w_ > 0 && (size_t)w_ < n - k) k += (size_t)w_; } while (0)
#ifdef ZS_HAVE_OPENBLAS
    ADD("blas: OpenBLAS %s\n", openblas_get_config());
#else
    ADD("blas: built-in C GEMM\n");
#endif
#ifdef _OPENMP
    ADD("openmp: yes, %d threads\n", omp_get_max_threads());
#else
    ADD("openmp: no\n");
#endif
#ifdef ZS_HAVE_CUDA
    ADD("cuda: yes\n");
    if (k < n) zs_cuda_build_info(buf + k, n - k);
#else
    ADD("cuda: no (built with CUDA=0)\n");
#endif
#undef ADD
}
