// 2-D convolution on CUDA through cuDNN's legacy API (cudnnConvolutionForward /
// BackwardData / BackwardFilter), db through the deterministic channel sums of
// conv_common.cuh.
// - One cuDNN handle, created on first use, bound to the engine stream at every call.
// - Plans: descriptors and chosen algorithms cached by (dtype, geometry) in a small table
//   (CONV_PLANS entries, oldest replaced first); the backward algorithms are chosen on the
//   first backward of a plan. Not thread-safe: like every op, one host thread drives the
//   engine stream.
// - Algorithms: cudnnGetConvolution*Algorithm_v7 heuristics (no benchmarking), the first
//   candidate that succeeds, fits CONV_WS_CAP of workspace and, for the backward passes, is
//   deterministic (bitwise reproducible gradients) where cuDNN offers one (counted otherwise).
// - Math: compute type fp32 everywhere. F32 runs with CUDNN_FMA_MATH (no TF32: matches the
//   CPU at ~1e-5); BF16 / F16 with the candidate's math type (tensor cores where offered).
// - Workspace: cudaMallocAsync on the engine stream, freed (stream-ordered) after the call.
// - Bias: y is filled with b first and the convolution adds with beta = 1 (one rounding);
//   the backward passes accumulate with beta = 1 into dx and dw.
#include "conv_common.cuh"
#include "kernels/conv.h"

#define CONV_PLANS 128  // SD at 512 with CFG: ~31 UNet + ~13 VAE geometries (32 made decode evict UNet plans)
#define CONV_WS_CAP ((size_t)1 << 30)

enum { DIR_FWD = 0, DIR_BWD_DATA, DIR_BWD_FILTER };

typedef struct {
    int used;
    zs_dtype dt;
    zs_conv_geom g;
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd[3];  // one per direction: each carries its algorithm's math type
    int chosen[3], algo[3];
    size_t ws[3];
} conv_plan;

static cudnnHandle_t g_cudnn;
static conv_plan g_plans[CONV_PLANS];
static int g_next_plan;

static zs_status handle(cudnnHandle_t *h) {
    if (!g_cudnn) {
        cudnnHandle_t t = NULL;
        ZS_CUDNN_TRY(cudnnCreate(&t));
        g_cudnn = t;
    }
    ZS_CUDNN_TRY(cudnnSetStream(g_cudnn, zs_cuda_stream()));
    *h = g_cudnn;
    return ZS_OK;
}

static cudnnDataType_t cudnn_type(zs_dtype dt) {
    return dt == ZS_F16 ? CUDNN_DATA_HALF : dt == ZS_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}

static void plan_destroy(conv_plan *p) {
    if (p->xd) cudnnDestroyTensorDescriptor(p->xd);
    if (p->yd) cudnnDestroyTensorDescriptor(p->yd);
    if (p->wd) cudnnDestroyFilterDescriptor(p->wd);
    for (int d = 0; d < 3; d++)
        if (p->cd[d]) cudnnDestroyConvolutionDescriptor(p->cd[d]);
    memset(p, 0, sizeof *p);
}

