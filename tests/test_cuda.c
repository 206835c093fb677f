/* test_cuda.c - `make test-cuda`: the CUDA backend against the documented semantics and the CPU.
   Built with TSENOR_CUDA, so tsenor_mask_* run on the GPU; tsenor_cpu_mask_* is the
   reference. Checks: valid masks for every dtype, method and pattern (edge blocks
   included), GREEDY/ROWWISE masks identical to the CPU's, TSENOR objective within 0.01%
   of the CPU's and within the quality bar of EXACT, chunked = unchunked, the device-
   pointer entry points, bad input (status, mask untouched), EXACT with m > 32 on the
   CPU; TSENOR with m in (32, 64] keeping the CPU's magnitude; n:4 (TSENOR
   and EXACT) bit for bit the CPU's masks; EXACT at every other m keeping what the CPU's
   EXACT keeps (1e-6 relative) with its dual certificate checked entry by entry; GREEDY
   and ROWWISE up to m = 64 bit for bit the CPU's.
   Without a GPU it prints why and exits 0 (CI compiles this but has no GPU). */
#define _POSIX_C_SOURCE 200112L   /* setenv, pthreads */
#define TSENOR_CUDA
#define TSENOR_IMPLEMENTATION
#include "../tsenor.h"
#include "workloads.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static int g_quick;   /* TSENOR_TEST_QUICK: fewer cases, for runs under compute-sanitizer */
static int g_exact_only;   /* TSENOR_TEST_EXACT_ONLY: the EXACT tests and the m > 32 kernels' alone */
static int g_wide_only;    /* TSENOR_TEST_WIDE_ONLY: one small case of each m > 32 kernel (racecheck) */

static const char *mname(tsenor_method m)
{
    return m == TSENOR_METHOD_TSENOR ? "tsenor" : m == TSENOR_METHOD_EXACT ? "exact"
         : m == TSENOR_METHOD_GREEDY ? "greedy" : "rowwise";
}

static uint16_t f32_to_f16(float f)    /* normal range only (test data is |w| < 60000) */
{
    uint32_t u, sign, e, mant;
    memcpy(&u, &f, 4);
    sign = (u >> 16) & 0x8000u;
    e = (u >> 23) & 0xffu;
    mant = u & 0x7fffffu;
    if (e < 113) return (uint16_t)sign;                     /* flush tiny values to 0 */
    return (uint16_t)(sign | ((e - 112) << 10) | (mant >> 13));
}

/* Every pattern and method on a shape with edge blocks: valid, and the same as the CPU
   (masks identical for GREEDY, ROWWISE and n:4, objective within 0.01% for TSENOR at
   other m). */
static void test_agreement_with_cpu(void)
{
    static const int pats[][2] = {{2, 4}, {4, 8}, {8, 16}, {16, 32}, {1, 3}, {3, 5}, {5, 12}, {7, 24}, {2, 32}};
    size_t p;
    for (p = 0; p < sizeof pats / sizeof *pats; p++) {
        const int n = pats[p][0], m = pats[p][1];
        const size_t rows = (size_t)(9 * m + 3), cols = (size_t)(7 * m + 1);
        float *w = (float *)xmalloc(rows * cols * 4);
        uint8_t *g = (uint8_t *)xmalloc(rows * cols), *c = (uint8_t *)xmalloc(rows * cols);
        int meth, d;
        if (g_quick && m != 4 && m != 8 && m != 16 && m != 24) continue;
        for (d = 0; d < (g_quick ? 1 : WL_DIST_COUNT); d++) {
            wl_fill(w, rows, cols, cols, (wl_dist)d, 31 + (uint64_t)(p * 3 + d));
            for (meth = TSENOR_METHOD_TSENOR; meth <= TSENOR_METHOD_ROWWISE; meth++) {
                tsenor_options o = make_opt(n, m, (tsenor_method)meth);
                tsenor_report rg, rc;
                tsenor_status sg, sc;
                memset(g, 7, rows * cols);
                sg = tsenor_mask_f32(w, rows, cols, cols, g, cols, &o, &rg);
                sc = tsenor_cpu_mask_f32(w, rows, cols, cols, c, cols, &o, &rc);
                EXPECT(sg == TSENOR_OK && sc == TSENOR_OK, "%s %d:%d: status gpu %d cpu %d (%s)", mname(o.method), n, m,
                       sg, sc, tsenor_cuda_last_error());
                if (sg != TSENOR_OK) continue;
                EXPECT(strcmp(rg.backend, "cuda") == 0, "backend %s", rg.backend);
                EXPECT(tsenor_check(g, rows, cols, cols, n, m, meth != TSENOR_METHOD_ROWWISE) == TSENOR_OK,
                       "%s %d:%d dist %d: GPU mask invalid", mname(o.method), n, m, d);
                EXPECT(fabs(rg.total - rc.total) <= 1e-6 * rc.total, "%s %d:%d: total %.9g vs cpu %.9g", mname(o.method),
                       n, m, rg.total, rc.total);
                if (meth == TSENOR_METHOD_TSENOR && m != 4)
                    EXPECT(fabs(rg.kept - rc.kept) <= 1e-4 * rc.kept, "tsenor %d:%d dist %d: kept %.9g vs cpu %.9g (%.5f%%)",
                           n, m, d, rg.kept, rc.kept, 100.0 * (rg.kept - rc.kept) / rc.kept);
                else if (meth == TSENOR_METHOD_EXACT && m != 4) {   /* optima may tie: the kept magnitude */
                    const double kg = kept_sum(w, rows, cols, cols, g, cols), kc = kept_sum(w, rows, cols, cols, c, cols);
                    EXPECT(fabs(kg - kc) <= 1e-6 * kc, "exact %d:%d dist %d: kept %.12g vs cpu %.12g", n, m, d, kg, kc);
                } else
                    EXPECT(memcmp(g, c, rows * cols) == 0, "%s %d:%d dist %d: GPU mask differs from the CPU's",
                           mname(o.method), n, m, d);
            }
        }
        free(w); free(g); free(c);
    }
}

/* n:4 (TSENOR and EXACT, m = 4) on the GPU is the CPU's search bit for bit: every n,
   dtype and kind of value (random, quantised with many ties, zeros, all equal, huge and
   subnormal, sparse), edge blocks, strided and unaligned input and mask, host and device
   pointers, forced chunks; the report's sums agree to 1e-9. */
static float n4_value(int kind, wl_rng *r, size_t k)
{
    switch (kind) {
    case 0: return (float)wl_normal(r);
    case 1: return (float)((int)(wl_next(r) % 7) - 3) * 0.25f;
    case 2: return 0.0f;
    case 3: return k % 2 ? 0.75f : -0.75f;
    case 4: return (float)(wl_next(r) % 1000 + 1) * (k % 3 ? 3.3e35f : 1e-42f);
    default: return (float)(wl_next(r) % 3) * (float)wl_normal(r);
    }
}

