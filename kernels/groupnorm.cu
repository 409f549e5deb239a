// Group norm (+ fused SiLU) on CUDA (formulas in groupnorm.h). One block per (n, g) group
// (contiguous in NCHW), fp32 statistics by a deterministic block reduction (fixed thread
// partition, warp shuffles, warp sums added in order), two passes for the variance.
// Backward: the same block per group computes per-channel sums of g and g xhat (g = dy or
// dy silu'(z), z recomputed from x, mean, rstd, w, b), writes them to [N, C] partials, then
// dx; a second kernel adds the partials over n in order into dw / db (no atomics: bitwise
// reproducible).
#include "act_math.h"
#include "cuda_ops.cuh"
extern "C" {
#include "kernels/unet_cuda.h"
}

// 512 threads: a block holds a whole group (2.36 M elements in the VAE decoder's last stage at
// 768x768: 128 / 32 channels x 768 x 768), so per-block memory parallelism matters; N G blocks
// (32 for one VAE image, 64 for the UNet's CFG pair) under-fill a 132-SM H100: splitting groups
// over several blocks is the known next step (unmeasured).
enum { GN_THREADS = 512 };

// Sum of v over the block, returned to every thread; sh holds GN_THREADS / 32 floats.
__device__ __forceinline__ float gn_block_sum(float v, float *sh) {
    v = warp_sum(v);
    __syncthreads();  // sh may still be read from the previous call
    if ((threadIdx.x & 31) == 0) sh[threadIdx.x >> 5] = v;
    __syncthreads();
    float t = 0;
    for (int k = 0; k < GN_THREADS / 32; k++) t += sh[k];
    return t;
}

template <typename T>
__global__ void __launch_bounds__(GN_THREADS) gn_fwd_kernel(T *y, float *mean, float *rstd, const T *x, const T *w,
                                                            const T *b, int C, int S, int G, float eps, int silu) {
    __shared__ float sh[GN_THREADS / 32];
    const long long ng = blockIdx.x;
    const int g = (int)(ng % G), Cg = C / G, M = Cg * S;
    const T *xg = x + ng * (long long)M;
    float s = 0;
    for (int i = threadIdx.x; i < M; i += GN_THREADS) s += to_f(xg[i]);
    const float m = gn_block_sum(s, sh) / (float)M;
    float v = 0;
    for (int i = threadIdx.x; i < M; i += GN_THREADS) {
        const float d = to_f(xg[i]) - m;
        v += d * d;
    }
    const float r = 1.0f / sqrtf(gn_block_sum(v, sh) / (float)M + eps);
    T *yg = y + ng * (long long)M;
    for (int i = threadIdx.x; i < M; i += GN_THREADS) {
        const int c = g * Cg + i / S;
        const float z = (to_f(xg[i]) - m) * r * to_f(w[c]) + to_f(b[c]);
        yg[i] = from_f<T>(silu ? zs_act_f(4, z) : z);
    }
    if (threadIdx.x == 0) {
        if (mean) mean[ng] = m;
        if (rstd) rstd[ng] = r;
    }
}

template <typename T>
__device__ __forceinline__ float gn_grad(const T *dy, const T *x, long long i, float m, float r, float wc, float bc,
                                         int silu, float *xh) {
    *xh = (to_f(x[i]) - m) * r;
    const float d = to_f(dy[i]);
    return silu ? d * zs_act_df(4, *xh * wc + bc) : d;
}

// pw, pb [N, C]: per-(n, c) sums of g xhat and g.
template <typename T>
__global__ void __launch_bounds__(GN_THREADS) gn_bwd_kernel(T *dx, float *pw, float *pb, const T *dy, const T *x,
                                                            const T *w, const T *b, const float *mean,
                                                            const float *rstd, int C, int S, int G, int silu) {
    __shared__ float sh[GN_THREADS / 32];
    const long long ng = blockIdx.x, n = ng / G;
    const int g = (int)(ng % G), Cg = C / G, M = Cg * S;
    const long long base = ng * (long long)M;
    const float m = mean[ng], r = rstd[ng];
    float A = 0, B = 0;  // sum g w, sum g w xhat over the group (the same in every thread)
    for (int cl = 0; cl < Cg; cl++) {
        const int c = g * Cg + cl;
        const float wc = to_f(w[c]), bc = silu ? to_f(b[c]) : 0.0f;
        float sb = 0, sw = 0, xh;
        for (int s = threadIdx.x; s < S; s += GN_THREADS) {
            const float gz = gn_grad(dy, x, base + (long long)cl * S + s, m, r, wc, bc, silu, &xh);
            sb += gz;
            sw += gz * xh;
        }
        sb = gn_block_sum(sb, sh);
        sw = gn_block_sum(sw, sh);
        if (threadIdx.x == 0) {
            pb[n * C + c] = sb;
            pw[n * C + c] = sw;
        }
        A += wc * sb;
        B += wc * sw;
    }
    if (!dx) return;
    const float a = A / (float)M, bb = B / (float)M;
    for (int i = threadIdx.x; i < M; i += GN_THREADS) {
        const int c = g * Cg + i / S;
        const float wc = to_f(w[c]), bc = silu ? to_f(b[c]) : 0.0f;
        float xh;
        const float gz = gn_grad(dy, x, base + i, m, r, wc, bc, silu, &xh);
        // __fmul_rn: no FMA contraction of g w against a (with one element per group the
        // exact g w - mean(g w) = 0 would otherwise come out as rounding noise times rstd).
        dx[base + i] = from_f<T>(to_f(dx[base + i]) + r * (__fmul_rn(gz, wc) - a - xh * bb));
    }
}

