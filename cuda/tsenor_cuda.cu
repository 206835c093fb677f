/* tsenor_cuda.cu - the CUDA backend of tsenor.h (see tsenor_cuda.h for use).
   MIT licence (LICENSE, and the end of tsenor.h).

   Layout of the work. One M x M block is solved by MP threads (MP = m rounded up to a
   power of two, 8 to 32), all inside one warp: thread t owns row t and column t of
   its block (blocks of m <= 4 are solved one per thread: see "small blocks"; n:4 with
   TSENOR or EXACT is the exact search of "n:4 exactly"). The block
   never leaves the chip between stages: |w| and the rounding keys
   live in shared memory, the Dykstra kernel K in registers (a row and a column per
   thread), and one launch runs load -> Dykstra -> threshold preselection -> greedy
   rounds -> repair -> local search -> mask write. EXACT at m != 4 adds a second launch
   that cancels the negative cycles of each block from that kernel's selection ("EXACT").

   The stages mirror the CPU's stages in tsenor.h one to one and carry their names
   (_tsenor_normalize, _tsenor_dykstra with _tsenor_build_kernel, _tsenor_sweep and
   _tsenor_fold_scalings, _tsenor_fit_threshold, _tsenor_greedy_rounds, _tsenor_repair,
   _tsenor_local_search, _tsenor_rank); every rule they share (limits, the epsilon-
   scaling schedule, the greedy key, f16/bf16 decoding, option defaults, argument checks)
   comes from the shared section of tsenor.h, compiled here with _TSENOR_COMMON.
   Differences: where the CPU works on 16 blocks per vector, a thread here works on one
   row; the CPU folds the scalings when any of its 16 lanes drifts, this when any block
   of the warp does (folding changes no iterate, only rounding); greedy rounds compare
   full keys (unique), so they never stall and no scalar greedy is needed afterwards.

   Warp-uniform control flow: every loop whose length depends on data runs until no
   block of the warp needs it (__any_sync), so __syncwarp() is always reached by all. */
#define _TSENOR_COMMON   /* the definitions tsenor.h shares with this backend */
#include "tsenor_cuda_internal.h"

#include <cuda_runtime.h>

#include <float.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <new>

namespace {

const unsigned kFullMask = 0xffffffffu;

thread_local char g_last_error[256];

void set_error(const char *what, cudaError_t e)
{
    snprintf(g_last_error, sizeof g_last_error, "%s: %s", what, cudaGetErrorString(e));
}

struct Problem {
    const void *w;
    tsenor_dtype dt;
    size_t rows, cols, ld;          /* this chunk; ld in elements                    */
    uint8_t *mask;
    size_t mask_ld;
    int n, m, method, iterations, ls_steps;
    float tau, tau_start;
    size_t block_cols, blocks;
    double *partials;               /* per CTA: kept, total                          */
    int *nonfinite;                 /* set to 1 when NaN/Inf is seen                 */
    unsigned *sel_out;              /* EXACT's start: per block, MP row bitmasks of the
                                       selection (then no mask is written); or NULL */
    double *potentials;             /* EXACT: per block 2m doubles (u, then v), or NULL */
};

/* |w[at]| as float (the shared decoders); NaN/Inf set *bad and read as 0 */
__device__ __forceinline__ float load_abs(const void *w, tsenor_dtype dt, size_t at, int *bad)
{
    float v = dt == TSENOR_DTYPE_F32 ? fabsf(((const float *)w)[at])
            : dt == TSENOR_DTYPE_BF16 ? _tsenor_abs_bf16(((const uint16_t *)w)[at])
                                      : _tsenor_abs_f16(((const uint16_t *)w)[at]);
    if (!isfinite(v)) { *bad = 1; v = 0.0f; }
    return v;
}

/* Reciprocal and exponential on the special-function unit, flushing subnormals (the
   sweep's operands are normal: sums are clamped to >= 1e-30, scalings live in
   [1e-12, 1e12], exponents are clamped to [-87, 69]). The plain intrinsics carry a
   subnormal fix-up of five more instructions each. */
__device__ __forceinline__ float fast_rcp(float x)
{
    float r;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
}

__device__ __forceinline__ float fast_exp(float x)
{
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x * 1.4426950408889634f));
    return r;
}


