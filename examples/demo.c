/* demo.c - `make demo`: solves a built-in 1024 x 1024 matrix shaped like an LLM weight
   (Gaussian with per-column scales and a few outlier columns; generated, no download)
   with every method and prints method, kept %, error vs exact and time. */
#define TSENOR_IMPLEMENTATION
#include "../tsenor.h"
#include "../tests/workloads.h"

#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    const size_t rows = 1024, cols = 1024;
    static const int patterns[3][2] = {{2, 4}, {8, 16}, {16, 32}};
    static const tsenor_method methods[4] = {TSENOR_METHOD_EXACT, TSENOR_METHOD_TSENOR, TSENOR_METHOD_GREEDY,
                                             TSENOR_METHOD_ROWWISE};
    static const char *names[4] = {"exact", "tsenor", "greedy", "rowwise"};
    float *w = (float *)malloc(rows * cols * sizeof *w);
    uint8_t *exact = (uint8_t *)malloc(rows * cols), *mask = (uint8_t *)malloc(rows * cols);
    int p, k;
    if (!w || !exact || !mask) return 1;
    wl_fill(w, rows, cols, cols, WL_OUTLIER, 1);

    printf("tsenor %s demo: %zux%zu LLM-shaped matrix (outlier columns)\n", tsenor_version(), rows, cols);
    printf("error = (pruned - pruned_exact) / pruned_exact; rowwise is not transposable\n\n");
    printf("%-6s %-8s %8s %10s %9s %-12s %s\n", "n:m", "method", "kept %", "error", "time s", "backend", "valid");
    for (p = 0; p < 3; p++) {
        for (k = 0; k < 4; k++) {
            tsenor_options opt = {0};
            tsenor_report rep;
            tsenor_status s;
            int transposable = methods[k] != TSENOR_METHOD_ROWWISE;
            opt.n = patterns[p][0];
            opt.m = patterns[p][1];
            opt.method = methods[k];
            s = tsenor_mask_f32(w, rows, cols, cols, k == 0 ? exact : mask, cols, &opt, &rep);
            if (s != TSENOR_OK) {
                fprintf(stderr, "demo: %s\n", tsenor_status_string(s));
                return 1;
            }
            {
                wl_error e = wl_relative_error(w, rows, cols, cols, k == 0 ? exact : mask, exact, cols, opt.m);
                char err[32];
                if (transposable) sprintf(err, "%9.4f%%", 100.0 * e.matrix);
                else sprintf(err, "%10s", "n/a");
                printf("%2d:%-3d %-8s %8.3f %s %9.4f %-12s %s\n", opt.n, opt.m, names[k],
                       100.0 * rep.kept / rep.total, err, rep.seconds, rep.backend,
                       tsenor_check(k == 0 ? exact : mask, rows, cols, cols, opt.n, opt.m, transposable) == TSENOR_OK
                           ? (transposable ? "transposable" : "row-wise")
                           : "INVALID");
            }
        }
        printf("\n");
    }
    free(w);
    free(exact);
    free(mask);
    return 0;
}
