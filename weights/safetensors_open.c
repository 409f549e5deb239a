// Opening safetensors sets: one file, a sharded *.safetensors.index.json, or a folder
// (rules in safetensors.h). Files are mmapped read-only; tensors are copied out on load.
#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "engine/backend.h"
#include "safetensors.h"

typedef struct {
    char *path;
    uint8_t *map;
    size_t size;
    cJSON *meta;  // parsed __metadata__ or NULL
    int header_only;
} st_file;

struct zs_st {
    st_file *files;
    int nfiles;
    zs_st_entry *e;
    int n;
    int *sorted;  // entry indices by name, for zs_st_find
};

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s%s%s", dir, dir[0] && !ends_with(dir, "/") ? "/" : "", name);
    return p;
}

void zs_st_close(zs_st *st) {
    if (!st) return;
    for (int i = 0; i < st->nfiles; i++) {
        if (st->files[i].map) munmap(st->files[i].map, st->files[i].size);
        cJSON_Delete(st->files[i].meta);
        free(st->files[i].path);
    }
    free(st->files);
    zs_st_free_entries(st->e, st->n, NULL);
    free(st->sorted);
    free(st);
}

// Maps and validates one file, appending its entries to st.
static zs_status add_file(zs_st *st, const char *path, unsigned flags) {
    st_file *nf = realloc(st->files, sizeof *nf * (size_t)(st->nfiles + 1));
    if (!nf) return ZS_ERR(ZS_ENOMEM, "%s: file table", path);
    st->files = nf;
    st_file *f = &st->files[st->nfiles];
    memset(f, 0, sizeof *f);
    if (!(f->path = strdup(path))) return ZS_ERR(ZS_ENOMEM, "%s: path", path);
    st->nfiles++;  // from here zs_st_close releases f
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ZS_ERR(ZS_EIO, "%s: cannot open: %m", path);
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return ZS_ERR(ZS_EIO, "%s: not a regular file", path);
    }
    if (sb.st_size > 0) {
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            close(fd);
            return ZS_ERR(ZS_EIO, "%s: cannot mmap %lld bytes: %m", path, (long long)sb.st_size);
        }
        f->map = m;
        f->size = (size_t)sb.st_size;
    }
    close(fd);
    zs_st_entry *e;
    int n;
    char *meta;
    ZS_TRY(zs_st_parse_ex(f->map, f->size, path, flags, &e, &n, &meta));
    if (meta) {
        f->meta = cJSON_Parse(meta);
        free(meta);
        if (!f->meta) { zs_st_free_entries(e, n, NULL); return ZS_ERR(ZS_ENOMEM, "%s: metadata", path); }
        const cJSON *ho = cJSON_GetObjectItemCaseSensitive(f->meta, ZS_ST_HEADER_ONLY_KEY);
        f->header_only = (flags & ZS_ST_ALLOW_HEADER_ONLY) && cJSON_IsString(ho) && !strcmp(ho->valuestring, "1");
    }
    zs_st_entry *ne = realloc(st->e, sizeof *ne * (size_t)(st->n + n + 1));
    if (!ne) { zs_st_free_entries(e, n, NULL); return ZS_ERR(ZS_ENOMEM, "%s: entries", path); }
    st->e = ne;
    for (int i = 0; i < n; i++) {
        e[i].file = st->nfiles - 1;
        st->e[st->n++] = e[i];
    }
    free(e);  // names moved into st->e
    return ZS_OK;
}

static int cmp_name(const void *a, const void *b, void *ctx) {
    const zs_st_entry *e = ctx;
    return strcmp(e[*(const int *)a].name, e[*(const int *)b].name);
}

// Builds the name index; a name in two files is an error naming both.
static zs_status finish(zs_st *st) {
    st->sorted = malloc(sizeof(int) * (size_t)(st->n ? st->n : 1));
    if (!st->sorted) return ZS_ERR(ZS_ENOMEM, "tensor index");
    for (int i = 0; i < st->n; i++) st->sorted[i] = i;
    qsort_r(st->sorted, (size_t)st->n, sizeof(int), cmp_name, st->e);
    for (int i = 1; i < st->n; i++) {
        const zs_st_entry *a = &st->e[st->sorted[i - 1]], *b = &st->e[st->sorted[i]];
        if (!strcmp(a->name, b->name))
            return ZS_ERR(ZS_EFORMAT, "tensor '%s' is in both %s and %s", a->name, st->files[a->file].path,
                          st->files[b->file].path);
    }
    return ZS_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static zs_status read_small(const char *path, char **out) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return ZS_ERR(ZS_EIO, "%s: cannot open: %m", path);
    char *b = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            if (cap > ZS_ST_MAX_HEADER) { free(b); fclose(f); return ZS_ERR(ZS_EFORMAT, "%s: index too large", path); }
            char *nb = realloc(b, cap = cap * 2 + 65536 + 1);
            if (!nb) { free(b); fclose(f); return ZS_ERR(ZS_ENOMEM, "%s", path); }
            b = nb;
        }
        size_t k = fread(b + n, 1, 65536, f);
        n += k;
        if (k < 65536) break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) { free(b); return ZS_ERR(ZS_EIO, "%s: read error", path); }
    b[n] = 0;
    if (strlen(b) != n) { free(b); return ZS_ERR(ZS_EFORMAT, "%s: NUL byte in JSON", path); }
    *out = b;
    return ZS_OK;
}