static void test_n4_bit_identical(void)
{
    static const char *kinds[6] = {"random", "quantised", "zeros", "all equal", "huge+subnormal", "sparse"};
    static const size_t shapes[3][4] = {{37, 50, 53, 52}, {256, 320, 320, 320}, {130, 77, 81, 79}};   /* rows cols ld mask_ld */
    wl_rng r;
    int n, kind, dt, sh, meth;
    r.s = 808;
    for (sh = 0; sh < 3; sh++) {
        const size_t rows = shapes[sh][0], cols = shapes[sh][1], ld = shapes[sh][2], mld = shapes[sh][3];
        /* one element more: w + 1 is an unaligned start (the element-wise load path) */
        float *w = (float *)xmalloc((rows * ld + 1) * 4);
        uint16_t *h = (uint16_t *)xmalloc((rows * ld + 1) * 2);
        uint8_t *g = (uint8_t *)xmalloc(rows * mld), *c = (uint8_t *)xmalloc(rows * mld);
        void *dw = NULL, *dm = NULL;
        if (g_quick && sh == 1) { free(w); free(h); free(g); free(c); continue; }   /* quick: the edge and unaligned shapes */
        if (cudaMalloc(&dw, (rows * ld + 1) * 4) != cudaSuccess || cudaMalloc(&dm, rows * mld) != cudaSuccess) {
            EXPECT(0, "cudaMalloc failed");
            return;
        }
        for (kind = 0; kind < 6; kind++) {
            size_t k;
            if (g_quick && kind != 1 && kind != 4) continue;
            for (k = 0; k < rows * ld + 1; k++) w[k] = n4_value(kind, &r, k);
            for (dt = 0; dt < 3; dt++) {
                if (dt == 1 && kind == 4) continue;   /* f16 cannot hold these */
                for (k = 0; k < rows * ld + 1; k++) h[k] = dt == 1 ? f32_to_f16(w[k]) : wl_bf16(w[k]);
                for (n = 1; n <= 3; n++)
                    for (meth = 0; meth < 2; meth++) {
                        tsenor_options o = make_opt(n, 4, meth ? TSENOR_METHOD_EXACT : TSENOR_METHOD_TSENOR);
                        const int shift = sh == 2;   /* the third shape starts unaligned */
                        const void *in = dt == 0 ? (const void *)(w + shift) : (const void *)(h + shift);
                        const size_t es = dt == 0 ? 4 : 2;
                        tsenor_report rg, rc, rd;
                        tsenor_status sg, sc, sd;
                        size_t i, past = 0;
                        memset(g, 0xAB, rows * mld);
                        sg = tsenor_mask(in, (tsenor_dtype)dt, rows, cols, ld, g, mld, &o, &rg);
                        sc = dt == 0 ? tsenor_cpu_mask_f32((const float *)in, rows, cols, ld, c, mld, &o, &rc)
                           : dt == 1 ? tsenor_cpu_mask_f16((const uint16_t *)in, rows, cols, ld, c, mld, &o, &rc)
                                     : tsenor_cpu_mask_bf16((const uint16_t *)in, rows, cols, ld, c, mld, &o, &rc);
                        EXPECT(sg == TSENOR_OK && sc == TSENOR_OK, "n4 %d:4 %s %s: status gpu %d cpu %d (%s)", n,
                               kinds[kind], tsenor_dtype_string((tsenor_dtype)dt), sg, sc, tsenor_cuda_last_error());
                        if (sg != TSENOR_OK || sc != TSENOR_OK) continue;
                        EXPECT(strcmp(rg.backend, "cuda") == 0, "n4: backend %s", rg.backend);
                        for (i = 0; i < rows; i++) {
                            past += mld > cols && g[i * mld + cols] != 0xAB;
                            memset(g + i * mld + cols, 0xAB, mld - cols);   /* c's padding is unwritten too */
                            memset(c + i * mld + cols, 0xAB, mld - cols);
                        }
                        EXPECT(past == 0, "n4 %d:4: GPU wrote past cols in %zu rows", n, past);
                        EXPECT(memcmp(g, c, rows * mld) == 0, "n4 %d:4 %s %s %s %zux%zu: GPU mask differs from the CPU's", n,
                               mname(o.method), kinds[kind], tsenor_dtype_string((tsenor_dtype)dt), rows, cols);
                        EXPECT(fabs(rg.kept - rc.kept) <= 1e-9 * rc.kept && fabs(rg.total - rc.total) <= 1e-9 * rc.total,
                               "n4 %d:4 %s: report kept %.12g/%.12g total %.12g/%.12g", n, kinds[kind], rg.kept, rc.kept,
                               rg.total, rc.total);
                        /* device pointers: the same mask */
                        cudaMemcpy(dw, dt == 0 ? (const void *)w : (const void *)h, (rows * ld + 1) * es, cudaMemcpyHostToDevice);
                        cudaMemset(dm, 0xAB, rows * mld);
                        {
                            const void *din = (const char *)dw + (size_t)shift * es;
                            sd = dt == 0 ? tsenor_cuda_mask_f32_device((const float *)din, rows, cols, ld, (uint8_t *)dm, mld, &o, &rd, NULL)
                               : dt == 1 ? tsenor_cuda_mask_f16_device((const uint16_t *)din, rows, cols, ld, (uint8_t *)dm, mld, &o, &rd, NULL)
                                         : tsenor_cuda_mask_bf16_device((const uint16_t *)din, rows, cols, ld, (uint8_t *)dm, mld, &o, &rd, NULL);
                        }
                        EXPECT(sd == TSENOR_OK, "n4 %d:4 device: status %d (%s)", n, sd, tsenor_cuda_last_error());
                        cudaMemcpy(g, dm, rows * mld, cudaMemcpyDeviceToHost);
                        for (i = 0; i < rows; i++) {
                            past += mld > cols && g[i * mld + cols] != 0xAB;
                            memset(g + i * mld + cols, 0xAB, mld - cols);
                        }
                        EXPECT(past == 0 && memcmp(g, c, rows * mld) == 0, "n4 %d:4 %s %s device pointers: mask differs", n,
                               kinds[kind], tsenor_dtype_string((tsenor_dtype)dt));
                    }
            }
        }
        cudaFree(dw);
        cudaFree(dm);
        free(w); free(h); free(g); free(c);
    }
    {   /* forced chunks (a few block rows each) and NaN in the last chunk */
        const size_t rows = 4 * 61 + 3, cols = 300;
        float *w = (float *)xmalloc(rows * cols * 4);
        uint8_t *a = (uint8_t *)xmalloc(rows * cols), *b = (uint8_t *)xmalloc(rows * cols);
        tsenor_options o = make_opt(2, 4, TSENOR_METHOD_EXACT);
        tsenor_report ra, rb;
        wl_fill(w, rows, cols, cols, WL_OUTLIER, 15);
        EXPECT(tsenor_mask_f32(w, rows, cols, cols, a, cols, &o, &ra) == TSENOR_OK, "n4 unchunked");
        setenv("TSENOR_CUDA_CHUNK_BYTES", "20000", 1);
        EXPECT(tsenor_mask_f32(w, rows, cols, cols, b, cols, &o, &rb) == TSENOR_OK, "n4 chunked");
        EXPECT(memcmp(a, b, rows * cols) == 0 && fabs(ra.kept - rb.kept) <= 1e-9 * ra.kept, "n4 chunked differs");
        w[(rows - 1) * cols + 5] = NAN;
        memcpy(b, a, rows * cols);
        EXPECT(tsenor_mask_f32(w, rows, cols, cols, b, cols, &o, NULL) == TSENOR_ERR_NONFINITE_INPUT, "n4 chunked NaN");
        unsetenv("TSENOR_CUDA_CHUNK_BYTES");
        EXPECT(tsenor_mask_f32(w, rows, cols, cols, b, cols, &o, NULL) == TSENOR_ERR_NONFINITE_INPUT, "n4 NaN");
        EXPECT(memcmp(a, b, rows * cols) == 0, "n4: mask changed by a failed call");
        free(w); free(a); free(b);
    }
}

/* TSENOR on the GPU holds the CPU's quality bar against EXACT (512 x 512). */
static void test_quality_bar(void)
{
    static const int pats[][2] = {{2, 4}, {4, 8}, {8, 16}, {16, 32}};
    const size_t rows = 512, cols = 512;
    float *w = (float *)xmalloc(rows * cols * 4);
    uint8_t *g = (uint8_t *)xmalloc(rows * cols), *x = (uint8_t *)xmalloc(rows * cols);
    size_t p;
    int d;
    printf("quality on the GPU (512x512, default options; relative error vs exact)\n");
    for (p = 0; p < sizeof pats / sizeof *pats; p++)
        for (d = 0; d < WL_DIST_COUNT; d++) {
            const int n = pats[p][0], m = pats[p][1];
            tsenor_options o = make_opt(n, m, TSENOR_METHOD_TSENOR), ox = make_opt(n, m, TSENOR_METHOD_EXACT);
            wl_error e;
            wl_fill(w, rows, cols, cols, (wl_dist)d, 500 + (uint64_t)(p * 3 + d));
            EXPECT(tsenor_mask_f32(w, rows, cols, cols, g, cols, &o, NULL) == TSENOR_OK, "gpu tsenor failed");
            EXPECT(tsenor_cpu_mask_f32(w, rows, cols, cols, x, cols, &ox, NULL) == TSENOR_OK, "cpu exact failed");
            e = wl_relative_error(w, rows, cols, cols, g, x, cols, m);
            printf("  %2d:%-3d %-13s %8.4f%% mean-over-blocks %8.4f%% worst %7.3f%%\n", n, m, wl_dist_name((wl_dist)d),
                   100 * e.matrix, 100 * e.block_mean, 100 * e.worst_block);
            EXPECT(e.matrix >= -1e-12 && e.matrix <= 0.005 && e.block_mean <= 0.005 && e.worst_block <= 0.05,
                   "%d:%d %s: error %.4f%% / mean %.4f%% / worst %.4f%% over the bar", n, m, wl_dist_name((wl_dist)d),
                   100 * e.matrix, 100 * e.block_mean, 100 * e.worst_block);
        }
    free(w); free(g); free(x);
}

