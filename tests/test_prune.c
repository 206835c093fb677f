/* test_prune.c - calibration-aware pruning (tsenor_prune_f32, tsenor_gram_f32) and the
   dense linear algebra under it:
     1. the kernels against naive f64 references: sgemm (shapes, transposes, beta,
        triangles, thread counts), the gram, Cholesky, the solves;
     2. tiny layers against brute force: every mask, exact least squares on each support;
     3. synthetic layers with LLM-like inputs: the methods' order, ALPS iterations,
        the report against a recomputation, masks, in place, threads, edge shapes;
     4. the bad-input table of README.md ("Prune with calibration") and allocation
        failures (every allocation of a call made to fail in turn).
   Prints "N passed, N failed" last. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t g_alloc_calls, g_alloc_fail_at, g_alloc_live;
static void *test_malloc(size_t n)
{
    void *p;
    if (++g_alloc_calls == g_alloc_fail_at) return NULL;
    p = malloc(n);
    if (p) g_alloc_live++;
    return p;
}
static void test_free(void *p)
{
    if (!p) return;
    g_alloc_live--;
    free(p);
}
#define TSENOR_MALLOC(n) test_malloc(n)
#define TSENOR_FREE(p) test_free(p)
#define TSENOR_IMPLEMENTATION
#include "../tsenor.h"
#include "workloads.h"

#include <math.h>

#include "check.h"

/* ---- data ------------------------------------------------------------------------ */
static void fill_normal(float *x, size_t count, uint64_t seed)
{
    wl_rng r;
    size_t i;
    r.s = seed * 0x9E3779B97F4A7C15ull + 3;
    for (i = 0; i < count; i++) x[i] = (float)wl_normal(&r);
}

/* calibration inputs like LLM activations: a few latent directions with a decaying
   spectrum, isotropic noise, and outlier features (every 23rd input 10x larger) */
static void fill_activations(float *x, size_t tokens, size_t cols, uint64_t seed)
{
    const size_t q = 24;
    float *z = (float *)xmalloc(tokens * q * sizeof(float)), *a = (float *)xmalloc(q * cols * sizeof(float));
    size_t t, j, k;
    fill_normal(z, tokens * q, seed);
    fill_normal(a, q * cols, seed + 1);
    fill_normal(x, tokens * cols, seed + 2);
    for (t = 0; t < tokens; t++)
        for (j = 0; j < cols; j++) {
            double s = 0.3 * x[t * cols + j];
            for (k = 0; k < q; k++) s += z[t * q + k] * a[k * cols + j] / (1.0 + 0.5 * (double)k);
            x[t * cols + j] = (float)(j % 23 == 5 ? 10.0 * s : s);
        }
    free(z);
    free(a);
}

static void naive_gram(const float *x, size_t tokens, size_t cols, double *g)
{
    size_t t, i, j;
    memset(g, 0, cols * cols * sizeof *g);
    for (t = 0; t < tokens; t++)
        for (i = 0; i < cols; i++)
            for (j = 0; j < cols; j++) g[i * cols + j] += (double)x[t * cols + i] * x[t * cols + j];
}

/* tr(D H D^T) / tr(W H W^T) in f64 from out, independently of the library */
static double naive_error(const float *w, const float *out, size_t rows, size_t cols, const float *h)
{
    double num = 0.0, den = 0.0;
    size_t r, i, j;
    for (r = 0; r < rows; r++)
        for (i = 0; i < cols; i++) {
            const double di = (double)w[r * cols + i] - out[r * cols + i], wi = w[r * cols + i];
            if (di == 0.0 && wi == 0.0) continue;
            for (j = 0; j < cols; j++) {
                const double hij = h[i * cols + j];
                num += di * hij * ((double)w[r * cols + j] - out[r * cols + j]);
                den += wi * hij * w[r * cols + j];
            }
        }
    return den > 0.0 ? num / den : 0.0;
}

static tsenor_prune_options popt(tsenor_prune_method method, int n, int m, tsenor_method mask_method)
{
    tsenor_prune_options o;
    memset(&o, 0, sizeof o);
    o.method = method;
    o.mask = make_opt(n, m, mask_method);
    return o;
}

static const char *k_names[6] = {"default", "magnitude", "wanda", "sparsegpt", "alps", "alps exact"};

/* ==================================================================================
   1. the kernels
   ================================================================================== */
static void test_sgemm(void)
{
    static const size_t shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {37, 50, 300}, {100, 33, 257}, {6, 16, 256},
                                       {97, 97, 64}, {130, 20, 1}, {5, 4100, 3}};
    size_t si, worst_case = 0;
    double worst = 0.0;
    int ta, tb, tri, th;
    for (si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const size_t m = shapes[si][0], n = shapes[si][1], k = shapes[si][2];
        const size_t lda_n = k + 3, lda_t = m + 1, ldb_n = n + 2, ldb_t = k + 5, ldc = n + 7;
        float *a = (float *)xmalloc((m > k ? m : k) * (m + k + 8) * sizeof(float));
        float *b = (float *)xmalloc((n > k ? n : k) * (n + k + 8) * sizeof(float));
        float *c = (float *)xmalloc(m * ldc * sizeof(float)), *c0 = (float *)xmalloc(m * ldc * sizeof(float));
        float *c2 = (float *)xmalloc(m * ldc * sizeof(float));
        fill_normal(a, (m > k ? m : k) * (m + k + 8), 10 + si);
        fill_normal(b, (n > k ? n : k) * (n + k + 8), 20 + si);
        fill_normal(c0, m * ldc, 30 + si);
        for (ta = 0; ta < 2; ta++)
            for (tb = 0; tb < 2; tb++)
                for (tri = 0; tri < (m == n ? 3 : 1); tri++) {
                    const float alpha = 0.75f, beta = (ta + tb) % 2 ? 0.5f : 0.0f;
                    const size_t lda = ta ? lda_t : lda_n, ldb = tb ? ldb_t : ldb_n;
                    size_t i, j, p;
                    double err = 0.0, scale = 0.0;
                    for (th = 1; th <= 2; th++) {
                        _tsenor_la la;
                        memcpy(th == 1 ? c : c2, c0, m * ldc * sizeof(float));
                        if (_tsenor_la_init(&la, th) != TSENOR_OK) { EXPECT(0, "la init"); continue; }
                        _tsenor_sgemm(&la, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, th == 1 ? c : c2, ldc, tri);
                        _tsenor_la_free(&la);
                    }
                    EXPECT(memcmp(c, c2, m * ldc * sizeof(float)) == 0, "sgemm %zux%zux%zu ta %d tb %d: 1 and 2 threads differ",
                           m, n, k, ta, tb);
                    for (i = 0; i < m; i++)
                        for (j = 0; j < ldc; j++) {
                            double ref = c0[i * ldc + j];
                            const int inside = j < n && !(tri == 1 && j < i) && !(tri == 2 && j > i);
                            if (j < n && inside) {
                                double s = 0.0, sa = 0.0;
                                for (p = 0; p < k; p++) {
                                    const double x = ta ? a[p * lda + i] : a[i * lda + p];
                                    const double y = tb ? b[j * ldb + p] : b[p * ldb + j];
                                    s += x * y;
                                    sa += fabs(x * y);
                                }
                                ref = alpha * s + beta * c0[i * ldc + j];
                                scale = sa > scale ? sa : scale;
                                err = fabs(ref - c[i * ldc + j]) > err ? fabs(ref - c[i * ldc + j]) : err;
                            } else if (j >= n) {   /* the padding between rows is never written */
                                EXPECT(c[i * ldc + j] == c0[i * ldc + j], "sgemm wrote beyond column n");
                            }
                        }
                    if (scale > 0.0 && err / scale > worst) { worst = err / scale; worst_case = si; }
                    EXPECT(err <= 1e-5 * (scale + 1.0), "sgemm %zux%zux%zu ta %d tb %d tri %d: error %g (scale %g)", m, n, k,
                           ta, tb, tri, err, scale);
                }
        free(a); free(b); free(c); free(c0); free(c2);
    }
    printf("sgemm: worst error %.2e of sum |a b| (shape %zu), 1 and 2 threads bit-identical\n", worst, worst_case);
}

