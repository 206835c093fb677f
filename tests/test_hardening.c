/* test_hardening.c - what a host program relies on when it pastes tsenor.h in:
     1. the bad-input table of README.md, row by row (same labels): each input gives the
        status the table says, and on any error the mask is left exactly as it was;
     2. allocation-failure injection: through the library's TSENOR_MALLOC override, the
        k-th allocation of a call fails, for every k the call makes: the call returns
        TSENOR_ERR_OUT_OF_MEMORY, leaks nothing and leaves the mask untouched;
     3. concurrency: many threads calling the library at once on different matrices get
        the masks that serial calls get (`make test-tsan` runs it under ThreadSanitizer).
   POSIX threads; prints "N passed, N failed" last. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a counting allocator that can fail on purpose (shared by all threads) ---------- */
static pthread_mutex_t g_alloc_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t g_alloc_calls, g_alloc_fail_at, g_alloc_live;

static void *test_malloc(size_t n)
{
    void *p = NULL;
    pthread_mutex_lock(&g_alloc_lock);
    g_alloc_calls++;
    if (g_alloc_calls != g_alloc_fail_at) {
        p = malloc(n);
        if (p) g_alloc_live++;
    }
    pthread_mutex_unlock(&g_alloc_lock);
    return p;
}

static void test_free(void *p)
{
    if (!p) return;
    pthread_mutex_lock(&g_alloc_lock);
    g_alloc_live--;
    pthread_mutex_unlock(&g_alloc_lock);
    free(p);
}

#define TSENOR_MALLOC(n) test_malloc(n)
#define TSENOR_FREE(p) test_free(p)
#define TSENOR_IMPLEMENTATION
#include "../tsenor.h"
#include "workloads.h"

#include <math.h>

#include "check.h"

static const tsenor_method k_methods[4] = {TSENOR_METHOD_TSENOR, TSENOR_METHOD_EXACT, TSENOR_METHOD_GREEDY,
                                           TSENOR_METHOD_ROWWISE};
static const char *k_method_names[4] = {"tsenor", "exact", "greedy", "rowwise"};

