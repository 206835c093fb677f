/* test_cuda_prune.c - `make test-cuda`: pruning with calibration data on the GPU against
   the CPU. Built with TSENOR_CUDA, so tsenor_prune_f32 runs on the GPU; tsenor_cpu_prune_f32
   is the reference. Checks, on synthetic layers (decaying spectrum, outlier inputs): every
   method at transposable 2:4, 8:16, 16:32 and row-wise 2:4, edge shapes included, gives a
   valid mask, out = 0 where the mask is 0, kept weights unchanged (MAGNITUDE, WANDA: the
   CPU's mask exactly), a reported error equal to one recomputed here in f64, and an error
   within 2% (+1e-4) of the CPU's; the device-pointer entry on a stream of its own; in
   place; the FP32 and eigendecomposition variants of ALPS; the gram on the device; bad
   input (status as the CPU's, out and mask untouched); EXACT projections and m > 32 on
   the GPU; EXACT with m > 32 on the CPU.
   Without a GPU: the argument checks and TSENOR_ERR_DEVICE with a reason (what CI runs).

   The tolerance: both sides run the same steps, the GPU with other rounding (cuBLAS sums,
   TF32 tensor cores in ALPS's ADMM and CG). Rounding flips near-tied mask choices, each
   moving the error by about one pruned weight's share (~1/(rows*cols) of the total), and
   ALPS/SPARSEGPT then adapt the kept weights to the mask: measured differences are far
   below 2%; more than that means a different algorithm, not different rounding. */
#define _POSIX_C_SOURCE 200112L   /* setenv */
#define TSENOR_CUDA
#define TSENOR_IMPLEMENTATION
#include "../tsenor.h"
#include "workloads.h"
#include "prune_layers.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static int g_quick;   /* TSENOR_TEST_QUICK: fewer cases, for runs under compute-sanitizer */

typedef struct layer { size_t rows, cols; float *w, *h; } layer;

static layer make_layer(size_t rows, size_t cols, uint64_t seed)
{
    layer L;
    const size_t tokens = 2 * cols + 16;
    float *x = (float *)xmalloc(tokens * cols * sizeof(float));
    L.rows = rows;
    L.cols = cols;
    L.w = (float *)xmalloc(rows * cols * sizeof(float));
    L.h = (float *)xmalloc(cols * cols * sizeof(float));
    pl_normal(L.w, rows, cols, seed);
    pl_activations(x, tokens, cols, seed + 7);
    memset(L.h, 0, cols * cols * sizeof(float));
    if (tsenor_gram_f32(x, tokens, cols, cols, L.h, cols, 0) != TSENOR_OK) { printf("gram failed\n"); exit(2); }
    free(x);
    return L;
}

static void free_layer(layer *L) { free(L->w); free(L->h); }

static tsenor_prune_options popt(tsenor_prune_method method, int n, int m, tsenor_method mask_method)
{
    tsenor_prune_options o;
    memset(&o, 0, sizeof o);
    o.method = method;
    o.mask = make_opt(n, m, mask_method);
    return o;
}

/* tr(D H D^T) / tr(W H W^T) in f64, independently of the library */
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

static const char *pname(tsenor_prune_method m) { return tsenor_prune_method_string(m); }

