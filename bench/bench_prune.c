/* bench_prune.c - `make bench-prune`: each pruning method on synthetic layers of
   MiniLM sizes (384x384, 1536x384, 384x1536) and 1024x1024, at transposable 16:32 and
   row-wise 2:4: error tr(D H D^T)/tr(W H W^T), seconds, ADMM iterations and the share
   of the time spent in the mask solver. Calibration inputs: 2*cols tokens with a
   decaying spectrum and outlier features. Also the sgemm rate on ALPS's product shapes.
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

/* SGEMM on ALPS's product shapes (rows x cols x cols of the MiniLM layers) and 1536^3,
   best of 5, with the thread count of the run; built with BENCH_PRUNE_CBLAS, a CBLAS's
   sgemm (OpenBLAS: make bench-prune links it when cblas.h is there) on the same operands
   in the same run, and the ratio */
#ifdef BENCH_PRUNE_CBLAS
#include <cblas.h>
#endif
static double best_of_5(_tsenor_la *la, int peer, size_t m, size_t n, size_t k, const float *a, const float *b,
                        float *c)
{
    double best = 1e30;
    int rep;
    (void)peer;
    for (rep = 0; rep < 5; rep++) {
        const double t0 = _tsenor_now();
#ifdef BENCH_PRUNE_CBLAS
        if (peer)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)k, b, (int)n,
                        0.0f, c, (int)n);
        else
#endif
            _tsenor_sgemm(la, 0, 0, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n, _TSENOR_TRI_FULL);
        if (_tsenor_now() - t0 < best) best = _tsenor_now() - t0;
    }
    return best;
}

static void bench_gemm(void)
{
    static const size_t shapes[4][3] = {{384, 384, 384}, {1536, 384, 384}, {384, 1536, 1536}, {1536, 1536, 1536}};
    const size_t big = 1536 * 1536;
    float *a = (float *)xalloc(big * 4), *b = (float *)xalloc(big * 4), *c = (float *)xalloc(big * 4);
    _tsenor_la la;
    size_t i;
    int si;
    for (i = 0; i < big; i++) { a[i] = (float)(i % 7) - 3.0f; b[i] = (float)(i % 5) - 2.0f; }
    if (_tsenor_la_init(&la, 0 + 2) != TSENOR_OK) exit(2);
#ifdef _OPENMP
    la.threads = omp_get_max_threads();
#endif
    for (si = 0; si < 4; si++) {
        const size_t m = shapes[si][0], n = shapes[si][1], k = shapes[si][2];
        const double flop = 2.0 * (double)m * (double)n * (double)k, t = best_of_5(&la, 0, m, n, k, a, b, c);
        printf("sgemm %4zu x %4zu x %4zu (%s, %d threads): %7.2f ms, %6.1f GFLOP/s", m, n, k, la.backend, la.threads,
               t * 1e3, flop / t * 1e-9);
#ifdef BENCH_PRUNE_CBLAS
        {
            const double tp = best_of_5(&la, 1, m, n, k, a, b, c);
            printf("   cblas %7.2f ms, %6.1f GFLOP/s   tsenor/cblas speed %.2f", tp * 1e3, flop / tp * 1e-9, tp / t);
        }
#endif
        printf("\n");
    }
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
