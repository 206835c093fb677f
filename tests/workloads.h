/* workloads.h - deterministic test matrices and quality measures, shared by the tests
   and the benchmarks. Header-only; include after <stdint.h>/<stddef.h>.

   Distributions (the quality bar is stated on these):
     WL_GAUSSIAN   i.i.d. N(0,1)
     WL_STUDENT_T3 i.i.d. Student-t with 3 degrees of freedom (heavy tails)
     WL_OUTLIER    N(0,1) with per-column scales (log-normal, sigma 0.5) and a few
                   columns (1 in 64) scaled by 20-50x, as in LLM weight matrices
*/
#ifndef TSENOR_WORKLOADS_H
#define TSENOR_WORKLOADS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef enum wl_dist { WL_GAUSSIAN, WL_STUDENT_T3, WL_OUTLIER, WL_DIST_COUNT } wl_dist;

static inline const char *wl_dist_name(wl_dist d)
{
    return d == WL_GAUSSIAN ? "gaussian" : d == WL_STUDENT_T3 ? "student-t3" : "outlier-cols";
}

typedef struct wl_rng { uint64_t s; } wl_rng;

static inline uint64_t wl_next(wl_rng *r)   /* splitmix64 */
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline double wl_uniform(wl_rng *r) { return ((double)(wl_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

static inline double wl_normal(wl_rng *r)
{
    double u = wl_uniform(r), v = wl_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* The bfloat16 bits of a finite float, rounded to nearest even. */
static inline uint16_t wl_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* Fills w (rows x cols, leading dimension ld) with distribution d from seed. */
static inline void wl_fill(float *w, size_t rows, size_t cols, size_t ld, wl_dist d, uint64_t seed)
{
    wl_rng r;
    size_t i, j;
    double *scale = NULL;
    r.s = seed * 0x2545F4914F6CDD1Dull + 1;
    if (d == WL_OUTLIER) {
        scale = (double *)malloc(cols * sizeof *scale);
        if (!scale) abort();
        for (j = 0; j < cols; j++) {
            scale[j] = exp(0.5 * wl_normal(&r));
            if (wl_next(&r) % 64 == 0) scale[j] *= 20.0 + 30.0 * wl_uniform(&r);
        }
    }
    for (i = 0; i < rows; i++) {
        for (j = 0; j < cols; j++) {
            double v = wl_normal(&r);
            if (d == WL_STUDENT_T3) {
                double a = wl_normal(&r), b = wl_normal(&r), c = wl_normal(&r);
                v = v / sqrt((a * a + b * b + c * c) / 3.0);
            } else if (d == WL_OUTLIER) {
                v *= scale[j];
            }
            w[i * ld + j] = (float)v;
        }
    }
    free(scale);
}

/* Pruned magnitude sum (1-S)|w| over one block (or the whole matrix with m = 0). */
static inline double wl_pruned(const float *w, size_t ld, const uint8_t *mask, size_t mask_ld,
                        size_t r0, size_t c0, size_t hr, size_t hc)
{
    double s = 0.0;
    size_t i, j;
    for (i = 0; i < hr; i++)
        for (j = 0; j < hc; j++)
            if (!mask[(r0 + i) * mask_ld + c0 + j]) s += fabs((double)w[(r0 + i) * ld + c0 + j]);
    return s;
}

/* Relative error (pruned_method - pruned_opt) / pruned_opt over the whole matrix and
   the worst single block. */
typedef struct wl_error {
    double matrix;        /* over the whole matrix                   */
    double block_mean;    /* mean of the per-block relative errors    */
    double worst_block;   /* the worst block                         */
} wl_error;

static inline wl_error wl_relative_error(const float *w, size_t rows, size_t cols, size_t ld,
                                  const uint8_t *mask, const uint8_t *opt_mask, size_t mask_ld, int m)
{
    wl_error e;
    double pm = 0.0, po = 0.0, sum_be = 0.0;
    size_t r0, c0, nblocks = 0;
    e.worst_block = 0.0;
    for (r0 = 0; r0 < rows; r0 += (size_t)m) {
        for (c0 = 0; c0 < cols; c0 += (size_t)m) {
            size_t hr = rows - r0 < (size_t)m ? rows - r0 : (size_t)m;
            size_t hc = cols - c0 < (size_t)m ? cols - c0 : (size_t)m;
            double bm = wl_pruned(w, ld, mask, mask_ld, r0, c0, hr, hc);
            double bo = wl_pruned(w, ld, opt_mask, mask_ld, r0, c0, hr, hc);
            double be = bo > 0.0 ? (bm - bo) / bo : (bm > 0.0 ? 1.0 : 0.0);
            if (be > e.worst_block) e.worst_block = be;
            sum_be += be;
            nblocks++;
            pm += bm;
            po += bo;
        }
    }
    e.matrix = po > 0.0 ? (pm - po) / po : 0.0;
    e.block_mean = nblocks ? sum_be / (double)nblocks : 0.0;
    return e;
}

#endif
