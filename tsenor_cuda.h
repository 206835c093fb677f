/* tsenor_cuda.h - the CUDA backend of tsenor.h: the same masks, computed on an NVIDIA GPU.
   MIT licence (see tsenor.h / LICENSE).

   USE FROM C OR C++, HOST POINTERS (nothing else changes)

       // in exactly one .c/.cpp file:
       #define TSENOR_CUDA              // tsenor_mask_* now run on the GPU
       #define TSENOR_IMPLEMENTATION
       #include "tsenor.h"

       build:  make cuda                // -> build/tsenor_cuda.o (nvcc, sm_80 + sm_90 + PTX)
       link:   cc app.c build/tsenor_cuda.o -L$CUDA_HOME/lib64 -lcudart_static -ldl -lrt -lpthread -lstdc++ -lm

   tsenor_mask_f32/f16/bf16 keep their signatures and meaning (zero-padded edge blocks,
   mask untouched on error, the same mask for the same input). Inputs larger than the free
   device memory are processed in chunks of block rows. EXACT, and patterns with m > 32,
   run on the CPU solver of tsenor.h (report->backend says "cpu-..."); everything else on
   the GPU (report->backend = "cuda"). A missing GPU or a CUDA failure returns
   TSENOR_ERR_DEVICE, and tsenor_cuda_last_error() gives CUDA's text.

   DEVICE POINTERS (frameworks: a PyTorch tensor's data_ptr())

       tsenor_cuda_mask_f32_device(w_dev, rows, cols, ld, mask_dev, mask_ld, &opt, &report, stream);

   Work is queued on `stream` (a cudaStream_t; NULL = the default stream) and the call
   returns when it is done. The input is scanned for NaN/Inf before anything is written,
   so mask_dev is untouched on every error too. EXACT and m > 32 are not available here
   (TSENOR_ERR_INVALID_ARGUMENT): copy to the host and use tsenor_mask_*.

   The report's `kernel_seconds` is the GPU time of the solving kernels (CUDA events);
   `seconds` is the wall time of the whole call, host-to-host. */
#ifndef TSENOR_CUDA_H
#define TSENOR_CUDA_H

#include "tsenor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Host pointers, as tsenor_mask_*: copy in, solve, copy out. */
tsenor_status tsenor_cuda_mask_f32(const float *w, size_t rows, size_t cols, size_t ld, uint8_t *mask,
                                   size_t mask_ld, const tsenor_options *opt, tsenor_report *report);
tsenor_status tsenor_cuda_mask_f16(const uint16_t *w, size_t rows, size_t cols, size_t ld, uint8_t *mask,
                                   size_t mask_ld, const tsenor_options *opt, tsenor_report *report);
tsenor_status tsenor_cuda_mask_bf16(const uint16_t *w, size_t rows, size_t cols, size_t ld, uint8_t *mask,
                                    size_t mask_ld, const tsenor_options *opt, tsenor_report *report);

/* Device pointers and a stream (cudaStream_t passed as void*; NULL = default stream). */
tsenor_status tsenor_cuda_mask_f32_device(const float *w, size_t rows, size_t cols, size_t ld, uint8_t *mask,
                                          size_t mask_ld, const tsenor_options *opt, tsenor_report *report,
                                          void *stream);
tsenor_status tsenor_cuda_mask_f16_device(const uint16_t *w, size_t rows, size_t cols, size_t ld,
                                          uint8_t *mask, size_t mask_ld, const tsenor_options *opt,
                                          tsenor_report *report, void *stream);
tsenor_status tsenor_cuda_mask_bf16_device(const uint16_t *w, size_t rows, size_t cols, size_t ld,
                                           uint8_t *mask, size_t mask_ld, const tsenor_options *opt,
                                           tsenor_report *report, void *stream);

/* Number of usable CUDA devices (0 when there is no driver or no GPU). */
int tsenor_cuda_device_count(void);

/* CUDA's text for the last TSENOR_ERR_DEVICE of the calling thread ("" if none). */
const char *tsenor_cuda_last_error(void);

/* Largest m the GPU kernels take; larger patterns run on the CPU (host-pointer calls). */
#define TSENOR_CUDA_MAX_M 32

#ifdef __cplusplus
}
#endif

#endif /* TSENOR_CUDA_H */
