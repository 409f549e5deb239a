// CPU emulation of the CUDA features the tensor-core attention kernels use, for checking them
// on a machine without a GPU (tools/cuda_emu/README.md).
//
//   * threads: the 128 threads of a block are coroutines (ucontext) run one block at a time;
//     __syncthreads / __syncwarp / __shfl_xor_sync are real rendezvous (a thread that never
//     arrives is a deadlock, threads arriving at different barriers are reported);
//   * WMMA: fragments hold the full 16x16 matrix (in every lane: the register layout is opaque
//     to the kernels anyway); each operation is done once per warp (arguments checked to be
//     warp-uniform); loads / stores check the WMMA pointer and ldm rules; mma_sync multiplies
//     the dtype inputs exactly and accumulates in fp32;
//   * memory: kernel pointers are ptr<T> (bounds-, alignment-checked, tagged with a region);
//     shared memory is carved into the kernel's sub-regions (a stray access into a neighbour
//     region is reported), its bytes start as NaN garbage, reads of never-written shared bytes
//     are reported, and a barrier-epoch race checker reports RAW / WAR / WAW races between
//     threads not ordered by a __syncthreads (or, within a warp, by a __syncwarp / collective);
//   * global outputs can count writes per byte (the drivers check "written exactly once").
//
// extract.sh turns the kernel sources into code for this header (T * -> ptr<T>,
// reinterpret_cast -> rcast, extern __shared__ -> emu_smem()).  C++17 (g++, clang).
#pragma once
#include <ucontext.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

// ============================================================================ error reporting

inline long g_errors = 0;           // emulator errors so far (the drivers' "emu errors")
inline int g_err_printed = 0;       // only the first g_err_max are printed
inline int g_err_max = 30;
inline bool g_abort_on_error = false;  // --abort: abort() at the first error (for a debugger)

inline const char *emu_where();  // "thread t, block (x,y,z), last sync/wmma at file:line"

#define EMU_ERR(...)                                                                    \
    do {                                                                                \
        g_errors++;                                                                     \
        if (g_err_printed < g_err_max) {                                                \
            g_err_printed++;                                                            \
            fprintf(stderr, "EMU ERROR: " __VA_ARGS__);                                 \
            fprintf(stderr, " [%s]\n", emu_where());                                  \
        }                                                                               \
        if (g_abort_on_error) abort();                                                  \
    } while (0)

// ============================================================================ 16-bit types

