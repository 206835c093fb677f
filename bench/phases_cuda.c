/* phases_cuda.c - `make cuda-phases`: where the block kernel's time goes, by stage
   (load, Dykstra, keys + preselection, greedy rounds, repair, local search, store), from
   clock counters that an instrumented build of cuda/tsenor_cuda.cu keeps per warp.
   8192 x 8192 f32 Gaussian, default options, device pointers. Needs a GPU. */
#define TSENOR_CUDA
#define TSENOR_IMPLEMENTATION
#include "../tsenor.h"
#include "../tests/workloads.h"

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tsenor_cuda_phase_clocks(unsigned long long out[8], int reset);   /* instrumented build */

int main(void)
{
    static const char *names[7] = {"load", "dykstra", "keys+preselect", "greedy rounds", "repair", "local search", "store"};
    static const struct { tsenor_method method; int n, m; } runs[] = {
        {TSENOR_METHOD_TSENOR, 8, 16}, {TSENOR_METHOD_TSENOR, 16, 32}, {TSENOR_METHOD_GREEDY, 8, 16}};
    const size_t R = 8192, C = 8192;
    float *w = (float *)malloc(R * C * 4);
    void *dw = NULL, *dm = NULL;
    size_t q;
    if (tsenor_cuda_device_count() == 0) {
        printf("cuda-phases skipped: no CUDA device (%s)\n", tsenor_cuda_last_error());
        return 0;
    }
    if (!w || cudaMalloc(&dw, R * C * 4) != cudaSuccess || cudaMalloc(&dm, R * C) != cudaSuccess) return 1;
    wl_fill(w, R, C, C, WL_GAUSSIAN, 7);
    cudaMemcpy(dw, w, R * C * 4, cudaMemcpyHostToDevice);
    printf("share of warp cycles by stage (instrumented build; 8192x8192 f32 Gaussian, 5 calls)\n");
    for (q = 0; q < sizeof runs / sizeof *runs; q++) {
        tsenor_options o;
        unsigned long long c[8];
        double total = 0.0;
        int r, k;
        memset(&o, 0, sizeof o);
        o.n = runs[q].n;
        o.m = runs[q].m;
        o.method = runs[q].method;
        tsenor_cuda_mask_f32_device((const float *)dw, R, C, C, (uint8_t *)dm, C, &o, NULL, NULL);
        tsenor_cuda_phase_clocks(c, 1);
        for (r = 0; r < 5; r++) tsenor_cuda_mask_f32_device((const float *)dw, R, C, C, (uint8_t *)dm, C, &o, NULL, NULL);
        tsenor_cuda_phase_clocks(c, 1);
        for (k = 0; k < 7; k++) total += (double)c[k];
        printf("%s %d:%d\n", o.method == TSENOR_METHOD_TSENOR ? "tsenor" : "greedy", o.n, o.m);
        for (k = 0; k < 7; k++) printf("  %-16s %5.1f%%\n", names[k], 100.0 * (double)c[k] / total);
    }
    cudaFree(dw);
    cudaFree(dm);
    free(w);
    return 0;
}
