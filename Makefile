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
           $(BUILD)/test_tsenor_cxx $(BUILD)/test_hardening $(BUILD)/test_hardening_tsan \
           $(BUILD)/test_digests $(BUILD)/test_digests_plain_c

.PHONY: all test test-cli fuzz-smoke fuzz test-sanitize test-tsan portability demo tune bench bench-quick cuda test-cuda bench-cuda cuda-phases clean

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

# every mask bit of varied cases against tests/mask_digests.txt (recorded from 0.4.0)
DIGEST_SRC = tests/test_digests.c tests/check.h tests/workloads.h $(HEADER)
$(BUILD)/test_digests: $(DIGEST_SRC) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -o $@ tests/test_digests.c $(LDLIBS)
$(BUILD)/test_digests_plain_c: $(DIGEST_SRC) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -DTSENOR_NO_SIMD -o $@ tests/test_digests.c $(LDLIBS)

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

# the bad-input table, allocation-failure injection and concurrency (tests/test_hardening.c)
HARDENING_SRC = tests/test_hardening.c tests/check.h tests/workloads.h $(HEADER)
$(BUILD)/test_hardening: $(HARDENING_SRC) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -pthread -o $@ tests/test_hardening.c $(LDLIBS)
# under ThreadSanitizer: a serial library build (libgomp is not instrumented, so OpenMP
# regions would give false reports); the threads are the test's own
$(BUILD)/test_hardening_tsan: $(HARDENING_SRC) | $(BUILD)
	$(CC) $(STD) -O1 -g -fsanitize=thread $(WARN) -Wno-unknown-pragmas -pthread -o $@ tests/test_hardening.c $(LDLIBS)
test-tsan: $(BUILD)/test_hardening_tsan
	./$(BUILD)/test_hardening_tsan

# portability: the test suite built by clang as C99 and as C++ (run by make test when
# clang is there), and a Windows (mingw-w64) compile-and-link check of the library, its
# test and the minimal example
CLANG ?= clang
CLANGXX ?= clang++
MINGW ?= x86_64-w64-mingw32-gcc
$(BUILD)/test_tsenor_clang: $(TEST_SRC) | $(BUILD)
	$(CLANG) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -o $@ tests/test_tsenor.c $(LDLIBS)
$(BUILD)/test_tsenor_clangxx: $(TEST_SRC) | $(BUILD)
	$(CLANGXX) -x c++ -std=c++11 $(CFLAGS) -Wall -Wextra $(OPENMP) -o $@ tests/test_tsenor.c $(LDLIBS)
$(BUILD)/windows/test_tsenor.exe: $(TEST_SRC) examples/minimal.c
	mkdir -p $(BUILD)/windows
	$(MINGW) $(STD) $(CFLAGS) $(WARN) -Wno-unknown-pragmas -o $@ tests/test_tsenor.c
	$(MINGW) $(STD) $(CFLAGS) $(WARN) -Wno-unknown-pragmas -o $(BUILD)/windows/minimal.exe examples/minimal.c
portability:
	@if command -v $(CLANG) >/dev/null 2>&1; then $(MAKE) --no-print-directory $(BUILD)/test_tsenor_clang $(BUILD)/test_tsenor_clangxx; \
	else echo "skipped: no $(CLANG) (apt-get install clang)"; fi
	@if command -v $(MINGW) >/dev/null 2>&1; then $(MAKE) --no-print-directory $(BUILD)/windows/test_tsenor.exe && \
	    echo "mingw-w64: tests/test_tsenor.c and examples/minimal.c compile and link for Windows"; \
	else echo "skipped: no $(MINGW) (apt-get install gcc-mingw-w64-x86-64)"; fi

# arm64 (NEON) build of the tests, run under qemu-user when the cross tools are present
CROSS_ARM64 ?= aarch64-linux-gnu-gcc
$(BUILD)/test_tsenor_arm64: $(TEST_SRC) | $(BUILD)
	$(CROSS_ARM64) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -o $@ tests/test_tsenor.c $(LDLIBS)

