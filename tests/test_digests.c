/* test_digests.c - the masks of every method, dtype and pattern on varied matrices, as
   FNV-1a digests, compared with tests/mask_digests.txt (recorded from 0.4.0; the n:4
   rows from 0.5.0, whose solver finds the optimum of every 4x4 block). A change
   that alters any mask bit fails here; `test_digests --print` writes the table anew.
   Built with TSENOR_CUDA (build/test_digests_cuda) the same calls run on the GPU, which
   gives the same masks as the CPU on every case of the table, but EXACT at m != 4 (the
   optima may tie and the GPU may choose another of them) and TSENOR at m > 32 (its plan
   agrees with the CPU's to rounding, and its sums run in another order): there the GPU's
   mask must be valid and keep the CPU's magnitude (EXACT 1e-6 relative, TSENOR 1e-4; a
   TSENOR mask that differs is named), and the CPU's mask meets the digest.
   Usage: test_digests [--print] [DIGEST_FILE] */
#define TSENOR_IMPLEMENTATION
#include "../tsenor.h"
#ifdef TSENOR_CUDA
#include "../tsenor_cuda.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "workloads.h"

static uint64_t fnv1a(const uint8_t *p, size_t rows, size_t cols, size_t ld)
{
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i, j;
    for (i = 0; i < rows; i++)
        for (j = 0; j < cols; j++) { h ^= p[i * ld + j]; h *= 0x100000001b3ull; }
    return h;
}

