#!/usr/bin/env bash
# EXACT and the m > 32 kernels on the GPU, on a lent GPU machine, in one call of under 10
# minutes: build with nvcc there (make -j16 cuda), the EXACT rows of the benchmark (8192^2
# 8:16 and 16:32 with their targets, the TSENOR rows they start from, TSENOR and GREEDY at
# 32:64), the CUDA tests (test_cuda: GPU EXACT against the CPU's EXACT with its dual
# certificate, TSENOR, GREEDY and ROWWISE up to m = 64, every other method and pattern as
# before; the digest table on the GPU), compute-sanitizer memcheck and racecheck on the
# quick EXACT and m > 32 tests (SANITIZE=0 skips them), then the GPU pruning tests if time
# is left. Every step is cut to what is left of BUDGET seconds (default 560). Logs go to
# $OUT when it is set (the device tool), else to build/.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-build}"
mkdir -p "$out"
t0=$(date +%s)
budget="${BUDGET:-560}"
stamp() { echo "   [$(( $(date +%s) - t0 )) s]"; }
left() {   # seconds for the next step: at most $1, at most what the budget has left
    local l=$(( budget - ($(date +%s) - t0) ))
    [ "$l" -gt "$1" ] && l=$1
    [ "$l" -lt 5 ] && l=5
    echo "$l"
}
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee "$out/gpu.txt"
export PATH="$PATH:/usr/local/cuda/bin"
make -s -j16 cuda > "$out/build.log" 2>&1; echo "build exit $?"; grep -iE "warning|error" "$out/build.log" | head -20; stamp
echo "== bench_cuda --exact (8192^2)"
timeout "$(left 150)" ./build/bench_cuda --exact --no-peers 2>&1 | tee "$out/bench_cuda_exact.log"; stamp
echo "== test_cuda"
timeout "$(left 180)" ./build/test_cuda > "$out/test_cuda.log" 2>&1; echo "exit $?"
grep -E "FAIL|passed|device:" "$out/test_cuda.log" | head -40; stamp
echo "== test_digests_cuda"
timeout "$(left 90)" ./build/test_digests_cuda tests/mask_digests.txt > "$out/test_digests_cuda.log" 2>&1; echo "exit $?"
grep -E "FAIL|passed" "$out/test_digests_cuda.log" | tail -12; stamp
if [ "${SANITIZE:-1}" = 1 ] && command -v compute-sanitizer >/dev/null; then
    for tool in memcheck racecheck; do
        echo "== compute-sanitizer --tool $tool (quick EXACT and m > 32 tests)"
        TSENOR_TEST_QUICK=1 TSENOR_TEST_EXACT_ONLY=1 timeout "$(left 100)" compute-sanitizer --tool $tool \
            --error-exitcode 9 ./build/test_cuda > "$out/sanitize_$tool.log" 2>&1
        echo "exit $?"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|passed|FAIL" "$out/sanitize_$tool.log" | tail -4; stamp
    done
fi
echo "== test_cuda_prune (if time is left)"
timeout "$(left 120)" ./build/test_cuda_prune > "$out/test_cuda_prune.log" 2>&1; echo "exit $?"
grep -E "FAIL|passed" "$out/test_cuda_prune.log" | tail -8; stamp