/* Reductions over the MP threads of one block (lanes base .. base+MP-1 of a warp). */
template <int MP> __device__ __forceinline__ int group_max_int(int v)
{
    for (int o = MP / 2; o > 0; o /= 2) v = max(v, __shfl_xor_sync(kFullMask, v, o));
    return v;
}
template <int MP> __device__ __forceinline__ float group_max_float(float v)
{
    for (int o = MP / 2; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
    return v;
}
template <int MP> __device__ __forceinline__ double group_sum_double(double v)
{
    for (int o = MP / 2; o > 0; o /= 2) v += __shfl_xor_sync(kFullMask, v, o);
    return v;
}
/* max value, ties to the lowest index; every thread gets the winner */
template <int MP> __device__ __forceinline__ void group_argmax(float &v, int &idx)
{
    for (int o = MP / 2; o > 0; o /= 2) {
        const float ov = __shfl_xor_sync(kFullMask, v, o);
        const int oi = __shfl_xor_sync(kFullMask, idx, o);
        if (ov > v || (ov == v && oi < idx)) { v = ov; idx = oi; }
    }
}
/* this block's bits of a warp ballot */
template <int MP> __device__ __forceinline__ unsigned group_ballot(int cond)
{
    const unsigned b = __ballot_sync(kFullMask, cond);
    const int base = (threadIdx.x & 31) & ~(MP - 1);
    return MP == 32 ? b : (b >> base) & ((1u << MP) - 1u);
}

template <int MP> struct alignas(16) BlockSmem {
    float a[MP][MP + 1];                  /* |w| / block max, zero padded            */
    union {
        unsigned long long key[MP][MP + 1];   /* greedy keys (plan, |w|, index)      */
        float gain[MP][MP + 1];               /* then: local search pair gains       */
    };
    union {   /* Dykstra's vectors, then the rounds' maxima: 7 CTAs per SM at m = 16 */
        struct {
            alignas(16) float u[MP];      /* read as float4 in the sweep              */
            alignas(16) float v[MP];
            alignas(16) float r[MP];
            float alpha[MP], beta[MP];
        };
        struct {
            unsigned long long rowbest[MP], colbest[MP];
        };
    };
    unsigned sel[MP];                     /* row bitmasks of the selection           */
    int rowcnt[MP], colcnt[MP];
};

template <int MP> struct Cta {
    static const int threads = MP == 32 ? 64 : 128;
    static const int blocks_per_cta = threads / MP;
    static const int min_ctas_per_sm = 7;   /* caps registers for occupancy */
};

/* ---- Dykstra (mirrors _tsenor_dykstra) ------------------------------------- */

/* K = exp((a - alpha_i - beta_j)/tau), clamped; a row and a column per thread. Each
   thread computes its row; for m <= 16 the columns come through shared memory (over
   the greedy keys, unused until the plan), so every exponential is taken once. The
   column entries are the row entries bit for bit either way (same operands, same order). */
template <int MP> __device__ __forceinline__ void _tsenor_build_kernel(BlockSmem<MP> &s, int t, int m, float tau,
                                                                        float (&krow)[MP], float (&kcol)[MP])
{
    const float inv_tau = 1.0f / tau;
    if (MP <= 16) {
        const float alpha_t = s.alpha[t];
#pragma unroll
        for (int j = 0; j < MP; j++) {
            const float e = fminf(fmaxf(((s.a[t][j] - alpha_t) - s.beta[j]) * inv_tau, _TSENOR_EXP_MIN), _TSENOR_EXP_MAX);
            /* padding zeroed by a multiply (exp <= e^69 is finite), not a branch around each
               exponential; with m fixed at compile time (FIXED_M) the multiply folds away */
            krow[j] = fast_exp(e) * (t < m && j < m ? 1.0f : 0.0f);
            s.gain[t][j] = krow[j];
        }
        __syncwarp();
#pragma unroll
        for (int j = 0; j < MP; j++) kcol[j] = s.gain[j][t];
        __syncwarp();
    } else {   /* measured: at m = 32 the transpose costs more than the exponentials */
#pragma unroll
        for (int j = 0; j < MP; j++) {
            const bool in = t < m && j < m;
            const float er = fminf(fmaxf(((s.a[t][j] - s.alpha[t]) - s.beta[j]) * inv_tau, _TSENOR_EXP_MIN), _TSENOR_EXP_MAX);
            const float ec = fminf(fmaxf(((s.a[j][t] - s.alpha[j]) - s.beta[t]) * inv_tau, _TSENOR_EXP_MIN), _TSENOR_EXP_MAX);
            krow[j] = in ? fast_exp(er) : 0.0f;
            kcol[j] = in ? fast_exp(ec) : 0.0f;
        }
    }
}

/* One sweep in scaling form: rows by r = n / sum_j min(K U V, 1), then columns by
   c = n / sum_i r_i min(K U V, 1) (the clip with the old U, as on the CPU), written as
   u * sum_j min(K_ij v_j, 1/u) to take 3 operations per entry. Returns 1 when a scaling
   of this thread left [1/LIMIT, LIMIT]. */
template <int MP> __device__ __forceinline__ int _tsenor_sweep(BlockSmem<MP> &s, int t, int m, int n,
                                                                const float (&krow)[MP], const float (&kcol)[MP],
                                                                float &ut, float &vt)
{
    const float nf = (float)n;
    float sum = 0.0f;
    {
        const float cap = fast_rcp(ut);
        const float4 *v4 = reinterpret_cast<const float4 *>(s.v);
        /* four chains (latency), started with their first terms: an add of 0 is not free */
        float s0 = fminf(krow[0] * v4[0].x, cap), s1 = fminf(krow[1] * v4[0].y, cap);
        float s2 = fminf(krow[2] * v4[0].z, cap), s3 = fminf(krow[3] * v4[0].w, cap);
#pragma unroll
        for (int q = 1; q < MP / 4; q++) {
            const float4 v = v4[q];
            s0 += fminf(krow[4 * q] * v.x, cap);
            s1 += fminf(krow[4 * q + 1] * v.y, cap);
            s2 += fminf(krow[4 * q + 2] * v.z, cap);
            s3 += fminf(krow[4 * q + 3] * v.w, cap);
        }
        sum = (s0 + s1) + (s2 + s3);
    }
    const float r = nf * fast_rcp(fmaxf(sum * ut, _TSENOR_SUM_FLOOR));
    s.r[t] = r;
    __syncwarp();
    float cs = 0.0f;
    {
        const float cap = fast_rcp(vt);
        const float4 *u4 = reinterpret_cast<const float4 *>(s.u), *r4 = reinterpret_cast<const float4 *>(s.r);
        if (MP <= 16) {   /* one FMA chain: 1 multiply + 15 FMAs, where four chains took 4 + 12 + 3
                             (the chain's latency hides behind the other warps: issue-bound) */
            float c = fminf(kcol[0] * u4[0].x, cap) * r4[0].x;
#pragma unroll
            for (int q = 0; q < MP / 4; q++) {
                const float4 u = u4[q], rr = r4[q];
                if (q > 0) c = fmaf(fminf(kcol[4 * q] * u.x, cap), rr.x, c);
                c = fmaf(fminf(kcol[4 * q + 1] * u.y, cap), rr.y, c);
                c = fmaf(fminf(kcol[4 * q + 2] * u.z, cap), rr.z, c);
                c = fmaf(fminf(kcol[4 * q + 3] * u.w, cap), rr.w, c);
            }
            cs = c;
        } else {
            float c0 = fminf(kcol[0] * u4[0].x, cap) * r4[0].x, c1 = fminf(kcol[1] * u4[0].y, cap) * r4[0].y;
            float c2 = fminf(kcol[2] * u4[0].z, cap) * r4[0].z, c3 = fminf(kcol[3] * u4[0].w, cap) * r4[0].w;
#pragma unroll
            for (int q = 1; q < MP / 4; q++) {
                const float4 u = u4[q], rr = r4[q];
                c0 = fmaf(fminf(kcol[4 * q] * u.x, cap), rr.x, c0);
                c1 = fmaf(fminf(kcol[4 * q + 1] * u.y, cap), rr.y, c1);
                c2 = fmaf(fminf(kcol[4 * q + 2] * u.z, cap), rr.z, c2);
                c3 = fmaf(fminf(kcol[4 * q + 3] * u.w, cap), rr.w, c3);
            }
            cs = (c0 + c1) + (c2 + c3);
        }
    }
    const float vn = vt * (nf * fast_rcp(fmaxf(cs * vt, _TSENOR_SUM_FLOOR)));
    __syncwarp();
    if (t < m) {
        ut *= r;
        vt = vn;
    }
    s.u[t] = ut;
    s.v[t] = vt;
    __syncwarp();
    /* bitwise ors: one predicate chain, no branch; padding threads keep u = v = 1, so
       they never drift and need no t < m test */
    return (ut > _TSENOR_SCALE_LIMIT) | (ut < 1.0f / _TSENOR_SCALE_LIMIT) | (vt > _TSENOR_SCALE_LIMIT) | (vt < 1.0f / _TSENOR_SCALE_LIMIT);
}

/* Folds the scalings into the potentials (U = V = 1 after). */
template <int MP> __device__ __forceinline__ void _tsenor_fold_scalings(BlockSmem<MP> &s, int t, float tau,
                                                                         float &ut, float &vt)
{
    s.alpha[t] -= tau * __logf(ut);
    s.beta[t] -= tau * __logf(vt);
    ut = vt = 1.0f;
    s.u[t] = 1.0f;
    s.v[t] = 1.0f;
    __syncwarp();
}

/* The plan min(K U V, 1): this thread's row into xrow, its column into xcol (the same
   products in the same order as the row's owner, so both copies agree bit for bit). */
template <int MP> __device__ void _tsenor_dykstra(BlockSmem<MP> &s, int t, int m, const Problem &P,
                                                         float (&krow)[MP], float (&kcol)[MP])
{
    const int n = P.n;
    /* first potentials: column maxima, then each row's best remaining offset */
    if (MP <= 16) {   /* unrolled, loads first: the rolled loops were chains of load latencies */
        float c = 0.0f;   /* the padding rows of a are 0: they leave the maximum alone */
#pragma unroll
        for (int i = 0; i < MP; i++) c = fmaxf(c, s.a[i][t]);
        s.beta[t] = t < m ? c : 0.0f;
        s.u[t] = 1.0f;
        s.v[t] = 1.0f;
        __syncwarp();
        float r = -2.0f;
#pragma unroll
        for (int j = 0; j < MP; j++) r = fmaxf(r, j < m ? s.a[t][j] - s.beta[j] : -2.0f);
        s.alpha[t] = t < m ? r : 0.0f;
        __syncwarp();
    } else {
        float c = 0.0f;
        for (int i = 0; i < m; i++) c = fmaxf(c, s.a[i][t]);
        s.beta[t] = t < m ? c : 0.0f;
        s.u[t] = 1.0f;
        s.v[t] = 1.0f;
        __syncwarp();
        float r = -2.0f;
        for (int j = 0; j < m; j++) r = fmaxf(r, s.a[t][j] - s.beta[j]);
        s.alpha[t] = t < m ? r : 0.0f;
        __syncwarp();
    }
    float ut = 1.0f, vt = 1.0f;
    const int stages = _tsenor_stage_count(P.tau, P.tau_start);
    int done = 0;
    for (int stage = 0; stage < stages; stage++) {
        const float tau = _tsenor_stage_tau(P.tau, stage, stages);
        const int its = _tsenor_stage_iterations(P.iterations, stage, stages, done);
        int it = 0;
        while (it < its) {   /* one call site of the (unrolled, large) build: i-cache */
            _tsenor_build_kernel<MP>(s, t, m, tau, krow, kcol);
            for (;;) {   /* the count first: no vote after the last sweep, no test at the top */
                const int drift = _tsenor_sweep<MP>(s, t, m, n, krow, kcol, ut, vt);
                if (++it >= its) break;
                if (__any_sync(kFullMask, drift)) {
                    _tsenor_fold_scalings<MP>(s, t, tau, ut, vt);
                    break;   /* rebuild K from the new potentials */
                }
            }
        }
        done += its;
        if (stage < stages - 1) _tsenor_fold_scalings<MP>(s, t, tau, ut, vt);
    }
#pragma unroll
    for (int j = 0; j < MP; j++) {
        krow[j] = fminf(krow[j] * ut * s.v[j], 1.0f);
        kcol[j] = fminf(kcol[j] * s.u[j] * vt, 1.0f);
    }
}

/* ---- rounding (mirrors the CPU's rounding section) -------------------------------- */

/* The (k+1)-th largest of MP values: a bitonic sorting network in registers (no
   data-dependent branches), then a predicated pick (k is known at run time only). */
template <int MP> __device__ __forceinline__ float kth_largest(const float (&x)[MP], int k)
{
    float v[MP];
#pragma unroll
    for (int i = 0; i < MP; i++) v[i] = x[i];
#pragma unroll
    for (int size = 2; size <= MP; size <<= 1)
#pragma unroll
        for (int stride = size >> 1; stride > 0; stride >>= 1)
#pragma unroll
            for (int i = 0; i < MP; i++) {
                const int j = i ^ stride;
                if (j > i) {
                    const float hi = fmaxf(v[i], v[j]), lo = fminf(v[i], v[j]);
                    const bool descending = (i & size) == 0;
                    v[i] = descending ? hi : lo;
                    v[j] = descending ? lo : hi;
                }
            }
    float r = v[0];
#pragma unroll
    for (int i = 1; i < MP; i++) r = i == k ? v[i] : r;
    return r;
}

/* Threshold preselection (the CPU's _tsenor_fit_threshold): the set {plan > theta}
   is taken by greedy whole when no row or column holds more than n of it. The CPU finds
   theta by bisection across its 16 lanes; here, for m <= 16, it is exact: the largest
   (n+1)-th value of any row or column, so every line keeps <= n and the set is the
   largest such. Either way the set is a prefix of the greedy order, so the final
   selection is the same. */
template <int MP> __device__ void _tsenor_fit_threshold(BlockSmem<MP> &s, int t, int n, const float (&xrow)[MP],
                                                               const float (&xcol)[MP])
{
    float theta;
    if (MP <= 16) {
        theta = group_max_float<MP>(fmaxf(kth_largest<MP>(xrow, n), kth_largest<MP>(xcol, n)));
    } else {   /* 2 x 32 values do not fit a sorting network's registers: bisection, as the CPU */
        float lo = 0.0f, hi = 1.0f;
        for (int step = 0; step < _TSENOR_BISECTION_STEPS; step++) {
            const float mid = (lo + hi) * 0.5f;
            int rc = 0, cc = 0;
#pragma unroll
            for (int j = 0; j < MP; j++) {
                rc += xrow[j] > mid;
                cc += xcol[j] > mid;
            }
            if (group_max_int<MP>(max(rc, cc)) > n) lo = mid;
            else hi = mid;
        }
        theta = hi;
    }
    unsigned bits = 0;
    int cc = 0;
#pragma unroll
    for (int j = 0; j < MP; j++) {
        bits |= (unsigned)(xrow[j] > theta) << j;
        cc += xcol[j] > theta;
    }
    s.sel[t] = bits;
    s.rowcnt[t] = __popc(bits);
    s.colcnt[t] = cc;
    __syncwarp();
}

/* Greedy in rounds: an entry whose key is the largest live key of both its row and its
   column is taken by sequential greedy whatever happens to the others, so each round
   takes all of them; keys are unique, so the global maximum is always taken and the
   rounds end exactly at the sequential greedy's selection. */
template <int MP> __device__ void _tsenor_greedy_rounds(BlockSmem<MP> &s, int t, int m, int n)
{
    for (;;) {
        const unsigned row_full = group_ballot<MP>(t >= m || s.rowcnt[t] >= n);
        const unsigned col_full = group_ballot<MP>(t >= m || s.colcnt[t] >= n);
        unsigned long long rbest = 0ull, cbest = 0ull;
        int rj = 0, ci = 0;
        const unsigned my_sel = s.sel[t];
        if (!(row_full >> t & 1u)) {
#pragma unroll
            for (int j = 0; j < MP; j++) {
                const unsigned long long k = s.key[t][j];
                if (!((my_sel | col_full) >> j & 1u) && k > rbest) { rbest = k; rj = j; }
            }
        }
        if (!(col_full >> t & 1u)) {
#pragma unroll
            for (int i = 0; i < MP; i++) {
                const unsigned long long k = s.key[i][t];
                if (!(s.sel[i] >> t & 1u) && !(row_full >> i & 1u) && k > cbest) { cbest = k; ci = i; }
            }
        }
        s.rowbest[t] = rbest;
        s.colbest[t] = cbest;
        __syncwarp();
        const int rtake = rbest != 0ull && s.colbest[rj] == rbest;
        const int ctake = cbest != 0ull && s.rowbest[ci] == cbest;
        __syncwarp();
        if (rtake) { s.sel[t] = my_sel | (1u << rj); s.rowcnt[t]++; }
        if (ctake) s.colcnt[t]++;
        __syncwarp();
        if (!__any_sync(kFullMask, rtake)) break;
    }
}

/* Layered BFS augmentation on one thread (the CPU's _tsenor_repair after its direct
   swap): the best-gain shortest path from a short row to a short column in the residual
   graph. Rare: only when no add-add-remove swap exists. */
template <int MP> __device__ void _tsenor_repair_by_paths(BlockSmem<MP> &s, int m, int n)
{
    int pred[2 * MP], layer[2 * MP], queue[2 * MP];
    float gain[2 * MP];
    int head = 0, tail = 0, best = -1;
    for (int v = 0; v < 2 * m; v++) { layer[v] = -1; pred[v] = -1; }
    for (int v = 0; v < m; v++)
        if (s.rowcnt[v] < n) { layer[v] = 0; gain[v] = 0.0f; queue[tail++] = v; }
    for (int depth = 0; head < tail && best < 0; depth++) {
        const int layer_end = tail;
        for (; head < layer_end; head++) {
            const int u = queue[head];
            if (u < m) {
                for (int j = 0; j < m; j++) {
                    const int c = m + j;
                    const float g = gain[u] + s.a[u][j];
                    if (s.sel[u] >> j & 1u) continue;
                    if (layer[c] < 0) { layer[c] = depth + 1; gain[c] = g; pred[c] = u; queue[tail++] = c; }
                    else if (layer[c] == depth + 1 && g > gain[c]) { gain[c] = g; pred[c] = u; }
                }
            } else {
                const int j = u - m;
                for (int i = 0; i < m; i++) {
                    const float g = gain[u] - s.a[i][j];
                    if (!(s.sel[i] >> j & 1u)) continue;
                    if (layer[i] < 0) { layer[i] = depth + 1; gain[i] = g; pred[i] = u; queue[tail++] = i; }
                    else if (layer[i] == depth + 1 && g > gain[i]) { gain[i] = g; pred[i] = u; }
                }
            }
        }
        for (int v = head; v < tail; v++) {
            const int c = queue[v];
            if (c >= m && s.colcnt[c - m] < n && (best < 0 || gain[c] > gain[best])) best = c;
        }
    }
    if (best < 0) return;   /* cannot happen: a short row implies an augmenting path */
    s.colcnt[best - m]++;
    for (int v = best; pred[v] >= 0; v = pred[v]) {
        const int u = pred[v];
        if (u < m) s.sel[u] |= 1u << (v - m);
        else s.sel[v] &= ~(1u << (u - m));
        if (pred[u] < 0) s.rowcnt[u]++;
    }
}

/* Repair until every row and column keeps n: the add-add-remove swap for the first short
   row and column, searched by all threads (thread k scans row k), else a path. */
template <int MP> __device__ void _tsenor_repair(BlockSmem<MP> &s, int t, int m, int n)
{
    for (;;) {
        const unsigned short_rows = group_ballot<MP>(t < m && s.rowcnt[t] < n);
        const unsigned short_cols = group_ballot<MP>(t < m && s.colcnt[t] < n);
        if (!__any_sync(kFullMask, short_rows != 0u)) return;
        /* every thread of the warp takes part in the argmax; blocks with nothing short
           search nothing */
        const int v = short_rows ? __ffs(short_rows) - 1 : 0, c = short_cols ? __ffs(short_cols) - 1 : 0;
        const int direct = short_rows && short_cols && (s.sel[v] >> c & 1u);
        float best = -8.0f;
        int idx = MP * MP;
        if (direct && t < m && !(s.sel[t] >> c & 1u)) {
            for (int l = 0; l < m; l++) {
                if ((s.sel[t] >> l & 1u) && !(s.sel[v] >> l & 1u)) {
                    const float g = s.a[v][l] + s.a[t][c] - s.a[t][l];
                    if (g > best) { best = g; idx = t * MP + l; }
                }
            }
        }
        group_argmax<MP>(best, idx);
        __syncwarp();
        if (t == 0 && short_rows) {
            if (direct && best > -4.0f) {
                const int k = idx / MP, l = idx % MP;
                s.sel[v] |= 1u << l;
                s.sel[k] = (s.sel[k] | (1u << c)) & ~(1u << l);
                s.rowcnt[v]++;
                s.colcnt[c]++;
            } else {
                _tsenor_repair_by_paths<MP>(s, m, n);
            }
        }
        __syncwarp();
    }
}

/* Gain of the best 2x2 swap between rows lo < hi: with d_j = a[hi][j] - a[lo][j],
   max{d_j : j kept in row lo only} - min{d_j : j kept in row hi only}; the same
   arithmetic whichever thread computes it. Called from two rolled loops only: the
   unrolled body stays out of the i-cache's way. */
template <int MP> __device__ __forceinline__ float pair_gain(const BlockSmem<MP> &s, int lo, int hi)
{
    const unsigned sl = s.sel[lo], sh = s.sel[hi];
    float gmax = -1e30f, gmin = 1e30f;
#pragma unroll
    for (int j = 0; j < MP; j++) {   /* unrolled: independent loads, no serial chain */
        const float d = s.a[hi][j] - s.a[lo][j];
        if ((sl & ~sh) >> j & 1u) gmax = fmaxf(gmax, d);
        if ((sh & ~sl) >> j & 1u) gmin = fminf(gmin, d);
    }
    return gmax - gmin;
}

/* pair_gain(min(t,o), max(t,o)) bit for bit, from thread t's side with its row of |w| in
   registers (one shared load per column instead of two): with e_j = a[o][j] - a[t][j],
   max{e_j : j kept in row t only} - min{e_j : j kept in row o only}. When t is the lower
   row this is pair_gain's arithmetic; when t is the higher, e = -d exactly, the max and
   min trade places with their signs, and (-p) - (-q) == q - p in IEEE arithmetic. */
template <int MP> __device__ __forceinline__ float pair_gain_from(const BlockSmem<MP> &s, const float (&at)[MP],
                                                                  unsigned st, int o)
{
    const unsigned so = s.sel[o];
    float gmax = -1e30f, gmin = 1e30f;
#pragma unroll
    for (int j = 0; j < MP; j++) {
        const float e = s.a[o][j] - at[j];
        if ((st & ~so) >> j & 1u) gmax = fmaxf(gmax, e);
        if ((so & ~st) >> j & 1u) gmin = fminf(gmin, e);
    }
    return gmax - gmin;
}

/* Best-improvement 2x2 swaps (the CPU's _tsenor_local_search): each step takes the
   pair of rows with the largest gain (ties to the lowest pair lo*m + hi), then the
   lowest j1, j2. The gains of all pairs live in a symmetric m x m table (over the dead
   greedy keys): computed once, pairs spread evenly over the threads; after a swap of
   rows i and k, thread t recomputes its pairs with i and with k. */
template <int MP> __device__ void _tsenor_local_search(BlockSmem<MP> &s, int t, int m, int steps)
{
    const float none = -3e30f;
    float at[MP];   /* m <= 16: this thread's row of |w| in registers (pair_gain_from) */
    if (MP <= 16) {
#pragma unroll
        for (int j = 0; j < MP; j++) at[j] = s.a[t][j];
    }
    s.gain[t][t] = none;
    if (t < m) {
#pragma unroll 1
        for (int d = 1; 2 * d <= m; d++) {
            if (2 * d == m && t >= d) break;   /* the opposite pair once */
            const int o = t + d < m ? t + d : t + d - m;   /* (t + d) % m without a division */
            const float g = MP <= 16 ? pair_gain_from<MP>(s, at, s.sel[t], o) : pair_gain<MP>(s, min(t, o), max(t, o));
            s.gain[t][o] = g;
            s.gain[o][t] = g;
        }
    }
    __syncwarp();
    int left = steps;
    for (;;) {
        float best = none;
        int pair = MP * MP * 2;
        if (t < m) {
            /* the pair number min(t,o)*m + max(t,o) grows with o, so a strict > over
               ascending o keeps the lowest pair of a tie; the diagonal holds `none`,
               below every real gain (>= -2e30), so it never wins */
            int bo = t;
            for (int o = 0; o < m; o++) {
                const float g = s.gain[t][o];
                if (g > best) { best = g; bo = o; }
            }
            pair = min(t, bo) * m + max(t, bo);
        }
        group_argmax<MP>(best, pair);
        const int go = left > 0 && best > _TSENOR_LS_MIN_GAIN;
        if (!__any_sync(kFullMask, go)) return;   /* no swap in this warp: nothing to update */
        const int i = go ? pair / m : 0, k = go ? pair % m : 1;   /* the sentinel pair is out of range */
        {   /* j1 = the first j with the largest d over row i only, j2 = the first with the
               smallest over row k only: thread t looks at column t */
            const unsigned si = s.sel[i], sk = s.sel[k];
            const float dj = s.a[k][t] - s.a[i][t];
            float up = (si & ~sk) >> t & 1u ? dj : -3e30f, down = (sk & ~si) >> t & 1u ? -dj : -3e30f;
            int j1 = t, j2 = t;
            group_argmax<MP>(up, j1);
            group_argmax<MP>(down, j2);
            __syncwarp();
            if (go && t == 0) {
                s.sel[i] = (si & ~(1u << j1)) | (1u << j2);
                s.sel[k] = (sk & ~(1u << j2)) | (1u << j1);
            }
        }
        left = go ? left - 1 : 0;
        __syncwarp();
        if (!__any_sync(kFullMask, left > 0)) return;
        if (go && t < m) {
#pragma unroll 1
            for (int q = 0; q < 2; q++) {   /* pairs (t, i) and (t, k); (i, k) once */
                const int o = q ? k : i;
                if (t == o || (q && t == i)) continue;
                const float g = MP <= 16 ? pair_gain_from<MP>(s, at, s.sel[t], o) : pair_gain<MP>(s, min(t, o), max(t, o));
                s.gain[t][o] = g;
                s.gain[o][t] = g;
            }
        }
        __syncwarp();
    }
}

/* ---- the block kernel ---------------------------------------------------------------- */

/* |w| of one block into shared memory, divided by the block max (all-zero stays zero). */
template <int MP> __device__ float _tsenor_normalize(BlockSmem<MP> &s, int t, const Problem &P, const _tsenor_block &B)
{
    int bad = 0;
    float mx = 0.0f, row[MP];
    const bool row_in = t < B.rows;
    const size_t at = (B.r0 + (size_t)t) * P.ld + B.c0;
    const float *wf = (const float *)P.w + at;
    if (row_in && P.dt == TSENOR_DTYPE_F32 && B.cols == MP && ((uintptr_t)wf & 15u) == 0) {
        /* a full f32 row, 16-byte aligned: vector loads */
#pragma unroll
        for (int q = 0; q < MP / 4; q++) {
            const float4 v = reinterpret_cast<const float4 *>(wf)[q];
            row[4 * q] = fabsf(v.x); row[4 * q + 1] = fabsf(v.y); row[4 * q + 2] = fabsf(v.z); row[4 * q + 3] = fabsf(v.w);
        }
#pragma unroll
        for (int j = 0; j < MP; j++)
            if (!isfinite(row[j])) { bad = 1; row[j] = 0.0f; }
    } else {   /* edge blocks, odd strides, half types: element by element, through
                  shared memory (a rolled loop: small code) */
#pragma unroll 1
        for (int j = 0; j < MP; j++) {
            const bool in = row_in && j < B.cols;
            s.a[t][j] = in ? load_abs(P.w, P.dt, at + (size_t)j, &bad) : 0.0f;
        }
#pragma unroll
        for (int j = 0; j < MP; j++) row[j] = s.a[t][j];
    }
    if (bad) atomicOr(P.nonfinite, 1);
#pragma unroll
    for (int j = 0; j < MP; j++) mx = fmaxf(mx, row[j]);
    mx = group_max_float<MP>(mx);
    const float div = mx > 0.0f ? mx : 1.0f;   /* divide: 1/max overflows for subnormals */
#pragma unroll
    for (int j = 0; j < MP; j++) s.a[t][j] = row[j] / div;
    __syncwarp();
    return mx;
}

/* Row t of the mask: whole 4-byte words when the row is full and aligned. */
template <int MP> __device__ __forceinline__ void write_mask_row(uint8_t *out, unsigned bits, int hc)
{
    if (hc == MP && MP >= 4 && ((uintptr_t)out & 3u) == 0) {
#pragma unroll
        for (int q = 0; q < MP / 4; q++) {
            const unsigned b = bits >> (4 * q);
            reinterpret_cast<unsigned *>(out)[q] = (b & 1u) | (b >> 1 & 1u) << 8 | (b >> 2 & 1u) << 16 | (b >> 3 & 1u) << 24;
        }
    } else {
        for (int j = 0; j < hc; j++) out[j] = (uint8_t)(bits >> j & 1u);
    }
}

/* Where a warp's time goes, by stage: built with -DTSENOR_CUDA_PHASE_CLOCKS (make
   cuda-phases), lane 0 of every warp adds the clock cycles of each stage to a counter.
   The normal build compiles the marks away. */
#ifdef TSENOR_CUDA_PHASE_CLOCKS
__device__ unsigned long long g_phase_clocks[8];
#define PHASE_MARK(k)                                                                 \
    do {                                                                              \
        __syncwarp();                                                                 \
        const long long now_ = clock64();                                             \
        if ((threadIdx.x & 31) == 0) atomicAdd(&g_phase_clocks[k], (unsigned long long)(now_ - phase_t0_)); \
        phase_t0_ = now_;                                                             \
    } while (0)
#define PHASE_START long long phase_t0_ = clock64()
#else
#define PHASE_MARK(k) ((void)0)
#define PHASE_START ((void)0)
#endif

/* FIXED_M: m known at compile time (8:16, m = MP): every padding test folds away; 0 = P.m */
template <int MP, int FIXED_M>
__global__ void __launch_bounds__(Cta<MP>::threads, Cta<MP>::min_ctas_per_sm) solve_blocks_kernel(Problem P)
{
    __shared__ BlockSmem<MP> smem[Cta<MP>::blocks_per_cta];
    __shared__ double cta_part[Cta<MP>::blocks_per_cta][2];
    const int g = threadIdx.x / MP, t = threadIdx.x % MP, m = FIXED_M ? FIXED_M : P.m, n = P.n;
    BlockSmem<MP> &s = smem[g];
    const size_t b = (size_t)blockIdx.x * Cta<MP>::blocks_per_cta + (size_t)g;
    const bool active = b < P.blocks;
    const _tsenor_block none = {0, 0, 0, 0};   /* a CTA's blocks past the last: no rows, no columns */
    const _tsenor_block B = active ? _tsenor_block_at(b, P.block_cols, m, P.rows, P.cols) : none;

    PHASE_START;
    const float block_max = _tsenor_normalize<MP>(s, t, P, B);
    PHASE_MARK(0);

    float xrow[MP], xcol[MP];   /* the plan: this thread's row and column */
    if (P.method == TSENOR_METHOD_TSENOR) {
        _tsenor_dykstra<MP>(s, t, m, P, xrow, xcol);
    } else {   /* GREEDY: the plan is |w| itself */
#pragma unroll
        for (int j = 0; j < MP; j++) { xrow[j] = s.a[t][j]; xcol[j] = s.a[j][t]; }
    }
    PHASE_MARK(1);
#pragma unroll
    for (int j = 0; j < MP; j++) s.key[t][j] = t < m && j < m ? _tsenor_greedy_key(xrow[j], s.a[t][j], t, j) : 0ull;
    _tsenor_fit_threshold<MP>(s, t, n, xrow, xcol);
    PHASE_MARK(2);
    _tsenor_greedy_rounds<MP>(s, t, m, n);
    PHASE_MARK(3);
    _tsenor_repair<MP>(s, t, m, n);
    PHASE_MARK(4);
    if (P.method == TSENOR_METHOD_TSENOR && P.ls_steps > 0) _tsenor_local_search<MP>(s, t, m, P.ls_steps);
    PHASE_MARK(5);

    /* write the row; sums as the CPU: per row in float, blocks in double x block max */
    float kept = 0.0f, total = 0.0f;
    const unsigned bits = s.sel[t];
    for (int j = 0; j < m; j++) {
        total += s.a[t][j];
        kept += (bits >> j & 1u) ? s.a[t][j] : 0.0f;
    }
    if (P.sel_out) {
        if (active) P.sel_out[b * MP + (size_t)t] = bits;
    } else if (t < B.rows) {
        write_mask_row<MP>(P.mask + (B.r0 + (size_t)t) * P.mask_ld + B.c0, bits, B.cols);
    }
    const double bk = group_sum_double<MP>((double)kept), bt = group_sum_double<MP>((double)total);
    PHASE_MARK(6);
    if (t == 0) {
        cta_part[g][0] = active ? bk * (double)block_max : 0.0;
        cta_part[g][1] = active ? bt * (double)block_max : 0.0;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double k = 0.0, tt = 0.0;
        for (int q = 0; q < Cta<MP>::blocks_per_cta; q++) { k += cta_part[q][0]; tt += cta_part[q][1]; }
        P.partials[2 * (size_t)blockIdx.x] = k;
        P.partials[2 * (size_t)blockIdx.x + 1] = tt;
    }
}

/* The kept and total sums of a 128-thread CTA, tree-summed in a fixed order into its
   slot of the partials (deterministic). */
__device__ void cta_partials_128(const Problem &P, double kept, double total)
{
    __shared__ double part[128][2];
    part[threadIdx.x][0] = kept;
    part[threadIdx.x][1] = total;
    __syncthreads();
    for (int o = 64; o > 0; o /= 2) {
        if ((int)threadIdx.x < o) {
            part[threadIdx.x][0] += part[threadIdx.x + o][0];
            part[threadIdx.x][1] += part[threadIdx.x + o][1];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        P.partials[2 * (size_t)blockIdx.x] = part[0][0];
        P.partials[2 * (size_t)blockIdx.x + 1] = part[0][1];
    }
}

/* ROWWISE: one thread per group of m consecutive entries of a row; rank counting with
   earlier entries winning ties (the CPU's _tsenor_rank). m up to 64 (MP = 64: 64-bit
   keep bits). */
template <int MP> struct RowBits { typedef unsigned type; };
template <> struct RowBits<64> { typedef unsigned long long type; };

template <int MP> __device__ void _tsenor_rank(const float (&v)[MP], int m, int n, typename RowBits<MP>::type &keep)
{
    typedef typename RowBits<MP>::type Bits;
    keep = 0u;
#pragma unroll
    for (int j = 0; j < MP; j++) {
        int beaten_by = 0;
#pragma unroll
        for (int k = 0; k < MP; k++) beaten_by += k < j ? v[k] >= v[j] : k > j ? v[k] > v[j] : 0;
        if (j < m && beaten_by < n) keep |= (Bits)1u << j;
    }
}

template <int MP>
__global__ void __launch_bounds__(128) rowwise_kernel(Problem P, size_t groups_per_row)
{
    const size_t u = (size_t)blockIdx.x * 128 + threadIdx.x;
    const size_t units = P.rows * groups_per_row;
    double kept = 0.0, total = 0.0;
    if (u < units) {
        const size_t r = u / groups_per_row, c0 = (u % groups_per_row) * (size_t)P.m;
        const int len = P.cols - c0 < (size_t)P.m ? (int)(P.cols - c0) : P.m;
        float v[MP];
        int bad = 0;
        typename RowBits<MP>::type keep;
#pragma unroll
        for (int j = 0; j < MP; j++) v[j] = j < len ? load_abs(P.w, P.dt, r * P.ld + c0 + (size_t)j, &bad) : -1.0f;
        if (bad) atomicOr(P.nonfinite, 1);
        _tsenor_rank<MP>(v, P.m, P.n, keep);
        /* float sums scaled by 2^-8 (FMAs: no extra instruction), so that m values near
           FLT_MAX cannot overflow; scaled back in double (the CPU's rule) */
        float k = 0.0f, tt = 0.0f;
        uint8_t *out = P.mask + r * P.mask_ld + c0;
        for (int j = 0; j < len; j++) {
            out[j] = (uint8_t)(keep >> j & 1u);
            tt = fmaf(v[j], _TSENOR_ROWWISE_SUM_SCALE, tt);
            k = fmaf((keep >> j & 1u) ? v[j] : 0.0f, _TSENOR_ROWWISE_SUM_SCALE, k);
        }
        kept = (double)k / (double)_TSENOR_ROWWISE_SUM_SCALE;
        total = (double)tt / (double)_TSENOR_ROWWISE_SUM_SCALE;
    }
    cta_partials_128(P, kept, total);
}

/* ---- small blocks (m <= 4; n:4 with TSENOR or EXACT has its own kernel below): one
   thread solves a whole block ------------------------------------------------------------
   With 4 threads per block the warp kernel spends its sweeps on exchanges and barriers;
   a 4 x 4 block fits one thread's registers, so here every stage runs in one thread with
   no shared memory: the same stages (overloads of the same names on a SmallBlock), the
   same schedule and rules. The selection is one 16-bit mask (bit 4i + j). Greedy picks
   the largest live key until none is left (the sorted greedy itself; the preselection
   and rounds of the warp kernel are shortcuts to it). */
struct SmallBlock {
    float a[16];
    unsigned sel;
    int m, n;
    __device__ int row_count(int i) const { return __popc(sel >> (4 * i) & 15u); }
    __device__ int col_count(int j) const { return __popc(sel & (0x1111u << j)); }
    __device__ bool has(int i, int j) const { return sel >> (4 * i + j) & 1u; }
};

template <int FIXED_M> __device__ void _tsenor_dykstra(const SmallBlock &b, const Problem &P, float (&x)[16])
{
    const int m = FIXED_M ? FIXED_M : b.m;   /* compile-time for 4: no padding tests */
    const float nf = (float)b.n;
    float K[16], u[4], v[4], alpha[4], beta[4];
#pragma unroll
    for (int j = 0; j < 4; j++) {
        float c = 0.0f;
#pragma unroll
        for (int i = 0; i < 4; i++) c = i < m ? fmaxf(c, b.a[4 * i + j]) : c;
        beta[j] = j < m ? c : 0.0f;
        u[j] = v[j] = 1.0f;
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float r = -2.0f;
#pragma unroll
        for (int j = 0; j < 4; j++) r = j < m ? fmaxf(r, b.a[4 * i + j] - beta[j]) : r;
        alpha[i] = i < m ? r : 0.0f;
    }
    const int stages = _tsenor_stage_count(P.tau, P.tau_start);
    int done = 0;
    for (int stage = 0; stage < stages; stage++) {
        const float tau = _tsenor_stage_tau(P.tau, stage, stages);
        const int its = _tsenor_stage_iterations(P.iterations, stage, stages, done);
        bool rebuild = true;
        for (int it = 0; it < its; it++) {
            if (rebuild) {   /* _tsenor_build_kernel */
                const float inv_tau = 1.0f / tau;
#pragma unroll
                for (int k = 0; k < 16; k++) {
                    const int i = k / 4, j = k % 4;
                    const float e = fminf(fmaxf(((b.a[k] - alpha[i]) - beta[j]) * inv_tau, _TSENOR_EXP_MIN), _TSENOR_EXP_MAX);
                    K[k] = i < m && j < m ? fast_exp(e) : 0.0f;
                }
                rebuild = false;
            }
            /* _tsenor_sweep: rows, then columns with the old u, as the warp kernel */
            float r[4];
            int drift = 0;
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const float cap = fast_rcp(u[i]);
                float sum = 0.0f;
#pragma unroll
                for (int j = 0; j < 4; j++) sum += fminf(K[4 * i + j] * v[j], cap);
                r[i] = nf * fast_rcp(fmaxf(sum * u[i], _TSENOR_SUM_FLOOR));
            }
#pragma unroll
            for (int j = 0; j < 4; j++) {
                const float cap = fast_rcp(v[j]);
                float cs = 0.0f;
#pragma unroll
                for (int i = 0; i < 4; i++) cs = fmaf(fminf(K[4 * i + j] * u[i], cap), r[i], cs);
                if (j < m) v[j] = v[j] * (nf * fast_rcp(fmaxf(cs * v[j], _TSENOR_SUM_FLOOR)));
                drift |= j < m && (v[j] > _TSENOR_SCALE_LIMIT || v[j] < 1.0f / _TSENOR_SCALE_LIMIT);
            }
#pragma unroll
            for (int i = 0; i < 4; i++) {
                if (i < m) u[i] *= r[i];
                drift |= i < m && (u[i] > _TSENOR_SCALE_LIMIT || u[i] < 1.0f / _TSENOR_SCALE_LIMIT);
            }
            if ((drift || (stage < stages - 1 && it + 1 == its)) && (it + 1 < its || stage < stages - 1)) {
                /* _tsenor_fold_scalings: on drift, and at the end of every stage but the last */
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    alpha[k] -= tau * __logf(u[k]);
                    beta[k] -= tau * __logf(v[k]);
                    u[k] = v[k] = 1.0f;
                }
                rebuild = true;
            }
        }
        done += its;
    }
#pragma unroll
    for (int k = 0; k < 16; k++) x[k] = fminf(K[k] * u[k / 4] * v[k % 4], 1.0f);
}

