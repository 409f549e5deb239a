// Fused multi-head attention on CUDA (formulas in attention.c), flash style: the [Lq, Lk]
// scores are never stored; fp32 math on CUDA cores, inputs converted to fp32 as tiles enter
// shared memory. F32 runs here; F16 / BF16 run on tensor cores (attention_tc.cu,
// attention_tc_bwd.cu): see "Which path runs" below.
//
// Every kernel: 256 threads seen as a 16 x 16 grid (ty, tx); a BT x BT score tile gives each
// thread the (BT/16) x (BT/16) entries (ty + 16 i, tx + 16 j); a BT x DM accumulator the
// entries (ty + 16 i, tx + 16 j), j < DM/16. DM is the head dim the kernel is compiled for
// (64, 96, 128, 160: max(Dk, Dv) rounds up to one); tiles are zero-filled past the real head
// dims and sequence ends, and masked / out-of-range scores give probability 0, so ragged
// tiles need no other special case. Shared-memory rows of fp32 tiles are padded to DM + 1 /
// BT + 1 floats (odd strides: no bank conflicts in the column-walking loops).
//
//   forward   grid (Lq / BT, H, B): Q tile resident; K / V tiles of BT keys stream through;
//             online softmax (running max m, sum l per row, in shared memory) and the output
//             accumulator in registers; out = acc / l, lse = m + log l.
//   backward  FlashAttention-2 without atomics (deterministic, bitwise reproducible):
//             1. delta_i = dout_i . out_i               (one warp per row, fp32 scratch)
//             2. grid (Lk / BT, H, B): K / V tile resident, Q / dout tiles stream; P from lse,
//                dv += P^T dout, ds = P (dout V^T - delta), dk += scale ds^T Q
//             3. grid (Lq / BT, H, B): Q / dout tile resident, K / V tiles stream;
//                dq += scale ds K
//             P and dP are recomputed in 3 (7 tile GEMMs instead of 5) to avoid dq atomics.
#include <stdlib.h>
#include <string.h>
#include "cuda_ops.cuh"

