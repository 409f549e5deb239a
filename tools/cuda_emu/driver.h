// Shared by the drivers (attn_fwd.cpp, attn_bwd.cpp): options, case selection, error bounds,
// host buffers, the final verdict.
#pragma once
#include <algorithm>
#include <random>

#include "emu.h"

// H100's cudaDevAttrMaxSharedMemoryPerBlockOptin (227 KiB): a tier above it is reported as
// unsupported, as tc_smem_optin would on that GPU.
constexpr long kSmemOptinH100 = 232448;

struct DriverOpts {
    std::vector<int> cases;  // --case=N[,M...]: indices into the selected list (empty: all)
    int force_vec = -1;      // --vec=0|1: force the 16-byte / scalar tile loads (-1: as the launch decides)
    bool extra = false;      // --extra: the extra case list instead of the main one
    long smem_limit = kSmemOptinH100;  // --limit=BYTES
    bool bf16 = true, f16 = true;      // DT=bf16|f16 (unset: both)
};
inline DriverOpts g_opt;
inline long g_fail = 0;  // error bounds exceeded (besides g_errors, the emulator's own reports)

inline void usage(const char *prog, const char *more) {
    fprintf(stderr,
            "usage: [DT=bf16|f16] %s [--case=N[,M..]] [--extra] [--vec=0|1] [--limit=BYTES] [--abort]%s\n"
            "  --case    run only these cases of the selected list (0-based)\n"
            "  --extra   the extra case list instead of the main one\n"
            "  --vec     force the 16-byte (1) or scalar (0) tile loads\n"
            "  --limit   shared-memory opt-in limit (default %ld, H100)\n"
            "  --abort   abort() at the first emulator error\n",
            prog, more, kSmemOptinH100);
}

// Parses the common options; returns false for an option it does not know.
inline bool parse_common(const char *a) {
    if (!strcmp(a, "--abort")) g_abort_on_error = true;
    else if (!strcmp(a, "--extra")) g_opt.extra = true;
    else if (!strncmp(a, "--vec=", 6)) g_opt.force_vec = atoi(a + 6);
    else if (!strncmp(a, "--limit=", 8)) g_opt.smem_limit = atol(a + 8);
    else if (!strncmp(a, "--case=", 7)) {
        for (const char *p = a + 7; *p;) {
            g_opt.cases.push_back(atoi(p));
            p = strchr(p, ',');
            if (!p) break;
            p++;
        }
    } else
        return false;
    return true;
}
inline void parse_dt() {
    const char *dt = getenv("DT");
    if (!dt || !*dt) return;
    g_opt.bf16 = !strcmp(dt, "bf16");
    g_opt.f16 = !strcmp(dt, "f16");
    if (!g_opt.bf16 && !g_opt.f16) {
        fprintf(stderr, "DT=%s: bf16 or f16\n", dt);
        exit(2);
    }
}
inline bool selected(size_t i) {
    return g_opt.cases.empty() || std::find(g_opt.cases.begin(), g_opt.cases.end(), (int)i) != g_opt.cases.end();
}

// Relative error bounds of the outputs (out, dq, dk, dv) against the double references.
template <typename T> double tol_rel();
template <> inline double tol_rel<bf16>() { return 5e-3; }
template <> inline double tol_rel<f16>() { return 1e-3; }
template <typename T> const char *dt_name();
template <> inline const char *dt_name<bf16>() { return "bf16"; }
template <> inline const char *dt_name<f16>() { return "f16"; }

// Records a bound check; returns the marker to print after the value.
inline const char *bound(bool ok) {
    if (!ok) g_fail++;
    return ok ? "" : " FAIL";
}

// 256-byte aligned host buffer with slack (so aligned_alloc's size rule holds for any n).
inline char *host_alloc(size_t bytes) { return (char *)aligned_alloc(256, (bytes + 255) / 256 * 256 + 256); }

inline int finish() {
    printf("bound failures: %ld\n", g_fail);
    printf("total emu errors: %ld\n", g_errors);
    return g_errors != 0 || g_fail != 0;
}