/* Repair on one thread: the add-add-remove swap for the first short row and column, else
   the best-gain shortest augmenting path (layered BFS). */
__device__ void _tsenor_repair(SmallBlock &b)
{
    const int m = b.m, n = b.n;
    for (int guard = 0; guard < 64; guard++) {
        int v = -1, c = -1;
        for (int i = m - 1; i >= 0; i--) if (b.row_count(i) < n) v = i;
        if (v < 0) return;
        for (int j = m - 1; j >= 0; j--) if (b.col_count(j) < n) c = j;
        if (c >= 0 && b.has(v, c)) {
            float best = -8.0f;
            int bk = -1, bl = -1;
            for (int k = 0; k < m; k++) {
                if (b.has(k, c)) continue;
                for (int l = 0; l < m; l++) {
                    if (!b.has(k, l) || b.has(v, l)) continue;
                    const float g = b.a[4 * v + l] + b.a[4 * k + c] - b.a[4 * k + l];
                    if (g > best) { best = g; bk = k; bl = l; }
                }
            }
            if (bk >= 0) {
                b.sel = (b.sel | 1u << (4 * v + bl) | 1u << (4 * bk + c)) & ~(1u << (4 * bk + bl));
                continue;
            }
        }
        int pred[8], layer[8], queue[8];
        float gain[8];
        int head = 0, tail = 0, best = -1;
        for (int q = 0; q < 2 * m; q++) { layer[q] = -1; pred[q] = -1; }
        for (int i = 0; i < m; i++)
            if (b.row_count(i) < n) { layer[i] = 0; gain[i] = 0.0f; queue[tail++] = i; }
        for (int depth = 0; head < tail && best < 0; depth++) {
            const int layer_end = tail;
            for (; head < layer_end; head++) {
                const int q = queue[head];
                for (int o = 0; o < m; o++) {
                    const bool row = q < m;
                    const int node = row ? m + o : o, i = row ? q : o, j = row ? o : q - m;
                    if (b.has(i, j) == row) continue;   /* rows use free entries, columns taken ones */
                    const float g = gain[q] + (row ? b.a[4 * i + j] : -b.a[4 * i + j]);
                    if (layer[node] < 0) { layer[node] = depth + 1; gain[node] = g; pred[node] = q; queue[tail++] = node; }
                    else if (layer[node] == depth + 1 && g > gain[node]) { gain[node] = g; pred[node] = q; }
                }
            }
            for (int q = head; q < tail; q++) {
                const int node = queue[q];
                if (node >= m && b.col_count(node - m) < n && (best < 0 || gain[node] > gain[best])) best = node;
            }
        }
        if (best < 0) return;
        for (int q = best; pred[q] >= 0; q = pred[q]) {
            const int u = pred[q];
            if (u < m) b.sel |= 1u << (4 * u + (q - m));
            else b.sel &= ~(1u << (4 * q + (u - m)));
        }
    }
}

