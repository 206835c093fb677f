/* Fuzz target for the readers of cli/tensorfile.h: every input is parsed as a
   safetensors file, a .npy array and a model.safetensors.index.json. Whatever a reader
   accepts, every byte it claims is then read, so AddressSanitizer sees any claim that
   reaches past the input.

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