static void test_gram(void)
{
    const size_t tokens = 150, cols = 70, gld = 75;
    float *x = (float *)xmalloc(tokens * cols * sizeof(float)), *g = (float *)xmalloc(cols * gld * sizeof(float));
    double *ref = (double *)xmalloc(cols * cols * sizeof(double));
    size_t i, j;
    double err = 0.0, scale = 0.0;
    int sym = 1;
    fill_activations(x, tokens, cols, 5);
    naive_gram(x, tokens, cols, ref);
    for (i = 0; i < cols * gld; i++) g[i] = 0.0f;
    /* three batches of 50 tokens accumulate to the gram of all 150 */
    for (i = 0; i < 3; i++)
        EXPECT(tsenor_gram_f32(x + i * 50 * cols, 50, cols, cols, g, gld, i == 1 ? 1 : 0) == TSENOR_OK, "gram batch %zu", i);
    for (i = 0; i < cols; i++)
        for (j = 0; j < cols; j++) {
            const double e = fabs(ref[i * cols + j] - g[i * gld + j]);
            err = e > err ? e : err;
            scale = ref[i * cols + i] > scale ? ref[i * cols + i] : scale;
            sym &= g[i * gld + j] == g[j * gld + i];
        }
    EXPECT(err <= 1e-5 * scale, "gram: error %g of max diagonal %g", err, scale);
    EXPECT(sym, "gram: not exactly symmetric");
    free(x); free(g); free(ref);
}

static void test_cholesky_and_solve(void)
{
    static const size_t sizes[] = {1, 5, 64, 65, 150};
    size_t si;
    for (si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        const size_t n = sizes[si], rows = 9, NB = _TSENOR_CHOL_NB, blocks = (n + NB - 1) / NB;
        float *x = (float *)xmalloc(2 * n * n * sizeof(float)), *a = (float *)xmalloc(n * n * sizeof(float));
        float *l = (float *)xmalloc(n * n * sizeof(float)), *inv = (float *)xmalloc(blocks * NB * NB * sizeof(float));
        float *panel = (float *)xmalloc(n * NB * sizeof(float)), *tmp = (float *)xmalloc((rows > n ? rows : n) * NB * sizeof(float));
        float *r = (float *)xmalloc(rows * n * sizeof(float)), *s = (float *)xmalloc(rows * n * sizeof(float));
        double *g = (double *)xmalloc(n * n * sizeof(double));
        double err = 0.0, res = 0.0, norm = 0.0;
        size_t i, j, k;
        _tsenor_la la;
        fill_normal(x, 2 * n * n, 40 + si);
        naive_gram(x, 2 * n, n, g);
        for (i = 0; i < n * n; i++) a[i] = (float)g[i];
        for (i = 0; i < n; i++) a[i * n + i] += 0.1f * (float)n;
        memcpy(l, a, n * n * sizeof(float));
        EXPECT(_tsenor_la_init(&la, 2) == TSENOR_OK, "la init");
        EXPECT(_tsenor_cholesky(&la, l, n, n, inv, panel) == 0, "cholesky n=%zu failed on an SPD matrix", n);
        for (i = 0; i < n; i++)
            for (j = 0; j <= i; j++) {
                double sum = 0.0;
                for (k = 0; k <= j; k++) sum += (double)l[i * n + k] * l[j * n + k];
                err = fabs(sum - a[i * n + j]) > err ? fabs(sum - a[i * n + j]) : err;
            }
        EXPECT(err <= 1e-5 * a[0] * (double)n, "cholesky n=%zu: |L L^T - A| = %g", n, err);
        fill_normal(r, rows * n, 50 + si);
        memcpy(s, r, rows * n * sizeof(float));
        _tsenor_solve_rows(&la, 3, s, rows, n, l, n, n, inv, tmp);   /* s = r A^-1 */
        for (i = 0; i < rows; i++)
            for (j = 0; j < n; j++) {
                double sum = 0.0;
                for (k = 0; k < n; k++) sum += (double)s[i * n + k] * a[k * n + j];
                res += (sum - r[i * n + j]) * (sum - r[i * n + j]);
                norm += (double)r[i * n + j] * r[i * n + j];
            }
        EXPECT(sqrt(res / norm) <= 1e-4, "solve n=%zu: relative residual %g", n, sqrt(res / norm));
        /* an indefinite matrix is refused */
        memcpy(l, a, n * n * sizeof(float));
        l[(n - 1) * n + (n - 1)] = -1.0f;
        EXPECT(_tsenor_cholesky(&la, l, n, n, inv, panel) == -1, "cholesky n=%zu accepted an indefinite matrix", n);
        _tsenor_la_free(&la);
        free(x); free(a); free(l); free(inv); free(panel); free(tmp); free(r); free(s); free(g);
    }
}

/* ==================================================================================
   2. tiny layers against brute force
   ================================================================================== */

/* the least squares of one row on support `keep` (bit j = column j kept), in f64:
   min (w - x)^T H (w - x) with x zero off the support = w_P^T (H_PP - H_PK H_KK^-1 H_KP) w_P
   (P pruned, K kept) */
static double row_cost(const double *w, const double *h, int n, unsigned keep)
{
    double a[16 * 17], cost = 0.0;
    int kept[16], pruned[16], nk = 0, np = 0, i, j, c, r;
    for (j = 0; j < n; j++) {
        if (keep >> j & 1) kept[nk++] = j;
        else pruned[np++] = j;
    }
    /* solve H_KK y = H_KP w_P, cost = w_P^T H_PP w_P - (H_KP w_P)^T y */
    for (i = 0; i < nk; i++) {
        double rhs = 0.0;
        for (j = 0; j < nk; j++) a[i * (nk + 1) + j] = h[kept[i] * n + kept[j]];
        for (j = 0; j < np; j++) rhs += h[kept[i] * n + pruned[j]] * w[pruned[j]];
        a[i * (nk + 1) + nk] = rhs;
    }
    for (i = 0; i < np; i++)
        for (j = 0; j < np; j++) cost += w[pruned[i]] * h[pruned[i] * n + pruned[j]] * w[pruned[j]];
    for (c = 0; c < nk; c++) {   /* Gaussian elimination, SPD: no pivoting needed */
        for (r = c + 1; r < nk; r++) {
            const double f = a[r * (nk + 1) + c] / a[c * (nk + 1) + c];
            for (j = c; j <= nk; j++) a[r * (nk + 1) + j] -= f * a[c * (nk + 1) + j];
        }
    }
    for (c = nk - 1; c >= 0; c--) {
        double y = a[c * (nk + 1) + nk], hkp = 0.0;
        for (j = c + 1; j < nk; j++) y -= a[c * (nk + 1) + j] * a[j * (nk + 1) + nk];
        y /= a[c * (nk + 1) + c];
        a[c * (nk + 1) + nk] = y;
        (void)hkp;
    }
    for (i = 0; i < nk; i++) {
        double hkp = 0.0;
        for (j = 0; j < np; j++) hkp += h[kept[i] * n + pruned[j]] * w[pruned[j]];
        cost -= hkp * a[i * (nk + 1) + nk];
    }
    return cost;
}

typedef struct tiny_stats { int cases, alps_optimal, sgpt_optimal; double alps_worst, sgpt_worst, wanda_worst; } tiny_stats;

