/* minimal.c - the README's usage example: an 8:16 transposable mask for a 64 x 96
   matrix with default options. Build: cc -std=c99 -O2 -fopenmp minimal.c -lm */
#define TSENOR_IMPLEMENTATION
#include "../tsenor.h"
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    enum { ROWS = 64, COLS = 96 };
    static float w[ROWS * COLS];
    static uint8_t mask[ROWS * COLS];
    tsenor_options opt = {0};              /* zeros = defaults */
    tsenor_report rep;
    tsenor_status s;
    int i;

    for (i = 0; i < ROWS * COLS; i++) w[i] = (float)rand() / RAND_MAX - 0.5f;
    opt.n = 8;
    opt.m = 16;
    s = tsenor_mask_f32(w, ROWS, COLS, COLS, mask, COLS, &opt, &rep);
    if (s != TSENOR_OK) {
        fprintf(stderr, "tsenor: %s\n", tsenor_status_string(s));
        return 1;
    }
    printf("kept %.1f%% of |w| in %zu blocks (%s), check: %s\n", 100.0 * rep.kept / rep.total, rep.blocks,
           rep.backend, tsenor_status_string(tsenor_check(mask, ROWS, COLS, COLS, 8, 16, 1)));
    return 0;
}