// IEEE binary16 and bfloat16 as bit patterns (no compiler extension needed); conversions from
// float round to nearest even, as __float2half_rn / __float2bfloat16_rn.
struct f16 {
    uint16_t b;
};
struct bf16 {
    uint16_t b;
};
inline float to_f(f16 x) {
    const uint32_t s = (uint32_t)(x.b & 0x8000u) << 16, e = (x.b >> 10) & 0x1fu, m = x.b & 0x3ffu;
    if (e == 0) {  // zero / subnormal: m * 2^-24
        const float v = (float)m * 5.9604644775390625e-8f;
        return s ? -v : v;
    }
    const uint32_t u = e == 31 ? (s | 0x7f800000u | (m << 13)) : (s | ((e + 112u) << 23) | (m << 13));
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline float to_f(bf16 x) {
    const uint32_t u = (uint32_t)x.b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline float to_f(float x) { return x; }
template <typename T> T from_f(float v);
template <> inline f16 from_f<f16>(float v) {  // checked bit-exact against _Float16 (g++ 12, x86)
    uint32_t x;
    memcpy(&x, &v, 4);
    const uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return f16{(uint16_t)(sign | 0x7e00u)};   // NaN
    if (ax >= 0x47800000u) return f16{(uint16_t)(sign | 0x7c00u)};  // >= 2^16: inf
    if (ax < 0x38800000u) {                                          // < 2^-14: subnormal / zero
        float a;
        memcpy(&a, &ax, 4);
        return f16{(uint16_t)(sign | (uint32_t)nearbyintf(a * 16777216.f))};  // multiples of 2^-24
    }
    uint32_t h = (((ax >> 23) - 112u) << 10) | ((ax & 0x7fffffu) >> 13);
    const uint32_t rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;  // may carry into the exponent / inf
    return f16{(uint16_t)(sign | h)};
}
template <> inline bf16 from_f<bf16>(float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{(uint16_t)((u >> 16) | 0x40)};  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return bf16{(uint16_t)(u >> 16)};
}
template <> inline float from_f<float>(float v) { return v; }
template <typename T> inline float rnd(float v) { return to_f(from_f<T>(v)); }  // round to the dtype

struct uint4 {
    unsigned x, y, z, w;
};
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return uint4{a, b, c, d}; }

// ============================================================================ threads, barriers

// Accessor ids for the race checker: threads 0..127, and 128 + w for warp w's collective WMMA
// operations (a warp-wide load / store is one access by the warp, ordered within it by the
// rendezvous that starts it).
enum { NT = 128, NW = 4, NACC = NT + NW };

struct Dim3 {
    unsigned x, y, z;
};
inline Dim3 threadIdx, blockIdx, blockDim, gridDim;

struct EmuThread {
    ucontext_t ctx;
    std::vector<char> stack;
    bool done = false;
    const char *file = "";  // last barrier / shfl / wmma call of this thread
    int line = 0;
};
inline EmuThread g_th[NT];
inline ucontext_t g_sched;
inline int g_cur = 0;   // running thread
inline int g_acc = 0;   // current accessor id (g_cur, or NT + warp inside a WMMA operation)
inline long g_progress = 0;

inline bool g_in_kernel = false;  // inside emu_run_grid
inline const char *emu_where() {
    static char buf[512];
    if (!g_in_kernel) return "host";
    snprintf(buf, sizeof buf, "thread %d, block (%u,%u,%u), last sync/wmma at %s:%d", g_cur, blockIdx.x, blockIdx.y,
             blockIdx.z, g_th[g_cur].file, g_th[g_cur].line);
    return buf;
}

struct SyncPt {
    int arrived = 0;
    unsigned gen = 0;
    const char *file = nullptr;
    int line = -1, kind = -1;
};
inline SyncPt g_blk, g_wsp[NW];
inline uint32_t g_B = 0, g_W[NW];  // epochs: block barriers passed, per-warp barriers passed

inline void emu_yield() { swapcontext(&g_th[g_cur].ctx, &g_sched); }

enum { RV_BLOCK, RV_WARP, RV_SHFL, RV_WMMA };
inline const char *rv_name(int k) {
    static const char *n[] = {"__syncthreads", "__syncwarp", "shfl", "wmma"};
    return n[k];
}

// Waits until n threads have arrived at s; all of them must come from the same call site.
// Returns true in the thread that arrived last: it goes on at once, before any of the others
// has run again (they resume, in thread order, when it next yields).
inline bool emu_rendezvous(SyncPt &s, int n, int kind, const char *file, int line) {
    g_th[g_cur].file = file, g_th[g_cur].line = line;
    if (s.arrived == 0) s.file = file, s.line = line, s.kind = kind;
    else if (s.line != line || s.kind != kind || strcmp(s.file, file))
        EMU_ERR("divergent rendezvous: %s at %s:%d vs %s at %s:%d", rv_name(kind), file, line, rv_name(s.kind), s.file,
                s.line);
    const unsigned g = s.gen;
    if (++s.arrived == n) {
        s.arrived = 0;
        s.gen++;
        g_progress++;
        if (kind == RV_BLOCK) g_B++;
        if (kind == RV_WARP) g_W[g_cur >> 5]++;
        return true;
    }
    while (s.gen == g) emu_yield();
    g_progress++;
    return false;
}
inline void emu_syncthreads(const char *file, int line) { emu_rendezvous(g_blk, NT, RV_BLOCK, file, line); }
inline void emu_syncwarp(const char *file, int line, unsigned mask = 0xffffffffu) {
    if (mask != 0xffffffffu) EMU_ERR("__syncwarp mask %x (only full warps are emulated)", mask);
    emu_rendezvous(g_wsp[g_cur >> 5], 32, RV_WARP, file, line);
}
inline float g_shfl_slot[NT];
inline float emu_shfl_xor(unsigned mask, float v, int lanemask, const char *file, int line) {
    if (mask != 0xffffffffu) EMU_ERR("__shfl_xor_sync mask %x (only full warps are emulated)", mask);
    g_shfl_slot[g_cur] = v;
    emu_rendezvous(g_wsp[g_cur >> 5], 32, RV_SHFL, file, line);
    const float r = g_shfl_slot[(g_cur & ~31) | ((g_cur & 31) ^ lanemask)];
    emu_rendezvous(g_wsp[g_cur >> 5], 32, RV_SHFL, file, line);  // slot reuse guard (not a memory fence)
    return r;
}
#define __syncthreads() emu_syncthreads(__FILE__, __LINE__)
#define __syncwarp(...) emu_syncwarp(__FILE__, __LINE__ __VA_OPT__(, ) __VA_ARGS__)  // mask checked
#define __shfl_xor_sync(m, v, l) emu_shfl_xor(m, v, l, __FILE__, __LINE__)

// ============================================================================ memory, checker

struct Region {
    std::string name;
    char *lo, *hi;
    bool shared;
    std::vector<int> *wcount;  // global outputs: writes per byte (nullptr: not counted)
};

// Race checker state per shared byte: the last write, and per warp the last read(s), each
// stamped with the block epoch B and the warp epoch W.  Two accesses conflict when they are
// in the same block epoch and either come from different warps or from the same warp within
// the same warp epoch (and from different accessors).
struct WInfo {
    int16_t acc = -1;
    uint32_t B = 0, W = 0;
};
struct RInfo {
    int16_t acc = -1;  // -2: read by several accessors of the warp in this epoch
    uint32_t B = 0, W = 0;
};
inline char *g_smem = nullptr;
inline size_t g_smem_size = 0;
inline std::vector<WInfo> g_sw;   // [byte]
inline std::vector<RInfo> g_sr;   // [byte * NW + warp]
inline Region g_smem_root;
inline std::vector<Region> g_smem_sub;
inline bool g_check_init = true;  // report reads of never-written shared bytes
inline int acc_warp(int a) { return a < NT ? a >> 5 : a - NT; }

inline void chk_bounds(const char *p, size_t n, size_t align, const Region *r, const char *what) {
    if (!r) {
        EMU_ERR("%s through a pointer without a region (null or unknown)", what);
        return;
    }
    if (p < r->lo || p + n > r->hi)
        EMU_ERR("%s out of bounds of %s: offset %lld size %zu, region size %lld", what, r->name.c_str(),
                (long long)(p - r->lo), n, (long long)(r->hi - r->lo));
    if ((uintptr_t)p % align)
        EMU_ERR("%s misaligned (%zu) in %s offset %lld", what, align, r->name.c_str(), (long long)(p - r->lo));
}

inline void shared_access(const char *p, size_t n, bool write) {
    if (p < g_smem || p + n > g_smem + g_smem_size) return;  // reported by chk_bounds
    const int a = g_acc, w = acc_warp(a);
    for (size_t i = 0; i < n; i++) {
        const size_t x = (size_t)(p - g_smem) + i;
        WInfo &wi = g_sw[x];
        const bool w_conflict = wi.acc != -1 && wi.acc != a && wi.B == g_B && (acc_warp(wi.acc) != w || wi.W == g_W[w]);
        if (!write) {
            if (wi.acc == -1) {
                if (g_check_init) EMU_ERR("read of uninitialised shared byte %zu", x);
            } else if (w_conflict)
                EMU_ERR("RAW race at shared byte %zu: written by acc %d (B %u W %u), read by acc %d (B %u W %u)", x,
                        wi.acc, wi.B, wi.W, a, g_B, g_W[w]);
            RInfo &r = g_sr[x * NW + w];
            if (r.acc != -1 && r.B == g_B && r.W == g_W[w]) {
                if (r.acc != a) r.acc = -2;
            } else
                r.acc = (int16_t)a, r.B = g_B, r.W = g_W[w];
        } else {
            if (w_conflict) EMU_ERR("WAW race at shared byte %zu: acc %d then acc %d", x, wi.acc, a);
            for (int w2 = 0; w2 < NW; w2++) {
                const RInfo &r = g_sr[x * NW + w2];
                if (r.acc == -1 || r.B != g_B) continue;
                if (w2 != w || (r.W == g_W[w] && r.acc != a))
                    EMU_ERR("WAR race at shared byte %zu: read by acc %d (warp %d, W %u), written by acc %d (W %u)", x,
                            r.acc, w2, r.W, a, g_W[w]);
            }
            wi.acc = (int16_t)a, wi.B = g_B, wi.W = g_W[w];
        }
    }
}

// A checked lvalue: reads and writes go through the bounds / race checks.
template <typename T> struct ref {
    typedef typename std::remove_const<T>::type U;
    static constexpr size_t align = sizeof(T) > 8 ? 16 : sizeof(T);
    T *p;
    const Region *reg;
    operator U() const {
        chk_bounds((const char *)p, sizeof(T), align, reg, "read");
        if (reg && reg->shared) shared_access((const char *)p, sizeof(T), false);
        return *p;
    }
    ref &operator=(const U &v) {
        static_assert(!std::is_const<T>::value, "write through a const pointer");
        chk_bounds((const char *)p, sizeof(T), align, reg, "write");
        if (reg && reg->shared) shared_access((const char *)p, sizeof(T), true);
        if (reg && reg->wcount && (const char *)p >= reg->lo && (const char *)p + sizeof(T) <= reg->hi)
            for (size_t i = 0; i < sizeof(T); i++) (*reg->wcount)[((const char *)p - reg->lo) + i]++;
        *(U *)p = v;
        return *this;
    }
    ref &operator=(const ref &o) { return *this = (U)o; }
    ref &operator*=(float f) { return *this = (U)(*this) * f; }
    ref &operator+=(float f) { return *this = (U)(*this) + f; }
};

// A checked pointer: the raw address plus the region it may access.
template <typename T> struct ptr {
    T *p = nullptr;
    const Region *reg = nullptr;
    ptr() {}
    ptr(T *p_, const Region *r) : p(p_), reg(r) {}
    template <typename V, typename = typename std::enable_if<std::is_same<const V, T>::value &&
                                                             !std::is_same<V, T>::value>::type>
    ptr(const ptr<V> &o) : p(o.p), reg(o.reg) {}  // T * -> const T *
    ptr operator+(long long i) const { return ptr(p + i, reg); }
    explicit operator bool() const { return p != nullptr; }
    ref<T> operator[](long long i) const { return ref<T>{p + i, reg}; }
    ref<T> operator*() const { return ref<T>{p, reg}; }
};

// reinterpret_cast<U *>(x).  From the raw shared base (emu_smem()), the result's region narrows
// to the sub-region the pointer starts in, so an access that strays into a neighbour is caught.
template <typename U, typename T> ptr<U> rcast(const ptr<T> &x) {
    const Region *r = x.reg;
    if (r == &g_smem_root) {
        r = nullptr;
        for (const Region &s : g_smem_sub)
            if ((char *)x.p >= s.lo && (char *)x.p < s.hi) r = &s;
        if (!r) EMU_ERR("shared pointer at offset %lld in no sub-region", (long long)((char *)x.p - g_smem));
    }
    return ptr<U>((U *)x.p, r);
}
inline ptr<unsigned char> emu_smem() { return ptr<unsigned char>((unsigned char *)g_smem, &g_smem_root); }

// ============================================================================ WMMA

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

// x[i][j]: element (row i, column j) of the 16x16 matrix (A: M x K, B: K x N, C: M x N).
template <class Use, int M, int N, int K, class T, class L = void> struct fragment {
    static_assert(M == 16 && N == 16 && K == 16, "only 16x16x16 fragments are emulated");
    float x[16][16];
};

// Every WMMA operation is warp-collective: a rendezvous of the warp's 32 lanes, all at the same
// call site with the same pointer and ldm (checked).  The lane that arrives last (the leader)
// does the operation once, under the warp's accessor id (the race checker sees one warp-wide
// access), and leaves the resulting fragment in the warp's slot; the other lanes copy it from
// there when they resume, which is before any lane of the warp can reach the next rendezvous.
struct WmmaSlot {
    float x[16][16];
};
inline WmmaSlot g_wmma_slot[NW];
inline const void *g_wmma_arg_p[NT];
inline unsigned g_wmma_arg_ldm[NT];

inline bool wmma_enter(const void *p, unsigned ldm, const char *file, int line) {
    g_wmma_arg_p[g_cur] = p, g_wmma_arg_ldm[g_cur] = ldm;
    if (!emu_rendezvous(g_wsp[g_cur >> 5], 32, RV_WMMA, file, line)) return false;
    const int l0 = g_cur & ~31;
    for (int l = l0; l < l0 + 32; l++)
        if (g_wmma_arg_p[l] != p || g_wmma_arg_ldm[l] != ldm) {
            EMU_ERR("wmma arguments differ across the warp: lane %d (%p, ldm %u) vs lane %d (%p, ldm %u)", l & 31,
                    g_wmma_arg_p[l], g_wmma_arg_ldm[l], g_cur & 31, p, ldm);
            break;
        }
    g_acc = NT + (g_cur >> 5);
    return true;
}
inline void wmma_leave(const float (*x)[16]) {  // leader: publishes the result (x may be null)
    if (x) memcpy(g_wmma_slot[g_cur >> 5].x, x, sizeof(WmmaSlot::x));
    g_acc = g_cur;
}
inline void wmma_take(float (*x)[16]) { memcpy(x, g_wmma_slot[g_cur >> 5].x, sizeof(WmmaSlot::x)); }  // others

template <class T> void chk_ptr(const ptr<T> &p, unsigned ldm, const char *what) {
    typedef typename std::remove_const<T>::type U;
    if (!p.reg || !p.reg->shared) {
        EMU_ERR("%s: pointer not in shared memory", what);
        return;
    }
    if (((const char *)p.p - g_smem) % 32)
        EMU_ERR("%s: pointer offset %lld not 256-bit aligned", what, (long long)((const char *)p.p - g_smem));
    if (sizeof(U) == 2 && ldm % 8) EMU_ERR("%s: ldm %u not a multiple of 8 (16-bit elements)", what, ldm);
    if (sizeof(U) == 4 && ldm % 4) EMU_ERR("%s: ldm %u not a multiple of 4 (fp32 elements)", what, ldm);
}

// Element (i, j) of the 16x16 matrix at p: stride ldm between rows (row-major) or columns.
template <class T, class U> void wmma_load_(float (*x)[16], ptr<U> p, unsigned ldm, bool col, const char *what,
                                            const char *file, int line) {
    static_assert(std::is_same<typename std::remove_const<U>::type, T>::value, "fragment / pointer type mismatch");
    if (!wmma_enter(p.p, ldm, file, line)) return wmma_take(x);
    chk_ptr(p, ldm, what);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) x[i][j] = to_f((T)p[col ? (long long)j * ldm + i : (long long)i * ldm + j]);
    wmma_leave(x);
}
template <class T, class U>
void load_matrix_sync_(fragment<matrix_a, 16, 16, 16, T, row_major> &f, ptr<U> p, unsigned ldm, const char *file,
                       int line) {
    wmma_load_<T>(f.x, p, ldm, false, "load_matrix_sync (matrix_a, row_major)", file, line);
}
template <class T, class U>
void load_matrix_sync_(fragment<matrix_b, 16, 16, 16, T, col_major> &f, ptr<U> p, unsigned ldm, const char *file,
                       int line) {
    wmma_load_<T>(f.x, p, ldm, true, "load_matrix_sync (matrix_b, col_major)", file, line);
}
template <class T, class U>
void load_matrix_sync_(fragment<matrix_b, 16, 16, 16, T, row_major> &f, ptr<U> p, unsigned ldm, const char *file,
                       int line) {
    wmma_load_<T>(f.x, p, ldm, false, "load_matrix_sync (matrix_b, row_major)", file, line);
}
template <class U>
void load_matrix_sync_(fragment<accumulator, 16, 16, 16, float> &f, ptr<U> p, unsigned ldm, layout_t l,
                       const char *file, int line) {
    static_assert(std::is_same<typename std::remove_const<U>::type, float>::value, "accumulator: fp32 only");
    if (l != mem_row_major) EMU_ERR("col-major accumulator not emulated");
    wmma_load_<float>(f.x, p, ldm, false, "load_matrix_sync (accumulator)", file, line);
}
inline void store_matrix_sync_(ptr<float> p, const fragment<accumulator, 16, 16, 16, float> &f, unsigned ldm,
                               layout_t l, const char *file, int line) {
    if (!wmma_enter(p.p, ldm, file, line)) return;
    chk_ptr(p, ldm, "store_matrix_sync");
    if (l != mem_row_major) EMU_ERR("col-major accumulator not emulated");
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) p[(long long)i * ldm + j] = f.x[i][j];
    wmma_leave(nullptr);
}
inline void fill_fragment_(fragment<accumulator, 16, 16, 16, float> &f, float v, const char *file, int line) {
    wmma_enter(nullptr, 0, file, line);
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) f.x[i][j] = v;
    g_acc = g_cur;
}
// d = a b + c; the products of 16-bit inputs are exact in fp32, the sums are fp32 (the
// hardware's summation order and internal precision differ slightly: the references' error
// bounds allow for it).
template <class T, class LB>
void mma_sync_(fragment<accumulator, 16, 16, 16, float> &d, const fragment<matrix_a, 16, 16, 16, T, row_major> &a,
               const fragment<matrix_b, 16, 16, 16, T, LB> &b, const fragment<accumulator, 16, 16, 16, float> &c,
               const char *file, int line) {
    if (!wmma_enter(nullptr, 0, file, line)) return wmma_take(d.x);
    float t[16][16];
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            float s = c.x[i][j];
            for (int k = 0; k < 16; k++) s += a.x[i][k] * b.x[k][j];
            t[i][j] = s;
        }
    memcpy(d.x, t, sizeof t);
    wmma_leave(d.x);
}
#define load_matrix_sync(...) load_matrix_sync_(__VA_ARGS__, __FILE__, __LINE__)
#define store_matrix_sync(...) store_matrix_sync_(__VA_ARGS__, __FILE__, __LINE__)
#define fill_fragment(...) fill_fragment_(__VA_ARGS__, __FILE__, __LINE__)
#define mma_sync(...) mma_sync_(__VA_ARGS__, __FILE__, __LINE__)
}  // namespace wmma
}  // namespace nvcuda