/* f16 and bf16 inputs: same |w| as the CPU sees, so GREEDY masks are identical. */
static void test_half_dtypes(void)
{
    const size_t rows = 200, cols = 264;
    float *w = (float *)xmalloc(rows * cols * 4);
    uint16_t *h = (uint16_t *)xmalloc(rows * cols * 2), *b = (uint16_t *)xmalloc(rows * cols * 2);
    uint8_t *g = (uint8_t *)xmalloc(rows * cols), *c = (uint8_t *)xmalloc(rows * cols);
    size_t k;
    int meth;
    wl_fill(w, rows, cols, cols, WL_STUDENT_T3, 77);
    for (k = 0; k < rows * cols; k++) { h[k] = f32_to_f16(w[k]); b[k] = wl_bf16(w[k]); }
    for (meth = TSENOR_METHOD_TSENOR; meth <= TSENOR_METHOD_ROWWISE; meth++) {
        tsenor_options o = make_opt(8, 16, (tsenor_method)meth);
        tsenor_report rg, rc;
        if (meth == TSENOR_METHOD_EXACT) continue;
        EXPECT(tsenor_mask_f16(h, rows, cols, cols, g, cols, &o, &rg) == TSENOR_OK, "f16 gpu");
        EXPECT(tsenor_cpu_mask_f16(h, rows, cols, cols, c, cols, &o, &rc) == TSENOR_OK, "f16 cpu");
        EXPECT(meth == TSENOR_METHOD_TSENOR ? fabs(rg.kept - rc.kept) <= 1e-4 * rc.kept : memcmp(g, c, rows * cols) == 0,
               "f16 %s differs from the CPU", mname((tsenor_method)meth));
        EXPECT(tsenor_mask_bf16(b, rows, cols, cols, g, cols, &o, &rg) == TSENOR_OK, "bf16 gpu");
        EXPECT(tsenor_cpu_mask_bf16(b, rows, cols, cols, c, cols, &o, &rc) == TSENOR_OK, "bf16 cpu");
        EXPECT(meth == TSENOR_METHOD_TSENOR ? fabs(rg.kept - rc.kept) <= 1e-4 * rc.kept : memcmp(g, c, rows * cols) == 0,
               "bf16 %s differs from the CPU", mname((tsenor_method)meth));
    }
    free(w); free(h); free(b); free(g); free(c);
}

/* Forced chunks of a few block rows give the same result; NaN in the last chunk is
   reported with the mask untouched; strided input and mask (ld, mask_ld > cols). */
static void test_chunks_and_strides(void)
{
    const size_t rows = 16 * 37 + 5, cols = 300, ld = 311, mld = 305;
    float *w = (float *)xmalloc(rows * ld * 4);
    uint8_t *a = (uint8_t *)xmalloc(rows * mld), *b = (uint8_t *)xmalloc(rows * mld), *c = (uint8_t *)xmalloc(rows * mld);
    tsenor_options og = make_opt(8, 16, TSENOR_METHOD_GREEDY), ot = make_opt(8, 16, TSENOR_METHOD_TSENOR);
    tsenor_report ra, rb;
    size_t i;
    wl_fill(w, rows, cols, ld, WL_GAUSSIAN, 5);
    memset(a, 9, rows * mld);
    memset(b, 9, rows * mld);
    EXPECT(tsenor_mask_f32(w, rows, cols, ld, a, mld, &og, &ra) == TSENOR_OK, "unchunked greedy");
    setenv("TSENOR_CUDA_CHUNK_BYTES", "20000", 1);   /* ~4 block rows per chunk */
    EXPECT(tsenor_mask_f32(w, rows, cols, ld, b, mld, &og, &rb) == TSENOR_OK, "chunked greedy");
    EXPECT(memcmp(a, b, rows * mld) == 0, "chunked greedy differs from unchunked");
    EXPECT(fabs(ra.kept - rb.kept) <= 1e-9 * ra.kept, "chunked kept %.12g vs %.12g", rb.kept, ra.kept);
    for (i = 0; i < rows; i++) EXPECT(b[i * mld + cols] == 9, "row %zu: byte past cols written", i);
    EXPECT(tsenor_mask_f32(w, rows, cols, ld, b, mld, &ot, &rb) == TSENOR_OK, "chunked tsenor");
    unsetenv("TSENOR_CUDA_CHUNK_BYTES");
    EXPECT(tsenor_mask_f32(w, rows, cols, ld, a, mld, &ot, &ra) == TSENOR_OK, "unchunked tsenor");
    EXPECT(fabs(ra.kept - rb.kept) <= 1e-4 * ra.kept, "chunked tsenor kept %.9g vs %.9g", rb.kept, ra.kept);
    EXPECT(tsenor_check(b, rows, cols, mld, 8, 16, 1) == TSENOR_OK, "chunked tsenor mask invalid");
    {   /* EXACT: chunked = unchunked bit for bit (every block is solved on its own) */
        tsenor_options ox = make_opt(8, 16, TSENOR_METHOD_EXACT);
        setenv("TSENOR_CUDA_CHUNK_BYTES", "20000", 1);
        EXPECT(tsenor_mask_f32(w, rows, cols, ld, b, mld, &ox, &rb) == TSENOR_OK, "chunked exact");
        unsetenv("TSENOR_CUDA_CHUNK_BYTES");
        EXPECT(tsenor_mask_f32(w, rows, cols, ld, a, mld, &ox, &ra) == TSENOR_OK, "unchunked exact");
        EXPECT(memcmp(a, b, rows * mld) == 0, "chunked exact differs from unchunked");
        EXPECT(fabs(ra.kept - rb.kept) <= 1e-9 * ra.kept, "chunked exact kept %.12g vs %.12g", rb.kept, ra.kept);
        EXPECT(tsenor_check(b, rows, cols, mld, 8, 16, 1) == TSENOR_OK, "chunked exact mask invalid");
    }
    /* NaN in the last chunk: nothing written, chunked or not */
    w[(rows - 2) * ld + 7] = NAN;
    memcpy(c, b, rows * mld);
    setenv("TSENOR_CUDA_CHUNK_BYTES", "20000", 1);
    EXPECT(tsenor_mask_f32(w, rows, cols, ld, b, mld, &ot, NULL) == TSENOR_ERR_NONFINITE_INPUT, "chunked NaN status");
    unsetenv("TSENOR_CUDA_CHUNK_BYTES");
    EXPECT(tsenor_mask_f32(w, rows, cols, ld, b, mld, &ot, NULL) == TSENOR_ERR_NONFINITE_INPUT, "NaN status");
    EXPECT(memcmp(b, c, rows * mld) == 0, "mask changed by a failed call");
    free(w); free(a); free(b); free(c);
}

/* EXACT on the GPU (every m but 4): the CPU's EXACT kept magnitude to 1e-6 relative (the
   masks may differ where optima tie), a valid mask, and the dual certificate: with the
   potentials u, v of every block, |w_ij| - u_i - v_j >= -tol on kept entries and <= tol on
   pruned ones (tol = 1e-9 x the block's max |w|), which proves no selection keeps more.
   Gaussian, heavy-tailed, outlier-column, quantised (many ties and zeros) and sparse
   matrices; edge blocks on both sides; strided input and mask; the certificate call's
   mask equals tsenor_mask_f32's; device pointers give the same mask. */
static void exact_fill(float *w, size_t rows, size_t cols, size_t ld, int kind, uint64_t seed)
{
    wl_rng r;
    size_t i, j;
    if (kind < 3) { wl_fill(w, rows, cols, ld, (wl_dist)kind, seed); return; }
    r.s = seed;
    for (i = 0; i < rows; i++)
        for (j = 0; j < cols; j++)
            w[i * ld + j] = kind == 3 ? (float)((int)(wl_next(&r) % 7) - 3) * 0.25f        /* quantised: ties, zeros */
                                      : (float)(wl_next(&r) % 4 == 0) * (float)wl_normal(&r);   /* sparse */
}