/* Local search on one thread: best-improvement 2x2 swaps, the warp kernel's order. */
__device__ void _tsenor_local_search(SmallBlock &b, int steps)
{
    const int m = b.m;
    for (int step = 0; step < steps; step++) {
        float best = -3e30f;
        int bi = -1, bk = -1;
        for (int i = 0; i < m; i++)
            for (int k = i + 1; k < m; k++) {
                float gmax = -1e30f, gmin = 1e30f;
                for (int j = 0; j < m; j++) {
                    const float d = b.a[4 * k + j] - b.a[4 * i + j];
                    if (b.has(i, j) && !b.has(k, j)) gmax = fmaxf(gmax, d);
                    if (b.has(k, j) && !b.has(i, j)) gmin = fminf(gmin, d);
                }
                if (gmax - gmin > best) { best = gmax - gmin; bi = i; bk = k; }
            }
        if (!(best > _TSENOR_LS_MIN_GAIN)) return;
        float dmax = -3e30f, dmin = 3e30f;
        int j1 = -1, j2 = -1;
        for (int j = 0; j < m; j++) {
            const float d = b.a[4 * bk + j] - b.a[4 * bi + j];
            if (b.has(bi, j) && !b.has(bk, j) && d > dmax) { dmax = d; j1 = j; }
            if (b.has(bk, j) && !b.has(bi, j) && d < dmin) { dmin = d; j2 = j; }
        }
        b.sel = (b.sel & ~(1u << (4 * bi + j1)) & ~(1u << (4 * bk + j2))) | 1u << (4 * bk + j1) | 1u << (4 * bi + j2);
    }
}

/* |w| of one block / its max into b.a (all-zero stays zero); returns the max. */
__device__ float _tsenor_normalize(SmallBlock &b, const Problem &P, const _tsenor_block &B)
{
    int bad = 0;
    float mx = 0.0f;
#pragma unroll
    for (int k = 0; k < 16; k++) {
        const int i = k / 4, j = k % 4;
        const bool in = i < B.rows && j < B.cols;
        b.a[k] = in ? load_abs(P.w, P.dt, (B.r0 + (size_t)i) * P.ld + B.c0 + (size_t)j, &bad) : 0.0f;
        mx = fmaxf(mx, b.a[k]);
    }
    if (bad) atomicOr(P.nonfinite, 1);
    const float div = mx > 0.0f ? mx : 1.0f;
#pragma unroll
    for (int k = 0; k < 16; k++) b.a[k] = b.a[k] / div;
    return mx;
}

/* Greedy in the order of the plan x: the largest live key until none is live. */
__device__ void _tsenor_greedy(SmallBlock &b, const float (&x)[16])
{
    const int m = b.m;
    unsigned long long key[16];
#pragma unroll
    for (int k = 0; k < 16; k++) key[k] = k / 4 < m && k % 4 < m ? _tsenor_greedy_key(x[k], b.a[k], k / 4, k % 4) : 0ull;
    for (;;) {
        unsigned long long best = 0ull;
        int at = 0;
#pragma unroll
        for (int k = 0; k < 16; k++) {
            const bool live = !(b.sel >> k & 1u) && b.row_count(k / 4) < b.n && b.col_count(k % 4) < b.n;
            if (live && key[k] > best) { best = key[k]; at = k; }
        }
        if (!best) break;
        b.sel |= 1u << at;
    }
}

template <int FIXED_M> __global__ void __launch_bounds__(128) solve_small_blocks_kernel(Problem P)
{
    const size_t bidx = (size_t)blockIdx.x * 128 + threadIdx.x;
    double kept_d = 0.0, total_d = 0.0;
    if (bidx < P.blocks) {
        const int m = P.m;
        const _tsenor_block B = _tsenor_block_at(bidx, P.block_cols, m, P.rows, P.cols);
        SmallBlock b;
        b.m = m;
        b.n = P.n;
        b.sel = 0u;
        const float mx = _tsenor_normalize(b, P, B);
        float x[16];
        if (P.method == TSENOR_METHOD_TSENOR) _tsenor_dykstra<FIXED_M>(b, P, x);
        else {
#pragma unroll
            for (int k = 0; k < 16; k++) x[k] = b.a[k];
        }
        _tsenor_greedy(b, x);
        _tsenor_repair(b);
        if (P.method == TSENOR_METHOD_TSENOR && P.ls_steps > 0) _tsenor_local_search(b, P.ls_steps);
        double kept = 0.0, total = 0.0;
        for (int i = 0; i < m; i++) {
            float rk = 0.0f, rt = 0.0f;   /* per row in float, rows in double, as the CPU */
            for (int j = 0; j < m; j++) { rt += b.a[4 * i + j]; rk += b.has(i, j) ? b.a[4 * i + j] : 0.0f; }
            kept += (double)rk;
            total += (double)rt;
            if (i < B.rows) {
                uint8_t *out = P.mask + (B.r0 + (size_t)i) * P.mask_ld + B.c0;
                for (int j = 0; j < B.cols; j++) out[j] = (uint8_t)b.has(i, j);
            }
        }
        kept_d = kept * (double)mx;
        total_d = total * (double)mx;
    }
    cta_partials_128(P, kept_d, total_d);
}

/* ---- n:4 exactly (m = 4, TSENOR and EXACT): the shared section's search ------------
   One thread per 4x4 block, N4_BLOCKS_PER_THREAD blocks per thread (so the partials of
   the report stay few): thread t of a CTA takes blocks base + k*128 + t, so a warp reads
   the rows of 32 neighbouring blocks at once (512 contiguous bytes per row in f32, 256 in
   f16/bf16) and writes 128 contiguous mask bytes per row. The arithmetic is the CPU's
   (tsenor.h, "Transposable n:4 exactly"): float adds in the same order with strict
   comparisons (round-to-nearest adds, no contraction: there is nothing to contract),
   the same power-of-two scale, so the masks are the CPU's bit for bit. */
const int N4_BLOCKS_PER_THREAD = 8;

/* |w| of row i of block B into a[4i..4i+3] (zero padding); NaN/Inf set *bad, read as 0 */
__device__ __forceinline__ void n4_load_row(const Problem &P, const _tsenor_block &B, int i, float *a, int *bad)
{
    const size_t at = (B.r0 + (size_t)i) * P.ld + B.c0;
    if (i >= B.rows) {
        a[0] = a[1] = a[2] = a[3] = 0.0f;
        return;
    }
    if (B.cols == 4 && P.dt == TSENOR_DTYPE_F32 && ((uintptr_t)((const float *)P.w + at) & 15u) == 0) {
        const float4 v = *reinterpret_cast<const float4 *>((const float *)P.w + at);
        a[0] = fabsf(v.x); a[1] = fabsf(v.y); a[2] = fabsf(v.z); a[3] = fabsf(v.w);
#pragma unroll
        for (int j = 0; j < 4; j++)
            if (!isfinite(a[j])) { *bad = 1; a[j] = 0.0f; }
        return;
    }
    if (B.cols == 4 && P.dt != TSENOR_DTYPE_F32 && ((uintptr_t)((const uint16_t *)P.w + at) & 7u) == 0) {
        const uint2 v = *reinterpret_cast<const uint2 *>((const uint16_t *)P.w + at);
        const uint16_t h[4] = {(uint16_t)(v.x & 0xffffu), (uint16_t)(v.x >> 16), (uint16_t)(v.y & 0xffffu), (uint16_t)(v.y >> 16)};
#pragma unroll
        for (int j = 0; j < 4; j++) {
            a[j] = P.dt == TSENOR_DTYPE_BF16 ? _tsenor_abs_bf16(h[j]) : _tsenor_abs_f16(h[j]);
            if (!isfinite(a[j])) { *bad = 1; a[j] = 0.0f; }
        }
        return;
    }
#pragma unroll
    for (int j = 0; j < 4; j++) a[j] = j < B.cols ? load_abs(P.w, P.dt, at + (size_t)j, bad) : 0.0f;
}

template <int N> __global__ void __launch_bounds__(128) solve_n4_kernel(Problem P)
{
    double kept_d = 0.0, total_d = 0.0;
    int bad = 0;
    for (int k = 0; k < N4_BLOCKS_PER_THREAD; k++) {
        const size_t b = ((size_t)blockIdx.x * N4_BLOCKS_PER_THREAD + (size_t)k) * 128 + threadIdx.x;
        if (b >= P.blocks) break;
        const _tsenor_block B = _tsenor_block_at(b, P.block_cols, 4, P.rows, P.cols);
        float a[16];
#pragma unroll
        for (int i = 0; i < 4; i++) n4_load_row(P, B, i, a + 4 * i, &bad);
        float mx = a[0];
#pragma unroll
        for (int q = 1; q < 16; q++) mx = fmaxf(mx, a[q]);
        const float scale = mx > _TSENOR_N4_SCALE_ABOVE ? _TSENOR_N4_SCALE : 1.0f;
#pragma unroll
        for (int q = 0; q < 16; q++) a[q] = __fmul_rn(a[q], scale);   /* a power of two: exact */
        float best, arg;
#define _TSENOR_N4_V float
#define _TSENOR_N4_ADD(x, y) __fadd_rn(x, y)
#define _TSENOR_N4_SET(c) ((float)(c))
#define _TSENOR_N4_BEST(c, bst, code, arg_) \
    if ((c) > (bst)) {                      \
        (bst) = (c);                        \
        (arg_) = (code);                    \
    }
#define _TSENOR_N4_A(i, j) a[4 * (i) + (j)]
        if (N == 1) _TSENOR_N4_SOLVE(1, _TSENOR_N4_A, best, arg)   /* N is known at compile time */
        else if (N == 2) _TSENOR_N4_SOLVE(2, _TSENOR_N4_A, best, arg)
        else _TSENOR_N4_SOLVE(3, _TSENOR_N4_A, best, arg)
#undef _TSENOR_N4_V
#undef _TSENOR_N4_ADD
#undef _TSENOR_N4_SET
#undef _TSENOR_N4_BEST
#undef _TSENOR_N4_A
        const unsigned bits = (unsigned)arg;
        double total = 0.0;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const unsigned row = bits >> (4 * i) & 15u;
            /* the row total left to right, as the CPU's; rows in double */
            total += (double)__fadd_rn(__fadd_rn(__fadd_rn(a[4 * i], a[4 * i + 1]), a[4 * i + 2]), a[4 * i + 3]);
            if (i < B.rows) {
                uint8_t *out = P.mask + (B.r0 + (size_t)i) * P.mask_ld + B.c0;
                if (B.cols == 4 && ((uintptr_t)out & 3u) == 0)
                    *reinterpret_cast<unsigned *>(out) = (row & 1u) | (row >> 1 & 1u) << 8 | (row >> 2 & 1u) << 16 | (row >> 3 & 1u) << 24;
                else
                    for (int j = 0; j < B.cols; j++) out[j] = (uint8_t)(row >> j & 1u);
            }
        }
        const double unscale = scale == 1.0f ? 1.0 : 1.0 / (double)_TSENOR_N4_SCALE;
        kept_d += (double)best * unscale;
        total_d += total * unscale;
    }
    if (bad) atomicOr(P.nonfinite, 1);
    cta_partials_128(P, kept_d, total_d);
}

