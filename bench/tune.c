/* tune.c - how the defaults were chosen: sweeps tau x Dykstra iterations x local-search
   steps and prints TSENOR's error against the exact optimum on the three test
   distributions, per pattern. Usage: build/tune [size] [seeds]  (make tune) */
#define TSENOR_IMPLEMENTATION
#include "../tsenor.h"
#include "../tests/workloads.h"
#include <stdio.h>

int main(int argc, char **argv)
{
    const size_t size = argc > 1 ? (size_t)atol(argv[1]) : 256;
    const int seeds = argc > 2 ? atoi(argv[2]) : 1;
    static const int pats[4][2] = {{2, 4}, {4, 8}, {8, 16}, {16, 32}};
    static const float taus[] = {0.005f, 0.01f, 0.02f};
    static const float starts[] = {0.0f, 0.16f, 0.5f};   /* 0: no annealing (= tau) */
    static const int iters[] = {20, 40, 70, 100};
    static const int ls[] = {-1, 0};
    float *w = (float *)malloc(size * size * sizeof *w);
    uint8_t *opt_mask = (uint8_t *)malloc(size * size), *mask = (uint8_t *)malloc(size * size);
    int p, d, t, it, l, s, st;
    if (!w || !opt_mask || !mask) return 1;
    printf("%-6s %-13s %-6s %-6s %-5s %-3s %10s %10s %10s %8s\n", "n:m", "dist", "tau", "start", "iters", "ls",
           "err_matrix", "err_blocks", "worst_blk", "sec");
    for (p = 0; p < 4; p++)
        for (d = 0; d < WL_DIST_COUNT; d++)
            for (t = 0; t < (int)(sizeof taus / sizeof *taus); t++)
            for (st = 0; st < (int)(sizeof starts / sizeof *starts); st++)
                for (it = 0; it < (int)(sizeof iters / sizeof *iters); it++)
                    for (l = 0; l < 2; l++) {
                        double em = 0, eb = 0, worst = 0, sec = 0;
                        for (s = 0; s < seeds; s++) {
                            tsenor_options o = {0};
                            tsenor_report rep;
                            wl_error e;
                            wl_fill(w, size, size, size, (wl_dist)d, 1000 + (uint64_t)s);
                            o.n = pats[p][0]; o.m = pats[p][1];
                            o.method = TSENOR_METHOD_EXACT;
                            if (tsenor_mask_f32(w, size, size, size, opt_mask, size, &o, NULL)) return 1;
                            o.method = TSENOR_METHOD_TSENOR;
                            o.tau = taus[t]; o.tau_start = starts[st] > 0 ? starts[st] : taus[t]; o.iterations = iters[it]; o.local_search_steps = ls[l];
                            if (tsenor_mask_f32(w, size, size, size, mask, size, &o, &rep)) return 1;
                            e = wl_relative_error(w, size, size, size, mask, opt_mask, size, o.m);
                            em += e.matrix / seeds; eb += e.block_mean / seeds; sec += rep.seconds;
                            if (e.worst_block > worst) worst = e.worst_block;
                        }
                        printf("%2d:%-3d %-13s %-6.3f %-6.3f %-5d %-3s %9.4f%% %9.4f%% %9.3f%% %8.4f\n", pats[p][0], pats[p][1],
                               wl_dist_name((wl_dist)d), taus[t], starts[st] > 0 ? starts[st] : taus[t], iters[it], ls[l] < 0 ? "no" : "yes",
                               100 * em, 100 * eb, 100 * worst, sec);
                        fflush(stdout);
                    }
    free(w); free(opt_mask); free(mask);
    return 0;
}
