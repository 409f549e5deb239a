// Attention forward on tensor cores (F16 / BF16, fp32 accumulation and softmax), flash style:
// the [Lq, Lk] scores are never stored. Same semantics as attention.c / attention.cu (lse of
// the scaled scores; causal: query i sees keys j <= i + Lk - Lq; a row that sees no key gives
// out 0 and lse -inf). The backward: attention_tc_bwd.cu.
//
// Block: 4 warps, 64 query rows (16 per warp), grid (Lq / 64, H, B). Key / value tiles of 64
// rows stream through shared memory. Per warp and tile (WMMA 16x16x16 fragments):
//   S = Q K^T (fp32, to shared) -> online softmax by 2 lanes per row (running max m and sum l)
//   -> P (dtype, to shared); O (fp32, in shared: WMMA's register layout is opaque, so the
//   per-row rescale by exp(m_old - m_new) happens there) += P V.
// Head dims are zero-padded to DP, a multiple of 16 up to 160. Deterministic (no atomics).
#include "attention_tc.cuh"

namespace {

template <int DP> struct TcCfg : TcLd<DP> {
    using TcLd<DP>::LDH, TcLd<DP>::LDS, TcLd<DP>::LDP, TcLd<DP>::LDO;
    static constexpr size_t q_off = 0;
    static constexpr size_t k_off = q_off + tc_al((size_t)TC_BQ * LDH * 2);
    static constexpr size_t v_off = k_off + tc_al((size_t)TC_BK * LDH * 2);
    static constexpr size_t s_off = v_off + tc_al((size_t)TC_BK * LDH * 2);
    static constexpr size_t p_off = s_off + tc_al((size_t)TC_BQ * LDS * 4);
    static constexpr size_t o_off = p_off + tc_al((size_t)TC_BQ * LDP * 2);
    static constexpr size_t r_off = o_off + tc_al((size_t)TC_BQ * LDO * 4);
    static constexpr size_t smem = r_off + tc_al((size_t)TC_BQ * 3 * 4);  // m, l, alpha per row
};

template <typename T, int DP>
__global__ void __launch_bounds__(TC_THREADS)
    attn_tc_fwd_kernel(T *out, float *lse, const T *q, const T *k, const T *v, int H, int Lq, int Lk, int Dk, int Dv,
                       float scale, int causal, int vec) {
    typedef TcCfg<DP> C;
    typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> frag_a;
    typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> frag_acc;
    extern __shared__ __align__(128) unsigned char smem[];
    T *Qs = reinterpret_cast<T *>(smem + C::q_off), *Ks = reinterpret_cast<T *>(smem + C::k_off);
    T *Vs = reinterpret_cast<T *>(smem + C::v_off);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float *Sw = reinterpret_cast<float *>(smem + C::s_off) + warp * 16 * C::LDS;  // this warp's 16 rows
    T *Pw = reinterpret_cast<T *>(smem + C::p_off) + warp * 16 * C::LDP;
    float *Ow = reinterpret_cast<float *>(smem + C::o_off) + warp * 16 * C::LDO;
    float *mw = reinterpret_cast<float *>(smem + C::r_off) + warp * 48, *lw = mw + 16, *aw = mw + 32;
    const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * TC_BQ, off = Lk - Lq;
    const long long ldq = (long long)H * Dk, ldv = (long long)H * Dv;
    const T *qh = q + (long long)b * Lq * ldq + (long long)h * Dk;
    const T *kh = k + (long long)b * Lk * ldq + (long long)h * Dk;
    const T *vh = v + (long long)b * Lk * ldv + (long long)h * Dv;

    tile_in<T, TC_BQ, DP>(Qs, C::LDH, qh, ldq, q0, Lq, Dk, vec);
    for (int i = lane; i < 16 * C::LDO; i += 32) Ow[i] = 0.f;
    if (lane < 16) mw[lane] = -INFINITY, lw[lane] = 0.f, aw[lane] = 0.f;
    __syncthreads();
    frag_a qf[DP / 16];
#pragma unroll
    for (int d = 0; d < DP / 16; d++) wmma::load_matrix_sync(qf[d], Qs + warp * 16 * C::LDH + d * 16, C::LDH);

    // Keys past the block's last visible one (causal) are never loaded.
    long long kend = causal ? (long long)q0 + TC_BQ + off : Lk;
    kend = kend < 0 ? 0 : kend > Lk ? Lk : kend;
    const int r = lane >> 1, half = lane & 1, qi = q0 + warp * 16 + r;
    const int lim = causal ? qi + off : Lk - 1;  // this lane's row: last visible key
    for (int k0 = 0; k0 < kend; k0 += TC_BK) {
        __syncthreads();  // every warp is done with the previous K / V tiles
        tile_in<T, TC_BK, DP>(Ks, C::LDH, kh, ldq, k0, Lk, Dk, vec);
        tile_in<T, TC_BK, DP>(Vs, C::LDH, vh, ldv, k0, Lk, Dv, vec);
        __syncthreads();
#pragma unroll
        for (int n = 0; n < TC_BK / 16; n++) {  // S[:, 16 n : 16 n + 16] = Q K[16 n : 16 n + 16]^T
            frag_acc sf;
            wmma::fill_fragment(sf, 0.f);
#pragma unroll
            for (int d = 0; d < DP / 16; d++) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> kf;
                wmma::load_matrix_sync(kf, Ks + n * 16 * C::LDH + d * 16, C::LDH);
                wmma::mma_sync(sf, qf[d], kf, sf);
            }
            wmma::store_matrix_sync(Sw + n * 16, sf, C::LDS, wmma::mem_row_major);
        }
        __syncwarp();
        {  // online softmax of row r, columns [32 half, 32 half + 32) of the tile; lane (r, half)
           // starts at column (r / 8 + 2 half) so that the 32 lanes hit 32 banks (rows 68 floats)
            float *sr = Sw + r * C::LDS + half * 32;
            T *pr = Pw + r * C::LDP + half * 32;
            const int j0 = k0 + half * 32, c0 = (r >> 3) + 2 * half;
            float mx = -INFINITY;
#pragma unroll 8
            for (int c = 0; c < 32; c++) {
                const int cc = (c + c0) & 31;
                float s = (j0 + cc <= lim && j0 + cc < Lk) ? sr[cc] * scale : -INFINITY;
                sr[cc] = s;
                mx = fmaxf(mx, s);
            }
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            const float mold = mw[r], mnew = fmaxf(mold, mx);
            float sum = 0.f;
#pragma unroll 8
            for (int c = 0; c < 32; c++) {
                const int cc = (c + c0) & 31;
                float p = sr[cc] == -INFINITY ? 0.f : expf(sr[cc] - mnew);  // mnew is finite when sr[cc] is
                pr[cc] = from_f<T>(p);
                sum += p;
            }
            sum += __shfl_xor_sync(0xffffffffu, sum, 1);
            const float alpha = mold == -INFINITY ? 0.f : expf(mold - mnew);
            __syncwarp();  // both lanes of the row have read mold
            if (!half) mw[r] = mnew, lw[r] = lw[r] * alpha + sum, aw[r] = alpha;
        }
        __syncwarp();
        for (int i = lane; i < 16 * DP; i += 32) Ow[(i / DP) * C::LDO + i % DP] *= aw[i / DP];
        __syncwarp();
        mm_acc_px<T, DP>(Ow, Pw, Vs);  // O += P V
        __syncwarp();
    }
    __syncwarp();
    T *oh = out + (long long)b * Lq * ldv + (long long)h * Dv;
    for (int i = lane; i < 16 * Dv; i += 32) {
        const int rr = i / Dv, c = i - rr * Dv, qr = q0 + warp * 16 + rr;
        const float l = lw[rr];
        if (qr < Lq) oh[(long long)qr * ldv + c] = from_f<T>(l > 0.f ? Ow[rr * C::LDO + c] / l : 0.f);
    }
    if (lse && lane < 16) {
        const int qr = q0 + warp * 16 + lane;
        if (qr < Lq) lse[((long long)b * H + h) * Lq + qr] = lw[lane] > 0.f ? mw[lane] + logf(lw[lane]) : -INFINITY;
    }
}

