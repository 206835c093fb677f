#!/usr/bin/env bash
# One call on a lent GPU machine for the Python package: build it with CUDA there
# (TSENOR_CUDA=1 make python), make test-python (CUDA tensors, GPU pruning, and
# all-MiniLM-L6-v2 on the GPU when build/device_data is carried: cuda/device_data.sh
# writes it here), then bench/bench_python.py --device cuda (the binding's overheads on
# the CPU and the GPU, and tsenor.torch.prune of MiniLM on the GPU). Logs go to $OUT
# when it is set (the device tool), else to build/.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-build}"
mkdir -p "$out"
SECONDS=0
[ -d build/device_data ] && export PYTHONPATH="$PWD/build/device_data${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee "$out/gpu.txt"
echo "== TSENOR_CUDA=1 make python, make test-python"
{ TSENOR_CUDA=1 timeout 300 make -s python && timeout 420 make -s test-python; } > "$out/python.log" 2>&1
echo "exit $?, ${SECONDS}s"; grep -E "passed|failed|error|SKIP" "$out/python.log" | tail -12
echo "== bench/bench_python.py --device cuda"
PYTHONPATH="build/python/site${PYTHONPATH:+:$PYTHONPATH}" timeout "$(( 590 - SECONDS > 30 ? 590 - SECONDS : 30 ))" \
    python3 bench/bench_python.py --device cuda > "$out/bench_python.log" 2>&1
echo "exit $?, ${SECONDS}s"; cat "$out/bench_python.log"