static zs_status plan_init(conv_plan *p, zs_dtype dt, const zs_conv_geom *g) {
    const cudnnDataType_t t = cudnn_type(dt);
    p->dt = dt;
    p->g = *g;
    ZS_CUDNN_TRY(cudnnCreateTensorDescriptor(&p->xd));
    ZS_CUDNN_TRY(cudnnCreateTensorDescriptor(&p->yd));
    ZS_CUDNN_TRY(cudnnCreateFilterDescriptor(&p->wd));
    ZS_CUDNN_TRY(cudnnSetTensor4dDescriptor(p->xd, CUDNN_TENSOR_NCHW, t, (int)g->N, (int)g->Cin, (int)g->H, (int)g->W));
    ZS_CUDNN_TRY(cudnnSetTensor4dDescriptor(p->yd, CUDNN_TENSOR_NCHW, t, (int)g->N, (int)g->Cout, (int)g->Ho, (int)g->Wo));
    ZS_CUDNN_TRY(cudnnSetFilter4dDescriptor(p->wd, t, CUDNN_TENSOR_NCHW, (int)g->Cout, (int)(g->Cin / g->G), (int)g->KH,
                                            (int)g->KW));
    for (int d = 0; d < 3; d++) {
        ZS_CUDNN_TRY(cudnnCreateConvolutionDescriptor(&p->cd[d]));
        ZS_CUDNN_TRY(cudnnSetConvolution2dDescriptor(p->cd[d], (int)g->ph, (int)g->pw, (int)g->sh, (int)g->sw, 1, 1,
                                                     CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
        ZS_CUDNN_TRY(cudnnSetConvolutionGroupCount(p->cd[d], (int)g->G));
        ZS_CUDNN_TRY(cudnnSetConvolutionMathType(p->cd[d], dt == ZS_F32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH));
    }
    int n = 0, c = 0, h = 0, w = 0;
    ZS_CUDNN_TRY(cudnnGetConvolution2dForwardOutputDim(p->cd[0], p->xd, p->wd, &n, &c, &h, &w));
    if (n != g->N || c != g->Cout || h != g->Ho || w != g->Wo)
        return ZS_ERR(ZS_ECUDA, "conv2d: cuDNN's output dims [%d, %d, %d, %d] differ from [%lld, %lld, %lld, %lld]", n, c,
                      h, w, (long long)g->N, (long long)g->Cout, (long long)g->Ho, (long long)g->Wo);
    return ZS_OK;
}

// The cached plan of (dt, g), created (and an older one replaced) when missing.
static zs_status plan_get(conv_plan **out, zs_dtype dt, const zs_conv_geom *g) {
    for (int i = 0; i < CONV_PLANS; i++)
        if (g_plans[i].used && g_plans[i].dt == dt && !memcmp(&g_plans[i].g, g, sizeof *g)) {
            *out = &g_plans[i];
            return ZS_OK;
        }
    conv_plan *p = &g_plans[g_next_plan];
    g_next_plan = (g_next_plan + 1) % CONV_PLANS;
    plan_destroy(p);
    zs_status s = plan_init(p, dt, g);
    if (s) {
        plan_destroy(p);
        return s;
    }
    p->used = 1;
    *out = p;
    return ZS_OK;
}

// Whether a heuristic candidate is acceptable: it succeeded, is deterministic where asked,
// and for F32 runs in FMA math (entries offering tensor-op math would mean TF32).
static int usable(zs_dtype dt, cudnnStatus_t st, cudnnDeterminism_t det, cudnnMathType_t m, int need_det) {
    if (st != CUDNN_STATUS_SUCCESS) return 0;
    if (need_det && det != CUDNN_DETERMINISTIC) return 0;
    if (dt == ZS_F32 && (m == CUDNN_TENSOR_OP_MATH || m == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)) return 0;
    return 1;
}

static const char *k_dir[3] = {"forward", "backward data", "backward filter"};

// Compacts the usable entries of one direction's heuristic results into algo / math; their count.
template <typename Perf>
static int keep(zs_dtype dt, const Perf *r, int n, int need_det, int *algo, cudnnMathType_t *math) {
    int k = 0;
    for (int i = 0; i < n; i++)
        if (usable(dt, r[i].status, r[i].determinism, r[i].mathType, need_det)) algo[k] = (int)r[i].algo, math[k++] = r[i].mathType;
    return k;
}

static int g_nondet_plans;  // backward plans that had to take a non-deterministic algorithm

// Picks the first usable heuristic candidate of one direction that fits CONV_WS_CAP
// (p->chosen[dir] set when one is found).
static zs_status pick(cudnnHandle_t h, conv_plan *p, int dir, int need_det) {
    enum { MAXA = 16 };
    int n = 0, algo[MAXA];
    cudnnMathType_t math[MAXA];
    if (dir == DIR_FWD) {
        cudnnConvolutionFwdAlgoPerf_t r[MAXA];
        ZS_CUDNN_TRY(cudnnGetConvolutionForwardAlgorithm_v7(h, p->xd, p->wd, p->cd[dir], p->yd, MAXA, &n, r));
        n = keep(p->dt, r, n, need_det, algo, math);
    } else if (dir == DIR_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t r[MAXA];
        ZS_CUDNN_TRY(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, p->wd, p->yd, p->cd[dir], p->xd, MAXA, &n, r));
        n = keep(p->dt, r, n, need_det, algo, math);
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t r[MAXA];
        ZS_CUDNN_TRY(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, p->xd, p->yd, p->cd[dir], p->wd, MAXA, &n, r));
        n = keep(p->dt, r, n, need_det, algo, math);
    }
    for (int i = 0; i < n; i++) {
        // F32 stays in FMA math whatever the entry says (DEFAULT may allow TF32 on Ampere+).
        const cudnnMathType_t m = p->dt == ZS_F32 ? CUDNN_FMA_MATH : math[i];
        if (cudnnSetConvolutionMathType(p->cd[dir], m) != CUDNN_STATUS_SUCCESS) continue;
        size_t ws = 0;
        cudnnStatus_t st;
        if (dir == DIR_FWD)
            st = cudnnGetConvolutionForwardWorkspaceSize(h, p->xd, p->wd, p->cd[dir], p->yd,
                                                         (cudnnConvolutionFwdAlgo_t)algo[i], &ws);
        else if (dir == DIR_BWD_DATA)
            st = cudnnGetConvolutionBackwardDataWorkspaceSize(h, p->wd, p->yd, p->cd[dir], p->xd,
                                                              (cudnnConvolutionBwdDataAlgo_t)algo[i], &ws);
        else
            st = cudnnGetConvolutionBackwardFilterWorkspaceSize(h, p->xd, p->yd, p->cd[dir], p->wd,
                                                                (cudnnConvolutionBwdFilterAlgo_t)algo[i], &ws);
        if (st != CUDNN_STATUS_SUCCESS || ws > CONV_WS_CAP) continue;
        p->algo[dir] = algo[i];
        p->ws[dir] = ws;
        p->chosen[dir] = 1;
        break;
    }
    return ZS_OK;
}

