#!/bin/sh
# The pruning methods on real all-MiniLM-L6-v2 layers (bench/minilm/layer_check.py)
# through the Python package, which is built first (make python) unless it is there.
# Prints the check's lines and "N passed, M failed", or one "skipped:" line with the
# reason and "0 passed, 0 failed" when python3, numpy, safetensors or a data package is
# missing (tests/run.sh and make test-minilm read it).
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
PYTHONPATH="$build/python/site" OPENBLAS_NUM_THREADS=1 "$python" -m bench.minilm.layer_check
