// safetensors: round trips in every float dtype, conversion on load, atomic writes, sharded
// sets, every malformed case (each error must name the fault), a file written by the Python
// package, the fuzz corpus, and `zsmlc inspect` exit codes.
#include <dirent.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "engine/backend.h"
#include "engine/fileio.h"
#include "test.h"
#include "weights/layout.h"
#include "weights/safetensors.h"

// ---- helpers ---------------------------------------------------------------------------
// Like CHECK, but jumps to the test's cleanup label `out`.
#define REQ(c, ...) do { if (!(c)) { zt_note(__FILE__, __LINE__, __VA_ARGS__); goto out; } } while (0)
static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f) { return remove(p); }
static void rm_tree(const char *dir) { nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static int make_tmpdir(char *buf, size_t n) {
    snprintf(buf, n, "/tmp/zsmlc_st_XXXXXX");
    return mkdtemp(buf) ? 0 : -1;
}

static int write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t k = n ? fwrite(p, 1, n, f) : 0;
    return fclose(f) == 0 && k == n ? 0 : -1;
}

// A whole file: 8-byte length, the header text, then `data_len` bytes of data (zeros).
static uint8_t *build(const char *header, size_t data_len, size_t *size) {
    size_t h = strlen(header);
    *size = 8 + h + data_len;
    uint8_t *b = calloc(1, *size + 1);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    return b;
}

static int count_tmp_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *de; d && (de = readdir(d));) n += strstr(de->d_name, ".tmp") != NULL;
    if (d) closedir(d);
    return n;
}

static int file_equals(const char *path, const char *want) {
    char buf[256] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t k = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    return k == strlen(want) && !memcmp(buf, want, k);
}

// Writes a set of test tensors (F32 data stored as `store`) into path.
static zs_status write_set(const char *path, zs_dtype store, const float *x, int64_t nx) {
    zs_st_writer *w;
    ZS_TRY(zs_st_writer_new(&w));
    int64_t s2[2] = {3, 4}, s1[1] = {5}, s0[1] = {0};
    int64_t ids[3] = {7, -1, (int64_t)1 << 50};
    zs_tensor a = zs_tensor_make((void *)x, ZS_F32, ZS_CPU, 2, s2);
    zs_tensor b = zs_tensor_make((void *)(x + 12), ZS_F32, ZS_CPU, 1, s1);
    zs_tensor c = zs_tensor_make((void *)(x + 17), ZS_F32, ZS_CPU, 0, NULL);
    int64_t s3[1] = {3};
    zs_tensor d = zs_tensor_make(ids, ZS_I64, ZS_CPU, 1, s3);
    zs_tensor z = zs_tensor_make(NULL, ZS_F32, ZS_CPU, 1, s0);
    zs_status s = zs_st_writer_meta(w, "format", "pt");
    if (!s) s = zs_st_writer_meta(w, "note", "quote \" backslash \\ tab \t");
    if (!s) s = zs_st_writer_add(w, "layer.weight", &a, store);
    if (!s) s = zs_st_writer_add(w, "layer.bias", &b, store);
    if (!s) s = zs_st_writer_add(w, "scale", &c, store);
    if (!s) s = zs_st_writer_add(w, "ids", &d, ZS_ST_KEEP);
    if (!s) s = zs_st_writer_add(w, "empty", &z, store);
    if (!s) s = zs_st_writer_save(w, path);
    zs_st_writer_free(w);
    (void)nx;
    return s;
}

static float round_to(float v, zs_dtype t) {
    return t == ZS_F16 ? zs_f16_to_f32(zs_f32_to_f16(v)) : t == ZS_BF16 ? zs_bf16_to_f32(zs_f32_to_bf16(v)) : v;
}

