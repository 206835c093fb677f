/* prune_reference.c - the C library's own answer for the Python tests (test_prune.py
   builds it with the extension's compiler flags): tsenor_cpu_prune_f32 and
   tsenor_gram_f32 on raw little-endian files.

     prune_reference prune W ROWS COLS GRAM|- N M MASK_METHOD MASK_ITERATIONS TAU THREADS
                     METHOD DAMPING ITERATIONS CG_ITERATIONS RHO OUT MASK
         writes OUT (float32) and MASK (bytes), prints "error iterations cg_iterations"
     prune_reference gram X TOKENS COLS GRAM_IN THREADS GRAM_OUT
         writes GRAM_OUT = GRAM_IN + X^T X (float32)

   Numbers are the C fields' values (0 = default); methods are the C names. Exit status
   0, or the tsenor_status, or 100 for a usage or file error. */
#define TSENOR_IMPLEMENTATION
#include "tsenor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *read_file(const char *path, size_t bytes)
{
    FILE *f = fopen(path, "rb");
    void *p = malloc(bytes ? bytes : 1);
    if (!f || !p || fread(p, 1, bytes, f) != bytes) {
        fprintf(stderr, "cannot read %zu bytes of %s\n", bytes, path);
        exit(100);
    }
    fclose(f);
    return p;
}

static void write_file(const char *path, const void *p, size_t bytes)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, bytes, f) != bytes || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(100);
    }
}

static tsenor_method mask_method_named(const char *name)
{
    int k;
    for (k = TSENOR_METHOD_TSENOR; k <= TSENOR_METHOD_ROWWISE; k++)
        if (!strcmp(name, tsenor_method_string((tsenor_method)k))) return (tsenor_method)k;
    fprintf(stderr, "unknown mask method %s\n", name);
    exit(100);
}

static tsenor_prune_method prune_method_named(const char *name)
{
    int k;
    for (k = TSENOR_PRUNE_MAGNITUDE; k <= TSENOR_PRUNE_ALPS; k++)
        if (!strcmp(name, tsenor_prune_method_string((tsenor_prune_method)k))) return (tsenor_prune_method)k;
    fprintf(stderr, "unknown pruning method %s\n", name);
    exit(100);
}

static int prune(char **a)
{
    const size_t rows = strtoul(a[1], NULL, 10), cols = strtoul(a[2], NULL, 10);
    float *w = (float *)read_file(a[0], rows * cols * 4);
    float *gram = strcmp(a[3], "-") ? (float *)read_file(a[3], cols * cols * 4) : NULL;
    float *out = (float *)malloc(rows * cols * 4);
    uint8_t *mask = (uint8_t *)malloc(rows * cols);
    tsenor_prune_options opt;
    tsenor_prune_report report;
    tsenor_status s;
    memset(&opt, 0, sizeof opt);
    opt.mask.n = atoi(a[4]);
    opt.mask.m = atoi(a[5]);
    opt.mask.method = mask_method_named(a[6]);
    opt.mask.iterations = atoi(a[7]);
    opt.mask.tau = (float)atof(a[8]);
    opt.mask.threads = atoi(a[9]);
    opt.method = prune_method_named(a[10]);
    opt.damping = (float)atof(a[11]);
    opt.iterations = atoi(a[12]);
    opt.cg_iterations = atoi(a[13]);
    opt.rho = (float)atof(a[14]);
    s = tsenor_cpu_prune_f32(w, rows, cols, cols, gram, cols, out, cols, mask, cols, &opt, &report);
    if (s != TSENOR_OK) return (int)s;
    write_file(a[15], out, rows * cols * 4);
    write_file(a[16], mask, rows * cols);
    printf("%.17g %d %d\n", report.error, report.iterations, report.cg_iterations);
    return 0;
}

static int gram(char **a)
{
    const size_t tokens = strtoul(a[1], NULL, 10), cols = strtoul(a[2], NULL, 10);
    float *x = (float *)read_file(a[0], tokens * cols * 4);
    float *g = (float *)read_file(a[3], cols * cols * 4);
    tsenor_status s = tsenor_gram_f32(x, tokens, cols, cols, g, cols, atoi(a[4]));
    if (s != TSENOR_OK) return (int)s;
    write_file(a[5], g, cols * cols * 4);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 19 && !strcmp(argv[1], "prune")) return prune(argv + 2);
    if (argc == 8 && !strcmp(argv[1], "gram")) return gram(argv + 2);
    fprintf(stderr, "usage: see prune_reference.c\n");
    return 100;
}
