/* prune_layers.h - synthetic linear layers for the pruning tests and benchmarks: Gaussian
   weights, and calibration inputs shaped like LLM activations (a few latent directions
   with a decaying spectrum, isotropic noise, every 23rd input feature 10x larger).
   Include after workloads.h (its generator). */
#ifndef TSENOR_TESTS_PRUNE_LAYERS_H
#define TSENOR_TESTS_PRUNE_LAYERS_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define PL_LATENTS 24

/* rows x cols of N(0, 1) from seed; rows are filled in parallel, each from its own stream */
static void pl_normal(float *x, size_t rows, size_t cols, uint64_t seed)
{
    ptrdiff_t i;
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (i = 0; i < (ptrdiff_t)rows; i++) {
        wl_rng r;
        size_t j;
        r.s = (seed * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)i * 0xD1B54A32D192ED03ull);
        for (j = 0; j < cols; j++) x[(size_t)i * cols + j] = (float)wl_normal(&r);
    }
}

/* x (tokens x cols): latent k has scale 1 / (1 + k/2), noise 0.3, outlier inputs x10 */
static void pl_activations(float *x, size_t tokens, size_t cols, uint64_t seed)
{
    float *z = (float *)malloc(tokens * PL_LATENTS * sizeof(float));
    float *a = (float *)malloc(PL_LATENTS * cols * sizeof(float));
    ptrdiff_t t;
    if (!z || !a) { printf("prune_layers: out of memory\n"); exit(2); }
    pl_normal(z, tokens, PL_LATENTS, seed);
    pl_normal(a, PL_LATENTS, cols, seed + 1);
    pl_normal(x, tokens, cols, seed + 2);
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (t = 0; t < (ptrdiff_t)tokens; t++) {
        size_t j, k;
        for (j = 0; j < cols; j++) {
            double s = 0.3 * x[(size_t)t * cols + j];
            for (k = 0; k < PL_LATENTS; k++) s += z[(size_t)t * PL_LATENTS + k] * a[k * cols + j] / (1.0 + 0.5 * (double)k);
            x[(size_t)t * cols + j] = (float)(j % 23 == 5 ? 10.0 * s : s);
        }
    }
    free(z);
    free(a);
}

#endif
