// Engine core: dtype conversion, arenas, views, Philox streams, errors.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "engine/arena.h"
#include "engine/backend.h"
#include "engine/philox.h"
#include "engine/rng.h"
#include "test.h"

TEST(core_f16_bf16_roundtrip) {
    // Values whose fp16/bf16 encodings are known from IEEE 754 (round to nearest even).
    CHECK(zs_f32_to_f16(1.0f) == 0x3c00, "1.0");
    CHECK(zs_f32_to_f16(-2.0f) == 0xc000, "-2");
    CHECK(zs_f32_to_f16(65504.0f) == 0x7bff, "max half");
    CHECK(zs_f32_to_f16(65520.0f) == 0x7c00, "rounds to inf");
    CHECK(zs_f32_to_f16(5.9604644775390625e-8f) == 0x0001, "min subnormal");
    CHECK(zs_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00, "tie rounds to even (down)");
    CHECK(zs_f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02, "tie rounds to even (up)");
    CHECK(zs_f32_to_bf16(1.0f) == 0x3f80, "bf16 1.0");
    CHECK(zs_f32_to_bf16(1.00390625f) == 0x3f80, "bf16 tie to even");
    CHECK(isnan(zs_f16_to_f32(zs_f32_to_f16(NAN))) && isnan(zs_bf16_to_f32(zs_f32_to_bf16(NAN))), "NaN kept");
    // Every finite half round-trips exactly through f32.
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00) continue;
        uint16_t back = zs_f32_to_f16(zs_f16_to_f32((uint16_t)h));
        CHECK(back == h || (h == 0x8000 && back == 0x8000), "half %04x -> %04x", h, back);
    }
    return ZT_PASS;
}

TEST(core_arena_measure_then_alloc) {
    zs_arena m, a;
    zs_tensor t1, t2;
    int64_t s1[2] = {3, 5}, s2[1] = {7};
    zs_arena_measure(&m, "acts", ZS_CPU);
    CHECK_OK(zs_arena_tensor(&m, &t1, ZS_F32, 2, s1, "x"));
    CHECK_OK(zs_arena_tensor(&m, &t2, ZS_BF16, 1, s2, "y"));
    CHECK(m.used == ZS_ARENA_ALIGN + 14, "measured %zu", m.used);
    CHECK_OK(zs_arena_init(&a, "acts", ZS_CPU, m.used));
    CHECK_OK(zs_arena_tensor(&a, &t1, ZS_F32, 2, s1, "x"));
    CHECK_OK(zs_arena_tensor(&a, &t2, ZS_BF16, 1, s2, "y"));
    CHECK((uintptr_t)t2.data % ZS_ARENA_ALIGN == 0, "aligned");
    zs_tensor t3;
    zs_status s = zs_arena_tensor(&a, &t3, ZS_F32, 1, s2, "z");
    CHECK(s == ZS_ENOMEM && strstr(zs_errmsg(), "acts") && strstr(zs_errmsg(), "z"), "overflow names arena and tensor: %s",
          zs_errmsg());
    zs_arena_free(&a);
    return ZT_PASS;
}

TEST(core_view_bounds) {
    float buf[12];
    int64_t sh[2] = {3, 4}, v[1] = {4};
    zs_tensor t = zs_tensor_make(buf, ZS_F32, ZS_CPU, 2, sh), o;
    CHECK_OK(zs_view(&o, &t, 8, 1, v));
    CHECK(o.data == buf + 8, "offset");
    CHECK(zs_view(&o, &t, 9, 1, v) == ZS_EINVAL, "out of bounds view rejected");
    return ZT_PASS;
}

// Philox4x32-10 known-answer vectors from Random123's kat_vectors (counter, key -> output).
TEST(core_philox_known_answers) {
    uint32_t o[4];
    zs_philox(0, 0, o);
    CHECK(o[0] == 0x6627e8d5u && o[1] == 0xe169c58du && o[2] == 0xbc57ac4cu && o[3] == 0x9b00dbd8u,
          "philox(0,0) = %08x %08x %08x %08x", o[0], o[1], o[2], o[3]);
    return ZT_PASS;
}

