#!/usr/bin/env bash
# One-shot GPU check for a lent machine: reports the toolchain, builds with CUDA (cuDNN and
# NCCL found in PyTorch's Python environment when not in the CUDA toolkit), runs the whole
# test suite (GPU tests included; TESTS=gpu: only those) and the benchmarks (SUITES="ops clip sd
# diffusers", or attn: the attention cases under each ZS_ATTN path; BENCH=0:
# none). Results go to $OUT (or ./gpu-out). With 15 minutes of device time, e.g. TESTS=gpu
# SUITES="attn sd diffusers" (the build alone takes a few minutes).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
echo "== toolchain"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc); $NVCC --version | tail -2
gcc --version | head -1
PY=$(command -v python3 || command -v python)
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" || true
pyloc() { $PY -c "import importlib, os; m = importlib.import_module('$1'); print(os.path.dirname(m.__file__) if getattr(m, '__file__', None) else list(m.__path__)[0])" 2>/dev/null; }
CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$NVCC")")")
CUDNN_HOME=${CUDNN_HOME:-}; NCCL_HOME=${NCCL_HOME:-}
[ -z "$CUDNN_HOME" ] && { [ -f "$CUDA_HOME/include/cudnn.h" ] && CUDNN_HOME=$CUDA_HOME || CUDNN_HOME=$(pyloc nvidia.cudnn); }
[ -z "$NCCL_HOME" ] && { [ -f "$CUDA_HOME/include/nccl.h" ] && NCCL_HOME=$CUDA_HOME || NCCL_HOME=$(pyloc nvidia.nccl); }
echo "CUDA_HOME=$CUDA_HOME CUDNN_HOME=$CUDNN_HOME NCCL_HOME=$NCCL_HOME"
ls "$CUDNN_HOME/include/cudnn.h" "$NCCL_HOME/include/nccl.h" 2>&1
ls "$CUDNN_HOME"/lib* "$NCCL_HOME"/lib* 2>&1 | head -20
SYS=""
if [ ! -f /usr/include/cjson/cJSON.h ] || [ ! -f /usr/include/zlib.h ] || [ ! -f /usr/include/stb/stb_image_write.h ] || [ ! -f /usr/include/png.h ] || [ ! -f /usr/include/jpeglib.h ]; then SYS="SYSROOT_EXTRA=build-sysroot"; fi
echo "extra sysroot: ${SYS:-none}"
echo "== build"
T0=$(date +%s)
make -j16 CUDA=1 CUDA_ARCHS="${CUDA_ARCHS:-90}" CUDA_HOME="$CUDA_HOME" CUDNN_HOME="$CUDNN_HOME" NCCL_HOME="$NCCL_HOME" $SYS \
    build/zsmlc build/zsmlc_tests build/zsmlc_bench || { echo "BUILD FAILED"; exit 1; }
echo "build took $(( $(date +%s) - T0 )) s"
build/zsmlc --version
echo "== selfcheck on the GPU"
build/zsmlc selfcheck --device cuda; echo "selfcheck rc=$?"
# TESTS=gpu runs only the GPU tests (the CPU ones pass in CI anyway): saves device time;
# TESTS=none skips them (a second call on the still-warm machine, for the benchmarks).
if [ "${TESTS:-all}" != none ]; then
echo "== tests (${TESTS:-all})"
TARGS=""; [ "${TESTS:-all}" = gpu ] && TARGS="--require-gpu"
ZSMLC_TEST_VERBOSE=1 build/zsmlc_tests $TARGS 2>&1 | tee "$OUT/tests.log" | grep -E "^(FAIL|SKIP)|passed,|CHECK|: " ; echo "tests rc=${PIPESTATUS[0]}"
# The first few failures again with synchronous launches: a kernel's fault is then reported by
# the launch that caused it, not by the next copy (the pipeline never syncs by itself).
for t in $(grep -E "^FAIL " "$OUT/tests.log" | awk '{print $2}' | head -"${RERUN_FAILED:-6}"); do
    echo "-- rerun $t with CUDA_LAUNCH_BLOCKING=1"
    CUDA_LAUNCH_BLOCKING=1 ZSMLC_TEST_VERBOSE=1 timeout 90 build/zsmlc_tests "$t" > "$OUT/rerun_$t.log" 2>&1
    echo "rc=$?"; grep -E "CHECK|error|: " "$OUT/rerun_$t.log" | head -8
done
fi
[ "${BENCH:-1}" = 0 ] && exit 0
# SUITES picks the benchmarks (default all four: ops clip sd diffusers); each is capped by BENCH_TIMEOUT.
SUITES=" ${SUITES:-ops clip sd diffusers} "
want() { case "$SUITES" in *" $1 "*) return 0;; *) return 1;; esac; }
if want ops; then
echo "== bench"
timeout "${BENCH_TIMEOUT:-180}" build/zsmlc_bench --suite ops --device "${BENCH_DEVICE:-all}" --out "$OUT/bench.jsonl" | tee "$OUT/bench.txt"
echo "bench rc=${PIPESTATUS[0]}"
fi
if want attn; then
echo "== bench (attention paths: default (tensor cores), ZS_ATTN=simt (CUDA cores), ZS_ATTN=gemm (cuBLAS backward))"
for m in auto simt gemm; do
    echo "-- ZS_ATTN=$m"
    ZS_ATTN=$m timeout "${BENCH_TIMEOUT:-180}" build/zsmlc_bench --suite ops --device cuda --filter attn \
        --out "$OUT/bench_attn_$m.jsonl" | tee "$OUT/bench_attn_$m.txt"
done
fi
if want clip; then
echo "== bench (clip)"
timeout "${BENCH_TIMEOUT:-180}" build/zsmlc_bench --suite clip --device "${BENCH_DEVICE:-all}" --out "$OUT/bench_clip.jsonl" | tee "$OUT/bench_clip.txt"
echo "bench clip rc=${PIPESTATUS[0]}"
fi
if want sd; then
echo "== bench (sd)"
timeout "${BENCH_TIMEOUT:-180}" build/zsmlc_bench --suite sd --device cuda --out "$OUT/bench_sd.jsonl" | tee "$OUT/bench_sd.txt"
echo "bench sd rc=${PIPESTATUS[0]}"
fi
if want diffusers; then
echo "== bench (sd, PyTorch / diffusers on the same GPU)"
if ! $PY -c "import diffusers" 2>/dev/null && [ -d build-sysroot/wheels ]; then
    for w in build-sysroot/wheels/*.whl; do $PY -m pip install -q --no-index --no-deps --target build-pylib "$w" 2>/dev/null || echo "skipped $w"; done
fi
PYTHONPATH=build-pylib${PYTHONPATH:+:$PYTHONPATH} timeout "${BENCH_TIMEOUT:-180}" $PY tools/bench/bench_diffusers.py \
    --out "$OUT/bench_sd_diffusers.jsonl" | tee "$OUT/bench_sd_diffusers.txt"
echo "bench sd diffusers rc=${PIPESTATUS[0]}"
fi