# TSENOR_STATIC: every function static; must stay warning-free when only some are called
$(BUILD)/static_build.o: $(HEADER) | $(BUILD)
	printf '#define TSENOR_STATIC\n#define TSENOR_IMPLEMENTATION\n#include "tsenor.h"\nint main(void){return 0;}\n' > $(BUILD)/static_build.c
	$(CC) $(STD) $(CFLAGS) $(WARN) -Werror $(OPENMP) -I. -c $(BUILD)/static_build.c -o $@

test: all $(BUILD)/static_build.o $(BUILD)/tsenor_sanitize portability
	@if command -v $(CROSS_ARM64) >/dev/null 2>&1; then $(MAKE) --no-print-directory $(BUILD)/test_tsenor_arm64; fi
	@$(MAKE) --no-print-directory $(BUILD)/fuzz_files $(BUILD)/fuzz_api
	sh tests/run.sh $(BUILD)

# the command-line tests (tests/test_cli.py, needs python3 + numpy) on the plain build and
# on an ASan + UBSan build of the same tool
test-cli: $(BUILD)/tsenor $(BUILD)/tsenor_sanitize
	python3 tests/test_cli.py $(BUILD)
	TSENOR_CLI=$(BUILD)/tsenor_sanitize python3 tests/test_cli.py $(BUILD)

# the fuzz targets: libFuzzer when clang has it, else replay builds that run the corpora
# under the sanitizers (fuzz-smoke is part of make test; `make fuzz` runs each fuzzer
# for FUZZ_SECONDS, see tests/fuzz/README.md)
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 600
FUZZ_PROBE    = printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n){(void)d;(void)n;return 0;}\n' | \
                $(FUZZ_CC) -fsanitize=fuzzer -x c - -o $(BUILD)/fuzz_probe >/dev/null 2>&1
# fuzz_files: the file readers; fuzz_api: the library's public calls (serial build)
$(BUILD)/fuzz_files: tests/fuzz/fuzz_files.c tests/fuzz/replay.h examples/tsenor_files.h | $(BUILD)
$(BUILD)/fuzz_api: tests/fuzz/fuzz_api.c tests/fuzz/replay.h $(HEADER) | $(BUILD)
$(BUILD)/fuzz_files $(BUILD)/fuzz_api:
	@if $(FUZZ_PROBE); then \
	    echo "$(FUZZ_CC) -fsanitize=fuzzer,address,undefined $<"; \
	    $(FUZZ_CC) $(STD) -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $(WARN) -Wno-unknown-pragmas -o $@ $< -lm; \
	else \
	    echo "no libFuzzer ($(FUZZ_CC) -fsanitize=fuzzer fails): building the corpus replay of $< instead"; \
	    $(CC) $(STD) -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all $(WARN) -Wno-unknown-pragmas -DFUZZ_REPLAY_MAIN -o $@ $< -lm; \
	fi
fuzz-smoke: $(BUILD)/fuzz_files $(BUILD)/fuzz_api
	sh tests/fuzz/smoke.sh $(BUILD)
fuzz: $(BUILD)/fuzz_files $(BUILD)/fuzz_api
	mkdir -p $(BUILD)/fuzz_corpus_files $(BUILD)/fuzz_corpus_api
	./$(BUILD)/fuzz_files $(BUILD)/fuzz_corpus_files tests/fuzz/corpus -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -print_final_stats=1
	./$(BUILD)/fuzz_api $(BUILD)/fuzz_corpus_api tests/fuzz/corpus_api -max_total_time=$(FUZZ_SECONDS) -max_len=2048 -print_final_stats=1

# the command line under AddressSanitizer + UndefinedBehaviorSanitizer (used by the tests)
$(BUILD)/tsenor_sanitize: $(CLI_SRC) | $(BUILD)
	$(CC) $(STD) $(SANITIZE) $(WARN) -o $@ examples/tsenor_cli.c $(LDLIBS)

demo: $(BUILD)/demo
	./$(BUILD)/demo

tune: $(BUILD)/tune
	./$(BUILD)/tune 256 2