/* the GPU and the CPU on one layer and options; the checks every result must pass */
static void compare_with_cpu(const layer *L, const tsenor_prune_options *o, const char *what)
{
    const size_t rows = L->rows, cols = L->cols, rn = rows * cols;
    float *og = (float *)xmalloc(rn * 4), *oc = (float *)xmalloc(rn * 4);
    uint8_t *mg = (uint8_t *)xmalloc(rn), *mc = (uint8_t *)xmalloc(rn);
    tsenor_prune_report rg, rc;
    tsenor_status sg, sc;
    size_t i, zero_bad = 0, changed_kept = 0;
    const int transposable = o->mask.method != TSENOR_METHOD_ROWWISE;
    memset(&rg, 0, sizeof rg);
    memset(&rc, 0, sizeof rc);
    sg = tsenor_prune_f32(L->w, rows, cols, cols, L->h, cols, og, cols, mg, cols, o, &rg);
    sc = tsenor_cpu_prune_f32(L->w, rows, cols, cols, L->h, cols, oc, cols, mc, cols, o, &rc);
    EXPECT(sg == TSENOR_OK && sc == TSENOR_OK, "%s: status gpu %d cpu %d (%s)", what, sg, sc, tsenor_cuda_last_error());
    if (sg == TSENOR_OK && sc == TSENOR_OK) {
        const double e = naive_error(L->w, og, rows, cols, L->h);
        EXPECT(rg.backend && strcmp(rg.backend, "cuda") == 0, "%s: backend %s", what, rg.backend ? rg.backend : "(null)");
        EXPECT(tsenor_check(mg, rows, cols, cols, o->mask.n, o->mask.m, transposable) == TSENOR_OK, "%s: GPU mask invalid", what);
        for (i = 0; i < rn; i++) {
            zero_bad += !mg[i] && og[i] != 0.0f;
            changed_kept += mg[i] && og[i] != L->w[i];
        }
        EXPECT(zero_bad == 0, "%s: %zu pruned entries of out not 0", what, zero_bad);
        if (o->method == TSENOR_PRUNE_MAGNITUDE || o->method == TSENOR_PRUNE_WANDA) {
            EXPECT(changed_kept == 0, "%s: %zu kept weights changed", what, changed_kept);
            EXPECT(memcmp(mg, mc, rn) == 0, "%s: mask differs from the CPU's on the same scores", what);
        }
        EXPECT(fabs(rg.error - e) <= 1e-3 * e + 1e-7, "%s: reported error %.6g, recomputed %.6g", what, rg.error, e);
        /* SPARSEGPT runs the CPU's steps with other rounding: within 2%. ALPS's ADMM path
           (TF32 products, support changes decided on noisy iterates) can settle on another
           support: on the H200 the GPU came within 3.6% of the CPU at worst, either side,
           so 6% */
        {
            const double tol = o->method == TSENOR_PRUNE_ALPS ? 0.06 : 0.02;
            EXPECT(fabs(rg.error - rc.error) <= tol * rc.error + 1e-4, "%s: error gpu %.6g cpu %.6g", what, rg.error,
                   rc.error);
        }
        EXPECT(rg.projections > 0 && rg.seconds > 0.0, "%s: report projections %d seconds %g", what, rg.projections, rg.seconds);
        if (o->method == TSENOR_PRUNE_ALPS)
            EXPECT(rg.iterations > 0 && rg.factorizations > 0, "%s: iterations %d factorizations %d", what, rg.iterations,
                   rg.factorizations);
        if (getenv("TSENOR_TEST_VERBOSE"))
            printf("  %-40s gpu %.5f cpu %.5f  it %d/%d  cg %d/%d  %.3f s\n", what, rg.error, rc.error, rg.iterations,
                   rc.iterations, rg.cg_iterations, rc.cg_iterations, rg.seconds);
    }
    free(og); free(oc); free(mg); free(mc);
}

