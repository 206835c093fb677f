/* tsenor.h - transposable N:M sparse masks for neural-network weights.
   v0.5.0, MIT licence (text at the end of this file).

   A transposable N:M mask keeps exactly N of every M weights along the rows AND the
   columns of every M x M block, so that both W*S (forward pass) and (W*S)^T (backward
   pass) are N:M sparse. This header finds the mask that keeps the most magnitude with
   TSENOR (Meng, Makni, Mazumder, arXiv 2505.23949): every block is an entropy-
   regularised capacitated transport problem solved by Dykstra's algorithm, then rounded
   (greedy, repair, local search) to a binary mask.

   USAGE

     In exactly ONE C or C++ file define TSENOR_IMPLEMENTATION before the include;
     everywhere else just #include "tsenor.h". Build with -fopenmp to use all cores
     (optional: without OpenMP the library runs serially and gives the same masks).
     A complete program (cc -std=c99 -O2 -fopenmp prog.c -lm):

     ---- example.c ----
        #define TSENOR_IMPLEMENTATION
        #include "tsenor.h"
        #include <stdio.h>
        #include <stdlib.h>

        int main(void)
        {
            enum { ROWS = 64, COLS = 100 };   // any sizes >= 1, multiples of m or not
            static float w[ROWS * COLS];      // row-major; ld = COLS (in elements)
            static uint8_t mask[ROWS * COLS]; // receives 1 = keep, 0 = prune
            tsenor_options opt = {0};         // zeros mean "good defaults"
            tsenor_report rep;                // or pass NULL
            tsenor_status s;
            int i;
            for (i = 0; i < ROWS * COLS; i++) w[i] = (float)rand() / RAND_MAX - 0.5f;
            opt.n = 8; opt.m = 16;            // keep 8 of every 16, rows and columns
            s = tsenor_mask_f32(w, ROWS, COLS, COLS, mask, COLS, &opt, &rep);
            if (s != TSENOR_OK) {
                fprintf(stderr, "tsenor: %s\n", tsenor_status_string(s));
                return 1;
            }
            printf("kept %.1f%% of sum |w| (%s)\n", 100.0 * rep.kept / rep.total, rep.backend);
            return tsenor_check(mask, ROWS, COLS, COLS, 8, 16, 1) != TSENOR_OK;
        }
     ---- end ----

   THE CALL
     tsenor_mask_f32(w, rows, cols, ld, mask, mask_ld, &opt, &report)
       w        const float *, rows x cols, row-major; ld = leading dimension in
                ELEMENTS (not bytes), ld >= cols. Read only.
       mask     uint8_t *, rows x cols with leading dimension mask_ld (elements = bytes);
                receives 0/1. Must not overlap w.
       opt      n and m with 1 <= n < m <= TSENOR_MAX_M (64); every other field 0 =
                default. rows and cols need not be multiples of m: a partial block at
                the right or bottom edge is solved as if zero-padded, so its rows and
                columns keep AT MOST n.
       report   may be NULL; on TSENOR_OK it holds kept = sum of |w| kept, total = sum of
                |w| (so kept/total is the magnitude kept), blocks, seconds, the backend
                and thread count that ran.
     tsenor_mask_f16 / tsenor_mask_bf16 take the raw uint16_t bits of IEEE half /
     bfloat16, and tsenor_mask(w, dtype, ...) any of the three. A float's bf16 bits,
     rounded to nearest even (finite f):
         uint32_t b; memcpy(&b, &f, 4); bits = (uint16_t)((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
     tsenor_check / tsenor_check_mask verify a mask (the latter says where it fails).

     Every call validates its input and returns a tsenor_status (tsenor_status_string
     for text); on any status other than TSENOR_OK the caller's buffers are left exactly
     as they were. The same input and options give the same mask whatever the thread
     count. No global state: concurrent calls from different threads are safe.

   PRUNING WITH CALIBRATION DATA
     tsenor_gram_f32 accumulates H = X^T X of calibration inputs X (tokens x cols) batch
     by batch; tsenor_prune_f32 then prunes the layer y = W x (W rows x cols, row-major
     like nn.Linear.weight): W^ keeps a valid N:M mask (tsenor_prune_options.mask) and
     minimises tr((W - W^) H (W - W^)^T). MAGNITUDE and WANDA (|W_ij| sqrt(H_jj)) keep
     the weights; SPARSEGPT (OBS column sweep, a mask per M-column slab) and ALPS (the
     default: ADMM with the mask solver as projection, then conjugate gradients) update
     them. The dense linear algebra (SGEMM, Cholesky, triangular solves) is in this
     header; TSENOR_USE_CBLAS uses a CBLAS/LAPACKE you link instead.

   METHODS (tsenor_options.method)
     TSENOR_METHOD_TSENOR   (default) Dykstra on the entropic problem + rounding + local
                            search; ~0.1% from the optimum with default options. For
                            m = 4 it is EXACT's n:4 search (options other than threads
                            then change nothing).
     TSENOR_METHOD_EXACT    the optimal transposable mask of every block (min-cost flow:
                            feasible start, then negative-cycle cancelling to optimality;
                            for m = 4 every pattern of the 4x4 block is searched, meeting
                            in the middle, with a fixed rule for ties).
     TSENOR_METHOD_GREEDY   greedy by magnitude under row/column budgets, then repair so
                            that every row and column keeps exactly N (ASP-style 2-D).
     TSENOR_METHOD_ROWWISE  ordinary N:M (top N of every M consecutive entries of a row);
                            not transposable, the baseline.

   CUSTOMISATION (define before the #include that carries TSENOR_IMPLEMENTATION)
     TSENOR_MALLOC(size) / TSENOR_FREE(ptr)   allocator, both or neither (default
                                              malloc/free)
     TSENOR_ASSERT(x)                         internal invariants (default assert)
     TSENOR_STATIC                            make every function static to this file
                                              (not with TSENOR_CUDA)
     TSENOR_DEF                               linkage of the public functions
     TSENOR_NO_SIMD                           plain C kernels (no vector extensions)
     TSENOR_NO_RUNTIME_DISPATCH               no cpuid dispatch on x86
     TSENOR_USE_CBLAS                         pruning's linear algebra from a CBLAS +
                                              LAPACKE you link (e.g. -llapacke -lopenblas)
     TSENOR_CUDA                              tsenor_mask_* run on the GPU: link what
                                              `make cuda` builds (see tsenor_cuda.h);
                                              tsenor_cpu_mask_* and tsenor_cpu_prune_f32
                                              stay on the CPU
*/
#ifndef TSENOR_H
#define TSENOR_H

#define TSENOR_VERSION_MAJOR 0
#define TSENOR_VERSION_MINOR 5
#define TSENOR_VERSION_PATCH 0

#include <stddef.h>
#include <stdint.h>

#ifndef TSENOR_DEF
#ifdef TSENOR_STATIC
#if defined(__GNUC__) || defined(__clang__)
#define TSENOR_DEF static __attribute__((unused))   /* a static build may call only some */
#else
#define TSENOR_DEF static
#endif
#else
#define TSENOR_DEF extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ==================================================================================
   Public API. Names and meanings here are stable: fields and functions are only ever
   added (fields at the end of a struct).
   ================================================================================== */

#define TSENOR_MAX_M 64

typedef enum tsenor_status {
    TSENOR_OK = 0,
    TSENOR_ERR_INVALID_ARGUMENT,  /* NULL pointer, bad n/m, ld < cols, size overflow, ...   */
    TSENOR_ERR_NONFINITE_INPUT,   /* NaN or +-Inf in the input                              */
    TSENOR_ERR_OUT_OF_MEMORY,
    TSENOR_ERR_DEVICE,            /* GPU backend: no device, CUDA error                     */
    TSENOR_ERR_INVALID_MASK       /* tsenor_check: the mask breaks the pattern              */
} tsenor_status;

typedef enum tsenor_method {
    TSENOR_METHOD_DEFAULT = 0,    /* = TSENOR_METHOD_TSENOR                                 */
    TSENOR_METHOD_TSENOR,         /* entropy-regularised OT (Dykstra) + rounding + local search */
    TSENOR_METHOD_EXACT,          /* the optimal transposable mask of every block           */
    TSENOR_METHOD_GREEDY,         /* greedy by magnitude under row/column budgets (ASP 2-D) */
    TSENOR_METHOD_ROWWISE         /* standard N:M, not transposable: top N of every M
                                     consecutive entries of a row                           */
} tsenor_method;

typedef struct tsenor_options {   /* zero-initialised + n, m set = good defaults */
    int n, m;                     /* keep n of every m: 1 <= n < m <= TSENOR_MAX_M          */
    tsenor_method method;         /* 0 = default                                            */
    int iterations;               /* Dykstra iterations, 0 = default                        */
    float tau;                    /* entropy regularisation, relative to the block's max |w|;
                                     0 = default                                            */
    int local_search_steps;       /* 0 = default, < 0 = none                                */
    int threads;                  /* 0 = all available                                      */
    float tau_start;              /* first tau of the epsilon-scaling schedule, relative to
                                     the block max; tau_start <= tau disables annealing     */
} tsenor_options;

typedef struct tsenor_report {    /* filled on TSENOR_OK when the pointer is not NULL */
    double kept;                  /* sum |w| kept                                           */
    double total;                 /* sum |w|                                                */
    size_t blocks;                /* M x M blocks solved                                    */
    double seconds;               /* wall time of the call                                  */
    const char *backend;          /* what ran: "cpu-avx512", "cpu-avx2", "cpu-generic", ... */
    int threads;                  /* CPU threads used (0 on the GPU)                        */
    double kernel_seconds;        /* GPU time of the solving kernels (0 on the CPU)         */
} tsenor_report;

/* The masks: w is row-major with leading dimension ld (elements), mask likewise with
   mask_ld. report may be NULL. */
TSENOR_DEF tsenor_status tsenor_mask_f32 (const float    *w, size_t rows, size_t cols, size_t ld,
                                          uint8_t *mask, size_t mask_ld,
                                          const tsenor_options *opt, tsenor_report *report);
TSENOR_DEF tsenor_status tsenor_mask_f16 (const uint16_t *w, size_t rows, size_t cols, size_t ld,
                                          uint8_t *mask, size_t mask_ld,
                                          const tsenor_options *opt, tsenor_report *report);
TSENOR_DEF tsenor_status tsenor_mask_bf16(const uint16_t *w, size_t rows, size_t cols, size_t ld,
                                          uint8_t *mask, size_t mask_ld,
                                          const tsenor_options *opt, tsenor_report *report);

/* TSENOR_OK when mask (0/1 bytes) satisfies N:M: transposable != 0 checks rows and
   columns of every block, transposable == 0 checks the row groups only. Edge blocks
   (partial at the right or bottom) may keep fewer than n per row/column, never more. */
TSENOR_DEF tsenor_status tsenor_check(const uint8_t *mask, size_t rows, size_t cols, size_t mask_ld,
                                      int n, int m, int transposable);

TSENOR_DEF const char *tsenor_status_string(tsenor_status status);   /* never NULL */

/* ---------------------------------------------------------------------------------
   Generic entry, names, and a check that says where a mask fails
   --------------------------------------------------------------------------------- */

typedef enum tsenor_dtype {
    TSENOR_DTYPE_F32 = 0,         /* float                                                  */
    TSENOR_DTYPE_F16,             /* IEEE binary16 bits in a uint16_t                       */
    TSENOR_DTYPE_BF16             /* bfloat16 bits (the high half of a float) in a uint16_t */
} tsenor_dtype;

/* = tsenor_mask_f32/f16/bf16 by dtype; an unknown dtype is TSENOR_ERR_INVALID_ARGUMENT. */
TSENOR_DEF tsenor_status tsenor_mask(const void *w, tsenor_dtype dtype, size_t rows, size_t cols, size_t ld,
                                     uint8_t *mask, size_t mask_ld,
                                     const tsenor_options *opt, tsenor_report *report);

/* "tsenor", "exact", "greedy", "rowwise" ("tsenor" for DEFAULT); "unknown" otherwise.
   Never NULL. */
TSENOR_DEF const char *tsenor_method_string(tsenor_method method);
/* "f32", "f16", "bf16"; "unknown" otherwise. Never NULL. */
TSENOR_DEF const char *tsenor_dtype_string(tsenor_dtype dtype);

/* flags of tsenor_check_mask */
#define TSENOR_CHECK_TRANSPOSABLE 1u  /* rows and columns of every block (else row groups)  */
#define TSENOR_CHECK_AT_MOST      2u  /* every row/column keeps at most n, full blocks too
                                         (a mask at least as sparse as N:M), instead of
                                         exactly n in full blocks                          */

typedef struct tsenor_check_report {  /* filled on TSENOR_OK and TSENOR_ERR_INVALID_MASK */
    size_t blocks;                /* M x M blocks checked                                   */
    size_t bad_blocks;            /* blocks that break the rule                             */
    /* the first failure in row-major block order (zeros when there is none): */
    size_t row, col;              /* the first element of the failing row or column of the
                                     block, or the byte that is neither 0 nor 1            */
    int column;                   /* 1 = a block column fails, 0 = a block row              */
    int count;                    /* entries that line keeps (or the bad byte's value)      */
    int bad_value;                /* 1 = the failure is a byte other than 0 and 1           */
} tsenor_check_report;

/* tsenor_check with flags and a report of where the mask fails. TSENOR_OK when it
   passes, TSENOR_ERR_INVALID_MASK when not, TSENOR_ERR_INVALID_ARGUMENT for bad
   arguments (report untouched). With report NULL it stops at the first failure. */
TSENOR_DEF tsenor_status tsenor_check_mask(const uint8_t *mask, size_t rows, size_t cols, size_t mask_ld,
                                           int n, int m, unsigned flags, tsenor_check_report *report);

/* ---------------------------------------------------------------------------------
   Pruning with calibration data: one linear layer y = W x (W rows x cols, row-major as
   nn.Linear.weight), calibration inputs X (tokens x cols) seen through H = X^T X.
   Finds W^ with a valid N:M mask minimising tr((W - W^) H (W - W^)^T).
   --------------------------------------------------------------------------------- */

typedef enum tsenor_prune_method {
    TSENOR_PRUNE_DEFAULT = 0,     /* = TSENOR_PRUNE_ALPS                                       */
    TSENOR_PRUNE_MAGNITUDE,       /* mask of |W|; kept weights unchanged; gram may be NULL     */
    TSENOR_PRUNE_WANDA,           /* mask of |W_ij| * sqrt(H_jj); kept weights unchanged       */
    TSENOR_PRUNE_SPARSEGPT,       /* OBS column sweep; mask chosen per M-column slab; updated  */
    TSENOR_PRUNE_ALPS             /* ADMM, the mask solver as projection, CG on the support    */
} tsenor_prune_method;

typedef struct tsenor_prune_options { /* zero-initialised + mask.n, mask.m set = good defaults */
    tsenor_options mask;          /* pattern and mask solver (method, threads, ...)           */
    tsenor_prune_method method;   /* 0 = default                                              */
    float damping;                /* added to H's diagonal, relative to its mean; 0 = default (1%) */
    int iterations;               /* ADMM iterations at most (ALPS); 0 = default              */
    /* additions (zero = default) */
    int cg_iterations;            /* conjugate-gradient iterations at most after ADMM (ALPS);
                                     0 = default (10), < 0 = none                              */
    float rho;                    /* first ADMM penalty, relative to the normalised H's unit
                                     diagonal (ALPS); 0 = default (0.03)                       */
} tsenor_prune_options;

typedef struct tsenor_prune_report {  /* filled on TSENOR_OK when the pointer is not NULL */
    double error;                 /* tr(D H D^T) / tr(W H W^T), D = W - W^, H as given; 0 when
                                     gram is NULL or tr(W H W^T) = 0                          */
    double seconds;               /* wall time of the call                                    */
    int iterations;               /* ADMM iterations run (ALPS), else 0                       */
    const char *backend;          /* what ran                                                 */
    /* additions */
    double projection_seconds;    /* time in the mask solver (all methods)                    */
    int projections;              /* mask-solver calls                                        */
    int cg_iterations;            /* conjugate-gradient iterations run (ALPS), else 0         */
    double factor_seconds;        /* time in Cholesky factorisations                          */
    int factorizations;           /* Cholesky factorisations (ALPS: one per penalty value)    */
} tsenor_prune_report;

/* out (rows x cols, out_ld) receives W^: zero where the mask is 0. out may be w itself when
   out_ld == ld (in place). mask (0/1 bytes) may be NULL. gram (cols x cols, gram_ld) is H,
   both triangles; it is NULL only with TSENOR_PRUNE_MAGNITUDE. On any status other than
   TSENOR_OK neither out nor mask is written. Work memory beyond the inputs: about
   3 cols^2 + 6 rows*cols floats (ALPS), 2 cols^2 + 3 rows*cols (SPARSEGPT). */
TSENOR_DEF tsenor_status tsenor_prune_f32(const float *w, size_t rows, size_t cols, size_t ld,
                                          const float *gram, size_t gram_ld,
                                          float *out, size_t out_ld, uint8_t *mask, size_t mask_ld,
                                          const tsenor_prune_options *opt, tsenor_prune_report *report);

/* gram += x^T x for x = tokens x cols (leading dimension ld): accumulate batch by batch.
   gram is cols x cols with leading dimension gram_ld, both triangles written (exactly
   symmetric). threads: 0 = all available. */
TSENOR_DEF tsenor_status tsenor_gram_f32(const float *x, size_t tokens, size_t cols, size_t ld,
                                         float *gram, size_t gram_ld, int threads);

/* "magnitude", "wanda", "sparsegpt", "alps" ("alps" for DEFAULT); "unknown" otherwise. */
TSENOR_DEF const char *tsenor_prune_method_string(tsenor_prune_method method);

/* ---------------------------------------------------------------------------------
   Version, the CPU solver in any build, the resolved defaults
   --------------------------------------------------------------------------------- */

/* "TSENOR_VERSION_MAJOR.MINOR.PATCH" of the compiled implementation. */
TSENOR_DEF const char *tsenor_version(void);

/* The CPU solver, whatever the build: the same as tsenor_mask_* without TSENOR_CUDA. */
TSENOR_DEF tsenor_status tsenor_cpu_mask_f32 (const float    *w, size_t rows, size_t cols, size_t ld,
                                              uint8_t *mask, size_t mask_ld,
                                              const tsenor_options *opt, tsenor_report *report);
TSENOR_DEF tsenor_status tsenor_cpu_mask_f16 (const uint16_t *w, size_t rows, size_t cols, size_t ld,
                                              uint8_t *mask, size_t mask_ld,
                                              const tsenor_options *opt, tsenor_report *report);
TSENOR_DEF tsenor_status tsenor_cpu_mask_bf16(const uint16_t *w, size_t rows, size_t cols, size_t ld,
                                              uint8_t *mask, size_t mask_ld,
                                              const tsenor_options *opt, tsenor_report *report);
/* The CPU's pruning, whatever the build: tsenor_prune_f32 without TSENOR_CUDA. */
TSENOR_DEF tsenor_status tsenor_cpu_prune_f32(const float *w, size_t rows, size_t cols, size_t ld,
                                              const float *gram, size_t gram_ld,
                                              float *out, size_t out_ld, uint8_t *mask, size_t mask_ld,
                                              const tsenor_prune_options *opt, tsenor_prune_report *report);

/* The default options the library would use for this n:m (method TSENOR), with every
   zero field of *opt filled in; lets callers print or tune from the defaults. Returns
   TSENOR_ERR_INVALID_ARGUMENT for a bad n/m or out-of-range fields. */
TSENOR_DEF tsenor_status tsenor_resolve_options(const tsenor_options *opt, tsenor_options *resolved);

#ifdef __cplusplus
}
#endif
#endif /* TSENOR_H */

/* ==================================================================================
   Definitions shared by the CPU implementation and the CUDA backend. Every rule both
   backends apply (limits, the epsilon-scaling schedule, the greedy order, f16/bf16
   decoding, option defaults, argument checks) is written here once; cuda/tsenor_cuda.cu
   compiles this part too (it defines _TSENOR_COMMON), where the functions are
   __host__ __device__.
   ================================================================================== */
#if (defined(TSENOR_IMPLEMENTATION) || defined(_TSENOR_COMMON)) && !defined(_TSENOR_COMMON_INCLUDED)
#define _TSENOR_COMMON_INCLUDED

#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__CUDACC__)
#define _TSENOR_SHARED static __host__ __device__ __forceinline__
#else
#define _TSENOR_SHARED static inline
#endif

/* Defaults: every zero option becomes a measured default here, and only here. How they
   were chosen: bench/tune.c sweeps tau x iterations x local-search steps on Gaussian,
   Student-t(3) and outlier-column matrices against the exact optimum (README, "How the
   defaults were chosen"). */
#define _TSENOR_DEFAULT_TAU          0.01f
#define _TSENOR_DEFAULT_TAU_START    0.16f
#define _TSENOR_DEFAULT_ITERATIONS   100
#define _TSENOR_DEFAULT_LS_PER_M     4       /* local-search swaps per block: 4*m      */

/* Limits of the block solver. |w| is normalised to [0,1] per block. */
#define _TSENOR_EXP_MIN      (-87.0f)  /* K = e^clamp(x): both ends stay normal floats  */
#define _TSENOR_EXP_MAX      69.0f
#define _TSENOR_SUM_FLOOR    1e-30f    /* row and column sums before a division         */
#define _TSENOR_SCALE_LIMIT  1e12f     /* |ln U| beyond ~27.6: fold into the potentials */
#define _TSENOR_MAX_STAGES   12        /* of the epsilon-scaling schedule               */
#define _TSENOR_BISECTION_STEPS 10     /* threshold preselection: theta to 2^-10        */
#define _TSENOR_LS_MIN_GAIN  1e-6f     /* local search ignores gains of rounding noise  */
/* ROWWISE report sums are taken in float scaled by 2^-8, so that 64 values near FLT_MAX
   cannot overflow (a power of two: exact for all but subnormals), then scaled back in
   double. */
#define _TSENOR_ROWWISE_SUM_SCALE 0.00390625f

/* The options with every default filled in and every field checked. */
typedef struct _tsenor_config {
    int n, m;
    tsenor_method method;         /* never DEFAULT after resolution                   */
    int iterations;
    float tau, tau_start;
    int local_search_steps;       /* 0 = none                                         */
    int threads;                  /* CPU threads; 1 without OpenMP                    */
} _tsenor_config;

static inline tsenor_status _tsenor_resolve(const tsenor_options *opt, _tsenor_config *cfg)
{
    if (!opt) return TSENOR_ERR_INVALID_ARGUMENT;
    if (opt->m < 2 || opt->m > TSENOR_MAX_M || opt->n < 1 || opt->n >= opt->m)
        return TSENOR_ERR_INVALID_ARGUMENT;
    if ((int)opt->method < (int)TSENOR_METHOD_DEFAULT || (int)opt->method > (int)TSENOR_METHOD_ROWWISE)
        return TSENOR_ERR_INVALID_ARGUMENT;
    if (opt->iterations < 0 || opt->threads < 0) return TSENOR_ERR_INVALID_ARGUMENT;
    if (!(opt->tau >= 0.0f) || opt->tau > 1e6f) return TSENOR_ERR_INVALID_ARGUMENT; /* NaN too */
    if (opt->tau != 0.0f && opt->tau < 1e-4f) return TSENOR_ERR_INVALID_ARGUMENT;
    if (!(opt->tau_start >= 0.0f) || opt->tau_start > 1e6f) return TSENOR_ERR_INVALID_ARGUMENT;

    cfg->n = opt->n;
    cfg->m = opt->m;
    cfg->method = opt->method == TSENOR_METHOD_DEFAULT ? TSENOR_METHOD_TSENOR : opt->method;
    cfg->iterations = opt->iterations ? opt->iterations : _TSENOR_DEFAULT_ITERATIONS;
    cfg->tau = opt->tau != 0.0f ? opt->tau : _TSENOR_DEFAULT_TAU;
    cfg->tau_start = opt->tau_start != 0.0f ? opt->tau_start : _TSENOR_DEFAULT_TAU_START;
    if (cfg->tau_start < cfg->tau) cfg->tau_start = cfg->tau;
    cfg->local_search_steps = opt->local_search_steps < 0 ? 0
                            : opt->local_search_steps ? opt->local_search_steps
                            : _TSENOR_DEFAULT_LS_PER_M * opt->m;
    cfg->threads = opt->threads;
#ifdef _OPENMP
    if (cfg->threads == 0) cfg->threads = omp_get_max_threads();
    if (cfg->threads < 1) cfg->threads = 1;
#else
    cfg->threads = 1;
#endif
    return TSENOR_OK;
}

/* Epsilon-scaling: tau doubles per stage back from the final tau until it reaches
   tau_start; the last stage runs at tau with the iterations the others left. */
_TSENOR_SHARED int _tsenor_stage_count(float tau, float tau_start)
{
    int stages = 1;
    while (stages < _TSENOR_MAX_STAGES && tau_start > tau * (float)(1 << (stages - 1)) * 1.5f) stages++;
    return stages;
}

_TSENOR_SHARED float _tsenor_stage_tau(float tau, int stage, int stages)
{
    return stage == stages - 1 ? tau : tau * (float)(1 << (stages - 1 - stage));
}

_TSENOR_SHARED int _tsenor_stage_iterations(int iterations, int stage, int stages, int done)
{
    return stage == stages - 1 ? iterations - done : iterations / (2 * stages);
}

_TSENOR_SHARED uint32_t _tsenor_float_bits(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits;
}

