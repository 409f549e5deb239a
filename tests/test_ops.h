// The generic op checks of tests/test_ops.c, for family test files (tests/test_ops_<name>.c):
//   TEST(ops_fd_<name>) { return zt_fd_family(&zt_fam_<name>); }
//   GPU_TEST(ops_cuda_<name>) { return zt_gpu_family(&zt_fam_<name>); }
#ifndef ZT_TEST_OPS_H
#define ZT_TEST_OPS_H
#include "op_table.h"
#include "test.h"
#include "weights/safetensors.h"

zt_result zt_fd_family(const zt_op_family *f);   // FD, accumulation, full writes, guards (CPU)
zt_result zt_gpu_family(const zt_op_family *f);  // CUDA vs CPU in F32 / BF16 / F16, guards
zt_result zt_cuda_bwd_twice_same(const zt_op_case *c);  // two CUDA backward runs: identical bits

// Reference fixtures (tests/ref_fixtures.c): tensors "<case>.<role>".
const zs_st_entry *zt_ref_find(const zs_st *st, const char *cs, const char *role);
// Loads into a CPU tensor (F32, or I32 ids), checking the shape first.
zs_status zt_ref_load(const zs_st *st, const char *cs, const char *role, zs_tensor *t);
// got vs "<case>.<role>" at norm-relative error tol.
zt_result zt_ref_cmp(const zs_st *st, const char *cs, const char *role, const zs_tensor *got, double tol);
// Case c (c->name = fixture case) on the CPU: loads inputs, aux, ids and r from the fixture,
// compares the first ncmp_out outputs, then every input gradient (after zeroed grads), guards.
zt_result zt_ref_run(const zs_st *st, const zt_op_case *c, int ncmp_out, double tol);
#endif