static void test_agreement(void)
{
    static const int pats[][3] = {{2, 4, 1}, {8, 16, 1}, {16, 32, 1}, {2, 4, 0}};
    static const size_t shapes[][2] = {{96, 128}, {70, 100}, {33, 45}};
    size_t s, p;
    int meth;
    for (s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        layer L;
        if (g_quick && s == 0) continue;
        L = make_layer(shapes[s][0], shapes[s][1], 11 + s);
        for (p = 0; p < sizeof pats / sizeof *pats; p++)
            for (meth = TSENOR_PRUNE_MAGNITUDE; meth <= TSENOR_PRUNE_ALPS; meth++) {
                const tsenor_method mm = pats[p][2] ? TSENOR_METHOD_TSENOR : TSENOR_METHOD_ROWWISE;
                tsenor_prune_options o = popt((tsenor_prune_method)meth, pats[p][0], pats[p][1], mm);
                char what[96];
                if (g_quick && p == 1) continue;
                snprintf(what, sizeof what, "%s %s%d:%d %zux%zu", pname(o.method), pats[p][2] ? "T" : "R", pats[p][0],
                         pats[p][1], L.rows, L.cols);
                compare_with_cpu(&L, &o, what);
            }
        free_layer(&L);
    }
    if (!g_quick) {   /* a larger layer, and GREEDY projections */
        layer L = make_layer(256, 384, 5);
        tsenor_prune_options o = popt(TSENOR_PRUNE_ALPS, 16, 32, TSENOR_METHOD_TSENOR);
        compare_with_cpu(&L, &o, "alps T16:32 256x384");
        o = popt(TSENOR_PRUNE_SPARSEGPT, 8, 16, TSENOR_METHOD_TSENOR);
        compare_with_cpu(&L, &o, "sparsegpt T8:16 256x384");
        o = popt(TSENOR_PRUNE_ALPS, 2, 4, TSENOR_METHOD_GREEDY);
        compare_with_cpu(&L, &o, "alps greedy T2:4 256x384");
        free_layer(&L);
    }
    {   /* EXACT projections on the GPU (m <= 32): the same optimum per block as the CPU's */
        layer L = make_layer(96, 128, 9);
        tsenor_prune_options o = popt(TSENOR_PRUNE_ALPS, 8, 16, TSENOR_METHOD_EXACT);
        compare_with_cpu(&L, &o, "alps exact T8:16 96x128");
        o = popt(TSENOR_PRUNE_SPARSEGPT, 16, 32, TSENOR_METHOD_EXACT);
        compare_with_cpu(&L, &o, "sparsegpt exact T16:32 96x128");
        o = popt(TSENOR_PRUNE_WANDA, 2, 4, TSENOR_METHOD_EXACT);
        compare_with_cpu(&L, &o, "wanda exact T2:4 96x128");
        o = popt(TSENOR_PRUNE_MAGNITUDE, 7, 24, TSENOR_METHOD_EXACT);
        compare_with_cpu(&L, &o, "magnitude exact T7:24 96x128");
        free_layer(&L);
    }
    {   /* m > 32 on the GPU: TSENOR (a CTA per block) and GREEDY projections */
        layer L = make_layer(128, 192, 8);
        tsenor_prune_options o = popt(TSENOR_PRUNE_ALPS, 32, 64, TSENOR_METHOD_TSENOR);
        compare_with_cpu(&L, &o, "alps T32:64 128x192");
        o = popt(TSENOR_PRUNE_SPARSEGPT, 20, 48, TSENOR_METHOD_TSENOR);
        compare_with_cpu(&L, &o, "sparsegpt T20:48 128x192");
        o = popt(TSENOR_PRUNE_WANDA, 24, 64, TSENOR_METHOD_GREEDY);
        compare_with_cpu(&L, &o, "wanda greedy T24:64 128x192");
        free_layer(&L);
    }
    {   /* an input of about 1e-32: its H_jj underflows to 0 in f32, its off-diagonals do
           not; both backends accept the gram tsenor_gram_f32 made */
        layer L = make_layer(64, 96, 31);
        float *x = (float *)xmalloc(200 * 96 * sizeof(float));
        size_t i;
        pl_activations(x, 200, 96, 32);
        for (i = 0; i < 200; i++) x[i * 96 + 3] = 1e-32f * (float)(1 + i % 5);
        memset(L.h, 0, 96 * 96 * sizeof(float));
        if (tsenor_gram_f32(x, 200, 96, 96, L.h, 96, 0) != TSENOR_OK) { printf("gram failed\n"); exit(2); }
        for (meth = TSENOR_PRUNE_MAGNITUDE; meth <= TSENOR_PRUNE_ALPS; meth++) {
            tsenor_prune_options o = popt((tsenor_prune_method)meth, 8, 16, TSENOR_METHOD_TSENOR);
            char what[96];
            snprintf(what, sizeof what, "%s T8:16, an underflowing input", pname(o.method));
            compare_with_cpu(&L, &o, what);
        }
        free(x);
        free_layer(&L);
    }
}

/* compare_with_cpu with one environment switch of the GPU backend set for the call */
static void compare_with_cpu_env(const layer *L, const tsenor_prune_options *o, const char *name, const char *value,
                                 const char *what)
{
    setenv(name, value, 1);
    compare_with_cpu(L, o, what);
    unsetenv(name);
}

/* ALPS with TF32 products, and by each route of its solve (eigendecomposition, explicit
   inverse, triangular solves) */
