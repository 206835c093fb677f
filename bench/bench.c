/* bench.c - `make bench`: time, throughput, quality and memory of every method, and the
   peers in bench/peers/ measured in the same run on the same matrices.

   Every row runs in a forked child that holds only the input (shared with the parent),
   the mask and the library's scratch, so its peak RSS is that call's. Time is the
   library's wall time (tsenor_report.seconds), best of 3 calls (the first call also
   pays the kernel's page faults on the fresh mask buffer). Error is the relative
   error of pruned magnitude against EXACT, measured on the top-left 1024 x 1024 of the
   same matrix (the whole matrix when smaller): blocks are independent, so that is the
   method's own mask on those blocks.

   Usage: build/bench [--quick] [--no-peers]     (make bench) */
#define _XOPEN_SOURCE 700   /* fork, pipe, popen, getrusage */
#define TSENOR_IMPLEMENTATION
#include "../tsenor.h"
#include "../tests/workloads.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct row_result {
    double seconds, kept, total, error;
    long peak_rss_kb;
    int status, threads;
    char backend[24];
} row_result;

/* The method's error against EXACT on the top-left sample of w. */
static double sample_error(const float *w, size_t rows, size_t cols, const tsenor_options *opt)
{
    const size_t sr = rows < 1024 ? rows : 1024, sc = cols < 1024 ? cols : 1024;
    uint8_t *mx = (uint8_t *)malloc(sr * sc), *mm = (uint8_t *)malloc(sr * sc);
    tsenor_options ox = *opt;
    double e = -1.0;
    ox.method = TSENOR_METHOD_EXACT;
    if (mx && mm && tsenor_mask_f32(w, sr, sc, cols, mx, sc, &ox, NULL) == TSENOR_OK &&
        tsenor_mask_f32(w, sr, sc, cols, mm, sc, opt, NULL) == TSENOR_OK)
        e = wl_relative_error(w, sr, sc, cols, mm, mx, sc, opt->m).matrix;
    free(mx);
    free(mm);
    return e;
}

static row_result run_row(const float *w, size_t rows, size_t cols, tsenor_options opt, int reps)
{
    row_result r;
    int fd[2], st;
    pid_t pid;
    memset(&r, 0, sizeof r);
    r.status = -1;
    if (pipe(fd) != 0) return r;
    pid = fork();
    if (pid == 0) {
        uint8_t *mask = (uint8_t *)malloc(rows * cols);
        struct rusage ru;
        int k;
        row_result c;
        memset(&c, 0, sizeof c);
        c.seconds = 1e30;
        c.status = mask ? 0 : (int)TSENOR_ERR_OUT_OF_MEMORY;
        for (k = 0; k < reps && c.status == 0; k++) {
            tsenor_report rep;
            c.status = (int)tsenor_mask_f32(w, rows, cols, cols, mask, cols, &opt, &rep);
            if (c.status == 0 && rep.seconds < c.seconds) {
                c.seconds = rep.seconds;
                c.kept = rep.kept;
                c.total = rep.total;
                c.threads = rep.threads;
                snprintf(c.backend, sizeof c.backend, "%s", rep.backend);
            }
        }
        getrusage(RUSAGE_SELF, &ru);
        c.peak_rss_kb = ru.ru_maxrss;
        c.error = opt.method == TSENOR_METHOD_ROWWISE ? -1.0 : sample_error(w, rows, cols, &opt);
        if (write(fd[1], &c, sizeof c) != (ssize_t)sizeof c) _exit(1);
        _exit(0);
    }
    close(fd[1]);
    if (pid > 0 && read(fd[0], &r, sizeof r) != (ssize_t)sizeof r) r.status = -1;
    close(fd[0]);
    if (pid > 0) waitpid(pid, &st, 0);
    return r;
}

#include "peers.h"

