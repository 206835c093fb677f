#!/bin/sh
# Runs every test build and the README snippet check; prints the summed closing line.
# Usage: sh tests/run.sh BUILD_DIR
build=${1:-build}
passed=0
failed=0
for t in test_tsenor test_tsenor_plain_c test_tsenor_serial test_tsenor_cxx; do
    echo "== $t"
    out=$("./$build/$t" 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -v '^ ' | grep -E 'FAIL|passed|backend' | head -40
    [ "$t" = test_tsenor ] && printf '%s\n' "$out" | grep -E '^(quality|  )'
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
    if [ -z "$line" ]; then
        echo "$t: no result line (exit $rc)"
        failed=$((failed + 1))
        continue
    fi
    p=$(echo "$line" | cut -d' ' -f1)
    f=$(echo "$line" | cut -d' ' -f3)
    passed=$((passed + p))
    failed=$((failed + f))
    [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && failed=$((failed + 1))
done
echo "== test_tsenor_arm64 (NEON, under qemu-aarch64)"
if [ -x "$build/test_tsenor_arm64" ] && command -v qemu-aarch64 >/dev/null 2>&1; then
    out=$(qemu-aarch64 -L /usr/aarch64-linux-gnu "./$build/test_tsenor_arm64" 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -E 'FAIL|passed|backend' | head -40
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
    if [ -z "$line" ]; then
        echo "test_tsenor_arm64: no result line (exit $rc)"
        failed=$((failed + 1))
    else
        passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
        f=$(echo "$line" | cut -d' ' -f3)
        failed=$((failed + f))
        [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && failed=$((failed + 1))
    fi
else
    echo "skipped: no arm64 cross build or qemu-aarch64 (apt-get install gcc-aarch64-linux-gnu qemu-user)"
fi
echo "== command line (tests/test_cli.py: plain build, then under ASan + UBSan)"
if command -v python3 >/dev/null 2>&1 && python3 -c "import numpy" >/dev/null 2>&1; then
    for bin in tsenor tsenor_sanitize; do
        out=$(TSENOR_CLI="$build/$bin" python3 tests/test_cli.py "$build" 2>&1)
        rc=$?
        printf '%s\n' "$out" | grep -E "FAIL|passed|skipped|note|MiniLM|^test_" | sed "s/^/$bin: /" | head -60
        line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1)
        if [ -z "$line" ]; then
            printf '%s\n' "$out" | tail -20
            echo "$bin: no result line (exit $rc)"
            failed=$((failed + 1))
            continue
        fi
        passed=$((passed + $(echo "$line" | cut -d' ' -f1)))
        f=$(echo "$line" | cut -d' ' -f3)
        failed=$((failed + f))
        [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && failed=$((failed + 1))
    done
else
    echo "skipped: the command-line tests need python3 with numpy (pip install numpy safetensors)"
fi
echo "== fuzz smoke (tests/fuzz)"
if sh tests/fuzz/smoke.sh "$build"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
echo "== README snippet"
if sh tests/readme_snippet.sh "$build"; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
