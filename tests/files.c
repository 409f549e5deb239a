// File helpers for the tests (files.h).
#include "tests/files.h"
#include <stdio.h>
#include <string.h>
#include "weights/safetensors.h"

zs_status zt_copy_file(const char *src, const char *dst) {
    FILE *a = fopen(src, "rb"), *b = a ? fopen(dst, "wb") : NULL;
    char buf[65536];
    size_t n;
    int ok = a && b;
    while (ok && (n = fread(buf, 1, sizeof buf, a)) > 0) ok = fwrite(buf, 1, n, b) == n;
    if (a) fclose(a);
    if (b && fclose(b)) ok = 0;
    return ok ? ZS_OK : ZS_ERR(ZS_EIO, "copy %s -> %s", src, dst);
}

zs_status zt_st_rewrite(const char *src, const char *dst, const char *drop, const char *reshape, const char *add) {
    zs_st *st;
    zs_st_writer *w;
    ZS_TRY(zs_st_open(&st, src));
    zs_status s = zs_st_writer_new(&w);
    static float seven[7], two[2];
    for (int i = 0; i < zs_st_count(st) && !s; i++) {
        const zs_st_entry *e = zs_st_at(st, i);
        if (drop && !strcmp(e->name, drop)) continue;
        zs_tensor t = zs_tensor_make((void *)e->data, e->dtype, ZS_CPU, e->ndim, e->shape);
        if (reshape && !strcmp(e->name, reshape)) {
            int64_t n = 7;
            t = zs_tensor_make(seven, ZS_F32, ZS_CPU, 1, &n);
        }
        s = zs_st_writer_add(w, e->name, &t, ZS_ST_KEEP);
    }
    if (!s && add) {
        int64_t n = 2;
        zs_tensor t = zs_tensor_make(two, ZS_F32, ZS_CPU, 1, &n);
        s = zs_st_writer_add(w, add, &t, ZS_ST_KEEP);
    }
    if (!s) s = zs_st_writer_save(w, dst);
    zs_st_writer_free(w);
    zs_st_close(st);
    return s;
}