static void test_exact_certified(void)
{
    static const int pats[][2] = {{4, 8}, {8, 16}, {7, 24}, {16, 32}, {3, 5}, {1, 3}, {2, 32}};
    static const char *kinds[5] = {"gaussian", "student-t3", "outlier", "quantised", "sparse"};
    size_t p;
    for (p = 0; p < sizeof pats / sizeof *pats; p++) {
        const int n = pats[p][0], m = pats[p][1];
        const size_t rows = (size_t)((g_quick ? 2 : 6) * m + 5), cols = (size_t)((g_quick ? 3 : 5) * m + 3);
        const size_t ld = cols + 7, mld = cols + 3, bc = (cols + m - 1) / m, blocks = ((rows + m - 1) / m) * bc;
        float *w = (float *)xmalloc(rows * ld * 4);
        uint8_t *g = (uint8_t *)xmalloc(rows * mld), *c = (uint8_t *)xmalloc(rows * mld), *h = (uint8_t *)xmalloc(rows * mld);
        double *pot = (double *)xmalloc(blocks * 2 * (size_t)m * sizeof(double));
        tsenor_options o = make_opt(n, m, TSENOR_METHOD_EXACT);
        int kind;
        if (g_quick && p >= 4) { free(w); free(g); free(c); free(h); free(pot); continue; }
        for (kind = 0; kind < 5; kind++) {
            size_t b, violations = 0, past = 0, i;
            double kg, kc, worst = 0.0;
            tsenor_status s;
            if (g_quick && kind != 2 && kind != 3) continue;
            exact_fill(w, rows, cols, ld, kind, 4242 + 10 * (uint64_t)p + (uint64_t)kind);
            memset(g, 0xCD, rows * mld);
            s = tsenor_cuda_exact_certificate_f32(w, rows, cols, ld, g, mld, &o, pot);
            EXPECT(s == TSENOR_OK, "exact %d:%d %s: certificate status %d (%s)", n, m, kinds[kind], s, tsenor_cuda_last_error());
            if (s != TSENOR_OK) continue;
            for (i = 0; i < rows; i++) past += g[i * mld + cols] != 0xCD;
            EXPECT(past == 0, "exact %d:%d %s: %zu bytes past cols written", n, m, kinds[kind], past);
            EXPECT(tsenor_check(g, rows, cols, mld, n, m, 1) == TSENOR_OK, "exact %d:%d %s: GPU mask invalid", n, m, kinds[kind]);
            EXPECT(tsenor_cpu_mask_f32(w, rows, cols, ld, c, mld, &o, NULL) == TSENOR_OK, "cpu exact");
            kg = kept_sum(w, rows, cols, ld, g, mld);
            kc = kept_sum(w, rows, cols, ld, c, mld);
            EXPECT(fabs(kg - kc) <= 1e-6 * kc, "exact %d:%d %s: kept %.12g vs cpu %.12g (%.3g relative)", n, m, kinds[kind], kg,
                   kc, kc > 0.0 ? (kg - kc) / kc : kg);
            for (b = 0; b < blocks; b++) {   /* the certificate, entry by entry */
                const size_t r0 = (b / bc) * (size_t)m, c0 = (b % bc) * (size_t)m;
                const int br = rows - r0 < (size_t)m ? (int)(rows - r0) : m, bcl = cols - c0 < (size_t)m ? (int)(cols - c0) : m;
                const double *u = pot + b * 2 * (size_t)m, *v = u + m;
                double amax = 0.0, tol;
                int ii, jj;
                for (ii = 0; ii < br; ii++)
                    for (jj = 0; jj < bcl; jj++) amax = fmax(amax, fabs((double)w[(r0 + ii) * ld + c0 + jj]));
                tol = 1e-9 * amax;
                for (ii = 0; ii < m; ii++) {
                    if (!(fabs(u[ii]) < HUGE_VAL) || !(fabs(v[ii]) < HUGE_VAL)) violations++;
                }
                for (ii = 0; ii < br; ii++)
                    for (jj = 0; jj < bcl; jj++) {
                        const double a = fabs((double)w[(r0 + ii) * ld + c0 + jj]), rc = a - u[ii] - v[jj];
                        const double off = g[(r0 + ii) * mld + c0 + jj] ? -rc : rc;   /* > tol: violated */
                        if (off > tol) { violations++; if (amax > 0.0 && off / amax > worst) worst = off / amax; }
                    }
            }
            EXPECT(violations == 0, "exact %d:%d %s: dual certificate violated at %zu entries (worst %.3g x block max)", n, m,
                   kinds[kind], violations, worst);
            memset(h, 0xCD, rows * mld);
            EXPECT(tsenor_mask_f32(w, rows, cols, ld, h, mld, &o, NULL) == TSENOR_OK, "exact %d:%d: host call", n, m);
            EXPECT(memcmp(g, h, rows * mld) == 0, "exact %d:%d %s: certificate call's mask differs from tsenor_mask_f32's", n, m,
                   kinds[kind]);
            if (kind == 3) {   /* device pointers, strided: the same mask */
                void *dw = NULL, *dm = NULL;
                if (cudaMalloc(&dw, rows * ld * 4) == cudaSuccess && cudaMalloc(&dm, rows * mld) == cudaSuccess) {
                    cudaMemcpy(dw, w, rows * ld * 4, cudaMemcpyHostToDevice);
                    cudaMemset(dm, 0xCD, rows * mld);
                    s = tsenor_cuda_mask_f32_device((const float *)dw, rows, cols, ld, (uint8_t *)dm, mld, &o, NULL, NULL);
                    EXPECT(s == TSENOR_OK, "exact %d:%d device call: %d (%s)", n, m, s, tsenor_cuda_last_error());
                    cudaMemcpy(c, dm, rows * mld, cudaMemcpyDeviceToHost);
                    EXPECT(memcmp(c, h, rows * mld) == 0, "exact %d:%d: device-pointer mask differs from host-pointer mask", n, m);
                } else {
                    EXPECT(0, "cudaMalloc failed");
                }
                cudaFree(dw);
                cudaFree(dm);
            }
        }
        free(w); free(g); free(c); free(h); free(pot);
    }
}

/* ROWWISE with m in (32, 64] on the GPU: the CPU's masks bit for bit, every dtype, edge
   groups, strided input and mask, host and device pointers; TSENOR at such m runs on the
   GPU, EXACT on the CPU, and each says so. */
static void test_rowwise_large_m(void)
{
    /* unsigned char: the sizes below are visibly small (GCC 13 otherwise warns that the
       memsets' rows * mld might wrap) */
    static const unsigned char pats[][2] = {{20, 48}, {32, 64}, {5, 33}, {1, 64}, {63, 64}};
    size_t p;
    for (p = 0; p < sizeof pats / sizeof *pats; p++) {
        const int n = pats[p][0], m = pats[p][1];
        const size_t rows = 37, cols = (size_t)(3 * m + 5), ld = cols + 9, mld = cols + 2;
        float *w = (float *)xmalloc(rows * ld * 4);
        uint16_t *h = (uint16_t *)xmalloc(rows * ld * 2);
        uint8_t *g = (uint8_t *)xmalloc(rows * mld), *c = (uint8_t *)xmalloc(rows * mld);
        void *dw = NULL, *dm = NULL;
        tsenor_options o = make_opt(n, m, TSENOR_METHOD_ROWWISE);
        int dt, ties;
        size_t k;
        if (g_quick && p >= 2) { free(w); free(h); free(g); free(c); continue; }
        for (ties = 0; ties < 2; ties++) {
            wl_fill(w, rows, cols, ld, WL_STUDENT_T3, 77 + (uint64_t)p + 10 * (uint64_t)ties);
            if (ties)
                for (k = 0; k < rows * ld; k++) w[k] = (float)((int)(w[k] * 2.0f)) * 0.5f;
            for (dt = 0; dt < 3; dt++) {
                tsenor_report rg;
                tsenor_status sg, sc;
                const void *in = dt == 0 ? (const void *)w : (const void *)h;
                for (k = 0; k < rows * ld; k++) h[k] = dt == 1 ? f32_to_f16(w[k]) : wl_bf16(w[k]);
                memset(g, 0x5A, rows * mld);
                memset(c, 0x5A, rows * mld);
                sg = tsenor_mask(in, (tsenor_dtype)dt, rows, cols, ld, g, mld, &o, &rg);
                sc = dt == 0 ? tsenor_cpu_mask_f32(w, rows, cols, ld, c, mld, &o, NULL)
                   : dt == 1 ? tsenor_cpu_mask_f16(h, rows, cols, ld, c, mld, &o, NULL)
                             : tsenor_cpu_mask_bf16(h, rows, cols, ld, c, mld, &o, NULL);
                EXPECT(sg == TSENOR_OK && sc == TSENOR_OK, "rowwise %d:%d dtype %d: status gpu %d cpu %d (%s)", n, m, dt, sg, sc,
                       tsenor_cuda_last_error());
                if (sg != TSENOR_OK) continue;
                EXPECT(strcmp(rg.backend, "cuda") == 0, "rowwise %d:%d: backend %s", n, m, rg.backend);
                EXPECT(memcmp(g, c, rows * mld) == 0, "rowwise %d:%d dtype %d ties %d: GPU mask differs from the CPU's", n, m, dt,
                       ties);
                EXPECT(tsenor_check(g, rows, cols, mld, n, m, 0) == TSENOR_OK, "rowwise %d:%d: mask invalid", n, m);
            }
        }
        if (cudaMalloc(&dw, rows * ld * 4) == cudaSuccess && cudaMalloc(&dm, rows * mld) == cudaSuccess) {
            tsenor_status s;
            cudaMemcpy(dw, w, rows * ld * 4, cudaMemcpyHostToDevice);
            cudaMemset(dm, 0x5A, rows * mld);
            s = tsenor_cuda_mask_f32_device((const float *)dw, rows, cols, ld, (uint8_t *)dm, mld, &o, NULL, NULL);
            EXPECT(s == TSENOR_OK, "rowwise %d:%d device call: %d (%s)", n, m, s, tsenor_cuda_last_error());
            cudaMemcpy(g, dm, rows * mld, cudaMemcpyDeviceToHost);
            tsenor_cpu_mask_f32(w, rows, cols, ld, c, mld, &o, NULL);
            EXPECT(memcmp(g, c, rows * mld) == 0, "rowwise %d:%d: device-pointer mask differs from the CPU's", n, m);
        } else {
            EXPECT(0, "cudaMalloc failed");
        }
        cudaFree(dw);
        cudaFree(dm);
        {   /* TSENOR at this m: the GPU; EXACT: the CPU */
            tsenor_options ot = make_opt(n, m, TSENOR_METHOD_TSENOR);
            tsenor_report r;
            EXPECT(tsenor_mask_f32(w, rows, cols, ld, g, mld, &ot, &r) == TSENOR_OK && strcmp(r.backend, "cuda") == 0,
                   "tsenor %d:%d should run on the GPU", n, m);
            ot.method = TSENOR_METHOD_EXACT;
            EXPECT(tsenor_mask_f32(w, rows, cols, ld, g, mld, &ot, &r) == TSENOR_OK && strncmp(r.backend, "cpu", 3) == 0,
                   "exact %d:%d should run on the CPU", n, m);
        }
        free(w); free(h); free(g); free(c);
    }
}

