#!/usr/bin/env bash
# One call on a lent GPU machine for the pruning code: build with nvcc there (make -j16
# cuda), the pruning tests (tests/test_cuda_prune.c), make bench-cuda-prune (with its
# PyTorch peers when torch is there), compute-sanitizer memcheck on the quick subset of
# the pruning tests, then the rest of make test-cuda (the mask tests and the GPU digest
# table), then the Python package built with CUDA and its tests (python/tests: the CUDA
# tensors' masks, pruning and grams). Each step has a time limit so that the logs come
# back within a 10-minute call. Logs (7 files) go to $OUT when it is set (the device
# tool), else to build/. BENCH_ARGS="--quick --no-peers" runs the 4096 x 4096 rows alone.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-build}"
mkdir -p "$out"
SECONDS=0
left() { local r=$(( ${1} - SECONDS )); [ "$r" -lt 10 ] && r=10; echo "$r"; }   # seconds left of a budget
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.used --format=csv 2>&1 | tee "$out/gpu.txt"
python3 -c 'import torch; print("torch", torch.__version__, "cuda devices", torch.cuda.device_count())' >> "$out/gpu.txt" 2>&1
echo "== make -j16 cuda"
make -j16 cuda > "$out/build.log" 2>&1; rc=$?
grep -iE "error|warning" "$out/build.log" | grep -v "unnamed structs" | head -20
echo "build exit $rc, ${SECONDS}s"
[ "$rc" = 0 ] || exit "$rc"
echo "== build/test_cuda_prune (make test-cuda, pruning part)"
TSENOR_TEST_VERBOSE=1 timeout "$(left 200)" ./build/test_cuda_prune > "$out/test_cuda_prune.log" 2>&1
echo "exit $?, ${SECONDS}s"; grep -E "FAIL|passed|skipped" "$out/test_cuda_prune.log" | tail -25
echo "== make bench-cuda-prune"
timeout "$(left 470)" ./build/bench_cuda_prune ${BENCH_ARGS:-} > "$out/bench_cuda_prune.log" 2>&1
echo "exit $?, ${SECONDS}s"; cat "$out/bench_cuda_prune.log"
if command -v compute-sanitizer >/dev/null; then
    echo "== compute-sanitizer --tool memcheck (quick pruning tests)"
    TSENOR_TEST_QUICK=1 timeout "$(left 530)" compute-sanitizer --tool memcheck --error-exitcode 9 ./build/test_cuda_prune \
        > "$out/sanitize_prune.log" 2>&1
    echo "exit $?, ${SECONDS}s"; grep -E "ERROR SUMMARY|passed|Error" "$out/sanitize_prune.log" | head -5
else
    echo "no compute-sanitizer" > "$out/sanitize_prune.log"
fi
echo "== the rest of make test-cuda (test_cuda, test_digests_cuda)"
{ timeout "$(left 585)" ./build/test_cuda && timeout "$(left 590)" ./build/test_digests_cuda tests/mask_digests.txt; } \
    > "$out/test_cuda.log" 2>&1
echo "exit $?, ${SECONDS}s"; grep -E "FAIL|passed" "$out/test_cuda.log" | tail -8
echo "== the Python package with CUDA (TSENOR_CUDA=1 make python), make test-python"
{ TSENOR_CUDA=1 timeout "$(left 480)" make -s python && timeout "$(left 595)" make -s test-python; } > "$out/python.log" 2>&1
echo "exit $?, ${SECONDS}s"; grep -E "passed|failed|error" "$out/python.log" | tail -6