// CUDA qualifiers: no-ops here.
#define __device__
#define __forceinline__
#define __global__
#define __launch_bounds__(x)

// ============================================================================ launching

// One shared-memory sub-region of a kernel's carve-up: it starts at off and must hold need
// bytes before the next region (or the end) starts.
struct SmemRegion {
    const char *name;
    size_t off, need;
};

// Allocates a shared-memory image of `size` bytes carved into `regs` (in increasing offset
// order); checks that each region is 128-byte aligned and fits before the next.
inline void emu_smem_layout(size_t size, const std::vector<SmemRegion> &regs) {
    free(g_smem);
    g_smem_size = size;
    g_smem = (char *)aligned_alloc(128, (size + 127) / 128 * 128 + 128);
    g_smem_root = Region{"smem", g_smem, g_smem + size, true, nullptr};
    g_smem_sub.clear();
    for (size_t i = 0; i < regs.size(); i++) {
        const size_t end = i + 1 < regs.size() ? regs[i + 1].off : size;
        if (regs[i].off % 128 || end < regs[i].off || regs[i].off + regs[i].need > end)
            EMU_ERR("shared layout: region %s [%zu, +%zu) misaligned or overlapping the next (at %zu)", regs[i].name,
                    regs[i].off, regs[i].need, end);
        g_smem_sub.push_back(Region{regs[i].name, g_smem + regs[i].off, g_smem + end, true, nullptr});
    }
    g_sw.assign(size, WInfo());
    g_sr.assign(size * NW, RInfo());
}
inline void emu_smem_free() {
    free(g_smem);
    g_smem = nullptr;
    g_smem_size = 0;
    g_smem_sub.clear();
}

