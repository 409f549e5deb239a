// Sampler step arithmetic on CUDA: one thread per element, the same per-element functions
// as the CPU loops (models/scheduler_elem.h, rounded op by op with __f*_rn: no contraction).
#include "kernels/cuda_ops.cuh"
#include "models/scheduler_elem.h"

template <typename T>
__global__ void sched_fwd_kernel(zs_sched_elem e, T *out, const T *x, const T *m, T *p, long long n) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    float pv = p && e.order2 ? to_f(p[i]) : 0.0f;  // read only when used: the first DPM step's p is uninitialised
    float y = zs_se_fwd(&e, to_f(x[i]), m ? to_f(m[i]) : 0.0f, &pv);
    if (p) p[i] = from_f<T>(pv);
    out[i] = from_f<T>(y);
}

template <typename T>
__global__ void sched_bwd_kernel(zs_sched_elem e, T *dx, T *dm, const T *g, const T *x, const T *m, T *carry,
                                 long long n) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= n) return;
    float vdx = dx ? to_f(dx[i]) : 0.0f, vdm = dm ? to_f(dm[i]) : 0.0f, vc = carry ? to_f(carry[i]) : 0.0f;
    zs_se_bwd(&e, to_f(g[i]), x ? to_f(x[i]) : 0.0f, m ? to_f(m[i]) : 0.0f, dx ? &vdx : NULL, dm ? &vdm : NULL,
              carry ? &vc : NULL);
    if (dx) dx[i] = from_f<T>(vdx);
    if (dm) dm[i] = from_f<T>(vdm);
    if (carry) carry[i] = from_f<T>(vc);
}

template <typename T>
static zs_status sched_fwd(const zs_sched_elem *e, T *out, const T *x, const T *m, T *p, int64_t n) {
    sched_fwd_kernel<T><<<zs_blocks(n, 256), 256, 0, zs_cuda_stream()>>>(*e, out, x, m, p, n);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

template <typename T>
static zs_status sched_bwd(const zs_sched_elem *e, T *dx, T *dm, const T *g, const T *x, const T *m, T *carry,
                           int64_t n) {
    sched_bwd_kernel<T><<<zs_blocks(n, 256), 256, 0, zs_cuda_stream()>>>(*e, dx, dm, g, x, m, carry, n);
    ZS_CUDA_LAUNCHED();
    return ZS_OK;
}

extern "C" zs_status zs_sched_elem_fwd_cuda(const zs_sched_elem *e, zs_dtype dt, void *out, const void *x,
                                            const void *m, void *p, int64_t n) {
    ZS_DISPATCH_DT("sched_step", dt, sched_fwd<T_>(e, (T_ *)out, (const T_ *)x, (const T_ *)m, (T_ *)p, n));
}

extern "C" zs_status zs_sched_elem_bwd_cuda(const zs_sched_elem *e, zs_dtype dt, void *dx, void *dm, const void *g,
                                            const void *x, const void *m, void *carry, int64_t n) {
    ZS_DISPATCH_DT("sched_step_bwd", dt,
                   sched_bwd<T_>(e, (T_ *)dx, (T_ *)dm, (const T_ *)g, (const T_ *)x, (const T_ *)m, (T_ *)carry, n));
}
