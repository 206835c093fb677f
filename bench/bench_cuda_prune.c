/* bench_cuda_prune.c - `make bench-cuda-prune`: pruning with calibration data on the GPU.
   Synthetic layers (Gaussian weights; calibration inputs with a decaying spectrum and
   outlier features, tokens = 2 x cols, the gram made on the GPU by
   tsenor_cuda_gram_f32_device), data on the device, the device-pointer entry timed host
   to host (report.seconds). Targets: ALPS 4096 x 4096 <= 0.5 s, ALPS 4096 x 14336 <= 2 s,
   SPARSEGPT 4096 x 4096 <= 0.1 s. Rows: error, seconds, ADMM and CG iterations, rho
   values (factorizations) and their time, projections and their share of the time.
   ALPS 4096 x 4096 T16:32 also runs with the eigendecomposition route and with TF32
   products, ALPS 4096 x 14336 T16:32 with TF32 products (the environment switches of
   tsenor_cuda.h). Peers (bench/peers/prune_torch.py:
   plain PyTorch ALPS and SparseGPT with the paper's projection) run on the same GPU in
   the same run when torch is importable; the ratios are of the same run.
   Usage: build/bench_cuda_prune [--no-peers] [--quick | --wide] (--wide: the 4096 x 14336 ALPS
   T16:32 row alone, for profiles) */
#define _POSIX_C_SOURCE 200112L   /* setenv, popen */
#define TSENOR_IMPLEMENTATION
#include "../tsenor.h"
#include "../tsenor_cuda.h"
#include "../tests/workloads.h"
#include "../tests/prune_layers.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct layer {
    size_t rows, cols;
    float *w_host, *h_host;   /* the host copies the peers read */
    float *w, *h, *out;       /* device */
    uint8_t *mask;            /* device */
} layer;

static void die(const char *what)
{
    printf("bench_cuda_prune: %s (%s)\n", what, tsenor_cuda_last_error());
    exit(1);
}

