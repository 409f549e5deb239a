#!/bin/bash
# Fault injection: shows that the emulation catches a bug put into a COPY of the kernel sources
# (the files in kernels/ are never touched).
#
#   tools/cuda_emu/mutate.sh NAME FILE 'SED-EXPR' [DRIVER-ARGS...]
#       copies kernels/attention_tc{.cuh,.cu,_bwd.cu} to a temporary folder, applies SED-EXPR to
#       FILE there (it must change something), extracts, builds and runs the driver(s) of FILE
#       (attn_fwd for attention_tc.cu, attn_bwd for attention_tc_bwd.cu, both for
#       attention_tc.cuh) with DRIVER-ARGS, DT=bf16 unless DT is set.  Prints CAUGHT (a driver
#       exits non-zero, or the mutant does not build) or MISSED; exit status 0 iff caught.
#       KEEP=1 keeps the temporary folder (its path is printed).
#   tools/cuda_emu/mutate.sh --demo [--jobs=N]
#       runs the built-in list below; exit status 0 iff every mutation is caught (~1-2 minutes).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CXX=${CXX:-g++}
CXXFLAGS=${CXXFLAGS:--O1 -std=c++17 -Wall -Wextra}

one() {
    local name=$1 file=$2 expr=$3 dir drvs d rc=0 why=""
    shift 3
    dir=$(mktemp -d "${TMPDIR:-/tmp}/cuda_emu_mut.XXXXXX")
    mkdir -p "$dir/kernels" "$dir/build"
    cp "$ROOT"/kernels/attention_tc.cuh "$ROOT"/kernels/attention_tc.cu "$ROOT"/kernels/attention_tc_bwd.cu "$dir/kernels/"
    sed -i "$expr" "$dir/kernels/$file"
    if cmp -s "$ROOT/kernels/$file" "$dir/kernels/$file"; then
        echo "NOT APPLIED  $name: '$expr' changes nothing in kernels/$file"
        rm -rf "$dir"
        return 2
    fi
    case $file in
    attention_tc.cu) drvs=attn_fwd ;;
    attention_tc_bwd.cu) drvs=attn_bwd ;;
    *) drvs="attn_fwd attn_bwd" ;;
    esac
    if ! bash "$HERE/extract.sh" "$dir/build" "$dir/kernels" > "$dir/extract.log" 2>&1; then
        rc=1 why="extract.sh fails: $(head -1 "$dir/extract.log")"
    else
        for d in $drvs; do
            # shellcheck disable=SC2086
            if ! $CXX $CXXFLAGS -I"$dir/build" -I"$HERE" "$HERE/$d.cpp" -o "$dir/build/$d" > "$dir/build_$d.log" 2>&1; then
                rc=1 why="$d does not build: $(grep -m1 error "$dir/build_$d.log")"
                break
            fi
            if ! DT=${DT:-bf16} "$dir/build/$d" "$@" > "$dir/$d.log" 2>&1; then
                [ $rc != 0 ] || why="$d: $( (grep -m1 'EMU ERROR' "$dir/$d.log" || grep -m1 'FAIL' "$dir/$d.log" || tail -1 "$dir/$d.log") | cut -c1-200)"
                why="$why; $d: $(grep -h '^total emu errors\|^bound failures' "$dir/$d.log" | tr '\n' ' ')"
                rc=1
            fi
        done
    fi
    if [ $rc != 0 ]; then echo "CAUGHT  $name  ($(echo "$why" | tr '\n' ' '))"; else echo "MISSED  $name"; fi
    if [ "${KEEP:-0}" = 1 ]; then echo "        kept $dir"; else rm -rf "$dir"; fi
    [ $rc != 0 ]
}

if [ "${1:-}" != --demo ]; then
    [ $# -ge 3 ] || { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
    one "$@"
    exit $?
fi

JOBS=$(nproc 2>/dev/null || echo 2)
case ${2:-} in --jobs=*) JOBS=${2#--jobs=} ;; esac
# Quadruples: name, file, sed expression, driver args.  Patterns, not line numbers: a mutation
# that no longer applies after a kernel edit says NOT APPLIED (and fails the demo).
DEMO=(
    # forward
    fwd_no_syncwarp_mold attention_tc.cu 's|__syncwarp();  // both lanes of the row have read mold||' --case=5
    fwd_no_syncthreads_kv attention_tc.cu 's|__syncthreads();  // every warp is done with the previous K / V tiles||' --case=5
    fwd_causal_skip_tile attention_tc.cu 's|(long long)q0 + TC_BQ + off : Lk|(long long)q0 + off : Lk|' --case=5
    fwd_swizzle_mod31 attention_tc.cu 's|const int cc = (c + c0) & 31;|const int cc = (c + c0) % 31;|' --case=5
    fwd_no_rescale attention_tc.cu 's|\*= aw\[i / DP\];|*= 1.f;|' --case=0
    fwd_lse_no_log attention_tc.cu 's|mw\[lane\] + logf(lw\[lane\])|mw[lane] + lw[lane]|' --case=5
    fwd_v_tile_too_small attention_tc.cu 's|s_off = v_off + tc_al((size_t)TC_BK \* LDH \* 2)|s_off = v_off + tc_al((size_t)TC_BK * LDH)|' --case=5
    # backward
    bwd_overwrite_not_add attention_tc_bwd.cu 's|to_f(\*p) + ||' --case=5
    bwd_no_syncwarp_p_to_ds attention_tc_bwd.cu "s|__syncwarp();                    // every lane's P|// every lane's P|" --case=5
    bwd_no_syncthreads_q attention_tc_bwd.cu 's|__syncthreads();  // every warp is done with the previous query tile||' --case=5
    bwd_dq_causal_skip_tile attention_tc_bwd.cu 's|(long long)q0 + TC_BQ + off : Lk;|(long long)q0 + off : Lk;|' --case=5
    bwd_ds_no_delta attention_tc_bwd.cu 's|from_f<T>(p \* (dr\[cc\] - di))|from_f<T>(p * dr[cc])|' --case=5
    bwd_lse_tail_uninit attention_tc_bwd.cu 's|ls\[threadIdx.x\] = i < Lq ? lh\[i\] : 0.f;|if (i < Lq) ls[threadIdx.x] = lh[i];|' --case=5
    bwd_dk_wrong_operand attention_tc_bwd.cu 's|(dKw, Pw, Qs)|(dKw, Pw, dOs)|' --case=5
    # shared (.cuh): both drivers
    tile_in_no_col_pad attention_tc.cuh 's|(r0 + r < L && c < D) ? g\[|(r0 + r < L) ? g[|' --case=7
)
T0=$(date +%s)
LOG=$(mktemp)
for ((i = 0; i < ${#DEMO[@]}; i += 4)); do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
    one "${DEMO[i]}" "${DEMO[i + 1]}" "${DEMO[i + 2]}" "${DEMO[i + 3]}" >> "$LOG" &
done
wait
cat "$LOG"
n=$(grep -c . "$LOG")
c=$(grep -c '^CAUGHT' "$LOG")
rm -f "$LOG"
echo "mutate.sh: $c of $n mutations caught ($(($(date +%s) - T0)) s)"
[ "$c" = "$n" ]