static void test_alps_variants(void)
{
    layer L = make_layer(128, 160, 21);
    tsenor_prune_options o = popt(TSENOR_PRUNE_ALPS, 8, 16, TSENOR_METHOD_TSENOR);
    compare_with_cpu_env(&L, &o, "TSENOR_CUDA_PRUNE_MATH", "tf32", "alps T8:16 tf32");
    setenv("TSENOR_CUDA_ALPS_SOLVER", "eigen", 1);
    compare_with_cpu(&L, &o, "alps T8:16 eigen");
    o = popt(TSENOR_PRUNE_ALPS, 2, 4, TSENOR_METHOD_ROWWISE);
    compare_with_cpu(&L, &o, "alps R2:4 eigen");
    unsetenv("TSENOR_CUDA_ALPS_SOLVER");
    o = popt(TSENOR_PRUNE_ALPS, 8, 16, TSENOR_METHOD_TSENOR);
    o.iterations = 4;
    o.cg_iterations = -1;
    o.rho = 0.5f;
    o.damping = 0.05f;
    compare_with_cpu(&L, &o, "alps T8:16 4 iterations no CG");
    o = popt(TSENOR_PRUNE_ALPS, 8, 16, TSENOR_METHOD_TSENOR);
    compare_with_cpu_env(&L, &o, "TSENOR_CUDA_ALPS_SOLVER", "triangular", "alps T8:16 triangular solves");
    free_layer(&L);
    {   /* rows < cols / 2: triangular solves by default (the CPU's rule), and the inverse forced */
        layer F = make_layer(40, 192, 22);
        o = popt(TSENOR_PRUNE_ALPS, 16, 32, TSENOR_METHOD_TSENOR);
        compare_with_cpu(&F, &o, "alps T16:32 40x192 (triangular)");
        compare_with_cpu_env(&F, &o, "TSENOR_CUDA_ALPS_SOLVER", "inverse", "alps T16:32 40x192 inverse");
        o = popt(TSENOR_PRUNE_ALPS, 2, 4, TSENOR_METHOD_ROWWISE);
        compare_with_cpu(&F, &o, "alps R2:4 40x192 (triangular)");
        free_layer(&F);
    }
}

/* more inputs than one solve block (1024): the blocked split-TF32 solves of the
   triangular route (1 full block and a partial one; 2 full and a partial), against the
   CPU and against the plain FP32 trsm. Runs in the quick (sanitizer) set too. */
static void test_blocked_solves(void)
{
    tsenor_prune_options o = popt(TSENOR_PRUNE_ALPS, 16, 32, TSENOR_METHOD_TSENOR);
    layer F = make_layer(96, 1280, 23);
    compare_with_cpu(&F, &o, "alps T16:32 96x1280 (blocked split-TF32 solves)");
    if (!g_quick) {
        layer G = make_layer(64, 2300, 24);
        compare_with_cpu(&G, &o, "alps T16:32 64x2300 (blocked split-TF32 solves)");
        free_layer(&G);
        compare_with_cpu_env(&F, &o, "TSENOR_CUDA_PRUNE_MATH", "fp32", "alps T16:32 96x1280 fp32 trsm");
        o = popt(TSENOR_PRUNE_ALPS, 2, 4, TSENOR_METHOD_ROWWISE);
        compare_with_cpu(&F, &o, "alps R2:4 96x1280 (blocked split-TF32 solves)");
    }
    free_layer(&F);
}