/* GREEDY with m in (32, 64] on the GPU (a CTA per block): the CPU's masks bit for bit,
   f32 and bf16, with ties and zeros, edge blocks, strided input and mask, host and device
   pointers. Run last: its kernel is the newest. */
static void test_greedy_large_m(void)
{
    static const int pats[][2] = {{20, 48}, {32, 64}, {5, 33}, {40, 64}, {1, 64}, {63, 64}};
    size_t p;
    for (p = 0; p < sizeof pats / sizeof *pats; p++) {
        const int n = pats[p][0], m = pats[p][1];
        const size_t rows = (size_t)(2 * m + 5), cols = (size_t)(2 * m + 7), ld = cols + 5, mld = cols + 1;
        float *w = (float *)xmalloc(rows * ld * 4);
        uint16_t *h = (uint16_t *)xmalloc(rows * ld * 2);
        uint8_t *g = (uint8_t *)xmalloc(rows * mld), *c = (uint8_t *)xmalloc(rows * mld);
        tsenor_options o = make_opt(n, m, TSENOR_METHOD_GREEDY);
        int ties, dt;
        size_t k;
        if ((g_quick && p >= 2) || (g_wide_only && p != 1)) { free(w); free(h); free(g); free(c); continue; }
        for (ties = 0; ties < 2 - g_wide_only; ties++) {
            wl_fill(w, rows, cols, ld, ties ? WL_GAUSSIAN : WL_OUTLIER, 300 + (uint64_t)p + 10 * (uint64_t)ties);
            if (ties)
                for (k = 0; k < rows * ld; k++) w[k] = (float)((int)(w[k] * 2.0f)) * 0.5f;
            for (k = 0; k < rows * ld; k++) h[k] = wl_bf16(w[k]);
            for (dt = 0; dt < 3; dt += 2) {
                tsenor_report rg, rc;
                tsenor_status sg, sc;
                const void *in = dt == 0 ? (const void *)w : (const void *)h;
                memset(g, 0x33, rows * mld);
                memset(c, 0x33, rows * mld);
                sg = tsenor_mask(in, (tsenor_dtype)dt, rows, cols, ld, g, mld, &o, &rg);
                sc = dt == 0 ? tsenor_cpu_mask_f32(w, rows, cols, ld, c, mld, &o, &rc)
                             : tsenor_cpu_mask_bf16(h, rows, cols, ld, c, mld, &o, &rc);
                EXPECT(sg == TSENOR_OK && sc == TSENOR_OK, "greedy %d:%d: status gpu %d cpu %d (%s)", n, m, sg, sc,
                       tsenor_cuda_last_error());
                if (sg != TSENOR_OK) continue;
                EXPECT(strcmp(rg.backend, "cuda") == 0, "greedy %d:%d: backend %s", n, m, rg.backend);
                EXPECT(memcmp(g, c, rows * mld) == 0, "greedy %d:%d %s ties %d: GPU mask differs from the CPU's", n, m,
                       dt ? "bf16" : "f32", ties);
                EXPECT(tsenor_check(g, rows, cols, mld, n, m, 1) == TSENOR_OK, "greedy %d:%d: mask invalid", n, m);
                EXPECT(fabs(rg.total - rc.total) <= 1e-6 * rc.total, "greedy %d:%d: total %.9g vs cpu %.9g", n, m, rg.total,
                       rc.total);
            }
        }
        {   /* device pointers */
            void *dw = NULL, *dm = NULL;
            if (cudaMalloc(&dw, rows * ld * 4) == cudaSuccess && cudaMalloc(&dm, rows * mld) == cudaSuccess) {
                tsenor_status s;
                cudaMemcpy(dw, w, rows * ld * 4, cudaMemcpyHostToDevice);
                s = tsenor_cuda_mask_f32_device((const float *)dw, rows, cols, ld, (uint8_t *)dm, mld, &o, NULL, NULL);
                EXPECT(s == TSENOR_OK, "greedy %d:%d device call: %d (%s)", n, m, s, tsenor_cuda_last_error());
                cudaMemcpy(g, dm, rows * mld, cudaMemcpyDeviceToHost);
                tsenor_cpu_mask_f32(w, rows, cols, ld, c, mld, &o, NULL);
                for (k = 0; k < rows; k++)
                    if (memcmp(g + k * mld, c + k * mld, cols) != 0) break;
                EXPECT(k == rows, "greedy %d:%d: device-pointer mask differs from the CPU's (row %zu)", n, m, k);
            } else {
                EXPECT(0, "cudaMalloc failed");
            }
            cudaFree(dw);
            cudaFree(dm);
        }
        free(w); free(h); free(g); free(c);
    }
}

/* TSENOR with m in (32, 64] on the GPU (a CTA per block): a valid mask keeping the CPU's
   magnitude to 1e-4 relative (the plans agree to rounding), per matrix and per block
   row, for f32, f16 and bf16, on Gaussian, heavy-tailed, outlier-column and quantised
   (tied) matrices with zero columns, edge blocks, strided input and mask; without local
   search too; device pointers give the host call's mask; NaN leaves the mask untouched. */
