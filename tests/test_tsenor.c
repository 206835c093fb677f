/* test_tsenor.c - correctness, optimality, quality and error-handling tests of tsenor.h.
   Built several ways by the Makefile (SIMD + OpenMP, plain C kernels, serial, C++);
   every build runs the same checks. Prints "N passed, N failed" last; exit 1 on failure.
   Speed is not measured here (see bench/). */
#define TSENOR_IMPLEMENTATION
#include "../tsenor.h"
#include "workloads.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const char *method_name(tsenor_method m)
{
    switch (m) {
    case TSENOR_METHOD_TSENOR: return "tsenor";
    case TSENOR_METHOD_EXACT: return "exact";
    case TSENOR_METHOD_GREEDY: return "greedy";
    case TSENOR_METHOD_ROWWISE: return "rowwise";
    default: return "default";
    }
}

/* ---- brute force: the best transposable n:m mask of one m x m block ---------------- */
static double g_bf_best;
static void bf_rec(const double *a, int m, int n, int row, int *colcnt, double acc)
{
    int subset;
    if (row == m) {
        if (acc > g_bf_best) g_bf_best = acc;
        return;
    }
    for (subset = 0; subset < (1 << m); subset++) {
        int j, bits = 0, ok = 1;
        double add = 0.0;
        for (j = 0; j < m; j++) bits += (subset >> j) & 1;
        if (bits != n) continue;
        for (j = 0; j < m && ok; j++)
            if ((subset >> j) & 1) {
                if (colcnt[j] >= n) ok = 0;
                add += a[row * m + j];
            }
        /* prune: remaining rows must be able to fill every column to n */
        if (!ok) continue;
        for (j = 0; j < m; j++) colcnt[j] += (subset >> j) & 1;
        for (j = 0; j < m && ok; j++)
            if (n - colcnt[j] > m - row - 1) ok = 0;
        if (ok) bf_rec(a, m, n, row + 1, colcnt, acc + add);
        for (j = 0; j < m; j++) colcnt[j] -= (subset >> j) & 1;
    }
}

static double brute_force_best(const double *a, int m, int n)
{
    int colcnt[16] = {0};
    g_bf_best = -1.0;
    bf_rec(a, m, n, 0, colcnt, 0.0);
    return g_bf_best;
}

/* EXACT against brute-force enumeration on small blocks: every 2:4 pattern of 4x4 blocks
   and full enumeration for 1:3, 2:5, 3:6, 2:6. Includes integer-valued blocks (ties). */
static void test_exact_vs_brute_force(void)
{
    static const int pats[][3] = {{2, 4, 3000}, {1, 3, 500}, {2, 5, 300}, {3, 6, 40}, {2, 6, 40}, {1, 4, 300}};
    size_t p;
    wl_rng r;
    r.s = 42;
    for (p = 0; p < sizeof pats / sizeof *pats; p++) {
        const int n = pats[p][0], m = pats[p][1], trials = pats[p][2];
        int t, worse = 0, invalid = 0;
        double worst_gap = 0.0;
        for (t = 0; t < trials; t++) {
            float w[36];
            double a[36], best, got = 0.0;
            uint8_t mask[36];
            tsenor_options o = make_opt(n, m, TSENOR_METHOD_EXACT);
            int k;
            for (k = 0; k < m * m; k++) {
                /* a third of the blocks are small integers: many ties */
                w[k] = t % 3 == 0 ? (float)(wl_next(&r) % 5) - 2.0f : (float)wl_normal(&r);
                a[k] = fabs((double)w[k]);
            }
            if (tsenor_mask_f32(w, (size_t)m, (size_t)m, (size_t)m, mask, (size_t)m, &o, NULL) != TSENOR_OK ||
                tsenor_check(mask, (size_t)m, (size_t)m, (size_t)m, n, m, 1) != TSENOR_OK) {
                invalid++;
                continue;
            }
            for (k = 0; k < m * m; k++) if (mask[k]) got += a[k];
            best = brute_force_best(a, m, n);
            if (got < best - 1e-9 * (1.0 + best)) {
                worse++;
                if (best - got > worst_gap) worst_gap = best - got;
            }
        }
        EXPECT(invalid == 0, "exact %d:%d: %d invalid masks", n, m, invalid);
        EXPECT(worse == 0, "exact %d:%d: %d of %d blocks below the brute-force optimum (gap %g)", n, m, worse,
               trials, worst_gap);
    }
}

/* Dual certificate on large blocks: after cancelling negative cycles, potentials u, v
   with a_ij - u_i - v_j >= 0 on kept and <= 0 on pruned entries prove optimality. */
static void test_exact_certificate(void)
{
    static const int pats[][2] = {{8, 16}, {16, 32}, {5, 24}, {32, 64}, {1, 64}, {63, 64}, {20, 48}};
    size_t p;
    wl_rng r;
    r.s = 7;
    for (p = 0; p < sizeof pats / sizeof *pats; p++) {
        const int n = pats[p][0], m = pats[p][1], mm = m * m;
        int t;
        for (t = 0; t < 6; t++) {
            float *af = (float *)xmalloc(mm * sizeof(float)), gainbuf[2 * TSENOR_MAX_M];
            double *ad = (double *)xmalloc(mm * sizeof(double)), u[TSENOR_MAX_M], v[TSENOR_MAX_M], dist[2 * TSENOR_MAX_M];
            uint64_t *keys = (uint64_t *)xmalloc(mm * sizeof(uint64_t)), *tmp = (uint64_t *)xmalloc(mm * sizeof(uint64_t));
            int pred[2 * TSENOR_MAX_M], queue[2 * TSENOR_MAX_M], layer[2 * TSENOR_MAX_M], epred[2 * TSENOR_MAX_M],
                stamp[2 * TSENOR_MAX_M];
            uint8_t *sel = (uint8_t *)xmalloc(mm);
            _tsenor_round_scratch rs;
            _tsenor_exact_scratch es;
            double amax = 0.0, viol = 0.0, cert_obj = 0.0, api_obj = 0.0;
            int k, i, j, bad_count = 0;
            wl_dist dist_kind = (wl_dist)(t % WL_DIST_COUNT);
            float *wblk = (float *)xmalloc(mm * sizeof(float));
            uint8_t *api_mask = (uint8_t *)xmalloc(mm);
            tsenor_options o = make_opt(n, m, TSENOR_METHOD_EXACT);

            wl_fill(wblk, (size_t)m, (size_t)m, (size_t)m, dist_kind, wl_next(&r));
            for (k = 0; k < mm; k++) {
                ad[k] = fabs((double)wblk[k]);
                if (ad[k] > amax) amax = ad[k];
            }
            for (k = 0; k < mm; k++) af[k] = (float)(ad[k] / amax);
            memset(&rs, 0, sizeof rs);
            rs.keys = keys; rs.keys_tmp = tmp; rs.gain = gainbuf; rs.pred = pred; rs.queue = queue; rs.layer = layer;
            es.dist = dist; es.pred = epred; es.stamp = stamp;
            memset(sel, 0, mm);
            _tsenor_greedy(af, af, m, n, sel, &rs);
            _tsenor_repair(af, m, n, sel, &rs);
            _tsenor_exact_improve(ad, m, sel, &es, u, v);
            for (i = 0; i < m; i++) {
                int rc = 0, cc = 0;
                for (j = 0; j < m; j++) { rc += sel[i * m + j]; cc += sel[j * m + i]; }
                bad_count += rc != n || cc != n;
            }
            for (i = 0; i < m; i++)
                for (j = 0; j < m; j++) {
                    double red = ad[i * m + j] - u[i] - v[j];
                    if (sel[i * m + j] && -red > viol) viol = -red;
                    if (!sel[i * m + j] && red > viol) viol = red;
                    if (sel[i * m + j]) cert_obj += ad[i * m + j];
                }
            EXPECT(bad_count == 0, "certificate %d:%d: selection is not perfect", n, m);
            EXPECT(viol <= 1e-9 * amax, "certificate %d:%d (%s): reduced-value violation %g (max %g)", n, m,
                   wl_dist_name(dist_kind), viol, amax);
            /* the public EXACT call reaches the certified optimum too */
            EXPECT(tsenor_mask_f32(wblk, (size_t)m, (size_t)m, (size_t)m, api_mask, (size_t)m, &o, NULL) == TSENOR_OK,
                   "exact %d:%d failed", n, m);
            for (k = 0; k < mm; k++) if (api_mask[k]) api_obj += ad[k];
            EXPECT(fabs(api_obj - cert_obj) <= 1e-9 * cert_obj, "exact %d:%d: public call %.12g vs certified %.12g",
                   n, m, api_obj, cert_obj);
            free(af); free(ad); free(keys); free(tmp); free(sel); free(wblk); free(api_mask);
        }
    }
}

