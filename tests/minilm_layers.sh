#!/bin/sh
# The pruning methods on real all-MiniLM-L6-v2 layers (bench/minilm/layer_check.py) and
# the quality table's quick mode (bench/minilm/quality_table.py --quick: dense, magnitude
# and ALPS at transposable 16:32 on the whole model, with bounds), through the Python
# package, which is built first (make python) unless it is there.
# Prints their lines and "N passed, M failed" (both summed), or one "skipped:" line with
# the reason and "0 passed, 0 failed" when python3, numpy, safetensors or a data package
# is missing (tests/run.sh and make test-minilm read it).
# Usage: sh tests/minilm_layers.sh BUILD_DIR
build=${1:-build}
python=${PYTHON:-python3}
skip() {
    echo "skipped: the MiniLM layer checks: $1"
    echo "0 passed, 0 failed"
    exit 0
}
command -v "$python" >/dev/null 2>&1 || skip "no $python"
why=$("$python" -m bench.minilm.layer_errors --requirements) || { echo "layer_errors --requirements failed"; exit 1; }
[ -z "$why" ] || skip "$why"
if [ ! -f "$build/python/site/.built" ] && ! "$python" -c "import setuptools" >/dev/null 2>&1; then
    skip "the Python package is not built and there is no setuptools to build it (pip install setuptools wheel)"
fi
if ! out=$(make --no-print-directory BUILD="$build" PYTHON="$python" python 2>&1); then
    printf '%s\n' "$out" | tail -30
    echo "the Python package did not build"
    exit 1
fi
passed=0
failed=0
rc=0
# each part's own "N passed, M failed" is printed with its name in front, then added up
for part in layer_check "quality_table --quick"; do
    start=$(date +%s)
    out=$(PYTHONPATH="$build/python/site" OPENBLAS_NUM_THREADS=1 "$python" -m bench.minilm.$part 2>&1)
    prc=$?
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
    printf '%s\n' "$out" | grep -vE '^[0-9]+ passed, [0-9]+ failed$'
    echo "${part%% *}: ${line:-no result line} ($(( $(date +%s) - start )) s)"
    if [ -z "$line" ]; then failed=$((failed + 1)); rc=1; continue; fi
    passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
    f=$(echo "$line" | cut -d' ' -f3)
    failed=$((failed + f))
    if [ "$prc" -ne 0 ]; then rc=1; [ "$f" -eq 0 ] && failed=$((failed + 1)); fi
done
echo "$passed passed, $failed failed"
exit $rc