int zs_conv2d_cuda_nondeterministic_plans(void) { return g_nondet_plans; }

// Chooses (once per plan and direction) the algorithm and its workspace size. A backward
// geometry for which cuDNN offers no deterministic algorithm takes a non-deterministic one
// rather than failing the run; zs_conv2d_cuda_nondeterministic_plans() counts them.
static zs_status choose(cudnnHandle_t h, conv_plan *p, int dir) {
    if (p->chosen[dir]) return ZS_OK;
    ZS_TRY(pick(h, p, dir, dir != DIR_FWD));
    if (!p->chosen[dir] && dir != DIR_FWD) {
        ZS_TRY(pick(h, p, dir, 0));
        g_nondet_plans += p->chosen[dir];
    }
    if (p->chosen[dir]) return ZS_OK;
    const zs_conv_geom *g = &p->g;
    return ZS_ERR(ZS_EUNSUPPORTED,
                  "conv2d %s: cuDNN offers no usable algorithm (%s) for x [%lld, %lld, %lld, %lld], w [%lld, %lld, "
                  "%lld, %lld], stride %lldx%lld, pad %lldx%lld, groups %lld",
                  k_dir[dir], zs_dtype_name(p->dt), (long long)g->N, (long long)g->Cin,
                  (long long)g->H, (long long)g->W, (long long)g->Cout, (long long)(g->Cin / g->G), (long long)g->KH,
                  (long long)g->KW, (long long)g->sh, (long long)g->sw, (long long)g->ph, (long long)g->pw,
                  (long long)g->G);
}

// y[n, c, s] = b[c], before the convolution adds with beta = 1.
template <typename T> __global__ void bias_fill_kernel(T *y, const T *b, long long C, long long S, long long n) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i < n) y[i] = b[(i / S) % C];
}