/* bf16 / f16 bits of a float (round to nearest even; f16 only for |x| in its range) */
static uint16_t to_bf16(float x)
{
    uint32_t b;
    memcpy(&b, &x, 4);
    return (uint16_t)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

typedef enum { DT_F32, DT_F16, DT_BF16 } dtype;

static tsenor_status call(dtype dt, const void *w, size_t rows, size_t cols, size_t ld, uint8_t *mask, size_t mask_ld,
                          const tsenor_options *o)
{
    tsenor_report rep;
    if (dt == DT_F32) return tsenor_mask_f32((const float *)w, rows, cols, ld, mask, mask_ld, o, &rep);
    if (dt == DT_F16) return tsenor_mask_f16((const uint16_t *)w, rows, cols, ld, mask, mask_ld, o, &rep);
    return tsenor_mask_bf16((const uint16_t *)w, rows, cols, ld, mask, mask_ld, o, &rep);
}

/* ==================================================================================
   1. the bad-input table (README.md, "Bad input")
   ================================================================================== */
#define R 48
#define C 48
static float g_w[R * C];
static uint8_t g_mask[R * C], g_sentinel[R * C];

static void fresh_mask(void)
{
    size_t k;
    for (k = 0; k < sizeof g_sentinel; k++) g_sentinel[k] = (uint8_t)(k * 37 + 11);
    memcpy(g_mask, g_sentinel, sizeof g_mask);
}

/* An error row: the status, and not one byte of the mask written. */
static void expect_error(const char *row, tsenor_status got, tsenor_status want)
{
    EXPECT(got == want, "[%s] status %d (%s), the table says %d", row, (int)got, tsenor_status_string(got), (int)want);
    EXPECT(memcmp(g_mask, g_sentinel, sizeof g_mask) == 0, "[%s] the mask was written on error", row);
}

/* A defined row: OK, a valid mask (transposable unless ROWWISE), same mask twice. */
static void expect_defined(const char *row, const float *w, size_t rows, size_t cols, size_t ld, int n, int m,
                           uint8_t *out)
{
    int k;
    for (k = 0; k < 4; k++) {
        tsenor_options o = make_opt(n, m, k_methods[k]);
        uint8_t *again = (uint8_t *)xmalloc(rows * cols);
        tsenor_report rep;
        tsenor_status s = tsenor_mask_f32(w, rows, cols, ld, out, cols, &o, &rep);
        EXPECT(s == TSENOR_OK, "[%s] %s: status %d", row, k_method_names[k], (int)s);
        EXPECT(tsenor_check(out, rows, cols, cols, n, m, k_methods[k] != TSENOR_METHOD_ROWWISE) == TSENOR_OK,
               "[%s] %s %d:%d: invalid mask", row, k_method_names[k], n, m);
        EXPECT(rep.kept >= 0.0 && rep.kept <= rep.total * (1.0 + 1e-9) && rep.total == rep.total && rep.total < HUGE_VAL,
               "[%s] %s: report kept %g of %g", row, k_method_names[k], rep.kept, rep.total);
        tsenor_mask_f32(w, rows, cols, ld, again, cols, &o, NULL);
        EXPECT(memcmp(out, again, rows * cols) == 0, "[%s] %s: not deterministic", row, k_method_names[k]);
        free(again);
    }
}

static void test_bad_input_table(void)
{
    tsenor_options o = make_opt(8, 16, TSENOR_METHOD_DEFAULT);
    uint16_t h[R * C], b[R * C];
    size_t k;
    int d, which;
    wl_fill(g_w, R, C, C, WL_GAUSSIAN, 11);

    /* NaN / +Inf / -Inf: every dtype, every method, first / middle / last entry */
    for (which = 0; which < 3; which++) {
        static const char *rows[3] = {"NaN", "+Inf", "-Inf"};
        const float bad = which == 0 ? (float)NAN : which == 1 ? (float)INFINITY : -(float)INFINITY;
        const uint16_t bad_h = which == 0 ? 0x7E00 : which == 1 ? 0x7C00 : 0xFC00;
        const uint16_t bad_b = which == 0 ? 0x7FC0 : which == 1 ? 0x7F80 : 0xFF80;
        for (k = 0; k < R * C; k++) { h[k] = 0x3C00; b[k] = to_bf16(g_w[k]); }
        for (d = 0; d < 8; d++) {   /* 8:16, then 2:4 (the n:4 solver for TSENOR and EXACT) */
            const size_t at[3] = {0, R * C / 2 + 5, R * C - 1};
            int p;
            tsenor_options om = d < 4 ? make_opt(8, 16, k_methods[d]) : make_opt(2, 4, k_methods[d - 4]);
            for (p = 0; p < 3; p++) {
                const float keep = g_w[at[p]];
                g_w[at[p]] = bad; h[at[p]] = bad_h; b[at[p]] = bad_b;
                fresh_mask();
                expect_error(rows[which], call(DT_F32, g_w, R, C, C, g_mask, C, &om), TSENOR_ERR_NONFINITE_INPUT);
                expect_error(rows[which], call(DT_F16, h, R, C, C, g_mask, C, &om), TSENOR_ERR_NONFINITE_INPUT);
                expect_error(rows[which], call(DT_BF16, b, R, C, C, g_mask, C, &om), TSENOR_ERR_NONFINITE_INPUT);
                g_w[at[p]] = keep; h[at[p]] = 0x3C00; b[at[p]] = to_bf16(keep);
            }
        }
    }

    /* -0.0: a zero; the mask is the one +0.0 gets */
    {
        float zp[R * C], zn[R * C];
        uint8_t mp[R * C];
        for (k = 0; k < R * C; k++) {
            zp[k] = k % 3 ? g_w[k] : 0.0f;
            zn[k] = k % 3 ? g_w[k] : -0.0f;
        }
        expect_defined("-0.0", zn, R, C, C, 8, 16, g_mask);
        expect_defined("-0.0", zn, R, C, C, 2, 4, g_mask);
        o.method = TSENOR_METHOD_TSENOR;
        tsenor_mask_f32(zp, R, C, C, mp, C, &o, NULL);
        tsenor_mask_f32(zn, R, C, C, g_mask, C, &o, NULL);
        EXPECT(memcmp(mp, g_mask, sizeof mp) == 0, "[-0.0] mask differs from the +0.0 one");
        {
            tsenor_options o4 = make_opt(2, 4, TSENOR_METHOD_EXACT);
            tsenor_mask_f32(zp, R, C, C, mp, C, &o4, NULL);
            tsenor_mask_f32(zn, R, C, C, g_mask, C, &o4, NULL);
            EXPECT(memcmp(mp, g_mask, sizeof mp) == 0, "[-0.0] 2:4 mask differs from the +0.0 one");
        }
    }

    /* subnormals and 1e38-sized values: the masks of the same values scaled by 2^100 /
       2^-100 into the normal range (scaling by a power of two is exact, and the solver
       divides by the block max) */
    for (which = 0; which < 2; which++) {
        const char *row = which == 0 ? "subnormals" : "values near FLT_MAX (1e38)";
        float x[R * C], scaled[R * C];
        uint8_t ms[R * C];
        int mi;
        for (k = 0; k < R * C; k++) {
            const float mag = (float)(k * 2654435761u % 1000u + 1u);
            x[k] = which == 0 ? mag * 1e-45f * (k % 2 ? 1.0f : -1.0f) : (k % 2 ? 3.3e38f : -3.3e38f) * (mag / 1000.0f);
            scaled[k] = which == 0 ? ldexpf(x[k], 100) : ldexpf(x[k], -100);
        }
        expect_defined(row, x, R, C, C, 8, 16, g_mask);
        expect_defined(row, x, R, C, C, 2, 4, g_mask);
        expect_defined(row, x, R, C, C, 3, 4, g_mask);
        for (mi = 0; mi < 12; mi++) {   /* 8:16, 2:4 and 1:4 */
            static const int nm[3][2] = {{8, 16}, {2, 4}, {1, 4}};
            tsenor_options om = make_opt(nm[mi / 4][0], nm[mi / 4][1], k_methods[mi % 4]);
            tsenor_mask_f32(x, R, C, C, g_mask, C, &om, NULL);
            tsenor_mask_f32(scaled, R, C, C, ms, C, &om, NULL);
            EXPECT(memcmp(ms, g_mask, sizeof ms) == 0, "[%s] %s %d:%d: mask differs from the rescaled input's", row,
                   k_method_names[mi % 4], om.n, om.m);
        }
    }

    /* all zeros, all ties: defined, valid, deterministic */
    {
        float z[R * C], t[R * C];
        for (k = 0; k < R * C; k++) { z[k] = 0.0f; t[k] = k % 2 ? 0.25f : -0.25f; }
        expect_defined("all zeros", z, R, C, C, 8, 16, g_mask);
        expect_defined("all zeros", z, R, C, C, 2, 4, g_mask);
        expect_defined("all ties", t, R, C, C, 8, 16, g_mask);
        expect_defined("all ties", t, R, C, C, 2, 4, g_mask);
    }

    /* 1x1; rows or cols < m: a zero-padded partial block, rows/columns keep at most n */
    {
        const float one = -2.5f;
        uint8_t m1 = 7;
        int mi, p;
        expect_defined("1x1", &one, 1, 1, 1, 1, 2, &m1);
        expect_defined("1x1", &one, 1, 1, 1, 8, 16, &m1);
        expect_defined("1x1", &one, 1, 1, 1, 2, 4, &m1);
        for (mi = 0; mi < 4; mi++)
            for (p = 0; p < 3; p++) {
                tsenor_options o1 = make_opt(p == 2 ? 1 : p ? 8 : 1, p == 2 ? 4 : p ? 16 : 2, k_methods[mi]);
                m1 = 7;
                EXPECT(tsenor_mask_f32(&one, 1, 1, 1, &m1, 1, &o1, NULL) == TSENOR_OK && m1 == 1,
                       "[1x1] %s %d:%d keeps the only weight (mask %d)", k_method_names[mi], o1.n, o1.m, m1);
            }
        expect_defined("rows or cols < m", g_w, 3, C, C, 8, 16, g_mask);
        expect_defined("rows or cols < m", g_w, R, 5, C, 8, 16, g_mask);
        expect_defined("rows or cols < m", g_w, 7, 9, C, 8, 16, g_mask);
        expect_defined("rows or cols < m", g_w, 3, C, C, 2, 4, g_mask);
        expect_defined("rows or cols < m", g_w, R, 3, C, 3, 4, g_mask);
        expect_defined("rows or cols < m", g_w, 2, 3, C, 1, 4, g_mask);
    }

    /* the argument errors */
    o = make_opt(8, 16, TSENOR_METHOD_DEFAULT);
    fresh_mask();
    expect_error("ld < cols", tsenor_mask_f32(g_w, R, C, C - 1, g_mask, C, &o, NULL), TSENOR_ERR_INVALID_ARGUMENT);
    expect_error("mask_ld < cols", tsenor_mask_f32(g_w, R, C, C, g_mask, C - 1, &o, NULL), TSENOR_ERR_INVALID_ARGUMENT);
    {
        tsenor_options bad = make_opt(0, 16, TSENOR_METHOD_DEFAULT);
        expect_error("n = 0", tsenor_mask_f32(g_w, R, C, C, g_mask, C, &bad, NULL), TSENOR_ERR_INVALID_ARGUMENT);
        bad = make_opt(16, 16, TSENOR_METHOD_DEFAULT);
        expect_error("n = m", tsenor_mask_f32(g_w, R, C, C, g_mask, C, &bad, NULL), TSENOR_ERR_INVALID_ARGUMENT);
        bad = make_opt(2, TSENOR_MAX_M + 1, TSENOR_METHOD_DEFAULT);
        expect_error("m > TSENOR_MAX_M", tsenor_mask_f32(g_w, R, C, C, g_mask, C, &bad, NULL), TSENOR_ERR_INVALID_ARGUMENT);
        bad = make_opt(2, TSENOR_MAX_M, TSENOR_METHOD_DEFAULT);   /* the largest m is accepted */
        EXPECT(tsenor_mask_f32(g_w, R, C, C, g_mask, C, &bad, NULL) == TSENOR_OK, "[m > TSENOR_MAX_M] m = TSENOR_MAX_M refused");
        fresh_mask();
    }
    expect_error("rows x ld overflows size_t",
                 tsenor_mask_f32(g_w, (size_t)1 << 33, (size_t)1 << 31, (size_t)1 << 33, g_mask, (size_t)1 << 31, &o, NULL),
                 TSENOR_ERR_INVALID_ARGUMENT);
    expect_error("rows x ld overflows size_t", tsenor_mask_f32(g_w, 2, SIZE_MAX / 2, SIZE_MAX / 2, g_mask, SIZE_MAX / 2, &o, NULL),
                 TSENOR_ERR_INVALID_ARGUMENT);
    expect_error("mask aliases the input",
                 tsenor_mask_f32(g_w, R, C, C, (uint8_t *)g_w + R * C, C, &o, NULL), TSENOR_ERR_INVALID_ARGUMENT);
    {   /* the aliased call must not have written into g_w either */
        float copy[R * C];
        memcpy(copy, g_w, sizeof copy);
        tsenor_mask_f32(g_w, R, C, C, (uint8_t *)g_w, C, &o, NULL);
        EXPECT(memcmp(copy, g_w, sizeof copy) == 0, "[mask aliases the input] the input was written");
    }
    expect_error("NULL pointer, rows or cols = 0", tsenor_mask_f32(NULL, R, C, C, g_mask, C, &o, NULL), TSENOR_ERR_INVALID_ARGUMENT);
    expect_error("NULL pointer, rows or cols = 0", tsenor_mask_f32(g_w, R, C, C, g_mask, C, NULL, NULL), TSENOR_ERR_INVALID_ARGUMENT);
    expect_error("NULL pointer, rows or cols = 0", tsenor_mask_f32(g_w, 0, C, C, g_mask, C, &o, NULL), TSENOR_ERR_INVALID_ARGUMENT);
    expect_error("NULL pointer, rows or cols = 0", tsenor_mask_f32(g_w, R, 0, C, g_mask, C, &o, NULL), TSENOR_ERR_INVALID_ARGUMENT);
    EXPECT(tsenor_mask_f32(g_w, R, C, C, NULL, C, &o, NULL) == TSENOR_ERR_INVALID_ARGUMENT, "[NULL pointer] mask NULL");
}

/* ==================================================================================
   2. allocation failure: the k-th allocation of a call fails, for every k
   ================================================================================== */
static void test_allocation_failures(void)
{
    const size_t rows = 40, cols = 56;   /* edge blocks at 16 and 32 */
    float *w = (float *)xmalloc(rows * cols * 4);
    uint16_t *h = (uint16_t *)xmalloc(rows * cols * 2);
    uint8_t *mask = (uint8_t *)xmalloc(rows * cols), *sentinel = (uint8_t *)xmalloc(rows * cols);
    static const int pats[3][2] = {{2, 4}, {8, 16}, {16, 32}};
    size_t k, tried = 0;
    int mi, p, dt, th;
    wl_fill(w, rows, cols, cols, WL_STUDENT_T3, 5);
    for (k = 0; k < rows * cols; k++) { h[k] = to_bf16(w[k]); sentinel[k] = (uint8_t)(k * 13 + 5); }
    for (mi = 0; mi < 4; mi++)
        for (p = 0; p < 3; p++)
            for (dt = 0; dt < 3; dt += 2)       /* f32 and bf16 */
                for (th = 1; th <= 2; th++) {
                    tsenor_options o = make_opt(pats[p][0], pats[p][1], k_methods[mi]);
                    const void *in = dt == DT_F32 ? (const void *)w : (const void *)h;
                    size_t calls, fail;
                    tsenor_status s;
                    o.threads = th;
                    g_alloc_calls = 0;
                    g_alloc_fail_at = 0;
                    s = call((dtype)dt, in, rows, cols, cols, mask, cols, &o);
                    calls = g_alloc_calls;
                    EXPECT(s == TSENOR_OK && g_alloc_live == 0, "%s %d:%d: clean run (status %d, %zu live)",
                           k_method_names[mi], pats[p][0], pats[p][1], (int)s, g_alloc_live);
                    EXPECT(calls >= 1, "%s: a call that allocates nothing cannot be tested", k_method_names[mi]);
                    for (fail = 1; fail <= calls; fail++) {
                        memcpy(mask, sentinel, rows * cols);
                        g_alloc_calls = 0;
                        g_alloc_fail_at = fail;
                        s = call((dtype)dt, in, rows, cols, cols, mask, cols, &o);
                        EXPECT(s == TSENOR_ERR_OUT_OF_MEMORY, "%s %d:%d threads %d: allocation %zu of %zu failed: status %d",
                               k_method_names[mi], pats[p][0], pats[p][1], th, fail, calls, (int)s);
                        EXPECT(g_alloc_live == 0, "%s: allocation %zu failed: %zu blocks leaked", k_method_names[mi], fail,
                               g_alloc_live);
                        EXPECT(memcmp(mask, sentinel, rows * cols) == 0, "%s: allocation %zu failed: mask written",
                               k_method_names[mi], fail);
                        tried++;
                    }
                    g_alloc_fail_at = 0;
                }
    printf("allocation failures injected: %zu (every allocation of every call)\n", tried);
    free(w); free(h); free(mask); free(sentinel);
}

/* ==================================================================================
   3. concurrency: many threads at once, the masks of serial calls
   ================================================================================== */
#define JOBS 24
#define WORKERS 8
typedef struct job {
    float w[64 * 80];
    uint8_t serial[64 * 80], parallel[64 * 80];
    size_t rows, cols;
    tsenor_options o;
    tsenor_status status;
} job;
static job g_jobs[JOBS];
static int g_next_job;
static pthread_mutex_t g_job_lock = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        job *j;
        int take;
        pthread_mutex_lock(&g_job_lock);
        take = g_next_job++;
        pthread_mutex_unlock(&g_job_lock);
        if (take >= JOBS) return NULL;
        j = &g_jobs[take];
        j->status = tsenor_mask_f32(j->w, j->rows, j->cols, j->cols, j->parallel, j->cols, &j->o, NULL);
    }
}

