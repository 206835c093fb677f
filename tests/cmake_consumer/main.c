/* main.c - the CMake consumer test: tsenor.h found through tsenor::tsenor's include
   directory, an 8:16 mask that tsenor_check accepts, and what the target promised
   (version, OpenMP). Exit status nonzero on any failure. */
#define TSENOR_IMPLEMENTATION
#include "tsenor.h"
#include <stdio.h>
#include <string.h>

static int passed, failed;

static void expect(int ok, const char *what)
{
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s\n", what);
    }
}

int main(void)
{
    enum { ROWS = 64, COLS = 96, N = 8, M = 16 };
    static float w[ROWS * COLS];
    static uint8_t mask[ROWS * COLS];
    tsenor_options opt = {0};
    tsenor_report rep;
    tsenor_status s;
    uint32_t state = 12345u;
    size_t i, kept = 0;

    for (i = 0; i < ROWS * COLS; i++) {
        state = state * 1664525u + 1013904223u;  /* deterministic, no libc rand() */
        w[i] = (float)(state >> 8) / 16777216.0f - 0.5f;
    }
    opt.n = N;
    opt.m = M;
    s = tsenor_mask_f32(w, ROWS, COLS, COLS, mask, COLS, &opt, &rep);
    printf("tsenor_mask_f32 %d:%d on %dx%d: %s (backend %s)\n", N, M, ROWS, COLS, tsenor_status_string(s),
           s == TSENOR_OK ? rep.backend : "-");
    expect(s == TSENOR_OK, "tsenor_mask_f32 returns TSENOR_OK");
#ifdef TSENOR_CUDA
    if (s == TSENOR_ERR_DEVICE) printf("CUDA: %s\n", tsenor_cuda_last_error());
    expect(s != TSENOR_OK || strcmp(rep.backend, "cuda") == 0, "tsenor::cuda runs the mask on the GPU");
#endif
    if (s == TSENOR_OK) {
        expect(tsenor_check(mask, ROWS, COLS, COLS, N, M, 1) == TSENOR_OK, "tsenor_check accepts the mask");
        for (i = 0; i < ROWS * COLS; i++) kept += mask[i];
        expect(kept == (size_t)ROWS * COLS * N / M, "the mask keeps n/m of the entries");
        expect(rep.kept > 0.5 * rep.total && rep.kept <= rep.total, "the report's kept magnitude is plausible");
        /* tsenor_check must also be able to fail: a row of one block keeps one too many */
        i = 0;
        while (i < M && mask[i]) i++;
        if (i < M) mask[i] = 1;
        expect(tsenor_check(mask, ROWS, COLS, COLS, N, M, 1) == TSENOR_ERR_INVALID_MASK,
               "tsenor_check rejects a mask with one entry too many");
    }

    printf("tsenor_version() %s, CMake read %s\n", tsenor_version(), EXPECTED_VERSION);
    expect(strcmp(tsenor_version(), EXPECTED_VERSION) == 0, "CMake's version is tsenor.h's");
#ifdef EXPECT_OPENMP
#ifdef _OPENMP
    expect(1, "OpenMP comes with tsenor::tsenor");
#else
    expect(0, "OpenMP comes with tsenor::tsenor (CMake found it, _OPENMP is not defined)");
#endif
#endif

    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
