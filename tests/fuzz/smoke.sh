#!/bin/sh
# The fuzz smoke run of `make test`: a few hundred thousand libFuzzer executions from
# the committed corpus (new inputs go to a scratch directory, not the corpus), or, when
# the build is the replay fallback, every corpus file once under the sanitizers.
# Usage: sh tests/fuzz/smoke.sh BUILD_DIR
build=${1:-build}
bin="$build/fuzz_files"
corpus=tests/fuzz/corpus
if "$bin" -help=1 2>&1 | grep -q "libFuzzer"; then
    scratch="$build/fuzz_smoke_corpus"
    rm -rf "$scratch" && mkdir -p "$scratch"
    "$bin" "$scratch" "$corpus" -runs=300000 -max_len=4096 -seed=1 -print_final_stats=1 > "$build/fuzz_smoke.log" 2>&1
    rc=$?
    runs=$(grep -E '^stat::number_of_executed_units' "$build/fuzz_smoke.log" | awk '{print $2}')
    if [ "$rc" -ne 0 ]; then
        tail -30 "$build/fuzz_smoke.log"
        echo "fuzz smoke: FAILED (exit $rc; the input is in the log above)"
        exit 1
    fi
    echo "fuzz smoke: ${runs:-?} libFuzzer executions from $(ls "$corpus" | wc -l) seeds, no finding"
else
    "$bin" "$corpus"/* || { echo "fuzz smoke: FAILED (corpus replay)"; exit 1; }
    echo "fuzz smoke: corpus replayed under ASan/UBSan (no libFuzzer here: apt-get install clang for the fuzzer)"
fi
