/* tsenor_cuda_prune.cu - pruning with calibration data on the GPU: tsenor_prune_f32 and
   tsenor_gram_f32 of tsenor.h (see tsenor_cuda.h for use). MIT licence (LICENSE).

   The stages carry the CPU's names and follow its steps one by one: cuBLAS does the
   products, cuSOLVER the factorisations, the block solver of cuda/tsenor_cuda.cu (lent
   through tsenor_cuda_internal.h) the projections onto the N:M set; small kernels here do
   the element-wise steps and the sums (in double where the CPU sums in double).
     _tsenor_prune_validate     arguments (host), NaN/Inf and the rules on H (device)
     _tsenor_hessian_prepare    dead inputs, damping, (ALPS) scaling to a unit diagonal
     _tsenor_check_definite     Cholesky of the damped H (MAGNITUDE, WANDA)
     _tsenor_prune_scored       MAGNITUDE, WANDA
     _tsenor_prune_sparsegpt    OBS column sweep with lazy block updates
     _tsenor_prune_alps         ADMM with the mask solver as projection, then CG
     _tsenor_prune_error        tr(D H D^T) / tr(W H W^T) with H as given
   Everything stays on the device from start to end; the host reads 32 bytes every third
   ADMM iteration (support changes, kept count, |B - D|^2 and |D|^2: the penalty schedule
   and the stop are decided there, by the CPU's rules) and one double per CG iteration (the stopping test).

   Differences from the CPU, all in rounding: products are cuBLAS's, ALPS's large ones
   split-TF32 (FP32-accurate on the tensor cores: product_math below), the ALPS solve takes
   the CPU's route (an explicit (H + rho I)^-1, or two triangular solves with its Cholesky
   factor: see alps_route below) in cuBLAS and cuSOLVER, above 1024 inputs with a blocked
   factor and blocked solves (cholesky_blocked, blocked_solves), and sums taken by atomics
   are not in a fixed order. */
#define _TSENOR_COMMON   /* the definitions tsenor.h shares with this backend */
#include "tsenor_cuda_internal.h"

#include <cublas_v2.h>
#include <cusolverDn.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <new>
#include <utility>
#include <vector>

using namespace tsenor_cuda_internal;

namespace {

const int kThreads = 256;

unsigned grid_for(size_t count)
{
    const size_t g = (count + kThreads - 1) / kThreads;
    return (unsigned)(g < 1 ? 1 : g > 8192 ? 8192 : g);
}

/* options and arguments: _tsenor_prune_resolve and _tsenor_prune_check_args, the rules
   tsenor.h shares with the CPU */

/* ---- cuBLAS / cuSOLVER: handles kept per thread and device ---------------------------- */

struct Libraries {
    cublasHandle_t blas = nullptr;
    cusolverDnHandle_t solver = nullptr;
    cusolverDnParams_t params = nullptr;
    /* the blocked Cholesky's second stream (cholesky_blocked), made on first use */
    cudaStream_t aside = nullptr;
    cublasHandle_t aside_blas = nullptr;
    cudaEvent_t aside_events[2] = {nullptr, nullptr};
};

const int kMaxDevices = 64;
/* Created on a thread's first call on a device and kept for the thread's lifetime:
   creating them costs more than a small pruning call. */
thread_local Libraries g_libraries[kMaxDevices];

const char *blas_text(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "cuBLAS error";
    }
}

tsenor_status blas_error(const char *what, cublasStatus_t s)
{
    char text[200];
    snprintf(text, sizeof text, "%s: %s (%d)", what, blas_text(s), (int)s);
    set_error_text(text);
    return TSENOR_ERR_DEVICE;
}

tsenor_status solver_error(const char *what, cusolverStatus_t s)
{
    char text[200];
    snprintf(text, sizeof text, "%s: cuSOLVER status %d", what, (int)s);
    set_error_text(text);
    return TSENOR_ERR_DEVICE;
}

tsenor_status get_libraries(Libraries **out)
{
    int device = 0;
    cudaError_t e = cudaGetDevice(&device);
    if (e != cudaSuccess) return device_error("cudaGetDevice", e);
    if (device < 0 || device >= kMaxDevices) { set_error_text("device index beyond the handle cache"); return TSENOR_ERR_DEVICE; }
    Libraries &L = g_libraries[device];
    if (!L.blas) {
        const cublasStatus_t s = cublasCreate(&L.blas);
        if (s != CUBLAS_STATUS_SUCCESS) { L.blas = nullptr; return blas_error("cublasCreate", s); }
    }
    if (!L.solver) {
        const cusolverStatus_t s = cusolverDnCreate(&L.solver);
        if (s != CUSOLVER_STATUS_SUCCESS) { L.solver = nullptr; return solver_error("cusolverDnCreate", s); }
    }
    if (!L.params) {
        const cusolverStatus_t s = cusolverDnCreateParams(&L.params);
        if (s != CUSOLVER_STATUS_SUCCESS) { L.params = nullptr; return solver_error("cusolverDnCreateParams", s); }
    }
    *out = &L;
    return TSENOR_OK;
}

/* the aside stream (high priority: it carries the factorisation's critical path), its
   cuBLAS handle (a handle's workspace serves one stream at a time) and two events */
tsenor_status get_aside(Libraries *L)
{
    if (!L->aside) {
        int least = 0, greatest = 0;
        cudaError_t e = cudaDeviceGetStreamPriorityRange(&least, &greatest);
        if (e == cudaSuccess) e = cudaStreamCreateWithPriority(&L->aside, cudaStreamNonBlocking, greatest);
        if (e != cudaSuccess) { L->aside = nullptr; return device_error("cudaStreamCreateWithPriority", e); }
    }
    if (!L->aside_blas) {
        cublasStatus_t s = cublasCreate(&L->aside_blas);
        if (s != CUBLAS_STATUS_SUCCESS) { L->aside_blas = nullptr; return blas_error("cublasCreate", s); }
        s = cublasSetStream(L->aside_blas, L->aside);
        if (s != CUBLAS_STATUS_SUCCESS) return blas_error("cublasSetStream", s);
    }
    for (cudaEvent_t &ev : L->aside_events)
        if (!ev) {
            const cudaError_t e = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
            if (e != cudaSuccess) { ev = nullptr; return device_error("cudaEventCreateWithFlags", e); }
        }
    return TSENOR_OK;
}

#define PRUNE_TRY(expr)                                   \
    do {                                                  \
        const tsenor_status try_status_ = (expr);         \
        if (try_status_ != TSENOR_OK) return try_status_; \
    } while (0)

tsenor_status cuda_step(cudaError_t e, const char *what) { return e == cudaSuccess ? TSENOR_OK : device_error(what, e); }
tsenor_status launched(const char *what) { return cuda_step(cudaGetLastError(), what); }

/* Row-major C (m x n) = alpha op(A) op(B) + beta C: cuBLAS is column-major, and a
   row-major matrix is its transpose there, so C^T = op(B)^T op(A)^T is what runs. */
tsenor_status gemm_rm(cublasHandle_t h, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, const float *A,
                      size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc,
                      cublasComputeType_t compute)
{
    if (m == 0 || n == 0) return TSENOR_OK;
    const cublasStatus_t s = cublasGemmEx_64(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int64_t)n,
                                             (int64_t)m, (int64_t)k, &alpha, B, CUDA_R_32F, (int64_t)ldb, A, CUDA_R_32F,
                                             (int64_t)lda, &beta, C, CUDA_R_32F, (int64_t)ldc, compute, CUBLAS_GEMM_DEFAULT);
    return s == CUBLAS_STATUS_SUCCESS ? TSENOR_OK : blas_error("cublasGemmEx", s);
}

/* How ALPS's large products run (the ADMM solves, the products with H and the CG
   products), by TSENOR_CUDA_PRUNE_MATH:
   - split (the default): split-TF32, each FP32 operand split into hi (rounded to TF32)
     and lo (the rest), hi*hi + hi*lo + lo*hi on TF32 tensor cores: FP32-accurate at
     about 3x a TF32 product's work, which still runs near 8x an FP32 product's speed
     (4096 x 14336 by 14336^2 on the H200: 11.8 ms against 33.9 ms in FP32);
   - fp32: cuBLAS's FP32 products, trsm and potrf;
   - tf32: plain TF32 products, faster again, but their rounding keeps ALPS's support
     flickering: about 2.7x the ADMM iterations on a 4096 x 4096 layer (147 against 54
     on the H200), slower in the end (0.85 s against 0.49 s). */
enum ProductMath { MATH_SPLIT, MATH_FP32, MATH_TF32 };

ProductMath product_math()
{
    const char *m = getenv("TSENOR_CUDA_PRUNE_MATH");
    if (m && strcmp(m, "fp32") == 0) return MATH_FP32;
    if (m && strcmp(m, "tf32") == 0) return MATH_TF32;
    return MATH_SPLIT;
}

/* ALPS's triangular solves and Cholesky factors (the TRIANGULAR route below) in blocks of
   kSolveBlock columns above that many inputs, every large product split-TF32: the
   factor right-looking (cuSOLVER potrf on each diagonal block, FP32 trsm for the panel
   below it, the trailing update as split products), and the solves by the inverses of
   the diagonal blocks (one batched trsm per rho) and the factor's panels. cuBLAS's trsm
   and potrf run on the FP32 units: on 4096 x 14336 (H200) its two solves per iteration
   took about 48 ms and its potrf 28 ms, the blocked ones 14 ms and 27 ms. */
const size_t kSolveBlock = 1024;

/* a TF32 value nearest to v (10 mantissa bits); v - tf32_hi(v) is exact in FP32 */
__device__ __forceinline__ float tf32_hi(float v)
{
    return __uint_as_float((__float_as_uint(v) + 0x1000u) & 0xffffe000u);
}

/* column-major C (m x n) = alpha op(A) op(B) + beta C from split operands: three TF32
   products, the small terms first */
tsenor_status gemm_split_cm(cublasHandle_t h, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
                            const float *a_hi, const float *a_lo, size_t lda, const float *b_hi, const float *b_lo,
                            size_t ldb, float beta, float *c, size_t ldc)
{
    const float one = 1.0f;
    const float *as[3] = {a_hi, a_lo, a_hi}, *bs[3] = {b_lo, b_hi, b_hi};
    if (m == 0 || n == 0) return TSENOR_OK;
    for (int t = 0; t < 3; t++) {
        const cublasStatus_t st = cublasGemmEx_64(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                                  (int64_t)m, (int64_t)n, (int64_t)k, &alpha, as[t], CUDA_R_32F,
                                                  (int64_t)lda, bs[t], CUDA_R_32F, (int64_t)ldb, t == 0 ? &beta : &one, c,
                                                  CUDA_R_32F, (int64_t)ldc, CUBLAS_COMPUTE_32F_FAST_TF32,
                                                  CUBLAS_GEMM_DEFAULT);
        if (st != CUBLAS_STATUS_SUCCESS) return blas_error("cublasGemmEx", st);
    }
    return TSENOR_OK;
}

/* column-major C (m x n) = alpha op(A) op(B) + beta C in one TF32 product: for the
   K-stacked split operands below, whose depth carries the three terms */
tsenor_status gemm_tf32_cm(cublasHandle_t h, bool ta, bool tb, size_t m, size_t n, size_t k, float alpha, const float *a,
                           size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
    if (m == 0 || n == 0) return TSENOR_OK;
    const cublasStatus_t st = cublasGemmEx_64(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                              (int64_t)m, (int64_t)n, (int64_t)k, &alpha, a, CUDA_R_32F, (int64_t)lda, b,
                                              CUDA_R_32F, (int64_t)ldb, &beta, c, CUDA_R_32F, (int64_t)ldc,
                                              CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT);
    return st == CUBLAS_STATUS_SUCCESS ? TSENOR_OK : blas_error("cublasGemmEx", st);
}

/* ---- device buffers of one call: stream-ordered, freed when the call ends ------------- */