/* ---- n:4 (m = 4): the exact search of every 4x4 block ----------------------------------
   The rule tsenor.h states (its "Transposable n:4 exactly" comment), written here as plain
   loops: scaled |w|, row subset sums in float left to right, per column-count state the
   first best pair of rows 0-1 and of rows 2-3, the first state with the best total. */
static int n4_subsets(int n, int *subset)   /* the n-subsets of {0..3}, lexicographic */
{
    int count = 0, a, b, c;
    for (a = 0; a < 4; a++) {
        if (n == 1) { subset[count++] = 1 << a; continue; }
        for (b = a + 1; b < 4; b++) {
            if (n == 2) { subset[count++] = 1 << a | 1 << b; continue; }
            for (c = b + 1; c < 4; c++) subset[count++] = 1 << a | 1 << b | 1 << c;
        }
    }
    return count;
}

static float n4_subset_sum(const float *row, int subset)
{
    float s = 0.0f;
    int j, first = 1;
    for (j = 0; j < 4; j++)
        if (subset >> j & 1) { s = first ? row[j] : s + row[j]; first = 0; }
    return s;
}

/* the best pair of rows (r, r+1) with column counts c: its sum (-1 if none) and bits */
static float n4_best_pair(const float *a, int r, int n, const int *c, unsigned *bits)
{
    int subset[6], count = n4_subsets(n, subset), p, q, j;
    float best = -1.0f;
    for (p = 0; p < count; p++)
        for (q = 0; q < count; q++) {
            int ok = 1;
            float t;
            for (j = 0; j < 4; j++) ok &= ((subset[p] >> j & 1) + (subset[q] >> j & 1)) == c[j];
            if (!ok) continue;
            t = n4_subset_sum(a + 4 * r, subset[p]) + n4_subset_sum(a + 4 * (r + 1), subset[q]);
            if (t > best) { best = t; *bits = (unsigned)(subset[p] | subset[q] << 4); }
        }
    return best;
}

/* the rule's mask (bit 4i + j) of one zero-padded block of |w| */
static unsigned n4_reference(const float *w16, int n)
{
    float a[16], mx = 0.0f, best = -1.0f;
    unsigned bits = 0;
    int c[4], d[4], k;
    for (k = 0; k < 16; k++) { a[k] = fabsf(w16[k]); if (a[k] > mx) mx = a[k]; }
    if (mx > 0x1p124f) for (k = 0; k < 16; k++) a[k] *= 0x1p-4f;
    for (c[0] = 0; c[0] <= 2; c[0]++)
        for (c[1] = 0; c[1] <= 2; c[1]++)
            for (c[2] = 0; c[2] <= 2; c[2]++)
                for (c[3] = 0; c[3] <= 2; c[3]++) {
                    unsigned tb = 0, bb = 0;
                    float top, bottom, total;
                    int ok = 1;
                    for (k = 0; k < 4; k++) { d[k] = n - c[k]; ok &= d[k] >= 0 && d[k] <= 2; }
                    if (!ok || c[0] + c[1] + c[2] + c[3] != 2 * n) continue;
                    top = n4_best_pair(a, 0, n, c, &tb);
                    bottom = n4_best_pair(a, 2, n, d, &bb);
                    if (top < 0.0f || bottom < 0.0f) continue;
                    total = top + bottom;
                    if (total > best) { best = total; bits = tb | bb << 8; }
                }
    return bits;
}

/* the transposable n:4 patterns of a 4x4 block, as 16-bit masks */
static int n4_patterns(int n, unsigned *out)
{
    int s, count = 0;
    for (s = 0; s < 65536; s++) {
        int i, j, ok = 1;
        for (i = 0; i < 4 && ok; i++) {
            int r = 0, c = 0;
            for (j = 0; j < 4; j++) { r += (s >> (i * 4 + j)) & 1; c += (s >> (j * 4 + i)) & 1; }
            ok = r == n && c == n;
        }
        if (ok) out[count++] = (unsigned)s;
    }
    return count;
}

static float n4_value(int kind, wl_rng *r, int k)
{
    switch (kind) {
    case 0: return (float)wl_normal(r);                                    /* random */
    case 1: return (float)((int)(wl_next(r) % 7) - 3) * 0.25f;            /* quantised: ties */
    case 2: return 0.0f;                                                  /* zeros */
    case 3: return k % 2 ? 0.75f : -0.75f;                               /* all equal */
    case 4: return (float)(wl_next(r) % 1000 + 1) * (k % 3 ? 3.3e35f : 1e-42f);   /* huge and subnormal */
    default: return (float)(wl_next(r) % 3) * (float)wl_normal(r);       /* zeros among random */
    }
}

/* n:4 against brute force over all 24/90/24 patterns and against the tie rule, bit for
   bit: random, quantised, zero, all-equal and huge/subnormal values; f32, f16 and bf16;
   edge blocks (37 x 50); strided input and mask; TSENOR (any options) = EXACT. */
static void test_n4_exact(void)
{
    static const char *kinds[6] = {"random", "quantised", "zeros", "all equal", "huge+subnormal", "sparse"};
    const size_t rows = 37, cols = 50, ld = 53, mask_ld = 52;
    float *w = (float *)xmalloc(rows * ld * 4), *wq = (float *)xmalloc(rows * ld * 4);
    uint16_t *h = (uint16_t *)xmalloc(rows * ld * 2);
    uint8_t *mask = (uint8_t *)xmalloc(rows * mask_ld), *m2 = (uint8_t *)xmalloc(rows * mask_ld);
    unsigned pats[90];
    wl_rng r;
    int n, kind, dt;
    r.s = 404;
    EXPECT(n4_patterns(1, pats) == 24 && n4_patterns(2, pats) == 90 && n4_patterns(3, pats) == 24, "n:4 pattern counts");
    for (n = 1; n <= 3; n++) {
        const int npat = n4_patterns(n, pats);
        for (kind = 0; kind < 6; kind++)
            for (dt = 0; dt < 3; dt++) {
                int worse = 0, rule = 0, bad_pad = 0, method;
                double gap = 0.0;
                size_t i, j, k;
                tsenor_report rep;
                tsenor_options o = make_opt(n, 4, TSENOR_METHOD_EXACT);
                tsenor_status s;
                if (dt && kind == 4) continue;   /* f16/bf16 cannot hold these; f32 only */
                for (k = 0; k < rows * ld; k++) {
                    const float v = n4_value(kind, &r, (int)k);
                    if (dt == 0) { w[k] = v; continue; }
                    {   /* the half types: bf16 by truncation, f16 of small values; wq holds the values */
                        uint32_t b;
                        memcpy(&b, &v, 4);
                        if (dt == 2) h[k] = (uint16_t)(b >> 16);
                        else {
                            const int e = (int)((b >> 23) & 255) - 127 + 15;
                            h[k] = (uint16_t)((b >> 16) & 0x8000);
                            if (e > 0 && e < 31) h[k] |= (uint16_t)((e << 10) | ((b >> 13) & 1023));
                        }
                    }
                }
                for (k = 0; k < rows * ld; k++) {
                    if (dt == 0) wq[k] = w[k];
                    else if (dt == 2) { uint32_t b = (uint32_t)h[k] << 16; memcpy(&wq[k], &b, 4); }
                    else {
                        const int e = (h[k] >> 10) & 31, f = h[k] & 1023;
                        const float v = e == 0 ? ldexpf((float)f, -24) : ldexpf((float)(f + 1024), e - 25);
                        wq[k] = (h[k] & 0x8000) ? -v : v;
                    }
                }
                memset(mask, 0xAB, rows * mask_ld);
                s = dt == 0 ? tsenor_mask_f32(w, rows, cols, ld, mask, mask_ld, &o, &rep)
                  : dt == 1 ? tsenor_mask_f16(h, rows, cols, ld, mask, mask_ld, &o, &rep)
                            : tsenor_mask_bf16(h, rows, cols, ld, mask, mask_ld, &o, &rep);
                EXPECT(s == TSENOR_OK, "n4 %d:4 %s %s: status %d", n, kinds[kind], tsenor_dtype_string((tsenor_dtype)dt), s);
                if (s != TSENOR_OK) continue;
                EXPECT(tsenor_check(mask, rows, cols, mask_ld, n, 4, 1) == TSENOR_OK, "n4 %d:4 %s: invalid mask", n, kinds[kind]);
                for (i = 0; i < rows; i++)
                    for (j = cols; j < mask_ld; j++) bad_pad += mask[i * mask_ld + j] != 0xAB;
                EXPECT(bad_pad == 0, "n4 %d:4 %s: %d bytes written past cols", n, kinds[kind], bad_pad);
                for (i = 0; i < rows; i += 4)
                    for (j = 0; j < cols; j += 4) {
                        float blk[16];
                        double best = -1.0, got = 0.0;
                        unsigned want, have = 0;
                        int a, b, p;
                        for (a = 0; a < 4; a++)
                            for (b = 0; b < 4; b++) {
                                const int in = i + (size_t)a < rows && j + (size_t)b < cols;
                                blk[4 * a + b] = in ? wq[(i + (size_t)a) * ld + j + (size_t)b] : 0.0f;
                                if (in && mask[(i + (size_t)a) * mask_ld + j + (size_t)b]) {
                                    have |= 1u << (4 * a + b);
                                    got += fabs((double)blk[4 * a + b]);
                                }
                            }
                        for (p = 0; p < npat; p++) {
                            double v = 0.0;
                            int q;
                            for (q = 0; q < 16; q++) if (pats[p] >> q & 1) v += fabs((double)blk[q]);
                            if (v > best) best = v;
                        }
                        if (got < best * (1.0 - 1e-6)) { worse++; if (best - got > gap) gap = best - got; }
                        want = n4_reference(blk, n);
                        for (a = 0; a < 4; a++)   /* compare the block's part inside the matrix */
                            for (b = 0; b < 4; b++)
                                if (i + (size_t)a >= rows || j + (size_t)b >= cols) want &= ~(1u << (4 * a + b));
                        rule += want != have;
                    }
                EXPECT(worse == 0, "n4 %d:4 %s %s: %d blocks below the brute-force optimum (gap %g)", n, kinds[kind],
                       tsenor_dtype_string((tsenor_dtype)dt), worse, gap);
                EXPECT(rule == 0, "n4 %d:4 %s %s: %d blocks differ from the tie rule", n, kinds[kind],
                       tsenor_dtype_string((tsenor_dtype)dt), rule);
                {
                    double total = 0.0;
                    for (i = 0; i < rows; i++)
                        for (j = 0; j < cols; j++) total += fabs((double)wq[i * ld + j]);
                    EXPECT(fabs(rep.kept - kept_sum(wq, rows, cols, ld, mask, mask_ld)) <= 1e-6 * rep.kept &&
                               fabs(rep.total - total) <= 1e-6 * total,
                           "n4 %d:4 %s: report kept %g total %g (%g)", n, kinds[kind], rep.kept, rep.total, total);
                }
                /* TSENOR, whatever its options, returns the same mask for n:4 */
                for (method = 0; method < 3; method++) {
                    tsenor_options ot = make_opt(n, 4, method == 0 ? TSENOR_METHOD_DEFAULT : TSENOR_METHOD_TSENOR);
                    if (method == 2) { ot.iterations = 1; ot.local_search_steps = -1; ot.tau = 0.5f; }
                    ot.threads = 1 + method % 2;
                    memset(m2, 0xAB, rows * mask_ld);
                    s = dt == 0 ? tsenor_mask_f32(w, rows, cols, ld, m2, mask_ld, &ot, NULL)
                      : dt == 1 ? tsenor_mask_f16(h, rows, cols, ld, m2, mask_ld, &ot, NULL)
                                : tsenor_mask_bf16(h, rows, cols, ld, m2, mask_ld, &ot, NULL);
                    EXPECT(s == TSENOR_OK && memcmp(mask, m2, rows * mask_ld) == 0, "n4 %d:4 %s: tsenor (%d) differs from exact",
                           n, kinds[kind], method);
                }
            }
    }
    free(w); free(wq); free(h); free(mask); free(m2);
}

