#!/bin/sh
# Builds the Python package (make python) and runs python/tests with pytest; closes with
# "N passed, M failed" (M counts failures and errors) for tests/run.sh's tally.
# Usage: sh python/tests/run.sh BUILD_DIR
build=${1:-build}
python=${PYTHON:-python3}
if ! "$python" -c "import numpy, pytest, setuptools" >/dev/null 2>&1; then
    echo "skipped: the Python package's tests need $python with numpy, pytest and setuptools" \
         "(pip install numpy pytest setuptools wheel ml_dtypes torch)"
    echo "0 passed, 0 failed"
    exit 0
fi
if ! out=$(make --no-print-directory BUILD="$build" PYTHON="$python" python 2>&1); then
    printf '%s\n' "$out" | tail -30
    echo "python: the package did not build"
    exit 1
fi
out=$(PYTHONPATH="$build/python/site" "$python" -m pytest python/tests -q -rsfE -p no:cacheprovider 2>&1)
rc=$?
printf '%s\n' "$out" | grep -vE '^SKIPPED ' | tail -30
# why tests were skipped, one line per reason (CUDA ones without a GPU, say)
printf '%s\n' "$out" | sed -n 's/^SKIPPED \[\([0-9]*\)\] [^:]*:[0-9]*: /\1 /p' |
    awk '{n = $1; $1 = ""; sum[$0] += n} END {for (r in sum) printf "skipped %d:%s\n", sum[r], r}' | sort
summary=$(printf '%s\n' "$out" | grep -E '^=*.* in [0-9.]+s( \(.*\))? *=*$' | tail -1)
count() { printf '%s\n' "$summary" | grep -oE "[0-9]+ $1" | grep -oE '[0-9]+' || echo 0; }
passed=$(count passed)
failed=$(( $(count failed) + $(count error) ))
[ -n "$summary" ] || { echo "python: pytest printed no summary (exit $rc)"; exit 1; }
echo "$passed passed, $failed failed"
[ "$rc" -eq 0 ]