_TSENOR_SHARED float _tsenor_bits_float(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* The greedy order of entry (i,j): 32 bits of the plan (order-preserving for values
   >= 0), the top 20 bits of |w|, 12 bits ~(i*64 + j): ties go to the lower index.
   Never 0 for m <= 64, so 0 can mark padding. */
_TSENOR_SHARED uint64_t _tsenor_greedy_key(float plan, float a, int i, int j)
{
    return ((uint64_t)_tsenor_float_bits(plan) << 32) | ((uint64_t)(_tsenor_float_bits(a) >> 11) << 12) |
           (uint64_t)(4095 - (i << 6 | j));
}

_TSENOR_SHARED int _tsenor_key_row(uint64_t key) { return (4095 - (int)(key & 4095u)) >> 6; }
_TSENOR_SHARED int _tsenor_key_col(uint64_t key) { return (4095 - (int)(key & 4095u)) & 63; }

/* |h| as float, exact (subnormals included); Inf and NaN stay Inf and NaN. */
_TSENOR_SHARED float _tsenor_abs_f16(uint16_t h)
{
    const uint32_t e = (h >> 10) & 0x1fu, f = h & 0x3ffu;
    if (e == 0) return (float)f * 5.9604644775390625e-8f;   /* subnormal: f * 2^-24 */
    /* rebias 15 -> 127; exponent 31 (Inf/NaN) -> 255, without a branch */
    return _tsenor_bits_float(((e + 112u + ((e + 1u) >> 5) * 112u) << 23) | (f << 13));
}

_TSENOR_SHARED float _tsenor_abs_bf16(uint16_t h) { return _tsenor_bits_float((uint32_t)(h & 0x7fffu) << 16); }

_TSENOR_SHARED size_t _tsenor_dtype_size(tsenor_dtype dt) { return dt == TSENOR_DTYPE_F32 ? 4 : 2; }

/* 1 when the last element's index (rows-1)*ld + cols - 1 of a rows x cols matrix with
   leading dimension ld does not fit size_t with room for 4-byte elements. */
static inline int _tsenor_overflows(size_t rows, size_t cols, size_t ld)
{
    if (rows - 1 > 0 && ld > (SIZE_MAX - cols) / (rows - 1)) return 1;
    return (rows - 1) * ld + cols > SIZE_MAX / 4;
}

/* Bytes from a matrix's first element to one past its last (no overflow: callers check
   _tsenor_overflows first). */
static inline size_t _tsenor_extent(size_t rows, size_t cols, size_t ld, size_t esize)
{
    return ((rows - 1) * ld + cols) * esize;
}

/* 1 when the byte ranges [a, a+abytes) and [b, b+bbytes) meet. */
static inline int _tsenor_ranges_overlap(const void *a, size_t abytes, const void *b, size_t bbytes)
{
    const uintptr_t a0 = (uintptr_t)a, b0 = (uintptr_t)b;
    return a0 < b0 + bbytes && b0 < a0 + abytes;
}

/* The checks every mask entry point makes, CPU and GPU alike, before any work:
   pointers, shapes, sizes, and a mask that would overwrite the input while it is read. */
static inline tsenor_status _tsenor_check_mask_args(const void *w, tsenor_dtype dt, size_t rows, size_t cols,
                                                    size_t ld, const uint8_t *mask, size_t mask_ld)
{
    if (!w || !mask || rows == 0 || cols == 0 || ld < cols || mask_ld < cols) return TSENOR_ERR_INVALID_ARGUMENT;
    if ((int)dt < (int)TSENOR_DTYPE_F32 || (int)dt > (int)TSENOR_DTYPE_BF16) return TSENOR_ERR_INVALID_ARGUMENT;
    if (_tsenor_overflows(rows, cols, ld) || _tsenor_overflows(rows, cols, mask_ld)) return TSENOR_ERR_INVALID_ARGUMENT;
    if (_tsenor_ranges_overlap(w, _tsenor_extent(rows, cols, ld, _tsenor_dtype_size(dt)), mask,
                               _tsenor_extent(rows, cols, mask_ld, 1)))
        return TSENOR_ERR_INVALID_ARGUMENT;
    return TSENOR_OK;
}

/* Calibration-aware pruning: defaults, option resolution and argument checks, the same
   on the CPU and the GPU. */
#define _TSENOR_PRUNE_DEFAULT_DAMPING    0.01f
#define _TSENOR_PRUNE_DEFAULT_ITERATIONS 300
#define _TSENOR_PRUNE_DEFAULT_CG         10
#define _TSENOR_PRUNE_DEFAULT_RHO        0.03f
#define _TSENOR_PRUNE_SYMMETRY_TOL       1e-4    /* |H_ij - H_ji| <= tol sqrt(H_ii H_jj) */
#define _TSENOR_ALPS_CHECK_EVERY 3               /* ADMM iterations between support checks */
#define _TSENOR_ALPS_GAP         1e-3            /* |B - D| / |D| at which ADMM may stop   */
#define _TSENOR_ALPS_CG_TOL      1e-8            /* CG stops once |r|^2 fell by this factor */

typedef struct _tsenor_prune_config {
    _tsenor_config cfg;               /* the mask solver's resolved options               */
    tsenor_options mask;              /* what the projections pass to the mask solver     */
    tsenor_prune_method method;       /* never DEFAULT after resolution                   */
    double damping;
    int iterations, cg_iterations;
    double rho;
} _tsenor_prune_config;

/* ALPS's penalty schedule, checked every _TSENOR_ALPS_CHECK_EVERY iterations: ADMM has
   settled when the support did not move since the last check and |B - D| <= GAP |D|
   (sums of squares over the layer); a moving support needs
   a stronger pull of B towards D, the more so the more it moved (changed of kept). */
/* The symmetry and Cauchy-Schwarz rules a gram's pair (i, j) must pass: |H_ij - H_ji|
   <= tol sqrt(H_ii H_jj) and |H_ij| <= sqrt(H_ii H_jj) (0.1% slack). A diagonal that is 0
   in f32 can stand for a true sum below the smallest subnormal while its off-diagonals
   did not underflow (an input of about 1e-32 against normal ones): it counts as 1e-40. */
_TSENOR_SHARED int _tsenor_gram_pair_ok(double hii, double hjj, double hij, double hji)
{
    const double scale = sqrt((hii > 0.0 ? hii : 1e-40) * (hjj > 0.0 ? hjj : 1e-40));
    return !(fabs(hij - hji) > _TSENOR_PRUNE_SYMMETRY_TOL * scale || fabs(hij) > scale * (1.0 + 1e-3) + 1e-30);
}

_TSENOR_SHARED int _tsenor_alps_settled(double changed, double gap, double size)
{
    return changed == 0.0 && gap <= _TSENOR_ALPS_GAP * _TSENOR_ALPS_GAP * size;
}

_TSENOR_SHARED double _tsenor_alps_next_rho(double rho, double changed, double kept)
{
    const double moved = kept > 0.0 ? changed / kept : 1.0;
    return rho * (moved > 0.1 ? 1.3 : moved > 0.005 ? 1.2 : 1.1);
}

static inline tsenor_status _tsenor_prune_resolve(const tsenor_prune_options *opt, _tsenor_prune_config *pc)
{
    tsenor_status s;
    if (!opt) return TSENOR_ERR_INVALID_ARGUMENT;
    s = _tsenor_resolve(&opt->mask, &pc->cfg);
    if (s != TSENOR_OK) return s;
    if ((int)opt->method < (int)TSENOR_PRUNE_DEFAULT || (int)opt->method > (int)TSENOR_PRUNE_ALPS)
        return TSENOR_ERR_INVALID_ARGUMENT;
    if (!(opt->damping >= 0.0f) || opt->damping > 1e6f) return TSENOR_ERR_INVALID_ARGUMENT;   /* NaN too */
    if (!(opt->rho >= 0.0f) || opt->rho > 1e6f) return TSENOR_ERR_INVALID_ARGUMENT;
    if (opt->iterations < 0) return TSENOR_ERR_INVALID_ARGUMENT;
    pc->mask = opt->mask;
    pc->mask.threads = pc->cfg.threads;
    pc->method = opt->method == TSENOR_PRUNE_DEFAULT ? TSENOR_PRUNE_ALPS : opt->method;
    pc->damping = opt->damping != 0.0f ? (double)opt->damping : (double)_TSENOR_PRUNE_DEFAULT_DAMPING;
    pc->iterations = opt->iterations ? opt->iterations : _TSENOR_PRUNE_DEFAULT_ITERATIONS;
    pc->cg_iterations = opt->cg_iterations < 0 ? 0 : opt->cg_iterations ? opt->cg_iterations : _TSENOR_PRUNE_DEFAULT_CG;
    pc->rho = opt->rho != 0.0f ? (double)opt->rho : (double)_TSENOR_PRUNE_DEFAULT_RHO;
    return TSENOR_OK;
}

/* pointers, shapes, sizes and overlaps (addresses of one space, host or device): out may
   be w itself with out_ld == ld, nothing else may meet */
static inline tsenor_status _tsenor_prune_check_args(const float *w, size_t rows, size_t cols, size_t ld,
                                                     const float *gram, size_t gram_ld, const float *out,
                                                     size_t out_ld, const uint8_t *mask, size_t mask_ld,
                                                     tsenor_prune_method method)
{
    size_t wb, ob, mb, gb;
    if (!w || !out || rows == 0 || cols == 0 || ld < cols || out_ld < cols) return TSENOR_ERR_INVALID_ARGUMENT;
    if (mask && mask_ld < cols) return TSENOR_ERR_INVALID_ARGUMENT;
    if (!gram && method != TSENOR_PRUNE_MAGNITUDE) return TSENOR_ERR_INVALID_ARGUMENT;
    if (gram && gram_ld < cols) return TSENOR_ERR_INVALID_ARGUMENT;
    /* the work arrays: a few rows x cols and cols x cols floats */
    if (rows > SIZE_MAX / 64 / cols || cols > SIZE_MAX / 64 / cols) return TSENOR_ERR_INVALID_ARGUMENT;
    if (_tsenor_overflows(rows, cols, ld) || _tsenor_overflows(rows, cols, out_ld) ||
        (mask && _tsenor_overflows(rows, cols, mask_ld)) || (gram && _tsenor_overflows(cols, cols, gram_ld)))
        return TSENOR_ERR_INVALID_ARGUMENT;
    wb = _tsenor_extent(rows, cols, ld, 4);
    ob = _tsenor_extent(rows, cols, out_ld, 4);
    mb = mask ? _tsenor_extent(rows, cols, mask_ld, 1) : 0;
    gb = gram ? _tsenor_extent(cols, cols, gram_ld, 4) : 0;
    if (gram && _tsenor_ranges_overlap(out, ob, gram, gb)) return TSENOR_ERR_INVALID_ARGUMENT;
    if (gram && mask && _tsenor_ranges_overlap(mask, mb, gram, gb)) return TSENOR_ERR_INVALID_ARGUMENT;
    if (mask && (_tsenor_ranges_overlap(mask, mb, out, ob) || _tsenor_ranges_overlap(mask, mb, w, wb)))
        return TSENOR_ERR_INVALID_ARGUMENT;
    if (_tsenor_ranges_overlap(out, ob, w, wb) && !(out == w && out_ld == ld)) return TSENOR_ERR_INVALID_ARGUMENT;
    return TSENOR_OK;
}

/* The position of block b (row-major over blocks of m): its origin and its extent,
   which is m except in partial blocks at the right and bottom edges. */
typedef struct _tsenor_block {
    size_t r0, c0;
    int rows, cols;
} _tsenor_block;

_TSENOR_SHARED _tsenor_block _tsenor_block_at(size_t b, size_t block_cols, int m, size_t rows, size_t cols)
{
    _tsenor_block k;
    k.r0 = (b / block_cols) * (size_t)m;
    k.c0 = (b % block_cols) * (size_t)m;
    k.rows = rows - k.r0 < (size_t)m ? (int)(rows - k.r0) : m;
    k.cols = cols - k.c0 < (size_t)m ? (int)(cols - k.c0) : m;
    return k;
}


/* ---------------------------------------------------------------------------------
   Transposable n:4 exactly (n = 1, 2, 3): METHOD_EXACT and METHOD_TSENOR for m = 4.
   A 4x4 block has 24 transposable 1:4 patterns, 90 2:4 and 24 3:4. Each is solved by
   meeting in the middle: rows 0-1 each pick an n-subset of the columns, which leaves a
   column-count state c (0 <= c_j <= 2, sum 2n); rows 2-3 must then cover n - c. Per
   state the best pair of rows 0-1 (top) and of rows 2-3 (bottom); the answer is the
   state with the largest top + bottom. The same arithmetic on the CPU (16 blocks in
   vector lanes) and the GPU (one block per thread), so their masks are bit for bit the
   same on every finite input:
     values   a_ij = |w_ij|, times 2^-4 in a block whose max exceeds 2^124 (exact; no
              sum of 12 values can then overflow);
     scores   row subset sums left to right in ascending column order, e.g. a_00 + a_02
              or (a_00 + a_01) + a_03; top = s_0 + s_1, bottom = s_2 + s_3, total =
              top + bottom; float adds, no other rounding;
     order    states lexicographic in (c_0, c_1, c_2, c_3); row subsets lexicographic in
              their sorted columns (2:4: 01 02 03 12 13 23); pairs of a state row 0's
              subset first; every search keeps the first strict maximum;
     ties     hence, among the patterns of largest total (exact when the sums are, e.g.
              for integer or quantised values), the first of state, then rows 0-1,
              then rows 2-3 in that order.
   The result is the 16-bit mask, bit 4i + j = entry (i, j). A partial block at an edge
   is the zero-padded 4x4 block, as for every method.

   The tables (generated): _TSENOR_N4_<n>_S<k>(X) lists the row pairs X(p, q, bits) of
   state k, with bits = subset p | subset q << 4 (rows 0-1; rows 2-3 shift by 8 more);
   _TSENOR_N4_<n>_STATES(S) lists S(pairs of state k, pairs of its complement n - c). */
/* 1:4: 4 row subsets, 6 column-count states, 12 row-pair choices, 24 patterns */
#define _TSENOR_N4_1_S0(X) X(2, 3, 132) X(3, 2, 72)   /* counts 0011 */
#define _TSENOR_N4_1_S1(X) X(1, 3, 130) X(3, 1, 40)   /* counts 0101 */
#define _TSENOR_N4_1_S2(X) X(1, 2, 66) X(2, 1, 36)   /* counts 0110 */
#define _TSENOR_N4_1_S3(X) X(0, 3, 129) X(3, 0, 24)   /* counts 1001 */
#define _TSENOR_N4_1_S4(X) X(0, 2, 65) X(2, 0, 20)   /* counts 1010 */
#define _TSENOR_N4_1_S5(X) X(0, 1, 33) X(1, 0, 18)   /* counts 1100 */
#define _TSENOR_N4_1_STATES(S) S(_TSENOR_N4_1_S0, _TSENOR_N4_1_S5) S(_TSENOR_N4_1_S1, _TSENOR_N4_1_S4) S(_TSENOR_N4_1_S2, _TSENOR_N4_1_S3) S(_TSENOR_N4_1_S3, _TSENOR_N4_1_S2) S(_TSENOR_N4_1_S4, _TSENOR_N4_1_S1) S(_TSENOR_N4_1_S5, _TSENOR_N4_1_S0)
/* 2:4: 6 row subsets, 19 column-count states, 36 row-pair choices, 90 patterns */
#define _TSENOR_N4_2_S0(X) X(5, 5, 204)   /* counts 0022 */
#define _TSENOR_N4_2_S1(X) X(4, 5, 202) X(5, 4, 172)   /* counts 0112 */
#define _TSENOR_N4_2_S2(X) X(3, 5, 198) X(5, 3, 108)   /* counts 0121 */
#define _TSENOR_N4_2_S3(X) X(4, 4, 170)   /* counts 0202 */
#define _TSENOR_N4_2_S4(X) X(3, 4, 166) X(4, 3, 106)   /* counts 0211 */
#define _TSENOR_N4_2_S5(X) X(3, 3, 102)   /* counts 0220 */
#define _TSENOR_N4_2_S6(X) X(2, 5, 201) X(5, 2, 156)   /* counts 1012 */
#define _TSENOR_N4_2_S7(X) X(1, 5, 197) X(5, 1, 92)   /* counts 1021 */
#define _TSENOR_N4_2_S8(X) X(2, 4, 169) X(4, 2, 154)   /* counts 1102 */
#define _TSENOR_N4_2_S9(X) X(0, 5, 195) X(1, 4, 165) X(2, 3, 105) X(3, 2, 150) X(4, 1, 90) X(5, 0, 60)   /* counts 1111 */
#define _TSENOR_N4_2_S10(X) X(1, 3, 101) X(3, 1, 86)   /* counts 1120 */
#define _TSENOR_N4_2_S11(X) X(0, 4, 163) X(4, 0, 58)   /* counts 1201 */
#define _TSENOR_N4_2_S12(X) X(0, 3, 99) X(3, 0, 54)   /* counts 1210 */
#define _TSENOR_N4_2_S13(X) X(2, 2, 153)   /* counts 2002 */
#define _TSENOR_N4_2_S14(X) X(1, 2, 149) X(2, 1, 89)   /* counts 2011 */
#define _TSENOR_N4_2_S15(X) X(1, 1, 85)   /* counts 2020 */
#define _TSENOR_N4_2_S16(X) X(0, 2, 147) X(2, 0, 57)   /* counts 2101 */
#define _TSENOR_N4_2_S17(X) X(0, 1, 83) X(1, 0, 53)   /* counts 2110 */
#define _TSENOR_N4_2_S18(X) X(0, 0, 51)   /* counts 2200 */
#define _TSENOR_N4_2_STATES(S) S(_TSENOR_N4_2_S0, _TSENOR_N4_2_S18) S(_TSENOR_N4_2_S1, _TSENOR_N4_2_S17) S(_TSENOR_N4_2_S2, _TSENOR_N4_2_S16) S(_TSENOR_N4_2_S3, _TSENOR_N4_2_S15) S(_TSENOR_N4_2_S4, _TSENOR_N4_2_S14) S(_TSENOR_N4_2_S5, _TSENOR_N4_2_S13) S(_TSENOR_N4_2_S6, _TSENOR_N4_2_S12) S(_TSENOR_N4_2_S7, _TSENOR_N4_2_S11) S(_TSENOR_N4_2_S8, _TSENOR_N4_2_S10) S(_TSENOR_N4_2_S9, _TSENOR_N4_2_S9) S(_TSENOR_N4_2_S10, _TSENOR_N4_2_S8) S(_TSENOR_N4_2_S11, _TSENOR_N4_2_S7) S(_TSENOR_N4_2_S12, _TSENOR_N4_2_S6) S(_TSENOR_N4_2_S13, _TSENOR_N4_2_S5) S(_TSENOR_N4_2_S14, _TSENOR_N4_2_S4) S(_TSENOR_N4_2_S15, _TSENOR_N4_2_S3) S(_TSENOR_N4_2_S16, _TSENOR_N4_2_S2) S(_TSENOR_N4_2_S17, _TSENOR_N4_2_S1) S(_TSENOR_N4_2_S18, _TSENOR_N4_2_S0)
/* 3:4: 4 row subsets, 6 column-count states, 12 row-pair choices, 24 patterns */
#define _TSENOR_N4_3_S0(X) X(2, 3, 237) X(3, 2, 222)   /* counts 1122 */
#define _TSENOR_N4_3_S1(X) X(1, 3, 235) X(3, 1, 190)   /* counts 1212 */
#define _TSENOR_N4_3_S2(X) X(0, 3, 231) X(3, 0, 126)   /* counts 1221 */
#define _TSENOR_N4_3_S3(X) X(1, 2, 219) X(2, 1, 189)   /* counts 2112 */
#define _TSENOR_N4_3_S4(X) X(0, 2, 215) X(2, 0, 125)   /* counts 2121 */
#define _TSENOR_N4_3_S5(X) X(0, 1, 183) X(1, 0, 123)   /* counts 2211 */
#define _TSENOR_N4_3_STATES(S) S(_TSENOR_N4_3_S0, _TSENOR_N4_3_S5) S(_TSENOR_N4_3_S1, _TSENOR_N4_3_S4) S(_TSENOR_N4_3_S2, _TSENOR_N4_3_S3) S(_TSENOR_N4_3_S3, _TSENOR_N4_3_S2) S(_TSENOR_N4_3_S4, _TSENOR_N4_3_S1) S(_TSENOR_N4_3_S5, _TSENOR_N4_3_S0)

/* Row subset sums of row i: s[p] for the n-subsets in the order above. A(i, j) reads
   entry (i, j); _TSENOR_N4_ADD is the float add of the expanding code. */
#define _TSENOR_N4_ROW_SUMS_1(s, A, i) \
    (s[0] = A(i, 0), s[1] = A(i, 1), s[2] = A(i, 2), s[3] = A(i, 3))
#define _TSENOR_N4_ROW_SUMS_2(s, A, i)                                                         \
    (s[0] = _TSENOR_N4_ADD(A(i, 0), A(i, 1)), s[1] = _TSENOR_N4_ADD(A(i, 0), A(i, 2)),         \
     s[2] = _TSENOR_N4_ADD(A(i, 0), A(i, 3)), s[3] = _TSENOR_N4_ADD(A(i, 1), A(i, 2)),         \
     s[4] = _TSENOR_N4_ADD(A(i, 1), A(i, 3)), s[5] = _TSENOR_N4_ADD(A(i, 2), A(i, 3)))
#define _TSENOR_N4_ROW_SUMS_3(s, A, i)                                                         \
    (s[0] = _TSENOR_N4_ADD(_TSENOR_N4_ADD(A(i, 0), A(i, 1)), A(i, 2)),                         \
     s[1] = _TSENOR_N4_ADD(_TSENOR_N4_ADD(A(i, 0), A(i, 1)), A(i, 3)),                         \
     s[2] = _TSENOR_N4_ADD(_TSENOR_N4_ADD(A(i, 0), A(i, 2)), A(i, 3)),                         \
     s[3] = _TSENOR_N4_ADD(_TSENOR_N4_ADD(A(i, 1), A(i, 2)), A(i, 3)))

/* The search. Expanded where these are defined: _TSENOR_N4_V (a value: float, or a
   vector of one float per block), _TSENOR_N4_ADD(x, y) (float add), _TSENOR_N4_SET(c)
   (a constant), _TSENOR_N4_BEST(cand, best, bits, arg) (a statement: when cand > best,
   best = cand and arg = bits). best and arg receive the largest total and its mask. */
#define _TSENOR_N4_TOP_(p, q, bits)                                                            \
    {                                                                                          \
        const _TSENOR_N4_V t_ = _TSENOR_N4_ADD(s0_[p], s1_[q]);                                \
        _TSENOR_N4_BEST(t_, top_, _TSENOR_N4_SET(bits), top_bits_);                            \
    }
#define _TSENOR_N4_BOTTOM_(p, q, bits)                                                         \
    {                                                                                          \
        const _TSENOR_N4_V t_ = _TSENOR_N4_ADD(s2_[p], s3_[q]);                                \
        _TSENOR_N4_BEST(t_, bottom_, _TSENOR_N4_SET((bits) * 256), bottom_bits_);              \
    }
#define _TSENOR_N4_STATE_(TOP, BOTTOM)                                                         \
    {                                                                                          \
        _TSENOR_N4_V top_ = none_, bottom_ = none_, top_bits_ = none_, bottom_bits_ = none_;   \
        TOP(_TSENOR_N4_TOP_)                                                                   \
        BOTTOM(_TSENOR_N4_BOTTOM_)                                                             \
        {                                                                                      \
            const _TSENOR_N4_V t_ = _TSENOR_N4_ADD(top_, bottom_);                             \
            _TSENOR_N4_BEST(t_, best_, _TSENOR_N4_ADD(top_bits_, bottom_bits_), arg_);         \
        }                                                                                      \
    }
#define _TSENOR_N4_SOLVE(N, A, best, arg)                                                      \
    {                                                                                          \
        _TSENOR_N4_V s0_[6], s1_[6], s2_[6], s3_[6], best_, arg_;                              \
        const _TSENOR_N4_V none_ = _TSENOR_N4_SET(-1.0f);                                      \
        (void)_TSENOR_N4_ROW_SUMS_##N(s0_, A, 0);                                              \
        (void)_TSENOR_N4_ROW_SUMS_##N(s1_, A, 1);                                              \
        (void)_TSENOR_N4_ROW_SUMS_##N(s2_, A, 2);                                              \
        (void)_TSENOR_N4_ROW_SUMS_##N(s3_, A, 3);                                              \
        best_ = none_;                                                                         \
        arg_ = none_;                                                                          \
        _TSENOR_N4_##N##_STATES(_TSENOR_N4_STATE_)                                             \
        (best) = best_;                                                                        \
        (arg) = arg_;                                                                          \
    }

/* The value scale of a block (above): its max > 2^124 -> 2^-4, else 1. */
#define _TSENOR_N4_SCALE_ABOVE 2.1267647932558654e37f   /* 2^124 */
#define _TSENOR_N4_SCALE 0.0625f

#endif /* the shared definitions */

/* ==================================================================================
   Implementation
   ================================================================================== */
#if defined(TSENOR_IMPLEMENTATION) && !defined(TSENOR_IMPLEMENTATION_INCLUDED)
#define TSENOR_IMPLEMENTATION_INCLUDED

#include <string.h>
#include <float.h>

#if defined(TSENOR_MALLOC) && !defined(TSENOR_FREE)
#error "tsenor.h: TSENOR_MALLOC is defined but TSENOR_FREE is not: define both or neither"
#elif defined(TSENOR_FREE) && !defined(TSENOR_MALLOC)
#error "tsenor.h: TSENOR_FREE is defined but TSENOR_MALLOC is not: define both or neither"
#elif !defined(TSENOR_MALLOC)
#include <stdlib.h>
#define TSENOR_MALLOC(size) malloc(size)
#define TSENOR_FREE(ptr) free(ptr)
#endif
#if defined(TSENOR_STATIC) && defined(TSENOR_CUDA)
#error "tsenor.h: TSENOR_STATIC cannot be combined with TSENOR_CUDA: the CUDA backend calls the public tsenor_* functions, which TSENOR_STATIC hides"
#endif
#ifndef TSENOR_ASSERT
#include <assert.h>
#define TSENOR_ASSERT(x) assert(x)
#endif

#ifdef _OPENMP
#include <omp.h>
#endif
#if !defined(_OPENMP)
#include <time.h>
#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#endif
#endif

#ifdef __cplusplus
#define _TSENOR_RESTRICT __restrict
#else
#define _TSENOR_RESTRICT restrict
#endif

#if defined(__GNUC__) || defined(__clang__)
#define _TSENOR_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#define _TSENOR_ALWAYS_INLINE static inline
#endif

#define _TSENOR_LANES 16          /* blocks solved side by side, one per vector lane  */
#define _TSENOR_ALIGN 64
/* a local array that vector loads and stores touch: vector access needs 64-byte alignment */
#if defined(__GNUC__) || defined(__clang__)
#define _TSENOR_ALIGNED_ARRAY(type, name, count) type name[count] __attribute__((aligned(_TSENOR_ALIGN)))
#else
#define _TSENOR_ALIGNED_ARRAY(type, name, count) type name[count]
#endif

TSENOR_DEF tsenor_status tsenor_resolve_options(const tsenor_options *opt, tsenor_options *resolved)
{
    _tsenor_config cfg;
    tsenor_status s;
    if (!resolved) return TSENOR_ERR_INVALID_ARGUMENT;
    s = _tsenor_resolve(opt, &cfg);
    if (s != TSENOR_OK) return s;
    resolved->n = cfg.n;
    resolved->m = cfg.m;
    resolved->method = cfg.method;
    resolved->iterations = cfg.iterations;
    resolved->tau = cfg.tau;
    resolved->tau_start = cfg.tau_start;
    resolved->local_search_steps = cfg.local_search_steps ? cfg.local_search_steps : -1;
    resolved->threads = cfg.threads;
    return TSENOR_OK;
}

TSENOR_DEF const char *tsenor_status_string(tsenor_status status)
{
    switch (status) {
    case TSENOR_OK: return "ok";
    case TSENOR_ERR_INVALID_ARGUMENT: return "invalid argument (NULL pointer, bad n/m, ld < cols, size overflow or bad option)";
    case TSENOR_ERR_NONFINITE_INPUT: return "input holds NaN or infinity";
    case TSENOR_ERR_OUT_OF_MEMORY: return "out of memory";
    case TSENOR_ERR_DEVICE: return "GPU device error";
    case TSENOR_ERR_INVALID_MASK: return "mask breaks the N:M pattern";
    }
    return "unknown status";
}

#define _TSENOR_STR2(x) #x
#define _TSENOR_STR(x) _TSENOR_STR2(x)
TSENOR_DEF const char *tsenor_version(void)
{
    return _TSENOR_STR(TSENOR_VERSION_MAJOR) "." _TSENOR_STR(TSENOR_VERSION_MINOR) "."
           _TSENOR_STR(TSENOR_VERSION_PATCH);
}

static double _tsenor_now(void)
{
#if defined(_OPENMP)
    return omp_get_wtime();
#elif defined(_WIN32)
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart / (double)f.QuadPart;
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && defined(TIME_UTC)
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#else
    return (double)clock() / (double)CLOCKS_PER_SEC;   /* serial build: CPU time = wall time */
#endif
}

/* ---------------------------------------------------------------------------------
   Input: |w| from f32 / f16 / bf16 bits, and the finiteness scan.
   --------------------------------------------------------------------------------- */
/* |w[index]| as float, for any dtype; exact (f16 and bf16 widen exactly). */
static float _tsenor_abs_at(const void *w, tsenor_dtype dt, size_t index)
{
    if (dt == TSENOR_DTYPE_F32) {
        uint32_t bits;
        memcpy(&bits, (const float *)w + index, sizeof bits);
        return _tsenor_bits_float(bits & 0x7fffffffu);
    }
    if (dt == TSENOR_DTYPE_F16) return _tsenor_abs_f16(((const uint16_t *)w)[index]);
    return _tsenor_abs_bf16(((const uint16_t *)w)[index]);
}

/* |w| of count consecutive entries starting at row offset `at`, into dst[k*stride]. */
static void _tsenor_load_abs(const void *w, tsenor_dtype dt, size_t at, int count,
                             float *dst, int stride)
{
    int k;
    if (dt == TSENOR_DTYPE_F32) {
        const uint32_t *p = (const uint32_t *)w + at;
        for (k = 0; k < count; k++) dst[k * stride] = _tsenor_bits_float(p[k] & 0x7fffffffu);
    } else if (dt == TSENOR_DTYPE_F16) {
        const uint16_t *p = (const uint16_t *)w + at;
        for (k = 0; k < count; k++) dst[k * stride] = _tsenor_abs_f16(p[k]);
    } else {
        const uint16_t *p = (const uint16_t *)w + at;
        for (k = 0; k < count; k++) dst[k * stride] = _tsenor_abs_bf16(p[k]);
    }
}

/* 1 when every entry of row r is finite (checks exponent bits: no float compares, so
   -ffast-math cannot optimise it away). */
static int _tsenor_row_finite(const void *w, tsenor_dtype dt, size_t at, size_t cols)
{
    size_t j;
    unsigned bad = 0, acc[16] = {0};
    int k;
    /* 16 running ors over chunks of 16 (a fixed count: the compiler vectorises it at -O2),
       folded at the end, then the rest */
    if (dt == TSENOR_DTYPE_F32) {
        const uint32_t *p = (const uint32_t *)w + at;
        for (j = 0; j + 16 <= cols; j += 16)
            for (k = 0; k < 16; k++) acc[k] |= (p[j + (size_t)k] & 0x7f800000u) == 0x7f800000u;
        for (; j < cols; j++) bad |= (p[j] & 0x7f800000u) == 0x7f800000u;
    } else {
        const uint16_t *p = (const uint16_t *)w + at;
        const uint16_t expo = dt == TSENOR_DTYPE_F16 ? 0x7c00u : 0x7f80u;
        for (j = 0; j + 16 <= cols; j += 16)
            for (k = 0; k < 16; k++) acc[k] |= (p[j + (size_t)k] & expo) == expo;
        for (; j < cols; j++) bad |= (p[j] & expo) == expo;
    }
    for (k = 0; k < 16; k++) bad |= acc[k];
    return !bad;
}

static int _tsenor_all_finite(const void *w, tsenor_dtype dt, size_t rows, size_t cols,
                              size_t ld, int threads)
{
    ptrdiff_t r, nrows = (ptrdiff_t)rows;   /* not long: 32 bits on 64-bit Windows */
    int bad = 0;
    (void)threads;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static) reduction(|:bad) if(rows * cols > 65536)
#endif
    for (r = 0; r < nrows; r++)
        bad |= !_tsenor_row_finite(w, dt, (size_t)r * ld, cols);
    return !bad;
}

/* ---------------------------------------------------------------------------------
   SIMD layer. A vector holds one float of each of _TSENOR_LANES blocks; the block
   kernels below are written once with these macros. With GCC/Clang the vector type is
   a generic vector that the compiler lowers to AVX-512, AVX2 or NEON (whatever the
   function is compiled for); the x86 entry points are compiled once per ISA with
   target attributes and picked at run time by cpuid. Elsewhere (TSENOR_NO_SIMD or
   another compiler) the same macros expand to loops over a struct.
   Macros, not functions: GCC warns (-Wpsabi) about 64-byte vectors passed by value.
   --------------------------------------------------------------------------------- */
#if (defined(__GNUC__) || defined(__clang__)) && !defined(TSENOR_NO_SIMD)
#define _TSENOR_VECTOR_EXTENSIONS 1
typedef float _tsenor_vf __attribute__((vector_size(4 * _TSENOR_LANES), aligned(_TSENOR_ALIGN)));
typedef int32_t _tsenor_vi __attribute__((vector_size(4 * _TSENOR_LANES), aligned(_TSENOR_ALIGN)));
#define _TSENOR_VDECLARE_ZERO const _tsenor_vf _tsenor_vzero = {0}
#define _TSENOR_VLOAD(p) (*(const _tsenor_vf *)(const void *)(p))
#define _TSENOR_VSTORE(p, v) (*(_tsenor_vf *)(void *)(p) = (v))
#define _TSENOR_VSET1(s) (_tsenor_vzero + (float)(s))
#define _TSENOR_VADD(a, b) ((a) + (b))
#define _TSENOR_VSUB(a, b) ((a) - (b))
#define _TSENOR_VMUL(a, b) ((a) * (b))
#define _TSENOR_VDIV(a, b) ((a) / (b))
#define _TSENOR_VSELECT(c, a, b) ((_tsenor_vf)(((_tsenor_vi)(a) & (c)) | ((_tsenor_vi)(b) & ~(c))))
/* all-ones where x < y: the sign bit of x - y, spread by an arithmetic shift. GCC turns
   a float compare of a vector wider than the ISA's into scalar code; the subtraction
   and the shift split cleanly. Exact for the finite values used here (no -0.0). */