// ---- round trips -----------------------------------------------------------------------
TEST(safetensors_roundtrip_float_dtypes) {
    char dir[64], path[128];
    CHECK(make_tmpdir(dir, sizeof dir) == 0, "mkdtemp");
    float x[18];
    zt_fill_uniform(x, 18, 42, -3, 3);
    zs_dtype stores[3] = {ZS_F32, ZS_F16, ZS_BF16};
    zt_result r = ZT_FAIL;
    zs_st *st = NULL;
    for (int k = 0; k < 3; k++) {
        zs_dtype sd = stores[k];
        snprintf(path, sizeof path, "%s/rt_%s.safetensors", dir, zs_dtype_name(sd));
        zs_status s = write_set(path, sd, x, 18);
        if (s) { zt_note(__FILE__, __LINE__, "write: %s", zs_errmsg()); goto out; }
        if ((s = zs_st_open(&st, path))) { zt_note(__FILE__, __LINE__, "open: %s", zs_errmsg()); goto out; }
        REQ(zs_st_count(st) == 5, "count %d", zs_st_count(st));
        REQ(!strcmp(zs_st_metadata(st, "format"), "pt"), "metadata");
        REQ(!strcmp(zs_st_metadata(st, "note"), "quote \" backslash \\ tab \t"), "escaped metadata");
        const zs_st_entry *e = zs_st_find(st, "layer.weight");
        REQ(e && e->dtype == sd && e->ndim == 2 && e->shape[0] == 3 && e->shape[1] == 4, "layer.weight entry");
        REQ(zs_st_find(st, "scale")->ndim == 0, "scalar");
        REQ(zs_st_find(st, "empty")->shape[0] == 0, "zero-size");
        REQ(zs_st_find(st, "ids")->dtype == ZS_I64, "ids dtype");
        REQ(!zs_st_find(st, "nope"), "absent");
        // Load into each float dtype: value = round(round(x, stored), dst).
        for (int j = 0; j < 3; j++) {
            zs_dtype dd = stores[j];
            uint8_t buf[12 * 4];
            int64_t s2[2] = {3, 4};
            zs_tensor t = zs_tensor_make(buf, dd, ZS_CPU, 2, s2);
            if ((s = zs_st_load(st, "layer.weight", &t))) { zt_note(__FILE__, __LINE__, "%s", zs_errmsg()); goto out; }
            float got[12];
            CHECK_OK(zs_convert(got, ZS_F32, buf, dd, 12));
            for (int i = 0; i < 12; i++)
                REQ(got[i] == round_to(round_to(x[i], sd), dd), "%s->%s [%d]: %g vs %g", zs_dtype_name(sd),
                    zs_dtype_name(dd), i, got[i], round_to(round_to(x[i], sd), dd));
        }
        float b[5], c;
        CHECK_OK(zs_st_read_f32(st, "layer.bias", b, 5));
        for (int i = 0; i < 5; i++) REQ(b[i] == round_to(x[12 + i], sd), "bias[%d]", i);
        CHECK_OK(zs_st_read_f32(st, "scale", &c, 1));
        REQ(c == round_to(x[17], sd), "scalar value");
        int64_t ids[3], s3[1] = {3};
        zs_tensor ti = zs_tensor_make(ids, ZS_I64, ZS_CPU, 1, s3);
        CHECK_OK(zs_st_load(st, "ids", &ti));
        REQ(ids[0] == 7 && ids[1] == -1 && ids[2] == (int64_t)1 << 50, "I64 values");
        zs_tensor tz = zs_tensor_make(NULL, ZS_BF16, ZS_CPU, 1, (int64_t[1]){0});
        CHECK_OK(zs_st_load(st, "empty", &tz));
        zs_st_close(st);
        st = NULL;
    }
    r = ZT_PASS;
out:
    zs_st_close(st);
    rm_tree(dir);
    return r;
}

TEST(safetensors_load_errors_name_tensor) {
    char dir[64], path[128];
    CHECK(make_tmpdir(dir, sizeof dir) == 0, "mkdtemp");
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    float x[18] = {0};
    CHECK_OK(write_set(path, ZS_F32, x, 18));
    zs_st *st;
    CHECK_OK(zs_st_open(&st, path));
    float buf[32];
    int64_t bad[2] = {4, 3};
    zs_tensor t = zs_tensor_make(buf, ZS_F32, ZS_CPU, 2, bad);
    zs_status s1 = zs_st_load(st, "layer.weight", &t);
    char m1[512];
    snprintf(m1, sizeof m1, "%s", zs_errmsg());
    zs_status s2 = zs_st_load(st, "missing.weight", &t);
    char m2[512];
    snprintf(m2, sizeof m2, "%s", zs_errmsg());
    zs_tensor ti = zs_tensor_make(buf, ZS_F32, ZS_CPU, 1, (int64_t[1]){3});
    zs_status s3 = zs_st_load(st, "ids", &ti);
    zs_status s4 = zs_st_read_f32(st, "layer.bias", buf, 4);
    zs_st_close(st);
    rm_tree(dir);
    CHECK(s1 == ZS_EINVAL && strstr(m1, "layer.weight") && strstr(m1, "[3, 4]") && strstr(m1, "[4, 3]"), "%s", m1);
    CHECK(s2 == ZS_EINVAL && strstr(m2, "missing.weight"), "%s", m2);
    CHECK(s3 == ZS_EUNSUPPORTED, "I64 into F32");
    CHECK(s4 == ZS_EINVAL && strstr(zs_errmsg(), "layer.bias"), "%s", zs_errmsg());
    return ZT_PASS;
}

