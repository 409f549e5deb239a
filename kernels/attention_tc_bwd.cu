// Attention backward on tensor cores (F16 / BF16, fp32 accumulation), FlashAttention-2 style
// without atomics (deterministic), from the forward's lse and delta = rowsum(dO * O) (computed
// by attention.cu). Formulas as attention.c: P = exp(scale S - lse), dS = P (dP - delta),
// dV += P^T dO, dK += scale dS^T Q, dQ += scale dS K; masked / out-of-range pairs have P = 0.
//
//   dkdv  grid (Lk / 64, H, B): the block's 64 keys (16 per warp) and values stay in shared
//         memory; query / dO tiles of 64 rows stream through. Per warp and tile:
//         S^T = K Q^T, dP^T = V dO^T (fp32, to shared) -> P^T, dS^T -> dV += P^T dO, then
//         dK += dS^T Q (P^T, then dS^T, rounded to the dtype for the products; the dK / dV
//         sums stay fp32 in shared memory: WMMA's register layout is opaque).
//   dq    grid (Lq / 64, H, B): the block's queries and dO stay; key / value tiles stream;
//         S and dP again, dS -> dQ += dS K.
// Causal blocks skip the tiles nobody in them can see.
#include "attention_tc.cuh"

namespace {

template <int DP> struct TcBwdCfg : TcLd<DP> {
    using TcLd<DP>::LDH, TcLd<DP>::LDS, TcLd<DP>::LDP, TcLd<DP>::LDO;
    static constexpr size_t tile = tc_al((size_t)64 * LDH * 2);
    static constexpr size_t t_off = 0;                                 // 4 tiles of 64 rows
    static constexpr size_t s_off = t_off + 4 * tile;                  // per warp [16][LDS]: S
    static constexpr size_t dp_off = s_off + tc_al((size_t)64 * LDS * 4);   // per warp: dP, then dS
    static constexpr size_t p_off = dp_off + tc_al((size_t)64 * LDS * 4);   // per warp [16][LDP]: P / dS (dtype)
    static constexpr size_t r_off = p_off + tc_al((size_t)64 * LDP * 2);    // lse[64], delta[64]
    static constexpr size_t a1_off = r_off + tc_al(128 * 4);                 // per warp [16][LDO]: dK (or dQ)
    static constexpr size_t a2_off = a1_off + tc_al((size_t)64 * LDO * 4);  // per warp: dV (dkdv only)
    static constexpr size_t smem_dq = a2_off;
    static constexpr size_t smem_dkdv = a2_off + tc_al((size_t)64 * LDO * 4);
};

// acc (16 x 64, fp32, row stride LDS) = A B^T: A = the warp's 16 rows of tile a, B = the 64 rows
// of tile b (both [64][LDH] in the dtype, first DP columns).
template <typename T, int DP>
__device__ __forceinline__ void mm_abt(float *acc, const T *a, const T *b) {
    typedef TcBwdCfg<DP> C;
#pragma unroll
    for (int n = 0; n < TC_BK / 16; n++) {
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> f;
        wmma::fill_fragment(f, 0.f);
#pragma unroll
        for (int d = 0; d < DP / 16; d++) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
            wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb;
            wmma::load_matrix_sync(fa, a + d * 16, C::LDH);
            wmma::load_matrix_sync(fb, b + n * 16 * C::LDH + d * 16, C::LDH);
            wmma::mma_sync(f, fa, fb, f);
        }
        wmma::store_matrix_sync(acc + n * 16, f, C::LDS, wmma::mem_row_major);
    }
}

// ls / ds [64] = lse / delta of query rows q0.. (0 past Lq, where P is masked anyway).
__device__ __forceinline__ void rows_in(float *ls, float *ds, const float *lh, const float *dh, int q0, int Lq) {
    if (threadIdx.x < TC_BQ) {
        const int i = q0 + threadIdx.x;
        ls[threadIdx.x] = i < Lq ? lh[i] : 0.f;
        ds[threadIdx.x] = i < Lq ? dh[i] : 0.f;
    }
}

// g[row, :D] += alpha * sum[row, :D] for the warp's 16 rows starting at row0 (< L only).
template <typename T, int DP>
__device__ __forceinline__ void add_rows(T *g, long long ldg, const float *sum, int row0, int L, int D, float alpha) {
    typedef TcBwdCfg<DP> C;
    const int lane = threadIdx.x & 31;
    for (int i = lane; i < 16 * D; i += 32) {
        const int r = i / D, c = i - r * D;
        if (row0 + r < L) {
            T *p = g + (long long)(row0 + r) * ldg + c;
            *p = from_f<T>(to_f(*p) + alpha * sum[r * C::LDO + c]);
        }
    }
}