#define _TSENOR_VLT_MASK(x, y) ((_tsenor_vi)((x) - (y)) >> 31)
#define _TSENOR_VMIN(a, b) _TSENOR_VSELECT(_TSENOR_VLT_MASK(a, b), a, b)
#define _TSENOR_VMAX(a, b) _TSENOR_VSELECT(_TSENOR_VLT_MASK(b, a), a, b)
#define _TSENOR_VBLEND_GT(x, y, a, b) _TSENOR_VSELECT(_TSENOR_VLT_MASK(y, x), a, b)   /* x > y ? a : b */
/* _TSENOR_LANES bytes (16-byte aligned) widened to floats */
#if defined(__clang__) || __GNUC__ >= 9
typedef uint8_t _tsenor_vu8 __attribute__((vector_size(_TSENOR_LANES), aligned(16)));
#define _TSENOR_VLOAD_U8(p) __builtin_convertvector(*(const _tsenor_vu8 *)(const void *)(p), _tsenor_vf)
#else
#define _TSENOR_VLOAD_U8(p) _tsenor_vload_u8(p)
static inline _tsenor_vf _tsenor_vload_u8(const uint8_t *p)
{ _tsenor_vf r; int l; for (l = 0; l < _TSENOR_LANES; l++) r[l] = (float)p[l]; return r; }
#endif

/* |x| of 64 consecutive f32 bit patterns at p (any alignment), de-interleaved by 4:
   dst[j*16 + l] = |p[4l + j]| for j < 4 (one block row of the n:4 kernel's lanes). Two-
   source shuffles: the halves of the result, then the result. */
#if defined(__clang__) || __GNUC__ >= 12
#define _TSENOR_VSHUFFLE(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define _TSENOR_VSHUFFLE(a, b, ...) __builtin_shuffle(a, b, (_tsenor_vi){__VA_ARGS__})
#endif
#define _TSENOR_DEINTERLEAVE4_(j)                                                                         \
    {                                                                                                     \
        const _tsenor_vi lo_ = _TSENOR_VSHUFFLE(v0, v1, j, j + 4, j + 8, j + 12, j + 16, j + 20, j + 24, j + 28, \
                                                0, 0, 0, 0, 0, 0, 0, 0);                                  \
        const _tsenor_vi hi_ = _TSENOR_VSHUFFLE(v2, v3, j, j + 4, j + 8, j + 12, j + 16, j + 20, j + 24, j + 28, \
                                                0, 0, 0, 0, 0, 0, 0, 0);                                  \
        const _tsenor_vi r_ = _TSENOR_VSHUFFLE(lo_, hi_, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) & \
                              0x7fffffff;                                                                 \
        memcpy(dst + (j) * _TSENOR_LANES, &r_, sizeof r_);                                                \
    }
_TSENOR_ALWAYS_INLINE void _tsenor_deinterleave4_abs(const uint32_t *p, float *dst)
{
    _tsenor_vi v0, v1, v2, v3;
    memcpy(&v0, p, sizeof v0);
    memcpy(&v1, p + 16, sizeof v1);
    memcpy(&v2, p + 32, sizeof v2);
    memcpy(&v3, p + 48, sizeof v3);
    _TSENOR_DEINTERLEAVE4_(0)
    _TSENOR_DEINTERLEAVE4_(1)
    _TSENOR_DEINTERLEAVE4_(2)
    _TSENOR_DEINTERLEAVE4_(3)
}
#undef _TSENOR_DEINTERLEAVE4_
/* The 0/1 bytes of 16 4x4 masks (bit 4i + j of code[l] = entry (i,j) of block l) as the
   rows of 16 blocks side by side: out[i*64 + 4l + j]. A row's nibble times 0x00204081
   puts bit k at bit 8k (little-endian byte k); elsewhere a table. */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && \
    (defined(__clang__) || __GNUC__ >= 9)
_TSENOR_ALWAYS_INLINE void _tsenor_n4_mask_rows(const float *code, uint8_t *out)
{
    const _tsenor_vi c = __builtin_convertvector(_TSENOR_VLOAD(code), _tsenor_vi);
    int i;
    for (i = 0; i < 4; i++) {
        const _tsenor_vi word = (((c >> (4 * i)) & 15) * 0x00204081) & 0x01010101;
        memcpy(out + 64 * i, &word, sizeof word);
    }
}
#define _TSENOR_N4_MASK_ROWS 1
#endif

/* e^x for x in [-87, 69] (callers clamp): Cody-Waite reduction x = k ln2 + f, then a
   degree-6 Taylor polynomial on |f| <= ln2/2 (relative error < 2e-7); 2^k is built in
   the exponent bits. k is rounded by adding 1.5*2^23, which leaves it in the low bits. */
#define _TSENOR_VEXP(out, xin)                                                           \
    do {                                                                                 \
        const _tsenor_vf x_ = (xin);                                                     \
        const _tsenor_vf t_ = x_ * 1.44269504088896341f + 12582912.0f;                   \
        const _tsenor_vf k_ = t_ - 12582912.0f;                                          \
        const _tsenor_vf f_ = (x_ - k_ * 0.693359375f) - k_ * -2.12194440e-4f;           \
        _tsenor_vf p_ = f_ * (1.0f / 720.0f) + (1.0f / 120.0f);                          \
        p_ = p_ * f_ + (1.0f / 24.0f);                                                   \
        p_ = p_ * f_ + (1.0f / 6.0f);                                                    \
        p_ = p_ * f_ + 0.5f;                                                             \
        p_ = p_ * f_ + 1.0f;                                                             \
        p_ = p_ * f_ + 1.0f;                                                             \
        (out) = p_ * (_tsenor_vf)((((_tsenor_vi)t_ - 0x4B400000) + 127) << 23);          \
    } while (0)

/* ln x for normal x > 0: x = 2^e * r with r in [sqrt(1/2), sqrt(2)), ln r = 2 atanh(s),
   s = (r-1)/(r+1), |s| < 0.172, odd series to s^9 (relative error < 1e-7). */
#define _TSENOR_VLOG(out, xin)                                                           \
    do {                                                                                 \
        const _tsenor_vi b_ = (_tsenor_vi)(xin);                                         \
        _tsenor_vf r_ = (_tsenor_vf)((b_ & 0x007fffff) | 0x3f800000);                    \
        const _tsenor_vi big_ = _TSENOR_VLT_MASK(_tsenor_vzero + 1.41421356f, r_);                          \
        const _tsenor_vi e_ = ((b_ >> 23) - 127) - big_;                                 \
        const _tsenor_vf ef_ = (_tsenor_vf)(e_ + 0x4B400000) - 12582912.0f;              \
        _tsenor_vf s_, s2_, p_;                                                          \
        r_ = _TSENOR_VSELECT(big_, r_ * 0.5f, r_);                                       \
        s_ = (r_ - 1.0f) / (r_ + 1.0f);                                                  \
        s2_ = s_ * s_;                                                                   \
        p_ = s2_ * (1.0f / 9.0f) + (1.0f / 7.0f);                                        \
        p_ = p_ * s2_ + (1.0f / 5.0f);                                                   \
        p_ = p_ * s2_ + (1.0f / 3.0f);                                                   \
        p_ = p_ * s2_ + 1.0f;                                                            \
        (out) = ef_ * 0.693147180559945309f + 2.0f * s_ * p_;                            \
    } while (0)
#else
#include <math.h>
typedef struct { float v[_TSENOR_LANES]; } _tsenor_vf;
#define _TSENOR_VDEF_BINARY(name, expr)                                                  \
    static inline _tsenor_vf name(_tsenor_vf a, _tsenor_vf b)                            \
    { _tsenor_vf r; int l; for (l = 0; l < _TSENOR_LANES; l++) r.v[l] = (expr); return r; }
#define _TSENOR_VDEF_UNARY(name, expr)                                                   \
    static inline _tsenor_vf name(_tsenor_vf a)                                          \
    { _tsenor_vf r; int l; for (l = 0; l < _TSENOR_LANES; l++) r.v[l] = (expr); return r; }
_TSENOR_VDEF_BINARY(_tsenor_vadd_s, a.v[l] + b.v[l])
_TSENOR_VDEF_BINARY(_tsenor_vsub_s, a.v[l] - b.v[l])
_TSENOR_VDEF_BINARY(_tsenor_vmul_s, a.v[l] * b.v[l])
_TSENOR_VDEF_BINARY(_tsenor_vdiv_s, a.v[l] / b.v[l])
_TSENOR_VDEF_BINARY(_tsenor_vmin_s, a.v[l] < b.v[l] ? a.v[l] : b.v[l])
_TSENOR_VDEF_BINARY(_tsenor_vmax_s, a.v[l] > b.v[l] ? a.v[l] : b.v[l])
_TSENOR_VDEF_UNARY(_tsenor_vexp_s, expf(a.v[l]))
_TSENOR_VDEF_UNARY(_tsenor_vlog_s, logf(a.v[l]))
static inline _tsenor_vf _tsenor_vblend_gt_s(_tsenor_vf x, _tsenor_vf y, _tsenor_vf a, _tsenor_vf b)
{ _tsenor_vf r; int l; for (l = 0; l < _TSENOR_LANES; l++) r.v[l] = x.v[l] > y.v[l] ? a.v[l] : b.v[l]; return r; }
static inline _tsenor_vf _tsenor_vset1_s(float s)
{ _tsenor_vf r; int l; for (l = 0; l < _TSENOR_LANES; l++) r.v[l] = s; return r; }
static inline _tsenor_vf _tsenor_vload_u8_s(const uint8_t *p)
{ _tsenor_vf r; int l; for (l = 0; l < _TSENOR_LANES; l++) r.v[l] = (float)p[l]; return r; }
static inline void _tsenor_deinterleave4_abs(const uint32_t *p, float *dst)
{
    int l, j;
    for (l = 0; l < _TSENOR_LANES; l++)
        for (j = 0; j < 4; j++) dst[j * _TSENOR_LANES + l] = _tsenor_bits_float(p[4 * l + j] & 0x7fffffffu);
}
#define _TSENOR_VDECLARE_ZERO enum { _tsenor_vzero_unused = 0 }
#define _TSENOR_VLOAD(p) (*(const _tsenor_vf *)(const void *)(p))
#define _TSENOR_VSTORE(p, x) (*(_tsenor_vf *)(void *)(p) = (x))
#define _TSENOR_VSET1(s) _tsenor_vset1_s((float)(s))
#define _TSENOR_VADD _tsenor_vadd_s
#define _TSENOR_VSUB _tsenor_vsub_s
#define _TSENOR_VMUL _tsenor_vmul_s
#define _TSENOR_VDIV _tsenor_vdiv_s
#define _TSENOR_VMIN _tsenor_vmin_s
#define _TSENOR_VMAX _tsenor_vmax_s
#define _TSENOR_VBLEND_GT _tsenor_vblend_gt_s
#define _TSENOR_VLOAD_U8 _tsenor_vload_u8_s
#define _TSENOR_VEXP(out, x) ((out) = _tsenor_vexp_s(x))
#define _TSENOR_VLOG(out, x) ((out) = _tsenor_vlog_s(x))
#endif

/* ---------------------------------------------------------------------------------
   Block solver: entropic capacitated transport by Dykstra's algorithm, 16 blocks at a
   time in a lane-interleaved layout: entry (i,j) of lane l lives at [(i*m + j)*16 + l].

   Per block, with a = |w| / max|w| in [0,1], the plan X solves
       max <X,a> + tau*H(X)   s.t. row sums = n, column sums = n, 0 <= X <= 1.
   Dykstra alternates KL projections: scale rows to n, scale columns to n, clip at 1
   with a multiplicative correction Q for the clip (the only non-affine set):
   Y = X*Q, X = min(Y,1), Q = Y/X = max(Y,1).

   Scaling form. After every clip X = min(Y,1) and Q = max(Y,1), so X*Q = Y and one
   sweep (rows by r, columns by c, clip) maps Y to diag(r) Y diag(c) exactly, with
       r_i = n / sum_j min(Y_ij,1),   c_j = n / sum_i r_i min(Y_ij,1).
   Hence Y = K (x) U V^T with a fixed kernel K: Dykstra, correction included, needs only
   the scaling vectors U, V; no m x m array is written inside the iterations.

   Stability. K = exp((a_ij - alpha_i - beta_j)/tau) is built from potentials
   alpha, beta (in units of a) and clamped to [e^-87, e^69]; when U or V drift far from 1,
   and at the end of every stage, they are absorbed into the potentials
   (alpha -= tau ln U, beta -= tau ln V) and K is rebuilt. The first potentials are the
   column maxima and each row's best remaining offset, so the first K is <= 1 with a 1
   in every row and column.

   Epsilon-scaling. tau halves per stage from tau_start down to tau (the last stage runs
   the remaining iterations): a small tau alone converges slowly; warm-started through
   the potentials it converges in a few sweeps per stage.
   --------------------------------------------------------------------------------- */
typedef struct _tsenor_lanes {        /* one group's arrays, 64-byte aligned            */
    float *a;                         /* m*m*L  |w| / block max                          */
    float *x;                         /* m*m*L  the kernel K, the plan; in local search: a where selected, else +BIG */
    float *sel;                       /* m*m*L  the selection (0/1), for local search    */
    float *alpha, *beta;              /* m*L    row and column potentials                */
    float *u, *v;                     /* m*L    row and column scalings                  */
    float *colsum;                    /* m*L                                             */
    float *unkept;                    /* m*m*L  local search: a where not selected, else -BIG */
    float *pair_gain;                 /* m(m-1)/2*L  local search: each row pair's best swap */
    float *rowcnt, *colcnt;           /* m*L    counts of the threshold preselection     */
    float *sum_total, *sum_kept;      /* m*L    per-row (or per-group) sums for the report */
} _tsenor_lanes;

typedef struct _tsenor_schedule {
    int n;
    int iterations;                   /* total, over all stages                          */
    float tau, tau_start;             /* relative to the block max                       */
    int warm_iterations;              /* > 0: alpha, beta hold warm potentials; one stage
                                         at tau of this many sweeps                      */
} _tsenor_schedule;

/* Normalises a (lanes layout, m x m) to [0,1] per lane; all-zero blocks stay zero.
   block_max receives each lane's max |w|. */
_TSENOR_ALWAYS_INLINE void _tsenor_normalize(float *_TSENOR_RESTRICT a, int mm, float *block_max)
{
    _TSENOR_VDECLARE_ZERO;
    const int L = _TSENOR_LANES;
    _tsenor_vf mx = _TSENOR_VSET1(0.0f), div;
    int k, l;
    _TSENOR_ALIGNED_ARRAY(float, s, _TSENOR_LANES);
    for (k = 0; k < mm; k++) mx = _TSENOR_VMAX(mx, _TSENOR_VLOAD(a + k * L));
    _TSENOR_VSTORE(s, mx);
    for (l = 0; l < L; l++) {
        block_max[l] = s[l];
        if (!(s[l] > 0.0f)) s[l] = 1.0f;      /* all-zero block: stays 0 */
    }
    /* divide, not multiply by 1/max: 1/max overflows for subnormal blocks */
    div = _TSENOR_VLOAD(s);
    for (k = 0; k < mm; k++) _TSENOR_VSTORE(a + k * L, _TSENOR_VDIV(_TSENOR_VLOAD(a + k * L), div));
}

/* Folds the scalings into the potentials at temperature tau_old (U = V = 1 after). */
_TSENOR_ALWAYS_INLINE void _tsenor_fold_scalings(const _tsenor_lanes *g, int m, float tau_old)
{
    _TSENOR_VDECLARE_ZERO;
    const int L = _TSENOR_LANES;
    const _tsenor_vf vtau = _TSENOR_VSET1(tau_old), one = _TSENOR_VSET1(1.0f);
    int i;
    for (i = 0; i < m; i++) {
        _tsenor_vf lu, lv;
        _TSENOR_VLOG(lu, _TSENOR_VLOAD(g->u + i * L));
        _TSENOR_VLOG(lv, _TSENOR_VLOAD(g->v + i * L));
        _TSENOR_VSTORE(g->alpha + i * L, _TSENOR_VSUB(_TSENOR_VLOAD(g->alpha + i * L), _TSENOR_VMUL(vtau, lu)));
        _TSENOR_VSTORE(g->beta + i * L, _TSENOR_VSUB(_TSENOR_VLOAD(g->beta + i * L), _TSENOR_VMUL(vtau, lv)));
        _TSENOR_VSTORE(g->u + i * L, one);
        _TSENOR_VSTORE(g->v + i * L, one);
    }
}

/* K = exp((a - alpha_i - beta_j)/tau), clamped. */
_TSENOR_ALWAYS_INLINE void _tsenor_build_kernel(const _tsenor_lanes *g, int m, float tau)
{
    _TSENOR_VDECLARE_ZERO;
    const int L = _TSENOR_LANES;
    const float *_TSENOR_RESTRICT a = g->a;
    float *_TSENOR_RESTRICT x = g->x;
    const _tsenor_vf inv_tau = _TSENOR_VSET1(1.0f / tau);
    const _tsenor_vf lo = _TSENOR_VSET1(_TSENOR_EXP_MIN), hi = _TSENOR_VSET1(_TSENOR_EXP_MAX);
    int i, j;
    for (i = 0; i < m; i++) {
        const _tsenor_vf al = _TSENOR_VLOAD(g->alpha + i * L);
        for (j = 0; j < m; j++) {
            const int k = (i * m + j) * L;
            _tsenor_vf y, e = _TSENOR_VSUB(_TSENOR_VSUB(_TSENOR_VLOAD(a + k), al), _TSENOR_VLOAD(g->beta + j * L));
            e = _TSENOR_VMIN(_TSENOR_VMAX(_TSENOR_VMUL(e, inv_tau), lo), hi);
            _TSENOR_VEXP(y, e);
            _TSENOR_VSTORE(x + k, y);
        }
    }
}

/* One Dykstra sweep in scaling form; returns 1 when a scaling left [1/LIMIT, LIMIT]. */
_TSENOR_ALWAYS_INLINE int _tsenor_sweep(const _tsenor_lanes *g, int m, int n)
{
    _TSENOR_VDECLARE_ZERO;
    const int L = _TSENOR_LANES;
    const float *_TSENOR_RESTRICT K = g->x;
    const float *_TSENOR_RESTRICT v = g->v;
    float *_TSENOR_RESTRICT u = g->u;
    float *_TSENOR_RESTRICT colsum = g->colsum;
    const _tsenor_vf one = _TSENOR_VSET1(1.0f), vn = _TSENOR_VSET1((float)n);
    const _tsenor_vf tiny = _TSENOR_VSET1(_TSENOR_SUM_FLOOR);
    _tsenor_vf hi = _TSENOR_VSET1(1.0f), lo = _TSENOR_VSET1(1.0f);
    _TSENOR_ALIGNED_ARRAY(float, hl, 2 * _TSENOR_LANES);
    int i, j, l;
    for (j = 0; j < m; j++) _TSENOR_VSTORE(colsum + j * L, _TSENOR_VSET1(0.0f));
    for (i = 0; i < m; i++) {
        const _tsenor_vf ui = _TSENOR_VLOAD(u + i * L);
        _tsenor_vf s = _TSENOR_VSET1(0.0f), r;
        for (j = 0; j < m; j++)
            s = _TSENOR_VADD(s, _TSENOR_VMIN(_TSENOR_VMUL(_TSENOR_VMUL(_TSENOR_VLOAD(K + (i * m + j) * L), ui),
                                                          _TSENOR_VLOAD(v + j * L)), one));
        r = _TSENOR_VDIV(vn, _TSENOR_VMAX(s, tiny));
        for (j = 0; j < m; j++) {
            const _tsenor_vf z = _TSENOR_VMIN(_TSENOR_VMUL(_TSENOR_VMUL(_TSENOR_VLOAD(K + (i * m + j) * L), ui),
                                                           _TSENOR_VLOAD(v + j * L)), one);
            _TSENOR_VSTORE(colsum + j * L, _TSENOR_VADD(_TSENOR_VLOAD(colsum + j * L), _TSENOR_VMUL(z, r)));
        }
        r = _TSENOR_VMUL(ui, r);
        _TSENOR_VSTORE(u + i * L, r);
        hi = _TSENOR_VMAX(hi, r);
        lo = _TSENOR_VMIN(lo, r);
    }
    for (j = 0; j < m; j++) {
        const _tsenor_vf c = _TSENOR_VMUL(_TSENOR_VLOAD(v + j * L),
                                          _TSENOR_VDIV(vn, _TSENOR_VMAX(_TSENOR_VLOAD(colsum + j * L), tiny)));
        _TSENOR_VSTORE(g->v + j * L, c);
        hi = _TSENOR_VMAX(hi, c);
        lo = _TSENOR_VMIN(lo, c);
    }
    _TSENOR_VSTORE(hl, hi);
    _TSENOR_VSTORE(hl + _TSENOR_LANES, lo);
    for (l = 0; l < L; l++)
        if (hl[l] > _TSENOR_SCALE_LIMIT || hl[L + l] < 1.0f / _TSENOR_SCALE_LIMIT) return 1;
    return 0;
}

/* Dykstra with epsilon-scaling; g->x receives the plan min(Y,1). */
_TSENOR_ALWAYS_INLINE void _tsenor_dykstra(const _tsenor_lanes *g, const _tsenor_schedule *sc, int m)
{
    _TSENOR_VDECLARE_ZERO;
    const int L = _TSENOR_LANES;
    const float *_TSENOR_RESTRICT a = g->a;
    const _tsenor_vf one = _TSENOR_VSET1(1.0f);
    int i, j, it, stage, stages, done = 0;

    for (j = 0; j < m; j++) {
        _TSENOR_VSTORE(g->u + j * L, one);
        _TSENOR_VSTORE(g->v + j * L, one);
    }
    if (sc->warm_iterations <= 0) {
        for (j = 0; j < m; j++) {
            _tsenor_vf c = _TSENOR_VLOAD(a + j * L);
            for (i = 1; i < m; i++) c = _TSENOR_VMAX(c, _TSENOR_VLOAD(a + (i * m + j) * L));
            _TSENOR_VSTORE(g->beta + j * L, c);
        }
        for (i = 0; i < m; i++) {
            _tsenor_vf r = _TSENOR_VSET1(-2.0f);
            for (j = 0; j < m; j++)
                r = _TSENOR_VMAX(r, _TSENOR_VSUB(_TSENOR_VLOAD(a + (i * m + j) * L), _TSENOR_VLOAD(g->beta + j * L)));
            _TSENOR_VSTORE(g->alpha + i * L, r);
        }
    }

    stages = sc->warm_iterations > 0 ? 1 : _tsenor_stage_count(sc->tau, sc->tau_start);
    for (stage = 0; stage < stages; stage++) {
        const float tau = _tsenor_stage_tau(sc->tau, stage, stages);
        const int its = sc->warm_iterations > 0 ? sc->warm_iterations
                                                : _tsenor_stage_iterations(sc->iterations, stage, stages, done);
        _tsenor_build_kernel(g, m, tau);
        for (it = 0; it < its; it++) {
            if (_tsenor_sweep(g, m, sc->n) && it + 1 < its) {
                _tsenor_fold_scalings(g, m, tau);
                _tsenor_build_kernel(g, m, tau);
            }
        }
        done += its;
        if (stage < stages - 1) _tsenor_fold_scalings(g, m, tau);
    }
    /* the plan: X = min(K U V, 1), in place of K */
    for (i = 0; i < m; i++) {
        const _tsenor_vf ui = _TSENOR_VLOAD(g->u + i * L);
        for (j = 0; j < m; j++) {
            const int k = (i * m + j) * L;
            _TSENOR_VSTORE(g->x + k, _TSENOR_VMIN(_TSENOR_VMUL(_TSENOR_VMUL(_TSENOR_VLOAD(g->x + k), ui),
                                                               _TSENOR_VLOAD(g->v + j * L)), one));
        }
    }
}

/* ---------------------------------------------------------------------------------
   Threshold preselection, the first step of the rounding. Greedy in descending plan
   order takes every entry of a set {x > theta} when no row or column of it holds more
   than n (none can be refused before the set is exhausted), so the rounding starts
   from the largest such set and sorts only what is left. Per lane, bisection finds the
   smallest theta (to 2^-10) whose set fits; rowcnt/colcnt receive that set's counts.
   x lies in [0, 1]; {x > 1} is empty.
   --------------------------------------------------------------------------------- */
_TSENOR_ALWAYS_INLINE void _tsenor_fit_threshold(const _tsenor_lanes *g, int m, int n, float *theta_out)
{
    _TSENOR_VDECLARE_ZERO;
    const int L = _TSENOR_LANES;
    const _tsenor_vf one = _TSENOR_VSET1(1.0f), zero = _TSENOR_VSET1(0.0f), vn = _TSENOR_VSET1((float)n);
    _tsenor_vf lo = zero, hi = one;
    int step, i, j;
    for (step = 0; step <= _TSENOR_BISECTION_STEPS; step++) {
        /* the last pass counts at the answer, hi */
        const _tsenor_vf theta = step < _TSENOR_BISECTION_STEPS ? _TSENOR_VMUL(_TSENOR_VADD(lo, hi), _TSENOR_VSET1(0.5f)) : hi;
        _tsenor_vf most = zero;
        for (j = 0; j < m; j++) _TSENOR_VSTORE(g->colcnt + j * L, zero);
        for (i = 0; i < m; i++) {
            _tsenor_vf rc = zero;
            for (j = 0; j < m; j++) {
                const _tsenor_vf s = _TSENOR_VBLEND_GT(_TSENOR_VLOAD(g->x + (i * m + j) * L), theta, one, zero);
                rc = _TSENOR_VADD(rc, s);
                _TSENOR_VSTORE(g->colcnt + j * L, _TSENOR_VADD(_TSENOR_VLOAD(g->colcnt + j * L), s));
            }
            _TSENOR_VSTORE(g->rowcnt + i * L, rc);
            most = _TSENOR_VMAX(most, rc);
        }
        if (step == _TSENOR_BISECTION_STEPS) break;
        for (j = 0; j < m; j++) most = _TSENOR_VMAX(most, _TSENOR_VLOAD(g->colcnt + j * L));
        /* too many somewhere: the answer is above theta; else theta fits */
        lo = _TSENOR_VBLEND_GT(most, vn, theta, lo);
        hi = _TSENOR_VBLEND_GT(most, vn, hi, theta);
    }
    _TSENOR_VSTORE(theta_out, hi);
}

/* sel = (x > theta[lane]). */
_TSENOR_ALWAYS_INLINE void _tsenor_select_above(const _tsenor_lanes *g, int mm, const float *theta)
{
    _TSENOR_VDECLARE_ZERO;
    const int L = _TSENOR_LANES;
    const _tsenor_vf one = _TSENOR_VSET1(1.0f), zero = _TSENOR_VSET1(0.0f), th = _TSENOR_VLOAD(theta);
    int k;
    for (k = 0; k < mm; k++)
        _TSENOR_VSTORE(g->sel + k * L, _TSENOR_VBLEND_GT(_TSENOR_VLOAD(g->x + k * L), th, one, zero));
}

/* ---------------------------------------------------------------------------------
   Rounding: plan -> binary mask with exactly n per row and column of the (padded)
   block. Greedy in descending plan order, then repair of what greedy left short by
   augmenting paths, then best-improvement 2x2 swaps.
   --------------------------------------------------------------------------------- */
/* Greedy in rounds, 16 blocks at a time. An entry that is live (not selected, its row
   and column below n) and the largest live entry of both its row and its column is
   taken by greedy whatever the order of the others: nothing live ranks above it in its
   row or column. So each round takes all such entries at once. Ties: all live entries
   equal to a row's (column's) maximum are taken together or not at all, so that no tie
   order matters. Dead and taken entries of x are set to -1 (x >= 0 is live). Stops when
   a round takes nothing in any lane; what is left (ties that do not fit, blocks with
   nothing live) goes to the scalar greedy. Uses alpha, beta, u and v as scratch. */
