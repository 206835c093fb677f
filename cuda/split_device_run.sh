#!/usr/bin/env bash
# One call on a lent GPU for ALPS's blocked split-TF32 solves: build (make -j16 cuda),
# the pruning tests, and make bench-cuda-prune (4096 x 4096 and 4096 x 14336, with the
# PyTorch peers when torch is there). Logs go to $OUT (the device tool), else build/.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-build}"
mkdir -p "$out"
SECONDS=0
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee "$out/gpu.txt"
make -j16 cuda > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
echo "build ${SECONDS}s"
TSENOR_TEST_VERBOSE=1 timeout 200 ./build/test_cuda_prune > "$out/test_cuda_prune.log" 2>&1
echo "tests exit $?, ${SECONDS}s"; grep -E "FAIL|passed|skipped|1280|2300" "$out/test_cuda_prune.log" | tail -20
timeout 330 ./build/bench_cuda_prune > "$out/bench_cuda_prune.log" 2>&1
echo "bench exit $?, ${SECONDS}s"; cat "$out/bench_cuda_prune.log"