/* device pointers on a stream of our own = host pointers; in place = out of place */
static void test_device_pointers_and_in_place(void)
{
    layer L = make_layer(64, 96, 31);
    const size_t rows = L.rows, cols = L.cols, rn = rows * cols, ld = cols + 3;
    float *oh = (float *)xmalloc(rn * 4), *od = (float *)xmalloc(rows * ld * 4), *wi = (float *)xmalloc(rn * 4);
    uint8_t *mh = (uint8_t *)xmalloc(rn), *md = (uint8_t *)xmalloc(rn);
    float *dw = NULL, *dg = NULL, *dout = NULL;
    uint8_t *dmask = NULL;
    cudaStream_t stream = NULL;
    int meth;
    EXPECT(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess, "stream");
    EXPECT(cudaMalloc((void **)&dw, rn * 4) == cudaSuccess && cudaMalloc((void **)&dg, cols * cols * 4) == cudaSuccess &&
           cudaMalloc((void **)&dout, rows * ld * 4) == cudaSuccess && cudaMalloc((void **)&dmask, rn) == cudaSuccess,
           "cudaMalloc");
    cudaMemcpy(dw, L.w, rn * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dg, L.h, cols * cols * 4, cudaMemcpyHostToDevice);
    for (meth = TSENOR_PRUNE_MAGNITUDE; meth <= TSENOR_PRUNE_ALPS; meth++) {
        tsenor_prune_options o = popt((tsenor_prune_method)meth, 4, 8, TSENOR_METHOD_TSENOR);
        tsenor_prune_report rh, rd, ri;
        tsenor_status sh, sd, si;
        size_t i, j, out_diff = 0;
        sh = tsenor_cuda_prune_f32(L.w, rows, cols, cols, L.h, cols, oh, cols, mh, cols, &o, &rh);
        cudaMemset(dout, 0, rows * ld * 4);
        sd = tsenor_cuda_prune_f32_device(dw, rows, cols, cols, dg, cols, dout, ld, dmask, cols, &o, &rd, stream);
        EXPECT(sh == TSENOR_OK && sd == TSENOR_OK, "%s device: status host %d device %d (%s)", pname(o.method), sh, sd,
               tsenor_cuda_last_error());
        if (sh != TSENOR_OK || sd != TSENOR_OK) continue;
        cudaMemcpy(od, dout, rows * ld * 4, cudaMemcpyDeviceToHost);
        cudaMemcpy(md, dmask, rn, cudaMemcpyDeviceToHost);
        for (i = 0; i < rows; i++)
            for (j = 0; j < cols; j++) out_diff += fabsf(od[i * ld + j] - oh[i * cols + j]) > 1e-5f * (1.0f + fabsf(oh[i * cols + j]));
        EXPECT(memcmp(md, mh, rn) == 0 && out_diff == 0, "%s device: mask or %zu out entries differ from host-pointer call",
               pname(o.method), out_diff);
        EXPECT(fabs(rd.error - rh.error) <= 1e-4 * rh.error + 1e-7, "%s device: error %.7g host %.7g", pname(o.method),
               rd.error, rh.error);
        memcpy(wi, L.w, rn * 4);
        si = tsenor_prune_f32(wi, rows, cols, cols, L.h, cols, wi, cols, NULL, 0, &o, &ri);
        out_diff = 0;
        for (i = 0; i < rn; i++) out_diff += fabsf(wi[i] - oh[i]) > 1e-5f * (1.0f + fabsf(oh[i]));
        EXPECT(si == TSENOR_OK && out_diff == 0, "%s in place: status %d, %zu entries differ", pname(o.method), si, out_diff);
    }
    {   /* EXACT with m > 32: refused on device pointers, the CPU from host pointers */
        tsenor_prune_options o = popt(TSENOR_PRUNE_SPARSEGPT, 20, 40, TSENOR_METHOD_EXACT);
        tsenor_prune_report r;
        float *oc = (float *)xmalloc(rn * 4);
        EXPECT(tsenor_cuda_prune_f32_device(dw, rows, cols, cols, dg, cols, dout, cols, dmask, cols, &o, NULL, stream) ==
               TSENOR_ERR_INVALID_ARGUMENT, "exact on device pointers not refused");
        EXPECT(tsenor_prune_f32(L.w, rows, cols, cols, L.h, cols, oh, cols, mh, cols, &o, &r) == TSENOR_OK &&
               strcmp(r.backend, "cuda") != 0, "exact: status or backend %s", r.backend);
        EXPECT(tsenor_cpu_prune_f32(L.w, rows, cols, cols, L.h, cols, oc, cols, md, cols, &o, NULL) == TSENOR_OK &&
               memcmp(oc, oh, rn * 4) == 0 && memcmp(md, mh, rn) == 0, "exact: differs from the CPU's");
        free(oc);
    }
    cudaFree(dw); cudaFree(dg); cudaFree(dout); cudaFree(dmask);
    cudaStreamDestroy(stream);
    free(oh); free(od); free(wi); free(mh); free(md);
    free_layer(&L);
}

/* one bad call: the status (as the CPU's when cpu_too), out and mask untouched */
static void expect_refused(const char *what, tsenor_status want, int cpu_too, const float *w, size_t rows, size_t cols,
                           size_t ld, const float *gram, size_t gram_ld, float *out, size_t out_ld, uint8_t *mask,
                           size_t mask_ld, const tsenor_prune_options *o)
{
    const size_t ob = out ? ((rows - 1) * out_ld + cols) * 4 : 0, mb = mask ? (rows - 1) * mask_ld + cols : 0;
    unsigned char *before_out = (unsigned char *)xmalloc(ob + 1), *before_mask = (unsigned char *)xmalloc(mb + 1);
    tsenor_status s;
    if (out) memcpy(before_out, out, ob);
    if (mask) memcpy(before_mask, mask, mb);
    s = tsenor_prune_f32(w, rows, cols, ld, gram, gram_ld, out, out_ld, mask, mask_ld, o, NULL);
    EXPECT(s == want, "%s: gpu status %d, want %d (%s)", what, s, want, tsenor_cuda_last_error());
    EXPECT((!out || memcmp(before_out, out, ob) == 0) && (!mask || memcmp(before_mask, mask, mb) == 0),
           "%s: gpu wrote to out or mask", what);
    if (cpu_too) {
        s = tsenor_cpu_prune_f32(w, rows, cols, ld, gram, gram_ld, out, out_ld, mask, mask_ld, o, NULL);
        EXPECT(s == want, "%s: cpu status %d, want %d", what, s, want);
    }
    free(before_out);
    free(before_mask);
}

