/* bench_cuda.c - `make bench-cuda`: the CUDA backend's speed and quality, and the
   paper's algorithm in PyTorch on the same GPU (bench/peers/paper_torch.py), same run;
   for n:4, PyTorch's own 2:4 tile kernel (bench/peers/sparse_tile_torch.py) and the
   90-pattern exact solve in PyTorch (bench/peers/exact_patterns_torch.py) next to
   tsenor's n:4 kernel, on the same bf16-valued matrix.

   kernel = GPU time of the solving kernels (CUDA events, report.kernel_seconds) through
   the device-pointer entry point, median of 20 calls after 3 warm-ups; host = wall time
   of the host-pointer call (copy in, solve, copy out), median of 5. Error = relative
   error of pruned magnitude against EXACT (CPU) over the whole 8192 x 8192 matrix.
   Density = kept / all entries; short lines = the share of the blocks' rows and columns
   that keep fewer than n.

   EXACT rows (8:16, 16:32): the GPU's cycle cancelling from TSENOR's mask; their error
   column is the relative difference of pruned magnitude against the CPU's EXACT (0 up
   to rounding; the masks may differ where optima tie).

   Usage: build/bench_cuda [--no-peers] [--n4 | --exact]
          (--n4: the n:4 section and its peers only; --exact: the EXACT rows, the
          TSENOR rows they start from, and the m = 64 rows) */
#define _XOPEN_SOURCE 700   /* popen */
#define TSENOR_CUDA
#define TSENOR_IMPLEMENTATION
#include "../tsenor.h"
#include "../tests/workloads.h"

#include <cuda_runtime_api.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peers.h"

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Median kernel time of the device-pointer call, or -1 on failure. */
static double kernel_median(const void *dw, int bf16, size_t rows, size_t cols, uint8_t *dm, const tsenor_options *o,
                            int reps)
{
    double t[64];
    int r;
    for (r = -3; r < reps; r++) {
        tsenor_report rep;
        const tsenor_status s = bf16 ? tsenor_cuda_mask_bf16_device((const uint16_t *)dw, rows, cols, cols, dm, cols, o, &rep, NULL)
                                     : tsenor_cuda_mask_f32_device((const float *)dw, rows, cols, cols, dm, cols, o, &rep, NULL);
        if (s != TSENOR_OK) {
            printf("device call failed: %s (%s)\n", tsenor_status_string(s), tsenor_cuda_last_error());
            return -1.0;
        }
        if (r >= 0) t[r] = rep.kernel_seconds;
    }
    return median(t, reps);
}

static const char *mname(tsenor_method m)
{
    return m == TSENOR_METHOD_TSENOR ? "tsenor" : m == TSENOR_METHOD_EXACT ? "exact"
         : m == TSENOR_METHOD_GREEDY ? "greedy" : "rowwise";
}

/* One peer of the n:4 section: its line, and the ratio to tsenor's kernel time. */
static void print_n4_peer(const char *name, const char *what, const peer_result *p, double ours_s, const char *ours)
{
    printf("  %-22s %s\n", name, what);
    if (!p->ran) {
        printf("  %-22s %s\n", "", p->note);
        return;
    }
    printf("  %-22s peer %.3f ms, error %.4f%%, density %.4f, %.2f%% of block rows/columns keep < 2, %.0f blocks not 2:4\n"
           "  %-22s tsenor %s %.3f ms, error 0 (the optimum), density 0.5000; peer / tsenor = %.1fx\n",
           "", 1e3 * p->seconds, 100 * p->error, p->density, 100 * p->short_lines, p->invalid, "", ours, 1e3 * ours_s,
           p->seconds / ours_s);
}