template <typename T>
__global__ void gn_param_kernel(T *dw, T *db, const float *pw, const float *pb, long long N, long long C) {
    const long long c = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (c >= C) return;
    float tw = 0, tb = 0;
    for (long long n = 0; n < N; n++) {
        tw += pw[n * C + c];
        tb += pb[n * C + c];
    }
    if (dw) dw[c] = from_f<T>(to_f(dw[c]) + tw);
    if (db) db[c] = from_f<T>(to_f(db[c]) + tb);
}

static zs_status gn_sizes(const char *op, int64_t N, int64_t C, int64_t S, int64_t G) {
    if (C * S > INT32_MAX - GN_THREADS || N * G > INT32_MAX)  // strided int loops must not wrap
        return ZS_ERR(ZS_EUNSUPPORTED, "%s on CUDA: C*S=%lld or N*G=%lld too large", op, (long long)(C * S),
                      (long long)(N * G));
    return ZS_OK;
}

template <typename T>
static zs_status gn_fwd(T *y, float *mean, float *rstd, const T *x, const T *w, const T *b, int64_t N, int64_t C,
                        int64_t S, int64_t G, float eps, int silu) {
    gn_fwd_kernel<T><<<(unsigned)(N * G), GN_THREADS, 0, zs_cuda_stream()>>>(y, mean, rstd, x, w, b, (int)C, (int)S,
                                                                            (int)G, eps, silu);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

template <typename T>
static zs_status gn_bwd(T *dx, T *dw, T *db, const T *dy, const T *x, const T *w, const T *b, const float *mean,
                        const float *rstd, int64_t N, int64_t C, int64_t S, int64_t G, int silu) {
    cudaStream_t s = zs_cuda_stream();
    float *part = NULL;
    ZS_CUDA_TRY(cudaMallocAsync((void **)&part, (size_t)(2 * N * C) * sizeof(float), s));
    float *pw = part, *pb = part + N * C;
    gn_bwd_kernel<T><<<(unsigned)(N * G), GN_THREADS, 0, s>>>(dx, pw, pb, dy, x, w, b, mean, rstd, (int)C, (int)S,
                                                             (int)G, silu);
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess && (dw || db)) {
        gn_param_kernel<T><<<zs_blocks(C, 256), 256, 0, s>>>(dw, db, pw, pb, N, C);
        e = cudaGetLastError();
    }
    cudaError_t f = cudaFreeAsync(part, s);
    if (e != cudaSuccess) return ZS_ERR(ZS_ECUDA, "groupnorm_bwd: %s", cudaGetErrorString(e));
    ZS_CUDA_TRY(f);
    return ZS_OK;
}

extern "C" zs_status zs_groupnorm_fwd_cuda(void *y, float *mean, float *rstd, const void *x, const void *w,
                                           const void *b, zs_dtype dt, int64_t N, int64_t C, int64_t S, int64_t G,
                                           float eps, int silu) {
    ZS_TRY(gn_sizes("groupnorm_fwd", N, C, S, G));
    ZS_DISPATCH_DT("groupnorm_fwd", dt,
                   gn_fwd<T_>((T_ *)y, mean, rstd, (const T_ *)x, (const T_ *)w, (const T_ *)b, N, C, S, G, eps, silu));
}

extern "C" zs_status zs_groupnorm_bwd_cuda(void *dx, void *dw, void *db, const void *dy, const void *x, const void *w,
                                           const void *b, const float *mean, const float *rstd, zs_dtype dt, int64_t N,
                                           int64_t C, int64_t S, int64_t G, int silu) {
    ZS_TRY(gn_sizes("groupnorm_bwd", N, C, S, G));
    ZS_DISPATCH_DT("groupnorm_bwd", dt,
                   gn_bwd<T_>((T_ *)dx, (T_ *)dw, (T_ *)db, (const T_ *)dy, (const T_ *)x, (const T_ *)w,
                              (const T_ *)b, mean, rstd, N, C, S, G, silu));
}
