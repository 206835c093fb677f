# tsenor - build, test, demo. `make` builds everything into build/.
CC      ?= cc
CXX     ?= c++
CFLAGS  ?= -O2
WARN     = -Wall -Wextra -pedantic
STD      = -std=c99
OPENMP  ?= -fopenmp
LDLIBS   = -lm
BUILD    = build

HEADER   = tsenor.h
TEST_SRC = tests/test_tsenor.c tests/check.h tests/workloads.h $(HEADER)

BINARIES = $(BUILD)/tsenor $(BUILD)/demo $(BUILD)/minimal $(BUILD)/tune $(BUILD)/bench \
           $(BUILD)/test_tsenor $(BUILD)/test_tsenor_plain_c $(BUILD)/test_tsenor_serial \
           $(BUILD)/test_tsenor_cxx

.PHONY: all test test-cli fuzz-smoke fuzz test-sanitize demo tune bench bench-quick cuda test-cuda bench-cuda cuda-phases clean

all: $(BINARIES)

$(BUILD):
	mkdir -p $(BUILD)

# the library as users build it: SIMD kernels with runtime dispatch, OpenMP
$(BUILD)/test_tsenor: $(TEST_SRC) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -o $@ tests/test_tsenor.c $(LDLIBS)
# the portable fallback kernels (what a compiler without vector extensions runs)
$(BUILD)/test_tsenor_plain_c: $(TEST_SRC) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -DTSENOR_NO_SIMD -o $@ tests/test_tsenor.c $(LDLIBS)
# no OpenMP: serial, same masks
$(BUILD)/test_tsenor_serial: $(TEST_SRC) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) -Wno-unknown-pragmas -o $@ tests/test_tsenor.c $(LDLIBS)
# the header compiled as C++
$(BUILD)/test_tsenor_cxx: $(TEST_SRC) | $(BUILD)
	$(CXX) -x c++ $(CFLAGS) -Wall -Wextra $(OPENMP) -o $@ tests/test_tsenor.c $(LDLIBS)

# the command line (examples/tsenor_cli.c): prune / check safetensors and .npy files
CLI_SRC = examples/tsenor_cli.c examples/tsenor_files.h $(HEADER)
$(BUILD)/tsenor: $(CLI_SRC) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -o $@ examples/tsenor_cli.c $(LDLIBS)

$(BUILD)/demo: examples/demo.c tests/workloads.h $(HEADER) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -o $@ examples/demo.c $(LDLIBS)
$(BUILD)/minimal: examples/minimal.c $(HEADER) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -o $@ examples/minimal.c $(LDLIBS)
$(BUILD)/tune: bench/tune.c tests/workloads.h $(HEADER) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -o $@ bench/tune.c $(LDLIBS)

$(BUILD)/bench: bench/bench.c bench/peers.h tests/workloads.h $(HEADER) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -o $@ bench/bench.c $(LDLIBS)

# arm64 (NEON) build of the tests, run under qemu-user when the cross tools are present
CROSS_ARM64 ?= aarch64-linux-gnu-gcc
$(BUILD)/test_tsenor_arm64: $(TEST_SRC) | $(BUILD)
	$(CROSS_ARM64) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -o $@ tests/test_tsenor.c $(LDLIBS)

# TSENOR_STATIC: every function static; must stay warning-free when only some are called
$(BUILD)/static_build.o: $(HEADER) | $(BUILD)
	printf '#define TSENOR_STATIC\n#define TSENOR_IMPLEMENTATION\n#include "tsenor.h"\nint main(void){return 0;}\n' > $(BUILD)/static_build.c
	$(CC) $(STD) $(CFLAGS) $(WARN) -Werror $(OPENMP) -I. -c $(BUILD)/static_build.c -o $@

test: all $(BUILD)/static_build.o $(BUILD)/tsenor_sanitize
	@if command -v $(CROSS_ARM64) >/dev/null 2>&1; then $(MAKE) --no-print-directory $(BUILD)/test_tsenor_arm64; fi
	@$(MAKE) --no-print-directory $(BUILD)/fuzz_files
	sh tests/run.sh $(BUILD)

# the command-line tests (tests/test_cli.py, needs python3 + numpy) on the plain build and
# on an ASan + UBSan build of the same tool
test-cli: $(BUILD)/tsenor $(BUILD)/tsenor_sanitize
	python3 tests/test_cli.py $(BUILD)
	TSENOR_CLI=$(BUILD)/tsenor_sanitize python3 tests/test_cli.py $(BUILD)

# the file readers' fuzz target: libFuzzer when clang has it, else a replay build that
# runs the corpus under the sanitizers (fuzz-smoke is part of make test; `make fuzz`
# runs the fuzzer for FUZZ_SECONDS, see tests/fuzz/README.md)
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 600
FUZZ_SRC      = tests/fuzz/fuzz_files.c examples/tsenor_files.h
$(BUILD)/fuzz_files: $(FUZZ_SRC) | $(BUILD)
	@if printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n){(void)d;(void)n;return 0;}\n' | \
	    $(FUZZ_CC) -fsanitize=fuzzer -x c - -o $(BUILD)/fuzz_probe >/dev/null 2>&1; then \
	    echo "$(FUZZ_CC) -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_files.c"; \
	    $(FUZZ_CC) $(STD) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $(WARN) -o $@ tests/fuzz/fuzz_files.c; \
	else \
	    echo "no libFuzzer ($(FUZZ_CC) -fsanitize=fuzzer fails): building the corpus replay instead"; \
	    $(CC) $(STD) -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all $(WARN) -DFUZZ_REPLAY_MAIN -o $@ tests/fuzz/fuzz_files.c; \
	fi
