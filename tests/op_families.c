// The op families of the case table (see op_table.h): one line per tests/op_fam_<name>.c.
#include "op_table.h"

extern const zt_op_family zt_fam_attention;
extern const zt_op_family zt_fam_patchify;  // tests/op_fam_patchify.c  // tests/op_fam_attention.c
extern const zt_op_family zt_fam_conv2d, zt_fam_batchnorm, zt_fam_avgpool, zt_fam_relu_silu;  // tests/op_fam_conv.c
extern const zt_op_family zt_fam_groupnorm, zt_fam_geglu, zt_fam_upsample, zt_fam_chanbias;  // tests/op_fam_unet.c

const zt_op_family *const zt_op_families[] = {
    &zt_fam_attention,
    &zt_fam_patchify,
    &zt_fam_conv2d,
    &zt_fam_batchnorm,
    &zt_fam_avgpool,
    &zt_fam_relu_silu,
    &zt_fam_groupnorm,
    &zt_fam_geglu,
    &zt_fam_upsample,
    &zt_fam_chanbias,
    NULL,
};
