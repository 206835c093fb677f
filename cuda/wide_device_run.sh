#!/usr/bin/env bash
# The m > 32 kernels (TSENOR and GREEDY, a CTA per block) on a lent GPU machine, in one
# call of under 10 minutes: build with nvcc there; bench_cuda --exact (its 32:64 rows);
# test_cuda, the GPU digests and test_cuda_prune; compute-sanitizer racecheck and
# memcheck on one small case of each kernel (TSENOR_TEST_WIDE_ONLY); then the Python
# package built with CUDA and make test-python. Logs go to $OUT when it is set (the
# device tool), else to build/.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-build}"
mkdir -p "$out"
SECONDS=0
export PATH="$PATH:/usr/local/cuda/bin"
make -s -j16 cuda > "$out/build.log" 2>&1; echo "build exit $?, ${SECONDS}s"; grep -iE "warning|error" "$out/build.log" | head -20
echo "== bench_cuda --exact --no-peers"
timeout 100 ./build/bench_cuda --exact --no-peers > "$out/bench_cuda.log" 2>&1; echo "exit $?, ${SECONDS}s"
grep -A5 "m = 64" "$out/bench_cuda.log"
for t in test_cuda "test_digests_cuda tests/mask_digests.txt" test_cuda_prune; do
    echo "== $t"
    timeout 150 ./build/$t > "$out/${t%% *}.log" 2>&1; echo "exit $?, ${SECONDS}s"
    grep -E "FAIL|passed|note:" "$out/${t%% *}.log" | tail -6
done
for tool in racecheck memcheck; do
    echo "== compute-sanitizer --tool $tool (TSENOR_TEST_WIDE_ONLY)"
    TSENOR_TEST_WIDE_ONLY=1 timeout 200 compute-sanitizer --tool $tool --error-exitcode 9 ./build/test_cuda \
        > "$out/sanitize_wide_$tool.log" 2>&1
    echo "exit $?, ${SECONDS}s"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|passed|FAIL" "$out/sanitize_wide_$tool.log" | tail -4
done
echo "== TSENOR_CUDA=1 make python, make test-python"
{ TSENOR_CUDA=1 timeout 200 make -s python && timeout "$(( 580 - SECONDS > 30 ? 580 - SECONDS : 30 ))" make -s test-python; } \
    > "$out/python.log" 2>&1
echo "exit $?, ${SECONDS}s"; grep -E "passed|failed|^FAILED|^E  " "$out/python.log" | tail -8