/* argument errors: found before the device is asked for anything */
static void test_argument_errors(void)
{
    const size_t rows = 8, cols = 8;
    float w[64], h[64], out[64], big[200];
    uint8_t mask[64];
    tsenor_prune_options o = popt(TSENOR_PRUNE_ALPS, 2, 4, TSENOR_METHOD_TSENOR);
    size_t i;
    for (i = 0; i < 64; i++) { w[i] = (float)(i % 7) - 3.0f; h[i] = i % 9 == 0 ? 2.0f : 0.0f; out[i] = -9.0f; mask[i] = 7; }
    expect_refused("gram_ld < cols", TSENOR_ERR_INVALID_ARGUMENT, 1, w, rows, cols, cols, h, cols - 1, out, cols, mask, cols, &o);
    expect_refused("ld < cols", TSENOR_ERR_INVALID_ARGUMENT, 1, w, rows, cols, cols - 1, h, cols, out, cols, mask, cols, &o);
    expect_refused("no gram (alps)", TSENOR_ERR_INVALID_ARGUMENT, 1, w, rows, cols, cols, NULL, cols, out, cols, mask, cols, &o);
    expect_refused("out over gram", TSENOR_ERR_INVALID_ARGUMENT, 1, w, rows, cols, cols, big, cols, big + 10, cols, mask, cols, &o);
    expect_refused("out partly over w", TSENOR_ERR_INVALID_ARGUMENT, 1, big, rows, cols, cols, h, cols, big + 3, cols, NULL, 0, &o);
    expect_refused("mask over w", TSENOR_ERR_INVALID_ARGUMENT, 1, big, rows, cols, cols, h, cols, out, cols,
                   (uint8_t *)(big + 4), cols, &o);
    expect_refused("null opt", TSENOR_ERR_INVALID_ARGUMENT, 1, w, rows, cols, cols, h, cols, out, cols, mask, cols, NULL);
    o.rho = -1.0f;
    expect_refused("rho < 0", TSENOR_ERR_INVALID_ARGUMENT, 1, w, rows, cols, cols, h, cols, out, cols, mask, cols, &o);
    o = popt(TSENOR_PRUNE_ALPS, 2, 4, TSENOR_METHOD_TSENOR);
    o.damping = NAN;
    expect_refused("damping NaN", TSENOR_ERR_INVALID_ARGUMENT, 1, w, rows, cols, cols, h, cols, out, cols, mask, cols, &o);
    o = popt((tsenor_prune_method)9, 2, 4, TSENOR_METHOD_TSENOR);
    expect_refused("method 9", TSENOR_ERR_INVALID_ARGUMENT, 1, w, rows, cols, cols, h, cols, out, cols, mask, cols, &o);
    o = popt(TSENOR_PRUNE_ALPS, 4, 4, TSENOR_METHOD_TSENOR);
    expect_refused("n = m", TSENOR_ERR_INVALID_ARGUMENT, 1, w, rows, cols, cols, h, cols, out, cols, mask, cols, &o);
    o = popt(TSENOR_PRUNE_ALPS, 2, 4, TSENOR_METHOD_TSENOR);
    EXPECT(tsenor_cuda_gram_f32_device(w, 8, 8, 7, h, 8, NULL) == TSENOR_ERR_INVALID_ARGUMENT, "gram device: ld < cols");
    EXPECT(tsenor_cuda_gram_f32_device(big, 8, 8, 8, big + 8, 8, NULL) == TSENOR_ERR_INVALID_ARGUMENT, "gram device: overlap");
}

