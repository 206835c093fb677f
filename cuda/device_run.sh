#!/usr/bin/env bash
# One call on a lent GPU machine (see bench/CUDA_NOTES.md): build with nvcc there,
# run make test-cuda, the CUDA example and make bench-cuda, then compute-sanitizer
# memcheck and racecheck (SANITIZE=0 skips them).
# Logs go to $OUT when it is set (the device tool), else to build/.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-build}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee "$out/gpu.txt"
make -s cuda 2>&1 | grep -v "unnamed structs" | tail -5
echo "== make test-cuda"
make -s test-cuda 2>&1 | tee "$out/test_cuda.log" | grep -vE '^  ' | tail -25
echo "== examples/cuda_prune"
./build/cuda_prune 2>&1 | tee "$out/cuda_prune.log"
echo "== make bench-cuda"
timeout 400 make -s bench-cuda 2>&1 | tee "$out/bench_cuda.log"
if [ "${SANITIZE:-1}" = 1 ] && command -v compute-sanitizer >/dev/null; then
    for tool in memcheck racecheck; do
        echo "== compute-sanitizer --tool $tool (quick tests)"
        TSENOR_TEST_QUICK=1 timeout 300 compute-sanitizer --tool $tool --error-exitcode 9 ./build/test_cuda \
            > "$out/sanitize_$tool.log" 2>&1
        echo "exit $?"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|passed" "$out/sanitize_$tool.log" | tail -3
    done
fi