fuzz-smoke: $(BUILD)/fuzz_files
	sh tests/fuzz/smoke.sh $(BUILD)
fuzz: $(BUILD)/fuzz_files
	mkdir -p $(BUILD)/fuzz_corpus
	./$(BUILD)/fuzz_files $(BUILD)/fuzz_corpus tests/fuzz/corpus -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -print_final_stats=1

# the command line under AddressSanitizer + UndefinedBehaviorSanitizer (used by the tests)
$(BUILD)/tsenor_sanitize: $(CLI_SRC) | $(BUILD)
	$(CC) $(STD) $(SANITIZE) $(WARN) -o $@ examples/tsenor_cli.c $(LDLIBS)

demo: $(BUILD)/demo
	./$(BUILD)/demo

tune: $(BUILD)/tune
	./$(BUILD)/tune 256 2

# the test suite under AddressSanitizer + UndefinedBehaviorSanitizer (any finding fails)
SANITIZE = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
$(BUILD)/test_tsenor_sanitize: $(TEST_SRC) | $(BUILD)
	$(CC) $(STD) $(SANITIZE) $(WARN) -o $@ tests/test_tsenor.c $(LDLIBS)
test-sanitize: $(BUILD)/test_tsenor_sanitize
	@ASAN_OPTIONS=detect_leaks=1 ./$(BUILD)/test_tsenor_sanitize > $(BUILD)/sanitize.log 2>&1; rc=$$?; \
	grep -vE '^  ' $(BUILD)/sanitize.log | tail -20; exit $$rc

# speed lives here, never in the tests (bench/RESULTS.md has the numbers and the machine)
bench: $(BUILD)/bench
	./$(BUILD)/bench

bench-quick: $(BUILD)/bench
	./$(BUILD)/bench --quick

# ---- CUDA backend (tsenor_cuda.h, cuda/): needs nvcc; the tests skip without a GPU ----
NVCC      ?= nvcc
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC) 2>/dev/null))
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_90,code=compute_90
NVCCFLAGS ?= -O3 -std=c++17 -lineinfo -Xcompiler -Wall,-Wextra
CUDA_LIBS  = -L$(CUDA_HOME)/lib64 -lcudart_static -ldl -lrt -lpthread -lstdc++ -lm
CUDA_SRC   = cuda/tsenor_cuda.cu tsenor_cuda.h $(HEADER)

$(BUILD)/tsenor_cuda.o: $(CUDA_SRC) | $(BUILD)
	$(NVCC) $(NVCCFLAGS) $(CUDA_ARCH) -c cuda/tsenor_cuda.cu -o $@
$(BUILD)/test_cuda: tests/test_cuda.c tests/check.h tests/workloads.h $(BUILD)/tsenor_cuda.o | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -isystem $(CUDA_HOME)/include -o $@ tests/test_cuda.c $(BUILD)/tsenor_cuda.o $(CUDA_LIBS)
$(BUILD)/bench_cuda: bench/bench_cuda.c bench/peers.h tests/workloads.h $(BUILD)/tsenor_cuda.o | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -isystem $(CUDA_HOME)/include -o $@ bench/bench_cuda.c $(BUILD)/tsenor_cuda.o $(CUDA_LIBS)

$(BUILD)/cuda_prune: examples/cuda_prune.c $(BUILD)/tsenor_cuda.o | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -isystem $(CUDA_HOME)/include -o $@ examples/cuda_prune.c $(BUILD)/tsenor_cuda.o $(CUDA_LIBS)

# the command line with --gpu (same source, TSENOR_CUDA defined)
$(BUILD)/tsenor_gpu: $(CLI_SRC) $(BUILD)/tsenor_cuda.o | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -DTSENOR_CUDA -isystem $(CUDA_HOME)/include -o $@ examples/tsenor_cli.c $(BUILD)/tsenor_cuda.o $(CUDA_LIBS)

cuda: $(BUILD)/tsenor_cuda.o $(BUILD)/test_cuda $(BUILD)/bench_cuda $(BUILD)/cuda_prune $(BUILD)/tsenor_gpu

# where the block kernel's time goes, by stage (an instrumented build, sm_90 only)
$(BUILD)/tsenor_cuda_phases.o: $(CUDA_SRC) | $(BUILD)
	$(NVCC) $(NVCCFLAGS) -arch=sm_90 -DTSENOR_CUDA_PHASE_CLOCKS -c cuda/tsenor_cuda.cu -o $@
$(BUILD)/phases_cuda: bench/phases_cuda.c tests/workloads.h $(BUILD)/tsenor_cuda_phases.o | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -isystem $(CUDA_HOME)/include -o $@ bench/phases_cuda.c $(BUILD)/tsenor_cuda_phases.o $(CUDA_LIBS)
cuda-phases: $(BUILD)/phases_cuda
	./$(BUILD)/phases_cuda

test-cuda: $(BUILD)/test_cuda
	./$(BUILD)/test_cuda

bench-cuda: $(BUILD)/bench_cuda
	./$(BUILD)/bench_cuda

clean:
	rm -rf $(BUILD)