/* n:4's search and the general EXACT solver (greedy + repair + negative-cycle cancelling)
   keep the same magnitude on every block: exactly on quantised blocks, to 1e-6 otherwise. */
static void test_n4_matches_general_exact(void)
{
    wl_rng r;
    int n, t;
    r.s = 77;
    for (n = 1; n <= 3; n++) {
        int differ = 0;
        double worst = 0.0;
        for (t = 0; t < 3000; t++) {
            const int quantised = t % 2;
            float w[16], af[16], gainbuf[8];
            double ad[16], amax = 0.0, general = 0.0, fast = 0.0, dist[8], u[4], v[4];
            uint64_t keys[16], tmp[16];
            int pred[8], queue[8], layer[8], epred[8], stamp[8], k;
            uint8_t sel[16], mk[16];
            _tsenor_round_scratch rs;
            _tsenor_exact_scratch es;
            tsenor_options o = make_opt(n, 4, TSENOR_METHOD_EXACT);
            for (k = 0; k < 16; k++) {
                w[k] = quantised ? (float)((int)(wl_next(&r) % 5)) : (float)wl_normal(&r);
                ad[k] = fabs((double)w[k]);
                if (ad[k] > amax) amax = ad[k];
            }
            for (k = 0; k < 16; k++) af[k] = amax > 0.0 ? (float)(ad[k] / amax) : 0.0f;
            memset(&rs, 0, sizeof rs);
            rs.keys = keys; rs.keys_tmp = tmp; rs.gain = gainbuf; rs.pred = pred; rs.queue = queue; rs.layer = layer;
            es.dist = dist; es.pred = epred; es.stamp = stamp;
            memset(sel, 0, sizeof sel);
            _tsenor_greedy(af, af, 4, n, sel, &rs);
            _tsenor_repair(af, 4, n, sel, &rs);
            _tsenor_exact_improve(ad, 4, sel, &es, u, v);
            EXPECT(tsenor_mask_f32(w, 4, 4, 4, mk, 4, &o, NULL) == TSENOR_OK, "n4 exact call");
            for (k = 0; k < 16; k++) { general += sel[k] ? ad[k] : 0.0; fast += mk[k] ? ad[k] : 0.0; }
            if (quantised ? fast != general : fabs(fast - general) > 1e-6 * general) differ++;
            if (fabs(fast - general) > worst) worst = fabs(fast - general);
        }
        EXPECT(differ == 0, "n4 %d:4: %d of 3000 blocks keep another magnitude than the general EXACT solver (worst %g)", n,
               differ, worst);
    }
}

/* GREEDY is defined by its order: every entry by |w| / block max descending, ties to
   the lower index (row-major in the zero-padded block), taken while its row and column
   keep fewer than n; then the library's repair. The library gets there by threshold
   preselection and rounds of simultaneous picks in vector lanes; this checks that the
   masks are the same as the plain sorted greedy's, ties included. */
static const float *g_sort_keys;
static int cmp_greedy_order(const void *pa, const void *pb)
{
    const int a = *(const int *)pa, b = *(const int *)pb;
    if (g_sort_keys[a] != g_sort_keys[b]) return g_sort_keys[a] > g_sort_keys[b] ? -1 : 1;
    return a < b ? -1 : a > b;
}

static void *aligned64(void *raw) { return (void *)(((uintptr_t)raw + 63) & ~(uintptr_t)63); }