TEST(safetensors_python_fixture_values_and_bytes) {
    char path[512], dir[64], mine[128];
    zt_fixture_path("safetensors/python_written.safetensors", path, sizeof path);
    zs_st *st;
    CHECK_OK(zs_st_open(&st, path));
    zt_result r = ZT_FAIL;
    float f[6], h[4], b[4], sc;
    int64_t ids[3];
    REQ(zs_st_count(st) == 5 && !strcmp(zs_st_metadata(st, "format"), "pt"), "count/metadata");
    REQ(!zs_st_read_f32(st, "f32.weight", f, 6) && !zs_st_read_f32(st, "f16.vec", h, 4) &&
        !zs_st_read_f32(st, "bf16.mat", b, 4) && !zs_st_read_f32(st, "scalar", &sc, 1), "%s", zs_errmsg());
    for (int i = 0; i < 6; i++) REQ(f[i] == i / 4.0f - 0.5f, "f32[%d] = %g", i, f[i]);
    REQ(h[0] == 1.0f && h[1] == -2.5f && h[2] == 65504.0f && h[3] == 1.0f / 16384, "f16 values");
    REQ(b[0] == 1.0f && b[1] == -1.5f && b[2] == 3.140625f && b[3] == 0.0078125f, "bf16 values");
    REQ(sc == 0.25f && zs_st_find(st, "scalar")->ndim == 0, "scalar");
    const zs_st_entry *e = zs_st_find(st, "bf16.mat");
    REQ(e->dtype == ZS_BF16 && e->ndim == 2 && e->shape[1] == 2, "bf16 entry");
    zs_tensor ti = zs_tensor_make(ids, ZS_I64, ZS_CPU, 1, (int64_t[1]){3});
    REQ(!zs_st_load(st, "i64.ids", &ti), "i64 load: %s", zs_errmsg());
    REQ(ids[0] == 1 && ids[1] == -2 && ids[2] == (int64_t)1 << 40, "i64 values");
    // Our writer, given the same tensors and metadata, must produce the same bytes.
    REQ(make_tmpdir(dir, sizeof dir) == 0, "mkdtemp");
    snprintf(mine, sizeof mine, "%s/mine.safetensors", dir);
    zs_st_writer *w;
    REQ(!zs_st_writer_new(&w), "writer");
    static const char *names[] = {"f32.weight", "f16.vec", "bf16.mat", "i64.ids", "scalar"};
    zs_status s = zs_st_writer_meta(w, "format", "pt");
    for (int i = 0; i < 5 && !s; i++) {
        const zs_st_entry *x = zs_st_find(st, names[i]);
        uint8_t tmp[64];
        memcpy(tmp, x->data, x->end - x->begin);
        zs_tensor t = zs_tensor_make(tmp, x->dtype, ZS_CPU, x->ndim, x->shape);
        s = zs_st_writer_add(w, names[i], &t, ZS_ST_KEEP);
    }
    if (!s) s = zs_st_writer_save(w, mine);
    zs_st_writer_free(w);
    REQ(!s, "save: %s", zs_errmsg());
    FILE *fa = fopen(path, "rb"), *fb = fopen(mine, "rb");
    uint8_t A[1024], B[1024];
    size_t na = fa ? fread(A, 1, sizeof A, fa) : 0, nb = fb ? fread(B, 1, sizeof B, fb) : 0;
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    rm_tree(dir);
    REQ(na == nb && na > 0 && !memcmp(A, B, na), "bytes differ from the Python writer's (%zu vs %zu)", na, nb);
    r = ZT_PASS;
out:
    zs_st_close(st);
    return r;
}

// ---- atomic writes ---------------------------------------------------------------------
TEST(safetensors_atomic_write) {
    char dir[64], path[128], sub[128], nodir[160];
    CHECK(make_tmpdir(dir, sizeof dir) == 0, "mkdtemp");
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK(write_bytes(path, "old contents", 12) == 0, "seed target");
    float x[18] = {1};
    zt_result r = ZT_FAIL;
    // 1. Failure after the temp file is written: target untouched, temp removed.
    zs_write_fault = 1;
    zs_status s = write_set(path, ZS_F16, x, 18);
    zs_write_fault = 0;
    REQ(s == ZS_EIO, "injected fault not reported");
    REQ(file_equals(path, "old contents"), "target changed by a failed write");
    REQ(count_tmp_files(dir) == 0, "temp file left behind");
    // 2. Non-existent folder.
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/x.safetensors", dir);
    s = write_set(nodir, ZS_F32, x, 18);
    REQ(s == ZS_EIO && strstr(zs_errmsg(), "x.safetensors"), "%s", zs_errmsg());
    // 3. Target is a folder: rename fails after the write; folder kept, no temp left.
    snprintf(sub, sizeof sub, "%s/adir", dir);
    REQ(mkdir(sub, 0755) == 0, "mkdir");
    s = write_set(sub, ZS_F32, x, 18);
    struct stat sb;
    REQ(s == ZS_EIO && stat(sub, &sb) == 0 && S_ISDIR(sb.st_mode), "rename over a folder");
    REQ(count_tmp_files(dir) == 0, "temp file left behind after rename failure");
    // 4. Success replaces the old contents.
    REQ(!write_set(path, ZS_F32, x, 18), "%s", zs_errmsg());
    zs_st *st;
    REQ(!zs_st_open(&st, path), "%s", zs_errmsg());
    zs_st_close(st);
    REQ(count_tmp_files(dir) == 0, "temp file left behind after success");
    r = ZT_PASS;
out:
    rm_tree(dir);
    return r;
}

// ---- sharded sets ----------------------------------------------------------------------
static zs_status write_one(const char *path, const char *name, float v) {
    zs_st_writer *w;
    ZS_TRY(zs_st_writer_new(&w));
    float x[2] = {v, -v};
    zs_tensor t = zs_tensor_make(x, ZS_F32, ZS_CPU, 1, (int64_t[1]){2});
    zs_status s = zs_st_writer_add(w, name, &t, ZS_ST_KEEP);
    if (!s) s = zs_st_writer_save(w, path);
    zs_st_writer_free(w);
    return s;
}

