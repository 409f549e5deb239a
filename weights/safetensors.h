// safetensors: read (mmap), validate, convert, write (atomically), sharded checkpoints.
// Format: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape,
// data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data section.
#ifndef ZS_SAFETENSORS_H
#define ZS_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "engine/tensor.h"

typedef struct {
    const char *name;
    zs_dtype dtype;
    int ndim;
    int64_t shape[ZS_MAX_DIMS];
    uint64_t begin, end;  // byte offsets within the data section of its file
    const void *data;     // mapped bytes (NULL for header-only parses)
    int file;             // index of the shard it lives in
} zs_st_entry;

typedef struct zs_st zs_st;  // an opened set of tensors (one file, or all shards of an index)

// Opens a .safetensors file, a *.safetensors.index.json, or a folder holding either
// (a folder with several .safetensors and no index opens them all). Everything is
// validated before it returns; errors name the file and tensor.
zs_status zs_st_open(zs_st **out, const char *path);
void zs_st_close(zs_st *st);
int zs_st_count(const zs_st *st);
const zs_st_entry *zs_st_at(const zs_st *st, int i);
const zs_st_entry *zs_st_find(const zs_st *st, const char *name);  // NULL if absent
const char *zs_st_file_path(const zs_st *st, int file);
const char *zs_st_metadata(const zs_st *st, const char *key);       // __metadata__ value or NULL

// Copies a tensor into dst (host or device), converting float dtypes; the shape must match
// dst's exactly (error names the tensor, both shapes).
zs_status zs_st_load(const zs_st *st, const char *name, zs_tensor *dst);
// Host float copy of any float tensor, converted to F32 (n must equal its element count).
zs_status zs_st_read_f32(const zs_st *st, const char *name, float *dst, int64_t n);

// Parses and validates a header from memory (file_size = total bytes incl. the 8-byte
// prefix and data). Used by zs_st_open and by the fuzzer. *entries is malloc'd.
zs_status zs_st_parse(const uint8_t *buf, size_t file_size, const char *what, zs_st_entry **entries, int *count,
                      char **metadata_json);
void zs_st_free_entries(zs_st_entry *entries, int count, char *metadata_json);

// Writer: collects tensors (host or device, any dtype; stored as given or converted to
// store_dtype when it is a float dtype != the tensor's), then writes PATH.tmp and renames
// it over PATH, so PATH is never half-written.
typedef struct zs_st_writer zs_st_writer;
zs_status zs_st_writer_new(zs_st_writer **w);
zs_status zs_st_writer_meta(zs_st_writer *w, const char *key, const char *value);
zs_status zs_st_writer_add(zs_st_writer *w, const char *name, const zs_tensor *t, zs_dtype store_dtype);
zs_status zs_st_writer_save(zs_st_writer *w, const char *path);
void zs_st_writer_free(zs_st_writer *w);

#endif