# the test suites under AddressSanitizer + UndefinedBehaviorSanitizer, LeakSanitizer on
# (any finding fails): the library's tests, the hardening tests and the command line's
SANITIZE = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
$(BUILD)/test_tsenor_sanitize: $(TEST_SRC) | $(BUILD)
	$(CC) $(STD) $(SANITIZE) $(WARN) -o $@ tests/test_tsenor.c $(LDLIBS)
$(BUILD)/test_hardening_sanitize: $(HARDENING_SRC) | $(BUILD)
	$(CC) $(STD) $(SANITIZE) $(WARN) -Wno-unknown-pragmas -pthread -o $@ tests/test_hardening.c $(LDLIBS)
test-sanitize: $(BUILD)/test_tsenor_sanitize $(BUILD)/test_hardening_sanitize $(BUILD)/tsenor_sanitize
	@for t in test_tsenor_sanitize test_hardening_sanitize; do \
	    ASAN_OPTIONS=detect_leaks=1 ./$(BUILD)/$$t > $(BUILD)/$$t.log 2>&1; rc=$$?; \
	    echo "== $$t"; grep -vE '^  ' $(BUILD)/$$t.log | tail -8; [ $$rc -eq 0 ] || exit $$rc; \
	done
	@if python3 -c "import numpy" >/dev/null 2>&1; then \
	    echo "== tests/test_cli.py on tsenor_sanitize"; \
	    out=$$(ASAN_OPTIONS=detect_leaks=1 TSENOR_CLI=$(BUILD)/tsenor_sanitize python3 tests/test_cli.py $(BUILD) 2>&1); rc=$$?; \
	    printf '%s\n' "$$out" | grep -E "FAIL|passed" | tail -5; exit $$rc; \
	else echo "skipped: the command-line tests need python3 with numpy"; fi

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

# the digest table on the GPU (TSENOR_CUDA: the tsenor_mask_* calls run there)
$(BUILD)/test_digests_cuda: $(DIGEST_SRC) $(BUILD)/tsenor_cuda.o | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -DTSENOR_CUDA -isystem $(CUDA_HOME)/include -o $@ tests/test_digests.c $(BUILD)/tsenor_cuda.o $(CUDA_LIBS)

cuda: $(BUILD)/tsenor_cuda.o $(BUILD)/test_cuda $(BUILD)/test_digests_cuda $(BUILD)/bench_cuda $(BUILD)/cuda_prune $(BUILD)/tsenor_gpu

# where the block kernel's time goes, by stage (an instrumented build, sm_90 only)
$(BUILD)/tsenor_cuda_phases.o: $(CUDA_SRC) | $(BUILD)
	$(NVCC) $(NVCCFLAGS) -arch=sm_90 -DTSENOR_CUDA_PHASE_CLOCKS -c cuda/tsenor_cuda.cu -o $@
$(BUILD)/phases_cuda: bench/phases_cuda.c tests/workloads.h $(BUILD)/tsenor_cuda_phases.o | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -isystem $(CUDA_HOME)/include -o $@ bench/phases_cuda.c $(BUILD)/tsenor_cuda_phases.o $(CUDA_LIBS)
cuda-phases: $(BUILD)/phases_cuda
	./$(BUILD)/phases_cuda

test-cuda: $(BUILD)/test_cuda $(BUILD)/test_digests_cuda
	./$(BUILD)/test_cuda
	./$(BUILD)/test_digests_cuda tests/mask_digests.txt

bench-cuda: $(BUILD)/bench_cuda
	./$(BUILD)/bench_cuda

clean:
	rm -rf $(BUILD)

# the NumPy all-MiniLM-L6-v2 harness (bench/minilm/README.md): its self-check, which
# skips with a reason when python3, numpy, safetensors or the data packages are missing
.PHONY: test-minilm
test-minilm:
	@if command -v python3 >/dev/null 2>&1; then python3 -m bench.minilm.selfcheck; \
	else echo "skipped: python3 is not installed"; echo "0 passed, 0 failed"; fi
