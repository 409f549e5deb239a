// File helpers shared by the tests that build bad or rearranged inputs from the fixtures.
#ifndef ZT_FILES_H
#define ZT_FILES_H
#include "engine/status.h"

// Copies the file src to dst (created or truncated).
zs_status zt_copy_file(const char *src, const char *dst);
// Copies the safetensors file src to dst, dropping tensor `drop`, replacing tensor `reshape`
// by a [7] F32 one, and adding a tensor `add` ([2] F32); any of the three may be NULL.
zs_status zt_st_rewrite(const char *src, const char *dst, const char *drop, const char *reshape, const char *add);

#endif