template <typename T, int DP>
__global__ void __launch_bounds__(TC_THREADS)
    attn_tc_dkdv_kernel(T *dk, T *dv, const T *dout, const T *q, const T *k, const T *v, const float *lse,
                        const float *delta, int H, int Lq, int Lk, int Dk, int Dv, float scale, int causal, int vec) {
    typedef TcBwdCfg<DP> C;
    extern __shared__ __align__(128) unsigned char smem[];
    T *Ks = reinterpret_cast<T *>(smem + C::t_off), *Vs = reinterpret_cast<T *>(smem + C::t_off + C::tile);
    T *Qs = reinterpret_cast<T *>(smem + C::t_off + 2 * C::tile);
    T *dOs = reinterpret_cast<T *>(smem + C::t_off + 3 * C::tile);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float *Sw = reinterpret_cast<float *>(smem + C::s_off) + warp * 16 * C::LDS;
    float *dPw = reinterpret_cast<float *>(smem + C::dp_off) + warp * 16 * C::LDS;
    T *Pw = reinterpret_cast<T *>(smem + C::p_off) + warp * 16 * C::LDP;
    float *dKw = reinterpret_cast<float *>(smem + C::a1_off) + warp * 16 * C::LDO;
    float *dVw = reinterpret_cast<float *>(smem + C::a2_off) + warp * 16 * C::LDO;
    float *ls = reinterpret_cast<float *>(smem + C::r_off), *ds = ls + 64;
    const int b = blockIdx.z, h = blockIdx.y, k0 = blockIdx.x * TC_BK, off = Lk - Lq;
    const long long ldq = (long long)H * Dk, ldv = (long long)H * Dv;
    const T *qh = q + (long long)b * Lq * ldq + (long long)h * Dk, *kh = k + (long long)b * Lk * ldq + (long long)h * Dk;
    const T *vh = v + (long long)b * Lk * ldv + (long long)h * Dv;
    const T *doh = dout + (long long)b * Lq * ldv + (long long)h * Dv;
    const float *lh = lse + ((long long)b * H + h) * Lq, *dh = delta + ((long long)b * H + h) * Lq;

    tile_in<T, TC_BK, DP>(Ks, C::LDH, kh, ldq, k0, Lk, Dk, vec);
    tile_in<T, TC_BK, DP>(Vs, C::LDH, vh, ldv, k0, Lk, Dv, vec);
    for (int i = lane; i < 16 * C::LDO; i += 32) dKw[i] = 0.f, dVw[i] = 0.f;
    // Causal: query i sees key j iff j <= i + off, so queries before k0 - off see none of ours.
    int qs = causal ? k0 - off : 0;
    qs = qs < 0 ? 0 : qs / TC_BQ * TC_BQ;
    const int r = lane >> 1, half = lane & 1, j = k0 + warp * 16 + r;  // this lane's key row
    const int c0 = (r >> 3) + 2 * half;                                // bank-spreading start column
    for (int q0 = qs; q0 < Lq; q0 += TC_BQ) {
        __syncthreads();  // every warp is done with the previous query tile
        tile_in<T, TC_BQ, DP>(Qs, C::LDH, qh, ldq, q0, Lq, Dk, vec);
        tile_in<T, TC_BQ, DP>(dOs, C::LDH, doh, ldv, q0, Lq, Dv, vec);
        rows_in(ls, ds, lh, dh, q0, Lq);
        __syncthreads();
        mm_abt<T, DP>(Sw, Ks + warp * 16 * C::LDH, Qs);    // S^T [16 keys, 64 queries]
        mm_abt<T, DP>(dPw, Vs + warp * 16 * C::LDH, dOs);  // dP^T
        __syncwarp();
        {  // lane (r, half): key j, queries q0 + 32 half + [0, 32)
            float *sr = Sw + r * C::LDS + half * 32, *dr = dPw + r * C::LDS + half * 32;
            T *pr = Pw + r * C::LDP + half * 32;
            const float *lr = ls + half * 32, *dl = ds + half * 32;
            const int i0 = q0 + half * 32;
#pragma unroll 8
            for (int c = 0; c < 32; c++) {
                const int cc = (c + c0) & 31, i = i0 + cc;
                const bool vis = i < Lq && j < Lk && (!causal || j <= i + off);
                const float p = vis ? expf(sr[cc] * scale - lr[cc]) : 0.f;
                pr[cc] = from_f<T>(p);
                dr[cc] = p * (dr[cc] - dl[cc]);  // dS^T, fp32
            }
        }
        __syncwarp();
        mm_acc_px<T, DP>(dVw, Pw, dOs);  // dV += P^T dO
        __syncwarp();                    // every lane's P fragments are loaded: P becomes dS
        {
            const float *dr = dPw + r * C::LDS + half * 32;
            T *pr = Pw + r * C::LDP + half * 32;
#pragma unroll 8
            for (int c = 0; c < 32; c++) {
                const int cc = (c + c0) & 31;
                pr[cc] = from_f<T>(dr[cc]);
            }
        }
        __syncwarp();
        mm_acc_px<T, DP>(dKw, Pw, Qs);  // dK += dS^T Q (scale at the end)
    }
    __syncwarp();
    const int row0 = k0 + warp * 16;
    if (dk) add_rows<T, DP>(dk + (long long)b * Lk * ldq + (long long)h * Dk, ldq, dKw, row0, Lk, Dk, scale);
    if (dv) add_rows<T, DP>(dv + (long long)b * Lk * ldv + (long long)h * Dv, ldv, dVw, row0, Lk, Dv, 1.f);
}

