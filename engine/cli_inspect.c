// zsmlc inspect [--json] [--file-order] FILE_OR_DIR: lists tensors (name, dtype, shape),
// the element count and bytes (--json: one line {"parts": [{path, layout, header_only,
// files, tensors: [{name, dtype, shape, file}], count, elements, bytes}], tensors, elements,
// bytes}). Tensors are sorted by name unless --file-order (shards in
// index order, header order within a file). A folder that holds no safetensors itself (a
// diffusers root: unet/, vae/, text_encoder/ ...) is listed one subfolder at a time, one
// level deep. Header-only layout files (tests/fixtures/layouts) are accepted and marked.
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "engine/cli.h"
#include "weights/layout.h"
#include "weights/safetensors.h"

typedef struct { int json, file_order; cJSON *parts; long long params, bytes; int ntensors; } opts;

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int has_weights(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int found = 0;
    for (struct dirent *de; !found && (de = readdir(d));) {
        size_t n = strlen(de->d_name);
        found = de->d_name[0] != '.' && ((n > 12 && !strcmp(de->d_name + n - 12, ".safetensors")) ||
                                         (n > 23 && !strcmp(de->d_name + n - 23, ".safetensors.index.json")));
    }
    closedir(d);
    return found;
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp((*(const zs_st_entry *const *)a)->name, (*(const zs_st_entry *const *)b)->name);
}
static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static zs_status show(const char *path, const char *label, opts *o) {
    zs_st *st;
    ZS_TRY(zs_st_open_ex(&st, path, ZS_ST_ALLOW_HEADER_ONLY));
    int n = zs_st_count(st);
    const zs_st_entry **v = malloc(sizeof *v * (size_t)(n ? n : 1));
    if (!v) { zs_st_close(st); return ZS_ERR(ZS_ENOMEM, "inspect"); }
    long long params = 0, bytes = 0;
    for (int i = 0; i < n; i++) {
        v[i] = zs_st_at(st, i);
        params += zs_st_numel(v[i]);
        bytes += (long long)(v[i]->end - v[i]->begin);
    }
    if (!o->file_order) qsort(v, (size_t)n, sizeof *v, cmp_entry);
    const char *layout = zs_layout_name(zs_layout_detect(st));
    int ho = zs_st_is_header_only(st);
    if (o->json) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "path", path);
        if (label) cJSON_AddStringToObject(p, "part", label);
        cJSON_AddStringToObject(p, "layout", layout);
        cJSON_AddBoolToObject(p, "header_only", ho);
        cJSON *files = cJSON_AddArrayToObject(p, "files"), *ts = cJSON_AddArrayToObject(p, "tensors");
        for (int f = 0; f < zs_st_file_count(st); f++) cJSON_AddItemToArray(files, cJSON_CreateString(zs_st_file_path(st, f)));
        for (int i = 0; i < n; i++) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, "name", v[i]->name);
            cJSON_AddStringToObject(t, "dtype", zs_dtype_name(v[i]->dtype));
            cJSON *sh = cJSON_AddArrayToObject(t, "shape");
            for (int d = 0; d < v[i]->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)v[i]->shape[d]));
            cJSON_AddNumberToObject(t, "file", v[i]->file);
            cJSON_AddItemToArray(ts, t);
        }
        cJSON_AddNumberToObject(p, "count", n);
        cJSON_AddNumberToObject(p, "elements", (double)params);
        cJSON_AddNumberToObject(p, "bytes", (double)bytes);
        cJSON_AddItemToArray(o->parts, p);
    } else {
        printf("%s%s%s: %d file%s, layout %s%s\n", label ? "== " : "", label ? label : path, label ? "/" : "",
               zs_st_file_count(st), zs_st_file_count(st) == 1 ? "" : "s", layout, ho ? " (header-only)" : "");
        size_t w = 4;
        for (int i = 0; i < n; i++) w = strlen(v[i]->name) > w ? strlen(v[i]->name) : w;
        for (int i = 0; i < n; i++) {
            char shape[160];
            zs_tensor t = zs_tensor_make(NULL, v[i]->dtype, ZS_CPU, v[i]->ndim, v[i]->shape);
            printf("  %-*s  %-7s %s\n", (int)w, v[i]->name, zs_dtype_name(v[i]->dtype), zs_shape_str(&t, shape, sizeof shape));
        }
        printf("%d tensors, %lld elements, %lld bytes\n", n, params, bytes);
    }
    o->params += params;
    o->bytes += bytes;
    o->ntensors += n;
    free(v);
    zs_st_close(st);
    return ZS_OK;
}

// A folder without weights of its own: each subfolder that has some, in name order.
static zs_status show_subdirs(const char *dir, opts *o) {
    DIR *d = opendir(dir);
    if (!d) return ZS_ERR(ZS_EIO, "%s: cannot open folder: %m", dir);
    char **sub = NULL;
    int n = 0;
    zs_status s = ZS_OK;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        size_t len = strlen(dir) + strlen(de->d_name) + 2;
        char *p = malloc(len), **ns = realloc(sub, sizeof *sub * (size_t)(n + 1));
        if (!p || !ns) { free(p); if (ns) sub = ns; s = ZS_ERR(ZS_ENOMEM, "inspect"); break; }
        sub = ns;
        snprintf(p, len, "%s/%s", dir, de->d_name);
        if (is_dir(p) && has_weights(p)) sub[n++] = p;
        else free(p);
    }
    closedir(d);
    if (n) qsort(sub, (size_t)n, sizeof *sub, cmp_str);
    if (!s && !n) s = ZS_ERR(ZS_EIO, "%s: no *.safetensors here or in its subfolders", dir);
    for (int i = 0; i < n && !s; i++) s = show(sub[i], strrchr(sub[i], '/') + 1, o);
    if (!s && !o->json) printf("total: %d tensors, %lld elements, %lld bytes\n", o->ntensors, o->params, o->bytes);
    for (int i = 0; i < n; i++) free(sub[i]);
    free(sub);
    return s;
}

int zs_cmd_inspect(int argc, char **argv) {
    opts o = {0};
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) o.json = 1;
        else if (!strcmp(argv[i], "--file-order")) o.file_order = 1;
        else if (argv[i][0] == '-' || path) {
            fprintf(stderr, "usage: zsmlc inspect [--json] [--file-order] FILE_OR_DIR\n");
            return 2;
        } else path = argv[i];
    }
    if (!path) {
        fprintf(stderr, "usage: zsmlc inspect [--json] [--file-order] FILE_OR_DIR\n");
        return 2;
    }
    cJSON *root = o.json ? cJSON_CreateObject() : NULL;
    if (root) o.parts = cJSON_AddArrayToObject(root, "parts");
    zs_status s = is_dir(path) && !has_weights(path) ? show_subdirs(path, &o) : show(path, NULL, &o);
    if (!s && root) {
        cJSON_AddStringToObject(root, "path", path);
        cJSON_AddNumberToObject(root, "tensors", o.ntensors);
        cJSON_AddNumberToObject(root, "elements", (double)o.params);
        cJSON_AddNumberToObject(root, "bytes", (double)o.bytes);
        char *txt = cJSON_PrintUnformatted(root);  // one line: for jq and scripts
        if (txt) printf("%s\n", txt);
        free(txt);
    }
    cJSON_Delete(root);
    return s ? zs_cli_fail("inspect", s) : 0;
}