/* ---- EXACT (m != 4, m <= 32): negative-cycle cancelling, as _tsenor_exact_improve ------
   One warp per block; lane t owns row node t and column node m + t of the block's
   residual graph: row i -> column j over pruned entries at cost -|w_ij|, column j -> row i
   over kept entries at cost +|w_ij|; |w| exact (floats in shared memory), labels and
   sums in double, the CPU's epsilon (1e-12 x the block's max |w|). The start is the
   TSENOR pipeline's selection of the block (sel_in, MP row bitmasks per block); without
   one, or if it is not perfect, the circulant selection (j - i) mod m < n. A Bellman-Ford
   pass relaxes every column node, then every row node (each lane scans its column or
   row, the other side's labels broadcast by shuffles). After each pass, pointer doubling
   over the predecessors finds a cycle when there is one (every cycle of predecessors is a
   negative cycle); the warp walks it once for its gain and the entries it toggles, flips
   it, and the search goes on from the labels it has. A pass that changes nothing ends the
   block: its labels are the dual certificate, u_i = d(row i), v_j = -d(column j), with
   |w_ij| - u_i - v_j >= -eps on kept entries and <= eps on pruned ones. Padding entries of
   edge blocks are zero, as on the CPU, so their rows and columns keep at most n. */
const int EXACT_WARPS = 4;

template <int MP> __global__ void __launch_bounds__(32 * EXACT_WARPS) exact_kernel(Problem P, const unsigned *sel_in)
{
    __shared__ float sa[EXACT_WARPS][MP][MP + 1];
    __shared__ double cta_part[EXACT_WARPS][2];
    const int g = threadIdx.x >> 5, t = threadIdx.x & 31, m = P.m, n = P.n;
    const size_t b = (size_t)blockIdx.x * EXACT_WARPS + (size_t)g;
    double kept = 0.0, total = 0.0;
    if (b < P.blocks) {   /* warp-uniform */
        float (&a)[MP][MP + 1] = sa[g];
        const _tsenor_block B = _tsenor_block_at(b, P.block_cols, m, P.rows, P.cols);
        int bad = 0;
        float amax = 0.0f;
        if (t < MP) {
            for (int i = 0; i < MP; i++) {   /* a row at a time, lanes over columns */
                const float v = i < B.rows && t < B.cols
                              ? load_abs(P.w, P.dt, (B.r0 + (size_t)i) * P.ld + B.c0 + (size_t)t, &bad) : 0.0f;
                a[i][t] = v;
                amax = fmaxf(amax, v);
            }
        }
        if (bad) atomicOr(P.nonfinite, 1);
        for (int o = 16; o > 0; o /= 2) amax = fmaxf(amax, __shfl_xor_sync(kFullMask, amax, o));
        __syncwarp();
        const double eps = (double)amax * 1e-12;

        /* the start: rowbits = row t's kept columns, colbits = column t's kept rows */
        unsigned rowbits = 0u, colbits = 0u;
        if (sel_in && t < m) rowbits = sel_in[b * MP + (size_t)t] & (m == 32 ? kFullMask : (1u << m) - 1u);
        for (int i = 0; i < m; i++) colbits |= (__shfl_sync(kFullMask, rowbits, i) >> t & 1u) << i;
        if (!__all_sync(kFullMask, t >= m || (__popc(rowbits) == n && __popc(colbits) == n))) {
            rowbits = colbits = 0u;
            if (t < m)
                for (int k = 0; k < m; k++) {
                    if ((k - t + m) % m < n) rowbits |= 1u << k;   /* row t, column k */
                    if ((t - k + m) % m < n) colbits |= 1u << k;   /* row k, column t */
                }
        }

        double dr = 0.0, dc = 0.0;   /* labels of row node t and column node m + t */
        int pr = -1, pc = -1;        /* their predecessors (node ids), -1 = none      */
        int rounds = 0, passes = 0;
        while ((1 << rounds) < 2 * m) rounds++;
        for (;;) {
            bool changed = false;
            {   /* column t from every row i over pruned (i, t): d(col) > d(row) - a */
                double best = dc;
                int bp = -1;
                for (int i = 0; i < m; i++) {
                    const double di = __shfl_sync(kFullMask, dr, i);
                    if (t < m && !(colbits >> i & 1u)) {
                        const double c = di - (double)a[i][t];
                        if (c < best - eps) { best = c; bp = i; }
                    }
                }
                if (bp >= 0) { dc = best; pc = bp; changed = true; }
            }
            {   /* row t from every column j over kept (t, j): d(row) > d(col) + a */
                double best = dr;
                int bp = -1;
                for (int j = 0; j < m; j++) {
                    const double dj = __shfl_sync(kFullMask, dc, j);
                    if (t < m && (rowbits >> j & 1u)) {
                        const double c = dj + (double)a[t][j];
                        if (c < best - eps) { best = c; bp = m + j; }
                    }
                }
                if (bp >= 0) { dr = best; pr = bp; changed = true; }
            }
            if (!__any_sync(kFullMask, changed)) break;    /* optimal: the labels certify it */
            if (++passes > 64 * m) break;                  /* cannot happen; guards float noise */

            /* the 2^rounds-th predecessor of every node (2^rounds >= 2m): not -1 only on
               a cycle of predecessors */
            int ar = pr, ac = pc;
            for (int k = 0; k < rounds; k++) {
                const int lr = ar < 0 ? 0 : ar < m ? ar : ar - m, lc = ac < 0 ? 0 : ac < m ? ac : ac - m;
                const int rr = __shfl_sync(kFullMask, ar, lr), rc = __shfl_sync(kFullMask, ac, lr);
                const int cr = __shfl_sync(kFullMask, ar, lc), cc = __shfl_sync(kFullMask, ac, lc);
                ar = ar < 0 ? -1 : ar < m ? rr : rc;
                ac = ac < 0 ? -1 : ac < m ? cr : cc;
            }
            const unsigned on = __ballot_sync(kFullMask, t < m && ar >= 0);   /* a cycle has row nodes */
            if (!on) continue;
            const int at = __shfl_sync(kFullMask, ar, __ffs(on) - 1);

            /* walk it once (warp-uniform): its gain, and the entries it toggles */
            double gain = 0.0;
            unsigned rtog = 0u, ctog = 0u;
            int u = at, steps = 0;
            do {
                const int lu = u < m ? u : u - m;
                const int p_r = __shfl_sync(kFullMask, pr, lu), p_c = __shfl_sync(kFullMask, pc, lu);
                const int p = u < m ? p_r : p_c;
                int i, j;
                if (p < m) { i = p; j = u - m; gain += (double)a[i][j]; }   /* pruned (i, j) is kept */
                else { i = u; j = p - m; gain -= (double)a[i][j]; }         /* kept (i, j) is pruned */
                if (t == i) rtog |= 1u << j;
                if (t == j) ctog |= 1u << i;
                u = p;
            } while (u != at && ++steps < 2 * m);
            if (!(gain > eps)) break;                      /* float noise only: already optimal */
            rowbits ^= rtog;
            colbits ^= ctog;
            pr = pc = -1;
        }

        for (int i = 0; i < B.rows; i++)   /* the mask, a row at a time */
            if (t < B.cols) P.mask[(B.r0 + (size_t)i) * P.mask_ld + B.c0 + (size_t)t] = (uint8_t)(colbits >> i & 1u);
        if (t < m) {
            for (int i = 0; i < m; i++) {
                const double v = (double)a[i][t];
                total += v;
                if (colbits >> i & 1u) kept += v;
            }
            if (P.potentials) {
                P.potentials[b * 2 * (size_t)m + (size_t)t] = dr;
                P.potentials[b * 2 * (size_t)m + (size_t)m + (size_t)t] = -dc;
            }
        }
    }
    for (int o = 16; o > 0; o /= 2) {
        kept += __shfl_xor_sync(kFullMask, kept, o);
        total += __shfl_xor_sync(kFullMask, total, o);
    }
    if (t == 0) { cta_part[g][0] = kept; cta_part[g][1] = total; }
    __syncthreads();
    if (threadIdx.x == 0) {
        double k = 0.0, tt = 0.0;
        for (int q = 0; q < EXACT_WARPS; q++) { k += cta_part[q][0]; tt += cta_part[q][1]; }
        P.partials[2 * (size_t)blockIdx.x] = k;
        P.partials[2 * (size_t)blockIdx.x + 1] = tt;
    }
}

/* ---- TSENOR and GREEDY for 32 < m <= 64: one CTA of 256 threads per block -----------
   A 64 x 64 block does not fit one warp's registers, so the CTA shares it in shared
   memory. TSENOR's Dykstra runs as on the CPU (the same potentials, schedule, sweeps
   and folds; a row's and a column's sums are added in another order, so the plan agrees
   with the CPU's to rounding, not bit for bit). Then both methods round as the CPU:
   greedy in descending order of the full key (_tsenor_greedy_key of the plan, or of
   |w| / block max for GREEDY: the CPU's preselection and rounds take only what that
   order takes), with the block's m*m keys sorted in shared memory (bitonic, 4096 slots,
   padding keys 0 below every real key), taken under the row and column budgets (the
   longest prefix that fits by the whole CTA, the rest by one thread), then the repair
   by one thread (the CPU's code, its scalar swap search: the vector one finds the same
   swap). GREEDY's masks are the CPU's bit for bit. TSENOR
   ends with the CPU's local search: the CTA keeps every row pair's best gain, one
   thread applies the best swap. */
#define WIDE_LD 68   /* Dykstra's K: row stride, so a warp's 8 rows x 4 quarters miss no bank */

struct WideSmem {
    unsigned long long key[4096];
    float a[64 * 64];
    uint8_t sel[64 * 64];
    int rc[64], cc[64];
    int pred[128], layer[128], queue[128];
    float gain[128];
    float red[256];
    int red_at[256];
    unsigned short pos[4096];        /* entry (i << 6 | j) -> its place in the greedy order */
    int prefix;                      /* greedy takes the first `prefix` keys whole          */
    /* TSENOR only (GREEDY's launch leaves this out of its shared memory) */
    struct {
        float x[64 * WIDE_LD];       /* K, then the plan; then the local search's pair gains */
        float alpha[64], beta[64], u[64], v[64], r[64];
        float colpart[4][64];        /* a column's sum, by quarters of its rows */
    } dyk;
};
const size_t kWideSmemGreedy = offsetof(WideSmem, dyk);

/* _tsenor_repair_swap: the best add-add-remove swap for short row i and short column j */
__device__ int repair_swap64(const float *a, int m, uint8_t *sel, int i, int j)
{
    float best = -FLT_MAX;
    int bk = -1, bl = -1;
    const uint8_t *si = sel + i * m;
    const float *ai = a + i * m;
    for (int k = 0; k < m; k++) {
        const uint8_t *sk = sel + k * m;
        const float *ak = a + k * m;
        if (sk[j]) continue;
        for (int l = 0; l < m; l++) {
            const float g = (sk[l] && !si[l]) ? ai[l] + ak[j] - ak[l] : -FLT_MAX;
            if (g > best) { best = g; bk = k; bl = l; }
        }
    }
    if (bk < 0) return 0;
    sel[i * m + bl] = 1;
    sel[bk * m + j] = 1;
    sel[bk * m + bl] = 0;
    return 1;
}

/* _tsenor_repair, line for line */
__device__ void repair64(const float *a, int m, int n, uint8_t *sel, WideSmem &s)
{
    int *pred = s.pred, *layer = s.layer, *queue = s.queue, *rc = s.rc, *cc = s.cc;
    float *gain = s.gain;
    for (;;) {
        int v, head = 0, tail = 0, best = -1, depth, c;
        for (v = 0; v < m; v++) if (rc[v] < n) break;
        if (v == m) return;
        for (c = 0; c < m; c++) if (cc[c] < n) break;
        if (c < m && sel[v * m + c] && repair_swap64(a, m, sel, v, c)) {
            rc[v]++;
            cc[c]++;
            continue;
        }
        for (v = 0; v < 2 * m; v++) { layer[v] = -1; pred[v] = -1; }
        for (v = 0; v < m; v++)
            if (rc[v] < n) { layer[v] = 0; gain[v] = 0.0f; queue[tail++] = v; }
        for (depth = 0; head < tail && best < 0; depth++) {
            int layer_end = tail;
            for (; head < layer_end; head++) {
                int u = queue[head];
                if (u < m) {
                    for (int j = 0; j < m; j++) {
                        int cn = m + j;
                        float g = gain[u] + a[u * m + j];
                        if (sel[u * m + j]) continue;
                        if (layer[cn] < 0) { layer[cn] = depth + 1; gain[cn] = g; pred[cn] = u; queue[tail++] = cn; }
                        else if (layer[cn] == depth + 1 && g > gain[cn]) { gain[cn] = g; pred[cn] = u; }
                    }
                } else {
                    int j = u - m;
                    for (int i = 0; i < m; i++) {
                        float g = gain[u] - a[i * m + j];
                        if (!sel[i * m + j]) continue;
                        if (layer[i] < 0) { layer[i] = depth + 1; gain[i] = g; pred[i] = u; queue[tail++] = i; }
                        else if (layer[i] == depth + 1 && g > gain[i]) { gain[i] = g; pred[i] = u; }
                    }
                }
            }
            for (v = head; v < tail; v++) {
                int cn = queue[v];
                if (cn >= m && cc[cn - m] < n && (best < 0 || gain[cn] > gain[best])) best = cn;
            }
        }
        if (best < 0) return;
        cc[best - m]++;
        for (v = best; pred[v] >= 0; v = pred[v]) {
            int u = pred[v];
            if (u < m) sel[u * m + (v - m)] = 1;
            else sel[v * m + (u - m)] = 0;
            if (pred[u] < 0) rc[u]++;
        }
    }
}

/* K = exp((a - alpha_i - beta_j)/tau), clamped (_tsenor_build_kernel) */
__device__ void wide_build_kernel(WideSmem &s, int m, float tau)
{
    const float inv_tau = 1.0f / tau;
    for (int k = threadIdx.x; k < m * m; k += 256) {
        const int i = k / m, j = k - i * m;
        const float e = fminf(fmaxf(((s.a[k] - s.dyk.alpha[i]) - s.dyk.beta[j]) * inv_tau, _TSENOR_EXP_MIN), _TSENOR_EXP_MAX);
        s.dyk.x[i * WIDE_LD + j] = expf(e);
    }
    __syncthreads();
}

/* _tsenor_fold_scalings: the scalings into the potentials at tau (U = V = 1 after) */
__device__ void wide_fold_scalings(WideSmem &s, int m, float tau)
{
    const int t = threadIdx.x;
    if (t < m) {
        s.dyk.alpha[t] -= tau * logf(s.dyk.u[t]);
        s.dyk.beta[t] -= tau * logf(s.dyk.v[t]);
        s.dyk.u[t] = 1.0f;
        s.dyk.v[t] = 1.0f;
    }
    __syncthreads();
}

