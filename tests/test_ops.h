// The generic op checks of tests/test_ops.c, for family test files (tests/test_ops_<name>.c):
//   TEST(ops_fd_<name>) { return zt_fd_family(&zt_fam_<name>); }
//   GPU_TEST(ops_cuda_<name>) { return zt_gpu_family(&zt_fam_<name>); }
#ifndef ZT_TEST_OPS_H
#define ZT_TEST_OPS_H
#include "op_table.h"
#include "test.h"

zt_result zt_fd_family(const zt_op_family *f);   // FD, accumulation, full writes, guards (CPU)
zt_result zt_gpu_family(const zt_op_family *f);  // CUDA vs CPU in F32 / BF16 / F16, guards
#endif