static void tiny_case(int transposable, uint64_t seed, tiny_stats *ts)
{
    enum { ROWS_RW = 2, COLS_RW = 8, RC_T = 4 };
    const size_t rows = transposable ? RC_T : ROWS_RW, cols = transposable ? RC_T : COLS_RW, tokens = 24;
    float w[32], x[24 * 8], h[64], out[32];
    uint8_t mask[32];
    double hd[64], wd[32], den = 0.0, best = HUGE_VAL;
    size_t i, j;
    int meth;
    fill_normal(w, rows * cols, seed);
    fill_activations(x, tokens, cols, seed + 7);
    {
        double g[64];
        naive_gram(x, tokens, cols, g);
        for (i = 0; i < cols * cols; i++) { h[i] = (float)g[i]; hd[i] = h[i]; }
    }
    for (i = 0; i < rows * cols; i++) wd[i] = w[i];
    for (i = 0; i < rows; i++)
        for (j = 0; j < cols * cols; j++) den += wd[i * cols + j / cols] * hd[j] * wd[i * cols + j % cols];
    if (transposable) {
        /* every 2:4 transposable pattern of the 4x4 block: rows are 2-subsets whose
           column counts all reach 2 (90 of them) */
        static const unsigned pairs[6] = {3, 5, 6, 9, 10, 12};
        int a, b, c, d, patterns = 0;
        for (a = 0; a < 6; a++) for (b = 0; b < 6; b++) for (c = 0; c < 6; c++) for (d = 0; d < 6; d++) {
            const unsigned rs[4] = {pairs[a], pairs[b], pairs[c], pairs[d]};
            int col, ok = 1, r;
            double cost = 0.0;
            for (col = 0; col < 4; col++) {
                int cnt = 0;
                for (r = 0; r < 4; r++) cnt += rs[r] >> col & 1;
                ok &= cnt == 2;
            }
            if (!ok) continue;
            patterns++;
            for (r = 0; r < 4; r++) cost += row_cost(wd + r * 4, hd, 4, rs[r]);
            if (cost < best) best = cost;
        }
        EXPECT(patterns == 90, "2:4 transposable patterns of a 4x4 block: %d, not 90", patterns);
    } else {
        int r;
        best = 0.0;
        for (r = 0; r < (int)rows; r++) {
            double rb = HUGE_VAL;
            unsigned s;
            for (s = 0; s < 256; s++) {
                int c1 = 0, c2 = 0, j2;
                for (j2 = 0; j2 < 4; j2++) { c1 += s >> j2 & 1; c2 += s >> (j2 + 4) & 1; }
                if (c1 == 2 && c2 == 2) { const double c = row_cost(wd + r * 8, hd, 8, s); rb = c < rb ? c : rb; }
            }
            best += rb;
        }
    }
    best /= den;
    ts->cases++;
    for (meth = TSENOR_PRUNE_MAGNITUDE; meth <= TSENOR_PRUNE_ALPS; meth++) {
        tsenor_prune_options o = popt((tsenor_prune_method)meth, 2, 4, transposable ? TSENOR_METHOD_EXACT : TSENOR_METHOD_ROWWISE);
        tsenor_prune_report rep;
        double e;
        o.damping = 1e-6f;   /* the brute force solves with H itself */
        EXPECT(tsenor_prune_f32(w, rows, cols, cols, h, cols, out, cols, mask, cols, &o, &rep) == TSENOR_OK, "tiny %s", k_names[meth]);
        e = naive_error(w, out, rows, cols, h);
        EXPECT(fabs(e - rep.error) <= 1e-4 * best + 1e-7, "tiny %s: report %g, recomputed %g", k_names[meth], rep.error, e);
        EXPECT(e >= best * (1.0 - 1e-4) - 1e-9, "tiny %s: error %g below the optimum %g", k_names[meth], e, best);
        EXPECT(tsenor_check_mask(mask, rows, cols, cols, 2, 4, transposable ? TSENOR_CHECK_TRANSPOSABLE : 0u, NULL) == TSENOR_OK,
               "tiny %s: invalid mask", k_names[meth]);
        if (meth == TSENOR_PRUNE_ALPS) {
            ts->alps_optimal += e <= best * (1.0 + 1e-3) + 1e-9;
            ts->alps_worst = e / best > ts->alps_worst ? e / best : ts->alps_worst;
        } else if (meth == TSENOR_PRUNE_SPARSEGPT) {
            ts->sgpt_optimal += e <= best * (1.0 + 1e-3) + 1e-9;
            ts->sgpt_worst = e / best > ts->sgpt_worst ? e / best : ts->sgpt_worst;
        } else if (meth == TSENOR_PRUNE_WANDA) {
            ts->wanda_worst = e / best > ts->wanda_worst ? e / best : ts->wanda_worst;
        }
    }
}

static void test_tiny_brute_force(void)
{
    int kind;
    for (kind = 0; kind < 2; kind++) {
        tiny_stats ts;
        uint64_t seed;
        memset(&ts, 0, sizeof ts);
        for (seed = 1; seed <= 60; seed++) tiny_case(kind, 1000 * (uint64_t)kind + seed, &ts);
        printf("tiny %s: ALPS optimal (within 0.1%%) in %d/%d, worst %.3fx the optimum; SparseGPT optimal in %d/%d, "
               "worst %.3fx; Wanda worst %.3fx\n", kind ? "4x4 transposable 2:4" : "2x8 row-wise 2:4", ts.alps_optimal, ts.cases,
               ts.alps_worst, ts.sgpt_optimal, ts.cases, ts.sgpt_worst, ts.wanda_worst);
        /* measured: 45/60 (row-wise) and 37/60 (transposable), worst 2.06x and 1.65x;
           SparseGPT worst 6.04x and 2.40x (it never refits a column once passed) */
        EXPECT(ts.alps_optimal >= (kind ? 32 : 40), "ALPS optimal in only %d/%d", ts.alps_optimal, ts.cases);
        EXPECT(ts.alps_worst <= (kind ? 2.0 : 2.5), "ALPS worst %.3fx the optimum", ts.alps_worst);
        EXPECT(ts.sgpt_worst <= 8.0, "SparseGPT worst %.3fx the optimum", ts.sgpt_worst);
    }
}

/* ALPS's warm-started EXACT projection (_tsenor_project_warm) over a sequence of
   score matrices that change less and less (so both of its starts run: TSENOR's fresh
   mask while many cycles appear, the previous mask once few do): every mask valid and
   keeping what the cold EXACT solver keeps, with edges, ties (quantised scores) and
   zero columns; NaN in the scores is refused once started. */
static void test_warm_projection(void)
{
    static const struct { size_t rows, cols; int n, m; int ties; } cases[] = {
        {64, 64, 16, 32, 0}, {70, 100, 8, 16, 0}, {48, 52, 2, 4, 1}, {96, 96, 4, 8, 1}};
    static const float steps[] = {0.0f, 0.5f, 0.2f, 0.05f, 0.02f, 0.005f, 0.001f, 0.0f, 0.0f};
    size_t c;
    for (c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const size_t rows = cases[c].rows, cols = cases[c].cols, rn = rows * cols;
        float *sc = (float *)xmalloc(rn * sizeof(float)), *noise = (float *)xmalloc(rn * sizeof(float));
        uint8_t *warm = (uint8_t *)xmalloc(rn), *cold = (uint8_t *)xmalloc(rn);
        tsenor_prune_options po = popt(TSENOR_PRUNE_ALPS, cases[c].n, cases[c].m, TSENOR_METHOD_EXACT);
        _tsenor_prune_config pc;
        _tsenor_prune_stats st;
        _tsenor_warm_projection wp;
        size_t k, s, i;
        memset(&st, 0, sizeof st);
        EXPECT(_tsenor_prune_resolve(&po, &pc) == TSENOR_OK && _tsenor_warm_init(&wp, &pc, rows, cols) == TSENOR_OK,
               "warm projection set-up");
        fill_normal(sc, rn, 600 + c);
        for (s = 0; s < sizeof steps / sizeof steps[0]; s++) {
            tsenor_options co = make_opt(cases[c].n, cases[c].m, TSENOR_METHOD_EXACT);
            double kw = 0.0, kc = 0.0;
            fill_normal(noise, rn, 700 + 10 * c + s);
            for (k = 0; k < rn; k++) {
                sc[k] += steps[s] * noise[k];
                if (cases[c].ties) sc[k] = 0.25f * floorf(4.0f * sc[k]);
            }
            for (i = 0; i < rows; i += 1) sc[i * cols + 5] = 0.0f;   /* a zero column */
            EXPECT(_tsenor_project_warm(&wp, &pc, sc, cols, warm, cols, &st) == TSENOR_OK, "warm projection step %zu", s);
            EXPECT(tsenor_cpu_mask_f32(sc, rows, cols, cols, cold, cols, &co, NULL) == TSENOR_OK, "cold EXACT");
            EXPECT(tsenor_check_mask(warm, rows, cols, cols, cases[c].n, cases[c].m, TSENOR_CHECK_TRANSPOSABLE, NULL) == TSENOR_OK,
                   "%zux%zu %d:%d step %zu: the warm mask is invalid", rows, cols, cases[c].n, cases[c].m, s);
            for (k = 0; k < rn; k++) { kw += warm[k] ? fabs((double)sc[k]) : 0.0; kc += cold[k] ? fabs((double)sc[k]) : 0.0; }
            EXPECT(fabs(kw - kc) <= 1e-6 * kc, "%zux%zu %d:%d step %zu: warm keeps %.9g, EXACT %.9g", rows, cols,
                   cases[c].n, cases[c].m, s, kw, kc);
        }
        EXPECT(st.projections == (int)(sizeof steps / sizeof steps[0]), "projections counted %d", st.projections);
        sc[rn / 2] = (float)NAN;
        EXPECT(_tsenor_project_warm(&wp, &pc, sc, cols, warm, cols, &st) == TSENOR_ERR_NONFINITE_INPUT,
               "NaN scores in a warm projection");
        _tsenor_warm_free(&wp);
        free(sc); free(noise); free(warm); free(cold);
    }
}