_TSENOR_ALWAYS_INLINE void _tsenor_greedy_rounds(const _tsenor_lanes *g, int m, int n)
{
    _TSENOR_VDECLARE_ZERO;
    const int L = _TSENOR_LANES;
    float *_TSENOR_RESTRICT x = g->x;
    float *_TSENOR_RESTRICT sel = g->sel;
    float *_TSENOR_RESTRICT row_max = g->alpha, *_TSENOR_RESTRICT col_cap = g->u;
    float *_TSENOR_RESTRICT col_max = g->beta, *_TSENOR_RESTRICT col_tie = g->v;
    const _tsenor_vf one = _TSENOR_VSET1(1.0f), zero = _TSENOR_VSET1(0.0f), dead = _TSENOR_VSET1(-1.0f),
                     above = _TSENOR_VSET1(2.0f), half = _TSENOR_VSET1(0.5f), vn = _TSENOR_VSET1((float)n);
    int i, j, k, round;
    for (k = 0; k < m * m; k++) {   /* the preselection is taken */
        const _tsenor_vf v = _TSENOR_VLOAD(x + k * L);
        _TSENOR_VSTORE(x + k * L, _TSENOR_VBLEND_GT(_TSENOR_VLOAD(sel + k * L), half, dead, v));
    }
    for (round = 0; round < m * n + 1; round++) {
        _tsenor_vf progress = zero;
        /* pass 1: kill what is in a full row or column (min with -1); per row and column
           the live maximum and how many entries equal it */
        for (j = 0; j < m; j++) {
            /* +2 (no cap) while the column has room, -1 once it is full */
            _TSENOR_VSTORE(col_cap + j * L, _TSENOR_VBLEND_GT(_TSENOR_VSUB(vn, _TSENOR_VLOAD(g->colcnt + j * L)), half, above, dead));
            _TSENOR_VSTORE(col_max + j * L, dead);
            _TSENOR_VSTORE(col_tie + j * L, zero);
        }
        for (i = 0; i < m; i++) {
            const _tsenor_vf row_room = _TSENOR_VSUB(vn, _TSENOR_VLOAD(g->rowcnt + i * L));
            const _tsenor_vf row_cap = _TSENOR_VBLEND_GT(row_room, half, above, dead);
            _tsenor_vf rmax = dead, rtie = zero;
            for (j = 0; j < m; j++) {
                const int kk = (i * m + j) * L;
                const _tsenor_vf v = _TSENOR_VMIN(_TSENOR_VLOAD(x + kk), _TSENOR_VMIN(row_cap, _TSENOR_VLOAD(col_cap + j * L)));
                const _tsenor_vf cmax = _TSENOR_VLOAD(col_max + j * L), ctie = _TSENOR_VLOAD(col_tie + j * L);
                _TSENOR_VSTORE(x + kk, v);
                /* running maximum and its multiplicity: reset on a new maximum, count on equal */
                rtie = _TSENOR_VBLEND_GT(v, rmax, one, _TSENOR_VBLEND_GT(rmax, v, rtie, _TSENOR_VADD(rtie, one)));
                rmax = _TSENOR_VMAX(rmax, v);
                _TSENOR_VSTORE(col_tie + j * L, _TSENOR_VBLEND_GT(v, cmax, one, _TSENOR_VBLEND_GT(cmax, v, ctie, _TSENOR_VADD(ctie, one))));
                _TSENOR_VSTORE(col_max + j * L, _TSENOR_VMAX(cmax, v));
            }
            /* a row whose tie does not fit its room, or with nothing live, takes nothing */
            rmax = _TSENOR_VBLEND_GT(rtie, row_room, above, rmax);
            _TSENOR_VSTORE(row_max + i * L, _TSENOR_VBLEND_GT(zero, rmax, above, rmax));
        }
        for (j = 0; j < m; j++) {
            const _tsenor_vf col_room = _TSENOR_VSUB(vn, _TSENOR_VLOAD(g->colcnt + j * L));
            const _tsenor_vf cmax = _TSENOR_VBLEND_GT(_TSENOR_VLOAD(col_tie + j * L), col_room, above,
                                                      _TSENOR_VLOAD(col_max + j * L));
            _TSENOR_VSTORE(col_max + j * L, _TSENOR_VBLEND_GT(zero, cmax, above, cmax));
        }
        /* pass 2: take the entries that are both maxima (and mark them taken: -1) */
        for (i = 0; i < m; i++) {
            const _tsenor_vf rmax = _TSENOR_VLOAD(row_max + i * L);
            _tsenor_vf taken = zero;
            for (j = 0; j < m; j++) {
                const int kk = (i * m + j) * L;
                const _tsenor_vf v = _TSENOR_VLOAD(x + kk);
                const _tsenor_vf take = _TSENOR_VBLEND_GT(_TSENOR_VMAX(rmax, _TSENOR_VLOAD(col_max + j * L)), v, zero, one);
                _TSENOR_VSTORE(x + kk, _TSENOR_VBLEND_GT(take, half, dead, v));
                _TSENOR_VSTORE(sel + kk, _TSENOR_VADD(_TSENOR_VLOAD(sel + kk), take));
                _TSENOR_VSTORE(g->colcnt + j * L, _TSENOR_VADD(_TSENOR_VLOAD(g->colcnt + j * L), take));
                taken = _TSENOR_VADD(taken, take);
            }
            _TSENOR_VSTORE(g->rowcnt + i * L, _TSENOR_VADD(_TSENOR_VLOAD(g->rowcnt + i * L), taken));
            progress = _TSENOR_VADD(progress, taken);
        }
        {
            _TSENOR_ALIGNED_ARRAY(float, p, _TSENOR_LANES);
            int l, any = 0;
            _TSENOR_VSTORE(p, progress);
            for (l = 0; l < L; l++) any |= p[l] > 0.0f;
            if (!any) break;
        }
    }
}

#define _TSENOR_BUCKETS 64          /* value buckets of the greedy order */

typedef struct _tsenor_round_scratch {
    uint64_t *keys, *keys_tmp;    /* m*m sort keys                                    */
    float *gain;                  /* 2m path gains (repair)                            */
    int *pred, *queue, *layer;    /* 2m each                                           */
    int rc[TSENOR_MAX_M], cc[TSENOR_MAX_M];
    int dr[TSENOR_MAX_M], dc[TSENOR_MAX_M];   /* per-bucket counts, kept at zero between uses */
    int start[_TSENOR_BUCKETS + 1];
} _tsenor_round_scratch;

/* Sorts keys descending (stable). Bottom-up merge sort: deterministic, O(k log k). */
static void _tsenor_merge_sort_desc(uint64_t *keys, uint64_t *tmp, int count)
{
    int width, lo;
    uint64_t *src = keys, *dst = tmp;
    for (width = 1; width < count; width *= 2) {
        for (lo = 0; lo < count; lo += 2 * width) {
            int mid = lo + width < count ? lo + width : count;
            int hi = lo + 2 * width < count ? lo + 2 * width : count;
            int p = lo, r = mid, o = lo;
            while (p < mid && r < hi) {          /* branch-free: the comparison is random */
                const uint64_t x = src[p], y = src[r];
                const int take_x = x >= y;
                dst[o++] = take_x ? x : y;
                p += take_x;
                r += 1 - take_x;
            }
            while (p < mid) dst[o++] = src[p++];
            while (r < hi) dst[o++] = src[r++];
        }
        { uint64_t *t = src; src = dst; dst = t; }
    }
    if (src != keys) memcpy(keys, src, (size_t)count * sizeof *keys);
}

/* Puts keys into 64 buckets of [0, vmax] by the float in their top 32 bits (plan or
   normalised |w|), highest bucket first: dst receives the keys bucket by bucket, start[b]
   the offset of bucket b (start[64] = count). Monotone in the key, so bucket order is
   key order. */
static int _tsenor_bucket(float scaled)   /* 0 = highest; NaN (0 * inf) = lowest */
{
    const int b = scaled >= (float)(_TSENOR_BUCKETS - 1) ? _TSENOR_BUCKETS - 1 : scaled >= 0.0f ? (int)scaled : 0;
    return _TSENOR_BUCKETS - 1 - b;
}

static void _tsenor_bucket_keys(const uint64_t *keys, uint64_t *dst, int count, float vmax, int *start)
{
    const float scale = vmax > 0.0f ? (float)_TSENOR_BUCKETS / vmax : 0.0f;
    int k, b;
    if (count <= 24) {   /* a few keys: one bucket, bookkeeping would cost more */
        memcpy(dst, keys, (size_t)count * sizeof *keys);
        start[0] = 0;
        for (b = 1; b <= _TSENOR_BUCKETS; b++) start[b] = count;
        return;
    }
    for (b = 0; b <= _TSENOR_BUCKETS; b++) start[b] = 0;
    for (k = 0; k < count; k++) {
        const uint32_t bits = (uint32_t)(keys[k] >> 32);
        float v;
        memcpy(&v, &bits, sizeof v);
        start[_tsenor_bucket(v * scale) + 1]++;
    }
    for (b = 0; b < _TSENOR_BUCKETS; b++) start[b + 1] += start[b];
    for (k = 0; k < count; k++) {
        const uint32_t bits = (uint32_t)(keys[k] >> 32);
        float v;
        memcpy(&v, &bits, sizeof v);
        b = _tsenor_bucket(v * scale);
        dst[start[b]++] = keys[k];   /* start[b] ends at the next bucket's start */
    }
    for (b = _TSENOR_BUCKETS - 1; b > 0; b--) start[b] = start[b - 1];
    start[0] = 0;
}

/* Sorts a short run of keys descending: insertion sort, merge sort when crowded. */
static void _tsenor_sort_run_desc(uint64_t *q, uint64_t *tmp, int len)
{
    int i, j;
    if (len > 24) {
        _tsenor_merge_sort_desc(q, tmp, len);
        return;
    }
    for (i = 1; i < len; i++) {
        const uint64_t x = q[i];
        for (j = i; j > 0 && q[j - 1] < x; j--) q[j] = q[j - 1];
        q[j] = x;
    }
}

/* Greedy: takes entries in descending order of (primary, secondary, -index) while their
   row and column have budget left. sel holds a preselection (often empty) that greedy
   would take first: every row and column of it keeps <= n and its entries rank above
   all others; s->rc and s->cc hold its counts. Only entries that can still be taken
   are sorted. */
static void _tsenor_greedy(const float *primary, const float *secondary, int m, int n,
                           uint8_t *sel, _tsenor_round_scratch *s)
{
    int i, j, k, b, count = 0;
    float vmax = 0.0f;
    /* _tsenor_greedy_key: primary, then the top bits of secondary, then the lower index */
    for (i = 0; i < m; i++) {
        if (s->rc[i] >= n) continue;
        for (j = 0; j < m; j++) {   /* branch-free append: the condition is random */
            const float v = primary[i * m + j];
            const int take = !sel[i * m + j] & (s->cc[j] < n);
            k = i * m + j;
            s->keys[count] = _tsenor_greedy_key(v, secondary[k], i, j);
            vmax = take && v > vmax ? v : vmax;
            count += take;
        }
    }
    /* bucket by bucket, from the top: drop what lands in a full row or column (greedy
       refuses it), take a bucket whole when the rest of it fits the budgets (greedy
       takes all of it, in whatever order), and sort only the buckets that do not fit */
    _tsenor_bucket_keys(s->keys, s->keys_tmp, count, vmax, s->start);
    for (b = 0; b < _TSENOR_BUCKETS; b++) {
        uint64_t *q = s->keys_tmp + s->start[b];
        const int len = s->start[b + 1] - s->start[b];
        int live = 0, fits = 1;
        for (k = 0; k < len; k++) {
            q[live] = q[k];
            live += s->rc[_tsenor_key_row(q[k])] < n && s->cc[_tsenor_key_col(q[k])] < n;
        }
        if (!live) continue;
        for (k = 0; k < live; k++) {
            s->dr[_tsenor_key_row(q[k])]++;
            s->dc[_tsenor_key_col(q[k])]++;
        }
        for (k = 0; k < live; k++) {
            i = _tsenor_key_row(q[k]);
            j = _tsenor_key_col(q[k]);
            fits &= s->rc[i] + s->dr[i] <= n && s->cc[j] + s->dc[j] <= n;
        }
        for (k = 0; k < live; k++) {
            s->dr[_tsenor_key_row(q[k])] = 0;
            s->dc[_tsenor_key_col(q[k])] = 0;
        }
        if (!fits) _tsenor_sort_run_desc(q, s->keys + s->start[b], live);   /* keys[] is free now */
        for (k = 0; k < live; k++) {
            i = _tsenor_key_row(q[k]);
            j = _tsenor_key_col(q[k]);
            if (s->rc[i] < n && s->cc[j] < n) {
                sel[i * m + j] = 1;
                s->rc[i]++;
                s->cc[j]++;
            }
        }
    }
}

/* The best add-add-remove swap for short row i and short column j: add (i,l) and
   (k,j), drop (k,l). Returns 0 when there is none. */
static int _tsenor_repair_swap(const float *a, int m, uint8_t *sel, int i, int j)
{
    float best = -FLT_MAX;
    int k, l, bk = -1, bl = -1;
    const uint8_t *si = sel + i * m;
    const float *ai = a + i * m;
    for (k = 0; k < m; k++) {
        const uint8_t *sk = sel + k * m;
        const float *ak = a + k * m;
        if (sk[j]) continue;
        for (l = 0; l < m; l++) {   /* branch-free: which l qualify is random */
            const float g = (sk[l] & !si[l]) ? ai[l] + ak[j] - ak[l] : -FLT_MAX;
            const int better = g > best;
            best = better ? g : best;
            bk = better ? k : bk;
            bl = better ? l : bl;
        }
    }
    if (bk < 0) return 0;
    sel[i * m + bl] = 1;
    sel[bk * m + j] = 1;
    sel[bk * m + bl] = 0;
    return 1;
}

/* The same search with the l loop in vectors, for m a multiple of the vector width:
   per lane l the best k (strict >, so the lowest k on ties), then the best lane with
   ties to the lowest (k, l), which is the scalar search's order. Invalid candidates
   get -8 (valid gains lie in [-1, 2]). */
_TSENOR_ALWAYS_INLINE int _tsenor_repair_swap_wide(const float *a, int m, uint8_t *sel, int i, int j)
{
    _TSENOR_VDECLARE_ZERO;
    const int L = _TSENOR_LANES, chunks = m / L;
    const _tsenor_vf half = _TSENOR_VSET1(0.5f), invalid = _TSENOR_VSET1(-8.0f);
    _TSENOR_ALIGNED_ARRAY(float, best, TSENOR_MAX_M);
    _TSENOR_ALIGNED_ARRAY(float, best_k, TSENOR_MAX_M);
    _TSENOR_ALIGNED_ARRAY(float, row_i, TSENOR_MAX_M);
    float top = -4.0f;
    int k, c, l, bk = -1, bl = -1;
    for (c = 0; c < chunks; c++) {   /* a[i][l] where (i,l) is free to add, else invalid */
        const _tsenor_vf si = _TSENOR_VLOAD_U8(sel + i * m + c * L);
        _TSENOR_VSTORE(row_i + c * L, _TSENOR_VBLEND_GT(si, half, invalid, _TSENOR_VLOAD(a + i * m + c * L)));
        _TSENOR_VSTORE(best + c * L, invalid);
        _TSENOR_VSTORE(best_k + c * L, _TSENOR_VSET1(-1.0f));
    }
    for (k = 0; k < m; k++) {
        const float *ak = a + k * m;
        const _tsenor_vf akj = _TSENOR_VSET1(ak[j]), kf = _TSENOR_VSET1((float)k);
        if (sel[k * m + j]) continue;
        for (c = 0; c < chunks; c++) {
            const _tsenor_vf sk = _TSENOR_VLOAD_U8(sel + k * m + c * L);
            const _tsenor_vf g = _TSENOR_VBLEND_GT(sk, half, _TSENOR_VSUB(_TSENOR_VADD(_TSENOR_VLOAD(row_i + c * L), akj),
                                                                          _TSENOR_VLOAD(ak + c * L)), invalid);
            const _tsenor_vf b = _TSENOR_VLOAD(best + c * L);
            _TSENOR_VSTORE(best_k + c * L, _TSENOR_VBLEND_GT(g, b, kf, _TSENOR_VLOAD(best_k + c * L)));
            _TSENOR_VSTORE(best + c * L, _TSENOR_VMAX(b, g));
        }
    }
    for (l = 0; l < m; l++) {
        const int kl = (int)best_k[l];
        if (best[l] > top || (best[l] == top && kl < bk)) { top = best[l]; bk = kl; bl = l; }
    }
    if (bk < 0) return 0;
    sel[i * m + bl] = 1;
    sel[bk * m + j] = 1;
    sel[bk * m + bl] = 0;
    return 1;
}

/* Repair: while a row keeps fewer than n, augment along the best-gain shortest path
   from a short row to a short column in the residual graph (row->col over unselected
   entries, col->row over selected ones). A length-1 path adds one entry; length 3 is
   the add-add-remove swap; longer paths are rare. One always exists while the
   selection is not perfect (max-flow), so this terminates with every row and column
   at exactly n. Nodes: rows 0..m-1, columns m..2m-1. */
static void _tsenor_repair(const float *a, int m, int n, uint8_t *sel, _tsenor_round_scratch *s)
{
    int *pred = s->pred, *layer = s->layer, *queue = s->queue;
    float *gain = s->gain;
    for (;;) {
        int v, head = 0, tail = 0, best = -1, depth, c;
        for (v = 0; v < m; v++) if (s->rc[v] < n) break;
        if (v == m) return;
        /* after greedy every short row and short column already share an entry, so the
           path is almost always add-add-remove: try that first, on the first short pair */
        for (c = 0; c < m; c++) if (s->cc[c] < n) break;
        if (c < m && sel[v * m + c] &&
            (m % _TSENOR_LANES == 0 ? _tsenor_repair_swap_wide(a, m, sel, v, c) : _tsenor_repair_swap(a, m, sel, v, c))) {
            s->rc[v]++;
            s->cc[c]++;
            continue;
        }
        for (v = 0; v < 2 * m; v++) { layer[v] = -1; pred[v] = -1; }
        for (v = 0; v < m; v++)
            if (s->rc[v] < n) { layer[v] = 0; gain[v] = 0.0f; queue[tail++] = v; }
        /* layered BFS: process one full layer at a time, keep the best gain per node */
        for (depth = 0; head < tail && best < 0; depth++) {
            int layer_end = tail;
            for (; head < layer_end; head++) {
                int u = queue[head];
                if (u < m) {                       /* row u -> column j, unselected */
                    int j;
                    for (j = 0; j < m; j++) {
                        int c = m + j;
                        float g = gain[u] + a[u * m + j];
                        if (sel[u * m + j]) continue;
                        if (layer[c] < 0) { layer[c] = depth + 1; gain[c] = g; pred[c] = u; queue[tail++] = c; }
                        else if (layer[c] == depth + 1 && g > gain[c]) { gain[c] = g; pred[c] = u; }
                    }
                } else {                           /* column -> row i, selected */
                    int i, j = u - m;
                    for (i = 0; i < m; i++) {
                        float g = gain[u] - a[i * m + j];
                        if (!sel[i * m + j]) continue;
                        if (layer[i] < 0) { layer[i] = depth + 1; gain[i] = g; pred[i] = u; queue[tail++] = i; }
                        else if (layer[i] == depth + 1 && g > gain[i]) { gain[i] = g; pred[i] = u; }
                    }
                }
            }
            for (v = head; v < tail; v++) {
                int c = queue[v];
                if (c >= m && s->cc[c - m] < n && (best < 0 || gain[c] > gain[best])) best = c;
            }
        }
        TSENOR_ASSERT(best >= 0);
        if (best < 0) return;
        s->cc[best - m]++;
        for (v = best; pred[v] >= 0; v = pred[v]) {
            int u = pred[v];
            if (u < m) sel[u * m + (v - m)] = 1;     /* row u -> column v: add    */
            else sel[v * m + (u - m)] = 0;           /* column u -> row v: remove */
            if (pred[u] < 0) s->rc[u]++;             /* the path's start row      */
        }
    }
}

/* ---------------------------------------------------------------------------------
   Local search: best-improvement 2x2 swaps (drop (i,j),(k,l), keep (k,j),(i,l)) that
   raise the kept magnitude, at most `steps` per block, 16 blocks at a time. For a row
   pair (i,k) with d_j = a_kj - a_ij the best swap gains
       max{ d_j : j kept in row i only } - min{ d_l : l kept in row k only },
   so one scan over all pairs is O(m^3) vertical vector operations for 16 blocks.
   The scan reads two sentinel copies of a instead of a and the selection:
       kept_ij = a_ij if (i,j) is kept, else +BIG;  unkept_ij = a_ij if not, else -BIG,
   so that unkept_kj - kept_ij is d_j where j is kept in row i only and below -BIG/2
   elsewhere, and the second term is max_l (unkept_il - kept_kl) = -min d_l (float
   subtraction is antisymmetric). Valid pairs get bit for bit the gains of the direct
   formula, invalid ones stay below -BIG/2, so the swaps taken are the same; each
   (i,k,j) costs 4 loads, 2 subtractions and 2 maxima instead of 4 loads and 8 compare,
   blend and min/max operations. `kept` lives in x (the plan is spent by then).
   --------------------------------------------------------------------------------- */
#define _TSENOR_LS_BIG 1e30f

_TSENOR_ALWAYS_INLINE void _tsenor_swap_sentinels(const _tsenor_lanes *g, int mm)
{
    _TSENOR_VDECLARE_ZERO;
    const int L = _TSENOR_LANES;
    const _tsenor_vf big = _TSENOR_VSET1(_TSENOR_LS_BIG), nbig = _TSENOR_VSET1(-_TSENOR_LS_BIG);
    const _tsenor_vf half = _TSENOR_VSET1(0.5f);
    int k;
    for (k = 0; k < mm; k++) {
        const _tsenor_vf a = _TSENOR_VLOAD(g->a + k * L), s = _TSENOR_VLOAD(g->sel + k * L);
        _TSENOR_VSTORE(g->x + k * L, _TSENOR_VBLEND_GT(s, half, a, big));
        _TSENOR_VSTORE(g->unkept + k * L, _TSENOR_VBLEND_GT(s, half, nbig, a));
    }
}

/* The scan in cache-sized pieces: a group's kept and unkept are 128 KiB for m = 32, more
   than L1, so four rows i share each load of row k (their rows stay in L1), and the
   gains go to a table that is then searched in (i, k) order: the same pair as one
   ordered scan, ties to the first. */
#define _TSENOR_SWAP_ROWS 4

_TSENOR_ALWAYS_INLINE void _tsenor_swap_scan(const _tsenor_lanes *g, int m, float *best_gain, float *best_pair)
{
    _TSENOR_VDECLARE_ZERO;
    const int L = _TSENOR_LANES, R = _TSENOR_SWAP_ROWS;
    const float *_TSENOR_RESTRICT kept = g->x;
    const float *_TSENOR_RESTRICT unkept = g->unkept;
    float *_TSENOR_RESTRICT table = g->pair_gain;
    const _tsenor_vf nbig = _TSENOR_VSET1(-_TSENOR_LS_BIG), nbig4 = _TSENOR_VSET1(-4.0f * _TSENOR_LS_BIG);
    _tsenor_vf best = nbig4, pair = _TSENOR_VSET1(-1.0f);
    int i0, i, k, j, q, p;
    for (i0 = 0; i0 < m - 1; i0 += R) {
        int row[_TSENOR_SWAP_ROWS];
        for (q = 0; q < R; q++) row[q] = i0 + q < m ? i0 + q : i0;   /* past the end: read, never kept */
        for (k = i0 + 1; k < m; k++) {
            _tsenor_vf gmax[_TSENOR_SWAP_ROWS], gneg[_TSENOR_SWAP_ROWS];
            for (q = 0; q < R; q++) gmax[q] = gneg[q] = nbig;
            for (j = 0; j < m; j++) {
                const _tsenor_vf uk = _TSENOR_VLOAD(unkept + (k * m + j) * L), kk = _TSENOR_VLOAD(kept + (k * m + j) * L);
                for (q = 0; q < R; q++) {
                    const int ij = (row[q] * m + j) * L;
                    gmax[q] = _TSENOR_VMAX(gmax[q], _TSENOR_VSUB(uk, _TSENOR_VLOAD(kept + ij)));
                    gneg[q] = _TSENOR_VMAX(gneg[q], _TSENOR_VSUB(_TSENOR_VLOAD(unkept + ij), kk));
                }
            }
            for (q = 0; q < R && i0 + q < k; q++) {
                i = i0 + q;
                _TSENOR_VSTORE(table + (i * (2 * m - i - 1) / 2 + (k - i - 1)) * L, _TSENOR_VADD(gmax[q], gneg[q]));
            }
        }
    }
    for (i = 0, p = 0; i < m; i++)
        for (k = i + 1; k < m; k++, p++) {
            const _tsenor_vf gain = _TSENOR_VLOAD(table + p * L);
            pair = _TSENOR_VBLEND_GT(gain, best, _TSENOR_VSET1((float)(i * m + k)), pair);
            best = _TSENOR_VMAX(best, gain);
        }
    _TSENOR_VSTORE(best_gain, best);
    _TSENOR_VSTORE(best_pair, pair);
}

/* Moves entry k of lane l into (on != 0) or out of the selection. */
static void _tsenor_swap_set(const _tsenor_lanes *g, int k, int l, int on)
{
    const int at = k * _TSENOR_LANES + l;
    g->sel[at] = on ? 1.0f : 0.0f;
    g->x[at] = on ? g->a[at] : _TSENOR_LS_BIG;
    g->unkept[at] = on ? -_TSENOR_LS_BIG : g->a[at];
}

/* Applies lane l's swap for row pair (i,k): the j and l of the scan, lowest index on ties. */
static void _tsenor_apply_swap(const _tsenor_lanes *g, int m, int l, int i, int k)
{
    const int L = _TSENOR_LANES;
    float dmax = -FLT_MAX, dmin = FLT_MAX;
    int j, j1 = -1, j2 = -1;
    for (j = 0; j < m; j++) {
        const int ij = (i * m + j) * L + l, kj = (k * m + j) * L + l;
        const float d = g->a[kj] - g->a[ij];
        if (g->sel[ij] > 0.5f && g->sel[kj] < 0.5f && d > dmax) { dmax = d; j1 = j; }
        if (g->sel[kj] > 0.5f && g->sel[ij] < 0.5f && d < dmin) { dmin = d; j2 = j; }
    }
    TSENOR_ASSERT(j1 >= 0 && j2 >= 0);
    if (j1 < 0 || j2 < 0) return;
    _tsenor_swap_set(g, i * m + j1, l, 0);
    _tsenor_swap_set(g, k * m + j1, l, 1);
    _tsenor_swap_set(g, k * m + j2, l, 0);
    _tsenor_swap_set(g, i * m + j2, l, 1);
}

_TSENOR_ALWAYS_INLINE void _tsenor_local_search(const _tsenor_lanes *g, int m, int lanes, int steps)
{
    _TSENOR_ALIGNED_ARRAY(float, gain, _TSENOR_LANES);
    _TSENOR_ALIGNED_ARRAY(float, pair, _TSENOR_LANES);
    int left[_TSENOR_LANES], l;
    for (l = 0; l < _TSENOR_LANES; l++) left[l] = l < lanes ? steps : 0;
    _tsenor_swap_sentinels(g, m * m);
    for (;;) {
        int any = 0;
        _tsenor_swap_scan(g, m, gain, pair);
        for (l = 0; l < lanes; l++) {
            if (left[l] > 0 && gain[l] > _TSENOR_LS_MIN_GAIN) {
                const int p = (int)pair[l];
                _tsenor_apply_swap(g, m, l, p / m, p % m);
                left[l]--;
                any = 1;
            } else {
                left[l] = 0;
            }
        }
        if (!any) return;
    }
}

/* ---------------------------------------------------------------------------------
   Exact solver. The block problem is a min-cost flow (rows supply n, columns demand n,
   unit arcs). Two perfect selections differ by a circulation of the row/column arcs,
   so a feasible selection is optimal iff its residual graph has no negative cycle.
   We start from greedy + repair + local search and cancel negative cycles found by
   Bellman-Ford (in double, on the exact |w|) until none is left. The final distances
   are the dual certificate: with u_i = d(row i), v_j = -d(col j), every kept entry has
   a_ij - u_i - v_j >= 0 and every pruned entry <= 0.
   --------------------------------------------------------------------------------- */
typedef struct _tsenor_exact_scratch {
    double *dist;                 /* 2m */
    int *pred, *stamp;            /* 2m */
    int *queue;                   /* 2m, the warm start's only                              */
    uint8_t *queued;              /* 2m, the warm start's only                              */
} _tsenor_exact_scratch;

/* A cycle of the predecessor graph (2m nodes), the node it was entered at, or -1. */
static int _tsenor_pred_cycle(const int *pred, int *stamp, int V)
{
    int v, at = -1;
    for (v = 0; v < V; v++) stamp[v] = -1;
    for (v = 0; v < V && at < 0; v++) {
        int u = v;
        while (u >= 0 && stamp[u] < 0) { stamp[u] = v; u = pred[u]; }
        if (u >= 0 && stamp[u] == v) at = u;
    }
    return at;
}

/* Walks the cycle through `at` once to check its gain, then flips it (1); 0 when the gain
   is float noise only (the selection is already optimal). */
static int _tsenor_flip_cycle(const double *a, int m, uint8_t *sel, const int *pred, int at, double eps)
{
    double gain = 0.0;
    int u = at;
    do {
        int p = pred[u];
        gain += p < m ? a[p * m + (u - m)] : -a[u * m + (p - m)];
        u = p;
    } while (u != at);
    if (!(gain > eps)) return 0;
    u = at;
    do {
        int p = pred[u];
        if (p < m) sel[p * m + (u - m)] = 1; else sel[u * m + (p - m)] = 0;
        u = p;
    } while (u != at);
    return 1;
}

/* Cancels negative cycles until optimal. a: exact |w| (m*m, double). sel: a perfect
   selection, improved in place. row_pot/col_pot (may be NULL): the certificate.
   Returns the number of cycles cancelled. */
static int _tsenor_exact_improve(const double *a, int m, uint8_t *sel, _tsenor_exact_scratch *s,
                                 double *row_pot, double *col_pot)
{
    double *d = s->dist;
    int *pred = s->pred, *stamp = s->stamp;
    double amax = 0.0, eps;
    int k, cycles = 0, V = 2 * m;
    for (k = 0; k < m * m; k++) if (a[k] > amax) amax = a[k];
    eps = amax * 1e-12;

    for (;;) {
        int pass, changed = 1, cycle_at = -1;
        for (k = 0; k < V; k++) { d[k] = 0.0; pred[k] = -1; }
        for (pass = 0; changed && cycle_at < 0; pass++) {
            int i, j;
            changed = 0;
            for (i = 0; i < m; i++) {
                for (j = 0; j < m; j++) {
                    const double w = a[i * m + j];
                    if (!sel[i * m + j]) {        /* row i -> col j, cost -w */
                        if (d[i] - w < d[m + j] - eps) { d[m + j] = d[i] - w; pred[m + j] = i; changed = 1; }
                    } else {                      /* col j -> row i, cost +w */
                        if (d[m + j] + w < d[i] - eps) { d[i] = d[m + j] + w; pred[i] = m + j; changed = 1; }
                    }
                }
            }
            if (!changed) break;
            /* a cycle in the predecessor graph is a negative cycle */
            cycle_at = _tsenor_pred_cycle(pred, stamp, V);
            if (pass > 4 * V) break;                /* cannot happen; guards float noise */
        }
        if (cycle_at < 0 || !_tsenor_flip_cycle(a, m, sel, pred, cycle_at, eps)) break;
        cycles++;
    }
    if (row_pot) for (k = 0; k < m; k++) row_pot[k] = d[k];
    if (col_pot) for (k = 0; k < m; k++) col_pot[k] = -d[m + k];
    return cycles;
}