static void test_concurrency(void)
{
    pthread_t t[WORKERS];
    int k, started = 0;
    for (k = 0; k < JOBS; k++) {
        static const int pats[3][2] = {{2, 4}, {8, 16}, {16, 32}};
        job *j = &g_jobs[k];
        j->rows = 64;
        j->cols = k % 2 ? 80 : 64;
        j->o = make_opt(pats[k % 3][0], pats[k % 3][1], k_methods[k % 4]);
        j->o.threads = k % 5 == 0 ? 2 : 1;   /* some calls use OpenMP inside (where built with it) */
        wl_fill(j->w, j->rows, j->cols, j->cols, (wl_dist)(k % WL_DIST_COUNT), 100 + (uint64_t)k);
        EXPECT(tsenor_mask_f32(j->w, j->rows, j->cols, j->cols, j->serial, j->cols, &j->o, NULL) == TSENOR_OK, "serial job %d", k);
    }
    g_next_job = 0;
    for (k = 0; k < WORKERS; k++)
        if (pthread_create(&t[k], NULL, worker, NULL) == 0) started++;
    EXPECT(started == WORKERS, "started %d of %d threads", started, WORKERS);
    for (k = 0; k < started; k++) pthread_join(t[k], NULL);
    for (k = 0; k < JOBS; k++) {
        job *j = &g_jobs[k];
        EXPECT(j->status == TSENOR_OK, "concurrent job %d: status %d", k, (int)j->status);
        EXPECT(memcmp(j->serial, j->parallel, j->rows * j->cols) == 0, "concurrent job %d (%s %d:%d): mask differs from serial", k,
               k_method_names[k % 4], j->o.n, j->o.m);
    }
}

int main(void)
{
    test_bad_input_table();
    test_allocation_failures();
    test_concurrency();
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