class DeviceArrays {
public:
    explicit DeviceArrays(cudaStream_t s) : stream_(s) {}
    ~DeviceArrays()
    {
        for (void *p : ptrs_) cudaFreeAsync(p, stream_);
    }
    template <class T> tsenor_status get(T **p, size_t count)
    {
        void *q = nullptr;
        const cudaError_t e = cudaMallocAsync(&q, (count ? count : 1) * sizeof(T), stream_);
        if (e != cudaSuccess) return device_error("cudaMallocAsync", e);
        ptrs_.push_back(q);
        *p = (T *)q;
        return TSENOR_OK;
    }

private:
    cudaStream_t stream_;
    std::vector<void *> ptrs_;
};

/* GPU time of one kind of stage (CUDA events), summed when the call ends; the ring of
   event pairs is reused once its oldest pair has completed. */
class StageClock {
public:
    ~StageClock()
    {
        for (auto &p : pairs_) { cudaEventDestroy(p.first); cudaEventDestroy(p.second); }
    }
    tsenor_status begin(cudaStream_t s)
    {
        if (used_ == pairs_.size()) {
            if (pairs_.size() < kRing) {
                std::pair<cudaEvent_t, cudaEvent_t> p(nullptr, nullptr);
                cudaError_t e = cudaEventCreate(&p.first);
                if (e == cudaSuccess) e = cudaEventCreate(&p.second);
                if (e != cudaSuccess) {
                    if (p.first) cudaEventDestroy(p.first);
                    return device_error("cudaEventCreate", e);
                }
                pairs_.push_back(p);
            } else {
                PRUNE_TRY(collect());
            }
        }
        return cuda_step(cudaEventRecord(pairs_[used_].first, s), "cudaEventRecord");
    }
    tsenor_status end(cudaStream_t s)
    {
        count_++;
        return cuda_step(cudaEventRecord(pairs_[used_++].second, s), "cudaEventRecord");
    }
    /* waits for the recorded pairs and adds their times */
    tsenor_status collect()
    {
        for (size_t i = 0; i < used_; i++) {
            float ms = 0.0f;
            PRUNE_TRY(cuda_step(cudaEventSynchronize(pairs_[i].second), "cudaEventSynchronize"));
            PRUNE_TRY(cuda_step(cudaEventElapsedTime(&ms, pairs_[i].first, pairs_[i].second), "cudaEventElapsedTime"));
            seconds_ += 1e-3 * (double)ms;
        }
        used_ = 0;
        return TSENOR_OK;
    }
    double seconds() const { return seconds_; }
    int count() const { return count_; }

private:
    static const size_t kRing = 64;
    std::vector<std::pair<cudaEvent_t, cudaEvent_t>> pairs_;
    size_t used_ = 0;
    int count_ = 0;
    double seconds_ = 0.0;
};

/* ---- kernels: checks -------------------------------------------------------------------- */

const int kFlagNonfinite = 1, kFlagRule = 2;

__global__ void nonfinite_kernel(const float *a, size_t rows, size_t cols, size_t ld, int *flag)
{
    int bad = 0;
    const size_t total = rows * cols, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < total; q += stride)
        bad |= !isfinite(a[(q / cols) * ld + q % cols]);
    if (__syncthreads_or(bad) && threadIdx.x == 0) atomicOr(flag, kFlagNonfinite);
}

/* H_ii >= 0, |H_ij - H_ji| <= tol sqrt(H_ii H_jj), |H_ij| <= sqrt(H_ii H_jj) (1 + 1e-3) */
__global__ void gram_rules_kernel(const float *g, size_t n, size_t ld, int *flag)
{
    int bad = 0;
    const size_t total = n * n, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < total; q += stride) {
        const size_t i = q / n, j = q % n;
        const double hii = (double)g[i * ld + i];
        if (j == i) bad |= hii < 0.0;
        if (j < i) bad |= !_tsenor_gram_pair_ok(hii, (double)g[j * ld + j], (double)g[i * ld + j], (double)g[j * ld + i]);
    }
    if (__syncthreads_or(bad) && threadIdx.x == 0) atomicOr(flag, kFlagRule);
}

/* ---- kernels: block reductions ------------------------------------------------------- */

template <class T> __device__ T block_sum(T v, T *shared)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = threadIdx.x < warps ? shared[threadIdx.x] : (T)0;
    if (warp == 0)
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if (threadIdx.x == 0) shared[0] = v;
    __syncthreads();
    v = shared[0];
    __syncthreads();
    return v;
}

/* the maximum of non-negative doubles: their bit patterns order as integers */
__device__ void atomic_max_nonneg(unsigned long long *slot, double v)
{
    atomicMax(slot, (unsigned long long)__double_as_longlong(v));
}

/* ---- kernels: _tsenor_hessian_prepare ---------------------------------------------------- */

/* dead[j] = (H_jj == 0); *add = damping * mean diagonal (dead entries count as 1) */
__global__ void hessian_diag_kernel(const float *g, size_t ld, size_t n, double damping, uint8_t *dead, double *add)
{
    __shared__ double part[32];
    double sum = 0.0;
    for (size_t j = threadIdx.x; j < n; j += blockDim.x) {
        const float d = g[j * ld + j];
        dead[j] = d == 0.0f;
        sum += d == 0.0f ? 1.0 : (double)d;
    }
    sum = block_sum(sum, part);
    if (threadIdx.x == 0) *add = damping * (sum / (double)n);
}

/* hd = symmetrised H, dead diagonal entries 1, plus the damping */
__global__ void hessian_fill_kernel(const float *g, size_t ld, size_t n, const uint8_t *dead, const double *add, float *hd)
{
    const size_t total = n * n, stride = (size_t)gridDim.x * blockDim.x;
    const double a = *add;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < total; q += stride) {
        const size_t i = q / n, c = q % n;
        float h = (float)(0.5 * ((double)g[i * ld + c] + (double)g[c * ld + i]));
        if (i == c) {
            if (dead[i]) h = 1.0f;
            h = (float)((double)h + a);
        }
        hd[q] = h;
    }
}

__global__ void diagonal_sqrt_kernel(const float *hd, size_t n, float *scale)
{
    for (size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x; j < n; j += (size_t)gridDim.x * blockDim.x)
        scale[j] = (float)sqrt((double)hd[j * n + j]);
}

__global__ void unit_diagonal_kernel(float *hd, size_t n, const float *scale)
{
    const size_t total = n * n, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < total; q += stride) {
        const size_t i = q / n, c = q % n;
        hd[q] = i == c ? 1.0f : (float)((double)hd[q] / ((double)scale[i] * (double)scale[c]));
    }
}

/* ---- kernels: element-wise ------------------------------------------------------------ */

/* dst = mask ? src : 0 (dst dense, src with leading dimension ld) */
__global__ void keep_masked_kernel(const float *src, size_t ld, const uint8_t *mask, size_t rows, size_t cols, float *dst)
{
    const size_t total = rows * cols, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < total; q += stride)
        dst[q] = mask[q] ? src[(q / cols) * ld + q % cols] : 0.0f;
}

/* dst = dead input ? 0 : src * scale (scale NULL: 1) */
__global__ void live_inputs_kernel(const float *src, size_t ld, const uint8_t *dead, const float *scale, size_t rows,
                                   size_t cols, float *dst)
{
    const size_t total = rows * cols, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < total; q += stride) {
        const size_t c = q % cols;
        const float v = src[(q / cols) * ld + c];
        dst[q] = dead[c] ? 0.0f : scale ? v * scale[c] : v;
    }
}

/* the full symmetric matrix from the lower triangle of its column-major storage */
/* zeroes the strict upper triangle of a column-major n x n matrix */
/* A column-major block (m x n, lda) split into hi, its values rounded to TF32 (10
   mantissa bits, to nearest), and lo = a - hi, both m x n with leading dimension m. On
   TF32 tensor cores hi is exact and lo loses ~2^-11 of itself, so hi*hi + hi*lo + lo*hi
   is an FP32-accurate product (the dropped lo*lo is ~2^-22 of it). The inputs are
   finite (checked before ALPS starts). */
__global__ void split_tf32_kernel(const float *a, size_t m, size_t n, size_t lda, float *hi, float *lo)
{
    const size_t count = m * n;
    for (size_t k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < count; k += (size_t)gridDim.x * blockDim.x) {
        const size_t i = k % m, j = k / m;
        const float v = a[j * lda + i];
        const float h = tf32_hi(v);
        hi[k] = h;
        lo[k] = v - h;
    }
}

/* The K-stacked operands of split products: C += [A_hi | A_lo | A_hi] [B_lo; B_hi; B_hi]
   is one TF32 product of depth 3k instead of three of depth k (C is read and written
   once). stack_split_kernel copies the column-major block src (m x k, lds) in three
   parts, part t lo where bit t of lo_parts is set and hi elsewhere: side by side
   (m x 3k, ldd) when across, else one above the other (3m x k, ldd). With chunk below
   the stacked extent (k across, else m), each chunk of that many columns (rows) is
   stacked on its own, one chunk's three parts after the other's: the layout of a
   product whose depth runs over several blocks. */
const unsigned kHiLoHi = 2u, kLoHiHi = 1u;

__global__ void stack_split_kernel(const float *src, size_t m, size_t k, size_t lds, unsigned lo_parts, bool across,
                                   size_t chunk, float *dst, size_t ldd)
{
    const size_t count = m * k, extent = across ? k : m;
    for (size_t q = blockIdx.x * (size_t)blockDim.x + threadIdx.x; q < count; q += (size_t)gridDim.x * blockDim.x) {
        const size_t i = q % m, j = q / m, at = across ? j : i;
        const size_t c0 = at / chunk * chunk, cb = extent - c0 < chunk ? extent - c0 : chunk, w = at - c0;
        const float v = src[j * lds + i], h = tf32_hi(v), parts[2] = {h, v - h};
        for (unsigned t = 0; t < 3; t++) {
            const size_t r = 3 * c0 + t * cb + w;
            dst[across ? r * ldd + i : j * ldd + r] = parts[(lo_parts >> t) & 1u];
        }
    }
}

/* count identity blocks of nb x nb, one after the other */
__global__ void identity_blocks_kernel(float *a, size_t nb, size_t count)
{
    const size_t total = nb * nb * count;
    for (size_t q = blockIdx.x * (size_t)blockDim.x + threadIdx.x; q < total; q += (size_t)gridDim.x * blockDim.x)
        a[q] = q % (nb * nb) % nb == q % (nb * nb) / nb ? 1.0f : 0.0f;
}

__global__ void clear_upper_kernel(float *a, size_t n)
{
    const size_t total = n * n, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < total; q += stride)
        if (q % n < q / n) a[q] = 0.0f;
}

__global__ void mirror_lower_kernel(float *a, size_t n)
{
    const size_t total = n * n, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < total; q += stride) {
        const size_t col = q / n, row = q % n;   /* column-major position (row, col) */
        if (row < col) a[q] = a[row * n + col];
    }
}

/* the upper triangle (row-major) mirrored from the lower: the gram, exactly symmetric */
__global__ void mirror_lower_rm_kernel(float *a, size_t n, size_t ld)
{
    const size_t total = n * n, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < total; q += stride) {
        const size_t i = q / n, j = q % n;
        if (j > i) a[i * ld + j] = a[j * ld + i];
    }
}

/* ---- kernels: MAGNITUDE / WANDA ------------------------------------------------------ */

__global__ void wanda_top_kernel(const float *w, size_t ld, const float *g, size_t gld, size_t rows, size_t cols,
                                 unsigned long long *top)
{
    const size_t total = rows * cols, stride = (size_t)gridDim.x * blockDim.x;
    double best = 0.0;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < total; q += stride) {
        const size_t c = q % cols;
        const double v = fabs((double)w[(q / cols) * ld + c]) * sqrt((double)g[c * gld + c]);
        best = v > best ? v : best;
    }
    atomic_max_nonneg(top, best);
}

