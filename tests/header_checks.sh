#!/bin/sh
# What tsenor.h promises about itself: the complete program in its top comment compiles
# warning-free (C99 and C++) and runs, and misuse of the configuration macros stops the
# build with a message that names the mistake.
# Usage: sh tests/header_checks.sh BUILD_DIR   (prints "N passed, M failed")
build=${1:-build}
cc=${CC:-cc}
cxx=${CXX:-c++}
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

src="$build/header_example.c"
awk '/---- example.c ----/{on=1; next} /---- end ----/{exit} on' tsenor.h | sed 's/^        //' > "$src"
if [ ! -s "$src" ]; then
    bad "tsenor.h has no example between '---- example.c ----' and '---- end ----'"
else
    if $cc -std=c99 -O2 -Wall -Wextra -pedantic -Werror -fopenmp -I. -o "$build/header_example" "$src" -lm &&
       "./$build/header_example" > "$build/header_example.out"; then
        ok; echo "top-comment example: $(cat "$build/header_example.out")"
    else
        bad "the example in tsenor.h's top comment does not compile warning-free as C99 or fails"
    fi
    cp "$src" "$build/header_example.cpp"
    # C++: the C idiom `= {0}` is fine there, only -Wextra calls it incomplete
    if $cxx -O2 -Wall -Wextra -Wno-missing-field-initializers -Werror -fopenmp -I. -o "$build/header_example_cxx" "$build/header_example.cpp" -lm &&
       "./$build/header_example_cxx" > /dev/null; then ok
    else bad "the example in tsenor.h's top comment does not compile warning-free as C++"; fi
fi

# misuse CASE DEFINES EXPECTED-TEXT: the build must fail and say EXPECTED-TEXT
misuse() {
    printf '%s\n#define TSENOR_IMPLEMENTATION\n#include "tsenor.h"\nint main(void){return 0;}\n' "$2" > "$build/misuse.c"
    if out=$($cc -std=c99 -I. -c "$build/misuse.c" -o "$build/misuse.o" 2>&1); then
        bad "$1: compiled, should stop with '$3'"
    elif printf '%s\n' "$out" | grep -q "$3"; then ok
    else bad "$1: failed without '$3':"; printf '%s\n' "$out" | head -3; fi
}
misuse "TSENOR_MALLOC alone" '#include <stdlib.h>
#define TSENOR_MALLOC(n) malloc(n)' "TSENOR_FREE is not"
misuse "TSENOR_FREE alone" '#include <stdlib.h>
#define TSENOR_FREE(p) free(p)' "TSENOR_MALLOC is not"
misuse "TSENOR_STATIC with TSENOR_CUDA" '#define TSENOR_STATIC
#define TSENOR_CUDA' "TSENOR_STATIC cannot be combined with TSENOR_CUDA"
# and both allocator macros together still build
printf '#include <stdlib.h>\n#define TSENOR_MALLOC(n) malloc(n)\n#define TSENOR_FREE(p) free(p)\n#define TSENOR_IMPLEMENTATION\n#include "tsenor.h"\nint main(void){return 0;}\n' > "$build/misuse.c"
if $cc -std=c99 -Wall -Wextra -pedantic -Werror -I. -c "$build/misuse.c" -o "$build/misuse.o"; then ok
else bad "TSENOR_MALLOC with TSENOR_FREE does not build"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