static void test_greedy_matches_sorted_reference(void)
{
    static const int pats[][2] = {{2, 4}, {4, 8}, {8, 16}, {3, 5}, {16, 32}, {5, 24}, {32, 64}, {7, 48}};
    size_t p;
    for (p = 0; p < sizeof pats / sizeof *pats; p++) {
        const int n = pats[p][0], m = pats[p][1], mm = m * m;
        const size_t rows = (size_t)(5 * m + 3), cols = (size_t)(4 * m + 1), bc = (cols + m - 1) / m;
        int d;
        for (d = 0; d < 4; d++) {   /* Gaussian, t3, outliers, and small integers (many ties) */
            float *w = (float *)xmalloc(rows * cols * sizeof(float));
            uint8_t *mask = (uint8_t *)xmalloc(rows * cols);
            void *raw_a = xmalloc(mm * sizeof(float) + 64), *raw_s = xmalloc((size_t)mm + 64);
            float *af = (float *)aligned64(raw_a);
            uint8_t *sel = (uint8_t *)aligned64(raw_s);
            int *order = (int *)xmalloc(mm * sizeof(int));
            uint64_t *keys = (uint64_t *)xmalloc(mm * sizeof(uint64_t)), *tmp = (uint64_t *)xmalloc(mm * sizeof(uint64_t));
            float gainbuf[2 * TSENOR_MAX_M];
            int pred[2 * TSENOR_MAX_M], queue[2 * TSENOR_MAX_M], layer[2 * TSENOR_MAX_M];
            tsenor_options o = make_opt(n, m, TSENOR_METHOD_GREEDY);
            size_t b, k, mismatched = 0;
            wl_fill(w, rows, cols, cols, (wl_dist)(d % WL_DIST_COUNT), 100 + (uint64_t)d);
            if (d == 3)
                for (k = 0; k < rows * cols; k++) w[k] = (float)floor(fabs(w[k]) * 2.0);
            EXPECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &o, NULL) == TSENOR_OK, "greedy failed");
            for (b = 0; b < ((rows + m - 1) / m) * bc; b++) {
                const size_t r0 = (b / bc) * m, c0 = (b % bc) * m;
                _tsenor_round_scratch rs;
                float amax = 0.0f;
                int i, j, q;
                memset(&rs, 0, sizeof rs);
                rs.keys = keys; rs.keys_tmp = tmp; rs.gain = gainbuf; rs.pred = pred; rs.queue = queue; rs.layer = layer;
                for (i = 0; i < m; i++)
                    for (j = 0; j < m; j++) {
                        const int in = r0 + i < rows && c0 + j < cols;
                        af[i * m + j] = in ? fabsf(w[(r0 + i) * cols + c0 + j]) : 0.0f;
                        if (af[i * m + j] > amax) amax = af[i * m + j];
                    }
                for (q = 0; q < mm; q++) { af[q] = amax > 0.0f ? af[q] / amax : 0.0f; order[q] = q; sel[q] = 0; }
                g_sort_keys = af;
                qsort(order, (size_t)mm, sizeof *order, cmp_greedy_order);
                for (q = 0; q < mm; q++) {
                    i = order[q] / m;
                    j = order[q] % m;
                    if (rs.rc[i] < n && rs.cc[j] < n) { sel[order[q]] = 1; rs.rc[i]++; rs.cc[j]++; }
                }
                _tsenor_repair(af, m, n, sel, &rs);
                for (i = 0; i < m && r0 + i < rows; i++)
                    for (j = 0; j < m && c0 + j < cols; j++)
                        mismatched += mask[(r0 + i) * cols + c0 + j] != sel[i * m + j];
            }
            EXPECT(mismatched == 0, "greedy %d:%d dist %d: %zu entries differ from the sorted greedy", n, m, d, mismatched);
            free(w); free(mask); free(raw_a); free(raw_s); free(order); free(keys); free(tmp);
        }
    }
}

/* The vectorised add-add-remove search picks the same swap as the scalar one. */
static void test_repair_swap_wide_matches_scalar(void)
{
    static const int ms[] = {16, 32, 48, 64};
    void *raw_a = xmalloc(64 * 64 * sizeof(float) + 64), *raw_s = xmalloc(2 * 64 * 64 + 128);
    float *af = (float *)aligned64(raw_a);
    uint8_t *s1 = (uint8_t *)aligned64(raw_s), *s2 = s1 + 64 * 64;
    wl_rng r;
    size_t p;
    int t, differ = 0, found = 0, trials = 0;
    r.s = 11;
    for (p = 0; p < sizeof ms / sizeof *ms; p++) {
        const int m = ms[p], mm = m * m;
        for (t = 0; t < 200; t++) {
            const int i = (int)(wl_next(&r) % (uint64_t)m), j = (int)(wl_next(&r) % (uint64_t)m);
            const uint64_t density = 1 + wl_next(&r) % 7;   /* selections from 1/8 to 7/8 full */
            int k, g1, g2;
            for (k = 0; k < mm; k++) {
                af[k] = t % 3 == 0 ? (float)(wl_next(&r) % 4) / 3.0f : (float)wl_uniform(&r);   /* ties too */
                s1[k] = s2[k] = (uint8_t)(wl_next(&r) % 8 < density);
            }
            g1 = _tsenor_repair_swap(af, m, s1, i, j);
            g2 = _tsenor_repair_swap_wide(af, m, s2, i, j);
            differ += g1 != g2 || memcmp(s1, s2, (size_t)mm) != 0;
            found += g1;
            trials++;
        }
    }
    EXPECT(differ == 0, "wide repair swap differs from scalar in %d of %d cases", differ, trials);
    EXPECT(found > trials / 2, "repair swap test: only %d of %d cases had a swap (weak test)", found, trials);
    free(raw_a); free(raw_s);
}

/* The quality bar: on Gaussian, Student-t(3) and outlier-column matrices,
   TSENOR within 0.5% of EXACT (whole matrix and mean over blocks), no block over 5%,
   TSENOR better than GREEDY, every mask valid. */
static void test_quality_bar(void)
{
    static const int pats[4][2] = {{2, 4}, {4, 8}, {8, 16}, {16, 32}};
    const size_t rows = 512, cols = 512;
    float *w = (float *)xmalloc(rows * cols * sizeof(float));
    uint8_t *mx = (uint8_t *)xmalloc(rows * cols), *mt = (uint8_t *)xmalloc(rows * cols),
            *mg = (uint8_t *)xmalloc(rows * cols), *mr = (uint8_t *)xmalloc(rows * cols);
    int p, d;
    printf("quality (512x512, default options; relative error of pruned magnitude vs exact)\n");
    printf("  %-6s %-13s %9s %9s %9s %9s\n", "n:m", "dist", "tsenor", "blk-mean", "worst-blk", "greedy");
    for (p = 0; p < 4; p++) {
        for (d = 0; d < WL_DIST_COUNT; d++) {
            const int n = pats[p][0], m = pats[p][1];
            tsenor_options ox = make_opt(n, m, TSENOR_METHOD_EXACT), ot = make_opt(n, m, TSENOR_METHOD_DEFAULT),
                           og = make_opt(n, m, TSENOR_METHOD_GREEDY), orw = make_opt(n, m, TSENOR_METHOD_ROWWISE);
            wl_error et, eg;
            wl_fill(w, rows, cols, cols, (wl_dist)d, 100 + (uint64_t)(p * 10 + d));
            EXPECT(tsenor_mask_f32(w, rows, cols, cols, mx, cols, &ox, NULL) == TSENOR_OK, "exact failed");
            EXPECT(tsenor_mask_f32(w, rows, cols, cols, mt, cols, &ot, NULL) == TSENOR_OK, "tsenor failed");
            EXPECT(tsenor_mask_f32(w, rows, cols, cols, mg, cols, &og, NULL) == TSENOR_OK, "greedy failed");
            EXPECT(tsenor_mask_f32(w, rows, cols, cols, mr, cols, &orw, NULL) == TSENOR_OK, "rowwise failed");
            EXPECT(tsenor_check(mx, rows, cols, cols, n, m, 1) == TSENOR_OK, "exact %d:%d mask invalid", n, m);
            EXPECT(tsenor_check(mt, rows, cols, cols, n, m, 1) == TSENOR_OK, "tsenor %d:%d mask invalid", n, m);
            EXPECT(tsenor_check(mg, rows, cols, cols, n, m, 1) == TSENOR_OK, "greedy %d:%d mask invalid", n, m);
            EXPECT(tsenor_check(mr, rows, cols, cols, n, m, 0) == TSENOR_OK, "rowwise %d:%d row check", n, m);
            et = wl_relative_error(w, rows, cols, cols, mt, mx, cols, m);
            eg = wl_relative_error(w, rows, cols, cols, mg, mx, cols, m);
            printf("  %2d:%-3d %-13s %8.4f%% %8.4f%% %8.3f%% %8.3f%%\n", n, m, wl_dist_name((wl_dist)d), 100 * et.matrix,
                   100 * et.block_mean, 100 * et.worst_block, 100 * eg.matrix);
            EXPECT(et.matrix >= -1e-12, "%d:%d %s: tsenor beats exact (%g): exact is not optimal", n, m,
                   wl_dist_name((wl_dist)d), et.matrix);
            EXPECT(et.matrix <= 0.005, "%d:%d %s: tsenor error %.4f%% > 0.5%%", n, m, wl_dist_name((wl_dist)d),
                   100 * et.matrix);
            EXPECT(et.block_mean <= 0.005, "%d:%d %s: tsenor mean block error %.4f%% > 0.5%%", n, m,
                   wl_dist_name((wl_dist)d), 100 * et.block_mean);
            EXPECT(et.worst_block <= 0.05, "%d:%d %s: worst block %.3f%% > 5%%", n, m, wl_dist_name((wl_dist)d),
                   100 * et.worst_block);
            EXPECT(et.matrix < eg.matrix, "%d:%d %s: tsenor (%.4f%%) not better than greedy (%.4f%%)", n, m,
                   wl_dist_name((wl_dist)d), 100 * et.matrix, 100 * eg.matrix);
        }
    }
    free(w); free(mx); free(mt); free(mg); free(mr);
}

/* Random shapes, leading dimensions, patterns (any 1 <= n < m <= 64) and methods:
   valid masks, padding bytes of the mask untouched, report consistent, EXACT best. */