template <typename T, int DP> zs_status tc_launch(T *out, float *lse, const T *q, const T *k, const T *v, int B, int H,
                                                 int Lq, int Lk, int Dk, int Dv, float scale, int causal) {
    typedef TcCfg<DP> C;
    auto f = attn_tc_fwd_kernel<T, DP>;
    ZS_TRY(tc_smem_optin((const void *)f, C::smem, "attention_fwd", DP));
    dim3 grid(zs_blocks(Lq, TC_BQ), (unsigned)H, (unsigned)B);
    f<<<grid, TC_THREADS, C::smem, zs_cuda_stream()>>>(out, lse, q, k, v, H, Lq, Lk, Dk, Dv, scale, causal,
                                                       tc_vec(Dk, Dv, q, k, v, NULL));
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

template <typename T> zs_status tc_fwd(T *out, float *lse, const T *q, const T *k, const T *v, int B, int H, int Lq,
                                       int Lk, int Dk, int Dv, float scale, int causal) {
    const int D = Dk > Dv ? Dk : Dv;
#define ZS_TC_FWD(DP) return tc_launch<T, DP>(out, lse, q, k, v, B, H, Lq, Lk, Dk, Dv, scale, causal);
    ZS_TC_TIERS(D, ZS_TC_FWD);
#undef ZS_TC_FWD
    return ZS_ERR(ZS_EUNSUPPORTED, "attention_fwd on tensor cores: head dim %d > 160", D);
}

}  // namespace

// F16 / BF16 only; B, H <= 65535 and max(Dk, Dv) <= 160 (the caller, attention.cu, checks).
extern "C" zs_status zs_attention_tc_fwd_cuda(void *out, float *lse, const void *q, const void *k, const void *v,
                                              zs_dtype dt, int B, int H, int Lq, int Lk, int Dk, int Dv, float scale,
                                              int causal) {
    if (Lq == 0) return ZS_OK;
    if (dt == ZS_F16)
        return tc_fwd<__half>((__half *)out, lse, (const __half *)q, (const __half *)k, (const __half *)v, B, H, Lq, Lk,
                              Dk, Dv, scale, causal);
    if (dt == ZS_BF16)
        return tc_fwd<__nv_bfloat16>((__nv_bfloat16 *)out, lse, (const __nv_bfloat16 *)q, (const __nv_bfloat16 *)k,
                                     (const __nv_bfloat16 *)v, B, H, Lq, Lk, Dk, Dv, scale, causal);
    return ZS_ERR(ZS_EUNSUPPORTED, "attention_fwd on tensor cores: dtype %s (F16 / BF16 only)", zs_dtype_name(dt));
}
