/* tensorfile.h - the tensor file formats of the tsenor command line: safetensors
   (single files and the model.safetensors.index.json of sharded checkpoints) and NumPy
   .npy arrays.

   Every reader parses from a memory buffer (a memory map, a fuzzer's input) and trusts
   nothing in it: lengths, offsets, shapes and sizes are checked with overflow-safe
   arithmetic before any byte they name is read, names must be valid UTF-8, and a
   failure gives -1 with a one-line reason in `err` (never a crash or an out-of-bounds
   read). The parsed descriptions point into the buffer, which must outlive them.

   Used by cli/tsenor_cli.c and tests/fuzz/fuzz_files.c; include it in one file (all
   functions are static). Needs json.h beside it. C99, no dependencies beyond the C
   library. */
#ifndef TSENOR_TENSORFILE_H
#define TSENOR_TENSORFILE_H

#include "json.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define TENSORFILE_DEF static __attribute__((unused))   /* each includer uses some of them */
#else
#define TENSORFILE_DEF static
#endif

#define TENSORFILE_ERR_LEN JSON_ERR_LEN   /* the JSON reader writes its reasons into the same buffers */
#define TENSORFILE_MAX_RANK 16
#define TENSORFILE_MAX_SAFETENSORS_HEADER 100000000u   /* the reference library's own limit */

TENSORFILE_DEF int tensorfile_fail(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, TENSORFILE_ERR_LEN, fmt, ap);
    va_end(ap);
    return -1;
}

