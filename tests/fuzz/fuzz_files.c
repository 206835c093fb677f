/* Fuzz target for the readers of cli/tensorfile.h: every input is parsed as a
   safetensors file, a .npy array and a model.safetensors.index.json. Whatever a reader
   accepts, every byte it claims is then read, so AddressSanitizer sees any claim that
   reaches past the input. A safetensors file is also read as a grams file: each tensor
   is looked up by its name and checked as the gram of a weight with as many columns as
   its first dimension; a gram that passes has its cols x cols floats read.

   libFuzzer:  clang -fsanitize=fuzzer,address,undefined tests/fuzz/fuzz_files.c
   replay:     cc -DFUZZ_REPLAY_MAIN -fsanitize=address,undefined tests/fuzz/fuzz_files.c,
               then run it on files (what `make fuzz-smoke` does without libFuzzer; replay.h). */
#include "../../cli/tensorfile.h"

static volatile unsigned fuzz_sink;

static void touch(const uint8_t *p, uint64_t n)
{
    uint64_t i;
    unsigned acc = 0;
    for (i = 0; i < n; i++) acc += p[i];
    fuzz_sink += acc;
}

/* what the command line does with a grams file (cli/tsenor_cli.c, find_gram) */
static void grams(const tensorfile_safetensors *st, char *err)
{
    const tensorfile_tensor **sorted = tensorfile_sorted_by_name(st);
    size_t i;
    if (!sorted) return;
    for (i = 0; i < st->count; i++) {
        const tensorfile_tensor *t = &st->tensor[i];
        const tensorfile_tensor *g = tensorfile_find(sorted, st->count, t->name, t->name_len);
        const uint64_t cols = t->rank ? t->shape[0] : 1;
        if (g != t) __builtin_trap();   /* names are unique: a lookup finds the tensor itself */
        if (tensorfile_gram_check(g, cols, err) == 0) touch(st->data + g->begin, 4 * cols * cols);
        else fuzz_sink += (unsigned)strlen(err);
    }
    if (tensorfile_find(sorted, st->count, "", 0)) __builtin_trap();   /* no tensor has an empty name */
    free((void *)sorted);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[TENSORFILE_ERR_LEN];
    tensorfile_safetensors st;
    tensorfile_npy a;
    tensorfile_index ix;
    size_t i;
    if (tensorfile_safetensors_parse(data, size, &st, err) == 0) {
        for (i = 0; i < st.count; i++) {
            touch(st.data + st.tensor[i].begin, st.tensor[i].end - st.tensor[i].begin);
            touch((const uint8_t *)st.tensor[i].name, st.tensor[i].name_len + 1);
        }
        for (i = 0; i < st.meta_count; i++) touch((const uint8_t *)st.meta[i].value, st.meta[i].value_len);
        grams(&st, err);
        tensorfile_safetensors_free(&st);
    }
    if (tensorfile_npy_parse(data, size, &a, err) == 0) touch(data + a.data_offset, a.nbytes);
    if (tensorfile_index_parse((const char *)data, size, &ix, err) == 0) {
        for (i = 0; i < ix.count; i++) fuzz_sink += (unsigned)strlen(ix.tensor[i]) + (unsigned)strlen(ix.shard[i]);
        tensorfile_index_free(&ix);
    }
    return 0;
}

#ifdef FUZZ_REPLAY_MAIN
#include "replay.h"
#endif
