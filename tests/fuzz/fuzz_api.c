/* Fuzz target for the library's public calls: the input chooses dtype, method, n:m,
   shape, strides, options and the weights' bits (NaN, Inf, subnormals included). The
   documented behaviour is checked on every call, and a break aborts:
     - TSENOR_OK: the mask is N:M (transposable unless ROWWISE; partial blocks keep at
       most n) and the report's kept magnitude lies within [0, total];
     - any other status: one of the documented ones, and the mask untouched.
   Serial build (no OpenMP): clang -fsanitize=fuzzer,address,undefined. */
#define TSENOR_IMPLEMENTATION
#include "../../tsenor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_DIM 40

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static float wf[FUZZ_MAX_DIM * (FUZZ_MAX_DIM + 3)];
    static uint16_t wh[FUZZ_MAX_DIM * (FUZZ_MAX_DIM + 3)];
    static uint8_t mask[FUZZ_MAX_DIM * FUZZ_MAX_DIM], sentinel[FUZZ_MAX_DIM * FUZZ_MAX_DIM];
    tsenor_options o;
    tsenor_report rep;
    tsenor_status s;
    size_t rows, cols, ld, k;
    int dt;
    if (size < 10) return 0;
    memset(&o, 0, sizeof o);
    dt = data[0] % 3;
    o.method = (tsenor_method)(data[1] % 6);              /* 5: out of range */
    o.m = data[2] % 20;                                   /* 0, 1: out of range */
    o.n = data[3] % 20;
    rows = 1 + data[4] % FUZZ_MAX_DIM;
    cols = 1 + data[5] % FUZZ_MAX_DIM;
    ld = cols + data[6] % 4;
    o.iterations = data[7] % 24;                          /* 0: default */
    o.local_search_steps = (int)(data[8] % 10) - 1;       /* -1: none, 0: default */
    o.tau = data[9] & 0x80 ? 0.0f : 0.002f + (float)(data[9] & 0x7F) * 0.004f;
    o.threads = 1;
    data += 10;
    size -= 10;
    for (k = 0; k < rows * ld; k++) {   /* the weights' bits, cycled over the rest of the input */
        uint8_t b[4] = {0, 0, 0, 0};
        int q;
        for (q = 0; q < 4 && size; q++) b[q] = data[(4 * k + (size_t)q) % size];
        memcpy(&wf[k], b, 4);
        wh[k] = (uint16_t)(b[0] | b[1] << 8);
    }
    for (k = 0; k < sizeof sentinel; k++) sentinel[k] = (uint8_t)(k * 29 + 3);
    memcpy(mask, sentinel, sizeof mask);
    s = dt == 0 ? tsenor_mask_f32(wf, rows, cols, ld, mask, cols, &o, &rep)
      : dt == 1 ? tsenor_mask_f16(wh, rows, cols, ld, mask, cols, &o, &rep)
                : tsenor_mask_bf16(wh, rows, cols, ld, mask, cols, &o, &rep);
    if (s == TSENOR_OK) {
        const int method = o.method == TSENOR_METHOD_DEFAULT ? TSENOR_METHOD_TSENOR : (int)o.method;
        if (tsenor_check(mask, rows, cols, cols, o.n, o.m, method != TSENOR_METHOD_ROWWISE) != TSENOR_OK) {
            fprintf(stderr, "fuzz_api: invalid mask (dtype %d method %d %d:%d %zux%zu)\n", dt, method, o.n, o.m, rows, cols);
            __builtin_trap();
        }
        if (!(rep.kept >= 0.0 && rep.kept <= rep.total * (1.0 + 1e-6) + 1e-300)) {
            fprintf(stderr, "fuzz_api: report kept %g of %g\n", rep.kept, rep.total);
            __builtin_trap();
        }
    } else {
        if (s != TSENOR_ERR_INVALID_ARGUMENT && s != TSENOR_ERR_NONFINITE_INPUT) {
            fprintf(stderr, "fuzz_api: unexpected status %d\n", (int)s);
            __builtin_trap();
        }
        if (memcmp(mask, sentinel, sizeof mask) != 0) {
            fprintf(stderr, "fuzz_api: status %d but the mask was written\n", (int)s);
            __builtin_trap();
        }
    }
    return 0;
}

#ifdef FUZZ_REPLAY_MAIN
#include "replay.h"
#endif