static void test_random_shapes(void)
{
    wl_rng r;
    int t;
    r.s = 2024;
    for (t = 0; t < 150; t++) {
        static const int common_m[7] = {4, 8, 16, 3, 6, 12, 32};
        const int m = t % 5 == 0 ? 2 + (int)(wl_next(&r) % 63) : common_m[wl_next(&r) % 7];
        const int n = 1 + (int)(wl_next(&r) % (uint64_t)(m - 1));
        const size_t rows = 1 + wl_next(&r) % (size_t)(3 * m + 5), cols = 1 + wl_next(&r) % (size_t)(3 * m + 5);
        const size_t ld = cols + wl_next(&r) % 7, mask_ld = cols + wl_next(&r) % 5;
        float *w = (float *)xmalloc(rows * ld * sizeof(float));
        uint8_t *mask = (uint8_t *)xmalloc(rows * mask_ld);
        double kept[5] = {0};
        int meth, i;
        size_t j;
        wl_fill(w, rows, ld, ld, (wl_dist)(t % WL_DIST_COUNT), (uint64_t)t);
        for (meth = TSENOR_METHOD_TSENOR; meth <= TSENOR_METHOD_ROWWISE; meth++) {
            tsenor_options o = make_opt(n, m, (tsenor_method)meth);
            tsenor_report rep;
            tsenor_status s;
            int pad_ok = 1;
            memset(mask, 0xAB, rows * mask_ld);
            o.threads = 1 + t % 2;
            s = tsenor_mask_f32(w, rows, cols, ld, mask, mask_ld, &o, &rep);
            EXPECT(s == TSENOR_OK, "%zux%zu ld %zu %d:%d %s: status %d", rows, cols, ld, n, m,
                   method_name((tsenor_method)meth), (int)s);
            if (s != TSENOR_OK) continue;
            EXPECT(tsenor_check(mask, rows, cols, mask_ld, n, m, meth != TSENOR_METHOD_ROWWISE) == TSENOR_OK,
                   "%zux%zu %d:%d %s: mask breaks the pattern", rows, cols, n, m, method_name((tsenor_method)meth));
            for (i = 0; i < (int)rows; i++)
                for (j = cols; j < mask_ld; j++) pad_ok &= mask[(size_t)i * mask_ld + j] == 0xAB;
            EXPECT(pad_ok, "%s wrote past cols into the mask padding", method_name((tsenor_method)meth));
            kept[meth] = kept_sum(w, rows, cols, ld, mask, mask_ld);
            EXPECT(fabs(rep.kept - kept[meth]) <= 1e-6 * (1.0 + kept[meth]) && rep.kept <= rep.total * (1 + 1e-12),
                   "report kept %g vs %g, total %g", rep.kept, kept[meth], rep.total);
            EXPECT(rep.blocks == ((rows + m - 1) / m) * ((cols + m - 1) / m), "report blocks %zu", rep.blocks);
        }
        EXPECT(kept[TSENOR_METHOD_EXACT] >= kept[TSENOR_METHOD_TSENOR] * (1 - 1e-9) &&
               kept[TSENOR_METHOD_EXACT] >= kept[TSENOR_METHOD_GREEDY] * (1 - 1e-9),
               "%zux%zu %d:%d: exact %g below tsenor %g or greedy %g", rows, cols, n, m, kept[TSENOR_METHOD_EXACT],
               kept[TSENOR_METHOD_TSENOR], kept[TSENOR_METHOD_GREEDY]);
        free(w);
        free(mask);
    }
}

/* f16 and bf16: masks equal those of the f32 call on the exactly widened values.
   Random finite bit patterns: signs, subnormals and the full exponent range. */
static float ref_f16_to_f32(uint16_t h)
{
    int e = (h >> 10) & 31, f = h & 1023;
    float v = e == 0 ? ldexpf((float)f, -24) : ldexpf((float)(f + 1024), e - 25);
    return (h & 0x8000) ? -v : v;
}
static float ref_bf16_to_f32(uint16_t h)
{
    uint32_t b = (uint32_t)h << 16;
    float v;
    memcpy(&v, &b, 4);
    return v;
}

static void test_half_dtypes(void)
{
    const size_t rows = 70, cols = 90;
    uint16_t *h = (uint16_t *)xmalloc(rows * cols * 2);
    float *w = (float *)xmalloc(rows * cols * 4);
    uint8_t *m1 = (uint8_t *)xmalloc(rows * cols), *m2 = (uint8_t *)xmalloc(rows * cols);
    wl_rng r;
    int kind, meth, scale;
    size_t k;
    r.s = 99;
    for (kind = 0; kind < 2; kind++) {
        for (scale = 0; scale < 2; scale++) {
            for (k = 0; k < rows * cols; k++) {
                uint16_t bits;
                if (scale == 0) {          /* any finite pattern */
                    do bits = (uint16_t)wl_next(&r);
                    while (kind == 0 ? (bits & 0x7c00) == 0x7c00 : (bits & 0x7f80) == 0x7f80);
                } else {                   /* weight-like values around 1e-2 */
                    float v = 0.02f * (float)wl_normal(&r);
                    uint32_t b;
                    memcpy(&b, &v, 4);
                    if (kind == 1) bits = (uint16_t)(b >> 16);
                    else {
                        int e = (int)((b >> 23) & 255) - 127 + 15;
                        bits = (uint16_t)((b >> 16) & 0x8000);
                        if (e > 0 && e < 31) bits |= (uint16_t)((e << 10) | ((b >> 13) & 1023));
                    }
                }
                h[k] = bits;
                w[k] = kind == 0 ? ref_f16_to_f32(bits) : ref_bf16_to_f32(bits);
            }
            for (meth = TSENOR_METHOD_TSENOR; meth <= TSENOR_METHOD_ROWWISE; meth++) {
                tsenor_options o = make_opt(4, 8, (tsenor_method)meth);
                tsenor_status s1, s2;
                s1 = kind == 0 ? tsenor_mask_f16(h, rows, cols, cols, m1, cols, &o, NULL)
                               : tsenor_mask_bf16(h, rows, cols, cols, m1, cols, &o, NULL);
                s2 = tsenor_mask_f32(w, rows, cols, cols, m2, cols, &o, NULL);
                EXPECT(s1 == TSENOR_OK && s2 == TSENOR_OK, "%s %s: status %d %d", kind ? "bf16" : "f16",
                       method_name((tsenor_method)meth), (int)s1, (int)s2);
                EXPECT(memcmp(m1, m2, rows * cols) == 0, "%s %s (%s values): mask differs from the f32 call",
                       kind ? "bf16" : "f16", method_name((tsenor_method)meth), scale ? "weight-like" : "random-bit");
                EXPECT(tsenor_check(m1, rows, cols, cols, 4, 8, meth != TSENOR_METHOD_ROWWISE) == TSENOR_OK,
                       "%s %s: invalid mask", kind ? "bf16" : "f16", method_name((tsenor_method)meth));
            }
        }
    }
    free(h); free(w); free(m1); free(m2);
}

/* Same masks for 1, 2 and 3 threads, and for repeated calls. */
static void test_thread_invariance(void)
{
    const size_t rows = 200, cols = 264;
    float *w = (float *)xmalloc(rows * cols * 4);
    uint8_t *ref = (uint8_t *)xmalloc(rows * cols), *got = (uint8_t *)xmalloc(rows * cols);
    static const int pats[3][2] = {{2, 4}, {8, 16}, {5, 12}};
    int meth, p, th;
    wl_fill(w, rows, cols, cols, WL_STUDENT_T3, 5);
    for (p = 0; p < 3; p++)
        for (meth = TSENOR_METHOD_TSENOR; meth <= TSENOR_METHOD_ROWWISE; meth++) {
            tsenor_options o = make_opt(pats[p][0], pats[p][1], (tsenor_method)meth);
            o.threads = 1;
            tsenor_mask_f32(w, rows, cols, cols, ref, cols, &o, NULL);
            for (th = 1; th <= 3; th++) {
                o.threads = th;
                memset(got, 7, rows * cols);
                EXPECT(tsenor_mask_f32(w, rows, cols, cols, got, cols, &o, NULL) == TSENOR_OK, "status");
                EXPECT(memcmp(ref, got, rows * cols) == 0, "%s %d:%d: %d threads give another mask",
                       method_name((tsenor_method)meth), pats[p][0], pats[p][1], th);
            }
        }
    free(w); free(ref); free(got);
}

