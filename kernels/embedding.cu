// Embedding on CUDA. Forward: one thread per output element. Backward: deterministic
// scatter-add without atomics: the (id, position) pairs are radix-sorted (stable), and each
// run of equal ids is owned by one block, which adds its dy rows in original order.
// Ids outside [0, V) are not checked here (that would cost a sync): they read as zero rows
// forward and are skipped backward.
#include <cub/cub.cuh>
#include "cuda_ops.cuh"

template <typename T>
__global__ void emb_fwd_kernel(T *y, const int32_t *ids, const T *table, long long N, long long C, long long V) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= N * C) return;
    long long n = i / C, c = i % C;
    int32_t id = ids[n];
    y[i] = (id >= 0 && id < V) ? table[(long long)id * C + c] : from_f<T>(0.0f);
}

__global__ void iota_kernel(int32_t *p, long long n) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i < n) p[i] = (int32_t)i;
}

// One block per sorted position; the first position of each run of equal ids sums the run's
// dy rows into dtable[id] in original order (the radix sort is stable), fp32, one rounding.
template <typename T>
__global__ void emb_bwd_runs_kernel(T *dtable, const int32_t *sid, const int32_t *spos, const T *dy, long long N,
                                    long long C, long long V) {
    long long i = blockIdx.x;
    int32_t id = sid[i];
    if ((i > 0 && sid[i - 1] == id) || id < 0 || id >= V) return;  // not a run head, or invalid id
    long long end = i + 1;
    while (end < N && sid[end] == id) end++;
    T *row = dtable + (long long)id * C;
    for (long long c = threadIdx.x; c < C; c += blockDim.x) {
        float acc = to_f(row[c]);
        for (long long k = i; k < end; k++) acc += to_f(dy[(long long)spos[k] * C + c]);
        row[c] = from_f<T>(acc);
    }
}

template <typename T>
static zs_status emb_fwd(T *y, const int32_t *ids, const T *table, int64_t N, int64_t C, int64_t V) {
    emb_fwd_kernel<T><<<zs_blocks(N * C, 256), 256, 0, zs_cuda_stream()>>>(y, ids, table, N, C, V);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

// Sorts (id, position) pairs with cub's stable radix sort, then one block per run of equal
// ids. Scratch from the stream-ordered allocator.
template <typename T>
static zs_status emb_bwd(T *dtable, const int32_t *ids, const T *dy, int64_t N, int64_t C, int64_t V) {
    if (N > INT32_MAX) return ZS_ERR(ZS_EUNSUPPORTED, "embedding_bwd on CUDA: %lld ids, at most 2^31 - 1", (long long)N);
    cudaStream_t s = zs_cuda_stream();
    size_t tmp = 0, a = ((size_t)N * sizeof(int32_t) + 255) / 256 * 256;
    ZS_CUDA_TRY(cub::DeviceRadixSort::SortPairs(NULL, tmp, ids, (int32_t *)NULL, (const int32_t *)NULL,
                                                (int32_t *)NULL, (int)N, 0, 32, s));
    char *buf = NULL;
    ZS_CUDA_TRY(cudaMallocAsync((void **)&buf, 3 * a + tmp, s));
    int32_t *sid = (int32_t *)buf, *pin = (int32_t *)(buf + a), *pout = (int32_t *)(buf + 2 * a);
    iota_kernel<<<zs_blocks(N, 256), 256, 0, s>>>(pin, N);
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) e = cub::DeviceRadixSort::SortPairs(buf + 3 * a, tmp, ids, sid, pin, pout, (int)N, 0, 32, s);
    if (e == cudaSuccess) {
        emb_bwd_runs_kernel<T><<<(unsigned)N, 128, 0, s>>>(dtable, sid, pout, dy, N, C, V);
        e = cudaGetLastError();
    }
    cudaError_t f = cudaFreeAsync(buf, s);
    if (e != cudaSuccess) return ZS_ERR(ZS_ECUDA, "embedding_bwd (%lld ids): %s", (long long)N, cudaGetErrorString(e));
    ZS_CUDA_TRY(f);
    return ZS_OK;
}

extern "C" zs_status zs_embedding_fwd_cuda(void *y, const int32_t *ids, const void *table, zs_dtype dt, int64_t N,
                                           int64_t C, int64_t V) {
    ZS_DISPATCH_DT("embedding_fwd", dt, emb_fwd<T_>((T_ *)y, ids, (const T_ *)table, N, C, V));
}

extern "C" zs_status zs_embedding_bwd_cuda(void *dtable, const int32_t *ids, const void *dy, zs_dtype dt, int64_t N,
                                           int64_t C, int64_t V) {
    ZS_DISPATCH_DT("embedding_bwd", dt, emb_bwd<T_>((T_ *)dtable, ids, (const T_ *)dy, N, C, V));
}