namespace {

constexpr int AT_THREADS = 256;

// Rows [r0, r0 + R) of one head's slice g (row stride ldg elements, D valid columns) into
// shared s[R][lds] as fp32; rows >= L and columns in [D, DM) are zero.
template <typename T, int R, int DM>
__device__ __forceinline__ void load_tile(float *s, int lds, const T *g, long long ldg, int r0, int L, int D) {
    for (int x = threadIdx.x; x < R * DM; x += AT_THREADS) {
        int r = x / DM, c = x - r * DM;
        float val = 0.f;
        if (r0 + r < L && c < D) val = to_f(g[(long long)(r0 + r) * ldg + c]);
        s[r * lds + c] = val;
    }
}

// acc[i][j] = sum_{d < D} A[ty + 16 i][d] * Bm[tx + 16 j][d]   (A Bm^T)
template <int RI, int CJ>
__device__ __forceinline__ void mm_abt(float (&acc)[RI][CJ], const float *A, int lda, const float *Bm, int ldb, int D,
                                       int ty, int tx) {
#pragma unroll
    for (int i = 0; i < RI; i++)
#pragma unroll
        for (int j = 0; j < CJ; j++) acc[i][j] = 0.f;
#pragma unroll 4
    for (int d = 0; d < D; d++) {
        float a[RI], b[CJ];
#pragma unroll
        for (int i = 0; i < RI; i++) a[i] = A[(ty + 16 * i) * lda + d];
#pragma unroll
        for (int j = 0; j < CJ; j++) b[j] = Bm[(tx + 16 * j) * ldb + d];
#pragma unroll
        for (int i = 0; i < RI; i++)
#pragma unroll
            for (int j = 0; j < CJ; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
}

// acc[i][j] += sum_{k < K} P[ty + 16 i][k] * X[k][tx + 16 j]   (P X)
template <int RI, int CJ>
__device__ __forceinline__ void mm_ab(float (&acc)[RI][CJ], const float *P, int ldp, const float *X, int ldx, int K,
                                      int ty, int tx) {
#pragma unroll 4
    for (int k = 0; k < K; k++) {
        float a[RI], b[CJ];
#pragma unroll
        for (int i = 0; i < RI; i++) a[i] = P[(ty + 16 * i) * ldp + k];
#pragma unroll
        for (int j = 0; j < CJ; j++) b[j] = X[k * ldx + tx + 16 * j];
#pragma unroll
        for (int i = 0; i < RI; i++)
#pragma unroll
            for (int j = 0; j < CJ; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
}

// Keys [0, kend) that rows [q0, q1) of the block see (q1 > q0).
__device__ __forceinline__ int keys_seen(int q1, int Lq, int Lk, int causal) {
    if (!causal) return Lk;
    long long e = (long long)q1 - 1 + (Lk - Lq) + 1;
    return e < 0 ? 0 : e > Lk ? Lk : (int)e;
}

__device__ __forceinline__ bool visible(int qi, int kj, int Lq, int Lk, int causal) {
    return qi < Lq && kj < Lk && (!causal || (long long)kj <= (long long)qi + (Lk - Lq));
}

template <int DM, int BT> struct Cfg {
    static constexpr int LD = DM + 1, LS = BT + 1, RI = BT / 16, CS = BT / 16, CO = DM / 16;
    // forward: Q, K, V tiles, the score / probability tile, 3 row vectors
    static constexpr size_t fwd_smem() { return sizeof(float) * (3 * BT * LD + BT * LS + 3 * BT); }
    // backward kernels: 4 [BT, DM] tiles, one score tile, 2 row vectors
    static constexpr size_t bwd_smem() { return sizeof(float) * (4 * BT * LD + BT * LS + 2 * BT); }
    static_assert(BT % 16 == 0 && DM % 16 == 0, "tile sizes");
};

// ---- forward ------------------------------------------------------------------------------
template <typename T, int DM, int BT>
__global__ void __launch_bounds__(AT_THREADS)
    attn_fwd_kernel(T *out, float *lse, const T *q, const T *k, const T *v, int H, int Lq, int Lk, int Dk, int Dv,
                    float scale, int causal) {
    typedef Cfg<DM, BT> C;
    constexpr int LD = C::LD, LS = C::LS, RI = C::RI, CS = C::CS, CO = C::CO;
    extern __shared__ float sm[];
    float *Qs = sm, *Ks = Qs + BT * LD, *Vs = Ks + BT * LD, *Ss = Vs + BT * LD;
    float *rowm = Ss + BT * LS, *rowl = rowm + BT, *rowa = rowl + BT;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4, warp = tid >> 5, lane = tid & 31;
    const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * BT;
    const long long sk = (long long)H * Dk, sv = (long long)H * Dv;
    const T *qg = q + ((long long)b * Lq * H + h) * Dk, *kg = k + ((long long)b * Lk * H + h) * Dk;
    const T *vg = v + ((long long)b * Lk * H + h) * Dv;

    load_tile<T, BT, DM>(Qs, LD, qg, sk, q0, Lq, Dk);
    if (tid < BT) {
        rowm[tid] = -INFINITY;
        rowl[tid] = 0.f;
    }
    float o[RI][CO];
#pragma unroll
    for (int i = 0; i < RI; i++)
#pragma unroll
        for (int j = 0; j < CO; j++) o[i][j] = 0.f;
    const int kend = keys_seen(min(q0 + BT, Lq), Lq, Lk, causal);
    for (int k0 = 0; k0 < kend; k0 += BT) {
        __syncthreads();  // Q tile and row stats ready; the previous tile's readers done
        load_tile<T, BT, DM>(Ks, LD, kg, sk, k0, Lk, Dk);
        load_tile<T, BT, DM>(Vs, LD, vg, sv, k0, Lk, Dv);
        __syncthreads();
        float s[RI][CS];
        mm_abt<RI, CS>(s, Qs, LD, Ks, LD, Dk, ty, tx);
#pragma unroll
        for (int i = 0; i < RI; i++)
#pragma unroll
            for (int j = 0; j < CS; j++) {
                int r = ty + 16 * i, c = tx + 16 * j;
                Ss[r * LS + c] = visible(q0 + r, k0 + c, Lq, Lk, causal) ? s[i][j] * scale : -INFINITY;
            }
        __syncthreads();
        // Online softmax, one warp per row: P into Ss, rescale factor into rowa.
        for (int r = warp; r < BT; r += AT_THREADS / 32) {
            float mx = -INFINITY;
            for (int c = lane; c < BT; c += 32) mx = fmaxf(mx, Ss[r * LS + c]);
            mx = warp_max(mx);
            float mold = rowm[r], mnew = fmaxf(mold, mx), sum = 0.f;
            for (int c = lane; c < BT; c += 32) {
                float x = Ss[r * LS + c];
                float p = x == -INFINITY ? 0.f : expf(x - mnew);  // mnew is finite when x is
                Ss[r * LS + c] = p;
                sum += p;
            }
            sum = warp_sum(sum);
            if (lane == 0) {
                float alpha = mold == -INFINITY ? 0.f : expf(mold - mnew);
                rowa[r] = alpha;
                rowm[r] = mnew;
                rowl[r] = rowl[r] * alpha + sum;
            }
        }
        __syncthreads();
#pragma unroll
        for (int i = 0; i < RI; i++) {
            float al = rowa[ty + 16 * i];
#pragma unroll
            for (int j = 0; j < CO; j++) o[i][j] *= al;
        }
        mm_ab<RI, CO>(o, Ss, LS, Vs, LD, BT, ty, tx);
    }
    __syncthreads();  // row stats final (also when no key tile ran)
#pragma unroll
    for (int i = 0; i < RI; i++) {
        int r = ty + 16 * i, qi = q0 + r;
        if (qi >= Lq) continue;
        float l = rowl[r], inv = l > 0.f ? 1.0f / l : 0.f;  // l == 0: the row sees no key -> 0
        T *og = out + (((long long)b * Lq + qi) * H + h) * Dv;
#pragma unroll
        for (int j = 0; j < CO; j++) {
            int c = tx + 16 * j;
            if (c < Dv) og[c] = from_f<T>(o[i][j] * inv);
        }
    }
    if (lse && tid < BT && q0 + tid < Lq)
        lse[((long long)b * H + h) * Lq + q0 + tid] = rowl[tid] > 0.f ? rowm[tid] + logf(rowl[tid]) : -INFINITY;
}

// ---- backward -----------------------------------------------------------------------------
// delta[b, h, i] = dout[b, i, h, :] . out[b, i, h, :]; one warp per (b, i, h) row.
template <typename T>
__global__ void attn_delta_kernel(float *delta, const T *dout, const T *out, int H, int Lq, int Dv, long long rows) {
    long long n = blockIdx.x * 8LL + threadIdx.y;  // row of [B * Lq * H, Dv]
    if (n >= rows) return;                        // whole warp leaves together
    const T *a = dout + n * Dv, *o = out + n * Dv;
    float s = 0.f;
    for (int c = threadIdx.x; c < Dv; c += 32) s += to_f(a[c]) * to_f(o[c]);
    s = warp_sum(s);
    long long h = n % H, i = (n / H) % Lq, b = n / ((long long)H * Lq);
    if (threadIdx.x == 0) delta[(b * H + h) * Lq + i] = s;
}

// dk, dv (+=; either may be NULL) for the BT keys of block (x, h, b).
template <typename T, int DM, int BT>
__global__ void __launch_bounds__(AT_THREADS)
    attn_bwd_dkdv_kernel(T *dk, T *dv, const T *dout, const T *q, const T *k, const T *v, const float *lse,
                         const float *delta, int H, int Lq, int Lk, int Dk, int Dv, float scale, int causal) {
    typedef Cfg<DM, BT> C;
    constexpr int LD = C::LD, LS = C::LS, RI = C::RI, CS = C::CS, CO = C::CO;
    extern __shared__ float sm[];
    float *Ks = sm, *Vs = Ks + BT * LD, *Qs = Vs + BT * LD, *dOs = Qs + BT * LD, *Ps = dOs + BT * LD;
    float *rl = Ps + BT * LS, *rd = rl + BT;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int b = blockIdx.z, h = blockIdx.y, k0 = blockIdx.x * BT;
    const long long sk = (long long)H * Dk, sv = (long long)H * Dv, bh = (long long)b * H + h;
    const T *qg = q + ((long long)b * Lq * H + h) * Dk, *kg = k + ((long long)b * Lk * H + h) * Dk;
    const T *vg = v + ((long long)b * Lk * H + h) * Dv, *dog = dout + ((long long)b * Lq * H + h) * Dv;

    load_tile<T, BT, DM>(Ks, LD, kg, sk, k0, Lk, Dk);
    load_tile<T, BT, DM>(Vs, LD, vg, sv, k0, Lk, Dv);
    float ak[RI][CO], av[RI][CO];  // rows: keys ty + 16 i; columns: head dims
#pragma unroll
    for (int i = 0; i < RI; i++)
#pragma unroll
        for (int j = 0; j < CO; j++) ak[i][j] = av[i][j] = 0.f;
    // Causal: rows before k0 - (Lk - Lq) see none of this block's keys.
    long long qs = causal ? (long long)k0 - (Lk - Lq) : 0;
    const int qstart = qs < 0 ? 0 : qs > Lq ? Lq : (int)qs;
    for (int q0 = qstart; q0 < Lq; q0 += BT) {
        __syncthreads();  // previous tile's readers done
        load_tile<T, BT, DM>(Qs, LD, qg, sk, q0, Lq, Dk);
        load_tile<T, BT, DM>(dOs, LD, dog, sv, q0, Lq, Dv);
        if (tid < BT) {
            int qi = q0 + tid;
            rl[tid] = qi < Lq ? lse[bh * Lq + qi] : 0.f;
            rd[tid] = qi < Lq ? delta[bh * Lq + qi] : 0.f;
        }
        __syncthreads();
        // P^T tile: rows keys, columns queries.
        float p[RI][CS];
        mm_abt<RI, CS>(p, Ks, LD, Qs, LD, Dk, ty, tx);
#pragma unroll
        for (int i = 0; i < RI; i++)
#pragma unroll
            for (int j = 0; j < CS; j++) {
                int r = ty + 16 * i, c = tx + 16 * j;
                p[i][j] = visible(q0 + c, k0 + r, Lq, Lk, causal) ? expf(p[i][j] * scale - rl[c]) : 0.f;
                Ps[r * LS + c] = p[i][j];
            }
        __syncthreads();
        mm_ab<RI, CO>(av, Ps, LS, dOs, LD, BT, ty, tx);  // dv += P^T dout
        float dp[RI][CS];
        mm_abt<RI, CS>(dp, Vs, LD, dOs, LD, Dv, ty, tx);  // dP^T = V dout^T
        __syncthreads();                                  // every read of P^T done
#pragma unroll
        for (int i = 0; i < RI; i++)
#pragma unroll
            for (int j = 0; j < CS; j++) {
                int r = ty + 16 * i, c = tx + 16 * j;
                Ps[r * LS + c] = p[i][j] * (dp[i][j] - rd[c]);  // dS^T
            }
        __syncthreads();
        mm_ab<RI, CO>(ak, Ps, LS, Qs, LD, BT, ty, tx);  // dk += dS^T Q (scale at the end)
    }
#pragma unroll
    for (int i = 0; i < RI; i++) {
        int kj = k0 + ty + 16 * i;
        if (kj >= Lk) continue;
        long long row = ((long long)b * Lk + kj) * H + h;
#pragma unroll
        for (int j = 0; j < CO; j++) {
            int c = tx + 16 * j;
            if (dk && c < Dk) dk[row * Dk + c] = from_f<T>(to_f(dk[row * Dk + c]) + scale * ak[i][j]);
            if (dv && c < Dv) dv[row * Dv + c] = from_f<T>(to_f(dv[row * Dv + c]) + av[i][j]);
        }
    }
}

// dq (+=) for the BT query rows of block (x, h, b).
template <typename T, int DM, int BT>
__global__ void __launch_bounds__(AT_THREADS)
    attn_bwd_dq_kernel(T *dq, const T *dout, const T *q, const T *k, const T *v, const float *lse,
                       const float *delta, int H, int Lq, int Lk, int Dk, int Dv, float scale, int causal) {
    typedef Cfg<DM, BT> C;
    constexpr int LD = C::LD, LS = C::LS, RI = C::RI, CS = C::CS, CO = C::CO;
    extern __shared__ float sm[];
    float *Qs = sm, *dOs = Qs + BT * LD, *Ks = dOs + BT * LD, *Vs = Ks + BT * LD, *Ss = Vs + BT * LD;
    float *rl = Ss + BT * LS, *rd = rl + BT;
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int b = blockIdx.z, h = blockIdx.y, q0 = blockIdx.x * BT;
    const long long sk = (long long)H * Dk, sv = (long long)H * Dv, bh = (long long)b * H + h;
    const T *qg = q + ((long long)b * Lq * H + h) * Dk, *kg = k + ((long long)b * Lk * H + h) * Dk;
    const T *vg = v + ((long long)b * Lk * H + h) * Dv, *dog = dout + ((long long)b * Lq * H + h) * Dv;

    load_tile<T, BT, DM>(Qs, LD, qg, sk, q0, Lq, Dk);
    load_tile<T, BT, DM>(dOs, LD, dog, sv, q0, Lq, Dv);
    if (tid < BT) {
        int qi = q0 + tid;
        rl[tid] = qi < Lq ? lse[bh * Lq + qi] : 0.f;
        rd[tid] = qi < Lq ? delta[bh * Lq + qi] : 0.f;
    }
    float aq[RI][CO];  // rows: queries ty + 16 i; columns: head dims
#pragma unroll
    for (int i = 0; i < RI; i++)
#pragma unroll
        for (int j = 0; j < CO; j++) aq[i][j] = 0.f;
    const int kend = keys_seen(min(q0 + BT, Lq), Lq, Lk, causal);
    for (int k0 = 0; k0 < kend; k0 += BT) {
        __syncthreads();  // Q / dout tiles and row vectors ready; previous readers done
        load_tile<T, BT, DM>(Ks, LD, kg, sk, k0, Lk, Dk);
        load_tile<T, BT, DM>(Vs, LD, vg, sv, k0, Lk, Dv);
        __syncthreads();
        float s[RI][CS], dp[RI][CS];
        mm_abt<RI, CS>(s, Qs, LD, Ks, LD, Dk, ty, tx);
        mm_abt<RI, CS>(dp, dOs, LD, Vs, LD, Dv, ty, tx);
#pragma unroll
        for (int i = 0; i < RI; i++)
#pragma unroll
            for (int j = 0; j < CS; j++) {
                int r = ty + 16 * i, c = tx + 16 * j;
                float ds = 0.f;
                if (visible(q0 + r, k0 + c, Lq, Lk, causal)) ds = expf(s[i][j] * scale - rl[r]) * (dp[i][j] - rd[r]);
                Ss[r * LS + c] = ds;
            }
        __syncthreads();
        mm_ab<RI, CO>(aq, Ss, LS, Ks, LD, BT, ty, tx);  // dq += dS K (scale at the end)
    }
    if (kend == 0) return;  // nothing to add (no barrier follows)
#pragma unroll
    for (int i = 0; i < RI; i++) {
        int qi = q0 + ty + 16 * i;
        if (qi >= Lq) continue;
        long long row = ((long long)b * Lq + qi) * H + h;
#pragma unroll
        for (int j = 0; j < CO; j++) {
            int c = tx + 16 * j;
            if (c < Dk) dq[row * Dk + c] = from_f<T>(to_f(dq[row * Dk + c]) + scale * aq[i][j]);
        }
    }
}

// ---- launchers ----------------------------------------------------------------------------
typedef struct {
    int B, H, Lq, Lk, Dk, Dv;
    float scale;
    int causal;
} dims;

// Opts kernel f into `bytes` of dynamic shared memory (above the 48 KiB default), or says
// why not.
static zs_status smem_optin(const void *f, size_t bytes, const char *op, int DM) {
    int dev = 0, maxb = 0;
    ZS_CUDA_TRY(cudaGetDevice(&dev));
    ZS_CUDA_TRY(cudaDeviceGetAttribute(&maxb, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (bytes > (size_t)maxb)
        return ZS_ERR(ZS_EUNSUPPORTED, "%s on CUDA: head dim tier %d needs %zu bytes of shared memory, the device allows %d",
                      op, DM, bytes, maxb);
    ZS_CUDA_TRY(cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
    return ZS_OK;
}

template <typename T, int DM, int BT>
static zs_status fwd_launch(T *out, float *lse, const T *q, const T *k, const T *v, const dims &d) {
    typedef Cfg<DM, BT> C;
    auto f = attn_fwd_kernel<T, DM, BT>;
    ZS_TRY(smem_optin((const void *)f, C::fwd_smem(), "attention_fwd", DM));
    dim3 grid(zs_blocks(d.Lq, BT), (unsigned)d.H, (unsigned)d.B);
    f<<<grid, AT_THREADS, C::fwd_smem(), zs_cuda_stream()>>>(out, lse, q, k, v, d.H, d.Lq, d.Lk, d.Dk, d.Dv, d.scale,
                                                          d.causal);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

template <typename T, int DM, int BT>
static zs_status bwd_launch(T *dq, T *dk, T *dv, const T *dout, const T *q, const T *k, const T *v, const float *lse,
                            const float *delta, const dims &d) {
    typedef Cfg<DM, BT> C;
    cudaStream_t s = zs_cuda_stream();
    if (dk || dv) {
        auto f = attn_bwd_dkdv_kernel<T, DM, BT>;
        ZS_TRY(smem_optin((const void *)f, C::bwd_smem(), "attention_bwd", DM));
        f<<<dim3(zs_blocks(d.Lk, BT), (unsigned)d.H, (unsigned)d.B), AT_THREADS, C::bwd_smem(), s>>>(
            dk, dv, dout, q, k, v, lse, delta, d.H, d.Lq, d.Lk, d.Dk, d.Dv, d.scale, d.causal);
        ZS_CUDA_LAUNCHED();
    }
    if (dq) {
        auto f = attn_bwd_dq_kernel<T, DM, BT>;
        ZS_TRY(smem_optin((const void *)f, C::bwd_smem(), "attention_bwd", DM));
        f<<<dim3(zs_blocks(d.Lq, BT), (unsigned)d.H, (unsigned)d.B), AT_THREADS, C::bwd_smem(), s>>>(
            dq, dout, q, k, v, lse, delta, d.H, d.Lq, d.Lk, d.Dk, d.Dv, d.scale, d.causal);
        ZS_CUDA_LAUNCHED();
    }
    return ZS_OK;
}

// Head dim tiers: max(Dk, Dv) <= 64, 96, 128, 160. Tiles of 64 rows, except the 160 tier's
// backward (32: 87 KiB of shared memory instead of 197 KiB, which A100s do not have).
template <typename T>
static zs_status attn_fwd(T *out, float *lse, const T *q, const T *k, const T *v, const dims &d) {
    int D = d.Dk > d.Dv ? d.Dk : d.Dv;
    if (D <= 64) return fwd_launch<T, 64, 64>(out, lse, q, k, v, d);
    if (D <= 96) return fwd_launch<T, 96, 64>(out, lse, q, k, v, d);
    if (D <= 128) return fwd_launch<T, 128, 64>(out, lse, q, k, v, d);
    return fwd_launch<T, 160, 64>(out, lse, q, k, v, d);
}

extern "C" zs_status zs_attention_tc_bwd_cuda(void *dq, void *dk, void *dv, const void *dout, const void *q,
                                              const void *k, const void *v, const float *lse, const float *delta,
                                              zs_dtype dt, int B, int H, int Lq, int Lk, int Dk, int Dv, float scale,
                                              int causal);  // attention_tc_bwd.cu

// tc: F16 / BF16 on tensor cores (attention_tc_bwd.cu) where the GPU's shared memory allows,
// else the CUDA-core kernels.
template <typename T>
static zs_status attn_bwd(T *dq, T *dk, T *dv, const T *dout, const T *q, const T *k, const T *v, const T *out,
                          const float *lse, const dims &d, zs_dtype dt, int tc) {
    cudaStream_t s = zs_cuda_stream();
    long long rows = (long long)d.B * d.Lq * d.H;
    float *delta = NULL;
    ZS_CUDA_TRY(cudaMallocAsync((void **)&delta, (size_t)rows * sizeof(float), s));
    attn_delta_kernel<T><<<zs_blocks(rows, 8), dim3(32, 8), 0, s>>>(delta, dout, out, d.H, d.Lq, d.Dv, rows);
    cudaError_t e = cudaGetLastError();
    zs_status st = ZS_OK;
    if (e != cudaSuccess) {
        st = ZS_ERR(ZS_ECUDA, "attention_bwd: delta kernel: %s", cudaGetErrorString(e));
    } else {
        int D = d.Dk > d.Dv ? d.Dk : d.Dv;
        st = tc ? zs_attention_tc_bwd_cuda(dq, dk, dv, dout, q, k, v, lse, delta, dt, d.B, d.H, d.Lq, d.Lk, d.Dk, d.Dv,
                                           d.scale, d.causal)
                : ZS_EUNSUPPORTED;
        if (st == ZS_EUNSUPPORTED) {  // CUDA cores: asked for, or the tier does not fit
            if (D <= 64) st = bwd_launch<T, 64, 64>(dq, dk, dv, dout, q, k, v, lse, delta, d);
            else if (D <= 96) st = bwd_launch<T, 96, 64>(dq, dk, dv, dout, q, k, v, lse, delta, d);
            else if (D <= 128) st = bwd_launch<T, 128, 64>(dq, dk, dv, dout, q, k, v, lse, delta, d);
            else st = bwd_launch<T, 160, 32>(dq, dk, dv, dout, q, k, v, lse, delta, d);
        }
    }
    cudaError_t f = cudaFreeAsync(delta, s);
    if (st) return st;
    ZS_CUDA_TRY(f);
    return ZS_OK;
}

enum { ATTN_MAX_D = 160 };

static zs_status dims_of(dims *d, const char *op, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t Dk, int64_t Dv,
                         float scale, int causal) {
    if (Dk > ATTN_MAX_D || Dv > ATTN_MAX_D)
        return ZS_ERR(ZS_EUNSUPPORTED, "%s on CUDA: head dims Dk=%lld Dv=%lld: supported up to %d", op, (long long)Dk,
                      (long long)Dv, ATTN_MAX_D);
    if (B > 65535 || H > 65535 || Lq > INT32_MAX - 64 || Lk > INT32_MAX - 64)
        return ZS_ERR(ZS_EUNSUPPORTED, "%s on CUDA: B=%lld H=%lld Lq=%lld Lk=%lld too large (B, H <= 65535)", op,
                      (long long)B, (long long)H, (long long)Lq, (long long)Lk);
    d->B = (int)B, d->H = (int)H, d->Lq = (int)Lq, d->Lk = (int)Lk, d->Dk = (int)Dk, d->Dv = (int)Dv;
    d->scale = scale;
    d->causal = causal;
    return ZS_OK;
}

}  // namespace

extern "C" zs_status zs_attention_wide_fwd_cuda(void *out, float *lse, const void *q, const void *k, const void *v,
                                                zs_dtype dt, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t Dk,
                                                int64_t Dv, float scale, int causal);  // attention_wide.cu
extern "C" zs_status zs_attention_wide_bwd_cuda(void *dq, void *dk, void *dv, const void *dout, const void *q,
                                                const void *k, const void *v, const void *out, const float *lse,
                                                zs_dtype dt, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t Dk,
                                                int64_t Dv, float scale, int causal);

extern "C" zs_status zs_attention_tc_fwd_cuda(void *out, float *lse, const void *q, const void *k, const void *v,
                                              zs_dtype dt, int B, int H, int Lq, int Lk, int Dk, int Dv, float scale,
                                              int causal);  // attention_tc.cu

// Which path runs (head dims past 160 always take the materialised-score path,
// attention_wide.cu). F32: the fused CUDA-core kernels above. F16 / BF16: tensor cores, the
// forward in attention_tc.cu and the backward in attention_tc_bwd.cu (either falls back to the
// CUDA-core kernels where a head-dim tier needs more shared memory than the GPU has). The
// environment overrides it (benchmarks; or a path that misbehaves on some GPU): ZS_ATTN=simt
// keeps F16 / BF16 on the CUDA-core kernels, ZS_ATTN=gemm takes the tensor-core forward and
// the cuBLAS backward with materialised scores (attention_wide.cu) at every size.
enum { BWD_SIMT = 0, BWD_GEMM = 1, BWD_TC = 2 };
static int g_tc_fwd = -1, g_bwd = -1;  // test hook: -1 as above; else forced (0 / 1, BWD_*)

extern "C" void zs_attention_cuda_paths(int tc_fwd, int bwd) { g_tc_fwd = tc_fwd, g_bwd = bwd; }

static int env_mode(void) {  // 0 auto, 1 simt, 2 gemm
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("ZS_ATTN");
        v = e && !strcmp(e, "simt") ? 1 : e && !strcmp(e, "gemm") ? 2 : 0;
    }
    return v;
}
static int use_tc_fwd(zs_dtype dt) { return dt != ZS_F32 && (g_tc_fwd >= 0 ? g_tc_fwd : env_mode() != 1); }
static int bwd_path(zs_dtype dt) {
    if (dt == ZS_F32) return BWD_SIMT;
    if (g_bwd >= 0) return g_bwd;
    return env_mode() == 1 ? BWD_SIMT : env_mode() == 2 ? BWD_GEMM : BWD_TC;
}

extern "C" zs_status zs_attention_fwd_cuda(void *out, float *lse, const void *q, const void *k, const void *v,
                                           zs_dtype dt, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t Dk,
                                           int64_t Dv, float scale, int causal) {
    if (Dk > ATTN_MAX_D || Dv > ATTN_MAX_D)
        return zs_attention_wide_fwd_cuda(out, lse, q, k, v, dt, B, H, Lq, Lk, Dk, Dv, scale, causal);
    dims d = {0, 0, 0, 0, 0, 0, 0.f, 0};
    ZS_TRY(dims_of(&d, "attention_fwd", B, H, Lq, Lk, Dk, Dv, scale, causal));
    if (use_tc_fwd(dt)) {
        // ZS_EUNSUPPORTED: the head dim's tile needs more shared memory than this GPU has (the
        // 128 and 160 tiers on sm_86 / sm_89): the CUDA-core kernel below takes it.
        zs_status s = zs_attention_tc_fwd_cuda(out, lse, q, k, v, dt, d.B, d.H, d.Lq, d.Lk, d.Dk, d.Dv, scale, causal);
        if (s != ZS_EUNSUPPORTED) return s;
    }
    ZS_DISPATCH_DT("attention_fwd", dt,
                   attn_fwd<T_>((T_ *)out, lse, (const T_ *)q, (const T_ *)k, (const T_ *)v, d));
}

extern "C" zs_status zs_attention_bwd_cuda(void *dq, void *dk, void *dv, const void *dout, const void *q,
                                           const void *k, const void *v, const void *out, const float *lse,
                                           zs_dtype dt, int64_t B, int64_t H, int64_t Lq, int64_t Lk, int64_t Dk,
                                           int64_t Dv, float scale, int causal) {
    const int path = bwd_path(dt);
    if (Dk > ATTN_MAX_D || Dv > ATTN_MAX_D || path == BWD_GEMM)
        return zs_attention_wide_bwd_cuda(dq, dk, dv, dout, q, k, v, out, lse, dt, B, H, Lq, Lk, Dk, Dv, scale, causal);
    dims d = {0, 0, 0, 0, 0, 0, 0.f, 0};
    ZS_TRY(dims_of(&d, "attention_bwd", B, H, Lq, Lk, Dk, Dv, scale, causal));
    ZS_DISPATCH_DT("attention_bwd", dt,
                   attn_bwd<T_>((T_ *)dq, (T_ *)dk, (T_ *)dv, (const T_ *)dout, (const T_ *)q, (const T_ *)k,
                                (const T_ *)v, (const T_ *)out, lse, d, dt, path == BWD_TC));
}