// {"metadata": {...}, "weight_map": {tensor: shard file name}}: opens each shard once (in
// order of first mention) and checks the shards hold exactly the tensors the map says.
static zs_status open_index(zs_st *st, const char *path, unsigned flags) {
    char *text;
    ZS_TRY(read_small(path, &text));
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    free(text);
    zs_status s = ZS_OK;
    const cJSON *wm = root ? cJSON_GetObjectItemCaseSensitive(root, "weight_map") : NULL;
    char *dir = strdup(path), *slash = dir ? strrchr(dir, '/') : NULL;
    if (!dir) { cJSON_Delete(root); return ZS_ERR(ZS_ENOMEM, "%s", path); }
    if (slash) slash[1] = 0; else dir[0] = 0;
    int n_map = 0;
    char **keys = NULL;
    if (!root) s = ZS_ERR(ZS_EFORMAT, "%s: not valid JSON", path);
    else if (!cJSON_IsObject(wm)) s = ZS_ERR(ZS_EFORMAT, "%s: no \"weight_map\" object", path);
    for (const cJSON *a = wm ? wm->child : NULL; a && !s; a = a->next, n_map++) {
        if (!cJSON_IsString(a) || !a->valuestring[0])
            s = ZS_ERR(ZS_EFORMAT, "%s: weight_map['%s'] is not a file name", path, a->string);
        else if (strchr(a->valuestring, '/') || !strcmp(a->valuestring, ".."))
            s = ZS_ERR(ZS_EFORMAT, "%s: weight_map['%s'] = '%s' is not a file in the index's folder", path, a->string,
                       a->valuestring);
        if (s) break;
        char *p = join(dir, a->valuestring);
        if (!p) { s = ZS_ERR(ZS_ENOMEM, "%s", path); break; }
        int seen = 0;  // shards are few: a linear scan of those opened so far
        for (int f = 0; f < st->nfiles && !seen; f++) seen = !strcmp(st->files[f].path, p);
        if (!seen) s = add_file(st, p, flags);
        free(p);
    }
    if (!s) s = finish(st);
    // Every mapped tensor is in its shard (by lookup) and every shard tensor is mapped
    // (by a sorted copy of the map's keys, which also finds a key given twice).
    if (!s && !(keys = malloc(sizeof *keys * (size_t)(n_map ? n_map : 1)))) s = ZS_ERR(ZS_ENOMEM, "%s", path);
    int nk = 0;
    for (const cJSON *a = wm ? wm->child : NULL; a && !s; a = a->next) keys[nk++] = a->string;
    if (!s && nk) qsort(keys, (size_t)nk, sizeof *keys, cmp_str);
    for (int i = 1; i < nk && !s; i++)
        if (!strcmp(keys[i], keys[i - 1])) s = ZS_ERR(ZS_EFORMAT, "%s: weight_map names '%s' twice", path, keys[i]);
    for (const cJSON *a = wm ? wm->child : NULL; a && !s; a = a->next) {
        const zs_st_entry *e = zs_st_find(st, a->string);
        const char *fp = e ? st->files[e->file].path : NULL;
        if (!e) s = ZS_ERR(ZS_EFORMAT, "%s: tensor '%s' is not in %s", path, a->string, a->valuestring);
        else if (!ends_with(fp, a->valuestring) || (strlen(fp) > strlen(a->valuestring) &&
                                                   fp[strlen(fp) - strlen(a->valuestring) - 1] != '/'))
            s = ZS_ERR(ZS_EFORMAT, "%s: tensor '%s' is mapped to %s but is in %s", path, a->string, a->valuestring, fp);
    }
    for (int i = 0; i < st->n && !s && nk != st->n; i++) {
        const char *key = st->e[i].name;
        if (!bsearch(&key, keys, (size_t)nk, sizeof *keys, cmp_str))
            s = ZS_ERR(ZS_EFORMAT, "%s: tensor '%s' of %s is not in its weight_map", path, key,
                       st->files[st->e[i].file].path);
    }
    free(keys);
    cJSON_Delete(root);
    free(dir);
    return s;
}

