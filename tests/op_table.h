// The op case table (in the spirit of ggml's test-backend-ops), shared by the op tests
// (tests/test_ops*.c) and the benchmark (bench/bench_ops.c): each case names an op and its
// sizes; zt_op_inst allocates one case's tensors on a device, fills them with deterministic
// random data and runs forward / backward uniformly. Needs only the library (no test.h).
#ifndef ZT_OP_TABLE_H
#define ZT_OP_TABLE_H
#include <stddef.h>
#include <stdint.h>
#include "engine/tensor.h"

typedef enum {
    ZT_OP_LINEAR = 0, ZT_OP_LAYERNORM, ZT_OP_SOFTMAX, ZT_OP_GELU, ZT_OP_GELU_TANH, ZT_OP_QUICKGELU, ZT_OP_ADD,
    ZT_OP_EMBEDDING,
    ZT_OP_FAMILY,  // the case belongs to an op family (c->fam), defined in its own tests/op_fam_*.c
    ZT_OP_KIND_COUNT
} zt_op_kind;

typedef struct zt_op_family zt_op_family;

// zt_op_case.flags; ZT_CASE_BENCH_GPU_ONLY (with ZT_CASE_BENCH): too slow for the CPU, timed on CUDA only
enum { ZT_CASE_TEST = 1, ZT_CASE_BENCH = 2, ZT_CASE_BENCH_GPU_ONLY = 4 };

typedef struct {
    const char *name;  // unique; filters match it
    zt_op_kind kind;
    int64_t batch;     // > 1: leading dims [batch, rows / batch] instead of [rows]
    int64_t rows;      // N: rows after flattening (embedding: number of ids)
    int64_t cols;      // last dim: linear in, layernorm / softmax / elementwise C, embedding C
    int64_t out;       // linear: out features; embedding: vocab V
    int bias;          // linear: with bias
    float eps;         // layernorm
    int flags;         // ZT_CASE_TEST | ZT_CASE_BENCH
    const zt_op_family *fam;  // ZT_OP_FAMILY cases: their family
    int64_t p[8];             // ZT_OP_FAMILY cases: sizes and options, as the family defines
} zt_op_case;

extern const zt_op_case zt_op_cases[];  // the built-in kinds above
extern const int zt_op_ncases;
const char *zt_op_kind_name(zt_op_kind k);  // "linear", "layernorm", ...
// Every case: the built-in table, then each family's (tests/op_families.c lists families).
int zt_op_count(void);
const zt_op_case *zt_op_at(int i);
// "linear", ... or the family's name.
const char *zt_op_case_kind(const zt_op_case *c);

#define ZT_PAD 64  // sentinel bytes before and after every guarded buffer
enum { ZT_MAXT = 3, ZT_MAXBUF = 16 };

typedef struct {
    const zt_op_case *c;
    zs_device dev;
    zs_dtype dt;
    int nin;                         // float inputs with gradients: in[i] <-> din[i]
    zs_tensor in[ZT_MAXT], din[ZT_MAXT];
    const char *in_role[ZT_MAXT];    // "x", "w", "b", "a", "table"
    const char *din_role[ZT_MAXT];   // "dx", "dw", ...
    int nout;                        // out[0] = y; layernorm: out[1] = mean, out[2] = rstd (F32)
    zs_tensor out[ZT_MAXT];
    const char *out_role[ZT_MAXT];
    zs_tensor ids;                   // embedding: I32 ids
    int naux;                        // families: inputs without gradients (ids, masks, ...),
    zs_tensor aux[ZT_MAXT];          // filled on the host side and copied to the device as is
    zs_tensor dy;                    // upstream gradient, y's shape (also the "r" of L = sum(y * r))
    int nbuf;                        // raw allocations, for the guard checks and zt_op_free
    struct { char *base; size_t bytes; int guard; } buf[ZT_MAXBUF];
} zt_op_inst;

// Allocates every tensor of case c on dev (float tensors in dt; layer norm stats F32, ids
// I32). guard: ZT_PAD sentinel bytes around each buffer, and outputs start as sentinel
// (NaN) so an op that skips an element shows. On failure everything is freed.
zs_status zt_op_alloc(zt_op_inst *o, const zt_op_case *c, zs_device dev, zs_dtype dt, int guard);
void zt_op_free(zt_op_inst *o);
// Deterministic random inputs, ids and dy (per-op ranges, every parameter randomised);
// gradients zeroed.
zs_status zt_op_fill(zt_op_inst *o, uint64_t seed);
zs_status zt_op_zero_grads(zt_op_inst *o);
zs_status zt_op_forward(zt_op_inst *o);
zs_status zt_op_backward(zt_op_inst *o);  // layer norm / softmax read what the forward saved
// 1 if every guard region is intact; else 0 with the buffer named in why.
int zt_op_guards_ok(const zt_op_inst *o, char *why, size_t n);

// ---- op families: an op with its own case layout plugs in through these hooks ----------
// A family file (tests/op_fam_<name>.c) defines its cases (kind ZT_OP_FAMILY, fam set, sizes
// in p[]) and the hooks; tests/op_families.c lists it; tests/test_ops_<name>.c registers
// TEST(ops_fd_<name>) / GPU_TEST(ops_cuda_<name>) via zt_fd_family / zt_gpu_family.
struct zt_op_family {
    const char *name;
    const zt_op_case *cases;
    int ncases;
    double fd_h, fd_tol;                    // finite differences: relative step, tolerance
    double tol_f32, tol_bf16, tol_f16;      // CUDA vs CPU, every output and gradient
    // Allocates o's tensors with zt_alloc_tensor (o->c, o->dev, o->dt are set): nin / in
    // (+ in_role, din_role), nout / out (+ out_role; out[0] is y, the one L = sum(y * r)
    // reads), naux / aux; the runner then allocates din like in and dy like out[0].
    zs_status (*alloc)(zt_op_inst *o, int guard);
    zs_status (*fill)(zt_op_inst *o, uint64_t seed);  // inputs and aux (dy is the runner's)
    zs_status (*forward)(zt_op_inst *o);
    zs_status (*backward)(zt_op_inst *o);
    void (*cost)(const zt_op_case *c, int backward, size_t elt, double *flops, double *bytes);
    const char *(*shape_str)(const zt_op_case *c, char *buf, size_t n);
};
extern const zt_op_family *const zt_op_families[];  // NULL-terminated (tests/op_families.c)

// Building blocks for family hooks: a (guarded) tensor of o, and uniform [lo, hi) data
// from stream (seed, k).
zs_status zt_alloc_tensor(zt_op_inst *o, zs_tensor *t, zs_dtype dt, int ndim, const int64_t *shape, const char *role,
                          int guard);
zs_status zt_fill_tensor(zs_tensor *t, uint64_t seed, uint64_t k, float lo, float hi);

// Host F32 copies of any float tensor on any device, and back (converting dtypes).
zs_status zt_to_host_f32(const zs_tensor *t, float *dst);
zs_status zt_from_host_f32(zs_tensor *t, const float *src);

// Work of one call for the bench: flops (GEMM-like ops) and bytes moved (minimum traffic),
// for element size elt.
void zt_op_cost(const zt_op_case *c, int backward, size_t elt, double *flops, double *bytes);
// "x[37, 53] w[29, 53]" style description of the case's main tensors.
const char *zt_op_shape_str(const zt_op_case *c, char *buf, size_t n);

#endif