/* _tsenor_sweep: rows by r = n / sum_j min(K U V, 1), then columns by the sums of
   r_i min(K U V, 1) with the old U. Four threads per row, then four per column; 1 on
   every thread when a scaling left [1/LIMIT, LIMIT]. */
__device__ int wide_sweep(WideSmem &s, int m, int n)
{
    const int t = threadIdx.x;
    const float nf = (float)n;
    {
        const int i = t >> 2, q = t & 3;
        float sum = 0.0f;
        if (i < m) {
            const float ui = s.dyk.u[i];
            for (int j = q; j < m; j += 4) sum += fminf(s.dyk.x[i * WIDE_LD + j] * ui * s.dyk.v[j], 1.0f);
        }
        sum += __shfl_xor_sync(kFullMask, sum, 1);
        sum += __shfl_xor_sync(kFullMask, sum, 2);
        if (q == 0 && i < m) s.dyk.r[i] = nf / fmaxf(sum, _TSENOR_SUM_FLOOR);
    }
    __syncthreads();
    {
        const int j = t & 63, q = t >> 6, i_end = min(m, 16 * q + 16);
        float c = 0.0f;
        if (j < m) {
            const float vj = s.dyk.v[j];
            for (int i = 16 * q; i < i_end; i++) c += fminf(s.dyk.x[i * WIDE_LD + j] * s.dyk.u[i] * vj, 1.0f) * s.dyk.r[i];
        }
        s.dyk.colpart[q][j] = c;
    }
    __syncthreads();
    int drift = 0;
    if (t < m) {
        const float cs = (s.dyk.colpart[0][t] + s.dyk.colpart[1][t]) + (s.dyk.colpart[2][t] + s.dyk.colpart[3][t]);
        const float ut = s.dyk.u[t] * s.dyk.r[t], vt = s.dyk.v[t] * (nf / fmaxf(cs, _TSENOR_SUM_FLOOR));
        s.dyk.u[t] = ut;
        s.dyk.v[t] = vt;
        drift = (ut > _TSENOR_SCALE_LIMIT) | (ut < 1.0f / _TSENOR_SCALE_LIMIT) | (vt > _TSENOR_SCALE_LIMIT) |
                (vt < 1.0f / _TSENOR_SCALE_LIMIT);
    }
    return __syncthreads_or(drift);
}

/* _tsenor_dykstra with epsilon-scaling; s.dyk.x receives the plan min(K U V, 1) */
__device__ void wide_dykstra(WideSmem &s, int m, const Problem &P)
{
    const int t = threadIdx.x;
    if (t < m) {   /* first potentials: column maxima, then each row's best remaining offset */
        float c = s.a[t];
        for (int i = 1; i < m; i++) c = fmaxf(c, s.a[i * m + t]);
        s.dyk.beta[t] = c;
        s.dyk.u[t] = 1.0f;
        s.dyk.v[t] = 1.0f;
    }
    __syncthreads();
    if (t < m) {
        float r = -2.0f;
        for (int j = 0; j < m; j++) r = fmaxf(r, s.a[t * m + j] - s.dyk.beta[j]);
        s.dyk.alpha[t] = r;
    }
    __syncthreads();
    const int stages = _tsenor_stage_count(P.tau, P.tau_start);
    int done = 0;
    for (int stage = 0; stage < stages; stage++) {
        const float tau = _tsenor_stage_tau(P.tau, stage, stages);
        const int its = _tsenor_stage_iterations(P.iterations, stage, stages, done);
        wide_build_kernel(s, m, tau);
        for (int it = 0; it < its; it++)
            if (wide_sweep(s, m, P.n) && it + 1 < its) {
                wide_fold_scalings(s, m, tau);
                wide_build_kernel(s, m, tau);
            }
        done += its;
        if (stage < stages - 1) wide_fold_scalings(s, m, tau);
    }
    for (int k = t; k < m * m; k += 256) {
        const int i = k / m, j = k - i * m;
        float &x = s.dyk.x[i * WIDE_LD + j];
        x = fminf(x * s.dyk.u[i] * s.dyk.v[j], 1.0f);
    }
    __syncthreads();
}

/* The best 2x2 swap of row pair (i, k): max d_j over j kept in row i only minus min d_l
   over l kept in row k only, d = a_k - a_i (_tsenor_swap_scan). Row k is read from
   column k on, so that a warp's 32 pairs (i, k..k+31) hit 32 banks; max and min do not
   care about the order. */
__device__ __forceinline__ float wide_pair_gain(const WideSmem &s, int m, int i, int k)
{
    const float *ai = s.a + i * m, *ak = s.a + k * m;
    const uint8_t *si = s.sel + i * m, *sk = s.sel + k * m;
    float gmax = -1e30f, gmin = 1e30f;
    for (int jj = 0, j = k % m; jj < m; jj++, j = j + 1 == m ? 0 : j + 1) {
        const float d = ak[j] - ai[j];
        const int ds = (int)si[j] - (int)sk[j];
        if (ds > 0) gmax = fmaxf(gmax, d);
        if (ds < 0) gmin = fminf(gmin, d);
    }
    return gmax - gmin;
}

/* The CTA's best (gain, pair): the largest gain, the lowest pair on ties; every thread
   gets it. Warps reduce by shuffles, then warp 0 over the 8 warps. */
__device__ __forceinline__ void wide_argmax(WideSmem &s, float &gain, int &at)
{
    for (int o = 16; o > 0; o >>= 1) {
        const float g = __shfl_xor_sync(kFullMask, gain, o);
        const int ga = __shfl_xor_sync(kFullMask, at, o);
        if (g > gain || (g == gain && ga < at)) { gain = g; at = ga; }
    }
    const int t = threadIdx.x;
    if ((t & 31) == 0) { s.red[t >> 5] = gain; s.red_at[t >> 5] = at; }
    __syncthreads();
    if (t < 32) {
        gain = t < 8 ? s.red[t] : -FLT_MAX;
        at = t < 8 ? s.red_at[t] : 0x7fffffff;
        for (int o = 4; o > 0; o >>= 1) {
            const float g = __shfl_xor_sync(kFullMask, gain, o);
            const int ga = __shfl_xor_sync(kFullMask, at, o);
            if (g > gain || (g == gain && ga < at)) { gain = g; at = ga; }
        }
        if (t == 0) { s.red[8] = gain; s.red_at[8] = at; }
    }
    __syncthreads();
    gain = s.red[8];
    at = s.red_at[8];
    __syncthreads();   /* red[8] read by all before it is written again */
}

/* _tsenor_local_search: at most `steps` best-improvement 2x2 swaps of gain above
   _TSENOR_LS_MIN_GAIN, the best one of all row pairs each time, the lowest pair (i, k)
   on ties, the CPU's choice of columns (_tsenor_apply_swap, lowest j on ties). The
   gains of the m(m-1)/2 pairs are kept (over the plan, no longer needed): a swap of
   rows i and k changes only the pairs that hold i or k, so each step rescans 2m - 3
   pairs, not all of them. */
__device__ void wide_local_search(WideSmem &s, int m, int steps)
{
    const int t = threadIdx.x;
    float *pair_gain = s.dyk.x;   /* pair (i, k), i < k, at i << 6 | k */
    for (int p = t; p < 4096; p += 256) {
        const int i = p >> 6, k = p & 63;
        pair_gain[p] = i < k && k < m ? wide_pair_gain(s, m, i, k) : -FLT_MAX;
    }
    __syncthreads();
    for (int step = 0; step < steps; step++) {
        float gain = -FLT_MAX;
        int at = 0x7fffffff;
        for (int p = t; p < 4096; p += 256)   /* p rises: strict > keeps the lowest */
            if (pair_gain[p] > gain) { gain = pair_gain[p]; at = p; }
        wide_argmax(s, gain, at);
        if (!(gain > _TSENOR_LS_MIN_GAIN)) return;
        const int i = at >> 6, k = at & 63;
        if (t == 0) {
            float dmax = -FLT_MAX, dmin = FLT_MAX;
            int j1 = -1, j2 = -1;
            for (int j = 0; j < m; j++) {
                const float d = s.a[k * m + j] - s.a[i * m + j];
                const bool in_i = s.sel[i * m + j], in_k = s.sel[k * m + j];
                if (in_i && !in_k && d > dmax) { dmax = d; j1 = j; }
                if (in_k && !in_i && d < dmin) { dmin = d; j2 = j; }
            }
            if (j1 >= 0 && j2 >= 0) {
                s.sel[i * m + j1] = 0;
                s.sel[k * m + j1] = 1;
                s.sel[k * m + j2] = 0;
                s.sel[i * m + j2] = 1;
            }
        }
        __syncthreads();
        if (t < 2 * m) {   /* the pairs holding row i (t < m) or row k; (i, k) once */
            const int x = t < m ? i : k, y = t < m ? t : t - m;
            if (y != x && !(x == k && y == i)) {
                const int lo = min(x, y), hi = max(x, y);
                pair_gain[lo << 6 | hi] = wide_pair_gain(s, m, lo, hi);
            }
        }
        __syncthreads();
    }
}

/* Greedy in key order under the row and column budgets. The longest prefix of the order
   in which no row or column holds more than n is taken whole (none of it can be refused:
   TSENOR's plan puts most of the selection there); it ends at the first key that is the
   (n+1)-th of its row or column. One thread takes the rest in order. */
__device__ void wide_greedy(WideSmem &s, int m, int n)
{
    const int t = threadIdx.x, mm = m * m;
    for (int k = t; k < mm; k += 256) {
        const unsigned long long key = s.key[k];
        s.pos[_tsenor_key_row(key) << 6 | _tsenor_key_col(key)] = (unsigned short)k;
    }
    if (t == 0) s.prefix = mm;
    __syncthreads();
    int first = mm;
    for (int e = t; e < 4096; e += 256) {
        const int i = e >> 6, j = e & 63;
        if (i >= m || j >= m) continue;
        const int pe = s.pos[e];
        int in_row = 0, in_col = 0;   /* earlier keys of e's row and of its column */
        for (int q = 0; q < m; q++) {
            in_row += s.pos[i << 6 | q] < pe;
            in_col += s.pos[q << 6 | j] < pe;
        }
        if ((in_row >= n || in_col >= n) && pe < first) first = pe;
    }
    atomicMin(&s.prefix, first);
    __syncthreads();
    const int prefix = s.prefix;
    for (int e = t; e < 4096; e += 256) {
        const int i = e >> 6, j = e & 63;
        if (i < m && j < m && s.pos[e] < prefix) s.sel[i * m + j] = 1;
    }
    __syncthreads();
    if (t < m) {
        int r = 0, c = 0;
        for (int q = 0; q < m; q++) {
            r += s.sel[t * m + q];
            c += s.sel[q * m + t];
        }
        s.rc[t] = r;
        s.cc[t] = c;
    }
    __syncthreads();
    if (t == 0) {
        int taken = 0;
        for (int i = 0; i < m; i++) taken += s.rc[i];
        for (int k = prefix; k < mm && taken < n * m; k++) {
            const unsigned long long key = s.key[k];
            const int i = _tsenor_key_row(key), j = _tsenor_key_col(key);
            if (s.rc[i] < n && s.cc[j] < n) { s.sel[i * m + j] = 1; s.rc[i]++; s.cc[j]++; taken++; }
        }
    }
}

__global__ void __launch_bounds__(256) solve_wide_blocks_kernel(Problem P)
{
    extern __shared__ __align__(16) unsigned char wide_smem[];
    WideSmem &s = *reinterpret_cast<WideSmem *>(wide_smem);
    const int tid = threadIdx.x, m = P.m, n = P.n, mm = m * m;
    const bool tsenor = P.method == (int)TSENOR_METHOD_TSENOR;
    const _tsenor_block B = _tsenor_block_at((size_t)blockIdx.x, P.block_cols, m, P.rows, P.cols);
    int bad = 0;
    float mx = 0.0f;
    for (int k = tid; k < mm; k += 256) {
        const int i = k / m, j = k % m;
        const float v = i < B.rows && j < B.cols ? load_abs(P.w, P.dt, (B.r0 + (size_t)i) * P.ld + B.c0 + (size_t)j, &bad) : 0.0f;
        s.a[k] = v;
        s.sel[k] = 0;
        mx = fmaxf(mx, v);
    }
    if (bad) atomicOr(P.nonfinite, 1);
    s.red[tid] = mx;
    if (tid < 64) { s.rc[tid] = 0; s.cc[tid] = 0; }
    __syncthreads();
    for (int o = 128; o > 0; o >>= 1) {
        if (tid < o) s.red[tid] = fmaxf(s.red[tid], s.red[tid + o]);
        __syncthreads();
    }
    const float block_max = s.red[0];
    const float div = block_max > 0.0f ? block_max : 1.0f;   /* _tsenor_normalize */
    for (int k = tid; k < mm; k += 256) s.a[k] /= div;
    __syncthreads();
    if (tsenor) wide_dykstra(s, m, P);
    for (int k = tid; k < 4096; k += 256) {
        if (k < mm) {
            const int i = k / m, j = k - i * m;
            s.key[k] = _tsenor_greedy_key(tsenor ? s.dyk.x[i * WIDE_LD + j] : s.a[k], s.a[k], i, j);
        } else {
            s.key[k] = 0ull;
        }
    }
    __syncthreads();
    for (int size = 2; size <= 4096; size <<= 1)   /* bitonic sort, descending */
        for (int stride = size >> 1; stride > 0; stride >>= 1) {
            for (int k = tid; k < 4096; k += 256) {
                const int partner = k ^ stride;
                if (partner > k) {
                    const unsigned long long x = s.key[k], y = s.key[partner];
                    if ((k & size) == 0 ? x < y : x > y) { s.key[k] = y; s.key[partner] = x; }
                }
            }
            __syncthreads();
        }
    wide_greedy(s, m, n);
    if (tid == 0) repair64(s.a, m, n, s.sel, s);
    __syncthreads();
    if (tsenor && P.ls_steps > 0) wide_local_search(s, m, P.ls_steps);
    for (int k = tid; k < B.rows * B.cols; k += 256) {
        const int i = k / B.cols, j = k % B.cols;
        P.mask[(B.r0 + (size_t)i) * P.mask_ld + B.c0 + (size_t)j] = s.sel[i * m + j];
    }
    /* sums as the CPU: per row in float, rows in double x block max */
    __syncthreads();
    if (tid < m) {
        float tot = 0.0f, kept = 0.0f;
        for (int j = 0; j < m; j++) {
            tot += s.a[tid * m + j];
            kept += s.sel[tid * m + j] ? s.a[tid * m + j] : 0.0f;
        }
        s.gain[tid] = tot;
        s.gain[64 + tid] = kept;
    }
    __syncthreads();
    if (tid == 0) {
        double kt = 0.0, tt = 0.0;
        for (int i = 0; i < m; i++) { tt += (double)s.gain[i]; kt += (double)s.gain[64 + i]; }
        P.partials[2 * (size_t)blockIdx.x] = kt * (double)block_max;
        P.partials[2 * (size_t)blockIdx.x + 1] = tt * (double)block_max;
    }
}