template <typename T, int DP>
__global__ void __launch_bounds__(TC_THREADS)
    attn_tc_dq_kernel(T *dq, const T *dout, const T *q, const T *k, const T *v, const float *lse, const float *delta,
                      int H, int Lq, int Lk, int Dk, int Dv, float scale, int causal, int vec) {
    typedef TcBwdCfg<DP> C;
    extern __shared__ __align__(128) unsigned char smem[];
    T *Qs = reinterpret_cast<T *>(smem + C::t_off), *dOs = reinterpret_cast<T *>(smem + C::t_off + C::tile);
    T *Ks = reinterpret_cast<T *>(smem + C::t_off + 2 * C::tile);
    T *Vs = reinterpret_cast<T *>(smem + C::t_off + 3 * C::tile);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float *Sw = reinterpret_cast<float *>(smem + C::s_off) + warp * 16 * C::LDS;
    float *dPw = reinterpret_cast<float *>(smem + C::dp_off) + warp * 16 * C::LDS;
    T *Pw = reinterpret_cast<T *>(smem + C::p_off) + warp * 16 * C::LDP;
    float *dQw = reinterpret_cast<float *>(smem + C::a1_off) + warp * 16 * C::LDO;
    float *ls = reinterpret_cast<float *>(smem + C::r_off), *ds = ls + 64;
    const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * TC_BQ, off = Lk - Lq;
    const long long ldq = (long long)H * Dk, ldv = (long long)H * Dv;
    const T *qh = q + (long long)b * Lq * ldq + (long long)h * Dk, *kh = k + (long long)b * Lk * ldq + (long long)h * Dk;
    const T *vh = v + (long long)b * Lk * ldv + (long long)h * Dv;
    const T *doh = dout + (long long)b * Lq * ldv + (long long)h * Dv;
    const float *lh = lse + ((long long)b * H + h) * Lq, *dh = delta + ((long long)b * H + h) * Lq;

    tile_in<T, TC_BQ, DP>(Qs, C::LDH, qh, ldq, q0, Lq, Dk, vec);
    tile_in<T, TC_BQ, DP>(dOs, C::LDH, doh, ldv, q0, Lq, Dv, vec);
    rows_in(ls, ds, lh, dh, q0, Lq);
    for (int i = lane; i < 16 * C::LDO; i += 32) dQw[i] = 0.f;
    const int r = lane >> 1, half = lane & 1, i = q0 + warp * 16 + r;  // this lane's query row
    const int lim = causal ? i + off : Lk - 1, c0 = (r >> 3) + 2 * half;
    long long kend = causal ? (long long)q0 + TC_BQ + off : Lk;  // keys past the block's last visible one
    kend = kend < 0 ? 0 : kend > Lk ? Lk : kend;
    for (int k0 = 0; k0 < kend; k0 += TC_BK) {
        __syncthreads();  // every warp is done with the previous key tile (and, first, ls / ds are in)
        tile_in<T, TC_BK, DP>(Ks, C::LDH, kh, ldq, k0, Lk, Dk, vec);
        tile_in<T, TC_BK, DP>(Vs, C::LDH, vh, ldv, k0, Lk, Dv, vec);
        __syncthreads();
        mm_abt<T, DP>(Sw, Qs + warp * 16 * C::LDH, Ks);    // S [16 queries, 64 keys]
        mm_abt<T, DP>(dPw, dOs + warp * 16 * C::LDH, Vs);  // dP
        __syncwarp();
        {  // lane (r, half): query i, keys k0 + 32 half + [0, 32)
            const float *sr = Sw + r * C::LDS + half * 32, *dr = dPw + r * C::LDS + half * 32;
            T *pr = Pw + r * C::LDP + half * 32;
            const float li = ls[warp * 16 + r], di = ds[warp * 16 + r];
            const int j0 = k0 + half * 32;
#pragma unroll 8
            for (int c = 0; c < 32; c++) {
                const int cc = (c + c0) & 31, j = j0 + cc;
                const bool vis = i < Lq && j < Lk && j <= lim;
                const float p = vis ? expf(sr[cc] * scale - li) : 0.f;
                pr[cc] = from_f<T>(p * (dr[cc] - di));  // dS
            }
        }
        __syncwarp();
        mm_acc_px<T, DP>(dQw, Pw, Ks);  // dQ += dS K (scale at the end)
    }
    __syncwarp();
    add_rows<T, DP>(dq + (long long)b * Lq * ldq + (long long)h * Dk, ldq, dQw, q0 + warp * 16, Lq, Dk, scale);
}

