/* tsenor_cuda.h - the CUDA backend of tsenor.h: the same masks, computed on an NVIDIA GPU.
   MIT licence (see tsenor.h / LICENSE).

   USE FROM C OR C++, HOST POINTERS (nothing else changes)

       // in exactly one .c/.cpp file:
       #define TSENOR_CUDA              // tsenor_mask_* now run on the GPU
       #define TSENOR_IMPLEMENTATION
       #include "tsenor.h"

       build:  make cuda                // -> build/tsenor_cuda.o, build/tsenor_cuda_prune.o (nvcc, sm_80 + sm_90 + PTX)
       link:   cc app.c build/tsenor_cuda.o build/tsenor_cuda_prune.o -L$CUDA_HOME/lib64 -Wl,-rpath,$CUDA_HOME/lib64 -lcusolver -lcublas -lcudart_static -ldl -lrt -lpthread -lstdc++ -lm

   tsenor_mask_f32/f16/bf16 keep their signatures and meaning (zero-padded edge blocks,
   mask untouched on error, the same mask for the same input). Inputs larger than the free
   device memory are processed in chunks of block rows. Every method runs on the GPU up to
   m = TSENOR_CUDA_MAX_M = 64 but EXACT, which runs there up to TSENOR_CUDA_MAX_M_EXACT = 32
   and beyond on the CPU solver of tsenor.h (report->backend then says "cpu-...";
   otherwise "cuda"). n:4 (EXACT and TSENOR) is the CPU's exact n:4 search, one thread
   per 4x4 block, with the same masks bit for bit; EXACT at every other m starts from
   the TSENOR kernel's mask and cancels the negative cycles of every block's residual
   graph (Bellman-Ford over the 2m row and column nodes, one warp per block, |w| exact and
   the path costs in double, the CPU's tolerance), so it keeps what the CPU's EXACT keeps
   up to rounding; where several masks keep the same magnitude it may choose another of
   them. TSENOR and GREEDY above m = 32 take a CTA per block; TSENOR's plan agrees with
   the CPU's to rounding at every m, and so does its kept magnitude. GREEDY and ROWWISE
   give the CPU's masks bit for bit. A missing GPU or a CUDA
   failure returns TSENOR_ERR_DEVICE, and tsenor_cuda_last_error() gives CUDA's text.

   DEVICE POINTERS (frameworks: a PyTorch tensor's data_ptr())

       tsenor_cuda_mask_f32_device(w_dev, rows, cols, ld, mask_dev, mask_ld, &opt, &report, stream);

   Work is queued on `stream` (a cudaStream_t; NULL = the default stream) and the call
   returns when it is done. The input is scanned for NaN/Inf before anything is written,
   so mask_dev is untouched on every error too. EXACT with m > 32 is not available here
   (TSENOR_ERR_INVALID_ARGUMENT): copy to the host and use tsenor_mask_*.

   The report's `kernel_seconds` is the GPU time of the solving kernels (CUDA events);
   `seconds` is the wall time of the whole call, host-to-host.

   PRUNING WITH CALIBRATION DATA (tsenor_prune_f32 of tsenor.h; with TSENOR_CUDA it runs here)

       tsenor_cuda_prune_f32(w, rows, cols, ld, gram, gram_ld, out, out_ld, mask, mask_ld, &opt, &rep);
       tsenor_cuda_prune_f32_device(..., &opt, &rep, stream);     // device pointers, a stream
       tsenor_cuda_gram_f32_device(x, tokens, cols, ld, gram, gram_ld, stream);   // gram += x^T x

   The same methods, options, checks and report as the CPU (NaN/Inf in w or gram:
   TSENOR_ERR_NONFINITE_INPUT; gram asymmetric, or not positive definite after damping:
   TSENOR_ERR_INVALID_ARGUMENT; neither out nor mask written on any error). cuBLAS does
   the products, cuSOLVER the factorisations, the block solver the projections. The
   results equal the CPU's up to rounding: FP32-accurate products with double sums. ALPS's
   large products (its ADMM solves, the products with H and the CG products) run
   split-TF32: each FP32 operand split into its TF32 rounding and the rest, three TF32
   tensor-core products (hi*lo + lo*hi + hi*hi), FP32-accurate at about 3x less time
   than FP32 products. TSENOR_CUDA_PRUNE_MATH=fp32 runs them as cuBLAS FP32 products
   (and cuBLAS's trsm, cuSOLVER's potrf); =tf32 as plain TF32 products: faster, but with
   the inverse route more ADMM iterations. Every mask solver projects on the
   GPU (EXACT, up to m = 32, with its cycle cancelling from TSENOR's mask at every call);
   pruning with EXACT and m > 32 runs on the CPU from host pointers (report->backend then
   names the CPU) and is refused (TSENOR_ERR_INVALID_ARGUMENT) from device pointers.
   ALPS applies (H + rho I)^-1 by the CPU's rule: an explicit inverse per value of rho
   (potrf, trtri, syrk; one product per iteration) when 2 rows >= cols, else the Cholesky
   factor alone (two triangular solves per iteration). With more than 1024 inputs and
   split products that factor is blocked (1024 columns, right-looking, the next diagonal
   block factored on a second stream while the trailing update runs) and the solves are
   blocked left-looking, one deep split product per block. TSENOR_CUDA_ALPS_SOLVER=
   inverse or triangular forces one, =eigen takes one eigendecomposition of H at the start
   and one n^3 product per rho.
   Device memory beyond the inputs, n = cols, r = rows (the host-pointer call adds its
   copies of w and gram, r n + n^2 floats; cuSOLVER adds its workspace):
       ALPS               5 n^2 + 10 r n + n floats, 2 r n + n bytes, r doubles (split
                          products; 3 n^2 + 8 r n + n floats with TSENOR_CUDA_PRUNE_MATH)
                          (inverse and eigen routes, split: 2 n^2 more; triangular solves:
                          n^2 fewer, and with n > 1024 at most
                          3 n^2 + 3 r n + 1024 (19 n + 3 r + 7168) more; eigen: n^2 + n more)
       SPARSEGPT          2 n^2 + 3 r n + (128 + m) r floats, r n + m r + n bytes
       WANDA, MAGNITUDE   n^2 + 3 r n floats, r n + n bytes (without gram: r n floats, r n bytes) */
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