/* bad data: found on the device, nothing written */
static void test_data_errors(void)
{
    const size_t rows = 16, cols = 12, rn = rows * cols;
    layer L = make_layer(rows, cols, 41);
    float *w = (float *)xmalloc(rn * 4), *h = (float *)xmalloc(cols * cols * 4), *out = (float *)xmalloc(rn * 4);
    uint8_t *mask = (uint8_t *)xmalloc(rn);
    int meth;
    size_t i;
    for (i = 0; i < rn; i++) { out[i] = -5.0f; mask[i] = 9; }
    for (meth = TSENOR_PRUNE_MAGNITUDE; meth <= TSENOR_PRUNE_ALPS; meth++) {
        tsenor_prune_options o = popt((tsenor_prune_method)meth, 2, 4, TSENOR_METHOD_TSENOR);
        char what[80];
        memcpy(w, L.w, rn * 4);
        memcpy(h, L.h, cols * cols * 4);
        w[37] = NAN;
        snprintf(what, sizeof what, "%s: NaN in w", pname(o.method));
        expect_refused(what, TSENOR_ERR_NONFINITE_INPUT, 1, w, rows, cols, cols, h, cols, out, cols, mask, cols, &o);
        w[37] = INFINITY;
        snprintf(what, sizeof what, "%s: Inf in w", pname(o.method));
        expect_refused(what, TSENOR_ERR_NONFINITE_INPUT, 1, w, rows, cols, cols, h, cols, out, cols, mask, cols, &o);
        w[37] = L.w[37];
        h[5 * cols + 7] = NAN;
        snprintf(what, sizeof what, "%s: NaN in gram", pname(o.method));
        expect_refused(what, TSENOR_ERR_NONFINITE_INPUT, 1, w, rows, cols, cols, h, cols, out, cols, mask, cols, &o);
        memcpy(h, L.h, cols * cols * 4);
        h[2 * cols + 9] += 0.01f * sqrtf(h[2 * cols + 2] * h[9 * cols + 9]);   /* asymmetric */
        snprintf(what, sizeof what, "%s: asymmetric gram", pname(o.method));
        expect_refused(what, TSENOR_ERR_INVALID_ARGUMENT, 1, w, rows, cols, cols, h, cols, out, cols, mask, cols, &o);
        /* every 2 x 2 minor fine, the whole not PSD: unit diagonal, 0.9 / -0.9 couplings of 3 inputs */
        memset(h, 0, cols * cols * 4);
        for (i = 0; i < cols; i++) h[i * cols + i] = 1.0f;
        h[0 * cols + 1] = h[1 * cols + 0] = 0.9f;
        h[1 * cols + 2] = h[2 * cols + 1] = 0.9f;
        h[0 * cols + 2] = h[2 * cols + 0] = -0.9f;
        snprintf(what, sizeof what, "%s: gram not PSD", pname(o.method));
        expect_refused(what, TSENOR_ERR_INVALID_ARGUMENT, 1, w, rows, cols, cols, h, cols, out, cols, mask, cols, &o);
        h[0] = -1.0f;   /* a negative diagonal */
        snprintf(what, sizeof what, "%s: negative diagonal", pname(o.method));
        expect_refused(what, TSENOR_ERR_INVALID_ARGUMENT, 1, w, rows, cols, cols, h, cols, out, cols, mask, cols, &o);
    }
    {   /* device pointers: NaN found, out untouched */
        float *dw = NULL, *dg = NULL, *dout = NULL, back[4];
        tsenor_prune_options o = popt(TSENOR_PRUNE_SPARSEGPT, 2, 4, TSENOR_METHOD_TSENOR);
        memcpy(w, L.w, rn * 4);
        w[rn - 1] = NAN;
        cudaMalloc((void **)&dw, rn * 4);
        cudaMalloc((void **)&dg, cols * cols * 4);
        cudaMalloc((void **)&dout, rn * 4);
        cudaMemcpy(dw, w, rn * 4, cudaMemcpyHostToDevice);
        cudaMemcpy(dg, L.h, cols * cols * 4, cudaMemcpyHostToDevice);
        cudaMemcpy(dout, out, rn * 4, cudaMemcpyHostToDevice);
        EXPECT(tsenor_cuda_prune_f32_device(dw, rows, cols, cols, dg, cols, dout, cols, NULL, 0, &o, NULL, NULL) ==
               TSENOR_ERR_NONFINITE_INPUT, "device pointers: NaN not found");
        cudaMemcpy(back, dout, sizeof back, cudaMemcpyDeviceToHost);
        EXPECT(back[0] == -5.0f && back[3] == -5.0f, "device pointers: out written on error");
        cudaFree(dw); cudaFree(dg); cudaFree(dout);
    }
    free(w); free(h); free(out); free(mask);
    free_layer(&L);
}