TEST(core_rng_streams) {
    enum { N = 1 << 16 };
    static float a[N], b[N];
    zs_rng_normal_host(a, N, 1234, 0);
    zs_rng_normal_host(b + 100, N - 100, 1234, 100);  // offset continues the same stream
    CHECK(memcmp(a + 100, b + 100, (N - 100) * sizeof(float)) == 0, "offset stream");
    double m = 0, v = 0;
    for (int i = 0; i < N; i++) m += a[i];
    m /= N;
    for (int i = 0; i < N; i++) v += (a[i] - m) * (a[i] - m);
    v /= N;
    CHECK(fabs(m) < 0.02 && fabs(v - 1) < 0.03, "normal moments mean %g var %g", m, v);
    zs_rng_uniform_host(a, N, 99, 0);
    for (int i = 0; i < N; i++) CHECK(a[i] >= 0 && a[i] < 1, "uniform range");
    return ZT_PASS;
}

// The host fill draws 4 elements per Philox call: every start and length gives the elements of
// the one-at-a-time definition (zs_philox_normal, which the CUDA kernel uses), bit for bit.
TEST(core_rng_normal_blocked_fill) {
    enum { N = 70001 };
    static float x[N + 8];
    const uint64_t offs[] = {0, 1, 2, 3, 5, 4094, 0xFFFFFFFFull};
    const int64_t lens[] = {1, 2, 3, 7, 1000, N};
    for (size_t o = 0; o < sizeof offs / sizeof *offs; o++)
        for (size_t l = 0; l < sizeof lens / sizeof *lens; l++) {
            int64_t n = lens[l];
            x[n] = 12345.f;  // the fill writes nothing past its end
            zs_rng_normal_host(x, n, 77, offs[o]);
            CHECK(x[n] == 12345.f, "offset %llu length %lld: wrote past the end", (unsigned long long)offs[o], (long long)n);
            for (int64_t i = 0; i < n; i++) {
                float want = zs_philox_normal(77, offs[o] + (uint64_t)i);
                CHECK(memcmp(&x[i], &want, 4) == 0, "offset %llu length %lld element %lld: %.9g, want %.9g",
                      (unsigned long long)offs[o], (long long)n, (long long)i, x[i], want);
            }
        }
    return ZT_PASS;
}

GPU_TEST(cuda_rng_matches_host) {
    enum { N = 100003 };
    static float h[N], g[N];
    int64_t sh[1] = {N};
    zs_tensor t = zs_tensor_make(NULL, ZS_F32, ZS_CUDA, 1, sh);
    CHECK_OK(zs_malloc(&t.data, N * 4, ZS_CUDA, "rng"));
    for (int normal = 0; normal < 2; normal++) {
        CHECK_OK(normal ? zs_rng_normal(&t, 7, 12345) : zs_rng_uniform(&t, 7, 12345));
        CHECK_OK(zs_memcpy(g, ZS_CPU, t.data, ZS_CUDA, N * 4));
        (normal ? zs_rng_normal_host : zs_rng_uniform_host)(h, N, 7, 12345);
        int diff = 0;
        for (int i = 0; i < N; i++) diff += fabsf(g[i] - h[i]) > 1e-6f * (1 + fabsf(h[i]));
        CHECK(diff == 0, "%d of %d elements differ (normal=%d)", diff, N, normal);
    }
    zs_free(t.data, ZS_CUDA);
    return ZT_PASS;
}

// The CPU peak RSS (the sd bench's measured memory) rises with a touched allocation and falls
// back once reset: earlier work in the same process must not count.
TEST(core_mem_high_water_reset) {
    size_t a = 0, b = 0, c = 0;
    const size_t n = (size_t)256 << 20;
    CHECK_OK(zs_mem_high_water_reset(ZS_CPU));
    CHECK_OK(zs_mem_high_water(ZS_CPU, &a));
    char *p = malloc(n);
    CHECK(p, "malloc of 256 MiB");
    memset(p, 1, n);
    __asm__ volatile("" : : "r"(p) : "memory");  // the pages must really be touched
    free(p);
    CHECK_OK(zs_mem_high_water(ZS_CPU, &b));
    CHECK_OK(zs_mem_high_water_reset(ZS_CPU));
    CHECK_OK(zs_mem_high_water(ZS_CPU, &c));
    CHECK(b >= a + n / 2 && c + n / 2 <= b, "peak RSS %zu -> %zu after 256 MiB -> %zu after reset", a, b, c);
    return ZT_PASS;
}