inline std::function<void()> g_body;
inline void emu_trampoline() {
    g_body();
    g_th[g_cur].done = true;
}

// Runs `kernel` (which reads threadIdx / blockIdx) over grid (gx, gy, gz) with NT threads per
// block, one block after another, in the shared memory set up by emu_smem_layout.
inline void emu_run_grid(unsigned gx, unsigned gy, unsigned gz, const std::function<void()> &kernel) {
    gridDim = Dim3{gx, gy, gz};
    blockDim = Dim3{NT, 1, 1};
    g_body = kernel;
    g_in_kernel = true;
    for (unsigned bz = 0; bz < gz; bz++)
        for (unsigned by = 0; by < gy; by++)
            for (unsigned bx = 0; bx < gx; bx++) {
                blockIdx = Dim3{bx, by, bz};
                memset(g_smem, 0xff, g_smem_size);  // NaN garbage
                std::fill(g_sw.begin(), g_sw.end(), WInfo());
                std::fill(g_sr.begin(), g_sr.end(), RInfo());
                g_B = 0;
                for (int w = 0; w < NW; w++) g_W[w] = 0, g_wsp[w] = SyncPt();
                g_blk = SyncPt();
                for (int t = 0; t < NT; t++) {
                    EmuThread &th = g_th[t];
                    th.done = false;
                    th.file = "", th.line = 0;
                    th.stack.resize(1 << 18);
                    getcontext(&th.ctx);
                    th.ctx.uc_stack.ss_sp = th.stack.data();
                    th.ctx.uc_stack.ss_size = th.stack.size();
                    th.ctx.uc_link = &g_sched;
                    makecontext(&th.ctx, emu_trampoline, 0);
                }
                int live = NT;
                while (live) {
                    const long before = g_progress;
                    for (int t = 0; t < NT; t++) {
                        if (g_th[t].done) continue;
                        g_cur = t, g_acc = t;
                        threadIdx = Dim3{(unsigned)t, 0, 0};
                        swapcontext(&g_sched, &g_th[t].ctx);
                        if (g_th[t].done) live--, g_progress++;
                    }
                    if (live && g_progress == before) {
                        EMU_ERR("deadlock: %d threads wait at a barrier the others never reach", live);
                        fprintf(stderr, "total emu errors: %ld (aborted)\n", g_errors);
                        exit(2);
                    }
                }
                for (int w = 0; w < NW; w++)
                    if (g_wsp[w].arrived) EMU_ERR("warp %d: threads left waiting at a warp barrier", w);
                if (g_blk.arrived) EMU_ERR("threads left waiting at __syncthreads");
            }
    g_in_kernel = false;
}
