// Shared by the tensor-core attention kernels (attention_tc.cu forward, attention_tc_bwd.cu
// backward): block shape, tile strides, the tile loader, the P X product, the shared-memory
// opt-in.
#ifndef ZS_ATTENTION_TC_CUH
#define ZS_ATTENTION_TC_CUH
#include <mma.h>
#include <stdint.h>
#include "cuda_ops.cuh"

namespace {

using namespace nvcuda;

// 4 warps of 16 rows each: 64 query (or key) rows per block; 64-row tiles stream through.
constexpr int TC_WARPS = 4, TC_THREADS = 32 * TC_WARPS, TC_BQ = 16 * TC_WARPS, TC_BK = 64;

constexpr size_t tc_al(size_t b) { return (b + 127) & ~(size_t)127; }  // 128-byte aligned regions

// Row strides (elements) of the shared-memory tiles, padded against bank conflicts and kept at
// WMMA's ldm multiples (8 for 16-bit, 4 for fp32).
template <int DP> struct TcLd {
    static constexpr int LDH = DP + 8;     // 16-bit Q / K / V / dO tiles [64][DP]
    static constexpr int LDS = TC_BK + 4;  // fp32 rows of 64 scores
    static constexpr int LDP = TC_BK + 8;  // 16-bit rows of 64 (P, dS)
    static constexpr int LDO = DP + 4;     // fp32 sums [16][DP] (O, dQ, dK, dV)
};


// Rows [r0, r0 + R) of one head's slice g (row stride ldg, D valid columns) into shared s
// (row stride lds, DP columns); rows >= L and columns >= D are zero. vec: D, ldg multiples of 8
// and g 16-byte aligned, so whole 16-byte chunks are either inside or outside [0, D).
template <typename T, int R, int DP>
__device__ __forceinline__ void tile_in(T *s, int lds, const T *g, long long ldg, int r0, int L, int D, int vec) {
    if (vec) {
        constexpr int CV = DP / 8;
        for (int x = threadIdx.x; x < R * CV; x += TC_THREADS) {
            int r = x / CV, c = (x - r * CV) * 8;
            uint4 val = make_uint4(0u, 0u, 0u, 0u);
            if (r0 + r < L && c < D) val = *reinterpret_cast<const uint4 *>(g + (long long)(r0 + r) * ldg + c);
            *reinterpret_cast<uint4 *>(s + r * lds + c) = val;
        }
    } else {
        for (int x = threadIdx.x; x < R * DP; x += TC_THREADS) {
            int r = x / DP, c = x - r * DP;
            s[r * lds + c] = (r0 + r < L && c < D) ? g[(long long)(r0 + r) * ldg + c] : from_f<T>(0.f);
        }
    }
}

// sum (16 x DP, fp32, row stride LDO) += P X: P = 16 x 64 in the dtype (row stride LDP), X = a
// [64][LDH] tile.
template <typename T, int DP>
__device__ __forceinline__ void mm_acc_px(float *sum, const T *p, const T *x) {
    typedef TcLd<DP> C;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fp[TC_BK / 16];
#pragma unroll
    for (int kk = 0; kk < TC_BK / 16; kk++) wmma::load_matrix_sync(fp[kk], p + kk * 16, C::LDP);
#pragma unroll
    for (int n = 0; n < DP / 16; n++) {
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> f;
        wmma::load_matrix_sync(f, sum + n * 16, C::LDO, wmma::mem_row_major);
#pragma unroll
        for (int kk = 0; kk < TC_BK / 16; kk++) {
            wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fx;
            wmma::load_matrix_sync(fx, x + kk * 16 * C::LDH + n * 16, C::LDH);
            wmma::mma_sync(f, fp[kk], fx, f);
        }
        wmma::store_matrix_sync(sum + n * 16, f, C::LDO, wmma::mem_row_major);
    }
}

// 16-byte loads allowed: head dims and row strides multiples of 8, pointers 16-byte aligned.
inline int tc_vec(int Dk, int Dv, const void *a, const void *b, const void *c, const void *d) {
    return Dk % 8 == 0 && Dv % 8 == 0 &&
           ((uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)(d ? d : a)) % 16 == 0;
}

// Opts kernel f into `bytes` of dynamic shared memory; ZS_EUNSUPPORTED when the GPU has less
// (the caller falls back to the CUDA-core kernels).
inline zs_status tc_smem_optin(const void *f, size_t bytes, const char *op, int DP) {
    int dev = 0, maxb = 0;
    ZS_CUDA_TRY(cudaGetDevice(&dev));
    ZS_CUDA_TRY(cudaDeviceGetAttribute(&maxb, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (bytes > (size_t)maxb)
        return ZS_ERR(ZS_EUNSUPPORTED, "%s on tensor cores: head dim %d needs %zu bytes of shared memory, the device "
                      "allows %d", op, DP, bytes, maxb);
    ZS_CUDA_TRY(cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    return ZS_OK;
}

}  // namespace

// The head-dim tiers (max(Dk, Dv) rounded up): calls TIER(DP) for the first DP >= D.
#define ZS_TC_TIERS(D, TIER)                                                                             \
    do {                                                                                                 \
        if ((D) <= 16) TIER(16) else if ((D) <= 32) TIER(32) else if ((D) <= 48) TIER(48)                \
        else if ((D) <= 64) TIER(64) else if ((D) <= 80) TIER(80) else if ((D) <= 96) TIER(96)           \
        else if ((D) <= 128) TIER(128) else if ((D) <= 160) TIER(160)                                    \
    } while (0)

#endif