/* Bad input: each gives its status and leaves the mask exactly as it was. */
static void test_bad_input(void)
{
    const size_t rows = 32, cols = 32;
    float *w = (float *)xmalloc(rows * cols * 4);
    uint16_t *h = (uint16_t *)xmalloc(rows * cols * 2);
    uint8_t *mask = (uint8_t *)xmalloc(rows * cols), *before = (uint8_t *)xmalloc(rows * cols);
    tsenor_options o = make_opt(2, 4, TSENOR_METHOD_DEFAULT), bad;
    tsenor_report rep;
    size_t k;
    int meth, pos;
    wl_fill(w, rows, cols, cols, WL_GAUSSIAN, 3);
    for (k = 0; k < rows * cols; k++) { before[k] = (uint8_t)(k * 37 + 11); h[k] = (uint16_t)(0x3c00 + k % 512); }

#define EXPECT_REJECT(call, status, what)                                                 \
    do {                                                                                  \
        tsenor_status s_;                                                                 \
        memcpy(mask, before, rows * cols);                                                \
        s_ = (call);                                                                      \
        EXPECT(s_ == (status), "%s: status %d, expected %d", what, (int)s_, (int)(status)); \
        EXPECT(memcmp(mask, before, rows * cols) == 0, "%s: mask was modified", what);     \
    } while (0)

    EXPECT_REJECT(tsenor_mask_f32(NULL, rows, cols, cols, mask, cols, &o, &rep), TSENOR_ERR_INVALID_ARGUMENT, "w NULL");
    EXPECT_REJECT(tsenor_mask_f32(w, rows, cols, cols, NULL, cols, &o, &rep), TSENOR_ERR_INVALID_ARGUMENT, "mask NULL");
    EXPECT_REJECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, NULL, &rep), TSENOR_ERR_INVALID_ARGUMENT, "opt NULL");
    EXPECT_REJECT(tsenor_mask_f32(w, 0, cols, cols, mask, cols, &o, &rep), TSENOR_ERR_INVALID_ARGUMENT, "rows 0");
    EXPECT_REJECT(tsenor_mask_f32(w, rows, 0, cols, mask, cols, &o, &rep), TSENOR_ERR_INVALID_ARGUMENT, "cols 0");
    EXPECT_REJECT(tsenor_mask_f32(w, rows, cols, cols - 1, mask, cols, &o, &rep), TSENOR_ERR_INVALID_ARGUMENT, "ld < cols");
    EXPECT_REJECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols - 1, &o, &rep), TSENOR_ERR_INVALID_ARGUMENT,
                  "mask_ld < cols");
    EXPECT_REJECT(tsenor_mask_f32(w, (size_t)1 << 40, (size_t)1 << 40, (size_t)1 << 40, mask, cols, &o, &rep),
                  TSENOR_ERR_INVALID_ARGUMENT, "rows*ld overflows size_t");
    EXPECT_REJECT(tsenor_mask_f32(w, 3, SIZE_MAX - 1, SIZE_MAX - 1, mask, SIZE_MAX - 1, &o, &rep),
                  TSENOR_ERR_INVALID_ARGUMENT, "ld near SIZE_MAX");
    EXPECT_REJECT(tsenor_mask_f32(w, rows, cols, cols, (uint8_t *)w + 8, cols, &o, &rep), TSENOR_ERR_INVALID_ARGUMENT,
                  "mask overlaps the input");

    {   /* options out of range */
        static const int nm[][2] = {{0, 4}, {4, 4}, {5, 4}, {-1, 4}, {1, 1}, {1, 0}, {2, TSENOR_MAX_M + 1}, {1, -3}};
        size_t i;
        for (i = 0; i < sizeof nm / sizeof *nm; i++) {
            char what[64];
            bad = make_opt(nm[i][0], nm[i][1], TSENOR_METHOD_DEFAULT);
            sprintf(what, "n=%d m=%d", nm[i][0], nm[i][1]);
            EXPECT_REJECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &bad, &rep), TSENOR_ERR_INVALID_ARGUMENT, what);
        }
        bad = o; bad.method = (tsenor_method)99;
        EXPECT_REJECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &bad, &rep), TSENOR_ERR_INVALID_ARGUMENT, "method 99");
        bad = o; bad.method = (tsenor_method)-1;
        EXPECT_REJECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &bad, &rep), TSENOR_ERR_INVALID_ARGUMENT, "method -1");
        bad = o; bad.iterations = -1;
        EXPECT_REJECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &bad, &rep), TSENOR_ERR_INVALID_ARGUMENT, "iterations -1");
        bad = o; bad.tau = -0.5f;
        EXPECT_REJECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &bad, &rep), TSENOR_ERR_INVALID_ARGUMENT, "tau < 0");
        bad = o; bad.tau = (float)NAN;
        EXPECT_REJECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &bad, &rep), TSENOR_ERR_INVALID_ARGUMENT, "tau NaN");
        bad = o; bad.tau = 1e-9f;
        EXPECT_REJECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &bad, &rep), TSENOR_ERR_INVALID_ARGUMENT, "tau 1e-9");
        bad = o; bad.threads = -2;
        EXPECT_REJECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &bad, &rep), TSENOR_ERR_INVALID_ARGUMENT, "threads -2");
        bad = o; bad.tau_start = -1.0f;
        EXPECT_REJECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &bad, &rep), TSENOR_ERR_INVALID_ARGUMENT, "tau_start < 0");
    }

    /* NaN and +-Inf anywhere, for every method and dtype */
    for (meth = TSENOR_METHOD_DEFAULT; meth <= TSENOR_METHOD_ROWWISE; meth++) {
        tsenor_options om = make_opt(2, 4, (tsenor_method)meth);
        for (pos = 0; pos < 3; pos++) {
            const size_t at = pos == 0 ? 0 : pos == 1 ? rows * cols / 2 + 3 : rows * cols - 1;
            float keep = w[at];
            uint16_t hkeep = h[at];
            int sp;
            for (sp = 0; sp < 3; sp++) {
                char what[96];
                w[at] = sp == 0 ? (float)NAN : sp == 1 ? (float)INFINITY : -(float)INFINITY;
                sprintf(what, "f32 %s at %zu, %s", sp == 0 ? "NaN" : sp == 1 ? "+Inf" : "-Inf", at,
                        method_name((tsenor_method)meth));
                EXPECT_REJECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &om, &rep), TSENOR_ERR_NONFINITE_INPUT, what);
                h[at] = sp == 0 ? 0x7e00 : sp == 1 ? 0x7c00 : 0xfc00;
                EXPECT_REJECT(tsenor_mask_f16(h, rows, cols, cols, mask, cols, &om, &rep), TSENOR_ERR_NONFINITE_INPUT,
                              "f16 non-finite");
                h[at] = sp == 0 ? 0x7fc1 : sp == 1 ? 0x7f80 : 0xff80;
                EXPECT_REJECT(tsenor_mask_bf16(h, rows, cols, cols, mask, cols, &om, &rep), TSENOR_ERR_NONFINITE_INPUT,
                              "bf16 non-finite");
            }
            w[at] = keep;
            h[at] = hkeep;
        }
    }
    /* a NaN in the ld padding is not part of the matrix: accepted */
    {
        float *wp = (float *)xmalloc(rows * (cols + 2) * 4);
        for (k = 0; k < rows * (cols + 2); k++) wp[k] = (k % (cols + 2)) >= cols ? (float)NAN : 1.0f + (float)(k % 7);
        memcpy(mask, before, rows * cols);
        EXPECT(tsenor_mask_f32(wp, rows, cols, cols + 2, mask, cols, &o, &rep) == TSENOR_OK, "NaN in ld padding rejected");
        free(wp);
    }
    free(w); free(h); free(mask); free(before);
#undef EXPECT_REJECT
}