int main(int argc, char **argv)
{
    int quick = 0, peers = 1, a;
    static const size_t full_sizes[4][2] = {{512, 512}, {4096, 4096}, {8192, 8192}, {4096, 14336}};
    static const size_t quick_sizes[2][2] = {{512, 512}, {2048, 2048}};
    static const int pats[3][2] = {{2, 4}, {8, 16}, {16, 32}};
    static const tsenor_method methods[4] = {TSENOR_METHOD_TSENOR, TSENOR_METHOD_EXACT, TSENOR_METHOD_GREEDY,
                                             TSENOR_METHOD_ROWWISE};
    int nsizes, s, p, k;
    /* the CPU targets (8192 x 8192 f32 Gaussian, 2 threads): method, n, m, seconds */
    static const struct { tsenor_method method; int n, m; double limit; } T[7] = {
        {TSENOR_METHOD_TSENOR, 8, 16, 1.0}, {TSENOR_METHOD_TSENOR, 2, 4, 0.15}, {TSENOR_METHOD_TSENOR, 16, 32, 2.0},
        {TSENOR_METHOD_EXACT, 8, 16, 10.0}, {TSENOR_METHOD_EXACT, 2, 4, 0.15}, {TSENOR_METHOD_GREEDY, 8, 16, 0.5},
        {TSENOR_METHOD_ROWWISE, 8, 16, 0.15}};
    double target_seconds[7] = {-1, -1, -1, -1, -1, -1, -1};
    for (a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--quick")) quick = 1;
        else if (!strcmp(argv[a], "--no-peers")) peers = 0;
        else { fprintf(stderr, "usage: bench [--quick] [--no-peers]\n"); return 2; }
    }
    nsizes = quick ? 2 : 4;
    printf("tsenor %s benchmark: Gaussian f32 matrices, default options, all cores\n", tsenor_version());
    printf("time = best of 3 calls (library wall time); Melem/s = rows x cols / time, in millions of\n"
           "weights per second; error vs EXACT on the top-left 1024x1024; peak RSS = the child process\n"
           "holding input + mask + library\n\n");
    printf("%-12s %-6s %-8s %10s %10s %10s %10s  %s\n", "size", "n:m", "method", "time s", "Melem/s", "error",
           "peakRSS MB", "backend");
    for (s = 0; s < nsizes; s++) {
        const size_t rows = quick ? quick_sizes[s][0] : full_sizes[s][0];
        const size_t cols = quick ? quick_sizes[s][1] : full_sizes[s][1];
        float *w = (float *)malloc(rows * cols * sizeof *w);
        char size_name[32];
        if (!w) return 1;
        wl_fill(w, rows, cols, cols, WL_GAUSSIAN, 7);
        snprintf(size_name, sizeof size_name, "%zux%zu", rows, cols);
        for (p = 0; p < 3; p++) {
            for (k = 0; k < 4; k++) {
                tsenor_options opt;
                row_result r;
                const double elems = (double)rows * (double)cols;
                char err[24];
                memset(&opt, 0, sizeof opt);
                opt.n = pats[p][0];
                opt.m = pats[p][1];
                opt.method = methods[k];
                r = run_row(w, rows, cols, opt, 3);
                if (r.status != 0) {
                    printf("%-12s %2d:%-3d %-8s failed (status %d)\n", size_name, opt.n, opt.m,
                           tsenor_method_string(methods[k]), r.status);
                    continue;
                }
                if (r.error < 0) snprintf(err, sizeof err, "%10s", "n/a");
                else snprintf(err, sizeof err, "%9.4f%%", 100.0 * r.error);
                if (rows == 8192 && cols == 8192) {
                    int q;
                    for (q = 0; q < 7; q++)
                        if (T[q].method == methods[k] && T[q].n == opt.n && T[q].m == opt.m) target_seconds[q] = r.seconds;
                }
                printf("%-12s %2d:%-3d %-8s %10.4f %10.1f %s %10.1f  %s x%d\n", size_name, opt.n, opt.m,
                       tsenor_method_string(methods[k]), r.seconds, elems / r.seconds / 1e6, err, r.peak_rss_kb / 1024.0,
                       r.backend, r.threads);
                fflush(stdout);
            }
        }
        free(w);
    }

    if (!quick) {
        int q;
        printf("\ntargets (8192x8192 f32 Gaussian, 2 threads):\n");
        for (q = 0; q < 7; q++) {
            if (target_seconds[q] < 0) continue;
            printf("  %-8s %2d:%-3d %8.3f s  target <= %5.2f s  %s\n", tsenor_method_string(T[q].method), T[q].n, T[q].m,
                   target_seconds[q], T[q].limit, target_seconds[q] <= T[q].limit ? "met" : "MISSED");
        }
    }

    if (peers) {
        /* peers on one matrix each, sized so that they finish; ratios against our own
           time for the same call on the same matrix */
        static const struct { const char *name, *what; size_t rows, cols; tsenor_method ours; int timeout; } P[3] = {
            {"paper_torch", "paper's algorithm in PyTorch (log-space Dykstra 100 it + greedy + local search)", 2048,
             2048, TSENOR_METHOD_TSENOR, 900},
            {"exact_networkx", "exact min-cost flow per block, networkx (Hubara et al. 2021 style)", 512, 512,
             TSENOR_METHOD_EXACT, 900},
            {"asp_greedy", "ASP-style 2-D greedy, NumPy", 2048, 2048, TSENOR_METHOD_GREEDY, 900},
        };
        int q;
        printf("\npeers (8:16, Gaussian, same matrix as ours; ratio = peer time / tsenor time)\n");
        for (q = 0; q < 3; q++) {
            const size_t rows = P[q].rows, cols = P[q].cols;
            float *w = (float *)malloc(rows * cols * sizeof *w);
            uint8_t *mx = (uint8_t *)malloc(rows * cols), *mo = (uint8_t *)malloc(rows * cols);
            tsenor_options opt;
            tsenor_report rep;
            peer_result pr;
            double best = 1e30;
            int rr;
            if (!w || !mx || !mo) return 1;
            wl_fill(w, rows, cols, cols, WL_GAUSSIAN, 7);
            memset(&opt, 0, sizeof opt);
            opt.n = 8; opt.m = 16;
            opt.method = TSENOR_METHOD_EXACT;
            tsenor_mask_f32(w, rows, cols, cols, mx, cols, &opt, NULL);
            opt.method = P[q].ours;
            for (rr = 0; rr < 3; rr++) {
                tsenor_mask_f32(w, rows, cols, cols, mo, cols, &opt, &rep);
                if (rep.seconds < best) best = rep.seconds;
            }
            pr = run_peer(P[q].name, w, rows, cols, 8, 16, mx, P[q].timeout);
            printf("  %-15s %s\n", P[q].name, P[q].what);
            if (!pr.ran) {
                printf("  %-15s skipped: %s\n", "", pr.note);
            } else {
                const double blocks = (double)(rows / 16) * (double)(cols / 16);
                /* a peer may solve a sample of blocks: compare per block */
                const double ours_per_block = best / blocks, peer_per_block = pr.seconds / pr.blocks;
                printf("  %-15s %zux%zu: peer %.4f s for %.0f blocks (%.3g ms/block), error %.4f%%, "
                       "%.0f blocks not transposable %d:%d\n"
                       "  %-15s tsenor, method %s: %.4f s (%.3g ms/block), error %.4f%%; ratio %.1fx\n",
                       "", rows, cols, pr.seconds, pr.blocks, 1e3 * peer_per_block, 100.0 * pr.error, pr.invalid,
                       8, 16, "",
                       tsenor_method_string(P[q].ours), best, 1e3 * ours_per_block,
                       100.0 * wl_relative_error(w, rows, cols, cols, mo, mx, cols, 16).matrix,
                       peer_per_block / ours_per_block);
            }
            fflush(stdout);
            free(w); free(mx); free(mo);
        }
    }
    return 0;
}
