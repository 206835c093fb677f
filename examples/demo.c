/* demo.c - `make demo`: solves a built-in 1024 x 1024 matrix shaped like an LLM weight
   (Gaussian with per-column scales and a few outlier columns; generated, no download)
   with every method and prints method, kept %, error vs exact and time. */
#define TSENOR_IMPLEMENTATION
#include "../tsenor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* splitmix64: a small deterministic generator, so every run solves the same matrix */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *state) { return ((double)(next_random(state) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

static double normal(uint64_t *state)   /* Box-Muller */
{
    const double u = uniform(state), v = uniform(state);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* N(0,1) times a log-normal scale per column (sigma 0.5), and 1 column in 64 scaled by
   20-50x more: the outlier columns of LLM weight matrices */
static int fill_llm_shaped(float *w, size_t rows, size_t cols)
{
    uint64_t state = 0x2545F4914F6CDD1Dull + 1;
    double *scale = (double *)malloc(cols * sizeof *scale);
    size_t i, j;
    if (!scale) return 0;
    for (j = 0; j < cols; j++) {
        scale[j] = exp(0.5 * normal(&state));
        if (next_random(&state) % 64 == 0) scale[j] *= 20.0 + 30.0 * uniform(&state);
    }
    for (i = 0; i < rows; i++)
        for (j = 0; j < cols; j++) w[i * cols + j] = (float)(normal(&state) * scale[j]);
    free(scale);
    return 1;
}

/* the magnitude a mask prunes, summed block by block */
static double pruned_magnitude(const float *w, const uint8_t *mask, size_t rows, size_t cols, int m)
{
    double total = 0.0;
    size_t r0, c0, i, j;
    for (r0 = 0; r0 < rows; r0 += (size_t)m)
        for (c0 = 0; c0 < cols; c0 += (size_t)m) {
            double block = 0.0;
            for (i = r0; i < rows && i < r0 + (size_t)m; i++)
                for (j = c0; j < cols && j < c0 + (size_t)m; j++)
                    if (!mask[i * cols + j]) block += fabs((double)w[i * cols + j]);
            total += block;
        }
    return total;
}

int main(void)
{
    const size_t rows = 1024, cols = 1024;
    static const int patterns[3][2] = {{2, 4}, {8, 16}, {16, 32}};
    static const tsenor_method methods[4] = {TSENOR_METHOD_EXACT, TSENOR_METHOD_TSENOR, TSENOR_METHOD_GREEDY,
                                             TSENOR_METHOD_ROWWISE};
    float *w = (float *)malloc(rows * cols * sizeof *w);
    uint8_t *exact = (uint8_t *)malloc(rows * cols), *mask = (uint8_t *)malloc(rows * cols);
    int p, k;
    if (!w || !exact || !mask || !fill_llm_shaped(w, rows, cols)) return 1;

    printf("tsenor %s demo: %zux%zu LLM-shaped matrix (outlier columns)\n", tsenor_version(), rows, cols);
    printf("error = (pruned - pruned_exact) / pruned_exact; rowwise is not transposable\n\n");
    printf("%-6s %-8s %8s %10s %9s %-12s %s\n", "n:m", "method", "kept %", "error", "time s", "backend", "valid");
    for (p = 0; p < 3; p++) {
        double pruned_exact = 0.0;
        for (k = 0; k < 4; k++) {
            tsenor_options opt = {0};
            tsenor_report rep;
            tsenor_status s;
            uint8_t *out = k == 0 ? exact : mask;
            const int transposable = methods[k] != TSENOR_METHOD_ROWWISE;
            char err[32];
            opt.n = patterns[p][0];
            opt.m = patterns[p][1];
            opt.method = methods[k];
            s = tsenor_mask_f32(w, rows, cols, cols, out, cols, &opt, &rep);
            if (s != TSENOR_OK) {
                fprintf(stderr, "demo: %s\n", tsenor_status_string(s));
                return 1;
            }
            if (k == 0) pruned_exact = pruned_magnitude(w, exact, rows, cols, opt.m);
            if (transposable) {
                const double pruned = pruned_magnitude(w, out, rows, cols, opt.m);
                sprintf(err, "%9.4f%%", 100.0 * (pruned - pruned_exact) / pruned_exact);
            } else {
                sprintf(err, "%10s", "n/a");
            }
            printf("%2d:%-3d %-8s %8.3f %s %9.4f %-12s %s\n", opt.n, opt.m, tsenor_method_string(methods[k]),
                   100.0 * rep.kept / rep.total, err, rep.seconds, rep.backend,
                   tsenor_check(out, rows, cols, cols, opt.n, opt.m, transposable) == TSENOR_OK
                       ? (transposable ? "transposable" : "row-wise")
                       : "INVALID");
        }
        printf("\n");
    }
    free(w);
    free(exact);
    free(mask);
    return 0;
}