template <typename T, int DP>
zs_status tc_bwd_launch(T *dq, T *dk, T *dv, const T *dout, const T *q, const T *k, const T *v, const float *lse,
                        const float *delta, int B, int H, int Lq, int Lk, int Dk, int Dv, float scale, int causal) {
    typedef TcBwdCfg<DP> C;
    cudaStream_t s = zs_cuda_stream();
    const int vec = tc_vec(Dk, Dv, q, k, v, dout);
    auto fkv = attn_tc_dkdv_kernel<T, DP>;
    auto fq = attn_tc_dq_kernel<T, DP>;
    // both opt-ins before any launch: a GPU too small for this tier falls back as a whole
    ZS_TRY(tc_smem_optin((const void *)fkv, C::smem_dkdv, "attention_bwd", DP));
    ZS_TRY(tc_smem_optin((const void *)fq, C::smem_dq, "attention_bwd", DP));
    if (dk || dv) {
        fkv<<<dim3(zs_blocks(Lk, TC_BK), (unsigned)H, (unsigned)B), TC_THREADS, C::smem_dkdv, s>>>(
            dk, dv, dout, q, k, v, lse, delta, H, Lq, Lk, Dk, Dv, scale, causal, vec);
        ZS_CUDA_LAUNCHED();
    }
    if (dq) {
        fq<<<dim3(zs_blocks(Lq, TC_BQ), (unsigned)H, (unsigned)B), TC_THREADS, C::smem_dq, s>>>(
            dq, dout, q, k, v, lse, delta, H, Lq, Lk, Dk, Dv, scale, causal, vec);
        ZS_CUDA_LAUNCHED();
    }
    return ZS_OK;
}

template <typename T>
zs_status tc_bwd(T *dq, T *dk, T *dv, const T *dout, const T *q, const T *k, const T *v, const float *lse,
                 const float *delta, int B, int H, int Lq, int Lk, int Dk, int Dv, float scale, int causal) {
    const int D = Dk > Dv ? Dk : Dv;
#define ZS_TC_BWD(DP) \
    return tc_bwd_launch<T, DP>(dq, dk, dv, dout, q, k, v, lse, delta, B, H, Lq, Lk, Dk, Dv, scale, causal);
    ZS_TC_TIERS(D, ZS_TC_BWD);
#undef ZS_TC_BWD
    return ZS_ERR(ZS_EUNSUPPORTED, "attention_bwd on tensor cores: head dim %d > 160", D);
}

}  // namespace

// F16 / BF16; delta [B, H, Lq] from the caller (attention.cu); dq, dk, dv += (any may be NULL).
// ZS_EUNSUPPORTED (nothing launched): this GPU's shared memory is too small for the tier.
extern "C" zs_status zs_attention_tc_bwd_cuda(void *dq, void *dk, void *dv, const void *dout, const void *q,
                                              const void *k, const void *v, const float *lse, const float *delta,
                                              zs_dtype dt, int B, int H, int Lq, int Lk, int Dk, int Dv, float scale,
                                              int causal) {
    if (Lq == 0 || Lk == 0) return ZS_OK;
    if (dt == ZS_F16)
        return tc_bwd<__half>((__half *)dq, (__half *)dk, (__half *)dv, (const __half *)dout, (const __half *)q,
                              (const __half *)k, (const __half *)v, lse, delta, B, H, Lq, Lk, Dk, Dv, scale, causal);
    if (dt == ZS_BF16)
        return tc_bwd<__nv_bfloat16>((__nv_bfloat16 *)dq, (__nv_bfloat16 *)dk, (__nv_bfloat16 *)dv,
                                     (const __nv_bfloat16 *)dout, (const __nv_bfloat16 *)q, (const __nv_bfloat16 *)k,
                                     (const __nv_bfloat16 *)v, lse, delta, B, H, Lq, Lk, Dk, Dv, scale, causal);
    return ZS_ERR(ZS_EUNSUPPORTED, "attention_bwd on tensor cores: dtype %s (F16 / BF16 only)", zs_dtype_name(dt));
}
