#!/bin/sh
# Runs every test build, the command-line tests, the fuzz smoke run, the CMake consumer
# and the README snippet check; prints the summed line, then the line of what it skipped.
# Usage: sh tests/run.sh BUILD_DIR
build=${1:-build}
passed=0
failed=0
skipped=""

# skip NAME REASON [HOW]: a suite that did not run is named in the closing line, not
# counted; HOW (what to install) is printed here only
skip() {
    echo "skipped: $2${3:+ ($3)}"
    skipped="${skipped:+$skipped, }$1 ($2)"
}

# tally NAME RC OUTPUT: adds a run's "N passed, M failed" line to the totals (a run with
# no such line, or a non-zero exit with no failed check, counts as one failure)
tally() {
    line=$(printf '%s\n' "$3" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
    if [ -z "$line" ]; then
        printf '%s\n' "$3" | tail -20
        echo "$1: no result line (exit $2)"
        failed=$((failed + 1))
        return
    fi
    # parts of a suite it skipped itself: "skipped: WHAT (how)", "note: WHAT skipped: how"
    while IFS= read -r part; do
        [ -n "$part" ] && skipped="${skipped:+$skipped, }$1: $part"
    done <<SKIPPED
$(printf '%s\n' "$3" | sed -n -e 's/^skipped: \(.*\) ([^()]*)$/\1/p' -e t -e 's/^skipped: //p' \
                              -e 's/^note: \(.*\) skipped: \(.*\)$/\1 (\2)/p')
SKIPPED
    passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
    f=$(echo "$line" | cut -d' ' -f3)
    failed=$((failed + f))
    [ "$2" -ne 0 ] && [ "$f" -eq 0 ] && failed=$((failed + 1))
}

for t in test_tsenor test_tsenor_plain_c test_tsenor_serial test_tsenor_cxx test_tsenor_clang test_tsenor_clangxx \
         test_hardening test_hardening_tsan; do
    echo "== $t"
    case $t in test_tsenor_clang*)
        [ -x "$build/$t" ] || { skip "$t" "not built: no clang" "apt-get install clang"; continue; } ;;
    esac
    out=$("./$build/$t" 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -v '^ ' | grep -E 'FAIL|passed|backend' | head -40
    [ "$t" = test_tsenor ] && printf '%s\n' "$out" | grep -E '^(quality|  )'
    tally "$t" "$rc" "$out"
done

for t in test_prune test_prune_plain_c test_prune_serial test_prune_cxx test_prune_cblas; do
    echo "== $t (pruning with calibration data, its linear algebra)"
    case $t in test_prune_cblas)
        [ -x "$build/$t" ] || { echo "skipped: not built (no cblas.h/lapacke.h: apt-get install libopenblas-dev liblapacke-dev)"; continue; } ;;
    esac
    out=$("./$build/$t" 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -E 'FAIL|passed|tiny|error magnitude|alps 2:4|sgemm|allocation' | head -40
    tally "$t" "$rc" "$out"
done

for t in test_digests test_digests_plain_c; do
    echo "== $t (every mask bit against tests/mask_digests.txt)"
    out=$("./$build/$t" tests/mask_digests.txt 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -E 'FAIL|passed' | head -20
    tally "$t" "$rc" "$out"
done

echo "== test_tsenor_arm64 (NEON, under qemu-aarch64)"
if [ ! -x "$build/test_tsenor_arm64" ]; then
    skip test_tsenor_arm64 "no aarch64-linux-gnu-gcc" "apt-get install gcc-aarch64-linux-gnu"
elif ! command -v qemu-aarch64 >/dev/null 2>&1; then
    skip test_tsenor_arm64 "no qemu-aarch64" "apt-get install qemu-user"
else
    out=$(qemu-aarch64 -L /usr/aarch64-linux-gnu "./$build/test_tsenor_arm64" 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -E 'FAIL|passed|backend' | head -40
    tally test_tsenor_arm64 "$rc" "$out"
fi

# what `make portability` could not build (it writes one line per skipped check)
if [ -f "$build/portability_skipped" ]; then
    while IFS= read -r line; do
        [ -n "$line" ] && skipped="${skipped:+$skipped, }$line"
    done < "$build/portability_skipped"
else
    skipped="${skipped:+$skipped, }portability (make portability did not run)"
fi

echo "== command line (tests/test_cli.py: plain build, then under ASan + UBSan)"
if command -v python3 >/dev/null 2>&1 && python3 -c "import numpy" >/dev/null 2>&1; then
    for bin in tsenor tsenor_sanitize; do
        out=$(TSENOR_CLI="$build/$bin" python3 tests/test_cli.py "$build" 2>&1)
        rc=$?
        printf '%s\n' "$out" | grep -E "FAIL|passed|skipped|note|MiniLM|^test_" | sed "s/^/$bin: /" | head -60
        tally "$bin" "$rc" "$out"
    done
else
    skip tests/test_cli.py "no python3 with numpy" "pip install numpy safetensors"
fi

echo "== Python package (python/tests with pytest, on make python's build)"
out=$(sh python/tests/run.sh "$build" 2>&1)
rc=$?
printf '%s\n' "$out" | grep -E "FAIL|ERROR|Error|passed|skipped" | head -40
tally python "$rc" "$out"

echo "== bench/peers/exact_patterns_torch.py --self-test (make bench-cuda's exact n:4 PyTorch peer, on the CPU)"
if command -v python3 >/dev/null 2>&1 && python3 -c "import torch, numpy" >/dev/null 2>&1; then
    out=$(cd bench/peers && python3 exact_patterns_torch.py --self-test 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -E "FAIL|passed" | head -20
    tally exact_patterns_torch "$rc" "$out"
else
    skip exact_patterns_torch "no python3 with torch and numpy" "pip install torch numpy"
fi

echo "== MiniLM (bench/minilm: the pruning methods on real all-MiniLM-L6-v2 layers, the quality table's quick mode)"
out=$(sh tests/minilm_layers.sh "$build" 2>&1)
rc=$?
printf '%s\n' "$out" | grep -E "FAIL|passed|skipped|layer_check|quality_table|^ok " | head -40
tally minilm_layers "$rc" "$out"

echo "== fuzz smoke (tests/fuzz)"
if sh tests/fuzz/smoke.sh "$build"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

echo "== tsenor.h: the top comment's example, misuse of the configuration macros"
out=$(sh tests/header_checks.sh "$build" 2>&1)
rc=$?
printf '%s\n' "$out" | grep -E 'FAIL|passed|example' | head -20
tally header_checks "$rc" "$out"

echo "== README snippet"
if sh tests/readme_snippet.sh "$build"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

echo "== CMake consumer (tests/cmake_consumer: add_subdirectory, tsenor::tsenor, tsenor::cuda)"
if command -v cmake >/dev/null 2>&1; then
    dir="$build/cmake_consumer"
    rm -rf "$dir"
    out=$(cmake -S tests/cmake_consumer -B "$dir" -DCMAKE_BUILD_TYPE=Release 2>&1 &&
          cmake --build "$dir" --target consumer 2>&1 && "./$dir/consumer" 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -E 'FAIL|passed|tsenor|Error|error' | head -20
    tally cmake_consumer "$rc" "$out"
    # configure and generate only: a consumer of tsenor::cuda (no GPU to run it on here)
    if printf '%s\n' "$out" | grep -q '^-- tsenor: tsenor::cuda with CUDA' &&
       printf '%s\n' "$out" | grep -q '^-- Generating done'; then
        echo "tsenor::cuda: defined, and consumer_cuda (linked against it) generated"
        passed=$((passed + 1))
    elif [ "$rc" -eq 0 ]; then
        skip "cmake tsenor::cuda" "CMake found no CUDA compiler or toolkit"
    fi
else
    skip cmake_consumer "no cmake" "apt-get install cmake"
fi

echo "== make help (one line for every .PHONY target)"
missing=""
help=$(MAKEFLAGS= ${MAKE:-make} --no-print-directory help)
for target in $(sed -n 's/^\.PHONY://p' Makefile); do
    printf '%s\n' "$help" | grep -q "^make $target " || missing="$missing $target"
done
if [ -z "$missing" ]; then
    echo "every .PHONY target has its line"
    passed=$((passed + 1))
else
    echo "FAIL make help lacks:$missing"
    failed=$((failed + 1))
fi

echo "== CUDA link line (Makefile CUDA_LIBS, README, tsenor_cuda.h)"
link=$(sed -n 's/^CUDA_LIBS *= *//p' Makefile | sed 's/\$(CUDA_HOME)/$CUDA_HOME/g')
if [ -n "$link" ] && grep -qF -- "$link" README.md && grep -qF -- "$link" tsenor_cuda.h; then
    echo "all three: $link"
    passed=$((passed + 1))
else
    echo "FAIL the README and tsenor_cuda.h must give the Makefile's CUDA_LIBS: ${link:-(none found)}"
    failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
echo "skipped: ${skipped:-none}"
[ "$failed" -eq 0 ]