static zs_status open_count(const char *path, int *n) {
    zs_st *st;
    ZS_TRY(zs_st_open(&st, path));
    *n = zs_st_count(st);
    zs_st_close(st);
    return ZS_OK;
}

TEST(safetensors_sharded_index_and_folders) {
    char dir[64], p[256], q[256], idx[256];
    CHECK(make_tmpdir(dir, sizeof dir) == 0, "mkdtemp");
    zt_result r = ZT_FAIL;
    zs_st *st = NULL;
    int n = 0;
    snprintf(p, sizeof p, "%s/model-00001-of-00002.safetensors", dir);
    snprintf(q, sizeof q, "%s/model-00002-of-00002.safetensors", dir);
    REQ(!write_one(p, "a.weight", 1) && !write_one(q, "b.weight", 2), "%s", zs_errmsg());
    // Without an index: a folder of several files opens them all.
    REQ(!open_count(dir, &n) && n == 2, "folder of shards: %s", zs_errmsg());
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    const char *good = "{\"metadata\": {\"total_size\": 16}, \"weight_map\": {\"a.weight\": "
                       "\"model-00001-of-00002.safetensors\", \"b.weight\": \"model-00002-of-00002.safetensors\"}}";
    REQ(!write_bytes(idx, good, strlen(good)), "index");
    REQ(!zs_st_open(&st, idx), "index: %s", zs_errmsg());
    REQ(zs_st_count(st) == 2 && zs_st_file_count(st) == 2, "index count");
    float v[2];
    REQ(!zs_st_read_f32(st, "b.weight", v, 2) && v[0] == 2 && v[1] == -2, "b.weight values");
    REQ(zs_st_find(st, "b.weight")->file == 1 && strstr(zs_st_file_path(st, 1), "00002"), "file index");
    zs_st_close(st);
    st = NULL;
    REQ(!open_count(dir, &n) && n == 2, "folder with index: %s", zs_errmsg());
    // Index disagreeing with the shards.
    const char *wrong = "{\"weight_map\": {\"a.weight\": \"model-00002-of-00002.safetensors\", "
                        "\"b.weight\": \"model-00002-of-00002.safetensors\"}}";
    REQ(!write_bytes(idx, wrong, strlen(wrong)), "index");
    REQ(open_count(idx, &n) == ZS_EFORMAT && strstr(zs_errmsg(), "a.weight"), "wrong shard: %s", zs_errmsg());
    const char *missing = "{\"weight_map\": {\"a.weight\": \"model-00001-of-00002.safetensors\", "
                          "\"c.weight\": \"model-00002-of-00002.safetensors\"}}";
    REQ(!write_bytes(idx, missing, strlen(missing)), "index");
    REQ(open_count(idx, &n) == ZS_EFORMAT && strstr(zs_errmsg(), "c.weight"), "missing: %s", zs_errmsg());
    const char *twice = "{\"weight_map\": {\"a.weight\": \"model-00001-of-00002.safetensors\", \"a.weight\": "
                        "\"model-00001-of-00002.safetensors\", \"b.weight\": \"model-00002-of-00002.safetensors\"}}";
    REQ(!write_bytes(idx, twice, strlen(twice)), "index");
    REQ(open_count(idx, &n) == ZS_EFORMAT && strstr(zs_errmsg(), "'a.weight' twice"), "twice: %s", zs_errmsg());
    const char *unmapped = "{\"weight_map\": {\"a.weight\": \"model-00001-of-00002.safetensors\"}}";
    REQ(!write_bytes(idx, unmapped, strlen(unmapped)), "index");
    REQ(open_count(idx, &n) == 0 && n == 1, "only the mapped shard is opened: %s", zs_errmsg());
    const char *escape = "{\"weight_map\": {\"a.weight\": \"../x.safetensors\"}}";
    REQ(!write_bytes(idx, escape, strlen(escape)), "index");
    REQ(open_count(idx, &n) == ZS_EFORMAT && strstr(zs_errmsg(), "../x"), "path escape: %s", zs_errmsg());
    REQ(!write_bytes(idx, "{\"weight_map\": 3}", 17), "index");
    REQ(open_count(idx, &n) == ZS_EFORMAT && strstr(zs_errmsg(), "weight_map"), "%s", zs_errmsg());
    unlink(idx);
    // The same name in two files (no index) is an error naming both.
    REQ(!write_one(q, "a.weight", 3), "%s", zs_errmsg());
    REQ(open_count(dir, &n) == ZS_EFORMAT && strstr(zs_errmsg(), "a.weight") && strstr(zs_errmsg(), "00001") &&
        strstr(zs_errmsg(), "00002"), "duplicate across shards: %s", zs_errmsg());
    // Variants: X.fp16.safetensors is skipped when X.safetensors is there.
    unlink(p);
    unlink(q);
    snprintf(p, sizeof p, "%s/diffusion_pytorch_model.safetensors", dir);
    snprintf(q, sizeof q, "%s/diffusion_pytorch_model.fp16.safetensors", dir);
    REQ(!write_one(p, "a.weight", 1) && !write_one(q, "a.weight", 1), "%s", zs_errmsg());
    REQ(!zs_st_open(&st, dir) && zs_st_file_count(st) == 1 && !strstr(zs_st_file_path(st, 0), "fp16"), "variant: %s",
        zs_errmsg());
    zs_st_close(st);
    st = NULL;
    unlink(p);
    unlink(q);
    REQ(open_count(dir, &n) == ZS_EIO && strstr(zs_errmsg(), "no *.safetensors"), "empty folder: %s", zs_errmsg());
    r = ZT_PASS;
out:
    zs_st_close(st);
    rm_tree(dir);
    return r;
}

