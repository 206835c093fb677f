#!/bin/sh
# The fuzz smoke run of `make test`, for each target: libFuzzer executions from its
# committed corpus (new inputs go to a scratch directory, not the corpus), or, when the
# build is the replay fallback, every corpus file once under the sanitizers.
# Usage: sh tests/fuzz/smoke.sh BUILD_DIR
build=${1:-build}
status=0

# smoke TARGET CORPUS RUNS MAX_LEN
smoke() {
    bin="$build/$1"
    if "$bin" -help=1 2>&1 | grep -q "libFuzzer"; then
        scratch="$build/smoke_corpus_$1"
        rm -rf "$scratch" && mkdir -p "$scratch"
        "$bin" "$scratch" "$2" -runs="$3" -max_len="$4" -seed=1 -print_final_stats=1 > "$build/smoke_$1.log" 2>&1
        rc=$?
        runs=$(grep -E '^stat::number_of_executed_units' "$build/smoke_$1.log" | awk '{print $2}')
        if [ "$rc" -ne 0 ]; then
            tail -30 "$build/smoke_$1.log"
            echo "fuzz smoke $1: FAILED (exit $rc; the input is in the log above)"
            status=1
            return
        fi
        echo "fuzz smoke $1: ${runs:-?} libFuzzer executions from $(ls "$2" | wc -l) seeds, no finding"
    else
        if "$bin" "$2"/*; then
            echo "fuzz smoke $1: corpus replayed under ASan/UBSan (no libFuzzer here: apt-get install clang)"
        else
            echo "fuzz smoke $1: FAILED (corpus replay)"
            status=1
        fi
    fi
}

smoke fuzz_files tests/fuzz/corpus 300000 4096
smoke fuzz_api tests/fuzz/corpus_api 20000 600
exit $status