static void test_tsenor_large_m(void)
{
    static const int pats[][2] = {{16, 64}, {32, 64}, {20, 48}, {5, 33}, {1, 64}, {63, 64}, {24, 40}};
    size_t p;
    for (p = 0; p < sizeof pats / sizeof *pats; p++) {
        const int n = pats[p][0], m = pats[p][1];
        const size_t rows = (size_t)(2 * m + 5), cols = (size_t)(3 * m + 7), ld = cols + 5, mld = cols + 3;
        float *w = (float *)xmalloc(rows * ld * 4);
        uint16_t *h = (uint16_t *)xmalloc(rows * ld * 2);
        uint8_t *g = (uint8_t *)xmalloc(rows * mld), *c = (uint8_t *)xmalloc(rows * mld);
        int d, dt, ls;
        size_t k;
        if ((g_quick && p >= 2) || (g_wide_only && p >= 1)) { free(w); free(h); free(g); free(c); continue; }
        for (d = 0; d < 4; d += g_wide_only ? 3 : 1) {
            wl_fill(w, rows, cols, ld, d == 3 ? WL_GAUSSIAN : (wl_dist)d, 500 + (uint64_t)p + 10 * (uint64_t)d);
            if (d == 3) {   /* quantised: many ties, and two zero columns */
                for (k = 0; k < rows * ld; k++) w[k] = (float)((int)(w[k] * 2.0f)) * 0.5f;
                for (k = 0; k < rows; k++) w[k * ld + 3] = w[k * ld + (size_t)m + 1] = 0.0f;
            }
            for (dt = 0; dt < 3; dt++)
                for (ls = 0; ls < 2; ls++) {
                    tsenor_options o = make_opt(n, m, TSENOR_METHOD_TSENOR);
                    tsenor_report rg, rc;
                    tsenor_status sg, sc;
                    const void *in = dt == 0 ? (const void *)w : (const void *)h;
                    size_t br, worst_at = 0;
                    double worst = 0.0;
                    if (ls) o.local_search_steps = -1;
                    if ((dt && ls) || (g_wide_only && (dt || ls))) continue;
                    for (k = 0; k < rows * ld; k++) h[k] = dt == 1 ? f32_to_f16(w[k]) : wl_bf16(w[k]);
                    memset(g, 0x44, rows * mld);
                    memset(c, 0x44, rows * mld);
                    sg = tsenor_mask(in, (tsenor_dtype)dt, rows, cols, ld, g, mld, &o, &rg);
                    sc = dt == 0 ? tsenor_cpu_mask_f32(w, rows, cols, ld, c, mld, &o, &rc)
                       : dt == 1 ? tsenor_cpu_mask_f16(h, rows, cols, ld, c, mld, &o, &rc)
                                 : tsenor_cpu_mask_bf16(h, rows, cols, ld, c, mld, &o, &rc);
                    EXPECT(sg == TSENOR_OK && sc == TSENOR_OK, "tsenor %d:%d: status gpu %d cpu %d (%s)", n, m, sg, sc,
                           tsenor_cuda_last_error());
                    if (sg != TSENOR_OK || sc != TSENOR_OK) continue;
                    EXPECT(strcmp(rg.backend, "cuda") == 0, "tsenor %d:%d: backend %s", n, m, rg.backend);
                    EXPECT(tsenor_check(g, rows, cols, mld, n, m, 1) == TSENOR_OK, "tsenor %d:%d %s: GPU mask invalid", n, m,
                           wl_dist_name((wl_dist)(d % 3)));
                    for (k = 0; k < rows; k++)   /* the padding columns of the mask are never written */
                        if (g[k * mld + cols] != 0x44) break;
                    EXPECT(k == rows, "tsenor %d:%d: wrote past the mask's columns (row %zu)", n, m, k);
                    EXPECT(fabs(rg.kept - rc.kept) <= 1e-4 * rc.kept && fabs(rg.total - rc.total) <= 1e-6 * rc.total,
                           "tsenor %d:%d %s dtype %d ls %d: kept %.9g vs CPU %.9g", n, m, wl_dist_name((wl_dist)(d % 3)), dt,
                           !ls, rg.kept, rc.kept);
                    for (br = 0; br < rows; br += (size_t)m) {   /* per block row: no block row far off */
                        double kg = 0.0, kc = 0.0;
                        size_t i, j;
                        for (i = br; i < rows && i < br + (size_t)m; i++)
                            for (j = 0; j < cols; j++) {
                                const double a = dt == 0 ? fabs((double)w[i * ld + j])
                                               : dt == 1 ? _tsenor_abs_f16(h[i * ld + j]) : _tsenor_abs_bf16(h[i * ld + j]);
                                kg += g[i * mld + j] ? a : 0.0;
                                kc += c[i * mld + j] ? a : 0.0;
                            }
                        if (kc > 0.0 && fabs(kg - kc) / kc > worst) { worst = fabs(kg - kc) / kc; worst_at = br; }
                    }
                    EXPECT(worst <= 1e-3, "tsenor %d:%d %s dtype %d: block row %zu keeps %.2e off the CPU", n, m,
                           wl_dist_name((wl_dist)(d % 3)), dt, worst_at, worst);
                }
        }
        {   /* device pointers: the host call's mask; NaN: the mask untouched */
            void *dw = NULL, *dm = NULL;
            tsenor_options o = make_opt(n, m, TSENOR_METHOD_TSENOR);
            if (cudaMalloc(&dw, rows * ld * 4) == cudaSuccess && cudaMalloc(&dm, rows * mld) == cudaSuccess) {
                tsenor_status s;
                const float nan = NAN;
                size_t changed = 0;
                cudaMemcpy(dw, w, rows * ld * 4, cudaMemcpyHostToDevice);
                s = tsenor_cuda_mask_f32_device((const float *)dw, rows, cols, ld, (uint8_t *)dm, mld, &o, NULL, NULL);
                EXPECT(s == TSENOR_OK, "tsenor %d:%d device call: %d (%s)", n, m, s, tsenor_cuda_last_error());
                cudaMemcpy(g, dm, rows * mld, cudaMemcpyDeviceToHost);
                EXPECT(tsenor_mask_f32(w, rows, cols, ld, c, mld, &o, NULL) == TSENOR_OK, "tsenor %d:%d host call", n, m);
                for (k = 0; k < rows; k++)
                    if (memcmp(g + k * mld, c + k * mld, cols) != 0) break;
                EXPECT(k == rows, "tsenor %d:%d: device-pointer mask differs from the host call's (row %zu)", n, m, k);
                cudaMemcpy((float *)dw + ld * 3 + 2, &nan, 4, cudaMemcpyHostToDevice);
                cudaMemset(dm, 9, rows * mld);
                EXPECT(tsenor_cuda_mask_f32_device((const float *)dw, rows, cols, ld, (uint8_t *)dm, mld, &o, NULL, NULL) ==
                           TSENOR_ERR_NONFINITE_INPUT, "tsenor %d:%d device NaN status", n, m);
                cudaMemcpy(g, dm, rows * mld, cudaMemcpyDeviceToHost);
                for (k = 0; k < rows * mld; k++) changed += g[k] != 9;
                EXPECT(changed == 0, "tsenor %d:%d: NaN call changed the device mask (%zu bytes)", n, m, changed);
            } else {
                EXPECT(0, "cudaMalloc failed");
            }
            cudaFree(dw);
            cudaFree(dm);
        }
        free(w); free(h); free(g); free(c);
    }
}

/* The device-pointer entry points give the host entry points' masks. */
static void test_device_pointers(void)
{
    const size_t rows = 333, cols = 480;
    float *w = (float *)xmalloc(rows * cols * 4);
    uint8_t *host = (uint8_t *)xmalloc(rows * cols), *back = (uint8_t *)xmalloc(rows * cols);
    void *dw = NULL, *dm = NULL;
    int meth;
    wl_fill(w, rows, cols, cols, WL_OUTLIER, 9);
    if (cudaMalloc(&dw, rows * cols * 4) != cudaSuccess || cudaMalloc(&dm, rows * cols) != cudaSuccess) {
        EXPECT(0, "cudaMalloc failed");
        return;
    }
    cudaMemcpy(dw, w, rows * cols * 4, cudaMemcpyHostToDevice);
    for (meth = TSENOR_METHOD_TSENOR; meth <= TSENOR_METHOD_ROWWISE; meth++) {
        tsenor_options o = make_opt(4, 8, (tsenor_method)meth);
        tsenor_status s;
        s = tsenor_cuda_mask_f32_device((const float *)dw, rows, cols, cols, (uint8_t *)dm, cols, &o, NULL, NULL);
        EXPECT(s == TSENOR_OK, "device call %s: %d (%s)", mname(o.method), s, tsenor_cuda_last_error());
        cudaMemcpy(back, dm, rows * cols, cudaMemcpyDeviceToHost);
        EXPECT(tsenor_mask_f32(w, rows, cols, cols, host, cols, &o, NULL) == TSENOR_OK, "host call");
        EXPECT(memcmp(back, host, rows * cols) == 0, "%s: device-pointer mask differs from host-pointer mask",
               mname(o.method));
    }
    {   /* NaN: the device mask is untouched (TSENOR 2:4, EXACT 8:16) */
        const float nan = NAN;
        int q;
        cudaMemcpy((float *)dw + 1000, &nan, 4, cudaMemcpyHostToDevice);
        for (q = 0; q < 2; q++) {
            tsenor_options o = q ? make_opt(8, 16, TSENOR_METHOD_EXACT) : make_opt(2, 4, TSENOR_METHOD_TSENOR);
            size_t k, changed = 0;
            cudaMemset(dm, 5, rows * cols);
            EXPECT(tsenor_cuda_mask_f32_device((const float *)dw, rows, cols, cols, (uint8_t *)dm, cols, &o, NULL, NULL) ==
                       TSENOR_ERR_NONFINITE_INPUT, "device NaN status (%s %d:%d)", mname(o.method), o.n, o.m);
            cudaMemcpy(back, dm, rows * cols, cudaMemcpyDeviceToHost);
            for (k = 0; k < rows * cols; k++) changed += back[k] != 5;
            EXPECT(changed == 0, "device mask changed by a failed call (%s, %zu bytes)", mname(o.method), changed);
        }
    }
    cudaFree(dw);
    cudaFree(dm);
    free(w); free(host); free(back);
}

/* Bad input: the documented statuses, the mask untouched; EXACT runs on the GPU up to
   m = 32, beyond on the CPU (device pointers: refused), TSENOR on the GPU at every m, and
   the report says so; repeated calls give the same mask. */
