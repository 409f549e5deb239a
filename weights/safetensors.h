// safetensors: read (mmap), validate, convert, write (atomically), sharded checkpoints.
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape,
// data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data section.
//
// Acceptance matches the reference implementation (Python `safetensors` 0.8.0, Rust core),
// with these differences, all stricter:
//  - dims and offsets above 2^53 (JSON numbers are doubles in cJSON), no real file has them;
//  - duplicate tensor names and duplicate __metadata__ keys are errors (the reference keeps
//    the last one);
//  - more than ZS_MAX_DIMS dims, and dtypes zsmlc has no zs_dtype for (F4, F6_*, F8_E8M0,
//    F8_*FNUZ, C64), are ZS_EUNSUPPORTED.
// Header-only files (tests/fixtures/layouts): the real header of a checkpoint with
// "__metadata__": {"zsmlc_header_only": "1"} and no data section. They open only with
// ZS_ST_ALLOW_HEADER_ONLY; every check runs except "the tensors cover the data section".
#ifndef ZS_SAFETENSORS_H
#define ZS_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "engine/tensor.h"

#define ZS_ST_MAX_HEADER 100000000ull  // same limit as the reference implementation
#define ZS_ST_HEADER_ONLY_KEY "zsmlc_header_only"

enum {
    ZS_ST_ALLOW_HEADER_ONLY = 1,  // accept files marked header-only (entries get data == NULL)
};

typedef struct {
    const char *name;
    zs_dtype dtype;
    int ndim;
    int64_t shape[ZS_MAX_DIMS];
    uint64_t begin, end;  // byte offsets within the data section of its file
    const void *data;     // mapped bytes (NULL for header-only parses); may be unaligned
    int file;             // index of the shard it lives in
} zs_st_entry;

typedef struct zs_st zs_st;  // an opened set of tensors (one file, or all shards of an index)

// Opens a .safetensors file, a *.safetensors.index.json, or a folder holding either.
// Folder rule (no recursion): the *.safetensors.index.json if there is one (several: the
// one without a variant, e.g. model.safetensors.index.json over model.fp16...); else every
// *.safetensors except variants of another file there (X.fp16.safetensors is skipped when
// X.safetensors exists), checking no name is in two files. Everything is validated before
// it returns; errors name the file and tensor.
zs_status zs_st_open(zs_st **out, const char *path);
zs_status zs_st_open_ex(zs_st **out, const char *path, unsigned flags);
void zs_st_close(zs_st *st);
// Entries in file order: shards in index order, tensors in header order within a file.
int zs_st_count(const zs_st *st);
const zs_st_entry *zs_st_at(const zs_st *st, int i);
const zs_st_entry *zs_st_find(const zs_st *st, const char *name);  // NULL if absent
int zs_st_file_count(const zs_st *st);
const char *zs_st_file_path(const zs_st *st, int file);
int zs_st_is_header_only(const zs_st *st);                          // any file header-only
// __metadata__ value or NULL (the first file that has the key).
const char *zs_st_metadata(const zs_st *st, const char *key);
// Number of elements of an entry (validated not to overflow).
int64_t zs_st_numel(const zs_st_entry *e);

// Copies a tensor into dst (host or device), converting float dtypes; the shape must match
// dst's exactly (error names the tensor, both shapes).
zs_status zs_st_load(const zs_st *st, const char *name, zs_tensor *dst);
// Host float copy of any float tensor, converted to F32 (n must equal its element count).
zs_status zs_st_read_f32(const zs_st *st, const char *name, float *dst, int64_t n);

// Parses and validates a header from memory (file_size = total bytes incl. the 8-byte
// prefix and data). Used by zs_st_open and by the fuzzer. *entries is malloc'd (names too);
// *metadata_json (may be NULL to skip) gets the __metadata__ object as compact JSON, or NULL.
zs_status zs_st_parse(const uint8_t *buf, size_t file_size, const char *what, zs_st_entry **entries, int *count,
                      char **metadata_json);
zs_status zs_st_parse_ex(const uint8_t *buf, size_t file_size, const char *what, unsigned flags,
                         zs_st_entry **entries, int *count, char **metadata_json);
void zs_st_free_entries(zs_st_entry *entries, int count, char *metadata_json);
// zs_convert from memory that may be unaligned for its dtype (mapped data sections).
zs_status zs_st_convert_unaligned(void *dst, zs_dtype dst_t, const void *src, zs_dtype src_t, int64_t n);

// Fuzz entry (tests/fuzz/fuzz_safetensors.c and the test suite): parses data as a whole
// file, reads every small float tensor; returns 0. Must never crash or leak.
int zs_fuzz_safetensors(const uint8_t *data, size_t size);

// Writer: collects tensors (host or device, any dtype; copied at add time, so the source
// may be freed after; stored as given, or converted to store_dtype when both are float
// dtypes; ZS_ST_KEEP keeps the tensor's dtype). Save writes a temp file in the target's
// directory, fsyncs it and renames it over PATH: PATH is never half-written, and on any
// error the temp file is removed and an existing PATH is untouched. Tensors are stored in
// the Python writer's order (dtype, widest first, then name): the data stays aligned and
// the bytes equal what safetensors.torch.save_file writes for the same tensors/metadata.
#define ZS_ST_KEEP ZS_DTYPE_COUNT
typedef struct zs_st_writer zs_st_writer;
zs_status zs_st_writer_new(zs_st_writer **w);
zs_status zs_st_writer_meta(zs_st_writer *w, const char *key, const char *value);
zs_status zs_st_writer_add(zs_st_writer *w, const char *name, const zs_tensor *t, zs_dtype store_dtype);
zs_status zs_st_writer_save(zs_st_writer *w, const char *path);
void zs_st_writer_free(zs_st_writer *w);
// (Tests inject a failure between the write and the rename with zs_write_fault, engine/fileio.h.)

#endif
