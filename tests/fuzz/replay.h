/* replay.h - a main() for the fuzz targets where libFuzzer is missing: runs every file
   named on the command line once, from an exact-size heap copy so that the sanitizers
   catch reads past its end. Included by a target when FUZZ_REPLAY_MAIN is defined. */
#ifndef TSENOR_FUZZ_REPLAY_H
#define TSENOR_FUZZ_REPLAY_H
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    int k, count = 0;
    for (k = 1; k < argc; k++) {
        FILE *f = fopen(argv[k], "rb");
        long n;
        uint8_t *buf;
        if (!f) { fprintf(stderr, "%s: cannot open\n", argv[k]); return 2; }
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        buf = (uint8_t *)malloc(n > 0 ? (size_t)n : 1);
        if (!buf || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) { fprintf(stderr, "%s: cannot read\n", argv[k]); return 2; }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, (size_t)n);
        free(buf);
        count++;
    }
    printf("replayed %d inputs\n", count);
    return 0;
}
#endif
