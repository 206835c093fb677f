/* check.h - what the test programs share: EXPECT (counts passes and failures, prints
   a failure with its line), allocation that exits on failure, and an options struct for
   one pattern and method. Include after tsenor.h and the C headers. */
#ifndef TSENOR_TESTS_CHECK_H
#define TSENOR_TESTS_CHECK_H

static int g_passed, g_failed;

#define EXPECT(cond, ...)                                                    \
    do {                                                                     \
        if (cond) g_passed++;                                                \
        else {                                                               \
            g_failed++;                                                      \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                      \
            printf(__VA_ARGS__);                                             \
            printf("\n");                                                    \
        }                                                                    \
    } while (0)

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) { printf("test: out of memory\n"); exit(2); }
    return p;
}

/* sum of |w| where the mask keeps, in double (inline: not every test uses it) */
static inline double kept_sum(const float *w, size_t rows, size_t cols, size_t ld, const uint8_t *mask,
                              size_t mask_ld)
{
    double s = 0.0;
    size_t i, j;
    for (i = 0; i < rows; i++)
        for (j = 0; j < cols; j++)
            if (mask[i * mask_ld + j]) s += fabs((double)w[i * ld + j]);
    return s;
}

static tsenor_options make_opt(int n, int m, tsenor_method method)
{
    tsenor_options o;
    memset(&o, 0, sizeof o);
    o.n = n;
    o.m = m;
    o.method = method;
    return o;
}

#endif