/* TSENOR warm-started from its previous potentials (ALPS's default projection): the
   first call of a store and a store of another tiling give the cold masks bit for bit;
   warm calls over a drifting sequence (and after a jump to unrelated scores) give valid
   masks that keep about what the cold solver keeps, against EXACT's optimum. */
static void test_warm_potentials(void)
{
    static const struct { size_t rows, cols; int n, m; } cases[] = {{64, 64, 16, 32}, {70, 100, 8, 16}, {96, 96, 4, 8}};
    static const float steps[] = {0.0f, 0.3f, 0.1f, 0.03f, 0.01f, 0.003f, 0.0f, 10.0f, 0.01f};
    size_t c;
    for (c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const size_t rows = cases[c].rows, cols = cases[c].cols, rn = rows * cols;
        float *sc = (float *)xmalloc(rn * sizeof(float)), *noise = (float *)xmalloc(rn * sizeof(float));
        uint8_t *warm = (uint8_t *)xmalloc(rn), *cold = (uint8_t *)xmalloc(rn), *best = (uint8_t *)xmalloc(rn);
        tsenor_prune_options po = popt(TSENOR_PRUNE_ALPS, cases[c].n, cases[c].m, TSENOR_METHOD_TSENOR);
        tsenor_options to = make_opt(cases[c].n, cases[c].m, TSENOR_METHOD_TSENOR);
        tsenor_options eo = make_opt(cases[c].n, cases[c].m, TSENOR_METHOD_EXACT);
        _tsenor_prune_config pc;
        _tsenor_potentials pot, other;
        double sum_warm = 0.0, sum_cold = 0.0;
        size_t k, s;
        EXPECT(_tsenor_prune_resolve(&po, &pc) == TSENOR_OK && _tsenor_potentials_init(&pot, &pc, rows, cols) == TSENOR_OK &&
                   _tsenor_potentials_init(&other, &pc, rows + (size_t)cases[c].m, cols) == TSENOR_OK,
               "potential store set-up");
        fill_normal(sc, rn, 900 + c);
        for (s = 0; s < sizeof steps / sizeof steps[0]; s++) {
            double kw = 0.0, kc = 0.0, ke = 0.0;
            fill_normal(noise, rn, 950 + 10 * c + s);
            for (k = 0; k < rn; k++) sc[k] += steps[s] * noise[k];
            EXPECT(_tsenor_mask_with(sc, TSENOR_DTYPE_F32, rows, cols, cols, warm, cols, &to, NULL, &pot) == TSENOR_OK,
                   "warm TSENOR step %zu", s);
            EXPECT(tsenor_cpu_mask_f32(sc, rows, cols, cols, cold, cols, &to, NULL) == TSENOR_OK &&
                       tsenor_cpu_mask_f32(sc, rows, cols, cols, best, cols, &eo, NULL) == TSENOR_OK, "cold TSENOR, EXACT");
            EXPECT(tsenor_check_mask(warm, rows, cols, cols, cases[c].n, cases[c].m, TSENOR_CHECK_TRANSPOSABLE, NULL) == TSENOR_OK,
                   "%zux%zu %d:%d step %zu: the warm mask is invalid", rows, cols, cases[c].n, cases[c].m, s);
            if (s == 0)
                EXPECT(memcmp(warm, cold, rn) == 0, "%zux%zu %d:%d: the first call of a store is not the cold mask", rows, cols,
                       cases[c].n, cases[c].m);
            for (k = 0; k < rn; k++) {
                kw += warm[k] ? fabs((double)sc[k]) : 0.0;
                kc += cold[k] ? fabs((double)sc[k]) : 0.0;
                ke += best[k] ? fabs((double)sc[k]) : 0.0;
            }
            EXPECT(kw <= ke * (1.0 + 1e-9) && kw >= 0.99 * ke, "%zux%zu %d:%d step %zu: warm keeps %.9g, EXACT %.9g", rows, cols,
                   cases[c].n, cases[c].m, s, kw, ke);
            sum_warm += kw / ke;
            sum_cold += kc / ke;
            /* a store of another tiling is left alone: the cold mask */
            EXPECT(_tsenor_mask_with(sc, TSENOR_DTYPE_F32, rows, cols, cols, warm, cols, &to, NULL, &other) == TSENOR_OK &&
                       memcmp(warm, cold, rn) == 0 && !other.ready,
                   "%zux%zu %d:%d step %zu: a store of another tiling was used", rows, cols, cases[c].n, cases[c].m, s);
        }
        printf("warm TSENOR %zux%zu %d:%d: kept / optimum over %zu steps: warm %.6f, cold %.6f\n", rows, cols, cases[c].n,
               cases[c].m, sizeof steps / sizeof steps[0], sum_warm / (double)(sizeof steps / sizeof steps[0]),
               sum_cold / (double)(sizeof steps / sizeof steps[0]));
        EXPECT(sum_warm >= sum_cold - 1e-3 * (double)(sizeof steps / sizeof steps[0]),
               "%zux%zu %d:%d: warm masks keep clearly less than cold ones", rows, cols, cases[c].n, cases[c].m);
        _tsenor_aligned_free(pot.alpha_beta);
        _tsenor_aligned_free(other.alpha_beta);
        free(sc); free(noise); free(warm); free(cold); free(best);
    }
}

/* ==================================================================================
   3. synthetic layers
   ================================================================================== */
typedef struct layer { size_t rows, cols; float *w, *h; } layer;

static layer make_layer(size_t rows, size_t cols, uint64_t seed)
{
    layer L;
    const size_t tokens = 2 * cols;
    float *x = (float *)xmalloc(tokens * cols * sizeof(float));
    L.rows = rows;
    L.cols = cols;
    L.w = (float *)xmalloc(rows * cols * sizeof(float));
    L.h = (float *)xmalloc(cols * cols * sizeof(float));
    fill_normal(L.w, rows * cols, seed);
    fill_activations(x, tokens, cols, seed + 1);
    memset(L.h, 0, cols * cols * sizeof(float));
    if (tsenor_gram_f32(x, tokens, cols, cols, L.h, cols, 0) != TSENOR_OK) { printf("gram failed\n"); exit(2); }
    free(x);
    return L;
}

static void free_layer(layer *L) { free(L->w); free(L->h); }