__global__ void wanda_score_kernel(const float *w, size_t ld, const float *g, size_t gld, size_t rows, size_t cols,
                                   const unsigned long long *top_bits, float *score)
{
    const size_t total = rows * cols, stride = (size_t)gridDim.x * blockDim.x;
    const double top = __longlong_as_double((long long)*top_bits);
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < total; q += stride) {
        const size_t c = q % cols;
        score[q] = top > 0.0 ? (float)(fabs((double)w[(q / cols) * ld + c]) * sqrt((double)g[c * gld + c]) / top) : 0.0f;
    }
}

/* ---- kernels: SPARSEGPT ----------------------------------------------------------------- */

/* the order of the inputs reversed: J H J */
__global__ void reverse_kernel(const float *a, size_t n, float *r)
{
    const size_t total = n * n, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < total; q += stride) r[q] = a[total - 1 - q];
}

/* U = J L'^-1 J (upper, row-major) from L'^-1 (lower, column-major) */
__global__ void upper_factor_kernel(const float *linv, size_t n, float *u)
{
    const size_t total = n * n, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < total; q += stride) {
        const size_t i = q / n, j = q % n;
        u[q] = j >= i ? linv[(n - 1 - i) + (n - 1 - j) * n] : 0.0f;
    }
}

/* the largest |w_rj| / U_jj of a slab of columns c0 .. c0+mw-1 */
__global__ void slab_top_kernel(const float *what, size_t n, const float *u, size_t rows, size_t c0, size_t mw,
                                unsigned long long *top)
{
    const size_t total = rows * mw, stride = (size_t)gridDim.x * blockDim.x;
    double best = 0.0;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < total; q += stride) {
        const size_t c = c0 + q % mw;
        const double v = fabs((double)what[(q / mw) * n + c]) / (double)u[c * n + c];
        best = v > best ? v : best;
    }
    for (int o = 16; o > 0; o >>= 1) best = fmax(best, __shfl_down_sync(0xffffffffu, best, o));
    if ((threadIdx.x & 31) == 0) atomic_max_nonneg(top, best);
}

/* the slab's scores (w / U_jj / top)^2, rows x mw */
__global__ void slab_score_kernel(const float *what, size_t n, const float *u, size_t rows, size_t c0, size_t mw,
                                  const unsigned long long *top_bits, float *score)
{
    const size_t total = rows * mw, stride = (size_t)gridDim.x * blockDim.x;
    const double top = __longlong_as_double((long long)*top_bits);
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < total; q += stride) {
        const size_t c = c0 + q % mw;
        const double v = top > 0.0 ? (double)what[(q / mw) * n + c] / (double)u[c * n + c] / top : 0.0;
        score[q] = (float)(v * v);
    }
}

const int kSweepBlock = 128;          /* columns per lazy-update block (the CPU's 128) */
const int kSweepWarps = 8;

/* One warp per row: the slab's columns pruned left to right, each pruned weight's error
   err = (w - q) / U_jj subtracted along U's row from the later columns of the block
   (kept in shared memory: the block's segment of the row). */
__global__ void __launch_bounds__(kSweepWarps * 32)
slab_apply_kernel(float *what, size_t n, const float *u, size_t rows, size_t i1, size_t i2, size_t c0, size_t mw,
                  const uint8_t *slab, float *err, uint8_t *msk)
{
    __shared__ float seg[kSweepWarps][kSweepBlock];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const size_t r = (size_t)blockIdx.x * kSweepWarps + warp, bw = i2 - i1;
    if (r >= rows) return;   /* whole warps leave: no warp-level sync below involves them */
    float *wr = what + r * n;
    for (size_t t = lane; t < bw; t += 32) seg[warp][t] = wr[i1 + t];
    __syncwarp();
    for (size_t jj = 0; jj < mw; jj++) {
        const size_t col = c0 + jj, at = col - i1;
        const float *urow = u + col * n;
        const uint8_t keep = slab[r * mw + jj];
        const float v = seg[warp][at], q = keep ? v : 0.0f, e = (v - q) / urow[col];
        __syncwarp();
        if (lane == 0) {
            seg[warp][at] = q;
            err[r * bw + at] = e;
            msk[r * n + col] = keep;
        }
        if (e != 0.0f)
            for (size_t t = col + 1 + lane; t < i2; t += 32) seg[warp][t - i1] -= e * urow[t];
        __syncwarp();
    }
    for (size_t t = lane; t < bw; t += 32) wr[i1 + t] = seg[warp][t];
}

/* ---- kernels: ALPS ------------------------------------------------------------------------ */

/* b = W0 H - V + rho D */
__global__ void alps_rhs_kernel(const float *g, const float *v, const float *d, float rho, size_t count, float *b)
{
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < count; q += (size_t)gridDim.x * blockDim.x)
        b[q] = g[q] - v[q] + rho * d[q];
}

/* d = B + V / rho: the projection's input */
__global__ void alps_shift_kernel(const float *b, const float *v, float inv_rho, size_t count, float *d)
{
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < count; q += (size_t)gridDim.x * blockDim.x)
        d[q] = b[q] + v[q] * inv_rho;
}

/* D = P(B + V/rho), V += rho (B - D); on check iterations the support's changes since
   the last check and its size into counts[0..1], |B - D|^2 and |D|^2 into sums[0..1],
   and ref <- mask */
__global__ void alps_dual_kernel(float *d, const uint8_t *mask, const float *b, float *v, float rho, size_t count,
                                 uint8_t *ref, unsigned long long *counts, double *sums)
{
    __shared__ unsigned long long part[32];
    __shared__ double dpart[32];
    unsigned long long changed = 0, kept = 0;
    double gap = 0.0, size = 0.0;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < count; q += (size_t)gridDim.x * blockDim.x) {
        const uint8_t k = mask[q];
        const float dv = k ? d[q] : 0.0f, diff = b[q] - dv;
        d[q] = dv;
        v[q] += rho * diff;
        if (counts) {
            changed += k != ref[q];
            kept += k;
            ref[q] = k;
            gap += (double)diff * diff;
            size += (double)dv * dv;
        }
    }
    if (!counts) return;   /* uniform over the grid */
    changed = block_sum(changed, part);
    kept = block_sum(kept, part);
    gap = block_sum(gap, dpart);
    size = block_sum(size, dpart);
    if (threadIdx.x == 0) {
        atomicAdd(&counts[0], changed);
        atomicAdd(&counts[1], kept);
        atomicAdd(&sums[0], gap);
        atomicAdd(&sums[1], size);
    }
}

/* CG start, one block per row: res (holds W0 H - D H) masked, p = res, rs = |res|^2 */
__global__ void cg_start_kernel(float *res, const uint8_t *mask, float *p, size_t n, double *rs, double *total)
{
    __shared__ double part[32];
    const size_t r = blockIdx.x;
    float *rr = res + r * n, *pr = p + r * n;
    const uint8_t *mr = mask + r * n;
    double sum = 0.0;
    for (size_t c = threadIdx.x; c < n; c += blockDim.x) {
        const float x = mr[c] ? rr[c] : 0.0f;
        rr[c] = x;
        pr[c] = x;
        sum += (double)x * (double)x;
    }
    sum = block_sum(sum, part);
    if (threadIdx.x == 0) {
        rs[r] = sum;
        atomicAdd(total, sum);
    }
}

/* One CG step per row (q = p H computed before): the CPU's order of operations. */
__global__ void cg_step_kernel(float *p, float *q, float *x, float *res, const uint8_t *mask, size_t n, double *rs,
                               double *total)
{
    __shared__ double part[32];
    const size_t r = blockIdx.x;
    float *pr = p + r * n, *qr = q + r * n, *xr = x + r * n, *rr = res + r * n;
    const uint8_t *mr = mask + r * n;
    double pq = 0.0;
    for (size_t c = threadIdx.x; c < n; c += blockDim.x) {
        const float qv = mr[c] ? qr[c] : 0.0f;
        qr[c] = qv;
        pq += (double)pr[c] * (double)qv;
    }
    pq = block_sum(pq, part);
    const double rs_old = rs[r], alpha = pq > 0.0 ? rs_old / pq : 0.0;
    const float fa = (float)alpha;
    double rs_new = 0.0;
    for (size_t c = threadIdx.x; c < n; c += blockDim.x) {
        xr[c] += fa * pr[c];
        rr[c] -= fa * qr[c];
        rs_new += (double)rr[c] * (double)rr[c];
    }
    rs_new = block_sum(rs_new, part);
    const float fb = (float)(rs_old > 0.0 ? rs_new / rs_old : 0.0);
    for (size_t c = threadIdx.x; c < n; c += blockDim.x) pr[c] = rr[c] + fb * pr[c];
    if (threadIdx.x == 0) {
        rs[r] = rs_new;
        atomicAdd(total, rs_new);
    }
}

/* W^ = mask ? D / scale : 0 */
__global__ void alps_unscale_kernel(const float *d, const uint8_t *mask, const float *scale, size_t rows, size_t n,
                                    float *what)
{
    const size_t total = rows * n, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < total; q += stride)
        what[q] = mask[q] ? d[q] / scale[q % n] : 0.0f;
}

/* column scaling by 1 / (lambda + rho): Q diag(1 / (lambda + rho)) */
__global__ void inverse_eigen_scale_kernel(const float *q, const float *lambda, double rho, size_t n, float *out)
{
    const size_t total = n * n, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride)
        out[e] = (float)((double)q[e] / ((double)lambda[e / n] + rho));   /* column-major: column e / n */
}

/* ---- kernels: _tsenor_prune_error ------------------------------------------------------ */

__global__ void difference_kernel(const float *w, size_t ld, const float *what, size_t rows, size_t cols, float *diff)
{
    const size_t total = rows * cols, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < total; q += stride)
        diff[q] = w[(q / cols) * ld + q % cols] - what[q];
}

/* sum over rows of (x H)_r . x_r (tmp = x H, dense), in double */
__global__ void quadratic_kernel(const float *tmp, const float *x, size_t ldx, size_t cols, double *sum)
{
    __shared__ double part[32];
    const size_t r = blockIdx.x;
    double s = 0.0;
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x) s += (double)tmp[r * cols + c] * (double)x[r * ldx + c];
    s = block_sum(s, part);
    if (threadIdx.x == 0) atomicAdd(sum, s);
}

/* ---- one call -------------------------------------------------------------------------- */

/* How ALPS applies (H + rho I)^-1, per rho value:
   - INVERSE: an explicit inverse from a Cholesky factor (potrf, trtri, syrk), then one
     product per iteration;
   - TRIANGULAR: the Cholesky factor alone (potrf), then two triangular solves (trsm) per
     iteration: no n^3 inverse per rho, which wins when the layer has far fewer rows than
     inputs;
   - EIGEN: one eigendecomposition of H at the start (syevd), then one n^3 product per rho
     and one product per iteration.
   The default is the CPU's choice (tsenor.h's _tsenor_prune_alps): INVERSE when
   2 rows >= cols, else TRIANGULAR. TSENOR_CUDA_ALPS_SOLVER=inverse|triangular|eigen
   forces one. */
enum AlpsRoute { ALPS_INVERSE, ALPS_TRIANGULAR, ALPS_EIGEN };

AlpsRoute alps_route(size_t rows, size_t cols)
{
    const char *s = getenv("TSENOR_CUDA_ALPS_SOLVER");
    if (s && strcmp(s, "eigen") == 0) return ALPS_EIGEN;
    if (s && strcmp(s, "inverse") == 0) return ALPS_INVERSE;
    if (s && strcmp(s, "triangular") == 0) return ALPS_TRIANGULAR;
    return 2 * rows >= cols ? ALPS_INVERSE : ALPS_TRIANGULAR;
}