static void test_errors_and_routing(void)
{
    const size_t rows = 64, cols = 96;
    float *w = (float *)xmalloc(rows * cols * 4);
    uint8_t *mask = (uint8_t *)xmalloc(rows * cols), *ref = (uint8_t *)xmalloc(rows * cols);
    tsenor_options o = make_opt(8, 16, TSENOR_METHOD_TSENOR), bad;
    tsenor_report r;
    wl_fill(w, rows, cols, cols, WL_GAUSSIAN, 3);
    memset(mask, 3, rows * cols);
    memcpy(ref, mask, rows * cols);
    EXPECT(tsenor_mask_f32(NULL, rows, cols, cols, mask, cols, &o, NULL) == TSENOR_ERR_INVALID_ARGUMENT, "NULL w");
    EXPECT(tsenor_mask_f32(w, rows, cols, cols - 1, mask, cols, &o, NULL) == TSENOR_ERR_INVALID_ARGUMENT, "ld < cols");
    EXPECT(tsenor_mask_f32(w, 0, cols, cols, mask, cols, &o, NULL) == TSENOR_ERR_INVALID_ARGUMENT, "rows 0");
    bad = o; bad.n = 16;
    EXPECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &bad, NULL) == TSENOR_ERR_INVALID_ARGUMENT, "n = m");
    EXPECT(tsenor_mask_f32(w, rows, cols, cols, (uint8_t *)w + 8, cols, &o, NULL) == TSENOR_ERR_INVALID_ARGUMENT,
           "mask overlapping the input");
    EXPECT(memcmp(mask, ref, rows * cols) == 0, "mask changed by failed calls");

    o.method = TSENOR_METHOD_EXACT;
    {   /* NaN / Inf with EXACT on the GPU: the status, the mask untouched */
        const float keep0 = w[77];
        w[77] = NAN;
        EXPECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &o, NULL) == TSENOR_ERR_NONFINITE_INPUT, "EXACT 8:16: NaN");
        w[77] = -INFINITY;
        EXPECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &o, NULL) == TSENOR_ERR_NONFINITE_INPUT, "EXACT 8:16: -Inf");
        w[77] = keep0;
        EXPECT(memcmp(mask, ref, rows * cols) == 0, "EXACT: mask changed by failed calls");
    }
    EXPECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &o, &r) == TSENOR_OK && strcmp(r.backend, "cuda") == 0,
           "EXACT 8:16 should run on the GPU, backend %s", r.backend);
    o = make_opt(20, 48, TSENOR_METHOD_EXACT);
    EXPECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &o, &r) == TSENOR_OK && strncmp(r.backend, "cpu", 3) == 0,
           "EXACT 20:48 should run on the CPU, backend %s", r.backend);
    o = make_opt(2, 4, TSENOR_METHOD_EXACT);
    EXPECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &o, &r) == TSENOR_OK && strcmp(r.backend, "cuda") == 0,
           "EXACT 2:4 should run on the GPU, backend %s", r.backend);
    o = make_opt(20, 48, TSENOR_METHOD_TSENOR);
    EXPECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &o, &r) == TSENOR_OK && strcmp(r.backend, "cuda") == 0,
           "TSENOR 20:48 should run on the GPU, backend %s", r.backend);
    EXPECT(tsenor_check(mask, rows, cols, cols, 20, 48, 1) == TSENOR_OK, "m = 48 mask invalid");
    {   /* EXACT 20:48 from device pointers: refused, the mask untouched */
        void *dw = NULL, *dm = NULL;
        if (cudaMalloc(&dw, rows * cols * 4) == cudaSuccess && cudaMalloc(&dm, rows * cols) == cudaSuccess) {
            size_t k, changed = 0;
            o = make_opt(20, 48, TSENOR_METHOD_EXACT);
            cudaMemcpy(dw, w, rows * cols * 4, cudaMemcpyHostToDevice);
            cudaMemset(dm, 7, rows * cols);
            EXPECT(tsenor_cuda_mask_f32_device((const float *)dw, rows, cols, cols, (uint8_t *)dm, cols, &o, NULL, NULL) ==
                       TSENOR_ERR_INVALID_ARGUMENT, "EXACT 20:48 from device pointers should be refused");
            cudaMemcpy(mask, dm, rows * cols, cudaMemcpyDeviceToHost);
            for (k = 0; k < rows * cols; k++) changed += mask[k] != 7;
            EXPECT(changed == 0, "EXACT 20:48 refused: device mask changed (%zu bytes)", changed);
        } else {
            EXPECT(0, "cudaMalloc failed");
        }
        cudaFree(dw);
        cudaFree(dm);
    }
    o = make_opt(8, 16, TSENOR_METHOD_TSENOR);
    EXPECT(tsenor_mask_f32(w, rows, cols, cols, ref, cols, &o, NULL) == TSENOR_OK, "run 1");
    EXPECT(tsenor_mask_f32(w, rows, cols, cols, mask, cols, &o, &r) == TSENOR_OK, "run 2");
    EXPECT(memcmp(mask, ref, rows * cols) == 0, "two runs give different masks");
    EXPECT(r.kernel_seconds > 0.0 && r.seconds >= r.kernel_seconds, "report times: kernel %g s, call %g s",
           r.kernel_seconds, r.seconds);
    free(w); free(mask); free(ref);
}

/* The device-pointer entry points reject bad arguments before touching the GPU, so this
   runs with or without one (the pointers are never dereferenced). */
static void test_device_entry_arguments(void)
{
    static float w[64 * 96];
    static uint8_t mask[64 * 96];
    static uint16_t h[64 * 96];
    tsenor_options o = make_opt(8, 16, TSENOR_METHOD_TSENOR), bad;
    const tsenor_status inv = TSENOR_ERR_INVALID_ARGUMENT;
    EXPECT(tsenor_cuda_mask_f32_device(NULL, 64, 96, 96, mask, 96, &o, NULL, NULL) == inv, "device: NULL w");
    EXPECT(tsenor_cuda_mask_f32_device(w, 64, 96, 96, NULL, 96, &o, NULL, NULL) == inv, "device: NULL mask");
    EXPECT(tsenor_cuda_mask_f32_device(w, 0, 96, 96, mask, 96, &o, NULL, NULL) == inv, "device: rows 0");
    EXPECT(tsenor_cuda_mask_f32_device(w, 64, 96, 95, mask, 96, &o, NULL, NULL) == inv, "device: ld < cols");
    EXPECT(tsenor_cuda_mask_f32_device(w, 64, 96, 96, mask, 95, &o, NULL, NULL) == inv, "device: mask_ld < cols");
    EXPECT(tsenor_cuda_mask_f32_device(w, 64, 96, 96, mask, 96, NULL, NULL, NULL) == inv, "device: NULL options");
    EXPECT(tsenor_cuda_mask_f32_device(w, 64, 96, 96, (uint8_t *)w + 4, 96, &o, NULL, NULL) == inv,
           "device: mask overlapping the input");
    bad = o; bad.n = 0;
    EXPECT(tsenor_cuda_mask_f32_device(w, 64, 96, 96, mask, 96, &bad, NULL, NULL) == inv, "device: n = 0");
    bad = make_opt(20, 48, TSENOR_METHOD_EXACT);
    EXPECT(tsenor_cuda_mask_f32_device(w, 64, 96, 96, mask, 96, &bad, NULL, NULL) == inv, "device: EXACT m = 48");
    bad = make_opt(8, 16, TSENOR_METHOD_TSENOR);
    EXPECT(tsenor_cuda_exact_certificate_f32(w, 64, 96, 96, mask, 96, &bad, (double *)(void *)h) == inv,
           "certificate: not EXACT");
    bad = make_opt(8, 16, TSENOR_METHOD_EXACT);
    EXPECT(tsenor_cuda_exact_certificate_f32(w, 64, 96, 96, mask, 96, &bad, NULL) == inv, "certificate: NULL potentials");
    bad = make_opt(2, 4, TSENOR_METHOD_EXACT);
    EXPECT(tsenor_cuda_exact_certificate_f32(w, 64, 96, 96, mask, 96, &bad, (double *)(void *)h) == inv,
           "certificate: n:4 has none");
    bad = make_opt(20, 48, TSENOR_METHOD_EXACT);
    EXPECT(tsenor_cuda_mask_f16_device(h, 64, 96, 96, mask, 96, &bad, NULL, NULL) == inv, "device: EXACT m = 48 (f16)");
    bad = make_opt(20, 65, TSENOR_METHOD_TSENOR);
    EXPECT(tsenor_cuda_mask_bf16_device(h, 64, 96, 96, mask, 96, &bad, NULL, NULL) == inv, "device: m = 65 (bf16)");
    bad = make_opt(2, 4, TSENOR_METHOD_TSENOR);
    bad.tau = -1.0f;
    EXPECT(tsenor_cuda_mask_bf16_device(h, 64, 96, 96, mask, 96, &bad, NULL, NULL) == inv, "device: tau < 0 (bf16)");
    EXPECT(tsenor_mask_f32(w, 64, 96, 96, mask, 96, NULL, NULL) == inv, "host: NULL options");
}

/* No global state: calls from several host threads at once give each its own mask,
   the same as a call alone. */
typedef struct concurrent_job {
    const float *w;
    size_t rows, cols;
    uint8_t *mask;
    tsenor_options opt;
    tsenor_status status;
} concurrent_job;

static void *concurrent_worker(void *arg)
{
    concurrent_job *j = (concurrent_job *)arg;
    int r;
    for (r = 0; r < 3 && j->status == TSENOR_OK; r++)
        j->status = tsenor_mask_f32(j->w, j->rows, j->cols, j->cols, j->mask, j->cols, &j->opt, NULL);
    return NULL;
}

/* The defined rows of README's bad-input table on the GPU: -0.0, subnormals, values near
   FLT_MAX, all zeros, all ties, 1x1, rows/cols < m. Each gives a valid mask and a finite
   report; GREEDY, ROWWISE and n:4 masks equal the CPU's; subnormal and huge inputs give the
   masks of the same values rescaled by a power of two into the normal range. */