/* one call, with the checks every result must pass; returns the error */
static double prune_checked(const layer *L, const tsenor_prune_options *o, float *out, uint8_t *mask, const char *what)
{
    tsenor_prune_report rep;
    const int transposable = o->mask.method != TSENOR_METHOD_ROWWISE;
    size_t i, zero_ok = 1;
    double e;
    tsenor_status s;
    memset(&rep, 0, sizeof rep);
    s = tsenor_prune_f32(L->w, L->rows, L->cols, L->cols, L->h, L->cols, out, L->cols, mask, L->cols, o, &rep);
    EXPECT(s == TSENOR_OK, "[%s] status %d", what, (int)s);
    if (s != TSENOR_OK) return HUGE_VAL;
    EXPECT(tsenor_check_mask(mask, L->rows, L->cols, L->cols, o->mask.n, o->mask.m, transposable ? TSENOR_CHECK_TRANSPOSABLE : 0u,
                             NULL) == TSENOR_OK, "[%s] the mask breaks %d:%d", what, o->mask.n, o->mask.m);
    for (i = 0; i < L->rows * L->cols; i++) zero_ok &= mask[i] || out[i] == 0.0f;
    EXPECT(zero_ok, "[%s] out is not zero where the mask is 0", what);
    e = naive_error(L->w, out, L->rows, L->cols, L->h);
    EXPECT(fabs(e - rep.error) <= 1e-3 * e + 1e-7, "[%s] report error %.6g, recomputed from out %.6g", what, rep.error, e);
    EXPECT(rep.seconds >= 0.0 && rep.backend != NULL, "[%s] report", what);
    return e;
}

/* the plain-C build (no vector extensions) runs a quarter-size layer: same checks */
#if defined(_TSENOR_VECTOR_EXTENSIONS)
#define ORDER_ROWS 256
#define ORDER_COLS 512
#else
#define ORDER_ROWS 128
#define ORDER_COLS 256
#endif

static void test_method_order(void)
{
    static const struct { int n, m; tsenor_method mm; } pats[3] = {
        {2, 4, TSENOR_METHOD_TSENOR}, {16, 32, TSENOR_METHOD_TSENOR}, {2, 4, TSENOR_METHOD_ROWWISE}};
    layer L = make_layer(ORDER_ROWS, ORDER_COLS, 77);
    float *out = (float *)xmalloc(ORDER_ROWS * ORDER_COLS * sizeof(float));
    uint8_t *mask = (uint8_t *)xmalloc(ORDER_ROWS * ORDER_COLS);
    int p, meth;
    for (p = 0; p < 3; p++) {
        double e[5];
        char what[64];
        for (meth = 1; meth <= 4; meth++) {
            tsenor_prune_options o = popt((tsenor_prune_method)meth, pats[p].n, pats[p].m, pats[p].mm);
            snprintf(what, sizeof what, "%dx%d %s %d:%d%s", ORDER_ROWS, ORDER_COLS, k_names[meth], pats[p].n, pats[p].m,
                     pats[p].mm == TSENOR_METHOD_ROWWISE ? " row-wise" : "");
            e[meth] = prune_checked(&L, &o, out, mask, what);
            if (meth <= 2) {   /* kept weights unchanged */
                size_t i, same = 1;
                for (i = 0; i < ORDER_ROWS * ORDER_COLS; i++) same &= mask[i] ? out[i] == L.w[i] : 1;
                EXPECT(same, "[%s] kept weights changed", what);
            }
        }
        printf("%dx%d %d:%d%s: error magnitude %.5f, wanda %.5f, sparsegpt %.5f, alps %.5f\n", ORDER_ROWS, ORDER_COLS, pats[p].n, pats[p].m,
               pats[p].mm == TSENOR_METHOD_ROWWISE ? " row-wise" : " transposable", e[1], e[2], e[3], e[4]);
        EXPECT(e[4] < e[3] && e[3] < e[2] && e[2] <= e[1], "%d:%d: order alps %g < sparsegpt %g < wanda %g <= magnitude %g",
               pats[p].n, pats[p].m, e[4], e[3], e[2], e[1]);
        EXPECT(e[4] < 0.8 * e[3], "%d:%d: alps %g not clearly below sparsegpt %g", pats[p].n, pats[p].m, e[4], e[3]);
    }
    {   /* more ADMM iterations, lower error (CG off, then on) */
        double e1, e10, eall;
        tsenor_prune_options o = popt(TSENOR_PRUNE_ALPS, 2, 4, TSENOR_METHOD_DEFAULT);
        o.cg_iterations = -1;
        o.iterations = 1;
        e1 = prune_checked(&L, &o, out, mask, "alps 1 iteration");
        o.iterations = 12;
        e10 = prune_checked(&L, &o, out, mask, "alps 12 iterations");
        o.iterations = 0;
        o.cg_iterations = 0;
        eall = prune_checked(&L, &o, out, mask, "alps default");
        printf("alps 2:4: 1 iteration %.5f, 12 iterations %.5f (no CG), default %.5f\n", e1, e10, eall);
        EXPECT(eall < e10 && e10 < e1, "alps: errors %g (1), %g (12), %g (default) do not decrease", e1, e10, eall);
    }
    free(out); free(mask);
    free_layer(&L);
}

static void test_invariances(void)
{
    layer L = make_layer(96, 160, 91);
    const size_t rc = 96 * 160;
    float *out = (float *)xmalloc(rc * sizeof(float)), *out2 = (float *)xmalloc(rc * sizeof(float));
    float *inplace = (float *)xmalloc(rc * sizeof(float));
    uint8_t *mask = (uint8_t *)xmalloc(rc), *mask2 = (uint8_t *)xmalloc(rc);
    int meth, mm;
    for (meth = 0; meth <= 4; meth++) {
        tsenor_prune_options o = popt((tsenor_prune_method)meth, 4, 8, TSENOR_METHOD_DEFAULT);
        tsenor_prune_report rep;
        o.mask.threads = 1;
        EXPECT(tsenor_prune_f32(L.w, 96, 160, 160, L.h, 160, out, 160, mask, 160, &o, NULL) == TSENOR_OK, "%s", k_names[meth]);
        o.mask.threads = 2;
        EXPECT(tsenor_prune_f32(L.w, 96, 160, 160, L.h, 160, out2, 160, mask2, 160, &o, &rep) == TSENOR_OK, "%s", k_names[meth]);
        EXPECT(memcmp(out, out2, rc * sizeof(float)) == 0 && memcmp(mask, mask2, rc) == 0,
               "%s: 1 and 2 threads give different results", k_names[meth]);
        EXPECT(rep.iterations == 0 || meth == 0 || meth == 4, "%s: iterations %d", k_names[meth], rep.iterations);
        memcpy(inplace, L.w, rc * sizeof(float));
        EXPECT(tsenor_prune_f32(inplace, 96, 160, 160, L.h, 160, inplace, 160, NULL, 0, &o, NULL) == TSENOR_OK, "%s in place",
               k_names[meth]);
        EXPECT(memcmp(out, inplace, rc * sizeof(float)) == 0, "%s: in place differs", k_names[meth]);
    }
    {   /* DEFAULT is ALPS */
        tsenor_prune_options o = popt(TSENOR_PRUNE_ALPS, 4, 8, TSENOR_METHOD_DEFAULT);
        EXPECT(tsenor_prune_f32(L.w, 96, 160, 160, L.h, 160, out2, 160, mask2, 160, &o, NULL) == TSENOR_OK, "alps");
        EXPECT(memcmp(out, out2, rc * sizeof(float)) == 0, "DEFAULT is not ALPS");
    }
    /* every mask method works as the projection */
    for (mm = TSENOR_METHOD_TSENOR; mm <= TSENOR_METHOD_ROWWISE; mm++)
        for (meth = 1; meth <= 4; meth++) {
            tsenor_prune_options o = popt((tsenor_prune_method)meth, 4, 8, (tsenor_method)mm);
            char what[64];
            snprintf(what, sizeof what, "%s with mask method %s", k_names[meth], tsenor_method_string((tsenor_method)mm));
            prune_checked(&L, &o, out, mask, what);
        }
    free(out); free(out2); free(inplace); free(mask); free(mask2);
    free_layer(&L);
}