int main(int argc, char **argv)
{
    static const struct { tsenor_method method; int n, m; double target_ms; } rows_spec[] = {
        {TSENOR_METHOD_TSENOR, 8, 16, 3.0}, {TSENOR_METHOD_TSENOR, 2, 4, 0.3}, {TSENOR_METHOD_TSENOR, 16, 32, 5.0},
        {TSENOR_METHOD_GREEDY, 8, 16, 0.0}, {TSENOR_METHOD_ROWWISE, 8, 16, 0.0},
        {TSENOR_METHOD_EXACT, 8, 16, 10.0}, {TSENOR_METHOD_EXACT, 16, 32, 30.0}};
    const size_t R = 8192, C = 8192;
    int peers = 1, n4_only = 0, exact_only = 0, a;
    float *w = (float *)malloc(R * C * 4);
    uint8_t *mask = (uint8_t *)malloc(R * C), *exact = (uint8_t *)malloc(R * C);
    void *dw = NULL, *dm = NULL;
    struct cudaDeviceProp prop;
    double tsenor_8_16_kernel = 0.0, tsenor_8_16_error = 0.0;
    size_t q;

    for (a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--no-peers")) peers = 0;
        else if (!strcmp(argv[a], "--n4")) n4_only = 1;
        else if (!strcmp(argv[a], "--exact")) exact_only = 1;
        else { fprintf(stderr, "usage: bench_cuda [--no-peers] [--n4 | --exact]\n"); return 2; }
    }
    if (tsenor_cuda_device_count() == 0) {
        printf("bench-cuda skipped: no CUDA device (%s)\n", tsenor_cuda_last_error());
        return 0;
    }
    if (!w || !mask || !exact || cudaMalloc(&dw, R * C * 4) != cudaSuccess || cudaMalloc(&dm, R * C) != cudaSuccess) {
        printf("out of memory\n");
        return 1;
    }
    cudaGetDeviceProperties(&prop, 0);
    printf("tsenor %s CUDA benchmark on %s (%d SMs), Gaussian f32 8192x8192, default options\n", tsenor_version(),
           prop.name, prop.multiProcessorCount);
    printf("kernel = median of 20 device-pointer calls (CUDA events); host = median of 5 host-pointer calls\n");
    printf("error = vs EXACT (CPU) on the whole matrix\n\n");
    wl_fill(w, R, C, C, WL_GAUSSIAN, 7);
    cudaMemcpy(dw, w, R * C * 4, cudaMemcpyHostToDevice);

    if (!n4_only)
        printf("%-8s %-6s %10s %10s %12s %10s  %s\n", "method", "n:m", "kernel ms", "host ms", "Gelem/s", "error", "target");
    for (q = 0; q < (n4_only ? 0 : sizeof rows_spec / sizeof *rows_spec); q++) {
        tsenor_options o, ox;
        double host[5], kernel_s, err = -1.0;
        int r;
        if (exact_only && rows_spec[q].method != TSENOR_METHOD_EXACT && rows_spec[q].m == 4) continue;
        if (exact_only && rows_spec[q].method != TSENOR_METHOD_EXACT && rows_spec[q].method != TSENOR_METHOD_TSENOR) continue;
        memset(&o, 0, sizeof o);
        o.n = rows_spec[q].n;
        o.m = rows_spec[q].m;
        o.method = rows_spec[q].method;
        kernel_s = kernel_median(dw, 0, R, C, (uint8_t *)dm, &o, 20);
        for (r = 0; r < 5; r++) {
            tsenor_report rep;
            if (tsenor_mask_f32(w, R, C, C, mask, C, &o, &rep) != TSENOR_OK) { host[r] = -1; continue; }
            host[r] = rep.seconds;
        }
        if (o.method != TSENOR_METHOD_ROWWISE) {
            ox = o;
            ox.method = TSENOR_METHOD_EXACT;
            if (tsenor_cpu_mask_f32(w, R, C, C, exact, C, &ox, NULL) == TSENOR_OK)
                err = wl_relative_error(w, R, C, C, mask, exact, C, o.m).matrix;
        }
        printf("%-8s %2d:%-3d %10.3f %10.1f %12.1f ", mname(o.method), o.n, o.m, 1e3 * kernel_s, 1e3 * median(host, 5),
               (double)(R * C) / kernel_s * 1e-9);
        if (err >= 0.0 && o.method == TSENOR_METHOD_EXACT) printf("%10.1e", err);   /* vs the CPU's EXACT */
        else if (err >= 0.0) printf("%9.4f%%", 100 * err);
        else printf("%10s", "n/a");
        if (rows_spec[q].target_ms > 0)
            printf("  <= %.1f ms %s", rows_spec[q].target_ms, 1e3 * kernel_s <= rows_spec[q].target_ms ? "met" : "MISSED");
        if (o.method == TSENOR_METHOD_EXACT)
            printf(", mask %s, kept %s the CPU's EXACT", tsenor_check(mask, R, C, C, o.n, o.m, 1) == TSENOR_OK ? "valid" : "INVALID",
                   err >= 0.0 && fabs(err) <= 1e-6 ? "=" : "!=");
        printf("\n");
        if (o.method == TSENOR_METHOD_TSENOR && o.m == 16) { tsenor_8_16_kernel = kernel_s; tsenor_8_16_error = err; }
    }

    if (!n4_only) {   /* m = 64: a CTA per block (TSENOR, GREEDY); pruned magnitude against the
           CPU's TSENOR on the same matrix, whose wall time (this host's cores) is the peer */
        static const tsenor_method wide[] = {TSENOR_METHOD_TSENOR, TSENOR_METHOD_GREEDY};
        double cpu_s = -1.0, cpu_kept = 0.0, tsenor_64_kernel = -1.0;
        int k;
        printf("\nm = 64 (a CTA per block), 32:64; kept vs the CPU's TSENOR on the same matrix:\n");
        printf("  %-8s %10s %10s %12s %14s\n", "method", "kernel ms", "host ms", "Gelem/s", "kept vs CPU");
        {
            tsenor_options oc;
            tsenor_report rc;
            memset(&oc, 0, sizeof oc);
            oc.n = 32;
            oc.m = 64;
            if (tsenor_cpu_mask_f32(w, R, C, C, exact, C, &oc, &rc) == TSENOR_OK) { cpu_s = rc.seconds; cpu_kept = rc.kept; }
        }
        for (k = 0; k < 2; k++) {
            tsenor_options o;
            tsenor_report rep;
            double host[5], ks;
            int r;
            memset(&o, 0, sizeof o);
            o.n = 32;
            o.m = 64;
            o.method = wide[k];
            ks = kernel_median(dw, 0, R, C, (uint8_t *)dm, &o, 10);
            if (k == 0) tsenor_64_kernel = ks;
            for (r = 0; r < 5; r++) host[r] = tsenor_mask_f32(w, R, C, C, mask, C, &o, &rep) == TSENOR_OK ? rep.seconds : -1.0;
            printf("  %-8s %10.3f %10.1f %12.1f %+13.4f%%  mask %s\n", mname(o.method), 1e3 * ks, 1e3 * median(host, 5),
                   (double)(R * C) / ks * 1e-9, cpu_kept > 0 ? 100.0 * (rep.kept - cpu_kept) / cpu_kept : 0.0,
                   tsenor_check(mask, R, C, C, o.n, o.m, 1) == TSENOR_OK ? "valid" : "INVALID");
        }
        if (cpu_s > 0 && tsenor_64_kernel > 0)
            printf("  CPU TSENOR 32:64 (tsenor_cpu_mask_f32, this host's threads): %.1f ms; the GPU kernel is %.0fx faster\n",
                   1e3 * cpu_s, cpu_s / tsenor_64_kernel);
    }

    if (exact_only) goto finish;
    {   /* n:4 exactly (TSENOR and EXACT take the same kernel): bf16 and f32 through
           device pointers, each mask checked bit for bit against the CPU's */
        uint16_t *hb = (uint16_t *)malloc(R * C * 2);
        uint8_t *cpu = (uint8_t *)malloc(R * C);
        void *dhb = NULL;
        double n4_bf16_24 = -1.0, n4_f32_24 = -1.0;
        size_t k;
        int n, dt;
        if (!hb || !cpu || cudaMalloc(&dhb, R * C * 2) != cudaSuccess) {
            printf("out of memory\n");
            return 1;
        }
        for (k = 0; k < R * C; k++) hb[k] = wl_bf16(w[k]);
        cudaMemcpy(dhb, hb, R * C * 2, cudaMemcpyHostToDevice);
        printf("\nn:4 exactly (device pointers; bytes = input + mask):\n");
        printf("  %-6s %-5s %10s %12s %10s  %s\n", "n:m", "dtype", "kernel ms", "Gelem/s", "GB/s", "mask vs the CPU's");
        for (n = 1; n <= 3; n++)
            for (dt = 0; dt < 2; dt++) {
                tsenor_options o;
                double ks;
                memset(&o, 0, sizeof o);
                o.n = n;
                o.m = 4;
                o.method = TSENOR_METHOD_EXACT;
                ks = kernel_median(dt ? dhb : dw, dt, R, C, (uint8_t *)dm, &o, 20);
                cudaMemcpy(mask, dm, R * C, cudaMemcpyDeviceToHost);
                if (dt) tsenor_cpu_mask_bf16(hb, R, C, C, cpu, C, &o, NULL);
                else tsenor_cpu_mask_f32(w, R, C, C, cpu, C, &o, NULL);
                printf("  %d:4    %-5s %10.4f %12.1f %10.0f  %s", n, dt ? "bf16" : "f32", 1e3 * ks, (double)(R * C) / ks * 1e-9,
                       (double)(R * C) * (dt ? 3.0 : 5.0) / ks * 1e-9, memcmp(mask, cpu, R * C) == 0 ? "identical" : "DIFFERENT");
                if (n == 2 && dt) printf("  target <= 0.3 ms %s", 1e3 * ks <= 0.3 ? "met" : "MISSED");
                printf("\n");
                if (n == 2) *(dt ? &n4_bf16_24 : &n4_f32_24) = ks;
            }
        if (peers) {   /* the same bf16 values for everyone (as f32 for the exact peer); the optimum is the CPU's n:4 */
            float *wb = (float *)malloc(R * C * 4);
            tsenor_options ox;
            peer_result tile, ex;
            if (!wb) return 1;
            for (k = 0; k < R * C; k++) {
                const uint32_t u = (uint32_t)hb[k] << 16;
                memcpy(&wb[k], &u, 4);
            }
            memset(&ox, 0, sizeof ox);
            ox.n = 2;
            ox.m = 4;
            ox.method = TSENOR_METHOD_EXACT;
            tsenor_cpu_mask_f32(wb, R, C, C, exact, C, &ox, NULL);
            printf("\npeers, transposable 2:4 on the same 8192x8192 bf16 values (error vs the optimum):\n");
            tile = run_peer("sparse_tile_torch", wb, R, C, 2, 4, exact, 600);
            print_n4_peer("sparse_tile_torch", "PyTorch's 2:4 tile kernel (torch._sparse_semi_structured_tile), bf16, "
                          "largest_abs_values_greedy", &tile, n4_bf16_24, "2:4 bf16 kernel");
            ex = run_peer("exact_patterns_torch", wb, R, C, 2, 4, exact, 600);
            print_n4_peer("exact_patterns_torch", "exact in PyTorch: the 90 patterns scored by one f32 matmul, argmax", &ex,
                          n4_f32_24, "2:4 f32 kernel");
            if (tile.ran)
                printf("  target: tsenor 2:4 bf16 <= 0.3 ms and <= the tile kernel's time: %s\n",
                       n4_bf16_24 <= 3e-4 && n4_bf16_24 <= tile.seconds ? "met" : "MISSED");
            free(wb);
        }
        cudaFree(dhb);
        free(hb);
        free(cpu);
    }

    if (!n4_only) {   /* where the time goes: load + rounding alone (1 iteration, no local search),
           Dykstra at 50 and 100 iterations + rounding (no local search; the difference
           is the cost of 50 sweeps), everything (n:4 takes no iterations: not here) */
        static const int pats[][2] = {{8, 16}, {16, 32}, {32, 64}};
        int p;
        printf("\nbreakdown (kernel ms):   1 it, no LS    50 it, no LS   100 it, no LS   default\n");
        for (p = 0; p < 3; p++) {
            tsenor_options o;
            double t1, t50, t2, t3;
            memset(&o, 0, sizeof o);
            o.n = pats[p][0];
            o.m = pats[p][1];
            o.local_search_steps = -1;
            o.iterations = 1;
            t1 = kernel_median(dw, 0, R, C, (uint8_t *)dm, &o, 10);
            o.iterations = 50;
            t50 = kernel_median(dw, 0, R, C, (uint8_t *)dm, &o, 10);
            o.iterations = 0;
            t2 = kernel_median(dw, 0, R, C, (uint8_t *)dm, &o, 10);
            o.local_search_steps = 0;
            t3 = kernel_median(dw, 0, R, C, (uint8_t *)dm, &o, 10);
            printf("  tsenor %2d:%-3d          %10.3f   %13.3f   %13.3f   %7.3f\n", o.n, o.m, 1e3 * t1, 1e3 * t50,
                   1e3 * t2, 1e3 * t3);
        }
    }

    if (!n4_only) {   /* an 8B-class LLM's MLP weight, bf16 */
        const size_t LR = 28672, LC = 8192;
        uint16_t *h = (uint16_t *)malloc(LR * LC * 2);
        void *dh = NULL, *dlm = NULL;
        tsenor_options o;
        memset(&o, 0, sizeof o);
        o.n = 8;
        o.m = 16;
        if (h && cudaMalloc(&dh, LR * LC * 2) == cudaSuccess && cudaMalloc(&dlm, LR * LC) == cudaSuccess) {
            size_t k;
            double ks;
            for (k = 0; k < LR * LC; k++) {
                h[k] = wl_bf16(w[k % (R * C)] * (k >= R * C ? -0.5f : 1.0f));
            }
            cudaMemcpy(dh, h, LR * LC * 2, cudaMemcpyHostToDevice);
            ks = kernel_median(dh, 1, LR, LC, (uint8_t *)dlm, &o, 10);
            printf("\n28672x8192 bf16 (LLM MLP), tsenor 8:16: kernel %.3f ms, %.1f Gelem/s\n", 1e3 * ks,
                   (double)(LR * LC) / ks * 1e-9);
            {   /* a whole model: the linear layers of Llama-3-8B (32 decoder layers; the
                   embeddings and the output head are not pruned), each shape timed on
                   the GPU (views of the buffer above) and weighted by its count */
                static const struct { size_t rows, cols; int per_layer; const char *name; } shapes[] = {
                    {4096, 4096, 2, "q,o"}, {1024, 4096, 2, "k,v"}, {14336, 4096, 2, "gate,up"}, {4096, 14336, 1, "down"}};
                double elements = 0.0, seconds = 0.0;
                size_t q2;
                for (q2 = 0; q2 < sizeof shapes / sizeof *shapes; q2++) {
                    const double t = kernel_median(dh, 1, shapes[q2].rows, shapes[q2].cols, (uint8_t *)dlm, &o, 5);
                    elements += 32.0 * shapes[q2].per_layer * (double)(shapes[q2].rows * shapes[q2].cols);
                    seconds += 32.0 * shapes[q2].per_layer * t;
                }
                printf("whole model, Llama-3-8B linear layers (224 matrices, %.2f G elements, bf16), tsenor 8:16: "
                       "kernel %.1f ms in all, %.1f Gelem/s\n", elements * 1e-9, 1e3 * seconds, elements / seconds * 1e-9);
            }
        }
        cudaFree(dh);
        cudaFree(dlm);
        free(h);
    }

    if (peers && !n4_only) {   /* the paper's algorithm in PyTorch, on this GPU, the same 8192^2 8:16 */
        tsenor_options ox;
        peer_result p;
        memset(&ox, 0, sizeof ox);
        ox.n = 8;
        ox.m = 16;
        ox.method = TSENOR_METHOD_EXACT;
        tsenor_cpu_mask_f32(w, R, C, C, exact, C, &ox, NULL);
        p = run_peer("paper_torch", w, R, C, 8, 16, exact, 900);
        printf("\npeer paper_torch (PyTorch, 100 log-space Dykstra iterations + greedy + local search), 8192x8192 8:16:\n");
        if (!p.ran) printf("  %s\n", p.note);
        else
            printf("  peer %.1f ms, error %.4f%%, %.0f blocks not transposable; tsenor kernel %.3f ms, error %.4f%%; "
                   "ratio %.1fx\n",
                   1e3 * p.seconds, 100 * p.error, p.invalid, 1e3 * tsenor_8_16_kernel, 100 * tsenor_8_16_error,
                   p.seconds / tsenor_8_16_kernel);
    }
finish:
    cudaFree(dw);
    cudaFree(dm);
    free(w); free(mask); free(exact);
    return 0;
}