static layer make_layer(size_t rows, size_t cols, uint64_t seed)
{
    layer L;
    const size_t tokens = 2 * cols;
    float *x = (float *)malloc(tokens * cols * sizeof(float)), *dx = NULL;
    L.rows = rows;
    L.cols = cols;
    L.w_host = (float *)malloc(rows * cols * sizeof(float));
    L.h_host = (float *)malloc(cols * cols * sizeof(float));
    if (!x || !L.w_host || !L.h_host) die("out of host memory");
    pl_normal(L.w_host, rows, cols, seed);
    pl_activations(x, tokens, cols, seed + 1);
    if (cudaMalloc((void **)&L.w, rows * cols * 4) != cudaSuccess || cudaMalloc((void **)&L.h, cols * cols * 4) != cudaSuccess ||
        cudaMalloc((void **)&L.out, rows * cols * 4) != cudaSuccess || cudaMalloc((void **)&L.mask, rows * cols) != cudaSuccess ||
        cudaMalloc((void **)&dx, tokens * cols * 4) != cudaSuccess)
        die("cudaMalloc");
    cudaMemcpy(L.w, L.w_host, rows * cols * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(dx, x, tokens * cols * 4, cudaMemcpyHostToDevice);
    cudaMemset(L.h, 0, cols * cols * 4);
    {
        const double t0 = _tsenor_now();
        if (tsenor_cuda_gram_f32_device(dx, tokens, cols, cols, L.h, cols, NULL) != TSENOR_OK) die("gram");
        printf("gram %zu tokens x %zu inputs on the GPU: %.1f ms\n", tokens, cols, 1e3 * (_tsenor_now() - t0));
    }
    cudaMemcpy(L.h_host, L.h, cols * cols * 4, cudaMemcpyDeviceToHost);
    cudaFree(dx);
    free(x);
    return L;
}

static void free_layer(layer *L)
{
    cudaFree(L->w); cudaFree(L->h); cudaFree(L->out); cudaFree(L->mask);
    free(L->w_host); free(L->h_host);
}

static tsenor_prune_options popt(tsenor_prune_method method, int n, int m, int transposable)
{
    tsenor_prune_options o;
    memset(&o, 0, sizeof o);
    o.method = method;
    o.mask.n = n;
    o.mask.m = m;
    o.mask.method = transposable ? TSENOR_METHOD_TSENOR : TSENOR_METHOD_ROWWISE;
    return o;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* the median-time run of `runs` calls; its report */
static tsenor_prune_report run(const layer *L, const tsenor_prune_options *o, int runs, const char *label, double target)
{
    tsenor_prune_report r[5], best;
    double t[5];
    int k;
    uint8_t *host_mask;
    for (k = 0; k < runs; k++) {
        memset(&r[k], 0, sizeof r[k]);
        if (tsenor_cuda_prune_f32_device(L->w, L->rows, L->cols, L->cols, L->h, L->cols, L->out, L->cols, L->mask, L->cols,
                                         o, &r[k], NULL) != TSENOR_OK)
            die(label);
        t[k] = r[k].seconds;
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_double);
    best = r[0];
    for (k = 0; k < runs; k++)
        if (r[k].seconds == t[runs / 2]) best = r[k];
    host_mask = (uint8_t *)malloc(L->rows * L->cols);
    if (host_mask) {   /* the mask is checked, not trusted */
        cudaMemcpy(host_mask, L->mask, L->rows * L->cols, cudaMemcpyDeviceToHost);
        if (tsenor_check(host_mask, L->rows, L->cols, L->cols, o->mask.n, o->mask.m, o->mask.method != TSENOR_METHOD_ROWWISE) !=
            TSENOR_OK)
            printf("  !! %s: mask INVALID\n", label);
        free(host_mask);
    }
    printf("  %-34s error %.5f  %8.1f ms%s  ADMM %3d  CG %2d  rho values %3d (%6.1f ms)  projections %4d (%4.1f%%)\n",
           label, best.error, 1e3 * best.seconds, target > 0 ? (best.seconds <= target ? " (met)" : " (MISSED)") : "",
           best.iterations, best.cg_iterations, best.factorizations, 1e3 * best.factor_seconds, best.projections,
           100.0 * best.projection_seconds / best.seconds);
    return best;
}

/* bench/peers/prune_torch.py on the same layer; returns its seconds (< 0: did not run) */
static double run_peer(const layer *L, const char *method, int n, int m, int transposable, double ours_seconds,
                       double ours_error)
{
    char cmd[700], line[256] = "", last[256] = "";
    FILE *f, *wf = fopen("build/bench_prune_w.f32", "wb"), *hf = fopen("build/bench_prune_h.f32", "wb");
    double s = -1.0, err = -1.0;
    int it = 0;
    int ok = wf && hf && fwrite(L->w_host, 4, L->rows * L->cols, wf) == L->rows * L->cols &&
             fwrite(L->h_host, 4, L->cols * L->cols, hf) == L->cols * L->cols;
    if (wf) ok &= fclose(wf) == 0;
    if (hf) ok &= fclose(hf) == 0;
    if (!ok) { printf("  peer: cannot write its inputs\n"); return -1.0; }
    snprintf(cmd, sizeof cmd,
             "cd bench/peers && timeout 400 python3 prune_torch.py --w ../../build/bench_prune_w.f32 --h "
             "../../build/bench_prune_h.f32 --rows %zu --cols %zu --n %d --m %d --method %s --pattern %s "
             "--out ../../build/bench_prune_out.f32 2>&1",
             L->rows, L->cols, n, m, method, transposable ? "transposable" : "rowwise");
    f = popen(cmd, "r");
    if (!f) { printf("  peer: cannot run python3\n"); return -1.0; }
    while (fgets(line, sizeof line, f)) memcpy(last, line, sizeof last);
    pclose(f);
    last[strcspn(last, "\n")] = 0;
    if (sscanf(last, "seconds %lf iterations %d error %lf", &s, &it, &err) != 3) {
        printf("  peer prune_torch %s: %s\n", method, last);
        return -1.0;
    }
    printf("  peer PyTorch %-9s %s%d:%d  error %.5f  %8.1f ms  ADMM %3d  -> tsenor %.1fx faster, error %+.2f%% of the peer's\n",
           method, transposable ? "T" : "R", n, m, err, 1e3 * s, it, s / ours_seconds, 100.0 * (ours_error - err) / err);
    return s;
}

int main(int argc, char **argv)
{
    int peers = 1, quick = 0, wide = 0, a;
    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--no-peers") == 0) peers = 0;
        if (strcmp(argv[a], "--quick") == 0) quick = 1;
        if (strcmp(argv[a], "--wide") == 0) wide = 1;
    }
    if (tsenor_cuda_device_count() == 0) {
        printf("bench_cuda_prune: no CUDA device (%s)\n", tsenor_cuda_last_error());
        return 0;
    }
    {
        struct cudaDeviceProp prop;
        if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
            printf("device: %s, %d SMs; rows x cols f32 layers, device pointers, host-to-host time\n", prop.name,
                   prop.multiProcessorCount);
    }
    {   /* library start-up (handles, modules) outside the timings */
        layer W = make_layer(64, 64, 1);
        tsenor_prune_options o = popt(TSENOR_PRUNE_ALPS, 2, 4, 1);
        run(&W, &o, 1, "warm-up alps T2:4 64x64", 0.0);
        o = popt(TSENOR_PRUNE_SPARSEGPT, 2, 4, 1);
        run(&W, &o, 1, "warm-up sparsegpt T2:4 64x64", 0.0);
        free_layer(&W);
    }
    if (wide) {
        layer L = make_layer(4096, 14336, 9);
        tsenor_prune_options o = popt(TSENOR_PRUNE_ALPS, 16, 32, 1);
        printf("\n4096 x 14336:\n");
        run(&L, &o, 1, "alps T16:32", 2.0);
        free_layer(&L);
        return 0;
    }
    {
        layer L = make_layer(4096, 4096, 7);
        tsenor_prune_options o;
        tsenor_prune_report r;
        printf("\n4096 x 4096:\n");
        o = popt(TSENOR_PRUNE_SPARSEGPT, 16, 32, 1);
        r = run(&L, &o, 3, "sparsegpt T16:32", 0.1);
        if (peers && !quick) run_peer(&L, "sparsegpt", 16, 32, 1, r.seconds, r.error);
        o = popt(TSENOR_PRUNE_SPARSEGPT, 2, 4, 1);
        run(&L, &o, 3, "sparsegpt T2:4", 0.1);
        o = popt(TSENOR_PRUNE_SPARSEGPT, 2, 4, 0);
        run(&L, &o, 3, "sparsegpt R2:4", 0.1);
        o = popt(TSENOR_PRUNE_WANDA, 16, 32, 1);
        run(&L, &o, 3, "wanda T16:32", 0.0);
        o = popt(TSENOR_PRUNE_ALPS, 16, 32, 1);
        r = run(&L, &o, 1, "alps T16:32", 0.5);
        if (peers && !quick) run_peer(&L, "alps", 16, 32, 1, r.seconds, r.error);
        setenv("TSENOR_CUDA_ALPS_SOLVER", "eigen", 1);
        run(&L, &o, 1, "alps T16:32 (eigen route)", 0.5);
        unsetenv("TSENOR_CUDA_ALPS_SOLVER");
        setenv("TSENOR_CUDA_PRUNE_MATH", "tf32", 1);
        run(&L, &o, 1, "alps T16:32 (tf32 products)", 0.5);
        unsetenv("TSENOR_CUDA_PRUNE_MATH");
        o.mask.method = TSENOR_METHOD_EXACT;
        run(&L, &o, 1, "alps T16:32 (EXACT projections)", 0.0);
        o = popt(TSENOR_PRUNE_ALPS, 32, 64, 1);
        run(&L, &o, 1, "alps T32:64", 0.0);
        o = popt(TSENOR_PRUNE_ALPS, 2, 4, 1);
        run(&L, &o, 1, "alps T2:4", 0.5);
        o = popt(TSENOR_PRUNE_ALPS, 2, 4, 0);
        run(&L, &o, 1, "alps R2:4", 0.5);
        free_layer(&L);
    }
    if (!quick) {
        layer L = make_layer(4096, 14336, 9);
        tsenor_prune_options o;
        printf("\n4096 x 14336:\n");
        o = popt(TSENOR_PRUNE_ALPS, 16, 32, 1);
        run(&L, &o, 1, "alps T16:32", 2.0);
        setenv("TSENOR_CUDA_PRUNE_MATH", "fp32", 1);
        run(&L, &o, 1, "alps T16:32 (plain FP32 trsm)", 2.0);
        unsetenv("TSENOR_CUDA_PRUNE_MATH");
        setenv("TSENOR_CUDA_ALPS_SOLVER", "inverse", 1);
        run(&L, &o, 1, "alps T16:32 (explicit inverse)", 2.0);
        unsetenv("TSENOR_CUDA_ALPS_SOLVER");
        setenv("TSENOR_CUDA_PRUNE_MATH", "tf32", 1);
        run(&L, &o, 1, "alps T16:32 (tf32 products)", 2.0);
        unsetenv("TSENOR_CUDA_PRUNE_MATH");
        o = popt(TSENOR_PRUNE_ALPS, 2, 4, 1);
        run(&L, &o, 1, "alps T2:4", 2.0);
        o = popt(TSENOR_PRUNE_SPARSEGPT, 16, 32, 1);
        run(&L, &o, 1, "sparsegpt T16:32", 0.0);
        free_layer(&L);
    }
    return 0;
}