/* a * b into *out, 0 on overflow */
TENSORFILE_DEF int tensorfile_mul_size(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* ==================================================================================
   dtypes
   ================================================================================== */
typedef enum tensorfile_dtype {
    TENSORFILE_UNKNOWN = 0,
    TENSORFILE_BOOL, TENSORFILE_U8, TENSORFILE_I8, TENSORFILE_F8_E5M2, TENSORFILE_F8_E4M3, TENSORFILE_F8_E8M0,
    TENSORFILE_I16, TENSORFILE_U16, TENSORFILE_F16, TENSORFILE_BF16,
    TENSORFILE_I32, TENSORFILE_U32, TENSORFILE_F32,
    TENSORFILE_I64, TENSORFILE_U64, TENSORFILE_F64, TENSORFILE_C64,
    TENSORFILE_DTYPE_COUNT
} tensorfile_dtype;

static const struct { const char *name; unsigned size; } tensorfile_dtypes[TENSORFILE_DTYPE_COUNT] = {
    {"?", 0},
    {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
    {"I16", 2}, {"U16", 2}, {"F16", 2}, {"BF16", 2},
    {"I32", 4}, {"U32", 4}, {"F32", 4},
    {"I64", 8}, {"U64", 8}, {"F64", 8}, {"C64", 8},
};

TENSORFILE_DEF tensorfile_dtype tensorfile_dtype_from_name(const char *s, size_t len)
{
    int d;
    for (d = 1; d < TENSORFILE_DTYPE_COUNT; d++)
        if (strlen(tensorfile_dtypes[d].name) == len && memcmp(tensorfile_dtypes[d].name, s, len) == 0) return (tensorfile_dtype)d;
    return TENSORFILE_UNKNOWN;
}

/* the dtypes the library prunes */
TENSORFILE_DEF int tensorfile_dtype_is_prunable(tensorfile_dtype d) { return d == TENSORFILE_F32 || d == TENSORFILE_F16 || d == TENSORFILE_BF16; }

/* ==================================================================================
   safetensors: 8-byte little-endian header length N, N bytes of JSON, then the data
   ================================================================================== */
typedef struct tensorfile_tensor {
    const char *name;         /* decoded, NUL-terminated (no NUL inside: checked)  */
    size_t name_len;
    tensorfile_dtype dtype;
    int rank;
    uint64_t shape[TENSORFILE_MAX_RANK];
    uint64_t numel, nbytes;
    uint64_t begin, end;      /* data_offsets, relative to the data section        */
} tensorfile_tensor;

typedef struct tensorfile_meta {      /* one "__metadata__" entry (string -> string)        */
    const char *key, *value;
    size_t key_len, value_len;
} tensorfile_meta;

typedef struct tensorfile_safetensors {
    const uint8_t *data;      /* the data section: data_len bytes                  */
    uint64_t data_len, header_len;
    size_t count, meta_count;
    tensorfile_tensor *tensor;        /* in header order                                   */
    tensorfile_meta *meta;
    json_doc doc;              /* owns the decoded names                            */
} tensorfile_safetensors;

TENSORFILE_DEF void tensorfile_safetensors_free(tensorfile_safetensors *st)
{
    free(st->tensor);
    free(st->meta);
    json_free(&st->doc);
    memset(st, 0, sizeof *st);
}

/* formats the reason (it may name parts of st) and only then frees st */
TENSORFILE_DEF int tensorfile_safetensors_bail(tensorfile_safetensors *st, char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, TENSORFILE_ERR_LEN, fmt, ap);
    va_end(ap);
    tensorfile_safetensors_free(st);
    return -1;
}

TENSORFILE_DEF uint64_t tensorfile_le64(const uint8_t *p)
{
    uint64_t v = 0;
    int k;
    for (k = 7; k >= 0; k--) v = v << 8 | p[k];
    return v;
}

TENSORFILE_DEF int tensorfile_by_begin(const void *a, const void *b)
{
    const tensorfile_tensor *x = *(const tensorfile_tensor *const *)a, *y = *(const tensorfile_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

TENSORFILE_DEF int tensorfile_by_name(const void *a, const void *b)
{
    const tensorfile_tensor *x = *(const tensorfile_tensor *const *)a, *y = *(const tensorfile_tensor *const *)b;
    const size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    const int c = memcmp(x->name, y->name, n);
    return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* Whether buf starts like a safetensors file: the 8-byte header length, then the
   header's opening brace (the reference loader requires the '{' there too). */
TENSORFILE_DEF int tensorfile_is_safetensors(const uint8_t *buf, size_t len) { return len > 8 && buf[8] == '{'; }

/* Whether buf starts with the .npy magic. */
TENSORFILE_DEF int tensorfile_is_npy(const uint8_t *buf, size_t len) { return len >= 6 && memcmp(buf, "\x93NUMPY", 6) == 0; }

/* Parses a whole safetensors file held in buf[0..len). */
TENSORFILE_DEF int tensorfile_safetensors_parse(const uint8_t *buf, size_t len, tensorfile_safetensors *st, char *err)
{
    json_doc *doc = &st->doc;
    tensorfile_tensor **order = NULL;
    size_t k, i, tcount = 0, mcount = 0;
    memset(st, 0, sizeof *st);
    if (len < 8) return tensorfile_fail(err, "not a safetensors file (%zu bytes, shorter than the 8-byte header length)", len);
    if (!tensorfile_is_safetensors(buf, len))   /* before the length: it is arbitrary bytes then */
        return tensorfile_fail(err, "not a safetensors file (no JSON header after the 8-byte length)");
    st->header_len = tensorfile_le64(buf);
    if (st->header_len > (uint64_t)(len - 8))
        return tensorfile_fail(err, "header length %llu is larger than the file (%zu bytes)", (unsigned long long)st->header_len, len);
    if (st->header_len > TENSORFILE_MAX_SAFETENSORS_HEADER)
        return tensorfile_fail(err, "header length %llu exceeds the %u-byte limit", (unsigned long long)st->header_len,
                               TENSORFILE_MAX_SAFETENSORS_HEADER);
    if (st->header_len < 2) return tensorfile_fail(err, "header of %llu bytes cannot hold a JSON object", (unsigned long long)st->header_len);
    st->data = buf + 8 + st->header_len;
    st->data_len = (uint64_t)len - 8 - st->header_len;
    if (json_parse((const char *)buf + 8, (size_t)st->header_len, doc, err) < 0) {
        char inner[TENSORFILE_ERR_LEN];
        memcpy(inner, err, TENSORFILE_ERR_LEN);
        return tensorfile_fail(err, "header: %s", inner);
    }
    if (doc->node[0].type != JSON_OBJECT) { return tensorfile_safetensors_bail(st, err, "header is not a JSON object"); }
    st->tensor = (tensorfile_tensor *)calloc(doc->node[0].count + 1, sizeof *st->tensor);
    if (!st->tensor) { return tensorfile_safetensors_bail(st, err, "out of memory"); }
    for (k = 1, i = 0; i < doc->node[0].count; i++) {
        const json_node *key = &doc->node[k];
        const size_t value = k + 1;
        k = doc->node[value].end;
        if (key->len == 12 && memcmp(key->str, "__metadata__", 12) == 0) {
            size_t q = value + 1, j;
            if (doc->node[value].type != JSON_OBJECT) { return tensorfile_safetensors_bail(st, err, "__metadata__ is not an object"); }
            if (st->meta) { return tensorfile_safetensors_bail(st, err, "__metadata__ appears twice"); }
            st->meta = (tensorfile_meta *)calloc(doc->node[value].count + 1, sizeof *st->meta);
            if (!st->meta) { return tensorfile_safetensors_bail(st, err, "out of memory"); }
            for (j = 0; j < doc->node[value].count; j++) {
                if (doc->node[q + 1].type != JSON_STRING)
                    return tensorfile_safetensors_bail(st, err, "__metadata__ value of \"%.60s\" is not a string", doc->node[q].str);
                st->meta[mcount].key = doc->node[q].str;
                st->meta[mcount].key_len = doc->node[q].len;
                st->meta[mcount].value = doc->node[q + 1].str;
                st->meta[mcount].value_len = doc->node[q + 1].len;
                mcount++;
                q = doc->node[q + 1].end;
            }
            continue;
        }
        {
            tensorfile_tensor *t = &st->tensor[tcount];
            long dt, sh, off;
            size_t d;
            if (memchr(key->str, '\0', key->len) || key->len == 0)
                return tensorfile_safetensors_bail(st, err, "a tensor name is empty or holds a NUL character");
            t->name = key->str;
            t->name_len = key->len;
            if (doc->node[value].type != JSON_OBJECT)
                return tensorfile_safetensors_bail(st, err, "tensor \"%.60s\": entry is not an object", t->name);
            if (json_has_duplicate_member(doc, value))
                return tensorfile_safetensors_bail(st, err, "tensor \"%.60s\": a field appears twice", t->name);
            dt = json_member(doc, value, "dtype");
            sh = json_member(doc, value, "shape");
            off = json_member(doc, value, "data_offsets");
            if (dt < 0 || sh < 0 || off < 0)
                return tensorfile_safetensors_bail(st, err, "tensor \"%.60s\": missing dtype, shape or data_offsets", t->name);
            if (doc->node[dt].type != JSON_STRING || !(t->dtype = tensorfile_dtype_from_name(doc->node[dt].str, doc->node[dt].len))) {
                return tensorfile_safetensors_bail(st, err, "tensor \"%.60s\": unknown dtype%s%.20s", t->name,
                                                   doc->node[dt].type == JSON_STRING ? " " : "",
                                                   doc->node[dt].type == JSON_STRING ? doc->node[dt].str : "");
            }
            if (doc->node[sh].type != JSON_ARRAY || doc->node[sh].count > TENSORFILE_MAX_RANK)
                return tensorfile_safetensors_bail(st, err, "tensor \"%.60s\": shape is not an array of at most %d sizes", t->name,
                                                   TENSORFILE_MAX_RANK);
            t->rank = (int)doc->node[sh].count;
            t->numel = 1;
            for (d = 0; d < doc->node[sh].count; d++) {
                const json_node *dim = &doc->node[(size_t)sh + 1 + d];
                if (dim->type != JSON_NUMBER || !dim->is_uint)
                    return tensorfile_safetensors_bail(st, err, "tensor \"%.60s\": shape holds a value that is not a size", t->name);
                t->shape[d] = dim->u;
                if (!tensorfile_mul_size(t->numel, dim->u, &t->numel))
                    return tensorfile_safetensors_bail(st, err, "tensor \"%.60s\": shape's element count overflows", t->name);
            }
            if (!tensorfile_mul_size(t->numel, tensorfile_dtypes[t->dtype].size, &t->nbytes))
                return tensorfile_safetensors_bail(st, err, "tensor \"%.60s\": byte size overflows", t->name);
            if (doc->node[off].type != JSON_ARRAY || doc->node[off].count != 2 || doc->node[off + 1].type != JSON_NUMBER ||
                !doc->node[off + 1].is_uint || doc->node[off + 2].type != JSON_NUMBER || !doc->node[off + 2].is_uint) {
                return tensorfile_safetensors_bail(st, err, "tensor \"%.60s\": data_offsets is not a pair of offsets", t->name);
            }
            t->begin = doc->node[off + 1].u;
            t->end = doc->node[off + 2].u;
            if (t->begin > t->end || t->end > st->data_len) {
                return tensorfile_safetensors_bail(st, err, "tensor \"%.60s\": data_offsets [%llu, %llu] out of range (data section is %llu bytes)",
                                                   t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                                                   (unsigned long long)st->data_len);
            }
            if (t->end - t->begin != t->nbytes) {
                return tensorfile_safetensors_bail(st, err, "tensor \"%.60s\": %llu bytes of data for %s shape of %llu elements (%llu bytes)",
                                                   t->name, (unsigned long long)(t->end - t->begin), tensorfile_dtypes[t->dtype].name,
                                                   (unsigned long long)t->numel, (unsigned long long)t->nbytes);
            }
            tcount++;
        }
    }
    st->count = tcount;
    st->meta_count = mcount;
    /* no two tensors may share a name or a byte */
    if (tcount > 1) {
        order = (tensorfile_tensor **)malloc(tcount * sizeof *order);
        if (!order) { return tensorfile_safetensors_bail(st, err, "out of memory"); }
        for (i = 0; i < tcount; i++) order[i] = &st->tensor[i];
        qsort(order, tcount, sizeof *order, tensorfile_by_name);
        for (i = 1; i < tcount; i++)
            if (tensorfile_by_name(&order[i - 1], &order[i]) == 0) {
                const char *name = order[i]->name;
                free(order);
                tensorfile_fail(err, "tensor \"%.60s\" appears twice", name);
                tensorfile_safetensors_free(st);
                return -1;
            }
        qsort(order, tcount, sizeof *order, tensorfile_by_begin);
        {   /* in begin order, each non-empty tensor must start at or after the end of every
               non-empty one before it (not only its neighbour: empty tensors sit anywhere) */
            const tensorfile_tensor *reach = NULL;   /* the non-empty tensor that ends last so far */
            for (i = 0; i < tcount; i++) {
                if (!order[i]->nbytes) continue;
                if (reach && order[i]->begin < reach->end) {
                    char a[64], b[64];
                    snprintf(a, sizeof a, "%s", reach->name);
                    snprintf(b, sizeof b, "%s", order[i]->name);
                    free(order);
                    return tensorfile_safetensors_bail(st, err, "tensors \"%s\" and \"%s\" overlap in the data section", a, b);
                }
                if (!reach || order[i]->end > reach->end) reach = order[i];
            }
        }
        free(order);
    }
    return 0;
}

/* ==================================================================================
   grams: a safetensors file of F32 cols x cols matrices, each named like its weight
   ================================================================================== */

/* st's tensors sorted by name, for tensorfile_find (st->count entries; free() it).
   NULL when out of memory. */
TENSORFILE_DEF const tensorfile_tensor **tensorfile_sorted_by_name(const tensorfile_safetensors *st)
{
    const tensorfile_tensor **order = (const tensorfile_tensor **)malloc((st->count + 1) * sizeof *order);
    size_t i;
    if (!order) return NULL;
    for (i = 0; i < st->count; i++) order[i] = &st->tensor[i];
    qsort(order, st->count, sizeof *order, tensorfile_by_name);
    return order;
}

/* The tensor of that exact name (len bytes, no terminator needed), or NULL. */
TENSORFILE_DEF const tensorfile_tensor *tensorfile_find(const tensorfile_tensor *const *sorted, size_t count, const char *name,
                                                        size_t len)
{
    tensorfile_tensor key;
    const tensorfile_tensor *k = &key;
    const tensorfile_tensor *const *hit;
    memset(&key, 0, sizeof key);
    key.name = name;
    key.name_len = len;
    hit = (const tensorfile_tensor *const *)bsearch(&k, sorted, count, sizeof *sorted, tensorfile_by_name);
    return hit ? *hit : NULL;
}

/* 0 when t is an F32 matrix of cols x cols (so its data holds 4 cols^2 bytes, which the
   parser has checked lie in the file); else -1 with the reason, naming what t is. */
TENSORFILE_DEF int tensorfile_gram_check(const tensorfile_tensor *t, uint64_t cols, char *err)
{
    char shape[64];
    size_t len = 0;
    int d;
    if (t->dtype == TENSORFILE_F32 && t->rank == 2 && t->shape[0] == cols && t->shape[1] == cols) return 0;
    shape[0] = '\0';
    for (d = 0; d < t->rank && len < sizeof shape - 1; d++)
        len += (size_t)snprintf(shape + len, sizeof shape - len, d ? "x%llu" : "%llu", (unsigned long long)t->shape[d]);
    if (t->rank == 0) snprintf(shape, sizeof shape, "a scalar");
    if (t->dtype != TENSORFILE_F32)
        return tensorfile_fail(err, "gram \"%.60s\" is %s, not F32", t->name, tensorfile_dtypes[t->dtype].name);
    return tensorfile_fail(err, "gram \"%.60s\" is %s; its weight has %llu columns, so it must be %llux%llu", t->name, shape,
                           (unsigned long long)cols, (unsigned long long)cols, (unsigned long long)cols);
}

/* ==================================================================================
   model.safetensors.index.json: {"metadata": {...}, "weight_map": {"tensor": "shard"}}
   ================================================================================== */
struct tensorfile_index_entry { const char *shard, *tensor; };

typedef struct tensorfile_index {
    size_t count;             /* weight_map entries, in file order                */
    const char **tensor, **shard;
    struct tensorfile_index_entry *by_shard;   /* weight_map sorted by (shard, tensor)    */
    size_t shard_count;       /* distinct shard file names, sorted                */
    const char **shard_name;
    size_t *shard_first;      /* shard s's entries: by_shard[shard_first[s] .. shard_first[s+1]) */
    long metadata;            /* node of "metadata", or -1                        */
    json_doc doc;
} tensorfile_index;

TENSORFILE_DEF void tensorfile_index_free(tensorfile_index *ix)
{
    free((void *)ix->tensor);
    free((void *)ix->shard);
    free((void *)ix->shard_name);
    free(ix->by_shard);
    free(ix->shard_first);
    json_free(&ix->doc);
    memset(ix, 0, sizeof *ix);
}

TENSORFILE_DEF int tensorfile_index_bail(tensorfile_index *ix, char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, TENSORFILE_ERR_LEN, fmt, ap);
    va_end(ap);
    tensorfile_index_free(ix);
    return -1;
}

/* a shard must be a plain file name in the checkpoint's directory */
TENSORFILE_DEF int tensorfile_shard_name_ok(const char *s, size_t len)
{
    if (len == 0 || memchr(s, '/', len) || memchr(s, '\\', len) || memchr(s, '\0', len)) return 0;
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')) return 0;
    return 1;
}

TENSORFILE_DEF int tensorfile_index_by_tensor(const void *a, const void *b)
{
    return strcmp(((const struct tensorfile_index_entry *)a)->tensor, ((const struct tensorfile_index_entry *)b)->tensor);
}

TENSORFILE_DEF int tensorfile_index_by_shard(const void *a, const void *b)
{
    const struct tensorfile_index_entry *x = (const struct tensorfile_index_entry *)a, *y = (const struct tensorfile_index_entry *)b;
    const int c = strcmp(x->shard, y->shard);
    return c ? c : strcmp(x->tensor, y->tensor);
}

TENSORFILE_DEF int tensorfile_index_parse(const char *text, size_t len, tensorfile_index *ix, char *err)
{
    json_doc *doc = &ix->doc;
    long map;
    size_t i, k;
    memset(ix, 0, sizeof *ix);
    ix->metadata = -1;
    if (json_parse(text, len, doc, err) < 0) return -1;
    if (doc->node[0].type != JSON_OBJECT) { return tensorfile_index_bail(ix, err, "index is not a JSON object"); }
    map = json_member(doc, 0, "weight_map");
    if (map < 0 || doc->node[map].type != JSON_OBJECT) { return tensorfile_index_bail(ix, err, "index has no \"weight_map\" object"); }
    ix->metadata = json_member(doc, 0, "metadata");
    if (ix->metadata >= 0 && doc->node[ix->metadata].type != JSON_OBJECT)
        return tensorfile_index_bail(ix, err, "index \"metadata\" is not an object");
    ix->count = doc->node[map].count;
    ix->tensor = (const char **)calloc(ix->count + 1, sizeof *ix->tensor);
    ix->shard = (const char **)calloc(ix->count + 1, sizeof *ix->shard);
    ix->shard_name = (const char **)calloc(ix->count + 1, sizeof *ix->shard_name);
    ix->by_shard = (struct tensorfile_index_entry *)calloc(ix->count + 1, sizeof *ix->by_shard);
    ix->shard_first = (size_t *)calloc(ix->count + 2, sizeof *ix->shard_first);
    if (!ix->tensor || !ix->shard || !ix->shard_name || !ix->by_shard || !ix->shard_first) { return tensorfile_index_bail(ix, err, "out of memory"); }
    for (k = (size_t)map + 1, i = 0; i < ix->count; i++) {
        const json_node *key = &doc->node[k], *val = &doc->node[k + 1];
        if (val->type != JSON_STRING || !tensorfile_shard_name_ok(val->str, val->len)) {
            return tensorfile_index_bail(ix, err, "index: shard of \"%.60s\" is not a plain file name", key->str);
        }
        if (memchr(key->str, '\0', key->len)) { return tensorfile_index_bail(ix, err, "index: a tensor name holds a NUL character"); }
        ix->tensor[i] = key->str;
        ix->shard[i] = val->str;
        ix->by_shard[i].shard = val->str;
        ix->by_shard[i].tensor = key->str;
        k = val->end;
    }
    if (ix->count == 0) { return tensorfile_index_bail(ix, err, "index: weight_map is empty"); }
    /* sorted by tensor: a name twice is an error; then by shard: each shard's entries
       are one run (n log n: an index may name many thousands) */
    qsort(ix->by_shard, ix->count, sizeof *ix->by_shard, tensorfile_index_by_tensor);
    for (i = 1; i < ix->count; i++)
        if (strcmp(ix->by_shard[i - 1].tensor, ix->by_shard[i].tensor) == 0)
            return tensorfile_index_bail(ix, err, "index: tensor \"%.60s\" appears twice in weight_map", ix->by_shard[i].tensor);
    qsort(ix->by_shard, ix->count, sizeof *ix->by_shard, tensorfile_index_by_shard);
    for (i = 0; i < ix->count; i++)
        if (i == 0 || strcmp(ix->by_shard[i - 1].shard, ix->by_shard[i].shard) != 0) {
            ix->shard_first[ix->shard_count] = i;
            ix->shard_name[ix->shard_count++] = ix->by_shard[i].shard;
        }
    ix->shard_first[ix->shard_count] = ix->count;
    return 0;
}

/* ==================================================================================
   .npy: "\x93NUMPY", version, header length, a Python dict literal, then the data
   ================================================================================== */
typedef struct tensorfile_npy {
    tensorfile_dtype dtype;           /* TENSORFILE_F32, TENSORFILE_F16, TENSORFILE_U8, ... (little-endian or single byte) */
    char descr[16];           /* as written, e.g. "<f4"                             */
    int fortran_order;
    int rank;
    uint64_t shape[TENSORFILE_MAX_RANK];
    uint64_t numel, nbytes;
    size_t data_offset;       /* header size: where the data starts                 */
    int big_endian;           /* a multi-byte dtype stored big-endian (not supported for pruning) */
} tensorfile_npy;

TENSORFILE_DEF void tensorfile_npy_skip_space(const char *s, size_t len, size_t *i)
{
    while (*i < len && (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\n')) (*i)++;
}

/* a Python string literal ('...' or "..."), no escapes (numpy never writes any here) */
TENSORFILE_DEF int tensorfile_npy_string(const char *s, size_t len, size_t *i, const char **out, size_t *out_len)
{
    char q;
    size_t start;
    if (*i >= len) return 0;
    q = s[*i];
    if (q != '\'' && q != '"') return 0;
    start = ++(*i);
    while (*i < len && s[*i] != q) {
        if (s[*i] == '\\') return 0;
        (*i)++;
    }
    if (*i >= len) return 0;
    *out = s + start;
    *out_len = *i - start;
    (*i)++;
    return 1;
}

TENSORFILE_DEF int tensorfile_npy_parse(const uint8_t *buf, size_t len, tensorfile_npy *a, char *err)
{
    const char *h;
    size_t hlen, pre, i = 0;
    int have_descr = 0, have_order = 0, have_shape = 0;
    memset(a, 0, sizeof *a);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) return tensorfile_fail(err, "not a .npy file (no \\x93NUMPY magic)");
    if (buf[6] == 1) {
        pre = 10;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    } else if (buf[6] == 2 || buf[6] == 3) {
        if (len < 12) return tensorfile_fail(err, "truncated .npy header");
        pre = 12;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    } else {
        return tensorfile_fail(err, ".npy format version %u.%u is not supported", buf[6], buf[7]);
    }
    if (hlen > len - pre) return tensorfile_fail(err, ".npy header length %zu is larger than the file", hlen);
    h = (const char *)buf + pre;
    a->data_offset = pre + hlen;
    if (!json_utf8_valid(h, hlen)) return tensorfile_fail(err, ".npy header is not valid text");
    tensorfile_npy_skip_space(h, hlen, &i);
    if (i >= hlen || h[i++] != '{') return tensorfile_fail(err, ".npy header is not a dict");
    for (;;) {
        const char *key;
        size_t key_len;
        tensorfile_npy_skip_space(h, hlen, &i);
        if (i < hlen && h[i] == '}') { i++; break; }
        if (i >= hlen || !tensorfile_npy_string(h, hlen, &i, &key, &key_len)) return tensorfile_fail(err, ".npy header: expected a key");
        tensorfile_npy_skip_space(h, hlen, &i);
        if (i >= hlen || h[i++] != ':') return tensorfile_fail(err, ".npy header: expected ':'");
        tensorfile_npy_skip_space(h, hlen, &i);
        if (key_len == 5 && memcmp(key, "descr", 5) == 0) {
            const char *d;
            size_t dl;
            if (have_descr++ || !tensorfile_npy_string(h, hlen, &i, &d, &dl) || dl < 2 || dl >= sizeof a->descr)
                return tensorfile_fail(err, ".npy header: bad descr");
            memcpy(a->descr, d, dl);
            a->descr[dl] = '\0';
        } else if (key_len == 13 && memcmp(key, "fortran_order", 13) == 0) {
            if (have_order++) return tensorfile_fail(err, ".npy header: fortran_order twice");
            if (hlen - i >= 4 && memcmp(h + i, "True", 4) == 0) { a->fortran_order = 1; i += 4; }
            else if (hlen - i >= 5 && memcmp(h + i, "False", 5) == 0) { i += 5; }
            else return tensorfile_fail(err, ".npy header: fortran_order is not True or False");
        } else if (key_len == 5 && memcmp(key, "shape", 5) == 0) {
            if (have_shape++ || i >= hlen || h[i++] != '(') return tensorfile_fail(err, ".npy header: bad shape");
            a->numel = 1;
            for (;;) {
                uint64_t v = 0;
                int digits = 0;
                tensorfile_npy_skip_space(h, hlen, &i);
                if (i < hlen && h[i] == ')') { i++; break; }
                while (i < hlen && h[i] >= '0' && h[i] <= '9') {
                    if (v > (UINT64_MAX - 9) / 10) return tensorfile_fail(err, ".npy header: shape value too large");
                    v = v * 10 + (uint64_t)(h[i++] - '0');
                    digits++;
                }
                if (!digits) return tensorfile_fail(err, ".npy header: bad shape");
                if (a->rank == TENSORFILE_MAX_RANK) return tensorfile_fail(err, ".npy header: more than %d dimensions", TENSORFILE_MAX_RANK);
                a->shape[a->rank++] = v;
                if (!tensorfile_mul_size(a->numel, v, &a->numel)) return tensorfile_fail(err, ".npy header: element count overflows");
                tensorfile_npy_skip_space(h, hlen, &i);
                if (i < hlen && h[i] == ',') { i++; continue; }
                if (i < hlen && h[i] == ')') { i++; break; }
                return tensorfile_fail(err, ".npy header: bad shape");
            }
        } else {
            return tensorfile_fail(err, ".npy header: unknown key");
        }
        tensorfile_npy_skip_space(h, hlen, &i);
        if (i < hlen && h[i] == ',') { i++; continue; }
        if (i < hlen && h[i] == '}') { i++; break; }
        return tensorfile_fail(err, ".npy header: expected ',' or '}'");
    }
    if (!have_descr || !have_order || !have_shape) return tensorfile_fail(err, ".npy header lacks descr, fortran_order or shape");
    {   /* descr: byte order + kind + size */
        static const struct { const char *code; tensorfile_dtype dtype; } kinds[] = {
            {"f2", TENSORFILE_F16}, {"f4", TENSORFILE_F32}, {"f8", TENSORFILE_F64}, {"i1", TENSORFILE_I8},
            {"u1", TENSORFILE_U8}, {"b1", TENSORFILE_BOOL}, {"i2", TENSORFILE_I16}, {"u2", TENSORFILE_U16},
            {"i4", TENSORFILE_I32}, {"u4", TENSORFILE_U32}, {"i8", TENSORFILE_I64}, {"u8", TENSORFILE_U64}};
        const char order = a->descr[0];
        size_t q;
        if (order != '<' && order != '>' && order != '|' && order != '=')
            return tensorfile_fail(err, ".npy dtype '%s' is not supported", a->descr);
        for (q = 0; q < sizeof kinds / sizeof kinds[0]; q++)
            if (strcmp(a->descr + 1, kinds[q].code) == 0) a->dtype = kinds[q].dtype;
        if (!a->dtype) return tensorfile_fail(err, ".npy dtype '%s' is not supported", a->descr);
        a->big_endian = order == '>' && tensorfile_dtypes[a->dtype].size > 1;
    }
    if (!tensorfile_mul_size(a->numel, tensorfile_dtypes[a->dtype].size, &a->nbytes)) return tensorfile_fail(err, ".npy byte size overflows");
    if (a->nbytes != (uint64_t)(len - a->data_offset))
        return tensorfile_fail(err, ".npy holds %llu bytes of data for a shape of %llu bytes", (unsigned long long)(len - a->data_offset),
                       (unsigned long long)a->nbytes);
    return 0;
}

/* A version-1.0 .npy header for an array of descr/shape, padded with spaces and a
   newline so the data starts 64-byte aligned (what numpy writes). */
TENSORFILE_DEF int tensorfile_npy_header(json_buf *b, const char *descr, int fortran_order, const uint64_t *shape, int rank)
{
    json_buf dict = {NULL, 0, 0, 0};
    int d;
    size_t total, pad;
    json_buf_printf(&dict, "{'descr': '%s', 'fortran_order': %s, 'shape': (", descr, fortran_order ? "True" : "False");
    for (d = 0; d < rank; d++) json_buf_printf(&dict, "%llu%s", (unsigned long long)shape[d], rank == 1 || d < rank - 1 ? ", " : "");
    json_buf_str(&dict, "), }");
    if (dict.oom) { free(dict.s); return -1; }
    total = 10 + dict.len + 1;
    pad = (64 - total % 64) % 64;
    if (dict.len + pad + 1 > 65535) { free(dict.s); return -1; }
    {
        const size_t hl = dict.len + pad + 1;
        const char pre[10] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0, (char)(hl & 0xFF), (char)(hl >> 8)};
        json_buf_add(b, pre, 10);
    }
    json_buf_add(b, dict.s, dict.len);
    while (pad--) json_buf_add(b, " ", 1);
    json_buf_add(b, "\n", 1);
    free(dict.s);
    return b->oom ? -1 : 0;
}

#endif /* TSENOR_TENSORFILE_H */
