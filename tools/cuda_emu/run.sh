#!/bin/bash
# Builds the CPU emulation of the tensor-core attention kernels from the current sources and runs
# every check (tools/cuda_emu/README.md).  Exit status 0 only when every run passes.
#
#   bash tools/cuda_emu/run.sh [--quick] [--jobs=N] [--kernels=DIR] [--out=DIR]
#
#   --quick        main case lists only (no --extra / --vec=0 / NULL-output variants)
#   --jobs=N       runs in parallel (default: nproc)
#   --kernels=DIR  kernel sources to extract (default: kernels/; e.g. a modified copy)
#   --out=DIR      build folder (default: build/cuda_emu)
# Environment: CXX (default g++), CXXFLAGS (default -O1 -std=c++17 -Wall -Wextra; warnings are shown), DT
# (bf16 or f16: only that dtype; default both).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
cd "$ROOT" || exit 1

QUICK=0
JOBS=$(nproc 2>/dev/null || echo 2)
KDIR=$ROOT/kernels
OUT=$ROOT/build/cuda_emu
for a in "$@"; do
    case $a in
    --quick) QUICK=1 ;;
    --jobs=*) JOBS=${a#--jobs=} ;;
    --kernels=*) KDIR=${a#--kernels=} ;;
    --out=*) OUT=${a#--out=} ;;
    -h | --help) sed -n '2,12p' "$HERE/run.sh" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $a" >&2; exit 2 ;;
    esac
done
CXX=${CXX:-g++}
CXXFLAGS=${CXXFLAGS:--O1 -std=c++17 -Wall -Wextra}
DTS=${DT:-bf16 f16}
T0=$(date +%s)

# ---- build
mkdir -p "$OUT/logs" || exit 1
rm -f "$OUT"/logs/*.log
bash "$HERE/extract.sh" "$OUT" "$KDIR" || { echo "run.sh: extract.sh failed"; exit 1; }
DRIVERS="attn_fwd attn_bwd"  # <name>.cpp here -> $OUT/<name>
bpids=()
for d in $DRIVERS; do
    # shellcheck disable=SC2086
    $CXX $CXXFLAGS -I"$OUT" -I"$HERE" "$HERE/$d.cpp" -o "$OUT/$d" > "$OUT/logs/build_$d.log" 2>&1 &
    bpids+=($!)
done
fail_build=0 i=0
for d in $DRIVERS; do
    wait "${bpids[$i]}" || { echo "BUILD FAILED: $d"; cat "$OUT/logs/build_$d.log"; fail_build=1; }
    i=$((i + 1))
done
[ $fail_build = 0 ] || exit 1
for d in $DRIVERS; do
    if [ -s "$OUT/logs/build_$d.log" ]; then echo "--- warnings building $d:"; cat "$OUT/logs/build_$d.log"; fi
done
echo "cuda_emu: built $DRIVERS in $OUT ($(($(date +%s) - T0)) s, $CXX $CXXFLAGS)"

# ---- the runs: "driver args" per dtype
RUNS=("attn_fwd" "attn_bwd")
if [ $QUICK = 0 ]; then
    RUNS+=("attn_fwd --extra" "attn_fwd --vec=0" "attn_fwd --nolse --case=1,8"
           "attn_bwd --extra" "attn_bwd --vec=0" "attn_bwd --nulldq --case=1,5"
           "attn_bwd --nulldk --case=1,5" "attn_bwd --nulldv --case=1,5" "attn_bwd --nulldk --nulldv --case=1,5")
fi

# one run: log to $OUT/logs/NAME.log, then one summary line
run_one() {  # DT driver args...
    local dt=$1 drv=$2 name log t rc cases emu fails worst status
    shift 2
    name="$dt-$drv$(printf '_%s' "$@" | sed 's/[^A-Za-z0-9_]/-/g')"
    log="$OUT/logs/$name.log"
    t=$(date +%s%N)
    DT=$dt "$OUT/$drv" "$@" > "$log" 2>&1
    rc=$?
    t=$(awk -v a="$t" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    cases=$(grep -cE "^$dt +[0-9]+ \(" "$log")
    emu=$(sed -n 's/^total emu errors: \([0-9]*\).*/\1/p' "$log" | tail -1)
    fails=$(sed -n 's/^bound failures: \([0-9]*\)/\1/p' "$log" | tail -1)
    worst=$(grep -o 'rel [0-9.e+-]*' "$log" | awk '{ if ($2 + 0 > w) w = $2 + 0 } END { printf "%.2e", w }')
    status=PASS
    [ "$rc" = 0 ] && [ "${emu:-x}" = 0 ] && [ "${fails:-x}" = 0 ] || status=FAIL
    printf "%s  DT=%-4s %-38s %2s cases  worst rel %s  bound failures %s  emu errors %s  rc %s  (%s s)\n" \
        "$status" "$dt" "$drv $*" "$cases" "$worst" "${fails:-?}" "${emu:-?}" "$rc" "$t"
    [ $status = PASS ]
}

pids=()
for dt in $DTS; do
    for r in "${RUNS[@]}"; do
        while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
        # shellcheck disable=SC2086
        run_one "$dt" $r &
        pids+=($!)
    done
done
nfail=0
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || nfail=$((nfail + 1))
done

total=${#pids[@]}
if [ $nfail = 0 ]; then
    echo "cuda_emu: all $total runs passed ($(($(date +%s) - T0)) s); logs in $OUT/logs"
    exit 0
fi
echo "cuda_emu: $nfail of $total runs FAILED ($(($(date +%s) - T0)) s); logs in $OUT/logs:"
for f in "$OUT"/logs/*.log; do
    if grep -q "FAILED\|EMU ERROR\|^total emu errors: [1-9]\|^bound failures: [1-9]" "$f"; then
        echo "--- $f"
        grep -m 8 "FAILED\|EMU ERROR" "$f" | cut -c1-300
    fi
done
exit 1
