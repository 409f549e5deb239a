// The op families of the case table (see op_table.h): one line per tests/op_fam_<name>.c.
#include "op_table.h"

const zt_op_family *const zt_op_families[] = {
    NULL,
};