/* tsenor_check: accepts valid masks, catches each kind of break. */
static void test_check(void)
{
    uint8_t mk[8 * 8];
    int i, j;
    /* circulant 2:4 pattern on an 8x8 matrix: valid */
    for (i = 0; i < 8; i++) for (j = 0; j < 8; j++) mk[i * 8 + j] = ((j - i + 8) % 4) < 2;
    EXPECT(tsenor_check(mk, 8, 8, 8, 2, 4, 1) == TSENOR_OK, "valid circulant rejected");
    EXPECT(tsenor_check(mk, 8, 8, 8, 2, 4, 0) == TSENOR_OK, "valid circulant rejected (rows)");
    mk[0] ^= 1;
    EXPECT(tsenor_check(mk, 8, 8, 8, 2, 4, 1) == TSENOR_ERR_INVALID_MASK, "row/col count break not caught");
    EXPECT(tsenor_check(mk, 8, 8, 8, 2, 4, 0) == TSENOR_ERR_INVALID_MASK, "row count break not caught");
    mk[0] ^= 1;
    /* swap inside a row: rows stay at 2, columns break */
    { uint8_t t = mk[0]; mk[0] = mk[2]; mk[2] = t; }
    EXPECT(tsenor_check(mk, 8, 8, 8, 2, 4, 1) == TSENOR_ERR_INVALID_MASK, "column break not caught");
    EXPECT(tsenor_check(mk, 8, 8, 8, 2, 4, 0) == TSENOR_OK, "row-only check should pass");
    { uint8_t t = mk[0]; mk[0] = mk[2]; mk[2] = t; }
    mk[9] = 2;
    EXPECT(tsenor_check(mk, 8, 8, 8, 2, 4, 1) == TSENOR_ERR_INVALID_MASK, "byte value 2 not caught");
    mk[9] = 1;
    /* partial edge blocks (6x6 view of the 8x8 mask, ld 8): at most n */
    EXPECT(tsenor_check(mk, 6, 6, 8, 2, 4, 1) == TSENOR_OK, "partial blocks with <= n rejected");
    memset(mk, 0, sizeof mk);
    EXPECT(tsenor_check(mk, 3, 3, 8, 2, 4, 1) == TSENOR_OK, "empty partial block rejected");
    mk[0] = mk[1] = mk[2] = 1;
    EXPECT(tsenor_check(mk, 3, 3, 8, 2, 4, 1) == TSENOR_ERR_INVALID_MASK, "partial block row with > n not caught");
    memset(mk, 0, sizeof mk);
    mk[0] = mk[8] = mk[16] = 1;
    EXPECT(tsenor_check(mk, 3, 3, 8, 2, 4, 1) == TSENOR_ERR_INVALID_MASK, "partial block column with > n not caught");
    EXPECT(tsenor_check(mk, 3, 3, 8, 2, 4, 0) == TSENOR_OK, "row-only check counts columns");
    EXPECT(tsenor_check(NULL, 3, 3, 8, 2, 4, 1) == TSENOR_ERR_INVALID_ARGUMENT, "NULL mask");
    EXPECT(tsenor_check(mk, 3, 9, 8, 2, 4, 1) == TSENOR_ERR_INVALID_ARGUMENT, "mask_ld < cols");
    EXPECT(tsenor_check(mk, 0, 3, 8, 2, 4, 1) == TSENOR_ERR_INVALID_ARGUMENT, "rows 0");
    EXPECT(tsenor_check(mk, 3, 3, 8, 4, 4, 1) == TSENOR_ERR_INVALID_ARGUMENT, "n = m");
    EXPECT(tsenor_check(mk, 3, 3, 8, 1, 65, 1) == TSENOR_ERR_INVALID_ARGUMENT, "m > max");
}

/* Degenerate values: zeros, ties, -0.0, subnormals, huge values, one nonzero, 1x1. */
static void test_degenerate_values(void)
{
    const size_t rows = 48, cols = 48;
    float *w = (float *)xmalloc(rows * cols * 4);
    uint8_t *mask = (uint8_t *)xmalloc(rows * cols), *again = (uint8_t *)xmalloc(rows * cols);
    int kind, meth;
    size_t k;
    for (kind = 0; kind < 7; kind++) {
        static const char *names[7] = {"zeros", "ties", "-0.0", "subnormal", "1e38", "one nonzero", "mixed scales"};
        for (k = 0; k < rows * cols; k++) {
            switch (kind) {
            case 0: w[k] = 0.0f; break;
            case 1: w[k] = 0.5f; break;
            case 2: w[k] = -0.0f; break;
            case 3: w[k] = (float)(k % 13 + 1) * 1e-45f; break;
            case 4: w[k] = (k % 2 ? 3e38f : -1e38f) * ((float)(k % 5 + 1) / 5.0f); break;
            case 5: w[k] = k == 777 ? 1.0f : 0.0f; break;
            default: w[k] = (float)(k % 9) * (k % 3 == 0 ? 1e30f : k % 3 == 1 ? 1e-30f : 1.0f); break;
            }
        }
        for (meth = TSENOR_METHOD_TSENOR; meth <= TSENOR_METHOD_ROWWISE; meth++) {
            static const int pats[2][2] = {{2, 4}, {8, 16}};
            int p;
            for (p = 0; p < 2; p++) {
                tsenor_options o = make_opt(pats[p][0], pats[p][1], (tsenor_method)meth);
                tsenor_report rep;
                EXPECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &o, &rep) == TSENOR_OK, "%s %s: status",
                       names[kind], method_name((tsenor_method)meth));
                EXPECT(tsenor_check(mask, rows, cols, cols, pats[p][0], pats[p][1], meth != TSENOR_METHOD_ROWWISE) ==
                           TSENOR_OK, "%s %s %d:%d: invalid mask", names[kind], method_name((tsenor_method)meth),
                       pats[p][0], pats[p][1]);
                EXPECT(rep.kept == rep.kept && rep.total == rep.total, "%s: NaN in report", names[kind]);
                tsenor_mask_f32(w, rows, cols, cols, again, cols, &o, NULL);
                EXPECT(memcmp(mask, again, rows * cols) == 0, "%s %s: not deterministic", names[kind],
                       method_name((tsenor_method)meth));
                if (kind == 5)
                    EXPECT(mask[777] == 1, "%s %s: the only nonzero was pruned", names[kind], method_name((tsenor_method)meth));
            }
        }
    }
    {   /* 1x1 and single rows/columns: partial blocks keep at most n */
        float one = -3.0f;
        uint8_t mk = 9;
        tsenor_options o = make_opt(1, 2, TSENOR_METHOD_DEFAULT);
        EXPECT(tsenor_mask_f32(&one, 1, 1, 1, &mk, 1, &o, NULL) == TSENOR_OK && mk <= 1, "1x1");
        EXPECT(tsenor_check(&mk, 1, 1, 1, 1, 2, 1) == TSENOR_OK, "1x1 check");
    }
    free(w); free(mask); free(again);
}

/* ROWWISE keeps exactly the top n of every group (ties to the lower index). */
static void test_rowwise_is_topn(void)
{
    const size_t rows = 13, cols = 50;
    float w[13 * 50];
    uint8_t mask[13 * 50];
    tsenor_options o = make_opt(3, 8, TSENOR_METHOD_ROWWISE);
    size_t i, g;
    int bad = 0;
    wl_fill(w, rows, cols, cols, WL_GAUSSIAN, 77);
    w[5] = w[6];   /* a tie */
    EXPECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &o, NULL) == TSENOR_OK, "rowwise status");
    for (i = 0; i < rows; i++)
        for (g = 0; g < cols; g += 8) {
            size_t len = cols - g < 8 ? cols - g : 8, a, b;
            for (a = 0; a < len; a++) {
                int beat = 0;
                for (b = 0; b < len; b++) {
                    float va = fabsf(w[i * cols + g + a]), vb = fabsf(w[i * cols + g + b]);
                    beat += vb > va || (vb == va && b < a);
                }
                bad += mask[i * cols + g + a] != (beat < 3);
            }
        }
    EXPECT(bad == 0, "rowwise: %d entries differ from top-n", bad);
}

/* tsenor_check_mask: where the first failure is, how many blocks break, AT_MOST, the
   report left alone on bad arguments */