// ---- malformed files -------------------------------------------------------------------
typedef struct {
    const char *what;
    const char *header;  // NULL: use raw/raw_len
    size_t data_len;
    const char *raw;
    size_t raw_len;
    zs_status code;
    const char *must[2];  // substrings the error must contain
} bad_case;

#define T1(n, dt, sh, b, e) "\"" n "\":{\"dtype\":\"" dt "\",\"shape\":" sh ",\"data_offsets\":[" #b "," #e "]}"
static const bad_case k_bad[] = {
    {"empty file", NULL, 0, "", 0, ZS_EFORMAT, {"0 bytes", "too small"}},
    {"truncated prefix", NULL, 0, "\x10\0\0\0", 4, ZS_EFORMAT, {"too small", NULL}},
    {"header length past end", NULL, 0, "\x40\0\0\0\0\0\0\0{}", 10, ZS_EFORMAT, {"header length 64", "past the end"}},
    {"huge header length", NULL, 0, "\0\0\0\0\0\0\0\x01{}", 10, ZS_EFORMAT, {"over the", NULL}},
    {"truncated data", "{" T1("w", "F32", "[4]", 0, 16) "}", 8, NULL, 0, ZS_EFORMAT, {"'w'", "out of bounds"}},
    {"bad json", "{\"a\":{\"dtype\":", 0, NULL, 0, ZS_EFORMAT, {"not valid JSON", NULL}},
    {"trailing garbage", "{}xx", 0, NULL, 0, ZS_EFORMAT, {"trailing", NULL}},
    {"NUL in header", NULL, 0, "\3\0\0\0\0\0\0\0{}\0", 11, ZS_EFORMAT, {"control character", NULL}},
    {"bad utf-8", "{\"\xff\":1}", 0, NULL, 0, ZS_EFORMAT, {"UTF-8", NULL}},
    {"non-object header", "[1, 2]", 0, NULL, 0, ZS_EFORMAT, {"not a JSON object", NULL}},
    {"string header", "\"x\"", 0, NULL, 0, ZS_EFORMAT, {"not a JSON object", NULL}},
    {"unknown dtype", "{" T1("w", "F33", "[2]", 0, 8) "}", 8, NULL, 0, ZS_EFORMAT, {"'w'", "unknown dtype 'F33'"}},
    {"unsupported dtype", "{" T1("w", "F8_E8M0", "[2]", 0, 2) "}", 2, NULL, 0, ZS_EUNSUPPORTED, {"'w'", "F8_E8M0"}},
    {"size mismatch", "{" T1("w", "F32", "[3]", 0, 8) "}", 8, NULL, 0, ZS_EFORMAT, {"'w'", "needs 12 bytes"}},
    {"offsets out of bounds", "{" T1("w", "F32", "[2]", 8, 16) "}", 8, NULL, 0, ZS_EFORMAT, {"'w'", "out of bounds"}},
    {"begin > end", "{" T1("w", "F32", "[0]", 8, 0) "}", 8, NULL, 0, ZS_EFORMAT, {"'w'", "begin > end"}},
    {"overlap", "{" T1("a", "F32", "[2]", 0, 8) "," T1("b", "F32", "[1]", 4, 8) "}", 8, NULL, 0, ZS_EFORMAT,
     {"'b'", "overlap tensor 'a'"}},
    {"same range twice", "{" T1("a", "F32", "[2]", 0, 8) "," T1("b", "F32", "[2]", 0, 8) "}", 8, NULL, 0,
     ZS_EFORMAT, {"overlap", NULL}},
    {"gap between tensors", "{" T1("a", "F32", "[1]", 0, 4) "," T1("b", "F32", "[1]", 8, 12) "}", 12, NULL, 0,
     ZS_EFORMAT, {"gap of 4", "'b'"}},
    {"unreferenced tail", "{" T1("a", "F32", "[1]", 0, 4) "}", 8, NULL, 0, ZS_EFORMAT, {"data section has 8", NULL}},
    {"duplicate names", "{" T1("a", "U8", "[1]", 0, 1) "," T1("a", "U8", "[1]", 1, 2) "}", 2, NULL, 0, ZS_EFORMAT,
     {"duplicate tensor name 'a'", NULL}},
    {"negative shape", "{" T1("w", "F32", "[-2]", 0, 8) "}", 8, NULL, 0, ZS_EFORMAT, {"'w'", "negative"}},
    {"fractional shape", "{" T1("w", "F32", "[2.5]", 0, 8) "}", 8, NULL, 0, ZS_EFORMAT, {"'w'", "not an integer"}},
    {"2.0 in shape", "{" T1("w", "F32", "[2.0]", 0, 8) "}", 8, NULL, 0, ZS_EFORMAT, {"'w'", "2.0, not an integer"}},
    {"exponent in offsets", "{" T1("w", "F32", "[2]", 0, 8e0) "}", 8, NULL, 0, ZS_EFORMAT, {"'w'", "8e0"}},
    {"huge dim", "{" T1("w", "F32", "[4611686018427387904,4]", 0, 8) "}", 8, NULL, 0, ZS_EFORMAT, {"'w'", "over 2^53"}},
    {"string in shape", "{" T1("w", "F32", "[\"2\"]", 0, 8) "}", 8, NULL, 0, ZS_EFORMAT, {"'w'", "integers"}},
    {"shape not a list", "{" T1("w", "F32", "2", 0, 8) "}", 8, NULL, 0, ZS_EFORMAT, {"'w'", "shape is not a list"}},
    {"too many dims", "{" T1("w", "F32", "[1,1,1,1,1,1,2]", 0, 8) "}", 8, NULL, 0, ZS_EUNSUPPORTED, {"'w'", "7 dims"}},
    {"shape overflow", "{" T1("w", "F32", "[4294967296,4294967296]", 0, 8) "}", 8, NULL, 0, ZS_EFORMAT,
     {"'w'", "overflow"}},
    {"negative offset", "{" T1("w", "F32", "[2]", -8, 0) "}", 8, NULL, 0, ZS_EFORMAT, {"'w'", "negative"}},
    {"offsets not a pair", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8, NULL, 0,
     ZS_EFORMAT, {"'w'", "data_offsets"}},
    {"missing field", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, NULL, 0, ZS_EFORMAT,
     {"'w'", "missing field 'data_offsets'"}},
    {"entry not an object", "{\"w\":[1,2]}", 0, NULL, 0, ZS_EFORMAT, {"'w'", "not an object"}},
    {"dtype not a string", "{" T1("w", "F32", "[2]", 0, 8) ",\"v\":{\"dtype\":4,\"shape\":[],\"data_offsets\":[8,8]}}",
     8, NULL, 0, ZS_EFORMAT, {"'v'", "dtype is not a string"}},
    {"metadata not strings", "{\"__metadata__\":{\"k\":1}}", 0, NULL, 0, ZS_EFORMAT, {"__metadata__", "'k'"}},
    {"metadata not object", "{\"__metadata__\":[\"k\"]}", 0, NULL, 0, ZS_EFORMAT, {"__metadata__", NULL}},
    {"metadata twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, NULL, 0, ZS_EFORMAT, {"__metadata__ twice", NULL}},
    {"metadata key twice", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, NULL, 0, ZS_EFORMAT, {"'k' twice", NULL}},
    {"header-only without the flag", "{\"__metadata__\":{\"zsmlc_header_only\":\"1\"}," T1("w", "F32", "[2]", 0, 8) "}",
     0, NULL, 0, ZS_EFORMAT, {"'w'", "out of bounds"}},
};

static const char *k_good[] = {
    "{}",
    "  {\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}   \n",
    "{\"__metadata__\":null," T1("a", "F16", "[0,3]", 0, 0) "," T1("b", "BF16", "[1]", 0, 2) "}",
    "{" T1("a", "F32", "[1]", 0, 4) "," T1("z", "I8", "[0]", 4, 4) "," T1("b", "I8", "[2]", 4, 6) "}",
    "{\"a\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[0,2],\"extra\":{\"x\":[1.5]}}}",
};
static const size_t k_good_data[] = {0, 1, 2, 6, 2};

TEST(safetensors_malformed_cases) {
    char dir[64], path[128];
    CHECK(make_tmpdir(dir, sizeof dir) == 0, "mkdtemp");
    zt_result r = ZT_FAIL;
    for (size_t i = 0; i < sizeof k_bad / sizeof *k_bad; i++) {
        const bad_case *c = &k_bad[i];
        size_t size;
        uint8_t *buf = c->header ? build(c->header, c->data_len, &size) : NULL;
        const uint8_t *p = buf ? buf : (const uint8_t *)c->raw;
        if (!buf) size = c->raw_len;
        // From a file, so the error must also name the file.
        snprintf(path, sizeof path, "%s/case%02zu.safetensors", dir, i);
        int wr = write_bytes(path, p, size);
        zs_st *st = NULL;
        zs_status s = wr ? ZS_EIO : zs_st_open(&st, path);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", zs_errmsg());
        zs_st_close(st);
        zs_st_entry *e;
        int n;
        char *meta;
        zs_status s2 = zs_st_parse(p, size, "mem", &e, &n, &meta);
        if (!s2) zs_st_free_entries(e, n, meta);
        free(buf);
        REQ(s == c->code && s2 == c->code, "%s: got %s / %s, want %s: %s", c->what, zs_status_name(s),
            zs_status_name(s2), zs_status_name(c->code), msg);
        REQ(strstr(msg, path), "%s: error does not name the file: %s", c->what, msg);
        for (int k = 0; k < 2; k++)
            REQ(!c->must[k] || strstr(msg, c->must[k]), "%s: error lacks \"%s\": %s", c->what, c->must[k], msg);
    }
    for (size_t i = 0; i < sizeof k_good / sizeof *k_good; i++) {
        size_t size;
        uint8_t *buf = build(k_good[i], k_good_data[i], &size);
        zs_st_entry *e;
        int n;
        char *meta;
        zs_status s = zs_st_parse(buf, size, "mem", &e, &n, &meta);
        free(buf);
        REQ(!s, "valid case %zu rejected: %s", i, zs_errmsg());
        zs_st_free_entries(e, n, meta);
    }
    r = ZT_PASS;
out:
    rm_tree(dir);
    return r;
}

TEST(safetensors_header_only_flag) {
    const char *h = "{\"__metadata__\":{\"zsmlc_header_only\":\"1\"}," T1("w", "F32", "[2,2]", 0, 16) "}";
    size_t size;
    uint8_t *buf = build(h, 0, &size);
    zs_st_entry *e;
    int n;
    char *meta;
    zs_status s = zs_st_parse_ex(buf, size, "mem", ZS_ST_ALLOW_HEADER_ONLY, &e, &n, &meta);
    CHECK(!s && n == 1 && e[0].data == NULL && e[0].end == 16, "header-only parse: %s", zs_errmsg());
    CHECK(meta && strstr(meta, "zsmlc_header_only"), "metadata json");
    zs_st_free_entries(e, n, meta);
    free(buf);
    // The marker with a data section is contradictory; without the marker the flag changes nothing.
    buf = build(h, 16, &size);
    s = zs_st_parse_ex(buf, size, "mem", ZS_ST_ALLOW_HEADER_ONLY, &e, &n, &meta);
    free(buf);
    CHECK(s == ZS_EFORMAT && strstr(zs_errmsg(), "data section"), "%s", zs_errmsg());
    buf = build("{" T1("w", "F32", "[2,2]", 0, 16) "}", 0, &size);
    s = zs_st_parse_ex(buf, size, "mem", ZS_ST_ALLOW_HEADER_ONLY, &e, &n, &meta);
    free(buf);
    CHECK(s == ZS_EFORMAT && strstr(zs_errmsg(), "out of bounds"), "%s", zs_errmsg());
    // Gaps are still errors in header-only files.
    buf = build("{\"__metadata__\":{\"zsmlc_header_only\":\"1\"}," T1("a", "F32", "[1]", 0, 4) "," T1("b", "F32", "[1]", 8, 12) "}", 0, &size);
    s = zs_st_parse_ex(buf, size, "mem", ZS_ST_ALLOW_HEADER_ONLY, &e, &n, &meta);
    free(buf);
    CHECK(s == ZS_EFORMAT && strstr(zs_errmsg(), "gap"), "%s", zs_errmsg());
    return ZT_PASS;
}

// ---- fuzz entry ------------------------------------------------------------------------
TEST(safetensors_fuzz_corpus) {
    int n = zt_replay_corpus("fuzz_safetensors", zs_fuzz_safetensors);
    CHECK(n >= 5, "only %d corpus files", n);
    return ZT_PASS;
}

// Deterministic mutations of a valid file (truncations, byte flips): must never crash.
TEST(safetensors_fuzz_mutations) {
    char path[512];
    zt_fixture_path("safetensors/python_written.safetensors", path, sizeof path);
    FILE *f = fopen(path, "rb");
    CHECK(f, "open %s", path);
    uint8_t src[1024];
    size_t n = fread(src, 1, sizeof src, f);
    fclose(f);
    for (size_t len = 0; len <= n; len++) {
        uint8_t *b = malloc(len ? len : 1);
        memcpy(b, src, len);
        zs_fuzz_safetensors(b, len);
        free(b);
    }
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int it = 0; it < 4000; it++) {
        uint8_t *b = malloc(n);
        memcpy(b, src, n);
        for (int k = 0; k < 1 + it % 3; k++) {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            size_t at = (size_t)(x % n);
            static const uint8_t sub[] = {'0', '9', '-', '.', '"', '{', '}', '[', ']', ',', ':', 0xff, 0, 'e'};
            b[at] = (x >> 32) & 1 ? sub[(x >> 40) % sizeof sub] : (uint8_t)(b[at] ^ (1u << ((x >> 48) & 7)));
        }
        zs_fuzz_safetensors(b, n);
        free(b);
    }
    return ZT_PASS;
}

