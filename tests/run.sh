#!/bin/sh
# Runs every test build, the command-line tests, the fuzz smoke run and the README
# snippet check; prints the summed closing line.
# Usage: sh tests/run.sh BUILD_DIR
build=${1:-build}
passed=0
failed=0

# tally NAME RC OUTPUT: adds a run's "N passed, M failed" line to the totals (a run with
# no such line, or a non-zero exit with no failed check, counts as one failure)
tally() {
    line=$(printf '%s\n' "$3" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
    if [ -z "$line" ]; then
        printf '%s\n' "$3" | tail -20
        echo "$1: no result line (exit $2)"
        failed=$((failed + 1))
        return
    fi
    passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
    f=$(echo "$line" | cut -d' ' -f3)
    failed=$((failed + f))
    [ "$2" -ne 0 ] && [ "$f" -eq 0 ] && failed=$((failed + 1))
}

for t in test_tsenor test_tsenor_plain_c test_tsenor_serial test_tsenor_cxx test_tsenor_clang test_tsenor_clangxx \
         test_hardening test_hardening_tsan; do
    echo "== $t"
    case $t in test_tsenor_clang*)
        [ -x "$build/$t" ] || { echo "skipped: not built (no clang)"; continue; } ;;
    esac
    out=$("./$build/$t" 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -v '^ ' | grep -E 'FAIL|passed|backend' | head -40
    [ "$t" = test_tsenor ] && printf '%s\n' "$out" | grep -E '^(quality|  )'
    tally "$t" "$rc" "$out"
done

for t in test_digests test_digests_plain_c; do
    echo "== $t (every mask bit against tests/mask_digests.txt)"
    out=$("./$build/$t" tests/mask_digests.txt 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -E 'FAIL|passed' | head -20
    tally "$t" "$rc" "$out"
done

echo "== test_tsenor_arm64 (NEON, under qemu-aarch64)"
if [ -x "$build/test_tsenor_arm64" ] && command -v qemu-aarch64 >/dev/null 2>&1; then
    out=$(qemu-aarch64 -L /usr/aarch64-linux-gnu "./$build/test_tsenor_arm64" 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -E 'FAIL|passed|backend' | head -40
    tally test_tsenor_arm64 "$rc" "$out"
else
    echo "skipped: no arm64 cross build or qemu-aarch64 (apt-get install gcc-aarch64-linux-gnu qemu-user)"
fi

echo "== command line (tests/test_cli.py: plain build, then under ASan + UBSan)"
if command -v python3 >/dev/null 2>&1 && python3 -c "import numpy" >/dev/null 2>&1; then
    for bin in tsenor tsenor_sanitize; do
        out=$(TSENOR_CLI="$build/$bin" python3 tests/test_cli.py "$build" 2>&1)
        rc=$?
        printf '%s\n' "$out" | grep -E "FAIL|passed|skipped|note|MiniLM|^test_" | sed "s/^/$bin: /" | head -60
        tally "$bin" "$rc" "$out"
    done
else
    echo "skipped: the command-line tests need python3 with numpy (pip install numpy safetensors)"
fi

echo "== Python package (python/tests with pytest, on make python's build)"
out=$(sh python/tests/run.sh "$build" 2>&1)
rc=$?
printf '%s\n' "$out" | grep -E "FAIL|ERROR|Error|passed|skipped" | head -40
tally python "$rc" "$out"

echo "== fuzz smoke (tests/fuzz)"
if sh tests/fuzz/smoke.sh "$build"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi

echo "== tsenor.h: the top comment's example, misuse of the configuration macros"
out=$(sh tests/header_checks.sh "$build" 2>&1)
rc=$?
printf '%s\n' "$out" | grep -E 'FAIL|passed|example' | head -20
tally header_checks "$rc" "$out"

echo "== README snippet"
if sh tests/readme_snippet.sh "$build"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
