#!/usr/bin/env bash
# `make test`: installs missing packages, builds and runs the suite twice (plain build with
# CUDA where nvcc exists; ASan+UBSan host build), runs the CPU emulation of the tensor-core
# CUDA kernels (tools/cuda_emu, counted as one test), and sums the results into one closing line.
set -u
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
CUDA=${CUDA:-auto}
make -s deps || exit 1
total_p=0; total_f=0; total_s=0; status=0
run() {  # run LABEL BUILD_DIR MAKE_ARGS...
    local label=$1 dir=$2; shift 2
    echo "== $label: building ($dir)"
    if ! make -s -j"$JOBS" BUILD="$dir" "$@" "$dir/zsmlc_tests" "$dir/zsmlc"; then
        echo "== $label: BUILD FAILED"; total_f=$((total_f + 1)); status=1; return
    fi
    echo "== $label: running"
    local log="$dir/test.log"
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=print_stacktrace=1 "$dir/zsmlc_tests" | tee "$log"
    local rc=${PIPESTATUS[0]}
    local line; line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -1)
    if [ -z "$line" ]; then echo "== $label: runner crashed (rc=$rc)"; total_f=$((total_f + 1)); status=1; return; fi
    read -r p _ f _ s _ <<<"$(echo "$line" | tr -d ',')"
    total_p=$((total_p + p)); total_f=$((total_f + f)); total_s=$((total_s + s))
    [ "$rc" = 0 ] || status=1
}
run "plain build" build CUDA="$CUDA"
run "sanitizer build (ASan+UBSan)" build-san CUDA=0 SAN=1 NATIVE=0
# The tensor-core attention kernels' own CUDA source, run on the CPU under an emulation of
# WMMA, barriers and shuffles with race / bounds checks (tools/cuda_emu): one test.
echo "== CUDA kernel emulation (tools/cuda_emu)"
if bash tools/cuda_emu/run.sh; then total_p=$((total_p + 1)); else total_f=$((total_f + 1)); status=1; fi
echo "${total_p} passed, ${total_f} failed, ${total_s} skipped"
exit $status
