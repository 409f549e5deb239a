// The attention op family (tests/op_fam_attention.c), for its tests.
#ifndef ZT_OP_FAM_ATTENTION_H
#define ZT_OP_FAM_ATTENTION_H
#include "kernels/attention.h"
#include "op_table.h"

enum { ZT_ATTN_NFD = 8 };                           // the first cases: small, for finite differences
extern const zt_op_family zt_fam_attention;         // every case (listed in tests/op_families.c)
extern const zt_op_family zt_fam_attention_fd;      // the first ZT_ATTN_NFD cases
void zt_attn_params_of(const zt_op_case *c, zs_attn_params *p);  // heads, 1/sqrt(Dk), causal
#endif
