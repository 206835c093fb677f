/* bench_prune.c - `make bench-prune`: each pruning method on synthetic layers of
   MiniLM sizes (384x384, 1536x384, 384x1536) and 1024x1024, at transposable 16:32 and
   row-wise 2:4: error tr(D H D^T)/tr(W H W^T), seconds, ADMM iterations and the share
   of the time spent in the mask solver. Calibration inputs: 2*cols tokens with a
   decaying spectrum and outlier features. Also the sgemm rate at 1536^3.
   Usage: bench_prune [--quick] [--gemm-only] */
#define TSENOR_IMPLEMENTATION
#include "../tsenor.h"
#include "../tests/workloads.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

static void activations(float *x, size_t tokens, size_t cols, uint64_t seed)
{
    const size_t q = 24;
    wl_rng r;
    float *z = (float *)xalloc(tokens * q * sizeof(float)), *a = (float *)xalloc(q * cols * sizeof(float));
    size_t t, j, k;
    r.s = seed;
    for (k = 0; k < tokens * q; k++) z[k] = (float)(wl_normal(&r) / (1.0 + 0.5 * (double)(k % q)));
    for (k = 0; k < q * cols; k++) a[k] = (float)wl_normal(&r);
    for (t = 0; t < tokens; t++)
        for (j = 0; j < cols; j++) {
            double s = 0.3 * wl_normal(&r);
            for (k = 0; k < q; k++) s += z[t * q + k] * a[k * cols + j];
            x[t * cols + j] = (float)(j % 23 == 5 ? 10.0 * s : s);
        }
    free(z);
    free(a);
}

static void bench_gemm(void)
{
    const size_t n = 1536;
    float *a = (float *)xalloc(n * n * 4), *b = (float *)xalloc(n * n * 4), *c = (float *)xalloc(n * n * 4);
    _tsenor_la la;
    double best = 1e30;
    int rep;
    size_t i;
    for (i = 0; i < n * n; i++) { a[i] = (float)(i % 7) - 3.0f; b[i] = (float)(i % 5) - 2.0f; }
    if (_tsenor_la_init(&la, 0 + 2) != TSENOR_OK) exit(2);
#ifdef _OPENMP
    la.threads = omp_get_max_threads();
#endif
    for (rep = 0; rep < 5; rep++) {
        const double t0 = _tsenor_now();
        _tsenor_sgemm(&la, 0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n, _TSENOR_TRI_FULL);
        if (_tsenor_now() - t0 < best) best = _tsenor_now() - t0;
    }
    printf("sgemm 1536^3 (%s, %d threads): %.3f s, %.1f GFLOP/s (best of 5)\n", la.backend, la.threads, best,
           2.0 * n * n * n / best * 1e-9);
    _tsenor_la_free(&la);
    free(a); free(b); free(c);
}

int main(int argc, char **argv)
{
    static const size_t shapes[4][2] = {{384, 384}, {1536, 384}, {384, 1536}, {1024, 1024}};
    static const struct { int n, m; tsenor_method mm; const char *name; } pats[2] = {
        {16, 32, TSENOR_METHOD_TSENOR, "16:32 transposable"}, {2, 4, TSENOR_METHOD_ROWWISE, "2:4 row-wise"}};
    const int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    int si, p, meth;
    bench_gemm();
    if (argc > 1 && strcmp(argv[1], "--gemm-only") == 0) return 0;
    printf("%-10s %-19s %-10s %10s %9s %6s %6s\n", "layer", "pattern", "method", "error", "seconds", "admm", "proj");
    for (si = 0; si < (quick ? 1 : 4); si++) {
        const size_t rows = shapes[si][0], cols = shapes[si][1], tokens = 2 * cols;
        float *w = (float *)xalloc(rows * cols * 4), *x = (float *)xalloc(tokens * cols * 4);
        float *h = (float *)xalloc(cols * cols * 4), *out = (float *)xalloc(rows * cols * 4);
        char label[32];
        wl_fill(w, rows, cols, cols, WL_GAUSSIAN, 11 + (uint64_t)si);
        activations(x, tokens, cols, 21 + (uint64_t)si);
        memset(h, 0, cols * cols * 4);
        if (tsenor_gram_f32(x, tokens, cols, cols, h, cols, 0) != TSENOR_OK) return 2;
        snprintf(label, sizeof label, "%zux%zu", rows, cols);
        for (p = 0; p < 2; p++)
            for (meth = TSENOR_PRUNE_MAGNITUDE; meth <= TSENOR_PRUNE_ALPS; meth++) {
                tsenor_prune_options o;
                tsenor_prune_report rep;
                tsenor_status s;
                memset(&o, 0, sizeof o);
                o.method = (tsenor_prune_method)meth;
                o.mask.n = pats[p].n;
                o.mask.m = pats[p].m;
                o.mask.method = pats[p].mm;
                s = tsenor_prune_f32(w, rows, cols, cols, h, cols, out, cols, NULL, 0, &o, &rep);
                if (s != TSENOR_OK) { printf("%s: %s\n", label, tsenor_status_string(s)); return 1; }
                printf("%-10s %-19s %-10s %10.6f %9.3f %6d %5.0f%%\n", label, pats[p].name,
                       tsenor_prune_method_string((tsenor_prune_method)meth), rep.error, rep.seconds, rep.iterations,
                       100.0 * rep.projection_seconds / (rep.seconds > 0.0 ? rep.seconds : 1.0));
                fflush(stdout);
            }
        free(w); free(x); free(h); free(out);
    }
    return 0;
}