/* the gram on the device, accumulated twice, against the CPU's */
static void test_gram(void)
{
    const size_t tokens = 300, cols = 70, ld = 75, gld = 72;
    float *x = (float *)xmalloc(tokens * ld * 4), *gc = (float *)xmalloc(cols * gld * 4), *gg = (float *)xmalloc(cols * gld * 4);
    float *dx = NULL, *dg = NULL;
    size_t i, j, bad = 0, asym = 0;
    double top = 0.0;
    pl_activations(x, tokens, ld, 51);
    for (i = 0; i < cols * gld; i++) gc[i] = (float)(i % 5);
    for (i = 0; i < cols; i++)
        for (j = 0; j < cols; j++) gc[i * gld + j] = gc[j * gld + i] = (float)((i + j) % 5);
    memcpy(gg, gc, cols * gld * 4);
    cudaMalloc((void **)&dx, tokens * ld * 4);
    cudaMalloc((void **)&dg, cols * gld * 4);
    cudaMemcpy(dx, x, tokens * ld * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dg, gg, cols * gld * 4, cudaMemcpyHostToDevice);
    EXPECT(tsenor_cuda_gram_f32_device(dx, tokens, cols, ld, dg, gld, NULL) == TSENOR_OK &&
           tsenor_cuda_gram_f32_device(dx, tokens / 2, cols, ld, dg, gld, NULL) == TSENOR_OK, "gram device: status (%s)",
           tsenor_cuda_last_error());
    tsenor_gram_f32(x, tokens, cols, ld, gc, gld, 0);
    tsenor_gram_f32(x, tokens / 2, cols, ld, gc, gld, 0);
    cudaMemcpy(gg, dg, cols * gld * 4, cudaMemcpyDeviceToHost);
    for (i = 0; i < cols; i++) top = fabs(gc[i * gld + i]) > top ? fabs(gc[i * gld + i]) : top;
    for (i = 0; i < cols; i++)
        for (j = 0; j < cols; j++) {
            bad += fabs((double)gg[i * gld + j] - gc[i * gld + j]) > 1e-5 * top;
            asym += gg[i * gld + j] != gg[j * gld + i];
        }
    EXPECT(bad == 0 && asym == 0, "gram device: %zu entries differ from the CPU's, %zu asymmetric", bad, asym);
    for (i = cols; i < gld; i++) bad += gg[i] != (float)(i % 5);   /* padding of row 0 untouched */
    EXPECT(bad == 0, "gram device: padding written");
    x[7] = NAN;
    cudaMemcpy(dx, x, tokens * ld * 4, cudaMemcpyHostToDevice);
    EXPECT(tsenor_cuda_gram_f32_device(dx, tokens, cols, ld, dg, gld, NULL) == TSENOR_ERR_NONFINITE_INPUT, "gram device: NaN");
    cudaMemcpy(gc, dg, cols * gld * 4, cudaMemcpyDeviceToHost);
    EXPECT(memcmp(gc, gg, cols * gld * 4) == 0, "gram device: written on NaN");
    cudaFree(dx); cudaFree(dg);
    free(x); free(gc); free(gg);
}

int main(void)
{
    const int devices = tsenor_cuda_device_count();
    g_quick = getenv("TSENOR_TEST_QUICK") != NULL;
    test_argument_errors();
    if (devices == 0) {
        layer L = make_layer(8, 8, 1);
        float out[64];
        tsenor_prune_options o = popt(TSENOR_PRUNE_ALPS, 2, 4, TSENOR_METHOD_TSENOR);
        /* no GPU: the calls fail cleanly with TSENOR_ERR_DEVICE and say why */
        EXPECT(tsenor_prune_f32(L.w, 8, 8, 8, L.h, 8, out, 8, NULL, 0, &o, NULL) == TSENOR_ERR_DEVICE, "no device: status");
        EXPECT(tsenor_cuda_last_error()[0] != 0, "no device: empty error text");
        EXPECT(tsenor_cuda_prune_f32_device(L.w, 8, 8, 8, L.h, 8, out, 8, NULL, 0, &o, NULL, NULL) == TSENOR_ERR_DEVICE,
               "no device: device-pointer status");
        EXPECT(tsenor_cuda_gram_f32_device(L.w, 8, 8, 8, L.h, 8, NULL) == TSENOR_ERR_DEVICE, "no device: gram status");
        printf("GPU pruning tests skipped: no CUDA device (%s); checked the argument and no-device paths\n",
               tsenor_cuda_last_error());
        printf("%d passed, %d failed\n", g_passed, g_failed);
        free_layer(&L);
        return g_failed ? 1 : 0;
    }
    test_data_errors();
    test_gram();
    test_device_pointers_and_in_place();
    test_agreement();
    if (!g_quick) test_alps_variants();
    test_blocked_solves();
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed ? 1 : 0;
}