static void test_edge_shapes(void)
{
    static const size_t shapes[][2] = {{37, 45}, {5, 70}, {70, 6}, {1, 9}, {33, 33}};
    static const int pats[][2] = {{2, 4}, {4, 8}, {16, 32}, {3, 7}};
    size_t si;
    int p, meth, rw;
    for (si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        layer L = make_layer(shapes[si][0], shapes[si][1], 300 + si);
        float *out = (float *)xmalloc(L.rows * L.cols * sizeof(float));
        uint8_t *mask = (uint8_t *)xmalloc(L.rows * L.cols);
        for (p = 0; p < 4; p++)
            for (rw = 0; rw < 2; rw++) {
                double e[5];
                for (meth = 1; meth <= 4; meth++) {
                    tsenor_prune_options o = popt((tsenor_prune_method)meth, pats[p][0], pats[p][1],
                                                  rw ? TSENOR_METHOD_ROWWISE : TSENOR_METHOD_TSENOR);
                    char what[80];
                    snprintf(what, sizeof what, "%zux%zu %s %d:%d%s", L.rows, L.cols, k_names[meth], pats[p][0], pats[p][1],
                             rw ? " row-wise" : "");
                    e[meth] = prune_checked(&L, &o, out, mask, what);
                }
                EXPECT(e[4] <= e[2] * (1.0 + 1e-6) + 1e-9 && e[3] <= e[1] * (1.0 + 1e-6) + 1e-9,
                       "%zux%zu %d:%d: alps %g vs wanda %g, sparsegpt %g vs magnitude %g", L.rows, L.cols, pats[p][0], pats[p][1],
                       e[4], e[2], e[3], e[1]);
            }
        free(out); free(mask);
        free_layer(&L);
    }
}

/* inputs that never fire (H_jj = 0): their weights do not change the output on the
   calibration data; masks stay valid and the error is that of H as given */
static void test_dead_inputs(void)
{
    layer L = make_layer(64, 96, 404);
    float *out = (float *)xmalloc(64 * 96 * sizeof(float));
    uint8_t *mask = (uint8_t *)xmalloc(64 * 96);
    size_t i, j;
    int meth;
    for (j = 0; j < 96; j += 7)
        for (i = 0; i < 96; i++) L.h[i * 96 + j] = L.h[j * 96 + i] = 0.0f;
    for (meth = 1; meth <= 4; meth++) {
        tsenor_prune_options o = popt((tsenor_prune_method)meth, 8, 16, TSENOR_METHOD_DEFAULT);
        char what[64];
        snprintf(what, sizeof what, "dead inputs %s", k_names[meth]);
        prune_checked(&L, &o, out, mask, what);
    }
    {   /* all inputs dead: H = 0, nothing to lose; error 0 */
        tsenor_prune_options o = popt(TSENOR_PRUNE_ALPS, 8, 16, TSENOR_METHOD_DEFAULT);
        tsenor_prune_report rep;
        memset(L.h, 0, 96 * 96 * sizeof(float));
        EXPECT(tsenor_prune_f32(L.w, 64, 96, 96, L.h, 96, out, 96, mask, 96, &o, &rep) == TSENOR_OK && rep.error == 0.0,
               "H = 0: status or error %g", rep.error);
        EXPECT(tsenor_check_mask(mask, 64, 96, 96, 8, 16, TSENOR_CHECK_TRANSPOSABLE, NULL) == TSENOR_OK, "H = 0: invalid mask");
    }
    {   /* an input of about 1e-32 against normal ones: in f32 its H_jj underflows to 0
           while its off-diagonals do not; the gram tsenor_gram_f32 made is accepted */
        float *x = (float *)xmalloc(200 * 96 * sizeof(float));
        fill_activations(x, 200, 96, 405);
        for (i = 0; i < 200; i++) x[i * 96 + 3] = 1e-32f * (float)(1 + i % 5);
        memset(L.h, 0, 96 * 96 * sizeof(float));
        EXPECT(tsenor_gram_f32(x, 200, 96, 96, L.h, 96, 0) == TSENOR_OK && L.h[3 * 96 + 3] == 0.0f && L.h[3 * 96 + 4] != 0.0f,
               "the underflowing input's gram: H_33 %g, H_34 %g", L.h[3 * 96 + 3], L.h[3 * 96 + 4]);
        for (meth = 1; meth <= 4; meth++) {
            tsenor_prune_options o = popt((tsenor_prune_method)meth, 8, 16, TSENOR_METHOD_DEFAULT);
            char what[64];
            snprintf(what, sizeof what, "underflowing input %s", k_names[meth]);
            prune_checked(&L, &o, out, mask, what);
        }
        free(x);
    }
    free(out); free(mask);
    free_layer(&L);
}

/* ==================================================================================
   4. bad input (README.md, "Prune with calibration", same labels) and allocation failure
   ================================================================================== */
#define BR 24
#define BC 40
static float g_out[BR * BC], g_out_sentinel[BR * BC], g_gram_copy[BC * BC];
static uint8_t g_mask[BR * BC], g_mask_sentinel[BR * BC];

static void fresh_buffers(void)
{
    size_t k;
    for (k = 0; k < BR * BC; k++) { g_out_sentinel[k] = (float)k * 0.25f - 7.0f; g_mask_sentinel[k] = (uint8_t)(k * 37 + 11); }
    memcpy(g_out, g_out_sentinel, sizeof g_out);
    memcpy(g_mask, g_mask_sentinel, sizeof g_mask);
}

static void expect_untouched(const char *row, tsenor_status got, tsenor_status want, const float *gram)
{
    EXPECT(got == want, "[%s] status %d (%s), the table says %d", row, (int)got, tsenor_status_string(got), (int)want);
    EXPECT(memcmp(g_out, g_out_sentinel, sizeof g_out) == 0, "[%s] out was written on error", row);
    EXPECT(memcmp(g_mask, g_mask_sentinel, sizeof g_mask) == 0, "[%s] mask was written on error", row);
    if (gram) EXPECT(memcmp(gram, g_gram_copy, sizeof g_gram_copy) == 0, "[%s] gram was written", row);
    fresh_buffers();
}

