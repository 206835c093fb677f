#!/usr/bin/env bash
# The n:4 solver on a lent GPU machine (see bench/CUDA_NOTES.md): build with nvcc there,
# the CUDA tests (test_cuda: n:4 bit for bit the CPU's, every dtype, edge blocks, strides,
# device pointers; the digest table on the GPU; GPU pruning), the n:4 section of the
# benchmark with its PyTorch peers (bench_cuda --n4), then compute-sanitizer memcheck,
# racecheck and synccheck on the quick tests (SANITIZE=0 skips them).
# Logs go to $OUT when it is set (the device tool), else to build/.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-build}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" 2>&1 | tail -1 | tee -a "$out/gpu.txt"
make -s cuda 2>&1 | grep -v "unnamed structs" | tail -5
echo "== test_cuda"
./build/test_cuda 2>&1 | tee "$out/test_cuda.log" | grep -vE '^  ' | tail -25
echo "== test_digests_cuda"
./build/test_digests_cuda tests/mask_digests.txt 2>&1 | tee "$out/test_digests_cuda.log" | tail -8
echo "== test_cuda_prune"
./build/test_cuda_prune 2>&1 | tee "$out/test_cuda_prune.log" | grep -E "FAIL|passed" | tail -8
echo "== bench_cuda --n4"
timeout 300 ./build/bench_cuda --n4 2>&1 | tee "$out/bench_cuda_n4.log"
if [ "${SANITIZE:-1}" = 1 ] && command -v compute-sanitizer >/dev/null; then
    for tool in memcheck racecheck synccheck; do
        echo "== compute-sanitizer --tool $tool (quick tests)"
        TSENOR_TEST_QUICK=1 timeout 300 compute-sanitizer --tool $tool --error-exitcode 9 ./build/test_cuda \
            > "$out/sanitize_$tool.log" 2>&1
        echo "exit $?"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|passed" "$out/sanitize_$tool.log" | tail -3
    done
fi
