/* cuda_prune.c - the CUDA backend from C: the same call on host memory (TSENOR_CUDA makes
   tsenor_mask_f32 run on the GPU), then the device-pointer entry point on a buffer that
   already lives on the GPU, with a stream, as a framework would call it. Without a GPU
   it prints CUDA's reason and exits 1.
   Build: make cuda   (builds build/cuda_prune)   Run: ./build/cuda_prune */
#define TSENOR_CUDA
#define TSENOR_IMPLEMENTATION
#include "../tsenor.h"

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    enum { ROWS = 4096, COLS = 4096 };
    float *w = (float *)malloc((size_t)ROWS * COLS * sizeof *w);
    uint8_t *mask = (uint8_t *)malloc((size_t)ROWS * COLS);
    void *w_dev = NULL, *mask_dev = NULL;
    cudaStream_t stream = NULL;
    tsenor_options opt = {0};              /* zeros = defaults */
    tsenor_report rep;
    tsenor_status s;
    size_t i;
    int rc = 1;

    if (!w || !mask) return 1;
    for (i = 0; i < (size_t)ROWS * COLS; i++) w[i] = (float)rand() / RAND_MAX - 0.5f;
    opt.n = 8;
    opt.m = 16;

    /* 1. host pointers: copied to the GPU, solved, copied back */
    s = tsenor_mask_f32(w, ROWS, COLS, COLS, mask, COLS, &opt, &rep);
    if (s != TSENOR_OK) {
        fprintf(stderr, "tsenor: %s (%s)\n", tsenor_status_string(s), tsenor_cuda_last_error());
        goto done;
    }
    printf("host pointers:   kept %.2f%% of |w|, %s, %.2f ms in all, %.3f ms on the GPU, check: %s\n",
           100.0 * rep.kept / rep.total, rep.backend, 1e3 * rep.seconds, 1e3 * rep.kernel_seconds,
           tsenor_status_string(tsenor_check(mask, ROWS, COLS, COLS, 8, 16, 1)));

    /* 2. device pointers on a stream: no copies through the host */
    if (cudaMalloc(&w_dev, (size_t)ROWS * COLS * sizeof *w) != cudaSuccess ||
        cudaMalloc(&mask_dev, (size_t)ROWS * COLS) != cudaSuccess || cudaStreamCreate(&stream) != cudaSuccess) {
        fprintf(stderr, "cuda: allocation failed\n");
        goto done;
    }
    cudaMemcpy(w_dev, w, (size_t)ROWS * COLS * sizeof *w, cudaMemcpyHostToDevice);
    s = tsenor_cuda_mask_f32_device((const float *)w_dev, ROWS, COLS, COLS, (uint8_t *)mask_dev, COLS, &opt, &rep,
                                    stream);
    if (s != TSENOR_OK) {
        fprintf(stderr, "tsenor: %s (%s)\n", tsenor_status_string(s), tsenor_cuda_last_error());
        goto done;
    }
    cudaMemcpy(mask, mask_dev, (size_t)ROWS * COLS, cudaMemcpyDeviceToHost);
    printf("device pointers: kept %.2f%% of |w|, %.3f ms on the GPU, check: %s\n", 100.0 * rep.kept / rep.total,
           1e3 * rep.kernel_seconds, tsenor_status_string(tsenor_check(mask, ROWS, COLS, COLS, 8, 16, 1)));
    rc = 0;
done:
    if (stream) cudaStreamDestroy(stream);
    cudaFree(w_dev);
    cudaFree(mask_dev);
    free(w);
    free(mask);
    return rc;
}