// ---- CLI -------------------------------------------------------------------------------
static int run_cmd(const char *cmd) {
    int rc = system(cmd);
    return rc == -1 || !WIFEXITED(rc) ? -1 : WEXITSTATUS(rc);
}

TEST(safetensors_cli_inspect) {
    const char *bin = getenv("ZSMLC_BIN");
    if (!bin || !*bin) bin = access("build/zsmlc", X_OK) == 0 ? "build/zsmlc" : NULL;
    if (!bin) SKIP("no zsmlc binary (set ZSMLC_BIN or build build/zsmlc)");
    char dir[64], cmd[1024], fix[512];
    CHECK(make_tmpdir(dir, sizeof dir) == 0, "mkdtemp");
    zt_result r = ZT_FAIL;
    size_t size;
    uint8_t *bad = build("{" T1("w", "F33", "[2]", 0, 8) "}", 8, &size);
    char p[128], unet[160];
    snprintf(p, sizeof p, "%s/bad.safetensors", dir);
    int wr = write_bytes(p, bad, size);
    free(bad);
    REQ(!wr, "write");
    snprintf(cmd, sizeof cmd, "%s inspect %s >%s/out.txt 2>%s/err.txt", bin, p, dir, dir);
    REQ(run_cmd(cmd) == 1, "malformed file: want exit 1 (%s)", cmd);
    snprintf(p, sizeof p, "%s/err.txt", dir);
    FILE *f = fopen(p, "r");
    char err[1024] = {0};
    if (f) { size_t k = fread(err, 1, sizeof err - 1, f); err[k] = 0; fclose(f); }
    REQ(strstr(err, "F33") && strstr(err, "zsmlc inspect"), "stderr: %s", err);
    snprintf(cmd, sizeof cmd, "%s inspect %s >/dev/null 2>&1", bin, zt_fixture_path("safetensors/python_written.safetensors", fix, sizeof fix));
    REQ(run_cmd(cmd) == 0, "valid file: %s", cmd);
    snprintf(cmd, sizeof cmd, "%s inspect --json --file-order %s >/dev/null 2>&1", bin, fix);
    REQ(run_cmd(cmd) == 0, "--json: %s", cmd);
    snprintf(cmd, sizeof cmd, "%s inspect >/dev/null 2>&1", bin);
    REQ(run_cmd(cmd) == 2, "no argument: want usage exit 2");
    // A diffusers-style root: no weights itself, one subfolder with some.
    snprintf(unet, sizeof unet, "%s/root/unet", dir);
    snprintf(p, sizeof p, "%s/root", dir);
    REQ(mkdir(p, 0755) == 0 && mkdir(unet, 0755) == 0, "mkdir");
    strcat(unet, "/diffusion_pytorch_model.safetensors");
    REQ(!write_one(unet, "conv_in.weight", 1), "%s", zs_errmsg());
    snprintf(cmd, sizeof cmd, "%s inspect %s > %s/out.txt 2>&1", bin, p, dir);
    REQ(run_cmd(cmd) == 0, "diffusers root: %s", cmd);
    snprintf(p, sizeof p, "%s/out.txt", dir);
    f = fopen(p, "r");
    char out[4096] = {0};
    if (f) { size_t k = fread(out, 1, sizeof out - 1, f); out[k] = 0; fclose(f); }
    REQ(strstr(out, "== unet/") && strstr(out, "conv_in.weight"), "output: %s", out);
    r = ZT_PASS;
out:
    rm_tree(dir);
    return r;
}