/* The same from a previous certificate (row_pot/col_pot, in and out): a label-correcting
   search with a FIFO queue of the rows and columns whose label fell, so that the work
   follows what the change of a disturbed: about one scan of the m*m arcs when the
   selection is still optimal. Any start converges, and a cycle of predecessors is still
   a negative cycle; after each cancellation the search goes on from the labels it has.
   Returns the number of cycles cancelled. */
static int _tsenor_exact_improve_warm(const double *a, int m, uint8_t *sel, _tsenor_exact_scratch *s,
                                      double *row_pot, double *col_pot)
{
    double *d = s->dist;
    int *pred = s->pred, *stamp = s->stamp, *queue = s->queue;
    uint8_t *queued = s->queued;
    double amax = 0.0, eps;
    int k, cycles = 0, V = 2 * m;
    long budget = 64L * V * V;            /* pops; cannot run out but for float noise */
    for (k = 0; k < m * m; k++) if (a[k] > amax) amax = a[k];
    eps = amax * 1e-12;
    for (k = 0; k < m; k++) { d[k] = row_pot[k]; d[m + k] = -col_pot[k]; }

    for (;;) {
        int head = 0, count = V, pops = 0, cycle_at = -1;
        for (k = 0; k < V; k++) { pred[k] = -1; queue[k] = k; queued[k] = 1; }
        while (count > 0 && cycle_at < 0 && budget-- > 0) {
            const int u = queue[head];
            int t;
            head = head + 1 == V ? 0 : head + 1;
            count--;
            queued[u] = 0;
            if (u < m) {                          /* row u -> col t over pruned entries, cost -a */
                const double *ar = a + u * m;
                const uint8_t *sr = sel + u * m;
                for (t = 0; t < m; t++)
                    if (!sr[t] && d[u] - ar[t] < d[m + t] - eps) {
                        d[m + t] = d[u] - ar[t];
                        pred[m + t] = u;
                        if (!queued[m + t]) { queue[(head + count) % V] = m + t; queued[m + t] = 1; count++; }
                    }
            } else {                              /* col j -> row t over kept entries, cost +a */
                const int j = u - m;
                for (t = 0; t < m; t++)
                    if (sel[t * m + j] && d[u] + a[t * m + j] < d[t] - eps) {
                        d[t] = d[u] + a[t * m + j];
                        pred[t] = u;
                        if (!queued[t]) { queue[(head + count) % V] = t; queued[t] = 1; count++; }
                    }
            }
            if (++pops % V == 0) cycle_at = _tsenor_pred_cycle(pred, stamp, V);   /* negative */
        }
        if (cycle_at < 0 || !_tsenor_flip_cycle(a, m, sel, pred, cycle_at, eps)) break;
        cycles++;
    }
    for (k = 0; k < m; k++) { row_pot[k] = d[k]; col_pot[k] = -d[m + k]; }
    return cycles;
}

/* ---------------------------------------------------------------------------------
   Row-wise N:M (not transposable): top n of every m consecutive entries of a row;
   ties go to the lower index; a partial group at the right edge keeps min(n, len).
   16 groups of a row at a time, one per lane: entry j of every group is one vector,
   and its rank is counted with vertical compares (O(m) vector ops per entry).
   --------------------------------------------------------------------------------- */
_TSENOR_ALWAYS_INLINE void _tsenor_rank(const float *_TSENOR_RESTRICT v, float *_TSENOR_RESTRICT keep,
                                               int m, int n, float *group_total, float *group_kept)
{
    _TSENOR_VDECLARE_ZERO;
    const int L = _TSENOR_LANES;
    const _tsenor_vf one = _TSENOR_VSET1(1.0f), zero = _TSENOR_VSET1(0.0f), vn = _TSENOR_VSET1((float)n);
    const _tsenor_vf scale = _TSENOR_VSET1(_TSENOR_ROWWISE_SUM_SCALE);
    _tsenor_vf tot = zero, kept = zero;
    int j, k;
    for (j = 0; j < m; j++) {
        const _tsenor_vf vj = _TSENOR_VLOAD(v + j * L);
        _tsenor_vf beaten_by = zero;
        for (k = 0; k < j; k++)           /* earlier entries win ties */
            beaten_by = _TSENOR_VADD(beaten_by, _TSENOR_VBLEND_GT(vj, _TSENOR_VLOAD(v + k * L), zero, one));
        for (k = j + 1; k < m; k++)
            beaten_by = _TSENOR_VADD(beaten_by, _TSENOR_VBLEND_GT(_TSENOR_VLOAD(v + k * L), vj, one, zero));
        {
            const _tsenor_vf kj = _TSENOR_VBLEND_GT(vn, beaten_by, one, zero);
            const _tsenor_vf aj = _TSENOR_VMUL(_TSENOR_VMAX(vj, zero), scale);
            _TSENOR_VSTORE(keep + j * L, kj);
            tot = _TSENOR_VADD(tot, aj);                 /* padding (-1) adds nothing */
            kept = _TSENOR_VADD(kept, _TSENOR_VMUL(aj, kj));
        }
    }
    _TSENOR_VSTORE(group_total, tot);
    _TSENOR_VSTORE(group_kept, kept);
}

/* ---------------------------------------------------------------------------------
   Drivers: validation, per-thread scratch, the parallel loop over groups of blocks.
   --------------------------------------------------------------------------------- */
typedef struct _tsenor_problem {
    const void *w;
    tsenor_dtype dt;
    size_t rows, cols, ld, mask_ld;
    uint8_t *mask;
    size_t block_rows, block_cols, blocks, groups;
    _tsenor_config cfg;
    struct _tsenor_potentials *warm;  /* NULL, or TSENOR's potentials kept between calls */
} _tsenor_problem;

typedef struct _tsenor_thread {   /* everything one thread needs: O(m^2) */
    _tsenor_lanes lanes;                   /* lanes layout, aligned              */
    float *plan, *ablk;                    /* one block, contiguous              */
    double *aexact;                        /* one block, exact |w|               */
    uint8_t *sel, *sel0;                   /* selection, and the preselection    */
    _tsenor_round_scratch round;
    _tsenor_exact_scratch exact;
    double kept, total;
} _tsenor_thread;

static _tsenor_block _tsenor_block_of(const _tsenor_problem *P, size_t b)
{
    return _tsenor_block_at(b, P->block_cols, P->cfg.m, P->rows, P->cols);
}

static size_t _tsenor_align_up(size_t v) { return (v + _TSENOR_ALIGN - 1) & ~(size_t)(_TSENOR_ALIGN - 1); }

/* Lays one thread's scratch out from p and returns its size in bytes; with p NULL it
   only measures (the same list sizes and binds). */
static size_t _tsenor_thread_layout(_tsenor_thread *t, unsigned char *p, int m)
{
    const size_t mm = (size_t)m * (size_t)m, L = _TSENOR_LANES, m2 = 2 * (size_t)m;
    size_t at = 0;
#define _TSENOR_TAKE(type, field, count)                                   \
    do {                                                                   \
        if (p) field = (type *)(void *)(p + at);                           \
        at += _tsenor_align_up((count) * sizeof(type));                    \
    } while (0)
    _TSENOR_TAKE(float, t->lanes.a, mm * L);
    _TSENOR_TAKE(float, t->lanes.x, mm * L);
    _TSENOR_TAKE(float, t->lanes.sel, mm * L);
    _TSENOR_TAKE(float, t->lanes.unkept, mm * L);
    _TSENOR_TAKE(float, t->lanes.pair_gain, (size_t)m * (size_t)(m - 1) / 2 * L);
    _TSENOR_TAKE(float, t->lanes.alpha, (size_t)m * L);
    _TSENOR_TAKE(float, t->lanes.beta, (size_t)m * L);
    _TSENOR_TAKE(float, t->lanes.u, (size_t)m * L);
    _TSENOR_TAKE(float, t->lanes.v, (size_t)m * L);
    _TSENOR_TAKE(float, t->lanes.colsum, (size_t)m * L);
    _TSENOR_TAKE(float, t->lanes.rowcnt, (size_t)m * L);
    _TSENOR_TAKE(float, t->lanes.colcnt, (size_t)m * L);
    _TSENOR_TAKE(float, t->lanes.sum_total, (size_t)m * L);
    _TSENOR_TAKE(float, t->lanes.sum_kept, (size_t)m * L);
    _TSENOR_TAKE(float, t->plan, mm);
    _TSENOR_TAKE(float, t->ablk, mm);
    _TSENOR_TAKE(double, t->aexact, mm);
    _TSENOR_TAKE(uint8_t, t->sel, mm);
    _TSENOR_TAKE(uint8_t, t->sel0, mm);
    _TSENOR_TAKE(uint64_t, t->round.keys, mm);
    _TSENOR_TAKE(uint64_t, t->round.keys_tmp, mm);
    _TSENOR_TAKE(float, t->round.gain, m2);
    _TSENOR_TAKE(int, t->round.pred, m2);
    _TSENOR_TAKE(int, t->round.queue, m2);
    _TSENOR_TAKE(int, t->round.layer, m2);
    _TSENOR_TAKE(double, t->exact.dist, m2);
    _TSENOR_TAKE(int, t->exact.pred, m2);
    _TSENOR_TAKE(int, t->exact.stamp, m2);
#undef _TSENOR_TAKE
    if (p) {
        memset(t->round.dr, 0, sizeof t->round.dr);
        memset(t->round.dc, 0, sizeof t->round.dc);
        t->kept = t->total = 0.0;
    }
    return at;
}

/* Per row of every lane: sum of a and sum of a over the selection (m terms in float;
   the caller adds the rows up in double). */
_TSENOR_ALWAYS_INLINE void _tsenor_row_sums(const _tsenor_lanes *g, int m, float *row_total, float *row_kept)
{
    _TSENOR_VDECLARE_ZERO;
    const int L = _TSENOR_LANES;
    int i, j;
    for (i = 0; i < m; i++) {
        _tsenor_vf tot = _TSENOR_VSET1(0.0f), kept = _TSENOR_VSET1(0.0f);
        for (j = 0; j < m; j++) {
            const _tsenor_vf a = _TSENOR_VLOAD(g->a + (i * m + j) * L);
            tot = _TSENOR_VADD(tot, a);
            kept = _TSENOR_VADD(kept, _TSENOR_VMUL(a, _TSENOR_VLOAD(g->sel + (i * m + j) * L)));
        }
        _TSENOR_VSTORE(row_total + i * L, tot);
        _TSENOR_VSTORE(row_kept + i * L, kept);
    }
}

/* Moves one lane's block between the lanes layout and a contiguous m*m array. */
static void _tsenor_lane_sel_get(const float *sel, int mm, int l, uint8_t *dst)
{
    int k;
    for (k = 0; k < mm; k++) dst[k] = sel[k * _TSENOR_LANES + l] > 0.5f;
}

static void _tsenor_lane_sel_put(float *sel, int mm, int l, const uint8_t *src)
{
    int k;
    for (k = 0; k < mm; k++) sel[k * _TSENOR_LANES + l] = src[k] ? 1.0f : 0.0f;
}

/* The vector kernels with m as a compile-time constant for the common sizes, so the
   compiler unrolls the inner loops (m = 4, 8, 16, 32); any other m runs the generic loop. */
#define _TSENOR_WITH_CONSTANT_M(m, call_with_M) \
    switch (m) {                                \
    case 4: { enum { M = 4 }; call_with_M; } break;   \
    case 8: { enum { M = 8 }; call_with_M; } break;   \
    case 16: { enum { M = 16 }; call_with_M; } break; \
    case 32: { enum { M = 32 }; call_with_M; } break; \
    default: { const int M = m; call_with_M; } break; \
    }

/* One row of ROWWISE: 16 groups per pass. Padding is -1 so that it never outranks
   a real entry. */
_TSENOR_ALWAYS_INLINE void _tsenor_solve_row(const _tsenor_problem *P, size_t r, _tsenor_thread *t)
{
    const int m = P->cfg.m, n = P->cfg.n, L = _TSENOR_LANES;
    const size_t groups = (P->cols + (size_t)m - 1) / (size_t)m, at = r * P->ld;
    uint8_t *out = P->mask + r * P->mask_ld;
    float *v = t->lanes.a, *keep = t->lanes.sel;
    size_t g0;
    for (g0 = 0; g0 < groups; g0 += (size_t)L) {
        const int lanes = groups - g0 < (size_t)L ? (int)(groups - g0) : L;
        int l, j;
        for (j = 0; j < m * L; j++) v[j] = -1.0f;
        for (l = 0; l < lanes; l++) {
            const size_t c0 = (g0 + (size_t)l) * (size_t)m;
            const int len = P->cols - c0 < (size_t)m ? (int)(P->cols - c0) : m;
            _tsenor_load_abs(P->w, P->dt, at + c0, len, v + l, L);
        }
        _TSENOR_WITH_CONSTANT_M(m, _tsenor_rank(v, keep, M, n, t->lanes.sum_total, t->lanes.sum_kept));
        for (l = 0; l < lanes; l++) {
            const size_t c0 = (g0 + (size_t)l) * (size_t)m;
            const int len = P->cols - c0 < (size_t)m ? (int)(P->cols - c0) : m;
            for (j = 0; j < len; j++) out[c0 + (size_t)j] = (uint8_t)(keep[j * L + l] > 0.5f);
            t->total += (double)t->lanes.sum_total[l] / (double)_TSENOR_ROWWISE_SUM_SCALE;
            t->kept += (double)t->lanes.sum_kept[l] / (double)_TSENOR_ROWWISE_SUM_SCALE;
        }
    }
}

/* ---------------------------------------------------------------------------------
   Warm starts. A caller that solves a slowly changing matrix again and again (ALPS's
   projection) keeps every block's final potentials, in units of |w| so that a change of
   the block's maximum does not matter. The next call starts each block from them at the
   final tau and runs `iterations` sweeps instead of the whole epsilon-scaling schedule.
   The blocks are the same tiling of the same shape, so block b's potentials are its own.
   --------------------------------------------------------------------------------- */
typedef struct _tsenor_potentials {
    float *alpha_beta;            /* 2m per block: alpha, then beta, times the block max   */
    size_t blocks;
    int m;
    int ready;                    /* the store holds a finished call's potentials         */
    int iterations;               /* sweeps of a warm-started call                        */
} _tsenor_potentials;

static void _tsenor_potentials_load(const _tsenor_potentials *wp, const _tsenor_lanes *g, int m, size_t first,
                                    int lanes, const float *block_max)
{
    const int L = _TSENOR_LANES;
    int l, i;
    for (l = 0; l < lanes; l++) {
        const float *ab = wp->alpha_beta + (first + (size_t)l) * 2 * (size_t)m;
        const float scale = block_max[l] > 0.0f ? block_max[l] : 1.0f;
        for (i = 0; i < m; i++) {
            g->alpha[i * L + l] = ab[i] / scale;
            g->beta[i * L + l] = ab[m + i] / scale;
        }
    }
    for (l = lanes; l < L; l++)       /* unused lanes: any finite start */
        for (i = 0; i < m; i++) g->alpha[i * L + l] = g->beta[i * L + l] = 0.0f;
}

static void _tsenor_potentials_save(_tsenor_potentials *wp, const _tsenor_lanes *g, int m, size_t first, int lanes,
                                    const float *block_max)
{
    const int L = _TSENOR_LANES;
    int l, i;
    for (l = 0; l < lanes; l++) {
        float *ab = wp->alpha_beta + (first + (size_t)l) * 2 * (size_t)m;
        const float scale = block_max[l] > 0.0f ? block_max[l] : 1.0f;
        for (i = 0; i < m; i++) {
            ab[i] = g->alpha[i * L + l] * scale;
            ab[m + i] = g->beta[i * L + l] * scale;
        }
    }
}

/* Solves the 16 blocks of group g and writes their masks. */
_TSENOR_ALWAYS_INLINE void _tsenor_solve_group(const _tsenor_problem *P, size_t g, _tsenor_thread *t)
{
    const int m = P->cfg.m, n = P->cfg.n, mm = m * m, L = _TSENOR_LANES;
    const tsenor_method method = P->cfg.method;
    const size_t first = g * (size_t)L;
    const int lanes = P->blocks - first < (size_t)L ? (int)(P->blocks - first) : L;
    _tsenor_lanes *G = &t->lanes;
    _TSENOR_ALIGNED_ARRAY(float, block_max, _TSENOR_LANES);
    _TSENOR_ALIGNED_ARRAY(float, theta, _TSENOR_LANES);
    int l, i, j, k;

    /* gather |w| of every lane's block; padding and unused lanes are zero */
    memset(G->a, 0, (size_t)mm * L * sizeof(float));
    for (l = 0; l < lanes; l++) {
        const _tsenor_block B = _tsenor_block_of(P, first + (size_t)l);
        for (i = 0; i < B.rows; i++)
            _tsenor_load_abs(P->w, P->dt, (B.r0 + (size_t)i) * P->ld + B.c0, B.cols, G->a + (size_t)i * m * L + l, L);
    }
    _tsenor_normalize(G->a, mm, block_max);

    /* the order greedy rounds in: TSENOR's plan, or |w| itself (GREEDY, EXACT's start) */
    if (method == TSENOR_METHOD_TSENOR) {
        _tsenor_schedule sc;
        sc.n = n;
        sc.iterations = P->cfg.iterations;
        sc.tau = P->cfg.tau;
        sc.tau_start = P->cfg.tau_start;
        sc.warm_iterations = P->warm && P->warm->ready ? P->warm->iterations : 0;
        if (sc.warm_iterations > 0) _tsenor_potentials_load(P->warm, G, m, first, lanes, block_max);
        _TSENOR_WITH_CONSTANT_M(m, _tsenor_dykstra(G, &sc, M));
        if (P->warm) {
            _TSENOR_WITH_CONSTANT_M(m, _tsenor_fold_scalings(G, M, sc.tau));
            _tsenor_potentials_save(P->warm, G, m, first, lanes, block_max);
        }
    } else {
        memcpy(G->x, G->a, (size_t)mm * L * sizeof(float));
    }
    _TSENOR_WITH_CONSTANT_M(m, (_tsenor_fit_threshold(G, M, n, theta), _tsenor_select_above(G, M * M, theta),
                                _tsenor_greedy_rounds(G, M, n)));

    /* greedy rounding + repair from the preselection; perfect preselections are done */
    for (l = 0; l < lanes; l++) {
        int perfect = 1;
        for (i = 0; i < m; i++)
            perfect &= G->rowcnt[i * L + l] == (float)n && G->colcnt[i * L + l] == (float)n;
        if (perfect) continue;
        for (k = 0; k < mm; k++) {          /* one pass: plan (-1 where not live), selection, its copy */
            const uint8_t in = G->sel[k * L + l] > 0.5f;
            t->plan[k] = G->x[k * L + l];
            t->ablk[k] = G->a[k * L + l];
            t->sel[k] = in;
            t->sel0[k] = in;
        }
        for (i = 0; i < m; i++) {
            t->round.rc[i] = (int)G->rowcnt[i * L + l];
            t->round.cc[i] = (int)G->colcnt[i * L + l];
        }
        _tsenor_greedy(t->plan, t->ablk, m, n, t->sel, &t->round);
        _tsenor_repair(t->ablk, m, n, t->sel, &t->round);
        for (k = 0; k < mm; k++)            /* write back what changed */
            if (t->sel[k] != t->sel0[k]) G->sel[k * L + l] = (float)t->sel[k];
    }

    if (method == TSENOR_METHOD_TSENOR && P->cfg.local_search_steps > 0)
        _TSENOR_WITH_CONSTANT_M(m, _tsenor_local_search(G, M, lanes, P->cfg.local_search_steps));
    /* a cheap local search leaves fewer negative cycles for the exact solver */
    if (method == TSENOR_METHOD_EXACT) _TSENOR_WITH_CONSTANT_M(m, _tsenor_local_search(G, M, lanes, 4 * m));

    /* exact: the optimal selection of every lane, from the start above */
    for (l = 0; l < lanes && method == TSENOR_METHOD_EXACT; l++) {
        const _tsenor_block B = _tsenor_block_of(P, first + (size_t)l);
        _tsenor_lane_sel_get(G->sel, mm, l, t->sel);
        for (k = 0; k < mm; k++) t->aexact[k] = 0.0;
        for (i = 0; i < B.rows; i++)
            for (j = 0; j < B.cols; j++)
                t->aexact[i * m + j] = _tsenor_abs_at(P->w, P->dt, (B.r0 + (size_t)i) * P->ld + B.c0 + (size_t)j);
        _tsenor_exact_improve(t->aexact, m, t->sel, &t->exact, NULL, NULL);
        _tsenor_lane_sel_put(G->sel, mm, l, t->sel);
    }

    /* write the masks; report sums in double from a * block max (within a float ulp of |w|).
       Zero padding adds nothing, so whole rows can be summed. */
    _tsenor_row_sums(G, m, G->sum_total, G->sum_kept);
    for (l = 0; l < lanes; l++) {
        const _tsenor_block B = _tsenor_block_of(P, first + (size_t)l);
        double kept = 0.0, total = 0.0;
        for (i = 0; i < B.rows; i++) {
            uint8_t *out = P->mask + (B.r0 + (size_t)i) * P->mask_ld + B.c0;
            const float *sl = G->sel + (size_t)i * m * L + l;
            for (j = 0; j < B.cols; j++) out[j] = (uint8_t)(sl[j * L] > 0.5f);
            total += (double)G->sum_total[i * L + l];
            kept += (double)G->sum_kept[i * L + l];
        }
        t->kept += kept * (double)block_max[l];
        t->total += total * (double)block_max[l];
    }
}

/* ---------------------------------------------------------------------------------
   n:4 exactly (m = 4, METHOD_TSENOR and METHOD_EXACT): the search of the shared section,
   16 blocks per vector (lane l = block l of the group, entry (i,j) at [(i*4 + j)*16 + l]),
   _TSENOR_N4_GROUPS groups per unit of work.
   --------------------------------------------------------------------------------- */
#define _TSENOR_N4_GROUPS 16

/* a: the 16 blocks, scaled; best, arg: each lane's largest total and its 16-bit mask */
_TSENOR_ALWAYS_INLINE void _tsenor_n4_search(const float *_TSENOR_RESTRICT a, int n, float *best, float *arg)
{
    _TSENOR_VDECLARE_ZERO;
    _tsenor_vf b = _TSENOR_VSET1(0.0f), g = b;
#define _TSENOR_N4_V _tsenor_vf
#define _TSENOR_N4_ADD(x, y) _TSENOR_VADD(x, y)
#define _TSENOR_N4_SET(c) _TSENOR_VSET1(c)
#define _TSENOR_N4_BEST(c, bst, code, arg_) ((arg_) = _TSENOR_VBLEND_GT(c, bst, code, arg_), (bst) = _TSENOR_VBLEND_GT(c, bst, c, bst))
#define _TSENOR_N4_A(i, j) _TSENOR_VLOAD(a + ((i) * 4 + (j)) * _TSENOR_LANES)
    if (n == 1) _TSENOR_N4_SOLVE(1, _TSENOR_N4_A, b, g)
    else if (n == 2) _TSENOR_N4_SOLVE(2, _TSENOR_N4_A, b, g)
    else _TSENOR_N4_SOLVE(3, _TSENOR_N4_A, b, g)
#undef _TSENOR_N4_V
#undef _TSENOR_N4_ADD
#undef _TSENOR_N4_SET
#undef _TSENOR_N4_BEST
#undef _TSENOR_N4_A
    _TSENOR_VSTORE(best, b);
    _TSENOR_VSTORE(arg, g);
}

/* Per lane: the value scale (the shared rule), applied to a; each row's sum (left to
   right, for the report's total) into row_total[i*16 + l]. */
_TSENOR_ALWAYS_INLINE void _tsenor_n4_scale(float *_TSENOR_RESTRICT a, float *scale, float *row_total)
{
    _TSENOR_VDECLARE_ZERO;
    const int L = _TSENOR_LANES;
    _tsenor_vf mx = _TSENOR_VLOAD(a), s;
    int k, i;
    for (k = 1; k < 16; k++) mx = _TSENOR_VMAX(mx, _TSENOR_VLOAD(a + k * L));
    s = _TSENOR_VBLEND_GT(mx, _TSENOR_VSET1(_TSENOR_N4_SCALE_ABOVE), _TSENOR_VSET1(_TSENOR_N4_SCALE), _TSENOR_VSET1(1.0f));
    for (k = 0; k < 16; k++) _TSENOR_VSTORE(a + k * L, _TSENOR_VMUL(_TSENOR_VLOAD(a + k * L), s));
    for (i = 0; i < 4; i++) {
        const float *r = a + i * 4 * L;
        _TSENOR_VSTORE(row_total + i * L,
                       _TSENOR_VADD(_TSENOR_VADD(_TSENOR_VADD(_TSENOR_VLOAD(r), _TSENOR_VLOAD(r + L)), _TSENOR_VLOAD(r + 2 * L)),
                                    _TSENOR_VLOAD(r + 3 * L)));
    }
    _TSENOR_VSTORE(scale, s);
}

/* |w| of 64 consecutive entries (16 blocks side by side, row i) into the lanes layout */
_TSENOR_ALWAYS_INLINE void _tsenor_n4_load_row(const _tsenor_problem *P, size_t at, float *_TSENOR_RESTRICT a, int i)
{
    const int L = _TSENOR_LANES;
    int l, j;
    if (P->dt == TSENOR_DTYPE_F32) {
        _tsenor_deinterleave4_abs((const uint32_t *)P->w + at, a + i * 4 * L);
    } else if (P->dt == TSENOR_DTYPE_BF16) {
        const uint16_t *p = (const uint16_t *)P->w + at;
        for (l = 0; l < L; l++)
            for (j = 0; j < 4; j++) a[(i * 4 + j) * L + l] = _tsenor_abs_bf16(p[4 * l + j]);
    } else {
        const uint16_t *p = (const uint16_t *)P->w + at;
        for (l = 0; l < L; l++)
            for (j = 0; j < 4; j++) a[(i * 4 + j) * L + l] = _tsenor_abs_f16(p[4 * l + j]);
    }
}

/* The 16 blocks of group g: load (zero padding), scale, search, masks and report sums. */
_TSENOR_ALWAYS_INLINE void _tsenor_solve_group_n4(const _tsenor_problem *P, size_t g, _tsenor_thread *t)
{
    static const uint8_t bytes[16][4] = {{0, 0, 0, 0}, {1, 0, 0, 0}, {0, 1, 0, 0}, {1, 1, 0, 0}, {0, 0, 1, 0}, {1, 0, 1, 0},
                                         {0, 1, 1, 0}, {1, 1, 1, 0}, {0, 0, 0, 1}, {1, 0, 0, 1}, {0, 1, 0, 1}, {1, 1, 0, 1},
                                         {0, 0, 1, 1}, {1, 0, 1, 1}, {0, 1, 1, 1}, {1, 1, 1, 1}};
    const int L = _TSENOR_LANES;
    const size_t first = g * (size_t)L;
    const int lanes = P->blocks - first < (size_t)L ? (int)(P->blocks - first) : L;
    const _tsenor_block B0 = _tsenor_block_of(P, first), B1 = _tsenor_block_of(P, first + (size_t)lanes - 1);
    /* the common case: 16 whole blocks side by side in one block row */
    const int whole = lanes == L && B0.r0 == B1.r0 && B0.rows == 4 && B1.cols == 4;
    float *a = t->lanes.a;
    _TSENOR_ALIGNED_ARRAY(float, best, _TSENOR_LANES);
    _TSENOR_ALIGNED_ARRAY(float, arg, _TSENOR_LANES);
    _TSENOR_ALIGNED_ARRAY(float, scale, _TSENOR_LANES);
    _TSENOR_ALIGNED_ARRAY(float, row_total, 4 * _TSENOR_LANES);
    double kept = 0.0, total = 0.0;
    int l, i, j;
    if (whole) {
        for (i = 0; i < 4; i++) _tsenor_n4_load_row(P, (B0.r0 + (size_t)i) * P->ld + B0.c0, a, i);
    } else {
        memset(a, 0, 16 * (size_t)L * sizeof(float));
        for (l = 0; l < lanes; l++) {
            const _tsenor_block B = _tsenor_block_of(P, first + (size_t)l);
            for (i = 0; i < B.rows; i++)
                _tsenor_load_abs(P->w, P->dt, (B.r0 + (size_t)i) * P->ld + B.c0, B.cols, a + (size_t)i * 4 * L + l, L);
        }
    }
    _tsenor_n4_scale(a, scale, row_total);
    _tsenor_n4_search(a, P->cfg.n, best, arg);
    if (whole) {   /* each mask row's 64 bytes at once */
        uint8_t out[4][64];
#ifdef _TSENOR_N4_MASK_ROWS
        _tsenor_n4_mask_rows(arg, out[0]);
#else
        for (l = 0; l < L; l++) {
            const unsigned bits = (unsigned)arg[l];
            for (i = 0; i < 4; i++) memcpy(out[i] + 4 * l, bytes[bits >> (4 * i) & 15u], 4);
        }
#endif
        for (i = 0; i < 4; i++) memcpy(P->mask + (B0.r0 + (size_t)i) * P->mask_ld + B0.c0, out[i], 64);
    } else {
        for (l = 0; l < lanes; l++) {
            const unsigned bits = (unsigned)arg[l];
            const _tsenor_block B = _tsenor_block_of(P, first + (size_t)l);
            for (i = 0; i < B.rows; i++) {
                uint8_t *out = P->mask + (B.r0 + (size_t)i) * P->mask_ld + B.c0;
                for (j = 0; j < B.cols; j++) out[j] = bytes[bits >> (4 * i) & 15u][j];
            }
        }
    }
    /* the report: per block, the total of its rows and the kept total, in double */
    for (l = 0; l < lanes; l++) {
        const double unscale = scale[l] == 1.0f ? 1.0 : 1.0 / (double)_TSENOR_N4_SCALE;   /* exact */
        kept += (double)best[l] * unscale;
        total += ((double)row_total[l] + (double)row_total[L + l] + (double)row_total[2 * L + l] +
                  (double)row_total[3 * L + l]) * unscale;   /* zero padding adds nothing */
    }
    t->kept += kept;
    t->total += total;
}