static zs_status open_dir(zs_st *st, const char *path, unsigned flags) {
    DIR *d = opendir(path);
    if (!d) return ZS_ERR(ZS_EIO, "%s: cannot open folder: %m", path);
    char **names = NULL;
    int n = 0, cap = 0;
    zs_status s = ZS_OK;
    for (struct dirent *de; (de = readdir(d)) && !s;) {
        if (de->d_name[0] == '.') continue;  // hidden and in-flight temp files
        if (!ends_with(de->d_name, ".safetensors") && !ends_with(de->d_name, ".safetensors.index.json")) continue;
        if (n == cap) {
            char **nn = realloc(names, sizeof *nn * (size_t)(cap = cap * 2 + 16));
            if (!nn) { s = ZS_ERR(ZS_ENOMEM, "%s", path); break; }
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name))) s = ZS_ERR(ZS_ENOMEM, "%s", path);
        else n++;
    }
    closedir(d);
    if (!s && n) qsort(names, (size_t)n, sizeof *names, cmp_str);
    // Index first: a variant-free one wins (model.safetensors.index.json over model.fp16...).
    const char *index = NULL;
    int n_index = 0, n_plain = 0;
    for (int i = 0; i < n; i++) {
        if (!ends_with(names[i], ".safetensors.index.json")) continue;
        n_index++;
        size_t stem = strlen(names[i]) - strlen(".safetensors.index.json");
        if (!memchr(names[i], '.', stem)) { index = names[i]; n_plain++; }
    }
    if (!s && n_index == 1 && !index)
        for (int i = 0; i < n; i++)
            if (ends_with(names[i], ".safetensors.index.json")) index = names[i];
    if (!s && n_index > 1 && n_plain != 1)
        s = ZS_ERR(ZS_EINVAL, "%s: %d *.safetensors.index.json files and none is the plain one; open one directly",
                   path, n_index);
    if (!s && index) {
        char *p = join(path, index);
        s = p ? open_index(st, p, flags) : ZS_ERR(ZS_ENOMEM, "%s", path);
        free(p);
    } else if (!s) {
        int opened = 0;
        for (int i = 0; i < n && !s; i++) {
            if (!ends_with(names[i], ".safetensors")) continue;
            // X.V.safetensors is a variant (fp16, ema, ...) when X.safetensors is here too.
            char base[4096];
            const char *dot = strchr(names[i], '.');
            int variant = 0;
            if (dot && dot < names[i] + strlen(names[i]) - strlen(".safetensors") &&
                (size_t)(dot - names[i]) + sizeof ".safetensors" <= sizeof base) {
                snprintf(base, sizeof base, "%.*s.safetensors", (int)(dot - names[i]), names[i]);
                variant = bsearch(&(char *){base}, names, (size_t)n, sizeof *names, cmp_str) != NULL;
            }
            if (variant) continue;
            char *p = join(path, names[i]);
            s = p ? add_file(st, p, flags) : ZS_ERR(ZS_ENOMEM, "%s", path);
            free(p);
            opened++;
        }
        if (!s && !opened) s = ZS_ERR(ZS_EIO, "%s: no *.safetensors or *.safetensors.index.json in this folder", path);
        if (!s) s = finish(st);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return s;
}

zs_status zs_st_open(zs_st **out, const char *path) { return zs_st_open_ex(out, path, 0); }

zs_status zs_st_open_ex(zs_st **out, const char *path, unsigned flags) {
    *out = NULL;
    zs_st *st = calloc(1, sizeof *st);
    if (!st) return ZS_ERR(ZS_ENOMEM, "%s", path);
    struct stat sb;
    zs_status s;
    if (stat(path, &sb) != 0) s = ZS_ERR(ZS_EIO, "%s: %m", path);
    else if (S_ISDIR(sb.st_mode)) s = open_dir(st, path, flags);
    else if (ends_with(path, ".json")) s = open_index(st, path, flags);
    else if (!(s = add_file(st, path, flags))) s = finish(st);
    if (s) { zs_st_close(st); return s; }
    *out = st;
    return ZS_OK;
}

int zs_st_count(const zs_st *st) { return st->n; }
const zs_st_entry *zs_st_at(const zs_st *st, int i) { return i >= 0 && i < st->n ? &st->e[i] : NULL; }
int zs_st_file_count(const zs_st *st) { return st->nfiles; }
const char *zs_st_file_path(const zs_st *st, int file) {
    return file >= 0 && file < st->nfiles ? st->files[file].path : NULL;
}