struct Run {
    const _tsenor_prune_config &pc;
    cudaStream_t stream;
    Libraries *lib = nullptr;
    DeviceArrays arrays;
    MaskSolver *solver = nullptr;
    StageClock projection_clock, factor_clock;
    int iterations = 0, cg_iterations = 0;
    /* results, dense rows x cols */
    float *what = nullptr;
    uint8_t *msk = nullptr;
    int *flags = nullptr;
    const char *backend = "cuda";

    Run(const _tsenor_prune_config &c, cudaStream_t s) : pc(c), stream(s), arrays(s) {}
    ~Run() { mask_solver_destroy(solver); }

    tsenor_status bind()
    {
        PRUNE_TRY(get_libraries(&lib));
        const cublasStatus_t b = cublasSetStream(lib->blas, stream);
        if (b != CUBLAS_STATUS_SUCCESS) return blas_error("cublasSetStream", b);
        const cusolverStatus_t s = cusolverDnSetStream(lib->solver, stream);
        if (s != CUSOLVER_STATUS_SUCCESS) return solver_error("cusolverDnSetStream", s);
        return TSENOR_OK;
    }

    /* a device int read back (waits for the stream) */
    tsenor_status read_flags(int *out)
    {
        PRUNE_TRY(cuda_step(cudaMemcpyAsync(out, flags, sizeof(int), cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync"));
        return cuda_step(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    }

    tsenor_status project(const float *scores, size_t rows, size_t cols, size_t ld, uint8_t *mask, size_t mask_ld)
    {
        PRUNE_TRY(projection_clock.begin(stream));
        PRUNE_TRY(cuda_step(mask_solver_run(solver, scores, rows, cols, ld, mask, mask_ld, stream), "mask solver launch"));
        return projection_clock.end(stream);
    }

    /* NaN/Inf met by a projection (the CPU's mask solver returns NONFINITE_INPUT there) */
    tsenor_status projections_finite()
    {
        int bad = 0;
        PRUNE_TRY(cuda_step(cudaMemcpyAsync(&bad, mask_solver_nonfinite_flag(solver), sizeof(int),
                                            cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync"));
        PRUNE_TRY(cuda_step(cudaStreamSynchronize(stream), "cudaStreamSynchronize"));
        return bad ? TSENOR_ERR_NONFINITE_INPUT : TSENOR_OK;
    }

    tsenor_status _tsenor_prune_validate(const float *w, size_t rows, size_t cols, size_t ld, const float *gram,
                                         size_t gram_ld)
    {
        int f = 0;
        PRUNE_TRY(arrays.get(&flags, 1));
        PRUNE_TRY(cuda_step(cudaMemsetAsync(flags, 0, sizeof(int), stream), "cudaMemsetAsync"));
        nonfinite_kernel<<<grid_for(rows * cols), kThreads, 0, stream>>>(w, rows, cols, ld, flags);
        PRUNE_TRY(launched("nonfinite scan"));
        if (gram) {
            nonfinite_kernel<<<grid_for(cols * cols), kThreads, 0, stream>>>(gram, cols, cols, gram_ld, flags);
            PRUNE_TRY(launched("nonfinite scan"));
            gram_rules_kernel<<<grid_for(cols * cols), kThreads, 0, stream>>>(gram, cols, gram_ld, flags);
            PRUNE_TRY(launched("gram rules"));
        }
        PRUNE_TRY(read_flags(&f));
        if (f & kFlagNonfinite) return TSENOR_ERR_NONFINITE_INPUT;
        if (f & kFlagRule) return TSENOR_ERR_INVALID_ARGUMENT;
        return TSENOR_OK;
    }

    tsenor_status _tsenor_hessian_prepare(const float *gram, size_t gram_ld, size_t n, float *hd, uint8_t *dead,
                                          float *scale)
    {
        double *add = nullptr;
        PRUNE_TRY(arrays.get(&add, 1));
        hessian_diag_kernel<<<1, 1024, 0, stream>>>(gram, gram_ld, n, pc.damping, dead, add);
        PRUNE_TRY(launched("hessian diagonal"));
        hessian_fill_kernel<<<grid_for(n * n), kThreads, 0, stream>>>(gram, gram_ld, n, dead, add, hd);
        PRUNE_TRY(launched("hessian fill"));
        if (scale) {
            diagonal_sqrt_kernel<<<grid_for(n), kThreads, 0, stream>>>(hd, n, scale);
            PRUNE_TRY(launched("hessian scale"));
            unit_diagonal_kernel<<<grid_for(n * n), kThreads, 0, stream>>>(hd, n, scale);
            PRUNE_TRY(launched("hessian scale"));
        }
        return TSENOR_OK;
    }

    /* Cholesky of a (n x n, in place, lower triangle of the column-major storage);
       INVALID_ARGUMENT when it is not positive definite */
    /* cuSOLVER's workspaces, kept across the factorisations of a call */
    char *device_work = nullptr;
    size_t device_work_bytes = 0;
    std::vector<char> host_work;
    tsenor_status workspace(size_t device_bytes, size_t host_bytes)
    {
        if (device_bytes > device_work_bytes) {
            PRUNE_TRY(arrays.get(&device_work, device_bytes));
            device_work_bytes = device_bytes;
        }
        if (host_bytes + 1 > host_work.size()) host_work.resize(host_bytes + 1);
        return TSENOR_OK;
    }

    tsenor_status cholesky(float *a, size_t n)
    {
        size_t dev_bytes = 0, host_bytes = 0;
        cusolverStatus_t s = cusolverDnXpotrf_bufferSize(lib->solver, lib->params, CUBLAS_FILL_MODE_LOWER, (int64_t)n,
                                                         CUDA_R_32F, a, (int64_t)n, CUDA_R_32F, &dev_bytes, &host_bytes);
        if (s != CUSOLVER_STATUS_SUCCESS) return solver_error("cusolverDnXpotrf_bufferSize", s);
        PRUNE_TRY(workspace(dev_bytes, host_bytes));
        s = cusolverDnXpotrf(lib->solver, lib->params, CUBLAS_FILL_MODE_LOWER, (int64_t)n, CUDA_R_32F, a, (int64_t)n,
                             CUDA_R_32F, device_work, dev_bytes, host_work.data(), host_bytes, flags);
        if (s != CUSOLVER_STATUS_SUCCESS) return solver_error("cusolverDnXpotrf", s);
        int info = 0;
        PRUNE_TRY(read_flags(&info));
        return info != 0 ? TSENOR_ERR_INVALID_ARGUMENT : TSENOR_OK;
    }

    tsenor_status _tsenor_check_definite(const float *gram, size_t gram_ld, size_t n)
    {
        float *hd = nullptr;
        uint8_t *dead = nullptr;
        PRUNE_TRY(arrays.get(&hd, n * n));
        PRUNE_TRY(arrays.get(&dead, n));
        PRUNE_TRY(_tsenor_hessian_prepare(gram, gram_ld, n, hd, dead, nullptr));
        PRUNE_TRY(factor_clock.begin(stream));
        PRUNE_TRY(cholesky(hd, n));
        return factor_clock.end(stream);
    }

    tsenor_status _tsenor_prune_scored(const float *w, size_t rows, size_t cols, size_t ld, const float *gram,
                                       size_t gram_ld)
    {
        if (pc.method == TSENOR_PRUNE_WANDA) {
            unsigned long long *top = nullptr;
            float *score = what;   /* the scores live where W^ goes next */
            PRUNE_TRY(arrays.get(&top, 1));
            PRUNE_TRY(cuda_step(cudaMemsetAsync(top, 0, sizeof *top, stream), "cudaMemsetAsync"));
            wanda_top_kernel<<<grid_for(rows * cols), kThreads, 0, stream>>>(w, ld, gram, gram_ld, rows, cols, top);
            PRUNE_TRY(launched("wanda scores"));
            wanda_score_kernel<<<grid_for(rows * cols), kThreads, 0, stream>>>(w, ld, gram, gram_ld, rows, cols, top, score);
            PRUNE_TRY(launched("wanda scores"));
            PRUNE_TRY(project(score, rows, cols, cols, msk, cols));
        } else {
            PRUNE_TRY(project(w, rows, cols, ld, msk, cols));
        }
        keep_masked_kernel<<<grid_for(rows * cols), kThreads, 0, stream>>>(w, ld, msk, rows, cols, what);
        return launched("keep masked");
    }

    tsenor_status _tsenor_prune_sparsegpt(const float *w, size_t rows, size_t cols, size_t ld, const float *gram,
                                          size_t gram_ld)
    {
        const size_t n = cols, m = (size_t)pc.cfg.m, bs = m * (m < (size_t)kSweepBlock ? kSweepBlock / m : 1);
        float *u = nullptr, *hr = nullptr, *err = nullptr, *score = nullptr;
        uint8_t *dead = nullptr, *slab = nullptr;
        unsigned long long *tops = nullptr;
        const size_t slabs = (n + m - 1) / m + n / bs + 1;
        PRUNE_TRY(arrays.get(&u, n * n));
        PRUNE_TRY(arrays.get(&hr, n * n));
        PRUNE_TRY(arrays.get(&err, rows * bs));
        PRUNE_TRY(arrays.get(&score, rows * m));
        PRUNE_TRY(arrays.get(&dead, n));
        PRUNE_TRY(arrays.get(&slab, rows * m));
        PRUNE_TRY(arrays.get(&tops, slabs));
        PRUNE_TRY(cuda_step(cudaMemsetAsync(tops, 0, slabs * sizeof *tops, stream), "cudaMemsetAsync"));

        /* U: damped H (dead inputs H_jj = 1), reversed, factored, inverted */
        PRUNE_TRY(_tsenor_hessian_prepare(gram, gram_ld, n, u, dead, nullptr));
        reverse_kernel<<<grid_for(n * n), kThreads, 0, stream>>>(u, n, hr);
        PRUNE_TRY(launched("reverse"));
        PRUNE_TRY(factor_clock.begin(stream));
        PRUNE_TRY(cholesky(hr, n));
        {
            size_t dev_bytes = 0, host_bytes = 0;
            cusolverStatus_t s = cusolverDnXtrtri_bufferSize(lib->solver, CUBLAS_FILL_MODE_LOWER, CUBLAS_DIAG_NON_UNIT,
                                                             (int64_t)n, CUDA_R_32F, hr, (int64_t)n, &dev_bytes, &host_bytes);
            if (s != CUSOLVER_STATUS_SUCCESS) return solver_error("cusolverDnXtrtri_bufferSize", s);
            PRUNE_TRY(workspace(dev_bytes, host_bytes));
            s = cusolverDnXtrtri(lib->solver, CUBLAS_FILL_MODE_LOWER, CUBLAS_DIAG_NON_UNIT, (int64_t)n, CUDA_R_32F, hr,
                                 (int64_t)n, device_work, dev_bytes, host_work.data(), host_bytes, flags);
            if (s != CUSOLVER_STATUS_SUCCESS) return solver_error("cusolverDnXtrtri", s);
            int info = 0;
            PRUNE_TRY(read_flags(&info));
            if (info != 0) return TSENOR_ERR_INVALID_ARGUMENT;
        }
        PRUNE_TRY(factor_clock.end(stream));
        upper_factor_kernel<<<grid_for(n * n), kThreads, 0, stream>>>(hr, n, u);
        PRUNE_TRY(launched("upper factor"));

        /* dead inputs do not change the output on the calibration data: their weights go */
        live_inputs_kernel<<<grid_for(rows * n), kThreads, 0, stream>>>(w, ld, dead, nullptr, rows, n, what);
        PRUNE_TRY(launched("live inputs"));

        size_t slab_index = 0;
        const unsigned sweep_grid = (unsigned)((rows + kSweepWarps - 1) / kSweepWarps);
        for (size_t i1 = 0; i1 < n; i1 += bs) {
            const size_t i2 = n - i1 < bs ? n : i1 + bs, bw = i2 - i1;
            for (size_t c0 = i1; c0 < i2; c0 += m) {
                const size_t mw = i2 - c0 < m ? i2 - c0 : m;
                unsigned long long *top = tops + slab_index++;
                slab_top_kernel<<<grid_for(rows * mw), kThreads, 0, stream>>>(what, n, u, rows, c0, mw, top);
                PRUNE_TRY(launched("slab scores"));
                slab_score_kernel<<<grid_for(rows * mw), kThreads, 0, stream>>>(what, n, u, rows, c0, mw, top, score);
                PRUNE_TRY(launched("slab scores"));
                PRUNE_TRY(project(score, rows, mw, mw, slab, mw));
                slab_apply_kernel<<<sweep_grid, kSweepWarps * 32, 0, stream>>>(what, n, u, rows, i1, i2, c0, mw, slab, err, msk);
                PRUNE_TRY(launched("slab update"));
            }
            if (i2 < n)
                PRUNE_TRY(gemm_rm(lib->blas, false, false, rows, n - i2, bw, -1.0f, err, bw, u + i1 * n + i2, n, 1.0f,
                                  what + i2, n, CUBLAS_COMPUTE_32F));
        }
        return TSENOR_OK;
    }

    /* inverse (n x n, full) = (hn + rho I)^-1, by the route alps_route() picks; for
       TRIANGULAR its lower triangle is the Cholesky factor L (column-major) instead. With
       split products, the INVERSE and EIGEN routes' result is split for alps_apply too. */
    tsenor_status alps_inverse(const float *hn, size_t n, double rho, AlpsRoute route, const float *q, const float *lambda,
                               float *scaled, float *inverse)
    {
        PRUNE_TRY(factor_clock.begin(stream));
        if (route == ALPS_TRIANGULAR) {
            PRUNE_TRY(cuda_step(cudaMemcpyAsync(inverse, hn, n * n * sizeof(float), cudaMemcpyDeviceToDevice, stream),
                                "cudaMemcpyAsync"));
            PRUNE_TRY(add_diagonal(inverse, n, (float)rho));
            if (diag) {
                PRUNE_TRY(cholesky_blocked(inverse, n));
                PRUNE_TRY(solve_prepare(inverse, n));   /* the blocked solves' operands */
            } else {
                PRUNE_TRY(cholesky(inverse, n));
            }
        } else if (route == ALPS_EIGEN) {   /* Q diag(1 / (lambda + rho)) Q^T */
            inverse_eigen_scale_kernel<<<grid_for(n * n), kThreads, 0, stream>>>(q, lambda, rho, n, scaled);
            PRUNE_TRY(launched("eigen scaling"));
            /* Q and Q S are column-major, i.e. Q^T and (Q S)^T as row-major operands:
               (Q S) Q^T = ((Q S)^T)^T Q^T (symmetric: the same in either order) */
            PRUNE_TRY(gemm_rm(lib->blas, true, false, n, n, n, 1.0f, scaled, n, q, n, 0.0f, inverse, n, CUBLAS_COMPUTE_32F));
        } else {
            PRUNE_TRY(cuda_step(cudaMemcpyAsync(inverse, hn, n * n * sizeof(float), cudaMemcpyDeviceToDevice, stream),
                                "cudaMemcpyAsync"));
            PRUNE_TRY(add_diagonal(inverse, n, (float)rho));
            PRUNE_TRY(cholesky(inverse, n));
            /* (L L^T)^-1 = L^-T L^-1: the triangular inverse in place (trtri), its strict
               upper part cleared, then one syrk into scaled */
            size_t dev_bytes = 0, host_bytes = 0;
            cusolverStatus_t s = cusolverDnXtrtri_bufferSize(lib->solver, CUBLAS_FILL_MODE_LOWER, CUBLAS_DIAG_NON_UNIT,
                                                             (int64_t)n, CUDA_R_32F, inverse, (int64_t)n, &dev_bytes,
                                                             &host_bytes);
            if (s != CUSOLVER_STATUS_SUCCESS) return solver_error("cusolverDnXtrtri_bufferSize", s);
            PRUNE_TRY(workspace(dev_bytes, host_bytes));
            s = cusolverDnXtrtri(lib->solver, CUBLAS_FILL_MODE_LOWER, CUBLAS_DIAG_NON_UNIT, (int64_t)n, CUDA_R_32F, inverse,
                                 (int64_t)n, device_work, dev_bytes, host_work.data(), host_bytes, flags);
            if (s != CUSOLVER_STATUS_SUCCESS) return solver_error("cusolverDnXtrtri", s);
            clear_upper_kernel<<<grid_for(n * n), kThreads, 0, stream>>>(inverse, n);
            PRUNE_TRY(launched("clear upper"));
            const float one = 1.0f, zero = 0.0f;
            cublasStatus_t bs = cublasSsyrk(lib->blas, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_T, (int)n, (int)n, &one, inverse,
                                            (int)n, &zero, scaled, (int)n);
            if (bs != CUBLAS_STATUS_SUCCESS) return blas_error("cublasSsyrk", bs);
            mirror_lower_kernel<<<grid_for(n * n), kThreads, 0, stream>>>(scaled, n);
            PRUNE_TRY(launched("mirror"));
            PRUNE_TRY(cuda_step(cudaMemcpyAsync(inverse, scaled, n * n * sizeof(float), cudaMemcpyDeviceToDevice, stream),
                                "cudaMemcpyAsync"));
        }
        if (route != ALPS_TRIANGULAR && inverse_hi) {
            split_tf32_kernel<<<grid_for(n * n), kThreads, 0, stream>>>(inverse, n, n, n, inverse_hi, inverse_lo);
            PRUNE_TRY(launched("split inverse"));
        }
        return factor_clock.end(stream);
    }

    /* Split-TF32 products: x_hi, x_lo (rows x n) hold a split right side per product;
       hn_hi, hn_lo the split H, inverse_hi, inverse_lo the split (H + rho I)^-1 (INVERSE,
       EIGEN). All NULL with TSENOR_CUDA_PRUNE_MATH=fp32|tf32. */
    float *x_hi = nullptr, *x_lo = nullptr, *hn_hi = nullptr, *hn_lo = nullptr, *inverse_hi = nullptr,
          *inverse_lo = nullptr;

    /* out = alpha x M + beta out (row-major, rows x n) for M symmetric (n x n): with
       split operands when m_hi is set (x is split into x_hi, x_lo first), else one cuBLAS
       product in math. Row-major x and out are column-major x^T and out^T, and
       out^T = M x^T. */
    tsenor_status symmetric_product(const float *x, const float *m, const float *m_hi, const float *m_lo, size_t rows,
                                    size_t n, float alpha, float beta, float *out, cublasComputeType_t math)
    {
        if (!m_hi) return gemm_rm(lib->blas, false, false, rows, n, n, alpha, x, n, m, n, beta, out, n, math);
        split_tf32_kernel<<<grid_for(rows * n), kThreads, 0, stream>>>(x, n, rows, n, x_hi, x_lo);
        PRUNE_TRY(launched("split right side"));
        return gemm_split_cm(lib->blas, false, false, n, rows, n, alpha, m_hi, m_lo, n, x_hi, x_lo, n, beta, out, n);
    }

    /* out = rhs (hn + rho I)^-1 (rows x n, row-major), with what alps_inverse made; out
       may be rhs for TRIANGULAR. For TRIANGULAR: row-major rhs is the column-major
       n x rows rhs^T, and (L L^T) out^T = rhs^T is solved by L Y = rhs^T, then
       L^T out^T = Y, in place in out. */
    tsenor_status alps_apply(const float *inverse, AlpsRoute route, const float *rhs, size_t rows, size_t n, float *out,
                             cublasComputeType_t math)
    {
        if (route != ALPS_TRIANGULAR)
            return symmetric_product(rhs, inverse, inverse_hi, inverse_lo, rows, n, 1.0f, 0.0f, out, math);
        if (out != rhs)
            PRUNE_TRY(cuda_step(cudaMemcpyAsync(out, rhs, rows * n * sizeof(float), cudaMemcpyDeviceToDevice, stream),
                                "cudaMemcpyAsync"));
        const float one = 1.0f;
        if (diag) return blocked_solves(rows, n, out);
        for (int pass = 0; pass < 2; pass++) {
            const cublasStatus_t bs = cublasStrsm_64(lib->blas, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER,
                                                     pass ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_DIAG_NON_UNIT, (int64_t)n,
                                                     (int64_t)rows, &one, inverse, (int64_t)n, out, (int64_t)n);
            if (bs != CUBLAS_STATUS_SUCCESS) return blas_error("cublasStrsm", bs);
        }
        return TSENOR_OK;
    }

    /* The blocked route's operands, K-stacked for split products (stack_split_kernel),
       formed per rho: diag holds the inverses of L's diagonal blocks (trsm on identities,
       the full blocks in one batched call), diag_across [hi | lo | hi] and diag_above
       [hi; lo; hi] copies of them; row_panels (per block row J, L[J, :j0] as
       [hi | lo | hi] per block column) and column_panels (per block column J, L[j1:, J] as
       [hi; lo; hi] per block row, used transposed) are the solves' left-looking products.
       Scratch: chol_hi3 and chol_lo3 (the factorisation's panel as [hi | lo | hi] and
       [lo | hi | hi]), stack (a product's right side, [lo; hi; hi]), solved (the solved
       blocks, [lo; hi; hi] per block, ld 3n), block_info (the diagonal blocks' potrf). */
    float *diag = nullptr, *diag_across = nullptr, *diag_above = nullptr, *row_panels = nullptr,
          *column_panels = nullptr, *chol_hi3 = nullptr, *chol_lo3 = nullptr, *stack = nullptr, *solved = nullptr;
    float **diag_ptrs = nullptr;   /* device: the batched trsm's A (L's blocks), then B (diag's blocks) */
    int *block_info = nullptr;
    std::vector<size_t> row_at, column_at;   /* each block's panel offset */

    tsenor_status stack_split(const float *src, size_t m, size_t k, size_t lds, unsigned lo_parts, bool across,
                              size_t chunk, float *dst, size_t ldd, cudaStream_t on = nullptr)
    {
        if (chunk == 0) chunk = (across ? k : m) > 0 ? (across ? k : m) : 1;
        stack_split_kernel<<<grid_for(m * k), kThreads, 0, on ? on : stream>>>(src, m, k, lds, lo_parts, across, chunk,
                                                                               dst, ldd);
        return launched("split-TF32 stacking");
    }

    tsenor_status solve_setup(const float *l, size_t n, size_t rows)
    {
        const size_t NB = kSolveBlock, blocks = (n + NB - 1) / NB;
        size_t at_row = 0, at_column = 0;
        PRUNE_TRY(arrays.get(&diag, blocks * NB * NB));
        PRUNE_TRY(arrays.get(&diag_across, 3 * blocks * NB * NB));
        PRUNE_TRY(arrays.get(&diag_above, 3 * blocks * NB * NB));
        PRUNE_TRY(arrays.get(&stack, 3 * NB * rows));
        PRUNE_TRY(arrays.get(&solved, 3 * n * rows));
        PRUNE_TRY(arrays.get(&chol_hi3, 2 * 3 * NB * (n - NB)));   /* two pairs: one per stream */
        PRUNE_TRY(arrays.get(&chol_lo3, 2 * 3 * NB * (n - NB)));
        PRUNE_TRY(arrays.get(&diag_ptrs, 2 * blocks));
        PRUNE_TRY(arrays.get(&block_info, blocks));
        for (size_t b = 0; b < blocks; b++) {
            const size_t j0 = b * NB, jb = n - j0 < NB ? n - j0 : NB;
            row_at.push_back(at_row);
            column_at.push_back(at_column);
            at_row += jb * 3 * j0;
            at_column += 3 * (n - j0 - jb) * jb;
        }
        PRUNE_TRY(arrays.get(&row_panels, at_row + 1));
        PRUNE_TRY(arrays.get(&column_panels, at_column + 1));
        std::vector<float *> ptrs(2 * blocks);
        for (size_t b = 0; b < blocks; b++) {
            ptrs[b] = const_cast<float *>(l) + b * NB * n + b * NB;
            ptrs[blocks + b] = diag + b * NB * NB;
        }
        PRUNE_TRY(cuda_step(cudaMemcpyAsync(diag_ptrs, ptrs.data(), 2 * blocks * sizeof(float *), cudaMemcpyHostToDevice,
                                            stream), "cudaMemcpyAsync"));
        return cuda_step(cudaStreamSynchronize(stream), "cudaStreamSynchronize");   /* ptrs goes out of scope */
    }

    /* a (n x n, column-major, lower triangle) <- its Cholesky factor L, right-looking by
       block columns J = [j0, j1): potrf of the diagonal block, the panel below it by an
       FP32 trsm (L[j1:, J] = A[j1:, J] L_JJ^-T), then each later block column K loses
       L[k0:, J] L[K, J]^T in one K-stacked split product ([hi | lo | hi] times
       [lo | hi | hi]^T). With look-ahead: once block column J + 1 has its update from J,
       it is factored on the aside stream while the main stream updates the rest, so the
       diagonal blocks' potrf (latency-bound: 0.34 ms for 1024 on the H200) leaves the
       critical path. INVALID_ARGUMENT when a diagonal block is not positive definite.
       The upper triangle is left in any state. */
    tsenor_status cholesky_blocked(float *a, size_t n)
    {
        const size_t NB = kSolveBlock, blocks = (n + NB - 1) / NB;
        PRUNE_TRY(get_aside(lib));
        cudaEvent_t factored = lib->aside_events[0], next = lib->aside_events[1];
        size_t dev_bytes = 0, host_bytes = 0;
        cusolverStatus_t s = cusolverDnXpotrf_bufferSize(lib->solver, lib->params, CUBLAS_FILL_MODE_LOWER, (int64_t)NB,
                                                         CUDA_R_32F, a, (int64_t)n, CUDA_R_32F, &dev_bytes, &host_bytes);
        if (s != CUSOLVER_STATUS_SUCCESS) return solver_error("cusolverDnXpotrf_bufferSize", s);
        PRUNE_TRY(workspace(dev_bytes, host_bytes));
        PRUNE_TRY(cuda_step(cudaMemsetAsync(block_info, 0, blocks * sizeof(int), stream), "cudaMemsetAsync"));
        /* from here the solver works on the aside stream; the main stream waits for all
           of the aside's work on every way out */
        struct Join {
            Run *r;
            ~Join()
            {
                cudaEventRecord(r->lib->aside_events[0], r->lib->aside);
                cudaStreamWaitEvent(r->stream, r->lib->aside_events[0], 0);
                cusolverDnSetStream(r->lib->solver, r->stream);
            }
        } join = {this};
        PRUNE_TRY(cuda_step(cudaEventRecord(next, stream), "cudaEventRecord"));
        PRUNE_TRY(cuda_step(cudaStreamWaitEvent(lib->aside, next, 0), "cudaStreamWaitEvent"));
        const cusolverStatus_t ss = cusolverDnSetStream(lib->solver, lib->aside);
        if (ss != CUSOLVER_STATUS_SUCCESS) return solver_error("cusolverDnSetStream", ss);
        /* block column b: its potrf and panel, split into the b-th pair of buffers */
        auto factor = [&](size_t b) -> tsenor_status {
            const size_t j0 = b * NB, jb = n - j0 < NB ? n - j0 : NB, m = n - j0 - jb, half = 3 * NB * (n - NB);
            float *ajj = a + j0 * n + j0;
            cusolverStatus_t st = cusolverDnXpotrf(lib->solver, lib->params, CUBLAS_FILL_MODE_LOWER, (int64_t)jb, CUDA_R_32F,
                                                   ajj, (int64_t)n, CUDA_R_32F, device_work, dev_bytes, host_work.data(),
                                                   host_bytes, block_info + b);
            if (st != CUSOLVER_STATUS_SUCCESS) return solver_error("cusolverDnXpotrf", st);
            if (m > 0) {
                const float one = 1.0f;
                const cublasStatus_t bs = cublasStrsm_64(lib->aside_blas, CUBLAS_SIDE_RIGHT, CUBLAS_FILL_MODE_LOWER,
                                                         CUBLAS_OP_T, CUBLAS_DIAG_NON_UNIT, (int64_t)m, (int64_t)jb, &one,
                                                         ajj, (int64_t)n, ajj + jb, (int64_t)n);
                if (bs != CUBLAS_STATUS_SUCCESS) return blas_error("cublasStrsm", bs);
                PRUNE_TRY(stack_split(ajj + jb, m, jb, n, kHiLoHi, true, 0, chol_hi3 + b % 2 * half, m, lib->aside));
                PRUNE_TRY(stack_split(ajj + jb, m, jb, n, kLoHiHi, true, 0, chol_lo3 + b % 2 * half, m, lib->aside));
            }
            return cuda_step(cudaEventRecord(factored, lib->aside), "cudaEventRecord");
        };
        PRUNE_TRY(factor(0));
        for (size_t b = 0; b < blocks; b++) {
            const size_t j0 = b * NB, j1 = j0 + NB, m = n - j1, half = 3 * NB * (n - NB);
            const float *hi3 = chol_hi3 + b % 2 * half, *lo3 = chol_lo3 + b % 2 * half;
            PRUNE_TRY(cuda_step(cudaStreamWaitEvent(stream, factored, 0), "cudaStreamWaitEvent"));
            if (j1 >= n) break;
            for (size_t k0 = j1; k0 < n; k0 += NB) {   /* block column b + 1 first, then the rest */
                const size_t kb = n - k0 < NB ? n - k0 : NB;
                PRUNE_TRY(gemm_tf32_cm(lib->blas, false, true, n - k0, kb, 3 * NB, -1.0f, hi3 + (k0 - j1), m,
                                       lo3 + (k0 - j1), m, 1.0f, a + k0 * n + k0, n));
                if (k0 == j1) {
                    PRUNE_TRY(cuda_step(cudaEventRecord(next, stream), "cudaEventRecord"));
                    PRUNE_TRY(cuda_step(cudaStreamWaitEvent(lib->aside, next, 0), "cudaStreamWaitEvent"));
                    PRUNE_TRY(factor(b + 1));
                }
            }
        }
        std::vector<int> info(blocks);
        PRUNE_TRY(cuda_step(cudaMemcpyAsync(info.data(), block_info, blocks * sizeof(int), cudaMemcpyDeviceToHost, stream),
                            "cudaMemcpyAsync"));
        PRUNE_TRY(cuda_step(cudaStreamSynchronize(stream), "cudaStreamSynchronize"));
        for (size_t b = 0; b < blocks; b++)
            if (info[b] != 0) return TSENOR_ERR_INVALID_ARGUMENT;
        return TSENOR_OK;
    }

    /* after cholesky_blocked: the diagonal blocks' inverses and the panels */
    tsenor_status solve_prepare(const float *l, size_t n)
    {
        const size_t NB = kSolveBlock, blocks = (n + NB - 1) / NB, full = n / NB;
        const float one = 1.0f;
        identity_blocks_kernel<<<grid_for(blocks * NB * NB), kThreads, 0, stream>>>(diag, NB, blocks);
        PRUNE_TRY(launched("identity blocks"));
        if (full) {
            const cublasStatus_t bs = cublasStrsmBatched(lib->blas, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N,
                                                         CUBLAS_DIAG_NON_UNIT, (int)NB, (int)NB, &one, diag_ptrs, (int)n,
                                                         diag_ptrs + blocks, (int)NB, (int)full);
            if (bs != CUBLAS_STATUS_SUCCESS) return blas_error("cublasStrsmBatched", bs);
        }
        if (full < blocks) {   /* the last, partial block (ld = its size) */
            const size_t j0 = full * NB, jb = n - j0;
            identity_blocks_kernel<<<grid_for(jb * jb), kThreads, 0, stream>>>(diag + full * NB * NB, jb, 1);
            PRUNE_TRY(launched("identity block"));
            const cublasStatus_t bs = cublasStrsm_64(lib->blas, CUBLAS_SIDE_LEFT, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N,
                                                     CUBLAS_DIAG_NON_UNIT, (int64_t)jb, (int64_t)jb, &one, l + j0 * n + j0,
                                                     (int64_t)n, diag + full * NB * NB, (int64_t)jb);
            if (bs != CUBLAS_STATUS_SUCCESS) return blas_error("cublasStrsm", bs);
        }
        for (size_t b = 0; b < blocks; b++) {
            const size_t j0 = b * NB, jb = n - j0 < NB ? n - j0 : NB, j1 = j0 + jb, at = b * NB * NB;
            PRUNE_TRY(stack_split(diag + at, jb, jb, jb, kHiLoHi, true, 0, diag_across + 3 * at, jb));
            PRUNE_TRY(stack_split(diag + at, jb, jb, jb, kHiLoHi, false, 0, diag_above + 3 * at, 3 * jb));
            if (j0 > 0) PRUNE_TRY(stack_split(l + j0, jb, j0, n, kHiLoHi, true, NB, row_panels + row_at[b], jb));
            if (j1 < n)
                PRUNE_TRY(stack_split(l + j0 * n + j1, n - j1, jb, n, kHiLoHi, false, NB, column_panels + column_at[b],
                                      3 * (n - j1)));
        }
        return TSENOR_OK;
    }

    /* out (column-major n x rows, ld n) <- (L L^T)^-1 out, left-looking by blocks of
       kSolveBlock, every product split-TF32 and K-stacked (one deep product per block
       instead of one per block pair: the products of the two solves of 4096 x 14336 took
       14.2 ms against 18.0 right-looking on the H200): L Y = R from the first block down,
       Y_J = L_JJ^-1 (R_J - L[J, :j0] Y[:j0]), then L^T X = Y from the last block up,
       X_J = L_JJ^-T (Y_J - L[j1:, J]^T X[j1:]); solved keeps each finished block split. */
    tsenor_status blocked_solves(size_t rows, size_t n, float *out)
    {
        const size_t NB = kSolveBlock, blocks = (n + NB - 1) / NB;
        for (int pass = 0; pass < 2; pass++)
            for (size_t t = 0; t < blocks; t++) {
                const size_t b = pass ? blocks - 1 - t : t, j0 = b * NB, jb = n - j0 < NB ? n - j0 : NB, j1 = j0 + jb;
                if (pass == 0 && j0 > 0)
                    PRUNE_TRY(gemm_tf32_cm(lib->blas, false, false, jb, rows, 3 * j0, -1.0f, row_panels + row_at[b], jb,
                                           solved, 3 * n, 1.0f, out + j0, n));
                if (pass == 1 && j1 < n)
                    PRUNE_TRY(gemm_tf32_cm(lib->blas, true, false, jb, rows, 3 * (n - j1), -1.0f,
                                           column_panels + column_at[b], 3 * (n - j1), solved + 3 * j1, 3 * n, 1.0f,
                                           out + j0, n));
                PRUNE_TRY(stack_split(out + j0, jb, rows, n, kLoHiHi, false, 0, stack, 3 * jb));
                if (pass == 0)
                    PRUNE_TRY(gemm_tf32_cm(lib->blas, false, false, jb, rows, 3 * jb, 1.0f, diag_across + 3 * b * NB * NB,
                                           jb, stack, 3 * jb, 0.0f, out + j0, n));
                else
                    PRUNE_TRY(gemm_tf32_cm(lib->blas, true, false, jb, rows, 3 * jb, 1.0f, diag_above + 3 * b * NB * NB,
                                           3 * jb, stack, 3 * jb, 0.0f, out + j0, n));
                if (pass == 0 ? j1 < n : j0 > 0)   /* a later block reads it */
                    PRUNE_TRY(stack_split(out + j0, jb, rows, n, kLoHiHi, false, 0, solved + 3 * j0, 3 * n));
            }
        return TSENOR_OK;
    }

    tsenor_status add_diagonal(float *a, size_t n, float value);

    tsenor_status _tsenor_prune_alps(const float *w, size_t rows, size_t cols, size_t ld, const float *gram,
                                     size_t gram_ld)
    {
        const size_t n = cols, rn = rows * cols;
        const AlpsRoute route = alps_route(rows, cols);
        const bool eigen = route == ALPS_EIGEN;
        const ProductMath math = product_math();
        const cublasComputeType_t fast = math == MATH_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
        float *hn = nullptr, *inv = nullptr, *q = nullptr, *scaled = nullptr, *lambda = nullptr, *scale = nullptr;
        float *w0 = nullptr, *g = nullptr, *v = nullptr, *d = nullptr, *b = nullptr;
        double *rs = nullptr, *totals = nullptr;
        uint8_t *dead = nullptr, *ref = nullptr;
        unsigned long long *counts = nullptr;
        double *sums = nullptr;
        double rho = pc.rho;
        PRUNE_TRY(arrays.get(&hn, n * n));
        PRUNE_TRY(arrays.get(&inv, n * n));
        PRUNE_TRY(arrays.get(&scale, n));
        PRUNE_TRY(arrays.get(&w0, rn));
        PRUNE_TRY(arrays.get(&g, rn));
        PRUNE_TRY(arrays.get(&v, rn));
        PRUNE_TRY(arrays.get(&d, rn));
        PRUNE_TRY(arrays.get(&b, rn));
        PRUNE_TRY(arrays.get(&rs, rows));
        PRUNE_TRY(arrays.get(&totals, 1));
        PRUNE_TRY(arrays.get(&dead, n));
        PRUNE_TRY(arrays.get(&ref, rn));
        PRUNE_TRY(arrays.get(&counts, 2));
        PRUNE_TRY(arrays.get(&sums, 2));

        PRUNE_TRY(_tsenor_hessian_prepare(gram, gram_ld, n, hn, dead, scale));
        live_inputs_kernel<<<grid_for(rn), kThreads, 0, stream>>>(w, ld, dead, scale, rows, n, w0);
        PRUNE_TRY(launched("scaled weights"));
        if (math == MATH_SPLIT) {
            PRUNE_TRY(arrays.get(&x_hi, rn));
            PRUNE_TRY(arrays.get(&x_lo, rn));
            PRUNE_TRY(arrays.get(&hn_hi, n * n));
            PRUNE_TRY(arrays.get(&hn_lo, n * n));
            split_tf32_kernel<<<grid_for(n * n), kThreads, 0, stream>>>(hn, n, n, n, hn_hi, hn_lo);
            PRUNE_TRY(launched("split H"));
            if (route != ALPS_TRIANGULAR) {
                PRUNE_TRY(arrays.get(&inverse_hi, n * n));
                PRUNE_TRY(arrays.get(&inverse_lo, n * n));
            }
        }
        PRUNE_TRY(symmetric_product(w0, hn, hn_hi, hn_lo, rows, n, 1.0f, 0.0f, g, CUBLAS_COMPUTE_32F));   /* W0 H */

        if (route != ALPS_TRIANGULAR) PRUNE_TRY(arrays.get(&scaled, n * n));   /* EIGEN's Q S, INVERSE's product */
        if (route == ALPS_TRIANGULAR && math == MATH_SPLIT && n > kSolveBlock) PRUNE_TRY(solve_setup(inv, n, rows));
        if (eigen) {   /* H = Q diag(lambda) Q^T once; positive definite after + rho iff lambda_min + rho > 0 */
            PRUNE_TRY(arrays.get(&q, n * n));
            PRUNE_TRY(arrays.get(&lambda, n));
            PRUNE_TRY(factor_clock.begin(stream));
            PRUNE_TRY(cuda_step(cudaMemcpyAsync(q, hn, n * n * sizeof(float), cudaMemcpyDeviceToDevice, stream), "cudaMemcpyAsync"));
            size_t dev_bytes = 0, host_bytes = 0;
            cusolverStatus_t s = cusolverDnXsyevd_bufferSize(lib->solver, lib->params, CUSOLVER_EIG_MODE_VECTOR,
                                                             CUBLAS_FILL_MODE_LOWER, (int64_t)n, CUDA_R_32F, q, (int64_t)n,
                                                             CUDA_R_32F, lambda, CUDA_R_32F, &dev_bytes, &host_bytes);
            if (s != CUSOLVER_STATUS_SUCCESS) return solver_error("cusolverDnXsyevd_bufferSize", s);
            PRUNE_TRY(workspace(dev_bytes, host_bytes));
            s = cusolverDnXsyevd(lib->solver, lib->params, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, (int64_t)n,
                                 CUDA_R_32F, q, (int64_t)n, CUDA_R_32F, lambda, CUDA_R_32F, device_work, dev_bytes,
                                 host_work.data(), host_bytes, flags);
            if (s != CUSOLVER_STATUS_SUCCESS) return solver_error("cusolverDnXsyevd", s);
            PRUNE_TRY(factor_clock.end(stream));
            int info = 0;
            float lambda_min = 0.0f;
            PRUNE_TRY(read_flags(&info));
            if (info != 0) { set_error_text("cusolverDnXsyevd did not converge"); return TSENOR_ERR_DEVICE; }
            PRUNE_TRY(cuda_step(cudaMemcpyAsync(&lambda_min, lambda, sizeof(float), cudaMemcpyDeviceToHost, stream),
                                "cudaMemcpyAsync"));
            PRUNE_TRY(cuda_step(cudaStreamSynchronize(stream), "cudaStreamSynchronize"));
            if (!((double)lambda_min + rho > 0.0)) return TSENOR_ERR_INVALID_ARGUMENT;   /* ascending order */
        }

        PRUNE_TRY(project(w0, rows, n, n, msk, n));
        keep_masked_kernel<<<grid_for(rn), kThreads, 0, stream>>>(w0, n, msk, rows, n, d);
        PRUNE_TRY(launched("keep masked"));
        PRUNE_TRY(cuda_step(cudaMemsetAsync(v, 0, rn * sizeof(float), stream), "cudaMemsetAsync"));
        PRUNE_TRY(cuda_step(cudaMemcpyAsync(ref, msk, rn, cudaMemcpyDeviceToDevice, stream), "cudaMemcpyAsync"));

        for (int it = 0; it < pc.iterations; it++) {
            if (it == 0) PRUNE_TRY(alps_inverse(hn, n, rho, route, q, lambda, scaled, inv));
            const float frho = (float)rho, inv_rho = (float)(1.0 / rho);
            const bool check = (it + 1) % _TSENOR_ALPS_CHECK_EVERY == 0;
            alps_rhs_kernel<<<grid_for(rn), kThreads, 0, stream>>>(g, v, d, frho, rn, b);
            PRUNE_TRY(launched("admm rhs"));
            if (route == ALPS_TRIANGULAR) {   /* in place: b = B, the solve's result */
                PRUNE_TRY(alps_apply(inv, route, b, rows, n, b, fast));
            } else {
                PRUNE_TRY(alps_apply(inv, route, b, rows, n, d, fast));
                std::swap(b, d);   /* b = B; d is free until the shift below */
            }
            alps_shift_kernel<<<grid_for(rn), kThreads, 0, stream>>>(b, v, inv_rho, rn, d);
            PRUNE_TRY(launched("admm shift"));
            PRUNE_TRY(project(d, rows, n, n, msk, n));
            if (check) {
                PRUNE_TRY(cuda_step(cudaMemsetAsync(counts, 0, 2 * sizeof *counts, stream), "cudaMemsetAsync"));
                PRUNE_TRY(cuda_step(cudaMemsetAsync(sums, 0, 2 * sizeof *sums, stream), "cudaMemsetAsync"));
            }
            alps_dual_kernel<<<grid_for(rn), kThreads, 0, stream>>>(d, msk, b, v, frho, rn, ref, check ? counts : nullptr,
                                                                    sums);
            PRUNE_TRY(launched("admm dual"));
            iterations = it + 1;
            if (check) {   /* the schedule and the stopping rule of the CPU (tsenor.h) */
                unsigned long long c[2] = {0, 0};
                double gs[2] = {0.0, 0.0};
                PRUNE_TRY(cuda_step(cudaMemcpyAsync(c, counts, sizeof c, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync"));
                PRUNE_TRY(cuda_step(cudaMemcpyAsync(gs, sums, sizeof gs, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync"));
                PRUNE_TRY(cuda_step(cudaStreamSynchronize(stream), "cudaStreamSynchronize"));
                if (_tsenor_alps_settled((double)c[0], gs[0], gs[1])) break;
                rho = _tsenor_alps_next_rho(rho, (double)c[0], (double)c[1]);
                if (it + 1 < pc.iterations) PRUNE_TRY(alps_inverse(hn, n, rho, route, q, lambda, scaled, inv));
            }
        }
        PRUNE_TRY(projections_finite());

        /* CG on the support, from D: x = d, residual w0 <- (W0 H - x H) on the support,
           direction v, product b */
        if (pc.cg_iterations > 0) {
            double total0 = 0.0;
            PRUNE_TRY(cuda_step(cudaMemcpyAsync(w0, g, rn * sizeof(float), cudaMemcpyDeviceToDevice, stream), "cudaMemcpyAsync"));
            PRUNE_TRY(symmetric_product(d, hn, hn_hi, hn_lo, rows, n, -1.0f, 1.0f, w0, CUBLAS_COMPUTE_32F));
            PRUNE_TRY(cuda_step(cudaMemsetAsync(totals, 0, sizeof *totals, stream), "cudaMemsetAsync"));
            cg_start_kernel<<<(unsigned)rows, kThreads, 0, stream>>>(w0, msk, v, n, rs, totals);
            PRUNE_TRY(launched("cg start"));
            PRUNE_TRY(read_double(totals, &total0));
            for (int k = 0; k < pc.cg_iterations && total0 > 0.0; k++) {
                double total = 0.0;
                PRUNE_TRY(symmetric_product(v, hn, hn_hi, hn_lo, rows, n, 1.0f, 0.0f, b, fast));
                PRUNE_TRY(cuda_step(cudaMemsetAsync(totals, 0, sizeof *totals, stream), "cudaMemsetAsync"));
                cg_step_kernel<<<(unsigned)rows, kThreads, 0, stream>>>(v, b, d, w0, msk, n, rs, totals);
                PRUNE_TRY(launched("cg step"));
                PRUNE_TRY(read_double(totals, &total));
                cg_iterations = k + 1;
                if (total <= _TSENOR_ALPS_CG_TOL * total0) break;
            }
        }
        alps_unscale_kernel<<<grid_for(rn), kThreads, 0, stream>>>(d, msk, scale, rows, n, what);
        return launched("unscale");
    }

    tsenor_status read_double(const double *src, double *out)
    {
        PRUNE_TRY(cuda_step(cudaMemcpyAsync(out, src, sizeof *out, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync"));
        return cuda_step(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    }

    /* tr(D H D^T) / tr(W H W^T), D = W - W^, H as given */
    tsenor_status _tsenor_prune_error(const float *w, size_t ld, size_t rows, size_t cols, const float *gram,
                                      size_t gram_ld, double *error)
    {
        float *diff = nullptr, *tmp = nullptr;
        double *sums = nullptr, h[2] = {0.0, 0.0};
        PRUNE_TRY(arrays.get(&diff, rows * cols));
        PRUNE_TRY(arrays.get(&tmp, rows * cols));
        PRUNE_TRY(arrays.get(&sums, 2));
        PRUNE_TRY(cuda_step(cudaMemsetAsync(sums, 0, 2 * sizeof *sums, stream), "cudaMemsetAsync"));
        difference_kernel<<<grid_for(rows * cols), kThreads, 0, stream>>>(w, ld, what, rows, cols, diff);
        PRUNE_TRY(launched("difference"));
        PRUNE_TRY(gemm_rm(lib->blas, false, false, rows, cols, cols, 1.0f, diff, cols, gram, gram_ld, 0.0f, tmp, cols,
                          CUBLAS_COMPUTE_32F));
        quadratic_kernel<<<(unsigned)rows, kThreads, 0, stream>>>(tmp, diff, cols, cols, sums);
        PRUNE_TRY(launched("quadratic"));
        PRUNE_TRY(gemm_rm(lib->blas, false, false, rows, cols, cols, 1.0f, w, ld, gram, gram_ld, 0.0f, tmp, cols,
                          CUBLAS_COMPUTE_32F));
        quadratic_kernel<<<(unsigned)rows, kThreads, 0, stream>>>(tmp, w, ld, cols, sums + 1);
        PRUNE_TRY(launched("quadratic"));
        PRUNE_TRY(cuda_step(cudaMemcpyAsync(h, sums, sizeof h, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync"));
        PRUNE_TRY(cuda_step(cudaStreamSynchronize(stream), "cudaStreamSynchronize"));
        const double num = h[0] < 0.0 ? 0.0 : h[0];   /* rounding of a PSD form near zero */
        *error = h[1] > 0.0 ? num / h[1] : 0.0;
        return TSENOR_OK;
    }

    /* everything up to the results in what / msk and the error; nothing of the caller's
       is written */
    tsenor_status execute(const float *w, size_t rows, size_t cols, size_t ld, const float *gram, size_t gram_ld,
                          double *error)
    {
        PRUNE_TRY(bind());
        PRUNE_TRY(_tsenor_prune_validate(w, rows, cols, ld, gram, gram_ld));
        PRUNE_TRY(arrays.get(&what, rows * cols));
        PRUNE_TRY(arrays.get(&msk, rows * cols));
        {
            const size_t sr = rows, sc = pc.method == TSENOR_PRUNE_SPARSEGPT ? (size_t)pc.cfg.m : cols;
            PRUNE_TRY(cuda_step(mask_solver_create(&solver, pc.cfg, sr, sc, stream), "mask solver scratch"));
        }
        switch (pc.method) {
        case TSENOR_PRUNE_SPARSEGPT: PRUNE_TRY(_tsenor_prune_sparsegpt(w, rows, cols, ld, gram, gram_ld)); break;
        case TSENOR_PRUNE_ALPS: PRUNE_TRY(_tsenor_prune_alps(w, rows, cols, ld, gram, gram_ld)); break;
        default:
            if (gram) PRUNE_TRY(_tsenor_check_definite(gram, gram_ld, cols));
            PRUNE_TRY(_tsenor_prune_scored(w, rows, cols, ld, gram, gram_ld));
            break;
        }
        PRUNE_TRY(projections_finite());
        *error = 0.0;
        if (gram) PRUNE_TRY(_tsenor_prune_error(w, ld, rows, cols, gram, gram_ld, error));
        PRUNE_TRY(projection_clock.collect());
        return factor_clock.collect();
    }

    void fill_report(tsenor_prune_report *report, double error, double t0) const
    {
        if (!report) return;
        report->error = error;
        report->iterations = iterations;
        report->backend = backend;
        report->projection_seconds = projection_clock.seconds();
        report->projections = projection_clock.count();
        report->cg_iterations = cg_iterations;
        report->factor_seconds = factor_clock.seconds();
        report->factorizations = factor_clock.count();
        report->seconds = now_seconds() - t0;
    }
};

__global__ void add_diagonal_kernel(float *a, size_t n, float value)
{
    for (size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x; j < n; j += (size_t)gridDim.x * blockDim.x)
        a[j * n + j] += value;
}

tsenor_status Run::add_diagonal(float *a, size_t n, float value)
{
    add_diagonal_kernel<<<grid_for(n), kThreads, 0, stream>>>(a, n, value);
    return launched("diagonal");
}

bool gpu_method(const _tsenor_prune_config &pc)
{
    return pc.cfg.m <= (pc.cfg.method == TSENOR_METHOD_EXACT ? TSENOR_CUDA_MAX_M_EXACT : TSENOR_CUDA_MAX_M);
}

}  // namespace

extern "C" {

tsenor_status tsenor_cuda_prune_f32_device(const float *w, size_t rows, size_t cols, size_t ld, const float *gram,
                                           size_t gram_ld, float *out, size_t out_ld, uint8_t *mask, size_t mask_ld,
                                           const tsenor_prune_options *opt, tsenor_prune_report *report, void *stream_ptr)
{
    const double t0 = now_seconds();
    _tsenor_prune_config pc;
    PRUNE_TRY(_tsenor_prune_resolve(opt, &pc));
    PRUNE_TRY(_tsenor_prune_check_args(w, rows, cols, ld, gram, gram_ld, out, out_ld, mask, mask_ld, pc.method));
    if (!gpu_method(pc)) return TSENOR_ERR_INVALID_ARGUMENT;   /* EXACT, m > 32: host pointers only */
    if (!have_device()) return TSENOR_ERR_DEVICE;
    cudaStream_t stream = (cudaStream_t)stream_ptr;
    double error = 0.0;
    tsenor_status s;
    {
        Run run(pc, stream);
        s = run.execute(w, rows, cols, ld, gram, gram_ld, &error);
        /* nothing can fail from here but the copies: the caller's buffers are written */
        if (s == TSENOR_OK)
            s = cuda_step(cudaMemcpy2DAsync(out, out_ld * sizeof(float), run.what, cols * sizeof(float),
                                            cols * sizeof(float), rows, cudaMemcpyDeviceToDevice, stream), "copy out");
        if (s == TSENOR_OK && mask)
            s = cuda_step(cudaMemcpy2DAsync(mask, mask_ld, run.msk, cols, cols, rows, cudaMemcpyDeviceToDevice, stream),
                          "copy mask");
        if (s == TSENOR_OK) s = cuda_step(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
        if (s == TSENOR_OK) run.fill_report(report, error, t0);
    }
    cudaStreamSynchronize(stream);   /* the call's frees, queued by ~Run, are done */
    return s;
}

tsenor_status tsenor_cuda_prune_f32(const float *w, size_t rows, size_t cols, size_t ld, const float *gram,
                                    size_t gram_ld, float *out, size_t out_ld, uint8_t *mask, size_t mask_ld,
                                    const tsenor_prune_options *opt, tsenor_prune_report *report)
{
    const double t0 = now_seconds();
    _tsenor_prune_config pc;
    PRUNE_TRY(_tsenor_prune_resolve(opt, &pc));
    PRUNE_TRY(_tsenor_prune_check_args(w, rows, cols, ld, gram, gram_ld, out, out_ld, mask, mask_ld, pc.method));
    if (!gpu_method(pc))   /* EXACT, m > 32: the CPU's pruning */
        return tsenor_cpu_prune_f32(w, rows, cols, ld, gram, gram_ld, out, out_ld, mask, mask_ld, opt, report);
    if (!have_device()) return TSENOR_ERR_DEVICE;
    cudaStream_t stream = nullptr;
    PRUNE_TRY(cuda_step(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate"));
    double error = 0.0;
    tsenor_status s;
    {
        DeviceArrays inputs(stream);
        float *dw = nullptr, *dg = nullptr;
        s = inputs.get(&dw, rows * cols);
        if (s == TSENOR_OK && gram) s = inputs.get(&dg, cols * cols);
        if (s == TSENOR_OK)
            s = cuda_step(cudaMemcpy2DAsync(dw, cols * sizeof(float), w, ld * sizeof(float), cols * sizeof(float), rows,
                                            cudaMemcpyHostToDevice, stream), "copy to device");
        if (s == TSENOR_OK && gram)
            s = cuda_step(cudaMemcpy2DAsync(dg, cols * sizeof(float), gram, gram_ld * sizeof(float), cols * sizeof(float),
                                            cols, cudaMemcpyHostToDevice, stream), "copy to device");
        if (s == TSENOR_OK) {
            Run run(pc, stream);
            s = run.execute(dw, rows, cols, cols, dg, cols, &error);
            /* out may be w itself: w was read into dw, so the copy back cannot disturb it */
            if (s == TSENOR_OK)
                s = cuda_step(cudaMemcpy2DAsync(out, out_ld * sizeof(float), run.what, cols * sizeof(float),
                                                cols * sizeof(float), rows, cudaMemcpyDeviceToHost, stream), "copy to host");
            if (s == TSENOR_OK && mask)
                s = cuda_step(cudaMemcpy2DAsync(mask, mask_ld, run.msk, cols, cols, rows, cudaMemcpyDeviceToHost, stream),
                              "copy to host");
            if (s == TSENOR_OK) s = cuda_step(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
            if (s == TSENOR_OK) run.fill_report(report, error, t0);
        }
    }
    cudaStreamSynchronize(stream);
    cudaStreamDestroy(stream);
    return s;
}

tsenor_status tsenor_cuda_gram_f32_device(const float *x, size_t tokens, size_t cols, size_t ld, float *gram,
                                          size_t gram_ld, void *stream_ptr)
{
    if (!x || !gram || tokens == 0 || cols == 0 || ld < cols || gram_ld < cols) return TSENOR_ERR_INVALID_ARGUMENT;
    if (_tsenor_overflows(tokens, cols, ld) || _tsenor_overflows(cols, cols, gram_ld)) return TSENOR_ERR_INVALID_ARGUMENT;
    if (_tsenor_ranges_overlap(x, _tsenor_extent(tokens, cols, ld, 4), gram, _tsenor_extent(cols, cols, gram_ld, 4)))
        return TSENOR_ERR_INVALID_ARGUMENT;
    if (!have_device()) return TSENOR_ERR_DEVICE;
    cudaStream_t stream = (cudaStream_t)stream_ptr;
    Libraries *lib = nullptr;
    tsenor_status s = get_libraries(&lib);
    int *flag = nullptr, bad = 0;
    if (s != TSENOR_OK) return s;
    s = cuda_step(cudaMallocAsync((void **)&flag, sizeof(int), stream), "cudaMallocAsync");
    if (s != TSENOR_OK) return s;
    s = cuda_step(cudaMemsetAsync(flag, 0, sizeof(int), stream), "cudaMemsetAsync");
    if (s == TSENOR_OK) {
        nonfinite_kernel<<<grid_for(tokens * cols), kThreads, 0, stream>>>(x, tokens, cols, ld, flag);
        s = launched("nonfinite scan");
    }
    if (s == TSENOR_OK) s = cuda_step(cudaMemcpyAsync(&bad, flag, sizeof(int), cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync");
    if (s == TSENOR_OK) s = cuda_step(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    if (s == TSENOR_OK && bad) s = TSENOR_ERR_NONFINITE_INPUT;
    if (s == TSENOR_OK) {
        const cublasStatus_t b = cublasSetStream(lib->blas, stream);
        if (b != CUBLAS_STATUS_SUCCESS) s = blas_error("cublasSetStream", b);
    }
    if (s == TSENOR_OK) {
        /* row-major x is column-major x^T (cols x tokens): x^T x = A A^T, a rank-k update of
           the column-major upper triangle, i.e. the row-major lower one */
        const float one = 1.0f;
        const cublasStatus_t b = cublasSsyrk_64(lib->blas, CUBLAS_FILL_MODE_UPPER, CUBLAS_OP_N, (int64_t)cols,
                                                (int64_t)tokens, &one, x, (int64_t)ld, &one, gram, (int64_t)gram_ld);
        if (b != CUBLAS_STATUS_SUCCESS) s = blas_error("cublasSsyrk", b);
    }
    if (s == TSENOR_OK) {
        mirror_lower_rm_kernel<<<grid_for(cols * cols), kThreads, 0, stream>>>(gram, cols, gram_ld);
        s = launched("mirror");
    }
    cudaFreeAsync(flag, stream);
    if (s == TSENOR_OK) s = cuda_step(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    else cudaStreamSynchronize(stream);
    return s;
}

}  // extern "C"