static void _tsenor_solve_unit_n4(const _tsenor_problem *P, size_t unit, _tsenor_thread *t)
{
    size_t g = unit * _TSENOR_N4_GROUPS;
    const size_t end = g + _TSENOR_N4_GROUPS < P->groups ? g + _TSENOR_N4_GROUPS : P->groups;
    for (; g < end; g++) _tsenor_solve_group_n4(P, g, t);
}

/* 1 when the problem takes the n:4 path */
static int _tsenor_is_n4(const _tsenor_config *cfg)
{
    return cfg->m == 4 && (cfg->method == TSENOR_METHOD_TSENOR || cfg->method == TSENOR_METHOD_EXACT);
}

/* A unit of work: a group of 16 blocks, _TSENOR_N4_GROUPS groups on the n:4 path, or one
   row for ROWWISE. Compiled once per ISA. */
typedef void (*_tsenor_unit_solver_fn)(const _tsenor_problem *P, size_t unit, _tsenor_thread *t);

#define _TSENOR_SOLVE_UNIT_BODY                                                          \
    {                                                                                    \
        if (P->cfg.method == TSENOR_METHOD_ROWWISE) _tsenor_solve_row(P, unit, t);       \
        else if (_tsenor_is_n4(&P->cfg)) _tsenor_solve_unit_n4(P, unit, t);              \
        else _tsenor_solve_group(P, unit, t);                                            \
    }

static void _tsenor_solve_unit_generic(const _tsenor_problem *P, size_t unit, _tsenor_thread *t)
_TSENOR_SOLVE_UNIT_BODY

#if defined(_TSENOR_VECTOR_EXTENSIONS) && (defined(__x86_64__) || defined(__i386__)) && \
    !defined(__AVX512F__) && !defined(TSENOR_NO_RUNTIME_DISPATCH)
#define _TSENOR_X86_DISPATCH 1
__attribute__((target("avx2,fma"), flatten))
static void _tsenor_solve_unit_avx2(const _tsenor_problem *P, size_t unit, _tsenor_thread *t)
_TSENOR_SOLVE_UNIT_BODY

__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma"), flatten))
static void _tsenor_solve_unit_avx512(const _tsenor_problem *P, size_t unit, _tsenor_thread *t)
_TSENOR_SOLVE_UNIT_BODY
#endif

/* Picks the widest ISA this CPU runs (x86: cpuid at run time; elsewhere what the
   compiler targets) and names it for the report. */
static _tsenor_unit_solver_fn _tsenor_pick_solver(const char **name)
{
#if defined(_TSENOR_X86_DISPATCH)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl")) {
        *name = "cpu-avx512";
        return _tsenor_solve_unit_avx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        *name = "cpu-avx2";
        return _tsenor_solve_unit_avx2;
    }
    *name = "cpu-generic";
#elif defined(_TSENOR_VECTOR_EXTENSIONS) && defined(__AVX512F__)
    *name = "cpu-avx512";
#elif defined(_TSENOR_VECTOR_EXTENSIONS) && defined(__AVX2__)
    *name = "cpu-avx2";
#elif defined(_TSENOR_VECTOR_EXTENSIONS) && (defined(__ARM_NEON) || defined(__aarch64__))
    *name = "cpu-neon";
#elif defined(_TSENOR_VECTOR_EXTENSIONS)
    *name = "cpu-generic";
#else
    *name = "cpu-scalar";
#endif
    return _tsenor_solve_unit_generic;
}

static tsenor_status _tsenor_mask_with(const void *w, tsenor_dtype dt, size_t rows, size_t cols, size_t ld,
                                       uint8_t *mask, size_t mask_ld, const tsenor_options *opt,
                                       tsenor_report *report, _tsenor_potentials *warm)
{
    const double t0 = _tsenor_now();
    _tsenor_problem P;
    tsenor_status status;
    const char *backend = "cpu-generic";
    double kept = 0.0, total = 0.0;
    int threads_used = 1;

    memset(&P, 0, sizeof P);
    status = _tsenor_resolve(opt, &P.cfg);
    if (status != TSENOR_OK) return status;
    status = _tsenor_check_mask_args(w, dt, rows, cols, ld, mask, mask_ld);
    if (status != TSENOR_OK) return status;
    if (!_tsenor_all_finite(w, dt, rows, cols, ld, P.cfg.threads)) return TSENOR_ERR_NONFINITE_INPUT;

    P.w = w; P.dt = dt; P.rows = rows; P.cols = cols; P.ld = ld; P.mask = mask; P.mask_ld = mask_ld;
    P.block_rows = (rows + (size_t)P.cfg.m - 1) / (size_t)P.cfg.m;
    P.block_cols = (cols + (size_t)P.cfg.m - 1) / (size_t)P.cfg.m;
    P.blocks = P.block_rows * P.block_cols;
    P.groups = (P.blocks + _TSENOR_LANES - 1) / _TSENOR_LANES;
    if (warm && (P.cfg.method != TSENOR_METHOD_TSENOR || _tsenor_is_n4(&P.cfg) || warm->blocks != P.blocks ||
                 warm->m != P.cfg.m))
        warm = NULL;   /* nothing to keep, or another tiling */
    P.warm = warm;

    {
        _tsenor_thread probe;
        const size_t per_thread = _tsenor_align_up(_tsenor_thread_layout(&probe, NULL, P.cfg.m));
        int T = P.cfg.threads, tid;
        unsigned char *raw, *base;
        _tsenor_thread *ts;
        _tsenor_unit_solver_fn solve;
        const size_t units = P.cfg.method == TSENOR_METHOD_ROWWISE ? rows
                           : _tsenor_is_n4(&P.cfg) ? (P.groups + _TSENOR_N4_GROUPS - 1) / _TSENOR_N4_GROUPS
                           : P.groups;
        if ((size_t)T > units) T = (int)units;
        if (T < 1) T = 1;
        raw = (unsigned char *)TSENOR_MALLOC((size_t)T * per_thread + _TSENOR_ALIGN);
        ts = (_tsenor_thread *)TSENOR_MALLOC((size_t)T * sizeof *ts);
        if (!raw || !ts) {
            if (raw) TSENOR_FREE(raw);
            if (ts) TSENOR_FREE(ts);
            return TSENOR_ERR_OUT_OF_MEMORY;
        }
        base = raw + (_TSENOR_ALIGN - (uintptr_t)raw % _TSENOR_ALIGN) % _TSENOR_ALIGN;
        for (tid = 0; tid < T; tid++) (void)_tsenor_thread_layout(&ts[tid], base + (size_t)tid * per_thread, P.cfg.m);
        solve = _tsenor_pick_solver(&backend);
        threads_used = T;
#ifdef _OPENMP
#pragma omp parallel num_threads(T)
#endif
        {
            ptrdiff_t u, nunits = (ptrdiff_t)units;
#ifdef _OPENMP
            _tsenor_thread *me = &ts[omp_get_thread_num()];
#pragma omp for schedule(dynamic, 1)
#else
            _tsenor_thread *me = &ts[0];
#endif
            for (u = 0; u < nunits; u++) solve(&P, (size_t)u, me);
        }
        for (tid = 0; tid < T; tid++) { kept += ts[tid].kept; total += ts[tid].total; }
        TSENOR_FREE(ts);
        TSENOR_FREE(raw);
    }
    if (warm) warm->ready = 1;
    if (report) {
        report->kept = kept;
        report->total = total;
        report->blocks = P.blocks;
        report->backend = backend;
        report->threads = threads_used;
        report->kernel_seconds = 0.0;
        report->seconds = _tsenor_now() - t0;
    }
    return TSENOR_OK;
}

static tsenor_status _tsenor_mask(const void *w, tsenor_dtype dt, size_t rows, size_t cols, size_t ld,
                                  uint8_t *mask, size_t mask_ld, const tsenor_options *opt, tsenor_report *report)
{
    return _tsenor_mask_with(w, dt, rows, cols, ld, mask, mask_ld, opt, report, NULL);
}

TSENOR_DEF tsenor_status tsenor_cpu_mask_f32(const float *w, size_t rows, size_t cols, size_t ld,
                                             uint8_t *mask, size_t mask_ld,
                                             const tsenor_options *opt, tsenor_report *report)
{
    return _tsenor_mask(w, TSENOR_DTYPE_F32, rows, cols, ld, mask, mask_ld, opt, report);
}

TSENOR_DEF tsenor_status tsenor_cpu_mask_f16(const uint16_t *w, size_t rows, size_t cols, size_t ld,
                                             uint8_t *mask, size_t mask_ld,
                                             const tsenor_options *opt, tsenor_report *report)
{
    return _tsenor_mask(w, TSENOR_DTYPE_F16, rows, cols, ld, mask, mask_ld, opt, report);
}

TSENOR_DEF tsenor_status tsenor_cpu_mask_bf16(const uint16_t *w, size_t rows, size_t cols, size_t ld,
                                              uint8_t *mask, size_t mask_ld,
                                              const tsenor_options *opt, tsenor_report *report)
{
    return _tsenor_mask(w, TSENOR_DTYPE_BF16, rows, cols, ld, mask, mask_ld, opt, report);
}

/* The public calls: the CPU solver, or the GPU one (tsenor_cuda.h) with TSENOR_CUDA. */
#ifdef TSENOR_CUDA
#include "tsenor_cuda.h"
#define _TSENOR_BACKEND(name) tsenor_cuda_##name
#else
#define _TSENOR_BACKEND(name) tsenor_cpu_##name
#endif

TSENOR_DEF tsenor_status tsenor_mask_f32(const float *w, size_t rows, size_t cols, size_t ld,
                                         uint8_t *mask, size_t mask_ld,
                                         const tsenor_options *opt, tsenor_report *report)
{
    return _TSENOR_BACKEND(mask_f32)(w, rows, cols, ld, mask, mask_ld, opt, report);
}

TSENOR_DEF tsenor_status tsenor_mask_f16(const uint16_t *w, size_t rows, size_t cols, size_t ld,
                                         uint8_t *mask, size_t mask_ld,
                                         const tsenor_options *opt, tsenor_report *report)
{
    return _TSENOR_BACKEND(mask_f16)(w, rows, cols, ld, mask, mask_ld, opt, report);
}

TSENOR_DEF tsenor_status tsenor_mask_bf16(const uint16_t *w, size_t rows, size_t cols, size_t ld,
                                          uint8_t *mask, size_t mask_ld,
                                          const tsenor_options *opt, tsenor_report *report)
{
    return _TSENOR_BACKEND(mask_bf16)(w, rows, cols, ld, mask, mask_ld, opt, report);
}

TSENOR_DEF tsenor_status tsenor_mask(const void *w, tsenor_dtype dtype, size_t rows, size_t cols, size_t ld,
                                     uint8_t *mask, size_t mask_ld,
                                     const tsenor_options *opt, tsenor_report *report)
{
    switch (dtype) {
    case TSENOR_DTYPE_F32: return tsenor_mask_f32((const float *)w, rows, cols, ld, mask, mask_ld, opt, report);
    case TSENOR_DTYPE_F16: return tsenor_mask_f16((const uint16_t *)w, rows, cols, ld, mask, mask_ld, opt, report);
    case TSENOR_DTYPE_BF16: return tsenor_mask_bf16((const uint16_t *)w, rows, cols, ld, mask, mask_ld, opt, report);
    }
    return TSENOR_ERR_INVALID_ARGUMENT;
}

TSENOR_DEF const char *tsenor_method_string(tsenor_method method)
{
    switch (method) {
    case TSENOR_METHOD_DEFAULT:
    case TSENOR_METHOD_TSENOR: return "tsenor";
    case TSENOR_METHOD_EXACT: return "exact";
    case TSENOR_METHOD_GREEDY: return "greedy";
    case TSENOR_METHOD_ROWWISE: return "rowwise";
    }
    return "unknown";
}

TSENOR_DEF const char *tsenor_dtype_string(tsenor_dtype dtype)
{
    switch (dtype) {
    case TSENOR_DTYPE_F32: return "f32";
    case TSENOR_DTYPE_F16: return "f16";
    case TSENOR_DTYPE_BF16: return "bf16";
    }
    return "unknown";
}

/* ---------------------------------------------------------------------------------
   The pattern check: every row (and with TRANSPOSABLE every column) of every block
   keeps n in a full block and at most n in an edge block (AT_MOST: at most n in all).
   --------------------------------------------------------------------------------- */

/* records one failing line (the first one of all in r); returns 1 when the check may
   stop here (the caller wants no report) */
static int _tsenor_check_fail(tsenor_check_report *r, int *block_bad, int stop_early, size_t row, size_t col,
                              int column, int count, int bad_value)
{
    if (r->bad_blocks == 0 && !*block_bad) {
        r->row = row;
        r->col = col;
        r->column = column;
        r->count = count;
        r->bad_value = bad_value;
    }
    *block_bad = 1;
    return stop_early;
}

TSENOR_DEF tsenor_status tsenor_check_mask(const uint8_t *mask, size_t rows, size_t cols, size_t mask_ld,
                                           int n, int m, unsigned flags, tsenor_check_report *report)
{
    const int transposable = (flags & TSENOR_CHECK_TRANSPOSABLE) != 0;
    const int at_most = (flags & TSENOR_CHECK_AT_MOST) != 0;
    const int stop = report == NULL;
    tsenor_check_report r;
    size_t r0, c0;
    if (!mask || rows == 0 || cols == 0 || mask_ld < cols) return TSENOR_ERR_INVALID_ARGUMENT;
    if (m < 2 || m > TSENOR_MAX_M || n < 1 || n >= m) return TSENOR_ERR_INVALID_ARGUMENT;
    if (flags & ~(TSENOR_CHECK_TRANSPOSABLE | TSENOR_CHECK_AT_MOST)) return TSENOR_ERR_INVALID_ARGUMENT;
    if (_tsenor_overflows(rows, cols, mask_ld)) return TSENOR_ERR_INVALID_ARGUMENT;
    memset(&r, 0, sizeof r);
    for (r0 = 0; r0 < rows; r0 += (size_t)m) {
        const int hr = rows - r0 < (size_t)m ? (int)(rows - r0) : m;
        for (c0 = 0; c0 < cols; c0 += (size_t)m) {
            const int hc = cols - c0 < (size_t)m ? (int)(cols - c0) : m;
            /* a row keeps exactly n when its block is full along it (and, for a
               transposable mask, along the columns too: a short block's rows may not) */
            const int rows_exact = !at_most && hc == m && (!transposable || hr == m);
            const int cols_exact = !at_most && hr == m && hc == m;
            int col_count[TSENOR_MAX_M], i, j, bad = 0;
            for (j = 0; j < hc; j++) col_count[j] = 0;
            for (i = 0; i < hr; i++) {
                const uint8_t *row = mask + (r0 + (size_t)i) * mask_ld + c0;
                int count = 0;
                for (j = 0; j < hc; j++) {
                    if (row[j] > 1 && _tsenor_check_fail(&r, &bad, stop, r0 + (size_t)i, c0 + (size_t)j, 0, row[j], 1))
                        return TSENOR_ERR_INVALID_MASK;
                    count += row[j] != 0;
                    col_count[j] += row[j] != 0;
                }
                if ((count > n || (rows_exact && count != n)) &&
                    _tsenor_check_fail(&r, &bad, stop, r0 + (size_t)i, c0, 0, count, 0))
                    return TSENOR_ERR_INVALID_MASK;
            }
            if (transposable)
                for (j = 0; j < hc; j++)
                    if ((col_count[j] > n || (cols_exact && col_count[j] != n)) &&
                        _tsenor_check_fail(&r, &bad, stop, r0, c0 + (size_t)j, 1, col_count[j], 0))
                        return TSENOR_ERR_INVALID_MASK;
            r.blocks++;
            r.bad_blocks += (size_t)bad;
        }
    }
    if (report) *report = r;
    return r.bad_blocks ? TSENOR_ERR_INVALID_MASK : TSENOR_OK;
}

TSENOR_DEF tsenor_status tsenor_check(const uint8_t *mask, size_t rows, size_t cols, size_t mask_ld,
                                      int n, int m, int transposable)
{
    return tsenor_check_mask(mask, rows, cols, mask_ld, n, m, transposable ? TSENOR_CHECK_TRANSPOSABLE : 0u, NULL);
}

/* =================================================================================
   Pruning with calibration data: tsenor_prune_f32, tsenor_gram_f32.

   Stages (a GPU version mirrors each: cuBLAS for the products, cuSOLVER for the
   factorisation, the block solver for the projections):
     _tsenor_prune_validate     arguments, overlaps, finiteness, symmetry of H
     _tsenor_hessian_prepare    dead inputs, damping, (ALPS) scaling to a unit diagonal
     _tsenor_sgemm              C = alpha op(A) op(B) + beta C, packed and vectorised
     _tsenor_cholesky           H = L L^T, blocked (the trailing update is an sgemm)
     _tsenor_trsm_*             right-side triangular solves with L, blocked
     _tsenor_prune_sparsegpt    OBS column sweep with lazy block updates
     _tsenor_prune_alps         ADMM with the mask solver as projection, then CG
     _tsenor_prune_error        tr(D H D^T) / tr(W H W^T) with H as given
   Storage is f32; sums that decide results (dot products of CG, the error, the
   diagonal blocks of the factorisation) are taken in f64.
   ================================================================================= */
#include <math.h>

#if defined(TSENOR_USE_CBLAS)
#include <cblas.h>
#include <lapacke.h>
#endif

#define _TSENOR_GEMM_MR 6             /* rows of the register tile                        */
#define _TSENOR_GEMM_NR 16            /* columns of the register tile: one _tsenor_vf     */
#define _TSENOR_GEMM_KC 384           /* depth of a packed panel                          */
#define _TSENOR_GEMM_MC 96            /* rows of A packed per task (a multiple of MR)     */
#define _TSENOR_GEMM_NC 2048          /* columns of B packed at once                      */
#define _TSENOR_CHOL_NB 64            /* block size of the factorisation and the solves   */

enum { _TSENOR_TRI_FULL = 0, _TSENOR_TRI_UPPER, _TSENOR_TRI_LOWER };

/* GCC fuses a*b + c into one FMA only when told (ISO modes set -ffp-contract=off);
   clang fuses within an expression by default */
#if defined(__GNUC__) && !defined(__clang__)
#define _TSENOR_FUSED_MADD __attribute__((optimize("fp-contract=fast")))
#else
#define _TSENOR_FUSED_MADD
#endif

/* 64-byte aligned blocks from TSENOR_MALLOC: vector loads of packed panels need it */
static void *_tsenor_aligned_alloc(size_t count, size_t size)
{
    unsigned char *raw, *p;
    if (size && count > (SIZE_MAX - 2 * _TSENOR_ALIGN) / size) return NULL;
    raw = (unsigned char *)TSENOR_MALLOC(count * size + 2 * _TSENOR_ALIGN);
    if (!raw) return NULL;
    p = raw + _TSENOR_ALIGN + (_TSENOR_ALIGN - (uintptr_t)(raw + _TSENOR_ALIGN) % _TSENOR_ALIGN) % _TSENOR_ALIGN;
    memcpy(p - sizeof raw, &raw, sizeof raw);
    return p;
}

static void _tsenor_aligned_free(void *p)
{
    unsigned char *raw;
    if (!p) return;
    memcpy(&raw, (unsigned char *)p - sizeof raw, sizeof raw);
    TSENOR_FREE(raw);
}

/* ---- the register-tile kernel: acc (MR x NR) = sum_p a[p][0..MR) (x) b[p][0..NR) ---- */
typedef void (*_tsenor_gemm_kernel_fn)(size_t kc, const float *ap, const float *bp, float *tile);

#if defined(_TSENOR_VECTOR_EXTENSIONS)
/* the MR accumulator rows of one register tile into tile (MR x NR, row-major) */
#define _TSENOR_GEMM_STORE_TILE(t, r0, r1, r2, r3, r4, r5)                               \
    do {                                                                                 \
        _TSENOR_VSTORE((t) + 0 * _TSENOR_GEMM_NR, r0);                                   \
        _TSENOR_VSTORE((t) + 1 * _TSENOR_GEMM_NR, r1);                                   \
        _TSENOR_VSTORE((t) + 2 * _TSENOR_GEMM_NR, r2);                                   \
        _TSENOR_VSTORE((t) + 3 * _TSENOR_GEMM_NR, r3);                                   \
        _TSENOR_VSTORE((t) + 4 * _TSENOR_GEMM_NR, r4);                                   \
        _TSENOR_VSTORE((t) + 5 * _TSENOR_GEMM_NR, r5);                                   \
    } while (0)
#define _TSENOR_GEMM_KERNEL_BODY                                                         \
    {                                                                                    \
        _TSENOR_VDECLARE_ZERO;                                                           \
        _tsenor_vf c0 = _tsenor_vzero, c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;     \
        size_t p;                                                                        \
        for (p = 0; p < kc; p++) {                                                       \
            const _tsenor_vf b = _TSENOR_VLOAD(bp + p * _TSENOR_GEMM_NR);                \
            const float *a = ap + p * _TSENOR_GEMM_MR;                                   \
            c0 += b * a[0]; c1 += b * a[1]; c2 += b * a[2];                              \
            c3 += b * a[3]; c4 += b * a[4]; c5 += b * a[5];                              \
        }                                                                                \
        _TSENOR_GEMM_STORE_TILE(tile, c0, c1, c2, c3, c4, c5);                           \
    }
#else
#define _TSENOR_GEMM_KERNEL_BODY                                                         \
    {                                                                                    \
        _tsenor_vf c[_TSENOR_GEMM_MR];                                                   \
        size_t p;                                                                        \
        int r;                                                                           \
        for (r = 0; r < _TSENOR_GEMM_MR; r++) c[r] = _TSENOR_VSET1(0.0f);                \
        for (p = 0; p < kc; p++) {                                                       \
            const _tsenor_vf b = _TSENOR_VLOAD(bp + p * _TSENOR_GEMM_NR);                \
            for (r = 0; r < _TSENOR_GEMM_MR; r++)                                        \
                c[r] = _TSENOR_VADD(c[r], _TSENOR_VMUL(b, _TSENOR_VSET1(ap[p * _TSENOR_GEMM_MR + r]))); \
        }                                                                                \
        for (r = 0; r < _TSENOR_GEMM_MR; r++) _TSENOR_VSTORE(tile + r * _TSENOR_GEMM_NR, c[r]); \
    }
#endif

/* The wide tile, MR x 2 NR (two adjacent strips of packed B): 12 accumulators, enough
   independent sums to cover the FMA latency of a 16-lane ISA, where one strip's 6 are
   not; tile receives the two MR x NR halves one after the other. Same sums in the same
   order as two calls of the narrow kernel. */
#define _TSENOR_GEMM_WIDE_BODY                                                           \
    {                                                                                    \
        _TSENOR_VDECLARE_ZERO;                                                           \
        _tsenor_vf c0 = _tsenor_vzero, c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;     \
        _tsenor_vf d0 = c0, d1 = c0, d2 = c0, d3 = c0, d4 = c0, d5 = c0;                \
        size_t p;                                                                        \
        for (p = 0; p < kc; p++) {                                                       \
            const _tsenor_vf b = _TSENOR_VLOAD(bp + p * _TSENOR_GEMM_NR);                \
            const _tsenor_vf e = _TSENOR_VLOAD(bq + p * _TSENOR_GEMM_NR);                \
            const float *a = ap + p * _TSENOR_GEMM_MR;                                   \
            c0 += b * a[0]; d0 += e * a[0]; c1 += b * a[1]; d1 += e * a[1];              \
            c2 += b * a[2]; d2 += e * a[2]; c3 += b * a[3]; d3 += e * a[3];              \
            c4 += b * a[4]; d4 += e * a[4]; c5 += b * a[5]; d5 += e * a[5];              \
        }                                                                                \
        _TSENOR_GEMM_STORE_TILE(tile, c0, c1, c2, c3, c4, c5);                           \
        _TSENOR_GEMM_STORE_TILE(tile + _TSENOR_GEMM_MR * _TSENOR_GEMM_NR, d0, d1, d2, d3, d4, d5); \
    }
typedef void (*_tsenor_gemm_wide_fn)(size_t kc, const float *ap, const float *bp, const float *bq, float *tile);

#if !defined(TSENOR_USE_CBLAS)
_TSENOR_FUSED_MADD
static void _tsenor_gemm_kernel_generic(size_t kc, const float *ap, const float *bp, float *tile)
_TSENOR_GEMM_KERNEL_BODY

#if defined(_TSENOR_VECTOR_EXTENSIONS) && defined(__AVX512F__)
_TSENOR_FUSED_MADD
static void _tsenor_gemm_wide_generic(size_t kc, const float *ap, const float *bp, const float *bq, float *tile)
_TSENOR_GEMM_WIDE_BODY
#endif

#if defined(_TSENOR_X86_DISPATCH)
__attribute__((target("avx2,fma"))) _TSENOR_FUSED_MADD
static void _tsenor_gemm_kernel_avx2(size_t kc, const float *ap, const float *bp, float *tile)
_TSENOR_GEMM_KERNEL_BODY

__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma"))) _TSENOR_FUSED_MADD
static void _tsenor_gemm_kernel_avx512(size_t kc, const float *ap, const float *bp, float *tile)
_TSENOR_GEMM_KERNEL_BODY

__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma"))) _TSENOR_FUSED_MADD
static void _tsenor_gemm_wide_avx512(size_t kc, const float *ap, const float *bp, const float *bq, float *tile)
_TSENOR_GEMM_WIDE_BODY
#endif

#if defined(_TSENOR_X86_DISPATCH)
static int _tsenor_avx512_usable(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
}
#endif

/* the wide tile where the ISA has 16 lanes, else NULL (two narrow calls) */
static _tsenor_gemm_wide_fn _tsenor_pick_gemm_wide(void)
{
#if defined(_TSENOR_X86_DISPATCH)
    if (_tsenor_avx512_usable()) return _tsenor_gemm_wide_avx512;
#endif
#if defined(_TSENOR_VECTOR_EXTENSIONS) && defined(__AVX512F__)
    return _tsenor_gemm_wide_generic;
#else
    return NULL;
#endif
}

static _tsenor_gemm_kernel_fn _tsenor_pick_gemm_kernel(const char **name)
{
    /* the mask solver's choice names the ISA; the kernel follows it */
    (void)_tsenor_pick_solver(name);
#if defined(_TSENOR_X86_DISPATCH)
    if (_tsenor_avx512_usable()) return _tsenor_gemm_kernel_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return _tsenor_gemm_kernel_avx2;
#endif
    return _tsenor_gemm_kernel_generic;
}
#endif

/* ---- the linear-algebra context: threads and packing buffers, allocated once ------ */
typedef struct _tsenor_la {
    int threads;
    _tsenor_gemm_kernel_fn kernel;
    _tsenor_gemm_wide_fn wide;        /* NULL: two narrow tiles instead                   */
    const char *backend;
    float *pack_b;                    /* threads x KC x NC                                */
    float *pack_a;                    /* threads x MC x KC                                */
} _tsenor_la;

static tsenor_status _tsenor_la_init(_tsenor_la *la, int threads)
{
    memset(la, 0, sizeof *la);
    la->threads = threads < 1 ? 1 : threads;
#if defined(TSENOR_USE_CBLAS)
    la->backend = "cpu-cblas";
    return TSENOR_OK;
#else
    la->kernel = _tsenor_pick_gemm_kernel(&la->backend);
    la->wide = _tsenor_pick_gemm_wide();
    la->pack_b = (float *)_tsenor_aligned_alloc((size_t)la->threads * _TSENOR_GEMM_KC * _TSENOR_GEMM_NC, sizeof(float));
    la->pack_a = (float *)_tsenor_aligned_alloc((size_t)la->threads * _TSENOR_GEMM_MC * _TSENOR_GEMM_KC, sizeof(float));
    if (!la->pack_a || !la->pack_b) {
        _tsenor_aligned_free(la->pack_a);
        _tsenor_aligned_free(la->pack_b);
        return TSENOR_ERR_OUT_OF_MEMORY;
    }
    return TSENOR_OK;
#endif
}

static void _tsenor_la_free(_tsenor_la *la)
{
    _tsenor_aligned_free(la->pack_a);
    _tsenor_aligned_free(la->pack_b);
    la->pack_a = la->pack_b = NULL;
}

#if !defined(TSENOR_USE_CBLAS)
/* B[pc.., jc..] (kc x nc, op applied) into strips of NR columns, zero-padded */
static void _tsenor_pack_b_strip(const float *b, size_t ldb, int trans_b, size_t pc, size_t j0, size_t n,
                                 size_t kc, float *dst)
{
    size_t p;
    int c;
    for (c = 0; c < _TSENOR_GEMM_NR; c++) {
        const size_t j = j0 + (size_t)c;
        if (j >= n) {
            for (p = 0; p < kc; p++) dst[p * _TSENOR_GEMM_NR + (size_t)c] = 0.0f;
        } else if (trans_b) {
            const float *src = b + j * ldb + pc;
            for (p = 0; p < kc; p++) dst[p * _TSENOR_GEMM_NR + (size_t)c] = src[p];
        } else {
            for (p = 0; p < kc; p++) dst[p * _TSENOR_GEMM_NR + (size_t)c] = b[(pc + p) * ldb + j];
        }
    }
}

/* A[i0.., pc..] (MR rows, op applied) into one panel, zero-padded */
static void _tsenor_pack_a_panel(const float *a, size_t lda, int trans_a, size_t pc, size_t i0, size_t m,
                                 size_t kc, float *dst)
{
    size_t p;
    int r;
    for (r = 0; r < _TSENOR_GEMM_MR; r++) {
        const size_t i = i0 + (size_t)r;
        if (i >= m) {
            for (p = 0; p < kc; p++) dst[p * _TSENOR_GEMM_MR + (size_t)r] = 0.0f;
        } else if (trans_a) {
            for (p = 0; p < kc; p++) dst[p * _TSENOR_GEMM_MR + (size_t)r] = a[(pc + p) * lda + i];
        } else {
            const float *src = a + i * lda + pc;
            for (p = 0; p < kc; p++) dst[p * _TSENOR_GEMM_MR + (size_t)r] = src[p];
        }
    }
}
#endif