/* 1 when the problem takes the n:4 kernel */
bool is_n4(const _tsenor_config &o)
{
    return o.m == 4 && (o.method == TSENOR_METHOD_TSENOR || o.method == TSENOR_METHOD_EXACT);
}

/* Sums the per-CTA partials in a fixed order (one CTA): the report is deterministic. */
__global__ void __launch_bounds__(256) sum_partials_kernel(const double *partials, size_t count, double *out)
{
    __shared__ double acc[256][2];
    double k = 0.0, t = 0.0;
    for (size_t q = threadIdx.x; q < count; q += 256) { k += partials[2 * q]; t += partials[2 * q + 1]; }
    acc[threadIdx.x][0] = k;
    acc[threadIdx.x][1] = t;
    __syncthreads();
    for (int o = 128; o > 0; o /= 2) {
        if ((int)threadIdx.x < o) { acc[threadIdx.x][0] += acc[threadIdx.x + o][0]; acc[threadIdx.x][1] += acc[threadIdx.x + o][1]; }
        __syncthreads();
    }
    if (threadIdx.x == 0) { out[0] += acc[0][0]; out[1] += acc[0][1]; }
}

/* NaN/Inf scan (device-pointer calls check before writing anything). */
__global__ void nonfinite_scan_kernel(const void *w, tsenor_dtype dt, size_t rows, size_t cols, size_t ld, int *flag)
{
    int bad = 0;
    const size_t total = rows * cols, stride = (size_t)gridDim.x * blockDim.x;
    for (size_t q = (size_t)blockIdx.x * blockDim.x + threadIdx.x; q < total; q += stride)
        (void)load_abs(w, dt, (q / cols) * ld + q % cols, &bad);
    if (__syncthreads_or(bad) && threadIdx.x == 0) atomicOr(flag, 1);
}

/* ---- host side ------------------------------------------------------------------------ */

double now_seconds()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int mp_for(int m) { return m <= 4 ? 4 : m <= 8 ? 8 : m <= 16 ? 16 : 32; }

/* 1 when the GPU solves the pattern: m <= TSENOR_CUDA_MAX_M, EXACT up to
   TSENOR_CUDA_MAX_M_EXACT */
bool on_gpu(const _tsenor_config &o)
{
    return o.m <= (o.method == TSENOR_METHOD_EXACT ? TSENOR_CUDA_MAX_M_EXACT : TSENOR_CUDA_MAX_M);
}

/* 1 when EXACT runs the cycle-cancelling kernel (every m <= TSENOR_CUDA_MAX_M_EXACT but 4) */
bool is_exact_cc(const _tsenor_config &o) { return o.method == TSENOR_METHOD_EXACT && !is_n4(o); }

/* Device scratch of a call: per-CTA partials, the running sums, the NaN flag; for EXACT
   the start selections (MP words per block) and, when asked, the potentials. */
struct Scratch {
    double *partials = nullptr;
    double *sums = nullptr;     /* [kept, total] accumulated over chunks */
    int *flag = nullptr;
    size_t partial_capacity = 0;
    unsigned *sel = nullptr;
    size_t sel_blocks = 0;
    double *potentials = nullptr;   /* not owned: the caller's device buffer, or NULL */
};

cudaError_t scratch_alloc(Scratch &sc, size_t ctas, size_t sel_words = 0, size_t sel_blocks = 0)
{
    cudaError_t e;
    if ((e = cudaMalloc(&sc.partials, 2 * (ctas ? ctas : 1) * sizeof(double))) != cudaSuccess) return e;
    if ((e = cudaMalloc(&sc.sums, 2 * sizeof(double))) != cudaSuccess) return e;
    if ((e = cudaMalloc(&sc.flag, sizeof(int))) != cudaSuccess) return e;
    sc.partial_capacity = ctas;
    if (sel_words) {
        if ((e = cudaMalloc(&sc.sel, sel_words * sizeof(unsigned))) != cudaSuccess) return e;
        sc.sel_blocks = sel_blocks;
    }
    return cudaSuccess;
}

void scratch_free(Scratch &sc)
{
    cudaFree(sc.partials);
    cudaFree(sc.sums);
    cudaFree(sc.flag);
    cudaFree(sc.sel);
}

/* CTAs of the first kernel of a solve (for EXACT: the start's pipeline) */
size_t ctas_first(const _tsenor_config &o, size_t rows, size_t cols)
{
    const size_t m = (size_t)o.m;
    if (o.method == TSENOR_METHOD_ROWWISE) return (rows * ((cols + m - 1) / m) + 127) / 128;
    const size_t blocks = ((rows + m - 1) / m) * ((cols + m - 1) / m);
    if (is_n4(o)) return (blocks + 128 * N4_BLOCKS_PER_THREAD - 1) / (128 * N4_BLOCKS_PER_THREAD);
    if (o.m > 32) return blocks;   /* TSENOR, GREEDY: a CTA per block */
    const int bpc = o.m <= 4 ? 128 : mp_for(o.m) == 32 ? Cta<32>::blocks_per_cta : 128 / mp_for(o.m);
    return (blocks + (size_t)bpc - 1) / (size_t)bpc;
}

/* partial slots a solve needs: the largest grid it launches */
size_t ctas_for(const _tsenor_config &o, size_t rows, size_t cols)
{
    const size_t m = (size_t)o.m, first = ctas_first(o, rows, cols);
    const size_t exact = (((rows + m - 1) / m) * ((cols + m - 1) / m) + EXACT_WARPS - 1) / EXACT_WARPS;
    return is_exact_cc(o) && exact > first ? exact : first;
}

/* EXACT's scratch for rows x cols: the start selections, MP words per block */
size_t exact_sel_words(const _tsenor_config &o, size_t rows, size_t cols)
{
    const size_t m = (size_t)o.m;
    return is_exact_cc(o) ? ((rows + m - 1) / m) * ((cols + m - 1) / m) * (size_t)mp_for(o.m) : 0;
}

cudaError_t scratch_alloc_for(Scratch &sc, const _tsenor_config &o, size_t rows, size_t cols)
{
    const size_t words = exact_sel_words(o, rows, cols);
    return scratch_alloc(sc, ctas_for(o, rows, cols), words, words / (size_t)mp_for(o.m));
}

/* Queues the solve of one dense-or-strided device matrix; sums accumulate in sc.sums. */
cudaError_t launch_solve(const void *w, tsenor_dtype dt, size_t rows, size_t cols, size_t ld, uint8_t *mask, size_t mask_ld,
                         const _tsenor_config &o, Scratch &sc, cudaStream_t stream)
{
    Problem P;
    P.w = w; P.dt = dt; P.rows = rows; P.cols = cols; P.ld = ld; P.mask = mask; P.mask_ld = mask_ld;
    P.n = o.n; P.m = o.m; P.method = (int)o.method; P.iterations = o.iterations;
    P.ls_steps = o.local_search_steps;   /* 0 = none */
    P.tau = o.tau; P.tau_start = o.tau_start;
    P.block_cols = (cols + (size_t)o.m - 1) / (size_t)o.m;
    P.blocks = ((rows + (size_t)o.m - 1) / (size_t)o.m) * P.block_cols;
    P.partials = sc.partials;
    P.nonfinite = sc.flag;
    P.sel_out = nullptr;
    P.potentials = nullptr;
    const bool exact = is_exact_cc(o);
    size_t ctas = ctas_first(o, rows, cols);
    if (exact && (P.blocks > sc.sel_blocks || o.m > TSENOR_CUDA_MAX_M_EXACT)) return cudaErrorInvalidValue;
    if (!on_gpu(o)) return cudaErrorInvalidValue;
    if (ctas_for(o, rows, cols) > sc.partial_capacity) return cudaErrorInvalidValue;
    if (ctas_for(o, rows, cols) > 0x7fffffffu) return cudaErrorInvalidConfiguration;
    const unsigned grid = (unsigned)ctas;
    if (o.method == TSENOR_METHOD_ROWWISE) {
        const size_t gpr = (cols + (size_t)o.m - 1) / (size_t)o.m;
        switch (o.m > 32 ? 64 : mp_for(o.m)) {
        case 4: rowwise_kernel<4><<<grid, 128, 0, stream>>>(P, gpr); break;
        case 8: rowwise_kernel<8><<<grid, 128, 0, stream>>>(P, gpr); break;
        case 16: rowwise_kernel<16><<<grid, 128, 0, stream>>>(P, gpr); break;
        case 32: rowwise_kernel<32><<<grid, 128, 0, stream>>>(P, gpr); break;
        default: rowwise_kernel<64><<<grid, 128, 0, stream>>>(P, gpr); break;
        }
    } else if (is_n4(o)) {
        switch (o.n) {
        case 1: solve_n4_kernel<1><<<grid, 128, 0, stream>>>(P); break;
        case 2: solve_n4_kernel<2><<<grid, 128, 0, stream>>>(P); break;
        default: solve_n4_kernel<3><<<grid, 128, 0, stream>>>(P); break;
        }
    } else if (o.m > 32) {   /* TSENOR and GREEDY, 32 < m <= 64 */
        const size_t smem = o.method == TSENOR_METHOD_TSENOR ? sizeof(WideSmem) : kWideSmemGreedy;
        cudaError_t ea = cudaFuncSetAttribute(solve_wide_blocks_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                              (int)sizeof(WideSmem));
        if (ea != cudaSuccess) return ea;
        solve_wide_blocks_kernel<<<grid, 256, smem, stream>>>(P);
    } else if (!exact || o.m > 4) {
        if (exact) {   /* the start: the TSENOR pipeline's selections, kept on the device */
            P.method = (int)TSENOR_METHOD_TSENOR;
            P.sel_out = sc.sel;
        }
        switch (mp_for(o.m)) {
        case 4:
            if (o.m == 4) solve_small_blocks_kernel<4><<<grid, 128, 0, stream>>>(P);
            else solve_small_blocks_kernel<0><<<grid, 128, 0, stream>>>(P);
            break;
        case 8: solve_blocks_kernel<8, 0><<<grid, Cta<8>::threads, 0, stream>>>(P); break;
        case 16:
            if (o.m == 16) solve_blocks_kernel<16, 16><<<grid, Cta<16>::threads, 0, stream>>>(P);
            else solve_blocks_kernel<16, 0><<<grid, Cta<16>::threads, 0, stream>>>(P);
            break;
        default: solve_blocks_kernel<32, 0><<<grid, Cta<32>::threads, 0, stream>>>(P); break;
        }
    }
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
    if (exact) {   /* cancel the negative cycles, block by block */
        const unsigned *start = P.sel_out;
        ctas = (P.blocks + EXACT_WARPS - 1) / EXACT_WARPS;
        P.method = (int)TSENOR_METHOD_EXACT;
        P.sel_out = nullptr;
        P.potentials = sc.potentials;
        switch (mp_for(o.m)) {
        case 4: exact_kernel<4><<<(unsigned)ctas, 32 * EXACT_WARPS, 0, stream>>>(P, start); break;
        case 8: exact_kernel<8><<<(unsigned)ctas, 32 * EXACT_WARPS, 0, stream>>>(P, start); break;
        case 16: exact_kernel<16><<<(unsigned)ctas, 32 * EXACT_WARPS, 0, stream>>>(P, start); break;
        default: exact_kernel<32><<<(unsigned)ctas, 32 * EXACT_WARPS, 0, stream>>>(P, start); break;
        }
        if ((e = cudaGetLastError()) != cudaSuccess) return e;
    }
    sum_partials_kernel<<<1, 256, 0, stream>>>(sc.partials, ctas, sc.sums);
    return cudaGetLastError();
}

/* The options resolved and the arguments checked, by the rules tsenor.h shares with
   the CPU. */
tsenor_status check_args(const void *w, tsenor_dtype dt, size_t rows, size_t cols, size_t ld, const uint8_t *mask,
                         size_t mask_ld, const tsenor_options *opt, _tsenor_config *cfg)
{
    const tsenor_status st = _tsenor_resolve(opt, cfg);
    if (st != TSENOR_OK) return st;
    return _tsenor_check_mask_args(w, dt, rows, cols, ld, mask, mask_ld);
}

tsenor_status device_error(const char *what, cudaError_t e)
{
    set_error(what, e);
    cudaGetLastError();   /* clear a non-sticky error so the next call starts clean */
    return TSENOR_ERR_DEVICE;
}

bool have_device()
{
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) { set_error("cudaGetDeviceCount", e); cudaGetLastError(); return false; }
    if (count == 0) { snprintf(g_last_error, sizeof g_last_error, "no CUDA device"); return false; }
    return true;
}

int tsenor_cuda_device_count_unchecked()
{
    int count = 0;
    return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
}

void fill_report(tsenor_report *report, const double sums[2], size_t blocks, double t0, float kernel_ms)
{
    if (!report) return;
    report->kept = sums[0];
    report->total = sums[1];
    report->blocks = blocks;
    report->backend = "cuda";
    report->threads = 0;
    report->kernel_seconds = 1e-3 * (double)kernel_ms;
    report->seconds = now_seconds() - t0;
}

size_t blocks_of(const _tsenor_config &o, size_t rows, size_t cols)
{
    const size_t m = (size_t)o.m;
    return o.method == TSENOR_METHOD_ROWWISE ? rows * ((cols + m - 1) / m) : ((rows + m - 1) / m) * ((cols + m - 1) / m);
}

/* Device pointers; potentials (device, EXACT only, or NULL): the certificate. */
tsenor_status mask_device(const void *w, tsenor_dtype dt, size_t rows, size_t cols, size_t ld, uint8_t *mask, size_t mask_ld,
                          const tsenor_options *opt, tsenor_report *report, void *stream_ptr, double *potentials = nullptr)
{
    const double t0 = now_seconds();
    _tsenor_config o;
    tsenor_status st = check_args(w, dt, rows, cols, ld, mask, mask_ld, opt, &o);
    if (st != TSENOR_OK) return st;
    if (!on_gpu(o) || (potentials && !is_exact_cc(o))) return TSENOR_ERR_INVALID_ARGUMENT;
    if (!have_device()) return TSENOR_ERR_DEVICE;
    cudaStream_t stream = (cudaStream_t)stream_ptr;
    Scratch sc;
    cudaEvent_t e0 = nullptr, e1 = nullptr;
    cudaError_t e;
    int flag = 0;
    double sums[2] = {0.0, 0.0};
    float ms = 0.0f;
    if ((e = scratch_alloc_for(sc, o, rows, cols)) != cudaSuccess) { scratch_free(sc); return device_error("cudaMalloc", e); }
    sc.potentials = potentials;
    if ((e = cudaEventCreate(&e0)) != cudaSuccess || (e = cudaEventCreate(&e1)) != cudaSuccess) { st = device_error("cudaEventCreate", e); goto done; }
    if ((e = cudaMemsetAsync(sc.flag, 0, sizeof(int), stream)) != cudaSuccess ||
        (e = cudaMemsetAsync(sc.sums, 0, 2 * sizeof(double), stream)) != cudaSuccess) { st = device_error("cudaMemsetAsync", e); goto done; }
    nonfinite_scan_kernel<<<1024, 256, 0, stream>>>(w, dt, rows, cols, ld, sc.flag);
    if ((e = cudaGetLastError()) != cudaSuccess) { st = device_error("nonfinite scan launch", e); goto done; }
    if ((e = cudaMemcpyAsync(&flag, sc.flag, sizeof(int), cudaMemcpyDeviceToHost, stream)) != cudaSuccess ||
        (e = cudaStreamSynchronize(stream)) != cudaSuccess) { st = device_error("nonfinite scan", e); goto done; }
    if (flag) { st = TSENOR_ERR_NONFINITE_INPUT; goto done; }
    cudaEventRecord(e0, stream);
    if ((e = launch_solve(w, dt, rows, cols, ld, mask, mask_ld, o, sc, stream)) != cudaSuccess) { st = device_error("solve launch", e); goto done; }
    cudaEventRecord(e1, stream);
    if ((e = cudaMemcpyAsync(sums, sc.sums, 2 * sizeof(double), cudaMemcpyDeviceToHost, stream)) != cudaSuccess ||
        (e = cudaStreamSynchronize(stream)) != cudaSuccess) { st = device_error("solve", e); goto done; }
    cudaEventElapsedTime(&ms, e0, e1);
    fill_report(report, sums, blocks_of(o, rows, cols), t0, ms);
done:
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    scratch_free(sc);
    return st;
}

