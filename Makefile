# zsmlc build. `make` builds build/zsmlc (CPU always; CUDA when nvcc is found),
# `make test` runs every test (plain build + sanitizer build), `make bench` the op benchmarks.
# Knobs: CUDA=auto|0|1, CUDA_HOME, CUDNN_HOME, NCCL_HOME, CUDA_ARCHS, NATIVE=1|0, JOBS.

CC      ?= gcc
CUDA    ?= auto
NATIVE  ?= 1
BUILD   ?= build
SAN     ?= 0
CUDA_ARCHS ?= 80 90

# ---- CUDA detection (really runs: $(shell ...)) ------------------------------------------
NVCC ?= $(firstword $(shell command -v nvcc 2>/dev/null) $(wildcard /usr/local/cuda/bin/nvcc))
ifeq ($(CUDA),auto)
  ifneq ($(NVCC),)
    override CUDA := 1
  else
    override CUDA := 0
  endif
endif
ifeq ($(CUDA),1)
  ifeq ($(NVCC),)
    $(error CUDA=1 but nvcc was not found on PATH or in /usr/local/cuda/bin)
  endif
  CUDA_HOME  ?= $(patsubst %/bin/nvcc,%,$(realpath $(NVCC)))
  CUDNN_HOME ?= $(CUDA_HOME)
  NCCL_HOME  ?= $(CUDA_HOME)
  # First of lib64/lib (or the wheel layout lib/) that holds the library.
  libdir_of = $(firstword $(foreach d,$(1)/lib64 $(1)/lib $(1)/lib/x86_64-linux-gnu,$(if $(wildcard $(d)/$(2)*),$(d))))
  CUDA_LIBDIR  := $(call libdir_of,$(CUDA_HOME),libcudart)
  CUDNN_LIBDIR := $(call libdir_of,$(CUDNN_HOME),libcudnn.so)
  NCCL_LIBDIR  := $(call libdir_of,$(NCCL_HOME),libnccl.so)
  ifeq ($(wildcard $(CUDNN_HOME)/include/cudnn.h),)
    $(error CUDA=1 but cudnn.h is not in $(CUDNN_HOME)/include: set CUDNN_HOME)
  endif
  ifeq ($(wildcard $(NCCL_HOME)/include/nccl.h),)
    $(error CUDA=1 but nccl.h is not in $(NCCL_HOME)/include: set NCCL_HOME)
  endif
  ifeq ($(CUDNN_LIBDIR),)
    $(error CUDA=1 but libcudnn.so* is not under $(CUDNN_HOME): set CUDNN_HOME)
  endif
  ifeq ($(NCCL_LIBDIR),)
    $(error CUDA=1 but libnccl.so* is not under $(NCCL_HOME): set NCCL_HOME)
  endif
  # Some installs ship only the versioned name (libcudnn.so.9, libnccl.so.2).
  CUDNN_LIB := $(if $(wildcard $(CUDNN_LIBDIR)/libcudnn.so),-lcudnn,-l:$(notdir $(firstword $(wildcard $(CUDNN_LIBDIR)/libcudnn.so.[0-9]*))))
  NCCL_LIB  := $(if $(wildcard $(NCCL_LIBDIR)/libnccl.so),-lnccl,-l:$(notdir $(firstword $(wildcard $(NCCL_LIBDIR)/libnccl.so.[0-9]*))))
endif

# ---- host flags ------------------------------------------------------------------------
HAVE_OPENBLAS := $(if $(wildcard /usr/include/cblas.h /usr/include/x86_64-linux-gnu/cblas.h /usr/include/openblas/cblas.h),1,0)
CPPFLAGS += -I. -D_GNU_SOURCE
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -Wall -Wextra -Werror -Wno-unused-parameter -fopenmp -fno-strict-aliasing
# Results unchanged (no FP exceptions or errno are read): lets selects and sqrtf vectorise.
CFLAGS   += -fno-trapping-math -fno-math-errno
ifeq ($(NATIVE),1)
  CFLAGS += -march=native
endif
LDLIBS   += -lcjson -lpng16 -ljpeg -lstb -lz -lm -lpthread -fopenmp
ifeq ($(HAVE_OPENBLAS),1)
  CPPFLAGS += -DZS_HAVE_OPENBLAS $(if $(wildcard /usr/include/openblas/cblas.h),-I/usr/include/openblas)
  LDLIBS   += -lopenblas
  # Prefer Debian's OpenMP build of OpenBLAS: it shares the engine's OpenMP thread pool,
  # where the pthreads build's threads fight OpenMP's spinning workers (3-6x slower on
  # small machines).
  OPENBLAS_OMP_DIR := $(wildcard /usr/lib/x86_64-linux-gnu/openblas-openmp)
  ifneq ($(OPENBLAS_OMP_DIR),)
    LDFLAGS += -L$(OPENBLAS_OMP_DIR) -Wl,-rpath,$(OPENBLAS_OMP_DIR)
  endif
endif
# Headers and libraries unpacked outside /usr (tools/device/make_sysroot.sh).
ifneq ($(SYSROOT_EXTRA),)
  CPPFLAGS += -I$(abspath $(SYSROOT_EXTRA))/usr/include -I$(abspath $(SYSROOT_EXTRA))/usr/include/x86_64-linux-gnu
  LDFLAGS  += -L$(abspath $(SYSROOT_EXTRA))/usr/lib/x86_64-linux-gnu -Wl,-rpath,$(abspath $(SYSROOT_EXTRA))/usr/lib/x86_64-linux-gnu