/* one register tile (mr x nr of MR x NR) into C: C = alpha t on the first panel of the
   depth (beta C + alpha t when beta is not 0), C += alpha t on the later ones. Full rows
   go as whole vectors; the arithmetic is the same either way. */
static void _tsenor_gemm_store(const float *tile, float *c, size_t ldc, size_t mr, size_t nr, float alpha,
                               float beta, int first)
{
    size_t i, j;
#if defined(_TSENOR_VECTOR_EXTENSIONS) && _TSENOR_GEMM_NR == _TSENOR_LANES
    typedef float vfu __attribute__((vector_size(4 * _TSENOR_LANES), aligned(4), may_alias));
    if (nr == _TSENOR_GEMM_NR) {
        for (i = 0; i < mr; i++) {
            vfu *crow = (vfu *)(void *)(c + i * ldc);
            const vfu t = *(const vfu *)(const void *)(tile + i * _TSENOR_GEMM_NR);
            if (!first) *crow += alpha * t;
            else if (beta == 0.0f) *crow = alpha * t;
            else *crow = beta * *crow + alpha * t;
        }
        return;
    }
#endif
    for (i = 0; i < mr; i++) {
        float *crow = c + i * ldc;
        const float *t = tile + i * _TSENOR_GEMM_NR;
        if (!first) for (j = 0; j < nr; j++) crow[j] += alpha * t[j];
        else if (beta == 0.0f) for (j = 0; j < nr; j++) crow[j] = alpha * t[j];
        else for (j = 0; j < nr; j++) crow[j] = beta * crow[j] + alpha * t[j];
    }
}

/* C (m x n, row-major) = alpha op(A) op(B) + beta C; op(A) is m x k, op(B) k x n.
   triangle UPPER / LOWER: only register tiles that touch that triangle (diagonal
   included) are computed; other entries of C are left as they are. Each entry's sum
   runs in the same order whatever the thread count: results do not depend on it. */
/* tid >= 0: a serial product inside the caller's parallel region, on thread tid's
   buffers; tid < 0: the product spread over la->threads */
static void _tsenor_sgemm_on(_tsenor_la *la, int tid, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                             float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                             float beta, float *c, size_t ldc, int triangle)
{
#if defined(TSENOR_USE_CBLAS)
    (void)la;
    (void)tid;
    if (m == 0 || n == 0) return;
    if (triangle != _TSENOR_TRI_FULL && m == n && a == b && lda == ldb && trans_a != trans_b) {
        cblas_ssyrk(CblasRowMajor, triangle == _TSENOR_TRI_UPPER ? CblasUpper : CblasLower,
                    trans_a ? CblasTrans : CblasNoTrans, (int)n, (int)k, alpha, a, (int)lda, beta, c, (int)ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
#else
    size_t jc, pc;
    const int T = tid >= 0 ? 1 : la->threads;
    float *pack_b = la->pack_b + (size_t)(tid > 0 ? tid : 0) * _TSENOR_GEMM_KC * _TSENOR_GEMM_NC;
    if (m == 0 || n == 0) return;
    if (k == 0) {   /* C = beta C */
        size_t i, j;
        for (i = 0; i < m; i++)
            for (j = 0; j < n; j++) {
                if ((triangle == _TSENOR_TRI_UPPER && j < i) || (triangle == _TSENOR_TRI_LOWER && j > i)) continue;
                c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
            }
        return;
    }
    for (jc = 0; jc < n; jc += _TSENOR_GEMM_NC) {
        const size_t nc = n - jc < _TSENOR_GEMM_NC ? n - jc : _TSENOR_GEMM_NC;
        const size_t strips = (nc + _TSENOR_GEMM_NR - 1) / _TSENOR_GEMM_NR;
        for (pc = 0; pc < k; pc += _TSENOR_GEMM_KC) {
            const size_t kc = k - pc < _TSENOR_GEMM_KC ? k - pc : _TSENOR_GEMM_KC;
            const int first = pc == 0;
            const ptrdiff_t nstrips = (ptrdiff_t)strips;
            const ptrdiff_t nblocks = (ptrdiff_t)((m + _TSENOR_GEMM_MC - 1) / _TSENOR_GEMM_MC);
            /* a team only for products worth its start and barriers (about 1 ms of work) */
            const int team = T > 1 && (double)m * (double)nc * (double)kc > 2e7 ? T : 1;
            (void)team;
#ifdef _OPENMP
#pragma omp parallel num_threads(team) if(team > 1)
#endif
            {
                ptrdiff_t s, blk;
#ifdef _OPENMP
                float *ap = la->pack_a + (size_t)(tid >= 0 ? tid : omp_get_thread_num()) * _TSENOR_GEMM_MC * _TSENOR_GEMM_KC;
#pragma omp for schedule(static)
#else
                float *ap = la->pack_a;
#endif
                for (s = 0; s < nstrips; s++)
                    _tsenor_pack_b_strip(b, ldb, trans_b, pc, jc + (size_t)s * _TSENOR_GEMM_NR, n, kc,
                                         pack_b + (size_t)s * kc * _TSENOR_GEMM_NR);
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
                for (blk = 0; blk < nblocks; blk++) {
                    const size_t ic = (size_t)blk * _TSENOR_GEMM_MC;
                    const size_t mc = m - ic < _TSENOR_GEMM_MC ? m - ic : _TSENOR_GEMM_MC;
                    const size_t panels = (mc + _TSENOR_GEMM_MR - 1) / _TSENOR_GEMM_MR;
                    size_t q, st;
                    _TSENOR_ALIGNED_ARRAY(float, tile, 2 * _TSENOR_GEMM_MR * _TSENOR_GEMM_NR);
                    if (triangle == _TSENOR_TRI_UPPER && jc + nc <= ic) continue;
                    if (triangle == _TSENOR_TRI_LOWER && jc >= ic + mc) continue;
                    for (q = 0; q < panels; q++)
                        _tsenor_pack_a_panel(a, lda, trans_a, pc, ic + q * _TSENOR_GEMM_MR, m, kc,
                                             ap + q * kc * _TSENOR_GEMM_MR);
                    for (st = 0; st < strips; st += 2) {
                        const size_t c0 = jc + st * _TSENOR_GEMM_NR;
                        const size_t nr = n - c0 < _TSENOR_GEMM_NR ? n - c0 : _TSENOR_GEMM_NR;
                        const int pair = st + 1 < strips;   /* a second strip right of this one */
                        const size_t c1 = c0 + _TSENOR_GEMM_NR;
                        const size_t nr1 = pair ? (n - c1 < _TSENOR_GEMM_NR ? n - c1 : _TSENOR_GEMM_NR) : 0;
                        const float *bp = pack_b + st * kc * _TSENOR_GEMM_NR;
                        for (q = 0; q < panels; q++) {
                            const size_t r0 = ic + q * _TSENOR_GEMM_MR;
                            const size_t mr = m - r0 < _TSENOR_GEMM_MR ? m - r0 : _TSENOR_GEMM_MR;
                            const float *aq = ap + q * kc * _TSENOR_GEMM_MR;
                            const int left = !(triangle == _TSENOR_TRI_UPPER && c0 + nr <= r0) &&
                                             !(triangle == _TSENOR_TRI_LOWER && c0 >= r0 + mr);
                            const int right = pair && !(triangle == _TSENOR_TRI_UPPER && c1 + nr1 <= r0) &&
                                              !(triangle == _TSENOR_TRI_LOWER && c1 >= r0 + mr);
                            if (left && right && la->wide) {
                                la->wide(kc, aq, bp, bp + kc * _TSENOR_GEMM_NR, tile);
                            } else {
                                if (left) la->kernel(kc, aq, bp, tile);
                                if (right) la->kernel(kc, aq, bp + kc * _TSENOR_GEMM_NR, tile + _TSENOR_GEMM_MR * _TSENOR_GEMM_NR);
                            }
                            if (left) _tsenor_gemm_store(tile, c + r0 * ldc + c0, ldc, mr, nr, alpha, beta, first);
                            if (right)
                                _tsenor_gemm_store(tile + _TSENOR_GEMM_MR * _TSENOR_GEMM_NR, c + r0 * ldc + c1, ldc, mr,
                                                   nr1, alpha, beta, first);
                        }
                    }
                }
            }
        }
    }
#endif
}

static void _tsenor_sgemm(_tsenor_la *la, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                          float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                          float beta, float *c, size_t ldc, int triangle)
{
    _tsenor_sgemm_on(la, -1, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, triangle);
}

/* ---- Cholesky H = L L^T (lower, in place) and right-side solves with L ------------- */

/* Factors the lower triangle of a (n x n, lda) in place; the strict upper triangle is
   scratch afterwards. inv_diag (NB x NB per diagonal block) receives the inverses of the
   diagonal blocks of L, which the solves use. panel: n x NB floats. Returns 0, or -1 when a
   pivot is not positive (not positive definite). */
static int _tsenor_cholesky(_tsenor_la *la, float *a, size_t n, size_t lda, float *inv_diag, float *panel)
{
#if defined(TSENOR_USE_CBLAS)
    (void)la; (void)inv_diag; (void)panel;
    return LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, a, (lapack_int)lda) == 0 ? 0 : -1;
#else
    const size_t NB = _TSENOR_CHOL_NB;
    size_t j0;
    double d[_TSENOR_CHOL_NB * _TSENOR_CHOL_NB], inv[_TSENOR_CHOL_NB * _TSENOR_CHOL_NB];
    for (j0 = 0; j0 < n; j0 += NB) {
        const size_t jb = n - j0 < NB ? n - j0 : NB, j1 = j0 + jb;
        float *blk_inv = inv_diag + (j0 / NB) * NB * NB;
        size_t i, j, q;
        /* the diagonal block, in f64 */
        for (i = 0; i < jb; i++)
            for (j = 0; j <= i; j++) d[i * NB + j] = (double)a[(j0 + i) * lda + j0 + j];
        for (j = 0; j < jb; j++) {
            double s = d[j * NB + j];
            for (q = 0; q < j; q++) s -= d[j * NB + q] * d[j * NB + q];
            if (!(s > 0.0)) return -1;
            s = sqrt(s);
            d[j * NB + j] = s;
            for (i = j + 1; i < jb; i++) {
                double t = d[i * NB + j];
                for (q = 0; q < j; q++) t -= d[i * NB + q] * d[j * NB + q];
                d[i * NB + j] = t / s;
            }
        }
        for (j = 0; j < jb; j++) {   /* inverse of the lower-triangular block */
            inv[j * NB + j] = 1.0 / d[j * NB + j];
            for (i = j + 1; i < jb; i++) {
                double t = 0.0;
                for (q = j; q < i; q++) t += d[i * NB + q] * inv[q * NB + j];
                inv[i * NB + j] = -t / d[i * NB + i];
            }
        }
        for (i = 0; i < jb; i++)
            for (j = 0; j < jb; j++) {
                if (j <= i) a[(j0 + i) * lda + j0 + j] = (float)d[i * NB + j];
                blk_inv[i * NB + j] = j <= i ? (float)inv[i * NB + j] : 0.0f;
            }
        if (j1 >= n) break;
        /* the panel below: L21 = A21 L11^-T */
        for (i = j1; i < n; i++) memcpy(panel + (i - j1) * NB, a + i * lda + j0, jb * sizeof(float));
        _tsenor_sgemm(la, 0, 1, n - j1, jb, jb, 1.0f, panel, NB, blk_inv, NB, 0.0f, a + j1 * lda + j0, lda,
                      _TSENOR_TRI_FULL);
        /* the trailing matrix: A22 -= L21 L21^T (lower triangle) */
        _tsenor_sgemm(la, 0, 1, n - j1, n - j1, jb, -1.0f, a + j1 * lda + j0, lda, a + j1 * lda + j0, lda, 1.0f,
                      a + j1 * lda + j1, lda, _TSENOR_TRI_LOWER);
    }
    return 0;
#endif
}

/* r (rows x n, ldr) <- r L^-T: solves Y L^T = R. tmp: rows x NB floats. */
#if !defined(TSENOR_USE_CBLAS)
static void _tsenor_trsm_lt_right_on(_tsenor_la *la, int tid, float *r, size_t rows, size_t ldr, const float *l,
                                     size_t n, size_t ldl, const float *inv_diag, float *tmp)
{
    const size_t NB = _TSENOR_CHOL_NB;
    size_t j0, i;
    for (j0 = 0; j0 < n; j0 += NB) {
        const size_t jb = n - j0 < NB ? n - j0 : NB;
        if (j0 > 0)
            _tsenor_sgemm_on(la, tid, 0, 1, rows, jb, j0, -1.0f, r, ldr, l + j0 * ldl, ldl, 1.0f, r + j0, ldr,
                             _TSENOR_TRI_FULL);
        for (i = 0; i < rows; i++) memcpy(tmp + i * NB, r + i * ldr + j0, jb * sizeof(float));
        _tsenor_sgemm_on(la, tid, 0, 1, rows, jb, jb, 1.0f, tmp, NB, inv_diag + (j0 / NB) * NB * NB, NB, 0.0f, r + j0,
                         ldr, _TSENOR_TRI_FULL);
    }
}

/* r (rows x n, ldr) <- r L^-1: solves B L = R. */
static void _tsenor_trsm_l_right_on(_tsenor_la *la, int tid, float *r, size_t rows, size_t ldr, const float *l,
                                    size_t n, size_t ldl, const float *inv_diag, float *tmp)
{
    const size_t NB = _TSENOR_CHOL_NB;
    size_t blocks = (n + NB - 1) / NB, b, i;
    for (b = blocks; b-- > 0;) {
        const size_t j0 = b * NB, jb = n - j0 < NB ? n - j0 : NB, j1 = j0 + jb;
        if (j1 < n)
            _tsenor_sgemm_on(la, tid, 0, 0, rows, jb, n - j1, -1.0f, r + j1, ldr, l + j1 * ldl + j0, ldl, 1.0f, r + j0,
                             ldr, _TSENOR_TRI_FULL);
        for (i = 0; i < rows; i++) memcpy(tmp + i * NB, r + i * ldr + j0, jb * sizeof(float));
        _tsenor_sgemm_on(la, tid, 0, 0, rows, jb, jb, 1.0f, tmp, NB, inv_diag + b * NB * NB, NB, 0.0f, r + j0, ldr,
                         _TSENOR_TRI_FULL);
    }
}

#endif

/* The rows of r are independent right-hand sides: each thread solves a contiguous
   share of them with serial products (one parallel region per solve, not one per
   block); the result does not depend on the split. which: 1 = r L^-T, 2 = r L^-1,
   3 = r (L L^T)^-1. tmp: rows x NB floats. */
static void _tsenor_solve_rows(_tsenor_la *la, int which, float *r, size_t rows, size_t ldr, const float *l, size_t n,
                               size_t ldl, const float *inv_diag, float *tmp)
{
#if defined(TSENOR_USE_CBLAS)
    (void)la; (void)inv_diag; (void)tmp;
    if (which & 1)
        cblas_strsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, (int)rows, (int)n, 1.0f, l, (int)ldl, r, (int)ldr);
    if (which & 2)
        cblas_strsm(CblasRowMajor, CblasRight, CblasLower, CblasNoTrans, CblasNonUnit, (int)rows, (int)n, 1.0f, l, (int)ldl, r, (int)ldr);
#else
    const int T = la->threads > 1 && (double)rows * (double)n * (double)n > 4e6 ? la->threads : 1;
    (void)T;
#ifdef _OPENMP
#pragma omp parallel num_threads(T) if(T > 1)
#endif
    {
#ifdef _OPENMP
        const int tid = omp_get_thread_num(), team = omp_get_num_threads();
#else
        const int tid = 0, team = 1;
#endif
        const size_t share = (rows + (size_t)team - 1) / (size_t)team, r0 = (size_t)tid * share;
        const size_t count = r0 >= rows ? 0 : rows - r0 < share ? rows - r0 : share;
        if (count) {
            if (which & 1)
                _tsenor_trsm_lt_right_on(la, tid, r + r0 * ldr, count, ldr, l, n, ldl, inv_diag, tmp + r0 * _TSENOR_CHOL_NB);
            if (which & 2)
                _tsenor_trsm_l_right_on(la, tid, r + r0 * ldr, count, ldr, l, n, ldl, inv_diag, tmp + r0 * _TSENOR_CHOL_NB);
        }
    }
#endif
}

/* ---- validation ------------------------------------------------------------------ */

/* the shared rules (options, pointers, shapes, overlaps), then what the CPU scans for:
   finiteness of w and H, H's symmetry and diagonal */
static tsenor_status _tsenor_prune_validate(const float *w, size_t rows, size_t cols, size_t ld,
                                            const float *gram, size_t gram_ld, const float *out, size_t out_ld,
                                            const uint8_t *mask, size_t mask_ld, const tsenor_prune_options *opt,
                                            _tsenor_prune_config *pc)
{
    tsenor_status s;
    size_t i, j;
    s = _tsenor_prune_resolve(opt, pc);
    if (s != TSENOR_OK) return s;
    s = _tsenor_prune_check_args(w, rows, cols, ld, gram, gram_ld, out, out_ld, mask, mask_ld, pc->method);
    if (s != TSENOR_OK) return s;
    if (!_tsenor_all_finite(w, TSENOR_DTYPE_F32, rows, cols, ld, pc->cfg.threads)) return TSENOR_ERR_NONFINITE_INPUT;
    if (gram) {
        if (!_tsenor_all_finite(gram, TSENOR_DTYPE_F32, cols, cols, gram_ld, pc->cfg.threads)) return TSENOR_ERR_NONFINITE_INPUT;
        for (i = 0; i < cols; i++) {
            const double hii = (double)gram[i * gram_ld + i];
            if (hii < 0.0) return TSENOR_ERR_INVALID_ARGUMENT;   /* not positive semidefinite */
            for (j = 0; j < i; j++)
                if (!_tsenor_gram_pair_ok(hii, (double)gram[j * gram_ld + j], (double)gram[i * gram_ld + j],
                                          (double)gram[j * gram_ld + i]))
                    return TSENOR_ERR_INVALID_ARGUMENT;   /* asymmetric, or |H_ij| > sqrt(H_ii H_jj) */
        }
    }
    return TSENOR_OK;
}

/* ---- the mask solver as a stage: scores -> 0/1 bytes, timed ---------------------- */
typedef struct _tsenor_prune_stats {
    double projection_seconds, factor_seconds;
    int projections, factorizations, iterations, cg_iterations;
} _tsenor_prune_stats;

static tsenor_status _tsenor_project_mask(const _tsenor_prune_config *pc, const float *scores, size_t rows,
                                          size_t cols, size_t ld, uint8_t *mask, size_t mask_ld,
                                          _tsenor_prune_stats *st)
{
    const double t0 = _tsenor_now();
    tsenor_options o = pc->mask;
    tsenor_status s;
    if ((double)rows * (double)cols < 65536.0) o.threads = 1;   /* a slab: not worth a team */
    s = tsenor_cpu_mask_f32(scores, rows, cols, ld, mask, mask_ld, &o, NULL);
    st->projection_seconds += _tsenor_now() - t0;
    st->projections++;
    return s;
}

/* ---- ADMM's projection: warm-started TSENOR masks -------------------------------
   After the first call each block's Dykstra starts from its previous potentials at the
   final tau (_tsenor_potentials): the scores move little between ADMM iterations, so
   40% of the sweeps (40 of the default 100) reach a plan at least as good as the whole
   epsilon-scaling schedule's cold one. On the 36 MiniLM layers at T16:32 (one-shot
   grams, 2 threads) 20 sweeps gave mean error 0.015956, 40 gave 0.015938, cold 100
   0.015953; rounding and local search get dearer from a plan of fewer sweeps. */
#define _TSENOR_ALPS_WARM_SHARE 0.4

static tsenor_status _tsenor_potentials_init(_tsenor_potentials *wp, const _tsenor_prune_config *pc, size_t rows,
                                             size_t cols)
{
    const size_t m = (size_t)pc->cfg.m, blocks = ((rows + m - 1) / m) * ((cols + m - 1) / m);
    memset(wp, 0, sizeof *wp);
    wp->alpha_beta = (float *)_tsenor_aligned_alloc(blocks * 2 * m, sizeof(float));
    if (!wp->alpha_beta) return TSENOR_ERR_OUT_OF_MEMORY;
    wp->blocks = blocks;
    wp->m = pc->cfg.m;
    wp->iterations = (int)(_TSENOR_ALPS_WARM_SHARE * (double)pc->cfg.iterations + 0.5);
    if (wp->iterations < 1) wp->iterations = 1;
    return TSENOR_OK;
}

static tsenor_status _tsenor_project_potentials(const _tsenor_prune_config *pc, _tsenor_potentials *wp,
                                                const float *scores, size_t rows, size_t cols, size_t ld,
                                                uint8_t *mask, size_t mask_ld, _tsenor_prune_stats *st)
{
    const double t0 = _tsenor_now();
    tsenor_options o = pc->mask;
    tsenor_status s;
    if ((double)rows * (double)cols < 65536.0) o.threads = 1;
    s = _tsenor_mask_with(scores, TSENOR_DTYPE_F32, rows, cols, ld, mask, mask_ld, &o, NULL, wp);
    st->projection_seconds += _tsenor_now() - t0;
    st->projections++;
    return s;
}

/* ---- ADMM's projection: warm-started exact masks --------------------------------
   ALPS projects a slowly changing score matrix once per iteration. With the EXACT
   solver every whole block keeps its dual potentials from the previous call and starts
   from one of two selections: the previous mask, when the last call cancelled few
   cycles (the support has settled: a label-correcting check then confirms it in about
   one scan of the block), or TSENOR's fresh mask, while the support still moves (a
   TSENOR mask is a few cycles from optimal, an old one dozens). Either way the
   remaining negative cycles are cancelled, so each mask is optimal per block, as
   EXACT's. Partial blocks at the right and bottom edges (rows or cols not a multiple
   of m) are solved afresh each time, as sub-matrices tiled from the same origins. */
#define _TSENOR_WARM_MAX_CYCLES 1.0   /* cycles per block in the last call to keep its masks */
typedef struct _tsenor_warm_projection {
    size_t rows, cols, whole_rows, whole_cols;  /* whole_*: the part tiled by whole blocks */
    int m, n, threads, started;
    double cycles;                /* per whole block, in the last call                      */
    double *potentials;           /* 2m per whole block: the row, then the column labels    */
    double *a;                    /* threads x m*m: a block's |scores|                      */
    uint8_t *sel;                 /* threads x m*m: its selection                           */
    double *dist;                 /* threads x 2m                                           */
    int *pred, *stamp, *queue;    /* threads x 2m                                           */
    uint8_t *queued;              /* threads x 2m                                           */
} _tsenor_warm_projection;

static void _tsenor_warm_free(_tsenor_warm_projection *wp)
{
    _tsenor_aligned_free(wp->potentials);
    _tsenor_aligned_free(wp->a);
    _tsenor_aligned_free(wp->sel);
    _tsenor_aligned_free(wp->dist);
    _tsenor_aligned_free(wp->pred);
    _tsenor_aligned_free(wp->stamp);
    _tsenor_aligned_free(wp->queue);
    _tsenor_aligned_free(wp->queued);
    memset(wp, 0, sizeof *wp);
}

static tsenor_status _tsenor_warm_init(_tsenor_warm_projection *wp, const _tsenor_prune_config *pc, size_t rows,
                                       size_t cols)
{
    const size_t m = (size_t)pc->cfg.m, mm = m * m;
    const size_t T = (size_t)(pc->cfg.threads > 0 ? pc->cfg.threads : 1);
    memset(wp, 0, sizeof *wp);
    wp->rows = rows;
    wp->cols = cols;
    wp->whole_rows = rows / m * m;
    wp->whole_cols = cols / m * m;
    wp->m = pc->cfg.m;
    wp->n = pc->cfg.n;
    wp->threads = (int)T;
    wp->potentials = (double *)_tsenor_aligned_alloc((rows / m) * (cols / m) * 2 * m + 1, sizeof(double));
    wp->a = (double *)_tsenor_aligned_alloc(T * mm, sizeof(double));
    wp->sel = (uint8_t *)_tsenor_aligned_alloc(T * mm, 1);
    wp->dist = (double *)_tsenor_aligned_alloc(T * 2 * m, sizeof(double));
    wp->pred = (int *)_tsenor_aligned_alloc(T * 2 * m, sizeof(int));
    wp->stamp = (int *)_tsenor_aligned_alloc(T * 2 * m, sizeof(int));
    wp->queue = (int *)_tsenor_aligned_alloc(T * 2 * m, sizeof(int));
    wp->queued = (uint8_t *)_tsenor_aligned_alloc(T * 2 * m, 1);
    if (!wp->potentials || !wp->a || !wp->sel || !wp->dist || !wp->pred || !wp->stamp || !wp->queue || !wp->queued) {
        _tsenor_warm_free(wp);
        return TSENOR_ERR_OUT_OF_MEMORY;
    }
    return TSENOR_OK;
}

/* the mask of scores (rows x cols, ld) into mask (mask_ld); mask holds the previous
   call's mask on entry once started */
static tsenor_status _tsenor_project_warm(_tsenor_warm_projection *wp, const _tsenor_prune_config *pc,
                                          const float *scores, size_t ld, uint8_t *mask, size_t mask_ld,
                                          _tsenor_prune_stats *st)
{
    const double t0 = _tsenor_now(), seconds = st->projection_seconds;
    const size_t m = (size_t)wp->m, mm = m * m, block_cols = wp->whole_cols / m;
    const ptrdiff_t blocks = (ptrdiff_t)((wp->whole_rows / m) * block_cols);
    const int calls = st->projections;
    long cycles = 0;
    int bad = 0;
    tsenor_status s = TSENOR_OK;
    ptrdiff_t b;
    if (!wp->started || wp->cycles > _TSENOR_WARM_MAX_CYCLES) {   /* TSENOR's masks: a fresh start */
        _tsenor_prune_config fresh = *pc;
        fresh.mask.method = TSENOR_METHOD_TSENOR;
        s = _tsenor_project_mask(&fresh, scores, wp->rows, wp->cols, ld, mask, mask_ld, st);
    } else {                                                       /* the partial blocks, afresh */
        if (wp->whole_cols < wp->cols && wp->whole_rows > 0)
            s = _tsenor_project_mask(pc, scores + wp->whole_cols, wp->whole_rows, wp->cols - wp->whole_cols, ld,
                                     mask + wp->whole_cols, mask_ld, st);
        if (s == TSENOR_OK && wp->whole_rows < wp->rows)
            s = _tsenor_project_mask(pc, scores + wp->whole_rows * ld, wp->rows - wp->whole_rows, wp->cols, ld,
                                     mask + wp->whole_rows * mask_ld, mask_ld, st);
    }
    if (s != TSENOR_OK) return s;
    (void)bad;
#ifdef _OPENMP
#pragma omp parallel for num_threads(wp->threads) schedule(dynamic, 4) if(blocks > 8 && wp->threads > 1) reduction(|:bad) reduction(+:cycles)
#endif
    for (b = 0; b < blocks; b++) {
#ifdef _OPENMP
        const size_t tid = (size_t)omp_get_thread_num();
#else
        const size_t tid = 0;
#endif
        const size_t r0 = (size_t)b / block_cols * m, c0 = (size_t)b % block_cols * m;
        double *a = wp->a + tid * mm, *pot = wp->potentials + (size_t)b * 2 * m;
        uint8_t *sel = wp->sel + tid * mm;
        _tsenor_exact_scratch es;
        size_t i, j;
        es.dist = wp->dist + tid * 2 * m;
        es.pred = wp->pred + tid * 2 * m;
        es.stamp = wp->stamp + tid * 2 * m;
        es.queue = wp->queue + tid * 2 * m;
        es.queued = wp->queued + tid * 2 * m;
        for (i = 0; i < m; i++)
            for (j = 0; j < m; j++) {
                const float v = scores[(r0 + i) * ld + c0 + j];
                a[i * m + j] = fabs((double)v);
                sel[i * m + j] = mask[(r0 + i) * mask_ld + c0 + j];
                bad |= !(v - v == 0.0f);
            }
        if (bad) continue;
        if (!wp->started) for (i = 0; i < 2 * m; i++) pot[i] = 0.0;
        cycles += _tsenor_exact_improve_warm(a, (int)m, sel, &es, pot, pot + m);
        for (i = 0; i < m; i++) memcpy(mask + (r0 + i) * mask_ld + c0, sel + i * m, m);
    }
    wp->started = 1;
    wp->cycles = blocks ? (double)cycles / (double)blocks : 0.0;
    st->projection_seconds = seconds + (_tsenor_now() - t0);
    st->projections = calls + 1;
    return bad ? TSENOR_ERR_NONFINITE_INPUT : TSENOR_OK;
}

static tsenor_status _tsenor_factor(_tsenor_la *la, float *a, size_t n, float *inv_diag, float *panel,
                                    _tsenor_prune_stats *st)
{
    const double t0 = _tsenor_now();
    const int bad = _tsenor_cholesky(la, a, n, n, inv_diag, panel);
    st->factor_seconds += _tsenor_now() - t0;
    st->factorizations++;
    return bad ? TSENOR_ERR_INVALID_ARGUMENT : TSENOR_OK;
}

/* ---- H as the methods use it ---------------------------------------------------- */

/* hd (n x n) = symmetrised H with dead inputs (H_jj = 0) given H_jj = 1, plus damping
   times the mean diagonal; dead[j] = 1 for those inputs. With scale != NULL the result
   is scaled to a unit diagonal, scale[j] = sqrt of the damped diagonal. */
static void _tsenor_hessian_prepare(const float *gram, size_t gram_ld, size_t n, double damping, float *hd,
                                    uint8_t *dead, float *scale, int threads)
{
    double mean = 0.0, add;
    size_t j;
    ptrdiff_t i, nn = (ptrdiff_t)n;
    for (j = 0; j < n; j++) {
        dead[j] = gram[j * gram_ld + j] == 0.0f;
        mean += dead[j] ? 1.0 : (double)gram[j * gram_ld + j];
    }
    mean /= (double)n;
    add = damping * mean;
    (void)threads;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static) if(n > 256)