/* EXACT's proof of optimality (m <= 32, m != 4; f32, host pointers): the mask of
   tsenor_cuda_mask_f32 with opt->method = TSENOR_METHOD_EXACT, and the dual potentials of
   every block (blocks in row-major order, 2m doubles each: u_0..u_{m-1}, then
   v_0..v_{m-1}), such that |w_ij| - u_i - v_j >= -eps where the mask keeps (i, j) and
   <= eps where it prunes, eps = 1e-12 x the block's max |w| (padding entries of edge
   blocks count as 0 and, on the padding side, as kept or pruned so that every row and
   column of the padded block keeps n): no transposable selection of the block keeps more. */
tsenor_status tsenor_cuda_exact_certificate_f32(const float *w, size_t rows, size_t cols, size_t ld, uint8_t *mask,
                                               size_t mask_ld, const tsenor_options *opt, double *potentials);

/* Pruning (tsenor_prune_f32's meaning), host pointers: copy in, run, copy out. */
tsenor_status tsenor_cuda_prune_f32(const float *w, size_t rows, size_t cols, size_t ld, const float *gram,
                                    size_t gram_ld, float *out, size_t out_ld, uint8_t *mask, size_t mask_ld,
                                    const tsenor_prune_options *opt, tsenor_prune_report *report);
/* Pruning, device pointers and a stream (queued on it; returns when done). */
tsenor_status tsenor_cuda_prune_f32_device(const float *w, size_t rows, size_t cols, size_t ld, const float *gram,
                                           size_t gram_ld, float *out, size_t out_ld, uint8_t *mask, size_t mask_ld,
                                           const tsenor_prune_options *opt, tsenor_prune_report *report,
                                           void *stream);
/* gram += x^T x (tsenor_gram_f32's meaning), device pointers and a stream; FP32 (cuBLAS
   SYRK), both triangles written (exactly symmetric). */
tsenor_status tsenor_cuda_gram_f32_device(const float *x, size_t tokens, size_t cols, size_t ld, float *gram,
                                          size_t gram_ld, void *stream);

/* Number of usable CUDA devices (0 when there is no driver or no GPU). */
int tsenor_cuda_device_count(void);

/* CUDA's text for the last TSENOR_ERR_DEVICE of the calling thread ("" if none). */
const char *tsenor_cuda_last_error(void);

/* Largest m the GPU kernels take (every m tsenor.h takes), and EXACT's largest on the
   GPU: beyond it EXACT runs on the CPU (host-pointer calls). */
#define TSENOR_CUDA_MAX_M 64
#define TSENOR_CUDA_MAX_M_EXACT 32

#ifdef __cplusplus
}
#endif

#endif /* TSENOR_CUDA_H */