static void test_bad_input(void)
{
    layer L = make_layer(BR, BC, 505);
    float w[BR * BC], h[BC * BC], big[BR * BC + BC * BC];
    tsenor_prune_options o = popt(TSENOR_PRUNE_DEFAULT, 4, 8, TSENOR_METHOD_DEFAULT), bad;
    int meth, which;
    size_t k;
    memcpy(w, L.w, sizeof w);
    memcpy(h, L.h, sizeof h);
    memcpy(g_gram_copy, h, sizeof h);
    fresh_buffers();

    for (meth = 0; meth <= 4; meth++)
        for (which = 0; which < 3; which++) {
            const float v = which == 0 ? (float)NAN : which == 1 ? (float)INFINITY : -(float)INFINITY;
            const size_t at = which == 0 ? 0 : which == 1 ? BR * BC / 2 + 3 : BR * BC - 1;
            tsenor_prune_options om = popt((tsenor_prune_method)meth, 4, 8, TSENOR_METHOD_DEFAULT);
            w[at] = v;
            expect_untouched("NaN or Inf in w", tsenor_prune_f32(w, BR, BC, BC, h, BC, g_out, BC, g_mask, BC, &om, NULL),
                             TSENOR_ERR_NONFINITE_INPUT, h);
            w[at] = L.w[at];
            h[at % (BC * BC)] = v;
            memcpy(g_gram_copy, h, sizeof h);
            expect_untouched("NaN or Inf in gram", tsenor_prune_f32(w, BR, BC, BC, h, BC, g_out, BC, g_mask, BC, &om, NULL),
                             meth == TSENOR_PRUNE_MAGNITUDE || 1 ? TSENOR_ERR_NONFINITE_INPUT : TSENOR_OK, h);
            h[at % (BC * BC)] = L.h[at % (BC * BC)];
            memcpy(g_gram_copy, h, sizeof h);
        }
    for (meth = 0; meth <= 4; meth++) {
        tsenor_prune_options om = popt((tsenor_prune_method)meth, 4, 8, TSENOR_METHOD_DEFAULT);
        float ind[BC * BC];
        size_t i, j;
        /* indefinite: I - (2/n) 1 1^T has the eigenvalue -1, yet every 2x2 minor is fine */
        for (i = 0; i < BC; i++)
            for (j = 0; j < BC; j++) ind[i * BC + j] = (i == j ? 1.0f : 0.0f) - 2.0f / BC;
        memcpy(g_gram_copy, ind, sizeof ind);
        expect_untouched("gram not positive semidefinite", tsenor_prune_f32(w, BR, BC, BC, ind, BC, g_out, BC, g_mask, BC, &om, NULL),
                         TSENOR_ERR_INVALID_ARGUMENT, ind);
        memcpy(ind, h, sizeof ind);
        ind[3 * BC + 3] = -ind[3 * BC + 3];
        memcpy(g_gram_copy, ind, sizeof ind);
        expect_untouched("gram not positive semidefinite", tsenor_prune_f32(w, BR, BC, BC, ind, BC, g_out, BC, g_mask, BC, &om, NULL),
                         TSENOR_ERR_INVALID_ARGUMENT, ind);
        memcpy(ind, h, sizeof ind);
        ind[2 * BC + 9] *= 1.01f;
        memcpy(g_gram_copy, ind, sizeof ind);
        expect_untouched("gram not symmetric", tsenor_prune_f32(w, BR, BC, BC, ind, BC, g_out, BC, g_mask, BC, &om, NULL),
                         TSENOR_ERR_INVALID_ARGUMENT, ind);
        memcpy(g_gram_copy, h, sizeof h);
        expect_untouched("gram_ld < cols", tsenor_prune_f32(w, BR, BC, BC, h, BC - 1, g_out, BC, g_mask, BC, &om, NULL),
                         TSENOR_ERR_INVALID_ARGUMENT, h);
    }
    /* overlaps: out in the gram, out in the mask, the mask in the gram, out partly over w */
    memcpy(big, h, sizeof h);
    memcpy(g_gram_copy, h, sizeof h);
    expect_untouched("out overlaps gram or mask", tsenor_prune_f32(w, BR, BC, BC, big, BC, big + 10, BC, g_mask, BC, &o, NULL),
                     TSENOR_ERR_INVALID_ARGUMENT, big);
    expect_untouched("out overlaps gram or mask", tsenor_prune_f32(w, BR, BC, BC, h, BC, g_out, BC, (uint8_t *)g_out + 8, BC, &o, NULL),
                     TSENOR_ERR_INVALID_ARGUMENT, h);
    expect_untouched("out overlaps gram or mask", tsenor_prune_f32(w, BR, BC, BC, big, BC, g_out, BC, (uint8_t *)big, BC, &o, NULL),
                     TSENOR_ERR_INVALID_ARGUMENT, big);
    {
        float shifted[BR * BC + 1], copy[BR * BC + 1];
        memcpy(shifted, w, sizeof w);
        shifted[BR * BC] = 1.0f;
        memcpy(copy, shifted, sizeof copy);
        EXPECT(tsenor_prune_f32(shifted, BR, BC, BC, h, BC, shifted + 1, BC, g_mask, BC, &o, NULL) == TSENOR_ERR_INVALID_ARGUMENT,
               "[out partly overlaps w] accepted");
        EXPECT(tsenor_prune_f32(shifted, BR, BC, BC, h, BC, shifted, BC - 1 + 1, g_mask, BC, &o, NULL) == TSENOR_OK,
               "[out partly overlaps w] out == w refused");
        memcpy(shifted, copy, sizeof copy);
        EXPECT(tsenor_prune_f32(shifted, BR - 1, BC - 1, BC, h, BC, shifted, BC - 1, g_mask, BC, &o, NULL) == TSENOR_ERR_INVALID_ARGUMENT &&
                   memcmp(shifted, copy, sizeof copy) == 0,
               "[out partly overlaps w] out == w with out_ld != ld accepted or written");
        fresh_buffers();
    }
    expect_untouched("sizes overflow", tsenor_prune_f32(w, (size_t)1 << 40, (size_t)1 << 30, (size_t)1 << 30, h, BC, g_out,
                                                        (size_t)1 << 30, g_mask, (size_t)1 << 30, &o, NULL),
                     TSENOR_ERR_INVALID_ARGUMENT, h);
    expect_untouched("sizes overflow", tsenor_prune_f32(w, 2, SIZE_MAX / 2, SIZE_MAX / 2, h, SIZE_MAX / 2, g_out, SIZE_MAX / 2,
                                                        g_mask, SIZE_MAX / 2, &o, NULL),
                     TSENOR_ERR_INVALID_ARGUMENT, h);
    for (meth = 0; meth <= 4; meth++) {
        tsenor_prune_options om = popt((tsenor_prune_method)meth, 4, 8, TSENOR_METHOD_DEFAULT);
        tsenor_prune_report rep;
        tsenor_status s = tsenor_prune_f32(w, BR, BC, BC, NULL, BC, g_out, BC, g_mask, BC, &om, &rep);
        if (meth == TSENOR_PRUNE_MAGNITUDE) {
            EXPECT(s == TSENOR_OK && rep.error == 0.0, "[gram NULL] magnitude: status %d, error %g", (int)s, rep.error);
            fresh_buffers();
        } else {
            expect_untouched("gram NULL", s, TSENOR_ERR_INVALID_ARGUMENT, NULL);
        }
    }
    /* bad options */
    expect_untouched("bad options", tsenor_prune_f32(w, BR, BC, BC, h, BC, g_out, BC, g_mask, BC, NULL, NULL), TSENOR_ERR_INVALID_ARGUMENT, h);
    bad = o; bad.mask.n = 0;
    expect_untouched("bad options", tsenor_prune_f32(w, BR, BC, BC, h, BC, g_out, BC, g_mask, BC, &bad, NULL), TSENOR_ERR_INVALID_ARGUMENT, h);
    bad = o; bad.mask.method = (tsenor_method)99;
    expect_untouched("bad options", tsenor_prune_f32(w, BR, BC, BC, h, BC, g_out, BC, g_mask, BC, &bad, NULL), TSENOR_ERR_INVALID_ARGUMENT, h);
    bad = o; bad.method = (tsenor_prune_method)99;
    expect_untouched("bad options", tsenor_prune_f32(w, BR, BC, BC, h, BC, g_out, BC, g_mask, BC, &bad, NULL), TSENOR_ERR_INVALID_ARGUMENT, h);
    bad = o; bad.damping = -0.5f;
    expect_untouched("bad options", tsenor_prune_f32(w, BR, BC, BC, h, BC, g_out, BC, g_mask, BC, &bad, NULL), TSENOR_ERR_INVALID_ARGUMENT, h);
    bad = o; bad.damping = (float)NAN;
    expect_untouched("bad options", tsenor_prune_f32(w, BR, BC, BC, h, BC, g_out, BC, g_mask, BC, &bad, NULL), TSENOR_ERR_INVALID_ARGUMENT, h);
    bad = o; bad.iterations = -1;
    expect_untouched("bad options", tsenor_prune_f32(w, BR, BC, BC, h, BC, g_out, BC, g_mask, BC, &bad, NULL), TSENOR_ERR_INVALID_ARGUMENT, h);
    bad = o; bad.rho = -1.0f;
    expect_untouched("bad options", tsenor_prune_f32(w, BR, BC, BC, h, BC, g_out, BC, g_mask, BC, &bad, NULL), TSENOR_ERR_INVALID_ARGUMENT, h);
    bad = o; bad.mask.threads = -1;
    expect_untouched("bad options", tsenor_prune_f32(w, BR, BC, BC, h, BC, g_out, BC, g_mask, BC, &bad, NULL), TSENOR_ERR_INVALID_ARGUMENT, h);
    /* NULL pointers, zero sizes, short leading dimensions */
    expect_untouched("NULL w or out, rows or cols = 0, ld < cols", tsenor_prune_f32(NULL, BR, BC, BC, h, BC, g_out, BC, g_mask, BC, &o, NULL),
                     TSENOR_ERR_INVALID_ARGUMENT, h);
    expect_untouched("NULL w or out, rows or cols = 0, ld < cols", tsenor_prune_f32(w, BR, BC, BC, h, BC, NULL, BC, g_mask, BC, &o, NULL),
                     TSENOR_ERR_INVALID_ARGUMENT, h);
    expect_untouched("NULL w or out, rows or cols = 0, ld < cols", tsenor_prune_f32(w, 0, BC, BC, h, BC, g_out, BC, g_mask, BC, &o, NULL),
                     TSENOR_ERR_INVALID_ARGUMENT, h);
    expect_untouched("NULL w or out, rows or cols = 0, ld < cols", tsenor_prune_f32(w, BR, 0, BC, h, BC, g_out, BC, g_mask, BC, &o, NULL),
                     TSENOR_ERR_INVALID_ARGUMENT, h);
    expect_untouched("NULL w or out, rows or cols = 0, ld < cols", tsenor_prune_f32(w, BR, BC, BC - 1, h, BC, g_out, BC, g_mask, BC, &o, NULL),
                     TSENOR_ERR_INVALID_ARGUMENT, h);
    expect_untouched("NULL w or out, rows or cols = 0, ld < cols", tsenor_prune_f32(w, BR, BC, BC, h, BC, g_out, BC - 1, g_mask, BC, &o, NULL),
                     TSENOR_ERR_INVALID_ARGUMENT, h);
    expect_untouched("NULL w or out, rows or cols = 0, ld < cols", tsenor_prune_f32(w, BR, BC, BC, h, BC, g_out, BC, g_mask, BC - 1, &o, NULL),
                     TSENOR_ERR_INVALID_ARGUMENT, h);

    /* tsenor_gram_f32: the gram is left as it was */
    {
        float x[BR * BC];
        memcpy(x, w, sizeof x);
        memcpy(g_gram_copy, h, sizeof h);
        x[17] = (float)NAN;
        expect_untouched("NaN or Inf in x (tsenor_gram_f32)", tsenor_gram_f32(x, BR, BC, BC, h, BC, 0), TSENOR_ERR_NONFINITE_INPUT, h);
        x[17] = -(float)INFINITY;
        expect_untouched("NaN or Inf in x (tsenor_gram_f32)", tsenor_gram_f32(x, BR, BC, BC, h, BC, 0), TSENOR_ERR_NONFINITE_INPUT, h);
        x[17] = w[17];
        expect_untouched("tsenor_gram_f32 arguments", tsenor_gram_f32(x, BR, BC, BC, h, BC - 1, 0), TSENOR_ERR_INVALID_ARGUMENT, h);
        expect_untouched("tsenor_gram_f32 arguments", tsenor_gram_f32(x, BR, BC, BC - 1, h, BC, 0), TSENOR_ERR_INVALID_ARGUMENT, h);
        expect_untouched("tsenor_gram_f32 arguments", tsenor_gram_f32(x, 0, BC, BC, h, BC, 0), TSENOR_ERR_INVALID_ARGUMENT, h);
        expect_untouched("tsenor_gram_f32 arguments", tsenor_gram_f32(NULL, BR, BC, BC, h, BC, 0), TSENOR_ERR_INVALID_ARGUMENT, h);
        expect_untouched("tsenor_gram_f32 arguments", tsenor_gram_f32(x, BR, BC, BC, h, BC, -1), TSENOR_ERR_INVALID_ARGUMENT, h);
        expect_untouched("tsenor_gram_f32 arguments", tsenor_gram_f32(h, BC, BC, BC, h + 5, BC, 0), TSENOR_ERR_INVALID_ARGUMENT, h);
        expect_untouched("tsenor_gram_f32 arguments", tsenor_gram_f32(x, SIZE_MAX / 2, BC, SIZE_MAX / 4, h, BC, 0), TSENOR_ERR_INVALID_ARGUMENT, h);
    }
    EXPECT(strcmp(tsenor_prune_method_string(TSENOR_PRUNE_DEFAULT), "alps") == 0 &&
               strcmp(tsenor_prune_method_string(TSENOR_PRUNE_MAGNITUDE), "magnitude") == 0 &&
               strcmp(tsenor_prune_method_string(TSENOR_PRUNE_WANDA), "wanda") == 0 &&
               strcmp(tsenor_prune_method_string(TSENOR_PRUNE_SPARSEGPT), "sparsegpt") == 0 &&
               strcmp(tsenor_prune_method_string(TSENOR_PRUNE_ALPS), "alps") == 0 &&
               strcmp(tsenor_prune_method_string((tsenor_prune_method)42), "unknown") == 0,
           "tsenor_prune_method_string");
    (void)k;
    free_layer(&L);
}