#endif
    for (i = 0; i < nn; i++) {
        size_t c;
        for (c = 0; c < n; c++)
            hd[(size_t)i * n + c] = (float)(0.5 * ((double)gram[(size_t)i * gram_ld + c] + (double)gram[c * gram_ld + (size_t)i]));
        if (dead[i]) hd[(size_t)i * n + (size_t)i] = 1.0f;
        hd[(size_t)i * n + (size_t)i] = (float)((double)hd[(size_t)i * n + (size_t)i] + add);
    }
    if (scale) {
        for (j = 0; j < n; j++) scale[j] = (float)sqrt((double)hd[j * n + j]);
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static) if(n > 256)
#endif
        for (i = 0; i < nn; i++) {
            size_t c;
            const double si = (double)scale[i];
            for (c = 0; c < n; c++) hd[(size_t)i * n + c] = (float)((double)hd[(size_t)i * n + c] / (si * (double)scale[c]));
            hd[(size_t)i * n + (size_t)i] = 1.0f;
        }
    }
}

/* ---- error: tr(D H D^T) / tr(W H W^T), H as given ------------------------------ */
static double _tsenor_quadratic(_tsenor_la *la, const float *x, size_t rows, size_t cols, size_t ldx,
                                const float *gram, size_t gram_ld, float *tmp)
{
    size_t i, j;
    double s = 0.0;
    _tsenor_sgemm(la, 0, 0, rows, cols, cols, 1.0f, x, ldx, gram, gram_ld, 0.0f, tmp, cols, _TSENOR_TRI_FULL);
    for (i = 0; i < rows; i++) {
        double r = 0.0;
        for (j = 0; j < cols; j++) r += (double)tmp[i * cols + j] * (double)x[i * ldx + j];
        s += r;
    }
    return s;
}

static double _tsenor_prune_error(_tsenor_la *la, const float *w, size_t ld, const float *what, size_t rows,
                                  size_t cols, const float *gram, size_t gram_ld, float *diff, float *tmp)
{
    size_t i, j;
    double num, den;
    for (i = 0; i < rows; i++)
        for (j = 0; j < cols; j++) diff[i * cols + j] = w[i * ld + j] - what[i * cols + j];
    num = _tsenor_quadratic(la, diff, rows, cols, cols, gram, gram_ld, tmp);
    den = _tsenor_quadratic(la, w, rows, cols, ld, gram, gram_ld, tmp);
    if (num < 0.0) num = 0.0;   /* rounding of a PSD form near zero */
    return den > 0.0 ? num / den : 0.0;
}

/* ---- MAGNITUDE and WANDA: a mask of scores, kept weights unchanged ------------- */
static tsenor_status _tsenor_prune_scored(const _tsenor_prune_config *pc, const float *w, size_t rows, size_t cols,
                                          size_t ld, const float *gram, size_t gram_ld, float *what, uint8_t *msk,
                                          _tsenor_prune_stats *st)
{
    size_t i, j;
    tsenor_status s;
    if (pc->method == TSENOR_PRUNE_WANDA) {
        /* |W_ij| sqrt(H_jj), divided by its maximum so that no product overflows */
        double top = 0.0;
        for (j = 0; j < cols; j++) {
            const double c = sqrt((double)gram[j * gram_ld + j]);
            for (i = 0; i < rows; i++) {
                const double v = fabs((double)w[i * ld + j]) * c;
                if (v > top) top = v;
            }
        }
        for (i = 0; i < rows; i++)
            for (j = 0; j < cols; j++)
                what[i * cols + j] = top > 0.0 ? (float)(fabs((double)w[i * ld + j]) * sqrt((double)gram[j * gram_ld + j]) / top) : 0.0f;
        s = _tsenor_project_mask(pc, what, rows, cols, cols, msk, cols, st);
    } else {
        s = _tsenor_project_mask(pc, w, rows, cols, ld, msk, cols, st);
    }
    if (s != TSENOR_OK) return s;
    for (i = 0; i < rows; i++)
        for (j = 0; j < cols; j++) what[i * cols + j] = msk[i * cols + j] ? w[i * ld + j] : 0.0f;
    return TSENOR_OK;
}

/* allocates count 64-byte aligned arrays; on failure frees the ones made and returns 0 */
static int _tsenor_alloc_arrays(void **ptrs[], const size_t bytes[], int count)
{
    int k;
    for (k = 0; k < count; k++) {
        *ptrs[k] = _tsenor_aligned_alloc(bytes[k] ? bytes[k] : 1, 1);
        if (!*ptrs[k]) {
            while (k-- > 0) { _tsenor_aligned_free(*ptrs[k]); *ptrs[k] = NULL; }
            return 0;
        }
    }
    return 1;
}

static void _tsenor_free_arrays(void **ptrs[], int count)
{
    int k;
    for (k = 0; k < count; k++) { _tsenor_aligned_free(*ptrs[k]); *ptrs[k] = NULL; }
}

/* the factor that only checks H (damped) is positive definite: MAGNITUDE and WANDA */
static tsenor_status _tsenor_check_definite(_tsenor_la *la, const _tsenor_prune_config *pc, const float *gram,
                                            size_t gram_ld, size_t n, _tsenor_prune_stats *st)
{
    const size_t NB = _TSENOR_CHOL_NB, blocks = (n + NB - 1) / NB;
    float *hd = NULL, *inv = NULL, *panel = NULL;
    uint8_t *dead = NULL;
    void **p[4];
    size_t b[4];
    tsenor_status s;
    p[0] = (void **)&hd; b[0] = n * n * sizeof(float);
    p[1] = (void **)&inv; b[1] = blocks * NB * NB * sizeof(float);
    p[2] = (void **)&panel; b[2] = n * NB * sizeof(float);
    p[3] = (void **)&dead; b[3] = n;
    if (!_tsenor_alloc_arrays(p, b, 4)) return TSENOR_ERR_OUT_OF_MEMORY;
    _tsenor_hessian_prepare(gram, gram_ld, n, pc->damping, hd, dead, NULL, pc->cfg.threads);
    s = _tsenor_factor(la, hd, n, inv, panel, st);
    _tsenor_free_arrays(p, 4);
    return s;
}

/* ---- SPARSEGPT ------------------------------------------------------------------
   Columns are pruned left to right. With U the upper Cholesky factor of H^-1
   (H^-1 = U^T U), pruning column j to q costs sum_r (w_rj - q_rj)^2 / U_jj^2 and the
   optimal compensation subtracts err_r U[j, j+1:] from the later columns of row r,
   err = (w - q) / U_jj. Every M-column slab is masked on the scores w^2 / U_jj^2 with
   the mask solver (its M x M tiles are the final mask's tiles). Updates inside a block
   of columns are applied at once; those beyond it wait for the block (one sgemm).
   U comes from a Cholesky factor of H read backwards: if J H J = L' L'^T (J reverses
   the order), then H = (J L' J)(J L' J)^T with J L' J upper, and U = J L'^-1 J. */
static tsenor_status _tsenor_prune_sparsegpt(_tsenor_la *la, const _tsenor_prune_config *pc, const float *w,
                                             size_t rows, size_t cols, size_t ld, const float *gram, size_t gram_ld,
                                             float *what, uint8_t *msk, _tsenor_prune_stats *st)
{
    const size_t n = cols, NB = _TSENOR_CHOL_NB, nblk = (n + NB - 1) / NB, m = (size_t)pc->cfg.m;
    const size_t bs = m * (m < 128 ? 128 / m : 1);
    const size_t tmp_rows = rows > n ? rows : n;
    const int T = pc->cfg.threads;
    float *hr = NULL, *u = NULL, *inv = NULL, *panel = NULL, *err = NULL, *score = NULL, *tmp = NULL;
    uint8_t *dead = NULL, *slab = NULL;
    void **p[9];
    size_t b[9], i, j, i1;
    tsenor_status s = TSENOR_OK;
    p[0] = (void **)&hr; b[0] = n * n * sizeof(float);
    p[1] = (void **)&u; b[1] = n * n * sizeof(float);
    p[2] = (void **)&inv; b[2] = nblk * NB * NB * sizeof(float);
    p[3] = (void **)&panel; b[3] = n * NB * sizeof(float);
    p[4] = (void **)&err; b[4] = rows * bs * sizeof(float);
    p[5] = (void **)&score; b[5] = rows * m * sizeof(float);
    p[6] = (void **)&tmp; b[6] = tmp_rows * NB * sizeof(float);
    p[7] = (void **)&dead; b[7] = n;
    p[8] = (void **)&slab; b[8] = rows * m;
    if (!_tsenor_alloc_arrays(p, b, 9)) return TSENOR_ERR_OUT_OF_MEMORY;

    /* U: damped H (dead inputs H_jj = 1), reversed, factored, inverted */
    _tsenor_hessian_prepare(gram, gram_ld, n, pc->damping, u, dead, NULL, T);
    for (i = 0; i < n; i++)
        for (j = 0; j < n; j++) hr[i * n + j] = u[(n - 1 - i) * n + (n - 1 - j)];
    s = _tsenor_factor(la, hr, n, inv, panel, st);
    if (s != TSENOR_OK) goto done;
    for (i = 0; i < n; i++)
        for (j = 0; j < n; j++) u[i * n + j] = i == j ? 1.0f : 0.0f;
    _tsenor_solve_rows(la, 1, u, n, n, hr, n, n, inv, tmp);   /* u = L'^-T */
    for (i = 0; i < n; i++)
        for (j = 0; j < n; j++) hr[i * n + j] = j >= i ? u[(n - 1 - j) * n + (n - 1 - i)] : 0.0f;

    /* dead inputs do not change the output on the calibration data: their weights go */
    for (i = 0; i < rows; i++)
        for (j = 0; j < n; j++) what[i * n + j] = dead[j] ? 0.0f : w[i * ld + j];

    for (i1 = 0; i1 < n; i1 += bs) {
        const size_t i2 = n - i1 < bs ? n : i1 + bs, bw = i2 - i1;
        size_t c0;
        for (c0 = i1; c0 < i2; c0 += m) {
            const size_t mw = i2 - c0 < m ? i2 - c0 : m;
            ptrdiff_t r, nrows = (ptrdiff_t)rows;
            double top = 0.0;
            for (i = 0; i < rows; i++)
                for (j = 0; j < mw; j++) {
                    const double v = fabs((double)what[i * n + c0 + j]) / (double)hr[(c0 + j) * n + c0 + j];
                    if (v > top) top = v;
                }
            for (i = 0; i < rows; i++)
                for (j = 0; j < mw; j++) {
                    const double v = top > 0.0 ? (double)what[i * n + c0 + j] / (double)hr[(c0 + j) * n + c0 + j] / top : 0.0;
                    score[i * mw + j] = (float)(v * v);
                }
            s = _tsenor_project_mask(pc, score, rows, mw, mw, slab, mw, st);
            if (s != TSENOR_OK) goto done;
#ifdef _OPENMP
#pragma omp parallel for num_threads(T) schedule(static) if(rows * mw * bw > ((size_t)1 << 21))
#endif
            for (r = 0; r < nrows; r++) {
                float *wr = what + (size_t)r * n;
                size_t jj, t;
                for (jj = 0; jj < mw; jj++) {
                    const size_t col = c0 + jj;
                    const float *urow = hr + col * n;
                    const float v = wr[col], q = slab[(size_t)r * mw + jj] ? v : 0.0f;
                    const float e = (v - q) / urow[col];
                    wr[col] = q;
                    err[(size_t)r * bw + (col - i1)] = e;
                    msk[(size_t)r * n + col] = slab[(size_t)r * mw + jj];
                    if (e != 0.0f)
                        for (t = col + 1; t < i2; t++) wr[t] -= e * urow[t];
                }
            }
        }
        if (i2 < n)
            _tsenor_sgemm(la, 0, 0, rows, n - i2, bw, -1.0f, err, bw, hr + i1 * n + i2, n, 1.0f, what + i2, n,
                          _TSENOR_TRI_FULL);
    }
done:
    _tsenor_free_arrays(p, 9);
    return s;
}

/* ---- ALPS (Meng, Behdin, Wang, Mazumder 2024) -----------------------------------
   In the scaled problem (H with unit diagonal, W scaled by sqrt(diag H) per input),
   minimise tr((W0 - B) H (W0 - B)^T) subject to B = D, D in the N:M set, by ADMM:
       B = (W0 H - V + rho D) (H + rho I)^-1        every row a solve with H + rho I
       D = P(B + V / rho)                           the mask solver on |B + V/rho|
       V = V + rho (B - D)
   rho grows every 3 iterations (faster while the support moves a lot:
   _tsenor_alps_next_rho); the ADMM stops once the support held for 3 iterations and B
   has met D (|B - D| <= 1e-3 |D|: _tsenor_alps_settled). Then
   conjugate gradients minimise the quadratic on that support (each row independently;
   the unit diagonal makes the Jacobi preconditioner the identity).
   The solve, per value of rho: a Cholesky factor, then either the explicit inverse
   (one sgemm per iteration; forming it costs about two iterations' worth of solves for
   a square layer) or two blocked triangular solves per iteration, which win when the
   layer has far fewer rows than inputs (rows < cols / 2).
   The projection: with EXACT (and by default) each call continues from the previous
   mask and its dual potentials (_tsenor_project_warm); other solvers run afresh. */
typedef struct _tsenor_alps_solver {
    int inverse;                  /* 1: minv = (H + rho I)^-1 is formed                   */
    float *lf, *minv, *inv, *panel, *tmp;
} _tsenor_alps_solver;

static tsenor_status _tsenor_alps_factor(_tsenor_la *la, _tsenor_alps_solver *sv, const float *hn, size_t n,
                                         double rho, _tsenor_prune_stats *st)
{
    size_t j;
    tsenor_status s;
    memcpy(sv->lf, hn, n * n * sizeof(float));
    for (j = 0; j < n; j++) sv->lf[j * n + j] += (float)rho;
    s = _tsenor_factor(la, sv->lf, n, sv->inv, sv->panel, st);
    if (s != TSENOR_OK || !sv->inverse) return s;
    {
        const double t0 = _tsenor_now();
        memset(sv->minv, 0, n * n * sizeof(float));
        for (j = 0; j < n; j++) sv->minv[j * n + j] = 1.0f;
        _tsenor_solve_rows(la, 3, sv->minv, n, n, sv->lf, n, n, sv->inv, sv->tmp);
        st->factor_seconds += _tsenor_now() - t0;
    }
    return TSENOR_OK;
}

/* b <- rhs (H + rho I)^-1; rhs is scratch */
static void _tsenor_alps_solve(_tsenor_la *la, const _tsenor_alps_solver *sv, float *rhs, float *b, size_t rows,
                               size_t n)
{
    if (sv->inverse) {
        _tsenor_sgemm(la, 0, 0, rows, n, n, 1.0f, rhs, n, sv->minv, n, 0.0f, b, n, _TSENOR_TRI_FULL);
    } else {
        memcpy(b, rhs, rows * n * sizeof(float));
        _tsenor_solve_rows(la, 3, b, rows, n, sv->lf, n, n, sv->inv, sv->tmp);
    }
}

static tsenor_status _tsenor_prune_alps(_tsenor_la *la, const _tsenor_prune_config *pc, const float *w,
                                        size_t rows, size_t cols, size_t ld, const float *gram, size_t gram_ld,
                                        float *what, uint8_t *msk, _tsenor_prune_stats *st)
{
    const size_t n = cols, NB = _TSENOR_CHOL_NB, nblk = (n + NB - 1) / NB, rn = rows * cols;
    const int T = pc->cfg.threads;
    const int warm = pc->cfg.method == TSENOR_METHOD_EXACT;
    const int keep_potentials = pc->cfg.method == TSENOR_METHOD_TSENOR && !_tsenor_is_n4(&pc->cfg);
    _tsenor_alps_solver sv;
    _tsenor_warm_projection wp;
    _tsenor_potentials pot;
    float *hn = NULL, *scale = NULL, *w0 = NULL, *g = NULL, *v = NULL, *d = NULL, *b = NULL;
    double *rs = NULL;
    uint8_t *dead = NULL, *ref = NULL;
    void **p[15];
    size_t by[15], i, j;
    double rho = pc->rho;
    ptrdiff_t e, ne = (ptrdiff_t)rn;
    int it;
    tsenor_status s = TSENOR_OK;
    memset(&sv, 0, sizeof sv);
    memset(&wp, 0, sizeof wp);
    memset(&pot, 0, sizeof pot);
    sv.inverse = 2 * rows >= n;
    p[0] = (void **)&hn; by[0] = n * n * sizeof(float);
    p[1] = (void **)&sv.lf; by[1] = n * n * sizeof(float);
    p[2] = (void **)&sv.inv; by[2] = nblk * NB * NB * sizeof(float);
    p[3] = (void **)&sv.panel; by[3] = n * NB * sizeof(float);
    p[4] = (void **)&scale; by[4] = n * sizeof(float);
    p[5] = (void **)&w0; by[5] = rn * sizeof(float);
    p[6] = (void **)&g; by[6] = rn * sizeof(float);
    p[7] = (void **)&v; by[7] = rn * sizeof(float);
    p[8] = (void **)&d; by[8] = rn * sizeof(float);
    p[9] = (void **)&b; by[9] = rn * sizeof(float);
    p[10] = (void **)&sv.tmp; by[10] = (rows > n ? rows : n) * NB * sizeof(float);
    p[11] = (void **)&rs; by[11] = rows * sizeof(double);
    p[12] = (void **)&dead; by[12] = n;
    p[13] = (void **)&ref; by[13] = rn;
    p[14] = (void **)&sv.minv; by[14] = sv.inverse ? n * n * sizeof(float) : 0;
    if (!_tsenor_alloc_arrays(p, by, 15)) return TSENOR_ERR_OUT_OF_MEMORY;
    if (warm && (s = _tsenor_warm_init(&wp, pc, rows, n)) != TSENOR_OK) goto done;
    if (keep_potentials && (s = _tsenor_potentials_init(&pot, pc, rows, n)) != TSENOR_OK) goto done;

    _tsenor_hessian_prepare(gram, gram_ld, n, pc->damping, hn, dead, scale, T);
    for (i = 0; i < rows; i++)
        for (j = 0; j < n; j++) w0[i * n + j] = dead[j] ? 0.0f : w[i * ld + j] * scale[j];
    _tsenor_sgemm(la, 0, 0, rows, n, n, 1.0f, w0, n, hn, n, 0.0f, g, n, _TSENOR_TRI_FULL);   /* W0 H */

    s = warm ? _tsenor_project_warm(&wp, pc, w0, n, msk, n, st)
             : _tsenor_project_potentials(pc, keep_potentials ? &pot : NULL, w0, rows, n, n, msk, n, st);
    if (s != TSENOR_OK) goto done;
    for (i = 0; i < rn; i++) { d[i] = msk[i] ? w0[i] : 0.0f; v[i] = 0.0f; }
    memcpy(ref, msk, rn);
    s = _tsenor_alps_factor(la, &sv, hn, n, rho, st);
    if (s != TSENOR_OK) goto done;

    for (it = 0; it < pc->iterations; it++) {
        const float frho = (float)rho, inv_rho = (float)(1.0 / rho);
        (void)T;
        /* B = (W0 H - V + rho D)(H + rho I)^-1, the right side built in w0 (free until CG) */
#ifdef _OPENMP
#pragma omp parallel for num_threads(T) schedule(static) if(rn > 65536)
#endif
        for (e = 0; e < ne; e++) w0[e] = g[e] - v[e] + frho * d[e];
        _tsenor_alps_solve(la, &sv, w0, b, rows, n);
#ifdef _OPENMP
#pragma omp parallel for num_threads(T) schedule(static) if(rn > 65536)
#endif
        for (e = 0; e < ne; e++) d[e] = b[e] + v[e] * inv_rho;
        s = warm ? _tsenor_project_warm(&wp, pc, d, n, msk, n, st)
                 : _tsenor_project_potentials(pc, keep_potentials ? &pot : NULL, d, rows, n, n, msk, n, st);
        if (s != TSENOR_OK) goto done;
#ifdef _OPENMP
#pragma omp parallel for num_threads(T) schedule(static) if(rn > 65536)
#endif
        for (e = 0; e < ne; e++) {   /* D = the kept part; V += rho (B - D) */
            const float dv = msk[e] ? d[e] : 0.0f;
            d[e] = dv;
            v[e] += frho * (b[e] - dv);
        }
        st->iterations = it + 1;
        if ((it + 1) % _TSENOR_ALPS_CHECK_EVERY == 0) {
            size_t changed = 0, kept = 0;
            double gap = 0.0, size = 0.0;
            for (i = 0; i < rn; i++) {
                const double diff = (double)b[i] - (double)d[i];
                changed += msk[i] != ref[i];
                kept += msk[i];
                gap += diff * diff;
                size += (double)d[i] * (double)d[i];
            }
            memcpy(ref, msk, rn);
            if (_tsenor_alps_settled((double)changed, gap, size)) break;
            rho = _tsenor_alps_next_rho(rho, (double)changed, (double)kept);
            if (it + 1 < pc->iterations) {
                s = _tsenor_alps_factor(la, &sv, hn, n, rho, st);
                if (s != TSENOR_OK) goto done;
            }
        }
    }

    /* CG on the support, from D: x = d, residual w0 <- (W0 H - x H) on the support,
       direction v, product b */
    if (pc->cg_iterations > 0) {
        double total0 = 0.0, total;
        int k;
        memcpy(w0, g, rn * sizeof(float));
        _tsenor_sgemm(la, 0, 0, rows, n, n, -1.0f, d, n, hn, n, 1.0f, w0, n, _TSENOR_TRI_FULL);
        for (i = 0; i < rows; i++) {
            double sum = 0.0;
            for (j = 0; j < n; j++) {
                float *r = w0 + i * n + j;
                if (!msk[i * n + j]) *r = 0.0f;
                v[i * n + j] = *r;
                sum += (double)*r * (double)*r;
            }
            rs[i] = sum;
            total0 += sum;
        }
        for (k = 0; k < pc->cg_iterations && total0 > 0.0; k++) {
            ptrdiff_t r, nrows = (ptrdiff_t)rows;
            _tsenor_sgemm(la, 0, 0, rows, n, n, 1.0f, v, n, hn, n, 0.0f, b, n, _TSENOR_TRI_FULL);
            total = 0.0;
#ifdef _OPENMP
#pragma omp parallel for num_threads(T) schedule(static) if(rn > 65536)
#endif
            for (r = 0; r < nrows; r++) {
                float *pr = v + (size_t)r * n, *qr = b + (size_t)r * n, *xr = d + (size_t)r * n, *res = w0 + (size_t)r * n;
                const uint8_t *mr = msk + (size_t)r * n;
                double pq = 0.0, rs_new = 0.0, alpha, beta;
                size_t c;
                for (c = 0; c < n; c++) {
                    if (!mr[c]) qr[c] = 0.0f;
                    pq += (double)pr[c] * (double)qr[c];
                }
                alpha = pq > 0.0 ? rs[r] / pq : 0.0;
                for (c = 0; c < n; c++) {
                    xr[c] += (float)alpha * pr[c];
                    res[c] -= (float)alpha * qr[c];
                    rs_new += (double)res[c] * (double)res[c];
                }
                beta = rs[r] > 0.0 ? rs_new / rs[r] : 0.0;
                for (c = 0; c < n; c++) pr[c] = res[c] + (float)beta * pr[c];
                rs[r] = rs_new;
            }
            for (i = 0; i < rows; i++) total += rs[i];
            st->cg_iterations = k + 1;
            if (total <= _TSENOR_ALPS_CG_TOL * total0) break;
        }
    }
    for (i = 0; i < rows; i++)
        for (j = 0; j < n; j++) what[i * n + j] = msk[i * n + j] ? d[i * n + j] / scale[j] : 0.0f;
done:
    _tsenor_warm_free(&wp);
    _tsenor_aligned_free(pot.alpha_beta);
    _tsenor_free_arrays(p, 15);
    return s;
}

/* ---- the public calls ------------------------------------------------------------ */

/* the CPU, or the GPU (tsenor_cuda.h) with TSENOR_CUDA */
TSENOR_DEF tsenor_status tsenor_prune_f32(const float *w, size_t rows, size_t cols, size_t ld,
                                          const float *gram, size_t gram_ld,
                                          float *out, size_t out_ld, uint8_t *mask, size_t mask_ld,
                                          const tsenor_prune_options *opt, tsenor_prune_report *report)
{
    return _TSENOR_BACKEND(prune_f32)(w, rows, cols, ld, gram, gram_ld, out, out_ld, mask, mask_ld, opt, report);
}

TSENOR_DEF tsenor_status tsenor_cpu_prune_f32(const float *w, size_t rows, size_t cols, size_t ld,
                                              const float *gram, size_t gram_ld,
                                              float *out, size_t out_ld, uint8_t *mask, size_t mask_ld,
                                              const tsenor_prune_options *opt, tsenor_prune_report *report)
{
    const double t0 = _tsenor_now();
    _tsenor_prune_config pc;
    _tsenor_prune_stats st;
    _tsenor_la la;
    float *what = NULL;
    uint8_t *msk = NULL;
    double error = 0.0;
    size_t i;
    tsenor_status s;
    memset(&pc, 0, sizeof pc);
    memset(&st, 0, sizeof st);
    s = _tsenor_prune_validate(w, rows, cols, ld, gram, gram_ld, out, out_ld, mask, mask_ld, opt, &pc);
    if (s != TSENOR_OK) return s;
    s = _tsenor_la_init(&la, pc.cfg.threads);
    if (s != TSENOR_OK) return s;
    what = (float *)_tsenor_aligned_alloc(rows * cols, sizeof(float));
    msk = (uint8_t *)_tsenor_aligned_alloc(rows * cols, 1);
    if (!what || !msk) { s = TSENOR_ERR_OUT_OF_MEMORY; goto done; }

    switch (pc.method) {
    case TSENOR_PRUNE_SPARSEGPT:
        s = _tsenor_prune_sparsegpt(&la, &pc, w, rows, cols, ld, gram, gram_ld, what, msk, &st);
        break;
    case TSENOR_PRUNE_ALPS:
        s = _tsenor_prune_alps(&la, &pc, w, rows, cols, ld, gram, gram_ld, what, msk, &st);
        break;
    default:
        s = gram ? _tsenor_check_definite(&la, &pc, gram, gram_ld, cols, &st) : TSENOR_OK;
        if (s == TSENOR_OK) s = _tsenor_prune_scored(&pc, w, rows, cols, ld, gram, gram_ld, what, msk, &st);
        break;
    }
    if (s != TSENOR_OK) goto done;
    if (gram) {
        float *diff = (float *)_tsenor_aligned_alloc(rows * cols, sizeof(float));
        float *tmp = (float *)_tsenor_aligned_alloc(rows * cols, sizeof(float));
        if (diff && tmp) error = _tsenor_prune_error(&la, w, ld, what, rows, cols, gram, gram_ld, diff, tmp);
        _tsenor_aligned_free(diff);
        _tsenor_aligned_free(tmp);
        if (!diff || !tmp) { s = TSENOR_ERR_OUT_OF_MEMORY; goto done; }
    }
    /* nothing can fail from here: the caller's buffers are written */
    for (i = 0; i < rows; i++) memcpy(out + i * out_ld, what + i * cols, cols * sizeof(float));
    if (mask)
        for (i = 0; i < rows; i++) memcpy(mask + i * mask_ld, msk + i * cols, cols);
    if (report) {
        report->error = error;
        report->iterations = st.iterations;
        report->backend = la.backend;
        report->projection_seconds = st.projection_seconds;
        report->projections = st.projections;
        report->cg_iterations = st.cg_iterations;
        report->factor_seconds = st.factor_seconds;
        report->factorizations = st.factorizations;
        report->seconds = _tsenor_now() - t0;
    }
done:
    _tsenor_aligned_free(what);
    _tsenor_aligned_free(msk);
    _tsenor_la_free(&la);
    return s;
}

TSENOR_DEF tsenor_status tsenor_gram_f32(const float *x, size_t tokens, size_t cols, size_t ld,
                                         float *gram, size_t gram_ld, int threads)
{
    _tsenor_la la;
    tsenor_status s;
    size_t i, j;
    if (!x || !gram || tokens == 0 || cols == 0 || ld < cols || gram_ld < cols || threads < 0)
        return TSENOR_ERR_INVALID_ARGUMENT;
    if (_tsenor_overflows(tokens, cols, ld) || _tsenor_overflows(cols, cols, gram_ld)) return TSENOR_ERR_INVALID_ARGUMENT;
    if (_tsenor_ranges_overlap(x, _tsenor_extent(tokens, cols, ld, 4), gram, _tsenor_extent(cols, cols, gram_ld, 4)))
        return TSENOR_ERR_INVALID_ARGUMENT;
#ifdef _OPENMP
    if (threads == 0) threads = omp_get_max_threads();
#else
    threads = 1;
#endif
    if (threads < 1) threads = 1;
    if (!_tsenor_all_finite(x, TSENOR_DTYPE_F32, tokens, cols, ld, threads)) return TSENOR_ERR_NONFINITE_INPUT;
    s = _tsenor_la_init(&la, threads);
    if (s != TSENOR_OK) return s;
    /* the upper triangle (a symmetric rank-k update), then the lower one mirrored from it */
    _tsenor_sgemm(&la, 1, 0, cols, cols, tokens, 1.0f, x, ld, x, ld, 1.0f, gram, gram_ld, _TSENOR_TRI_UPPER);
    for (i = 1; i < cols; i++)
        for (j = 0; j < i; j++) gram[i * gram_ld + j] = gram[j * gram_ld + i];
    _tsenor_la_free(&la);
    return TSENOR_OK;
}

TSENOR_DEF const char *tsenor_prune_method_string(tsenor_prune_method method)
{
    switch (method) {
    case TSENOR_PRUNE_DEFAULT:
    case TSENOR_PRUNE_ALPS: return "alps";
    case TSENOR_PRUNE_MAGNITUDE: return "magnitude";
    case TSENOR_PRUNE_WANDA: return "wanda";
    case TSENOR_PRUNE_SPARSEGPT: return "sparsegpt";
    }
    return "unknown";
}

#endif /* TSENOR_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
MIT License

Copyright (c) 2026 the tsenor authors

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
------------------------------------------------------------------------------
*/