static uint16_t f16_bits(float f)   /* round to nearest even; inputs are finite and small */
{
    uint32_t x, sign, mant;
    int exp;
    memcpy(&x, &f, 4);
    sign = (x >> 16) & 0x8000u;
    exp = (int)((x >> 23) & 0xff) - 127 + 15;
    mant = x & 0x7fffffu;
    if (exp <= 0) {   /* subnormal half */
        uint32_t m = mant | 0x800000u, shift = (uint32_t)(14 - exp), half, r;
        if (shift > 24) return (uint16_t)sign;
        half = 1u << (shift - 1);
        r = m >> shift;
        if ((m & ((1u << shift) - 1)) > half || ((m & ((1u << shift) - 1)) == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    if (exp >= 31) return (uint16_t)(sign | 0x7bffu);
    {
        uint32_t r = ((uint32_t)exp << 10) | (mant >> 13), rest = mant & 0x1fffu;
        if (rest > 0x1000u || (rest == 0x1000u && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
}

static uint16_t bf16_bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

typedef struct digest_case {
    const char *name;
    int n, m;
    tsenor_method method;
    size_t rows, cols;
    wl_dist dist;
    int ties;          /* quantise to 8 levels with exact zeros: many ties */
    int iterations, local_search_steps;
    float tau;
} digest_case;

static const digest_case cases[] = {
    {"tsenor-1:4-gauss", 1, 4, TSENOR_METHOD_TSENOR, 96, 128, WL_GAUSSIAN, 0, 0, 0, 0},
    {"tsenor-2:4-gauss", 2, 4, TSENOR_METHOD_TSENOR, 96, 128, WL_GAUSSIAN, 0, 0, 0, 0},
    {"tsenor-3:4-t3", 3, 4, TSENOR_METHOD_TSENOR, 64, 72, WL_STUDENT_T3, 0, 0, 0, 0},
    {"tsenor-2:4-edge", 2, 4, TSENOR_METHOD_TSENOR, 37, 51, WL_OUTLIER, 0, 0, 0, 0},
    {"tsenor-4:8-outlier", 4, 8, TSENOR_METHOD_TSENOR, 128, 128, WL_OUTLIER, 0, 0, 0, 0},
    {"tsenor-8:16-gauss", 8, 16, TSENOR_METHOD_TSENOR, 256, 256, WL_GAUSSIAN, 0, 0, 0, 0},
    {"tsenor-8:16-edge", 8, 16, TSENOR_METHOD_TSENOR, 71, 93, WL_STUDENT_T3, 0, 0, 0, 0},
    {"tsenor-8:16-ties", 8, 16, TSENOR_METHOD_TSENOR, 128, 160, WL_GAUSSIAN, 1, 0, 0, 0},
    {"tsenor-7:24-t3", 7, 24, TSENOR_METHOD_TSENOR, 96, 120, WL_STUDENT_T3, 0, 0, 0, 0},
    {"tsenor-16:32-gauss", 16, 32, TSENOR_METHOD_TSENOR, 256, 256, WL_GAUSSIAN, 0, 0, 0, 0},
    {"tsenor-16:32-edge", 16, 32, TSENOR_METHOD_TSENOR, 100, 77, WL_OUTLIER, 0, 0, 0, 0},
    {"tsenor-32:64-gauss", 32, 64, TSENOR_METHOD_TSENOR, 128, 192, WL_GAUSSIAN, 0, 0, 0, 0},
    {"tsenor-8:16-1it-nols", 8, 16, TSENOR_METHOD_TSENOR, 128, 128, WL_GAUSSIAN, 0, 1, -1, 0},
    {"tsenor-8:16-tau", 8, 16, TSENOR_METHOD_TSENOR, 128, 128, WL_OUTLIER, 0, 50, 3, 0.02f},
    {"tsenor-16:32-ls", 16, 32, TSENOR_METHOD_TSENOR, 128, 128, WL_STUDENT_T3, 0, 20, 50, 0},
    {"exact-2:4-ties", 2, 4, TSENOR_METHOD_EXACT, 64, 64, WL_GAUSSIAN, 1, 0, 0, 0},
    {"exact-4:8-gauss", 4, 8, TSENOR_METHOD_EXACT, 64, 96, WL_GAUSSIAN, 0, 0, 0, 0},
    {"exact-8:16-edge", 8, 16, TSENOR_METHOD_EXACT, 70, 50, WL_OUTLIER, 0, 0, 0, 0},
    {"exact-16:32-t3", 16, 32, TSENOR_METHOD_EXACT, 64, 64, WL_STUDENT_T3, 0, 0, 0, 0},
    {"greedy-2:4-gauss", 2, 4, TSENOR_METHOD_GREEDY, 96, 128, WL_GAUSSIAN, 0, 0, 0, 0},
    {"greedy-8:16-ties", 8, 16, TSENOR_METHOD_GREEDY, 128, 128, WL_GAUSSIAN, 1, 0, 0, 0},
    {"greedy-16:32-edge", 16, 32, TSENOR_METHOD_GREEDY, 90, 101, WL_OUTLIER, 0, 0, 0, 0},
    {"rowwise-2:4-gauss", 2, 4, TSENOR_METHOD_ROWWISE, 64, 128, WL_GAUSSIAN, 0, 0, 0, 0},
    {"rowwise-8:16-ties", 8, 16, TSENOR_METHOD_ROWWISE, 64, 128, WL_GAUSSIAN, 1, 0, 0, 0},
    {"rowwise-16:32-edge", 16, 32, TSENOR_METHOD_ROWWISE, 33, 71, WL_STUDENT_T3, 0, 0, 0, 0},
    /* recorded from 0.5.0: the n:4 solver (ties broken by its rule; edge blocks) */
    {"tsenor-2:4-ties", 2, 4, TSENOR_METHOD_TSENOR, 96, 128, WL_GAUSSIAN, 1, 0, 0, 0},
    {"exact-1:4-ties", 1, 4, TSENOR_METHOD_EXACT, 64, 96, WL_STUDENT_T3, 1, 0, 0, 0},
    {"exact-3:4-edge", 3, 4, TSENOR_METHOD_EXACT, 37, 51, WL_OUTLIER, 0, 0, 0, 0},
    {"tsenor-2:4-1it", 2, 4, TSENOR_METHOD_TSENOR, 64, 64, WL_STUDENT_T3, 0, 1, -1, 0},
};

static const char *dtype_names[3] = {"f32", "f16", "bf16"};

/* the mask of one case in one dtype with 1 or 2 threads */
static uint64_t run_case(const digest_case *c, int dtype, int threads, tsenor_status *status)
{
    const size_t ld = c->cols + 3, count = c->rows * ld;   /* a leading dimension > cols */
    float *w = (float *)xmalloc(count * sizeof *w);
    uint16_t *h = (uint16_t *)xmalloc(count * sizeof *h);
    uint8_t *mask = (uint8_t *)xmalloc(c->rows * c->cols);
    tsenor_options o = make_opt(c->n, c->m, c->method);
    size_t i;
    uint64_t d;
    wl_fill(w, c->rows, c->cols, ld, c->dist, (uint64_t)(c->n * 131 + c->m * 7 + (int)c->rows));
    if (c->ties)
        for (i = 0; i < count; i++) w[i] = (float)((int)(w[i] * 2.0f)) * 0.5f;   /* -> ~8 levels, zeros */
    o.iterations = c->iterations;
    o.local_search_steps = c->local_search_steps;
    o.tau = c->tau;
    o.threads = threads;
    for (i = 0; i < count; i++) h[i] = dtype == 1 ? f16_bits(w[i]) : bf16_bits(w[i]);
    memset(mask, 0xee, c->rows * c->cols);
    *status = dtype == 0 ? tsenor_mask_f32(w, c->rows, c->cols, ld, mask, c->cols, &o, NULL)
            : dtype == 1 ? tsenor_mask_f16(h, c->rows, c->cols, ld, mask, c->cols, &o, NULL)
                         : tsenor_mask_bf16(h, c->rows, c->cols, ld, mask, c->cols, &o, NULL);
    d = fnv1a(mask, c->rows, c->cols, c->cols);
#ifdef TSENOR_CUDA
    if (*status == TSENOR_OK && ((c->method == TSENOR_METHOD_EXACT && c->m != 4) ||
                                 (c->method == TSENOR_METHOD_TSENOR && c->m > 32))) {
        uint8_t *cpu = (uint8_t *)xmalloc(c->rows * c->cols);
        double kg = 0.0, kc = 0.0;
        size_t j;
        const tsenor_status sc = dtype == 0 ? tsenor_cpu_mask_f32(w, c->rows, c->cols, ld, cpu, c->cols, &o, NULL)
                               : dtype == 1 ? tsenor_cpu_mask_f16(h, c->rows, c->cols, ld, cpu, c->cols, &o, NULL)
                                            : tsenor_cpu_mask_bf16(h, c->rows, c->cols, ld, cpu, c->cols, &o, NULL);
        for (i = 0; i < c->rows; i++)
            for (j = 0; j < c->cols; j++) {
                const size_t at = i * ld + j;
                const double a = dtype == 0 ? fabs((double)w[at]) : dtype == 1 ? _tsenor_abs_f16(h[at]) : _tsenor_abs_bf16(h[at]);
                if (mask[i * c->cols + j]) kg += a;
                if (cpu[i * c->cols + j]) kc += a;
            }
        {
            const double tol = c->method == TSENOR_METHOD_EXACT ? 1e-6 : 1e-4;
            EXPECT(sc == TSENOR_OK && tsenor_check(mask, c->rows, c->cols, c->cols, c->n, c->m, 1) == TSENOR_OK &&
                       fabs(kg - kc) <= tol * kc,
                   "%s %s: GPU kept %.12g, CPU %.12g (or invalid mask)", c->name, dtype_names[dtype], kg, kc);
            if (c->method == TSENOR_METHOD_TSENOR && fnv1a(cpu, c->rows, c->cols, c->cols) != d)
                printf("note: %s %s: the GPU's mask differs from the CPU's, keeping %.3g relative %s\n", c->name,
                       dtype_names[dtype], fabs(kg - kc) / kc, kg >= kc ? "more" : "less");
        }
        d = fnv1a(cpu, c->rows, c->cols, c->cols);
        free(cpu);
    }
#endif
    free(w); free(h); free(mask);
    return d;
}

int main(int argc, char **argv)
{
    const int print = argc > 1 && strcmp(argv[1], "--print") == 0;
    const char *path = argc > 1 + print ? argv[1 + print] : "tests/mask_digests.txt";
    FILE *f = print ? NULL : fopen(path, "r");
    size_t k;
    int dt;
    if (!print && !f) { printf("test_digests: cannot open %s\n0 passed, 1 failed\n", path); return 1; }
#ifdef TSENOR_CUDA
    if (tsenor_cuda_device_count() == 0) {
        printf("GPU digests skipped: no CUDA device (%s)\n0 passed, 0 failed\n", tsenor_cuda_last_error());
        if (f) fclose(f);
        return 0;
    }
#endif
    for (k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (dt = 0; dt < 3; dt++) {
            tsenor_status s1, s2;
            const uint64_t d1 = run_case(&cases[k], dt, 1, &s1), d2 = run_case(&cases[k], dt, 2, &s2);
            char label[96];
            snprintf(label, sizeof label, "%s-%s", cases[k].name, dtype_names[dt]);
            EXPECT(s1 == TSENOR_OK && s2 == TSENOR_OK, "%s: status %d/%d", label, (int)s1, (int)s2);
            EXPECT(d1 == d2, "%s: 1 and 2 threads give different masks", label);
            if (print) {
                printf("%s %016llx\n", label, (unsigned long long)d1);
            } else {
                char name[96];
                unsigned long long want;
                if (fscanf(f, "%95s %llx", name, &want) != 2 || strcmp(name, label) != 0) {
                    EXPECT(0, "%s: missing from %s", label, path);
                    continue;
                }
                EXPECT(want == d1, "%s: mask digest %016llx, recorded %016llx", label, (unsigned long long)d1, want);
            }
        }
    if (f) fclose(f);
    if (!print) printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed != 0;
}
