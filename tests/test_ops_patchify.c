// Patchify (the ViT patch convolution's reshape): FD / accumulation / guards on the CPU,
// CUDA vs CPU in every dtype, through the op-family runner.
#include "op_table.h"
#include "test.h"
#include "test_ops.h"

extern const zt_op_family zt_fam_patchify;
TEST(ops_fd_patchify) { return zt_fd_family(&zt_fam_patchify); }
GPU_TEST(ops_cuda_patchify) { return zt_gpu_family(&zt_fam_patchify); }