static void test_check_report(void)
{
    uint8_t mk[8 * 12];
    tsenor_check_report rep;
    int i, j;
    for (i = 0; i < 8; i++) for (j = 0; j < 12; j++) mk[i * 12 + j] = ((j - i + 12) % 4) < 2;
    memset(&rep, 0x55, sizeof rep);
    EXPECT(tsenor_check_mask(mk, 8, 12, 12, 2, 4, TSENOR_CHECK_TRANSPOSABLE, &rep) == TSENOR_OK && rep.blocks == 6 &&
               rep.bad_blocks == 0 && rep.row == 0 && rep.col == 0 && rep.count == 0,
           "valid mask: blocks %zu bad %zu", rep.blocks, rep.bad_blocks);
    /* break block (1,2) by swapping two entries of row 5 (columns 8 and 10 then keep 3
       and 1) and block (0,1) by one extra entry in row 2 */
    { uint8_t t = mk[5 * 12 + 8]; mk[5 * 12 + 8] = mk[5 * 12 + 10]; mk[5 * 12 + 10] = t; }
    for (j = 4; j < 8 && mk[2 * 12 + j]; j++) {}
    mk[2 * 12 + j] = 1;
    EXPECT(tsenor_check_mask(mk, 8, 12, 12, 2, 4, TSENOR_CHECK_TRANSPOSABLE, &rep) == TSENOR_ERR_INVALID_MASK &&
               rep.blocks == 6 && rep.bad_blocks == 2 && rep.row == 2 && rep.col == 4 && rep.column == 0 &&
               rep.count == 3 && !rep.bad_value,
           "first failure row %zu col %zu column %d count %d, %zu bad", rep.row, rep.col, rep.column, rep.count,
           rep.bad_blocks);
    mk[2 * 12 + j] = 0;
    EXPECT(tsenor_check_mask(mk, 8, 12, 12, 2, 4, TSENOR_CHECK_TRANSPOSABLE, &rep) == TSENOR_ERR_INVALID_MASK &&
               rep.bad_blocks == 1 && rep.row == 4 && rep.col == 8 && rep.column == 1 && rep.count == 3,
           "column failure at row %zu col %zu column %d count %d", rep.row, rep.col, rep.column, rep.count);
    EXPECT(tsenor_check_mask(mk, 8, 12, 12, 2, 4, 0, &rep) == TSENOR_OK, "row-wise check fails a column swap");
    /* AT_MOST: a sparser mask passes, a denser one does not */
    mk[0] = mk[1] = 0;
    EXPECT(tsenor_check_mask(mk, 8, 12, 12, 2, 4, TSENOR_CHECK_TRANSPOSABLE, NULL) == TSENOR_ERR_INVALID_MASK,
           "fewer than n in a full block passes the exact check");
    EXPECT(tsenor_check_mask(mk, 8, 12, 12, 2, 4, TSENOR_CHECK_TRANSPOSABLE | TSENOR_CHECK_AT_MOST, &rep) ==
               TSENOR_ERR_INVALID_MASK && rep.bad_blocks == 1 && rep.column == 1,
           "AT_MOST misses the column that keeps 3 (bad %zu)", rep.bad_blocks);
    { uint8_t t = mk[5 * 12 + 8]; mk[5 * 12 + 8] = mk[5 * 12 + 10]; mk[5 * 12 + 10] = t; }
    EXPECT(tsenor_check_mask(mk, 8, 12, 12, 2, 4, TSENOR_CHECK_TRANSPOSABLE | TSENOR_CHECK_AT_MOST, NULL) == TSENOR_OK,
           "AT_MOST rejects a mask sparser than 2:4");
    mk[7 * 12 + 11] = 3;
    EXPECT(tsenor_check_mask(mk, 8, 12, 12, 2, 4, TSENOR_CHECK_AT_MOST, &rep) == TSENOR_ERR_INVALID_MASK &&
               rep.bad_value && rep.row == 7 && rep.col == 11 && rep.count == 3,
           "bad byte reported at %zu,%zu (%d)", rep.row, rep.col, rep.count);
    memset(&rep, 0x55, sizeof rep);
    EXPECT(tsenor_check_mask(mk, 8, 12, 12, 2, 4, 4u, &rep) == TSENOR_ERR_INVALID_ARGUMENT && rep.count == 0x55555555,
           "unknown flag accepted, or report written on a bad argument");
    EXPECT(tsenor_check_mask(mk, 8, 12, 11, 2, 4, 0, &rep) == TSENOR_ERR_INVALID_ARGUMENT, "mask_ld < cols accepted");
}

/* the generic entry equals the typed ones; names of methods and dtypes */
static void test_generic_entry(void)
{
    float w[40 * 24];
    uint16_t h[40 * 24];
    uint8_t a[40 * 24], b[40 * 24];
    tsenor_options o = make_opt(4, 8, TSENOR_METHOD_DEFAULT);
    size_t k;
    int dt;
    wl_fill(w, 40, 24, 24, WL_STUDENT_T3, 9);
    for (k = 0; k < 40 * 24; k++) {   /* bf16 bits by truncation: the dtypes then see different values */
        uint32_t x;
        memcpy(&x, &w[k], 4);
        h[k] = (uint16_t)(x >> 16);
    }
    for (dt = 0; dt < 3; dt++) {
        tsenor_status s1, s2;
        memset(a, 7, sizeof a);
        memset(b, 9, sizeof b);
        s1 = dt == 0 ? tsenor_mask_f32(w, 40, 24, 24, a, 24, &o, NULL)
           : dt == 1 ? tsenor_mask_f16(h, 40, 24, 24, a, 24, &o, NULL)
                     : tsenor_mask_bf16(h, 40, 24, 24, a, 24, &o, NULL);
        s2 = tsenor_mask(dt == 0 ? (const void *)w : (const void *)h, (tsenor_dtype)dt, 40, 24, 24, b, 24, &o, NULL);
        EXPECT(s1 == TSENOR_OK && s2 == TSENOR_OK && memcmp(a, b, sizeof a) == 0,
               "tsenor_mask(%s) differs from the typed call", tsenor_dtype_string((tsenor_dtype)dt));
    }
    memset(b, 9, sizeof b);
    EXPECT(tsenor_mask(w, (tsenor_dtype)3, 40, 24, 24, b, 24, &o, NULL) == TSENOR_ERR_INVALID_ARGUMENT && b[0] == 9,
           "unknown dtype accepted");
    EXPECT(!strcmp(tsenor_method_string(TSENOR_METHOD_DEFAULT), "tsenor") &&
               !strcmp(tsenor_method_string(TSENOR_METHOD_TSENOR), "tsenor") &&
               !strcmp(tsenor_method_string(TSENOR_METHOD_EXACT), "exact") &&
               !strcmp(tsenor_method_string(TSENOR_METHOD_GREEDY), "greedy") &&
               !strcmp(tsenor_method_string(TSENOR_METHOD_ROWWISE), "rowwise") &&
               !strcmp(tsenor_method_string((tsenor_method)99), "unknown"),
           "method names");
    EXPECT(!strcmp(tsenor_dtype_string(TSENOR_DTYPE_F32), "f32") && !strcmp(tsenor_dtype_string(TSENOR_DTYPE_F16), "f16") &&
               !strcmp(tsenor_dtype_string(TSENOR_DTYPE_BF16), "bf16") &&
               !strcmp(tsenor_dtype_string((tsenor_dtype)-1), "unknown"),
           "dtype names");
}

static void test_misc_api(void)
{
    int s;
    tsenor_options o = make_opt(8, 16, TSENOR_METHOD_DEFAULT), res;
    for (s = 0; s <= (int)TSENOR_ERR_INVALID_MASK + 1; s++)
        EXPECT(tsenor_status_string((tsenor_status)s) != NULL && tsenor_status_string((tsenor_status)s)[0],
               "status %d has no string", s);
    EXPECT(tsenor_status_string((tsenor_status)-7) != NULL, "unknown status string NULL");
    {
        char expect[32];
        snprintf(expect, sizeof expect, "%d.%d.%d", TSENOR_VERSION_MAJOR, TSENOR_VERSION_MINOR, TSENOR_VERSION_PATCH);
        EXPECT(strcmp(tsenor_version(), expect) == 0, "version string %s, macros say %s", tsenor_version(), expect);
    }
    EXPECT(tsenor_resolve_options(&o, &res) == TSENOR_OK && res.method == TSENOR_METHOD_TSENOR && res.iterations > 0 &&
               res.tau > 0.0f && res.local_search_steps > 0 && res.threads >= 1,
           "resolve_options defaults");
    o.n = 0;
    EXPECT(tsenor_resolve_options(&o, &res) == TSENOR_ERR_INVALID_ARGUMENT, "resolve_options bad n");
    {   /* the report names the backend that ran */
        float w[64];
        uint8_t mk[64];
        tsenor_report rep;
        int k, known;
        tsenor_options o2 = make_opt(2, 4, TSENOR_METHOD_DEFAULT);
        for (k = 0; k < 64; k++) w[k] = (float)(k % 7);
        EXPECT(tsenor_mask_f32(w, 8, 8, 8, mk, 8, &o2, &rep) == TSENOR_OK, "8x8 call");
        known = !strcmp(rep.backend, "cpu-avx512") || !strcmp(rep.backend, "cpu-avx2") ||
                !strcmp(rep.backend, "cpu-neon") || !strcmp(rep.backend, "cpu-generic") ||
                !strcmp(rep.backend, "cpu-scalar");
        EXPECT(known, "unknown backend '%s'", rep.backend);
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(TSENOR_NO_SIMD) && !defined(TSENOR_NO_RUNTIME_DISPATCH)
        /* runtime dispatch: a plain -O2 build uses the widest ISA the CPU has */
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
            EXPECT(!strcmp(rep.backend, "cpu-avx512"), "AVX-512 CPU but backend %s", rep.backend);
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            EXPECT(!strcmp(rep.backend, "cpu-avx2"), "AVX2 CPU but backend %s", rep.backend);
#endif
        printf("backend: %s, threads %d\n", rep.backend, rep.threads);
    }
}

int main(void)
{
    test_exact_vs_brute_force();
    test_exact_certificate();
    test_n4_exact();
    test_n4_matches_general_exact();
    test_greedy_matches_sorted_reference();
    test_repair_swap_wide_matches_scalar();
    test_check();
    test_check_report();
    test_generic_entry();
    test_misc_api();
    test_rowwise_is_topn();
    test_bad_input();
    test_degenerate_values();
    test_half_dtypes();
    test_thread_invariance();
    test_random_shapes();
    test_quality_bar();
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