int zs_st_is_header_only(const zs_st *st) {
    for (int i = 0; i < st->nfiles; i++)
        if (st->files[i].header_only) return 1;
    return 0;
}

static int cmp_key(const void *key, const void *b, void *ctx) {
    return strcmp(key, ((const zs_st_entry *)ctx)[*(const int *)b].name);
}

const zs_st_entry *zs_st_find(const zs_st *st, const char *name) {
    // bsearch has no context argument: a binary search by hand.
    size_t lo = 0, hi = (size_t)st->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = cmp_key(name, &st->sorted[mid], st->e);
        if (c == 0) return &st->e[st->sorted[mid]];
        if (c < 0) hi = mid; else lo = mid + 1;
    }
    return NULL;
}

const char *zs_st_metadata(const zs_st *st, const char *key) {
    for (int i = 0; i < st->nfiles; i++) {
        const cJSON *v = st->files[i].meta ? cJSON_GetObjectItemCaseSensitive(st->files[i].meta, key) : NULL;
        if (cJSON_IsString(v)) return v->valuestring;
    }
    return NULL;
}

static zs_status lookup(const zs_st *st, const char *name, const zs_st_entry **e) {
    *e = zs_st_find(st, name);
    if (!*e) return ZS_ERR(ZS_EINVAL, "tensor '%s' is not in %s%s", name, st->nfiles ? st->files[0].path : "(none)",
                           st->nfiles > 1 ? " and its other shards" : "");
    if (!(*e)->data && zs_st_numel(*e) > 0)
        return ZS_ERR(ZS_EINVAL, "tensor '%s': %s is header-only, it has no data", name, st->files[(*e)->file].path);
    return ZS_OK;
}

zs_status zs_st_load(const zs_st *st, const char *name, zs_tensor *dst) {
    const zs_st_entry *e;
    ZS_TRY(lookup(st, name, &e));
    zs_tensor src = zs_tensor_make((void *)e->data, e->dtype, ZS_CPU, e->ndim, e->shape);
    if (!zs_same_shape(&src, dst)) {
        char a[128], b[128];
        return ZS_ERR(ZS_EINVAL, "tensor '%s' in %s: shape %s, expected %s", name, st->files[e->file].path,
                      zs_shape_str(&src, a, sizeof a), zs_shape_str(dst, b, sizeof b));
    }
    size_t nbytes = e->end - e->begin;
    if (!dst->data && nbytes) return ZS_ERR(ZS_EINVAL, "tensor '%s': destination has no memory", name);
    if (dst->dtype == e->dtype) return zs_memcpy(dst->data, dst->device, e->data, ZS_CPU, nbytes);
    if (!zs_dtype_is_float(dst->dtype) || !zs_dtype_is_float(e->dtype))
        return ZS_ERR(ZS_EUNSUPPORTED, "tensor '%s' in %s: stored as %s, cannot load into %s (only float dtypes convert)",
                      name, st->files[e->file].path, zs_dtype_name(e->dtype), zs_dtype_name(dst->dtype));
    int64_t n = zs_st_numel(e);
    if (dst->device == ZS_CPU) return zs_st_convert_unaligned(dst->data, dst->dtype, e->data, e->dtype, n);
    void *h;  // device: convert on the host, then one copy
    ZS_TRY(zs_malloc(&h, (size_t)n * zs_dtype_size(dst->dtype), ZS_CPU, name));
    zs_status s = zs_st_convert_unaligned(h, dst->dtype, e->data, e->dtype, n);
    if (!s) s = zs_memcpy(dst->data, dst->device, h, ZS_CPU, (size_t)n * zs_dtype_size(dst->dtype));
    zs_free(h, ZS_CPU);
    return s;
}

zs_status zs_st_read_f32(const zs_st *st, const char *name, float *dst, int64_t n) {
    const zs_st_entry *e;
    ZS_TRY(lookup(st, name, &e));
    if (!zs_dtype_is_float(e->dtype))
        return ZS_ERR(ZS_EINVAL, "tensor '%s' in %s is %s, not a float dtype", name, st->files[e->file].path,
                      zs_dtype_name(e->dtype));
    if (n != zs_st_numel(e))
        return ZS_ERR(ZS_EINVAL, "tensor '%s' in %s has %lld elements, caller expects %lld", name,
                      st->files[e->file].path, (long long)zs_st_numel(e), (long long)n);
    return zs_st_convert_unaligned(dst, ZS_F32, e->data, e->dtype, n);
}
