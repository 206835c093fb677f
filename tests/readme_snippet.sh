#!/bin/sh
# Extracts the usage snippet from README.md (the first ```c block), compiles it against
# tsenor.h warning-free and runs it: the README's example is kept true.
build=${1:-build}
src="$build/readme_snippet.c"
awk '/^```c$/{on=1; next} /^```$/{if(on){exit}} on' README.md > "$src"
[ -s "$src" ] || { echo "README.md has no \`\`\`c block"; exit 1; }
${CC:-cc} -std=c99 -O2 -Wall -Wextra -pedantic -Werror -fopenmp -I. -o "$build/readme_snippet" "$src" -lm || exit 1
"./$build/readme_snippet" > "$build/readme_snippet.out" || { cat "$build/readme_snippet.out"; exit 1; }
cat "$build/readme_snippet.out"