// Loading into device memory: same-dtype copy and converting copy (host staging).
GPU_TEST(safetensors_load_to_cuda) {
    char dir[64], path[128];
    CHECK(make_tmpdir(dir, sizeof dir) == 0, "mkdtemp");
    snprintf(path, sizeof path, "%s/g.safetensors", dir);
    float x[18], got[12];
    zt_fill_uniform(x, 18, 7, -2, 2);
    zs_status s = write_set(path, ZS_F16, x, 18);
    zs_st *st = NULL;
    if (!s) s = zs_st_open(&st, path);
    rm_tree(dir);  // the mapping stays valid after unlink
    CHECK_OK(s);
    void *d = NULL;
    int64_t s2[2] = {3, 4};
    zt_result r = ZT_FAIL;
    REQ(!zs_malloc(&d, 12 * sizeof(float), ZS_CUDA, "test"), "%s", zs_errmsg());
    for (int k = 0; k < 2; k++) {
        zs_dtype dt = k ? ZS_F16 : ZS_F32;
        zs_tensor t = zs_tensor_make(d, dt, ZS_CUDA, 2, s2);
        uint8_t host[48];
        REQ(!zs_st_load(st, "layer.weight", &t), "%s", zs_errmsg());
        REQ(!zs_memcpy(host, ZS_CPU, d, ZS_CUDA, 12 * zs_dtype_size(dt)), "%s", zs_errmsg());
        REQ(!zs_convert(got, ZS_F32, host, dt, 12), "%s", zs_errmsg());
        for (int i = 0; i < 12; i++) REQ(got[i] == round_to(x[i], ZS_F16), "%s [%d]", zs_dtype_name(dt), i);
    }
    r = ZT_PASS;
out:
    zs_free(d, ZS_CUDA);
    zs_st_close(st);
    return r;
}