static void test_extreme_values(void)
{
    enum { R = 64, C = 96 };
    static const tsenor_method methods[4] = {TSENOR_METHOD_TSENOR, TSENOR_METHOD_GREEDY, TSENOR_METHOD_ROWWISE,
                                             TSENOR_METHOD_EXACT};
    static const int pats[3][2] = {{2, 4}, {8, 16}, {16, 32}};
    static const char *names[6] = {"-0.0", "subnormals", "values near FLT_MAX", "all zeros", "all ties", "small shapes"};
    float *w = (float *)xmalloc(R * C * 4), *scaled = (float *)xmalloc(R * C * 4);
    uint8_t *mask = (uint8_t *)xmalloc(R * C), *ref = (uint8_t *)xmalloc(R * C);
    int kind, mi, p;
    size_t k;
    for (kind = 0; kind < 6; kind++) {
        for (k = 0; k < R * C; k++) {
            const float mag = (float)(k * 2654435761u % 1000u + 1u), sign = k % 2 ? 1.0f : -1.0f;
            switch (kind) {
            case 0: w[k] = k % 3 ? sign * mag : -0.0f; break;
            case 1: w[k] = sign * mag * 1e-45f; break;
            case 2: w[k] = sign * 3.3e38f * (mag / 1000.0f); break;
            case 3: w[k] = 0.0f; break;
            case 4: w[k] = sign * 0.25f; break;
            default: w[k] = sign * mag; break;
            }
            scaled[k] = kind == 1 ? ldexpf(w[k], 100) : kind == 2 ? ldexpf(w[k], -100) : w[k];
        }
        for (mi = 0; mi < 4; mi++)
            for (p = 0; p < 3; p++) {
                tsenor_options o = make_opt(pats[p][0], pats[p][1], methods[mi]);
                const int cc = methods[mi] == TSENOR_METHOD_EXACT && o.m != 4;   /* optima may tie */
                const int transposable = methods[mi] != TSENOR_METHOD_ROWWISE;
                const size_t rows = kind == 5 ? 3 : R, cols = kind == 5 ? 5 : C;   /* smaller than every m */
                tsenor_report rep;
                tsenor_status s = tsenor_mask_f32(w, rows, cols, C, mask, cols, &o, &rep);
                EXPECT(s == TSENOR_OK, "[%s] %s %d:%d: status %d", names[kind], mname(methods[mi]), o.n, o.m, (int)s);
                EXPECT(tsenor_check(mask, rows, cols, cols, o.n, o.m, transposable) == TSENOR_OK, "[%s] %s %d:%d: invalid mask",
                       names[kind], mname(methods[mi]), o.n, o.m);
                EXPECT(rep.total < HUGE_VAL && rep.kept >= 0.0 && rep.kept <= rep.total * (1.0 + 1e-9),
                       "[%s] %s %d:%d: report kept %g of %g", names[kind], mname(methods[mi]), o.n, o.m, rep.kept, rep.total);
                if (cc) {   /* EXACT: the CPU's kept magnitude */
                    double kg, kc;
                    tsenor_cpu_mask_f32(w, rows, cols, C, ref, cols, &o, NULL);
                    kg = kept_sum(w, rows, cols, C, mask, cols);
                    kc = kept_sum(w, rows, cols, C, ref, cols);
                    EXPECT(fabs(kg - kc) <= 1e-6 * kc, "[%s] exact %d:%d: kept %.12g vs cpu %.12g", names[kind], o.n, o.m, kg, kc);
                } else if (methods[mi] != TSENOR_METHOD_TSENOR || o.m == 4) {   /* n:4: the CPU's masks too */
                    tsenor_cpu_mask_f32(w, rows, cols, C, ref, cols, &o, NULL);
                    EXPECT(memcmp(mask, ref, rows * cols) == 0, "[%s] %s %d:%d: GPU mask differs from the CPU's", names[kind],
                           mname(methods[mi]), o.n, o.m);
                }
                if ((kind == 1 || kind == 2) && !cc) {
                    tsenor_mask_f32(scaled, rows, cols, C, ref, cols, &o, NULL);
                    EXPECT(memcmp(mask, ref, rows * cols) == 0, "[%s] %s %d:%d: mask differs from the rescaled input's",
                           names[kind], mname(methods[mi]), o.n, o.m);
                }
            }
    }
    {
        const float one = -2.5f;
        uint8_t m1 = 7;
        tsenor_options o = make_opt(1, 2, TSENOR_METHOD_TSENOR);
        EXPECT(tsenor_mask_f32(&one, 1, 1, 1, &m1, 1, &o, NULL) == TSENOR_OK && m1 == 1, "[1x1] GPU keeps the only weight");
    }
    free(w); free(scaled); free(mask); free(ref);
}

static void test_concurrent_calls(void)
{
    enum { JOBS = 4 };
    const size_t rows = 256, cols = 320;
    float *w = (float *)xmalloc(rows * cols * 4);
    uint8_t *ref = (uint8_t *)xmalloc(JOBS * rows * cols), *got = (uint8_t *)xmalloc(JOBS * rows * cols);
    static const int pats[JOBS][3] = {{8, 16, TSENOR_METHOD_TSENOR}, {2, 4, TSENOR_METHOD_TSENOR},
                                      {16, 32, TSENOR_METHOD_GREEDY}, {4, 8, TSENOR_METHOD_ROWWISE}};
    concurrent_job jobs[JOBS];
    pthread_t th[JOBS];
    int q, started[JOBS];
    wl_fill(w, rows, cols, cols, WL_STUDENT_T3, 21);
    for (q = 0; q < JOBS; q++) {
        tsenor_options o = make_opt(pats[q][0], pats[q][1], (tsenor_method)pats[q][2]);
        EXPECT(tsenor_mask_f32(w, rows, cols, cols, ref + q * rows * cols, cols, &o, NULL) == TSENOR_OK, "alone %d", q);
        jobs[q].w = w; jobs[q].rows = rows; jobs[q].cols = cols; jobs[q].mask = got + q * rows * cols;
        jobs[q].opt = o; jobs[q].status = TSENOR_OK;
    }
    for (q = 0; q < JOBS; q++) started[q] = pthread_create(&th[q], NULL, concurrent_worker, &jobs[q]) == 0;
    for (q = 0; q < JOBS; q++) if (started[q]) pthread_join(th[q], NULL);
    for (q = 0; q < JOBS; q++) {
        EXPECT(started[q] && jobs[q].status == TSENOR_OK, "concurrent job %d: status %d", q, jobs[q].status);
        EXPECT(memcmp(ref + q * rows * cols, got + q * rows * cols, rows * cols) == 0,
               "concurrent job %d: mask differs from the call alone", q);
    }
    free(w); free(ref); free(got);
}

int main(void)
{
    const int devices = tsenor_cuda_device_count();
    g_quick = getenv("TSENOR_TEST_QUICK") != NULL;
    g_exact_only = getenv("TSENOR_TEST_EXACT_ONLY") != NULL;
    g_wide_only = getenv("TSENOR_TEST_WIDE_ONLY") != NULL;
    test_device_entry_arguments();
    if (devices == 0) {
        float w[16] = {0};
        uint8_t mask[16];
        tsenor_options o = make_opt(2, 4, TSENOR_METHOD_TSENOR);
        /* no GPU: the call must fail cleanly with TSENOR_ERR_DEVICE and say why */
        EXPECT(tsenor_mask_f32(w, 4, 4, 4, mask, 4, &o, NULL) == TSENOR_ERR_DEVICE, "no device: status");
        EXPECT(tsenor_cuda_last_error()[0] != 0, "no device: empty error text");
        printf("GPU tests skipped: no CUDA device (%s); checked the no-device error path\n", tsenor_cuda_last_error());
        printf("%d passed, %d failed\n", g_passed, g_failed);
        return g_failed ? 1 : 0;
    }
    {
        struct cudaDeviceProp prop;
        if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
            printf("device: %s, %d SMs, compute %d.%d\n", prop.name, prop.multiProcessorCount, prop.major, prop.minor);
    }
    if (g_wide_only) {   /* racecheck's share: TSENOR and GREEDY at m = 64, one small matrix each */
        test_tsenor_large_m();
        test_greedy_large_m();
        printf("%d passed, %d failed\n", g_passed, g_failed);
        return g_failed ? 1 : 0;
    }
    test_errors_and_routing();
    if (g_exact_only) {
        test_exact_certified();
        test_device_pointers();
        test_rowwise_large_m();
        test_greedy_large_m();
        test_tsenor_large_m();
        printf("%d passed, %d failed\n", g_passed, g_failed);
        return g_failed ? 1 : 0;
    }
    test_agreement_with_cpu();
    test_n4_bit_identical();
    test_exact_certified();
    test_rowwise_large_m();
    test_half_dtypes();
    test_chunks_and_strides();
    test_device_pointers();
    test_concurrent_calls();
    test_extreme_values();
    if (!g_quick) test_quality_bar();
    test_greedy_large_m();
    test_tsenor_large_m();
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