endif
ifeq ($(SAN),1)
  CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(CUDA),1)
  CPPFLAGS += -DZS_HAVE_CUDA
  NVFLAGS  := -O3 -std=c++17 -I. -DZS_HAVE_CUDA -I$(CUDA_HOME)/include -I$(CUDNN_HOME)/include -I$(NCCL_HOME)/include \
              $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
              -Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror,-Wno-unused-parameter,-fno-strict-aliasing \
              --expt-relaxed-constexpr -lineinfo
  LDFLAGS  += -L$(CUDA_LIBDIR) -L$(CUDNN_LIBDIR) -L$(NCCL_LIBDIR) \
              -Wl,-rpath,$(CUDA_LIBDIR) -Wl,-rpath,$(CUDNN_LIBDIR) -Wl,-rpath,$(NCCL_LIBDIR)
  LDLIBS   += -lcublasLt -lcublas $(CUDNN_LIB) $(NCCL_LIB) -lcudart_static -ldl -lrt -lstdc++
endif

# ---- sources ---------------------------------------------------------------------------
LIB_C   := $(filter-out engine/main.c,$(wildcard engine/*.c kernels/*.c models/*.c weights/*.c))
LIB_CU  := $(if $(filter 1,$(CUDA)),$(wildcard engine/*.cu kernels/*.cu models/*.cu))
TEST_C  := $(wildcard tests/*.c)
BENCH_C := $(wildcard bench/*.c)
OBJ      = $(patsubst %.c,$(BUILD)/%.o,$(1))
LIB_OBJ := $(call OBJ,$(LIB_C)) $(patsubst %.cu,$(BUILD)/%.cu.o,$(LIB_CU))
# Build mode and a hash of the compile flags are the stamp's name: changing either rebuilds.
FLAGS_HASH := $(shell echo '$(CC) $(CPPFLAGS) $(CFLAGS) $(NVCC) $(NVFLAGS)' | md5sum | cut -c1-8)
STAMP   := $(BUILD)/.config-cuda$(CUDA)-san$(SAN)-native$(NATIVE)-$(FLAGS_HASH)

.PHONY: all deps test test-cuda cuda-emu bench fuzz fuzz-build fixtures selfcheck clean help
all: $(BUILD)/zsmlc

$(STAMP):
	@mkdir -p $(BUILD) && rm -f $(BUILD)/.config-* && touch $@

$(BUILD)/%.o: %.c $(STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/%.cu.o: %.cu $(STAMP)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libzsmlc.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/zsmlc: $(BUILD)/engine/main.o $(BUILD)/libzsmlc.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/zsmlc_tests: $(call OBJ,$(TEST_C)) $(BUILD)/libzsmlc.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/zsmlc_bench: $(call OBJ,$(BENCH_C) $(wildcard tests/op_*.c)) $(BUILD)/libzsmlc.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- user-facing targets -----------------------------------------------------------------
# Installs what a fresh Debian machine lacks (needs root). Idempotent and quiet when done.
DEB_PKGS := libopenblas-dev libopenblas-openmp-dev libstb-dev libcjson-dev zlib1g-dev libpng-dev libjpeg62-turbo-dev \
            clang libclang-rt-dev libopenmpi-dev
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing $$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "make deps: need root to apt-get install: $$missing" >&2; exit 1; fi; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null || exit 1; \
	fi

# Every test: plain build (CUDA when available; GPU tests skip without a GPU), then the
# ASan+UBSan build (host code, CUDA=0). Ends with "N passed, N failed, N skipped".
test:
	@tests/run_all.sh

test-cuda: $(BUILD)/zsmlc_tests
	$(BUILD)/zsmlc_tests --require-gpu

# The tensor-core attention kernels emulated on the CPU (no GPU needed; also part of `make test`).
cuda-emu:
	bash tools/cuda_emu/run.sh

bench: $(BUILD)/zsmlc_bench
	$(BUILD)/zsmlc_bench --suite ops --out $(BUILD)/bench.jsonl
	$(BUILD)/zsmlc_bench --suite clip --out $(BUILD)/bench_clip.jsonl
	$(BUILD)/zsmlc_bench --suite sd --out $(BUILD)/bench_sd.jsonl

# The main job for now: installs what is missing, builds, and runs the self-check (tokenizer,
# safetensors round trip, ops on the CPU and, where present, the GPU).
selfcheck: deps
	@$(MAKE) -s $(BUILD)/zsmlc
	$(BUILD)/zsmlc selfcheck

FUZZ_TIME ?= 300
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_LIB_C := $(filter-out engine/main.c engine/cli_%.c,$(wildcard engine/*.c weights/*.c kernels/*.c models/*.c))
fuzz-build:
	@mkdir -p build-fuzz
	@for t in $(FUZZ_TARGETS); do \
	  clang -std=c11 -O1 -g -I. -D_GNU_SOURCE -DZS_FUZZING -fsanitize=fuzzer,address,undefined -fopenmp \
	    tests/fuzz/$$t.c $(FUZZ_LIB_C) -o build-fuzz/$$t -lcjson -lpng16 -ljpeg -lstb -lz -lm -lpthread || exit 1; done
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do mkdir -p build-fuzz/corpus-$$t; \
	  echo "== $$t for $(FUZZ_TIME) s"; \
	  build-fuzz/$$t -max_total_time=$(FUZZ_TIME) -print_final_stats=1 build-fuzz/corpus-$$t tests/fuzz/corpus/$$t || exit 1; done

fixtures:
	tools/fixtures/make_all.sh

clean:
	rm -rf build build-san build-fuzz

help:
	@sed -n '1,3p' Makefile