static void test_allocation_failures(void)
{
    layer L = make_layer(BR, BC, 606);
    size_t tried = 0;
    int meth, th;
    memcpy(g_gram_copy, L.h, sizeof g_gram_copy);
    for (meth = 1; meth <= 5; meth++)   /* 5: ALPS with EXACT, its warm-started projection */
        for (th = 1; th <= 2; th++) {
            tsenor_prune_options o = popt(meth == 5 ? TSENOR_PRUNE_ALPS : (tsenor_prune_method)meth, 4, 8,
                                          meth == 5 ? TSENOR_METHOD_EXACT : TSENOR_METHOD_DEFAULT);
            size_t calls, fail;
            tsenor_status s;
            o.mask.threads = th;
            o.iterations = 6;
            fresh_buffers();
            g_alloc_calls = 0;
            g_alloc_fail_at = 0;
            s = tsenor_prune_f32(L.w, BR, BC, BC, L.h, BC, g_out, BC, g_mask, BC, &o, NULL);
            calls = g_alloc_calls;
            EXPECT(s == TSENOR_OK && g_alloc_live == 0 && calls >= 2, "%s: clean run (status %d, %zu live, %zu calls)",
                   k_names[meth], (int)s, g_alloc_live, calls);
            for (fail = 1; fail <= calls; fail++) {
                fresh_buffers();
                g_alloc_calls = 0;
                g_alloc_fail_at = fail;
                s = tsenor_prune_f32(L.w, BR, BC, BC, L.h, BC, g_out, BC, g_mask, BC, &o, NULL);
                g_alloc_fail_at = 0;
                EXPECT(s == TSENOR_ERR_OUT_OF_MEMORY && g_alloc_live == 0, "%s threads %d: allocation %zu of %zu failed: status %d, %zu leaked",
                       k_names[meth], th, fail, calls, (int)s, g_alloc_live);
                EXPECT(memcmp(g_out, g_out_sentinel, sizeof g_out) == 0 && memcmp(g_mask, g_mask_sentinel, sizeof g_mask) == 0,
                       "%s: allocation %zu failed: out or mask written", k_names[meth], fail);
                tried++;
            }
        }
    {
        float h[BC * BC];
        size_t calls, fail;
        memcpy(h, L.h, sizeof h);
        g_alloc_calls = 0;
        EXPECT(tsenor_gram_f32(L.w, BR, BC, BC, h, BC, 2) == TSENOR_OK && g_alloc_live == 0, "gram: clean run");
        calls = g_alloc_calls;
        for (fail = 1; fail <= calls; fail++) {
            memcpy(h, L.h, sizeof h);
            g_alloc_calls = 0;
            g_alloc_fail_at = fail;
            EXPECT(tsenor_gram_f32(L.w, BR, BC, BC, h, BC, 2) == TSENOR_ERR_OUT_OF_MEMORY && g_alloc_live == 0 &&
                       memcmp(h, L.h, sizeof h) == 0,
                   "gram: allocation %zu failed: not OUT_OF_MEMORY, leaked, or gram written", fail);
            g_alloc_fail_at = 0;
            tried++;
        }
    }
    printf("allocation failures injected: %zu (every allocation of every call)\n", tried);
    free_layer(&L);
}

int main(void)
{
    test_sgemm();
    test_gram();
    test_cholesky_and_solve();
    test_tiny_brute_force();
    test_warm_projection();
    test_warm_potentials();
    test_method_order();
    test_invariances();
    test_edge_shapes();
    test_dead_inputs();
    test_bad_input();
    test_allocation_failures();
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