template <typename T> static zs_status bias_fill(void *y, const void *b, const zs_conv_geom *g) {
    const long long S = g->Ho * g->Wo, n = g->N * g->Cout * S;
    bias_fill_kernel<T><<<zs_blocks(n, 256), 256, 0, zs_cuda_stream()>>>((T *)y, (const T *)b, g->Cout, S, n);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

template <typename T> static zs_status db_acc(void *db, const void *dy, const zs_conv_geom *g) {
    return chansum_acc<T>(NULL, (T *)db, (const T *)dy, (const T *)NULL, NULL, NULL, 0.0f, g->N, g->Cout,
                          g->Ho * g->Wo);
}

static zs_status bias_fill_dt(void *y, const void *b, zs_dtype dt, const zs_conv_geom *g) {
    ZS_DISPATCH_DT("conv2d_fwd", dt, bias_fill<T_>(y, b, g));
}

static zs_status db_acc_dt(void *db, const void *dy, zs_dtype dt, const zs_conv_geom *g) {
    ZS_DISPATCH_DT("conv2d_bwd", dt, db_acc<T_>(db, dy, g));
}

// Runs one cuDNN call with a stream-ordered workspace of `bytes` (freed after it).
#define WITH_WS(bytes, call)                                                                          \
    do {                                                                                              \
        void *ws_ = NULL;                                                                             \
        const size_t wb_ = (bytes);                                                                   \
        if (wb_) ZS_CUDA_TRY(cudaMallocAsync(&ws_, wb_, zs_cuda_stream()));                           \
        cudnnStatus_t st_ = (call);                                                                   \
        cudaError_t fe_ = ws_ ? cudaFreeAsync(ws_, zs_cuda_stream()) : cudaSuccess;                   \
        if (st_ != CUDNN_STATUS_SUCCESS) return ZS_ERR(ZS_ECUDA, "%s: %s", #call, cudnnGetErrorString(st_)); \
        ZS_CUDA_TRY(fe_);                                                                             \
    } while (0)

extern "C" zs_status zs_conv2d_fwd_cuda(void *y, const void *x, const void *w, const void *b, zs_dtype dt,
                                        const zs_conv_geom *g) {
    cudnnHandle_t h = NULL;
    conv_plan *p = NULL;
    ZS_TRY(handle(&h));
    ZS_TRY(plan_get(&p, dt, g));
    ZS_TRY(choose(h, p, DIR_FWD));
    if (b) ZS_TRY(bias_fill_dt(y, b, dt, g));
    const float alpha = 1.0f, beta = b ? 1.0f : 0.0f;
    WITH_WS(p->ws[DIR_FWD], cudnnConvolutionForward(h, &alpha, p->xd, x, p->wd, w, p->cd[DIR_FWD],
                                                    (cudnnConvolutionFwdAlgo_t)p->algo[DIR_FWD], ws_, wb_, &beta,
                                                    p->yd, y));
    return ZS_OK;
}

extern "C" zs_status zs_conv2d_bwd_cuda(void *dx, void *dw, void *db, const void *dy, const void *x, const void *w,
                                        zs_dtype dt, const zs_conv_geom *g) {
    cudnnHandle_t h = NULL;
    conv_plan *p = NULL;
    ZS_TRY(handle(&h));
    ZS_TRY(plan_get(&p, dt, g));
    const float alpha = 1.0f, beta = 1.0f;  // accumulate
    if (dx) {
        ZS_TRY(choose(h, p, DIR_BWD_DATA));
        WITH_WS(p->ws[DIR_BWD_DATA],
                cudnnConvolutionBackwardData(h, &alpha, p->wd, w, p->yd, dy, p->cd[DIR_BWD_DATA],
                                             (cudnnConvolutionBwdDataAlgo_t)p->algo[DIR_BWD_DATA], ws_, wb_, &beta,
                                             p->xd, dx));
    }
    if (dw) {
        ZS_TRY(choose(h, p, DIR_BWD_FILTER));
        WITH_WS(p->ws[DIR_BWD_FILTER],
                cudnnConvolutionBackwardFilter(h, &alpha, p->xd, x, p->yd, dy, p->cd[DIR_BWD_FILTER],
                                               (cudnnConvolutionBwdFilterAlgo_t)p->algo[DIR_BWD_FILTER], ws_, wb_,
                                               &beta, p->wd, dw));
    }
    if (db) ZS_TRY(db_acc_dt(db, dy, dt, g));
    return ZS_OK;
}
