// Minimal test framework: TEST(name) / GPU_TEST(name) register at load time; the runner
// (tests/main.c) runs them and ends with "N passed, N failed, N skipped".
#ifndef ZS_TEST_H
#define ZS_TEST_H
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "engine/status.h"
#include "engine/tensor.h"

typedef enum { ZT_PASS = 0, ZT_FAIL = 1, ZT_SKIP = 2 } zt_result;
typedef zt_result (*zt_fn)(void);
void zt_register(const char *name, const char *file, zt_fn fn, int gpu);
void zt_note(const char *file, int line, const char *fmt, ...) ZS_PRINTF(3, 4);

#define ZT_DEFINE(name, gpu)                                                                  \
    static zt_result name(void);                                                              \
    __attribute__((constructor)) static void zt_reg_##name(void) { zt_register(#name, __FILE__, name, gpu); } \
    static zt_result name(void)
#define TEST(name) ZT_DEFINE(name, 0)
#define GPU_TEST(name) ZT_DEFINE(name, 1)  // runs only where a GPU answers, else skipped

// Fails the test with a message naming the file:line and the condition.
#define CHECK(cond, ...)                                               \
    do {                                                               \
        if (!(cond)) {                                                 \
            zt_note(__FILE__, __LINE__, "CHECK(%s) failed", #cond);    \
            zt_note(__FILE__, __LINE__, __VA_ARGS__);                  \
            return ZT_FAIL;                                            \
        }                                                              \
    } while (0)
// A library call must fail with status `code` and a message containing `substr`.
#define CHECK_ERR(call, code, substr)                                                                   \
    do {                                                                                                \
        zs_status s_ = (call);                                                                          \
        CHECK(s_ == (code), "%s: got %s (%s), expected %s", #call, zs_status_name(s_), zs_errmsg(),     \
              zs_status_name(code));                                                                    \
        CHECK(strstr(zs_errmsg(), substr), "%s: message \"%s\" lacks \"%s\"", #call, zs_errmsg(), substr); \
    } while (0)
// A library call must succeed.
#define CHECK_OK(expr)                                                                       \
    do {                                                                                     \
        zs_status s_ = (expr);                                                               \
        if (s_ != ZS_OK) {                                                                   \
            zt_note(__FILE__, __LINE__, "%s -> %s: %s", #expr, zs_status_name(s_), zs_errmsg()); \
            return ZT_FAIL;                                                                  \
        }                                                                                    \
    } while (0)
#define SKIP(...)                                  \
    do {                                           \
        zt_note(__FILE__, __LINE__, __VA_ARGS__);  \
        return ZT_SKIP;                            \
    } while (0)

// Relative error ||got - ref|| / max(||ref||, floor) over n floats (norms, not per element).
// Any NaN/inf in got that is not in ref gives +inf.
double zt_rel_err(const float *got, const float *ref, int64_t n, double floor);
// Where the fixtures live: $ZSMLC_FIXTURES or tests/fixtures.
const char *zt_fixture_path(const char *rel, char *buf, size_t n);
// Feeds every file of tests/fuzz/corpus/<target> to fn as an exact-size heap copy (so ASan sees
// any over-read); returns the number of files, -1 when the folder is missing.
int zt_replay_corpus(const char *target, int (*fn)(const uint8_t *, size_t));
// Deterministic test data in [lo, hi) from a seed.
void zt_fill_uniform(float *x, int64_t n, uint64_t seed, float lo, float hi);

#endif
