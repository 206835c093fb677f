/* tsenor_cuda_internal.h - what cuda/tsenor_cuda.cu lends the other CUDA sources of the
   backend (cuda/tsenor_cuda_prune.cu): the block solver on a device matrix, and the
   error text of tsenor_cuda_last_error(). Not part of the public interface.
   Include after defining _TSENOR_COMMON (the shared section of tsenor.h). */
#ifndef TSENOR_CUDA_INTERNAL_H
#define TSENOR_CUDA_INTERNAL_H

#include "../tsenor_cuda.h"

#include <cuda_runtime.h>

namespace tsenor_cuda_internal {

/* The mask solver's device scratch, sized for matrices of up to rows x cols; one solve
   after another on the same stream may share it. */
struct MaskSolver;

cudaError_t mask_solver_create(MaskSolver **solver, const _tsenor_config &cfg, size_t rows, size_t cols,
                               cudaStream_t stream);
/* Queues the mask of |w| (rows x cols, leading dimension ld, f32) into mask on stream.
   cfg.m <= TSENOR_CUDA_MAX_M, and <= TSENOR_CUDA_MAX_M_EXACT for EXACT. */
cudaError_t mask_solver_run(MaskSolver *solver, const float *w, size_t rows, size_t cols, size_t ld, uint8_t *mask,
                            size_t mask_ld, cudaStream_t stream);
/* Device int, nonzero once a solve has met NaN/Inf (read as 0 by the solver). */
const int *mask_solver_nonfinite_flag(const MaskSolver *solver);
void mask_solver_destroy(MaskSolver *solver);

/* tsenor_cuda_last_error()'s text for this thread: CUDA's, or any other. */
tsenor_status device_error(const char *what, cudaError_t e);
void set_error_text(const char *text);
/* false (and the error text set) when there is no usable device */
bool have_device();
double now_seconds();

}  // namespace tsenor_cuda_internal

#endif /* TSENOR_CUDA_INTERNAL_H */