/* Host pointers: whole matrix on the device when it fits, else chunks of block rows.
   With several chunks a first pass scans every chunk for NaN/Inf, so the caller's mask
   is written only once the whole input is known to be finite. */
tsenor_status mask_host(const void *w, tsenor_dtype dt, size_t rows, size_t cols, size_t ld, uint8_t *mask, size_t mask_ld,
                        const tsenor_options *opt, tsenor_report *report)
{
    const double t0 = now_seconds();
    _tsenor_config o;
    tsenor_status st = check_args(w, dt, rows, cols, ld, mask, mask_ld, opt, &o);
    if (st != TSENOR_OK) return st;
    if (!on_gpu(o)) {   /* the CPU solver */
        return dt == TSENOR_DTYPE_F32 ? tsenor_cpu_mask_f32((const float *)w, rows, cols, ld, mask, mask_ld, opt, report)
             : dt == TSENOR_DTYPE_F16 ? tsenor_cpu_mask_f16((const uint16_t *)w, rows, cols, ld, mask, mask_ld, opt, report)
                            : tsenor_cpu_mask_bf16((const uint16_t *)w, rows, cols, ld, mask, mask_ld, opt, report);
    }
    if (!have_device()) return TSENOR_ERR_DEVICE;

    const size_t es = _tsenor_dtype_size(dt), m = (size_t)o.m, row_bytes = cols * (es + 1);
    size_t free_bytes = 0, total_bytes = 0, budget, chunk_rows;
    cudaError_t e = cudaMemGetInfo(&free_bytes, &total_bytes);
    if (e != cudaSuccess) return device_error("cudaMemGetInfo", e);
    budget = free_bytes / 10 * 8;
    {
        const char *limit = getenv("TSENOR_CUDA_CHUNK_BYTES");   /* tests force chunking */
        if (limit && strtoull(limit, nullptr, 10) > 0 && strtoull(limit, nullptr, 10) < budget)
            budget = (size_t)strtoull(limit, nullptr, 10);
    }
    chunk_rows = budget / row_bytes / m * m;
    if (chunk_rows < m) chunk_rows = m;
    if (chunk_rows > rows) chunk_rows = rows;
    const size_t chunks = (rows + chunk_rows - 1) / chunk_rows;

    void *dw = nullptr;
    uint8_t *dmask = nullptr;
    Scratch sc;
    cudaStream_t stream = nullptr;
    cudaEvent_t e0 = nullptr, e1 = nullptr;
    double sums[2] = {0.0, 0.0};
    float kernel_ms = 0.0f;
    int flag = 0;
    if ((e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking)) != cudaSuccess) return device_error("cudaStreamCreate", e);
    if ((e = cudaMalloc(&dw, chunk_rows * cols * es)) != cudaSuccess ||
        (e = cudaMalloc((void **)&dmask, chunk_rows * cols)) != cudaSuccess ||
        (e = scratch_alloc_for(sc, o, chunk_rows, cols)) != cudaSuccess) { st = device_error("cudaMalloc", e); goto done; }
    if ((e = cudaEventCreate(&e0)) != cudaSuccess || (e = cudaEventCreate(&e1)) != cudaSuccess) { st = device_error("cudaEventCreate", e); goto done; }
    if ((e = cudaMemsetAsync(sc.flag, 0, sizeof(int), stream)) != cudaSuccess ||
        (e = cudaMemsetAsync(sc.sums, 0, 2 * sizeof(double), stream)) != cudaSuccess) { st = device_error("cudaMemsetAsync", e); goto done; }
    for (int pass = chunks > 1 ? 0 : 1; pass < 2; pass++) {
        for (size_t c = 0; c < chunks; c++) {
            const size_t r0 = c * chunk_rows, cr = rows - r0 < chunk_rows ? rows - r0 : chunk_rows;
            if ((e = cudaMemcpy2DAsync(dw, cols * es, (const char *)w + r0 * ld * es, ld * es, cols * es, cr,
                                       cudaMemcpyHostToDevice, stream)) != cudaSuccess) { st = device_error("copy to device", e); goto done; }
            if (pass == 0) {
                nonfinite_scan_kernel<<<1024, 256, 0, stream>>>(dw, dt, cr, cols, cols, sc.flag);
                if ((e = cudaGetLastError()) != cudaSuccess) { st = device_error("nonfinite scan launch", e); goto done; }
                continue;
            }
            float ms = 0.0f;
            cudaEventRecord(e0, stream);
            if ((e = launch_solve(dw, dt, cr, cols, cols, dmask, cols, o, sc, stream)) != cudaSuccess) { st = device_error("solve launch", e); goto done; }
            cudaEventRecord(e1, stream);
            if ((e = cudaMemcpyAsync(&flag, sc.flag, sizeof(int), cudaMemcpyDeviceToHost, stream)) != cudaSuccess ||
                (e = cudaStreamSynchronize(stream)) != cudaSuccess) { st = device_error("solve", e); goto done; }
            if (flag) { st = TSENOR_ERR_NONFINITE_INPUT; goto done; }   /* single chunk: nothing written yet */
            cudaEventElapsedTime(&ms, e0, e1);
            kernel_ms += ms;
            if ((e = cudaMemcpy2DAsync(mask + r0 * mask_ld, mask_ld, dmask, cols, cols, cr, cudaMemcpyDeviceToHost, stream)) != cudaSuccess) {
                st = device_error("copy to host", e); goto done;
            }
        }
        if (pass == 0) {
            if ((e = cudaMemcpyAsync(&flag, sc.flag, sizeof(int), cudaMemcpyDeviceToHost, stream)) != cudaSuccess ||
                (e = cudaStreamSynchronize(stream)) != cudaSuccess) { st = device_error("nonfinite scan", e); goto done; }
            if (flag) { st = TSENOR_ERR_NONFINITE_INPUT; goto done; }
        }
    }
    if ((e = cudaMemcpyAsync(sums, sc.sums, 2 * sizeof(double), cudaMemcpyDeviceToHost, stream)) != cudaSuccess ||
        (e = cudaStreamSynchronize(stream)) != cudaSuccess) { st = device_error("solve", e); goto done; }
    fill_report(report, sums, blocks_of(o, rows, cols), t0, kernel_ms);
done:
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    cudaFree(dw);
    cudaFree(dmask);
    scratch_free(sc);
    if (stream) cudaStreamDestroy(stream);
    return st;
}

}  // namespace

/* The solver and the error text lent to the other CUDA sources (tsenor_cuda_internal.h). */
namespace tsenor_cuda_internal {

struct MaskSolver {
    _tsenor_config cfg;
    Scratch scratch;
};

cudaError_t mask_solver_create(MaskSolver **solver, const _tsenor_config &cfg, size_t rows, size_t cols,
                               cudaStream_t stream)
{
    MaskSolver *s = new (std::nothrow) MaskSolver;
    *solver = nullptr;
    if (!s) return cudaErrorMemoryAllocation;
    s->cfg = cfg;
    cudaError_t e = scratch_alloc_for(s->scratch, cfg, rows, cols);   /* EXACT: its start selections too */
    if (e == cudaSuccess) e = cudaMemsetAsync(s->scratch.flag, 0, sizeof(int), stream);
    if (e == cudaSuccess) e = cudaMemsetAsync(s->scratch.sums, 0, 2 * sizeof(double), stream);
    if (e != cudaSuccess) { mask_solver_destroy(s); return e; }
    *solver = s;
    return cudaSuccess;
}

cudaError_t mask_solver_run(MaskSolver *solver, const float *w, size_t rows, size_t cols, size_t ld, uint8_t *mask,
                            size_t mask_ld, cudaStream_t stream)
{
    return launch_solve(w, TSENOR_DTYPE_F32, rows, cols, ld, mask, mask_ld, solver->cfg, solver->scratch, stream);
}

const int *mask_solver_nonfinite_flag(const MaskSolver *solver) { return solver->scratch.flag; }

void mask_solver_destroy(MaskSolver *solver)
{
    if (!solver) return;
    scratch_free(solver->scratch);
    delete solver;
}

tsenor_status device_error(const char *what, cudaError_t e) { return ::device_error(what, e); }

void set_error_text(const char *text) { snprintf(g_last_error, sizeof g_last_error, "%s", text); }

bool have_device() { return ::have_device(); }

double now_seconds() { return ::now_seconds(); }

}  // namespace tsenor_cuda_internal

extern "C" {

tsenor_status tsenor_cuda_mask_f32(const float *w, size_t rows, size_t cols, size_t ld, uint8_t *mask, size_t mask_ld,
                                   const tsenor_options *opt, tsenor_report *report)
{
    return mask_host(w, TSENOR_DTYPE_F32, rows, cols, ld, mask, mask_ld, opt, report);
}

tsenor_status tsenor_cuda_mask_f16(const uint16_t *w, size_t rows, size_t cols, size_t ld, uint8_t *mask,
                                   size_t mask_ld, const tsenor_options *opt, tsenor_report *report)
{
    return mask_host(w, TSENOR_DTYPE_F16, rows, cols, ld, mask, mask_ld, opt, report);
}

tsenor_status tsenor_cuda_mask_bf16(const uint16_t *w, size_t rows, size_t cols, size_t ld, uint8_t *mask,
                                    size_t mask_ld, const tsenor_options *opt, tsenor_report *report)
{
    return mask_host(w, TSENOR_DTYPE_BF16, rows, cols, ld, mask, mask_ld, opt, report);
}

tsenor_status tsenor_cuda_exact_certificate_f32(const float *w, size_t rows, size_t cols, size_t ld, uint8_t *mask,
                                               size_t mask_ld, const tsenor_options *opt, double *potentials)
{
    _tsenor_config o;
    tsenor_status st = check_args(w, TSENOR_DTYPE_F32, rows, cols, ld, mask, mask_ld, opt, &o);
    if (st != TSENOR_OK) return st;
    if (!potentials || !is_exact_cc(o) || o.m > TSENOR_CUDA_MAX_M_EXACT) return TSENOR_ERR_INVALID_ARGUMENT;
    if (!have_device()) return TSENOR_ERR_DEVICE;
    const size_t m = (size_t)o.m, blocks = ((rows + m - 1) / m) * ((cols + m - 1) / m);
    float *dw = nullptr;
    uint8_t *dmask = nullptr;
    double *dpot = nullptr;
    cudaError_t e;
    if ((e = cudaMalloc((void **)&dw, rows * cols * sizeof(float))) != cudaSuccess ||
        (e = cudaMalloc((void **)&dmask, rows * cols)) != cudaSuccess ||
        (e = cudaMalloc((void **)&dpot, blocks * 2 * m * sizeof(double))) != cudaSuccess) {
        st = device_error("cudaMalloc", e);
    } else if ((e = cudaMemcpy2D(dw, cols * sizeof(float), w, ld * sizeof(float), cols * sizeof(float), rows,
                                 cudaMemcpyHostToDevice)) != cudaSuccess) {
        st = device_error("copy to device", e);
    } else if ((st = mask_device(dw, TSENOR_DTYPE_F32, rows, cols, cols, dmask, cols, opt, nullptr, nullptr, dpot)) == TSENOR_OK) {
        if ((e = cudaMemcpy2D(mask, mask_ld, dmask, cols, cols, rows, cudaMemcpyDeviceToHost)) != cudaSuccess ||
            (e = cudaMemcpy(potentials, dpot, blocks * 2 * m * sizeof(double), cudaMemcpyDeviceToHost)) != cudaSuccess)
            st = device_error("copy to host", e);
    }
    cudaFree(dw);
    cudaFree(dmask);
    cudaFree(dpot);
    return st;
}

tsenor_status tsenor_cuda_mask_f32_device(const float *w, size_t rows, size_t cols, size_t ld, uint8_t *mask,
                                          size_t mask_ld, const tsenor_options *opt, tsenor_report *report,
                                          void *stream)
{
    return mask_device(w, TSENOR_DTYPE_F32, rows, cols, ld, mask, mask_ld, opt, report, stream);
}

tsenor_status tsenor_cuda_mask_f16_device(const uint16_t *w, size_t rows, size_t cols, size_t ld, uint8_t *mask,
                                          size_t mask_ld, const tsenor_options *opt, tsenor_report *report,
                                          void *stream)
{
    return mask_device(w, TSENOR_DTYPE_F16, rows, cols, ld, mask, mask_ld, opt, report, stream);
}

tsenor_status tsenor_cuda_mask_bf16_device(const uint16_t *w, size_t rows, size_t cols, size_t ld, uint8_t *mask,
                                           size_t mask_ld, const tsenor_options *opt, tsenor_report *report,
                                           void *stream)
{
    return mask_device(w, TSENOR_DTYPE_BF16, rows, cols, ld, mask, mask_ld, opt, report, stream);
}

int tsenor_cuda_device_count(void)
{
    return have_device() ? tsenor_cuda_device_count_unchecked() : 0;
}

const char *tsenor_cuda_last_error(void) { return g_last_error; }

#ifdef TSENOR_CUDA_PHASE_CLOCKS
/* Instrumented build only: the stage counters (warp-cycles) since the last reset. */
int tsenor_cuda_phase_clocks(unsigned long long out[8], int reset)
{
    if (cudaMemcpyFromSymbol(out, g_phase_clocks, 8 * sizeof(unsigned long long)) != cudaSuccess) return -1;
    if (reset) {
        static const unsigned long long zero[8] = {0};
        if (cudaMemcpyToSymbol(g_phase_clocks, zero, sizeof zero) != cudaSuccess) return -1;
    }
    return 0;
}
#endif

}  // extern "C"
