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
