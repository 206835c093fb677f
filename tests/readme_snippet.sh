#!/bin/sh
# Extracts the usage snippets from README.md (the first ```c block, and the first one
# under "## Prune with calibration"), compiles each against tsenor.h warning-free and
# runs it: the README's examples are kept true.
build=${1:-build}
rc=0
for which in use prune; do
    src="$build/readme_snippet_$which.c"
    if [ "$which" = use ]; then
        awk '/^```c$/{on=1; next} /^```$/{if(on){exit}} on' README.md > "$src"
    else
        awk '/^## Prune with calibration/{sec=1} sec && /^```c$/{on=1; next} /^```$/{if(on){exit}} on' README.md > "$src"
    fi
    [ -s "$src" ] || { echo "README.md has no \`\`\`c block ($which)"; exit 1; }
    ${CC:-cc} -std=c99 -O2 -Wall -Wextra -pedantic -Werror -fopenmp -I. -o "$build/readme_snippet_$which" "$src" -lm || exit 1
    "./$build/readme_snippet_$which" > "$build/readme_snippet_$which.out" || { cat "$build/readme_snippet_$which.out"; rc=1; }
    cat "$build/readme_snippet_$which.out"
done
exit $rc
