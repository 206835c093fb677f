#!/usr/bin/env bash
# Nsight Compute profile of the block kernels on a lent GPU (see bench/CUDA_NOTES.md):
# per-line instruction and stall counts of one 8:16 and one 16:32 launch of
# bench_cuda, as CSV files under $OUT (or build/).
set -u
cd "$(dirname "$0")/.."
out="${OUT:-build}"
make -s cuda 2>&1 | grep -v unnamed | tail -3
# launch order in bench_cuda: 23 calls of 8:16 (MP = 16), 2:4 (another kernel), then 23 of 16:32 (MP = 32)
for spec in "solve_blocks_kernel:4:mp16" "solve_blocks_kernel:27:mp32"; do
    IFS=: read -r name skip tag <<< "$spec"
    timeout 200 ncu --set full --import-source yes -k "regex:$name" \
        --launch-skip "$skip" --launch-count 1 -o "$out/p_$tag" ./build/bench_cuda --no-peers > /dev/null 2>&1
    ncu --import "$out/p_$tag.ncu-rep" --page source --csv --print-source=cuda > "$out/cuda_$tag.csv" 2>&1
    ncu --import "$out/p_$tag.ncu-rep" --page details > "$out/details_$tag.txt" 2>&1
    rm -f "$out/p_$tag.ncu-rep"
done
ls -la "$out"
