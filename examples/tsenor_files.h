/* tsenor_files.h - the tensor file formats of the tsenor command line: safetensors
   (single files and the model.safetensors.index.json of sharded checkpoints) and NumPy
   .npy arrays.

   Every reader parses from a memory buffer (a memory map, a fuzzer's input) and trusts
   nothing in it: lengths, offsets, shapes and sizes are checked with overflow-safe
   arithmetic before any byte they name is read, names must be valid UTF-8, and a
   failure gives -1 with a one-line reason in `err` (never a crash or an out-of-bounds
   read). The parsed descriptions point into the buffer, which must outlive them.

   Used by examples/tsenor_cli.c and tests/fuzz/fuzz_files.c; include it in one file
   (all functions are static). C99, no dependencies beyond the C library. */
#ifndef TSENOR_FILES_H
#define TSENOR_FILES_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define TF_DEF static __attribute__((unused))   /* each includer uses some of them */
#else
#define TF_DEF static
#endif

#define TF_ERR_LEN 256
#define TF_MAX_RANK 16
#define TF_MAX_JSON_DEPTH 64
#define TF_MAX_SAFETENSORS_HEADER 100000000u   /* the reference library's own limit */
#define TF_MAX_JSON_NODES (1u << 22)   /* ~10 per tensor: 400 000 tensors; bounds memory at ~200 MB */

TF_DEF int tf_fail(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, TF_ERR_LEN, fmt, ap);
    va_end(ap);
    return -1;
}

/* a * b into *out, 0 on overflow */
TF_DEF int tf_mul_size(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* ==================================================================================
   dtypes
   ================================================================================== */
typedef enum tf_dtype {
    TF_UNKNOWN = 0,
    TF_BOOL, TF_U8, TF_I8, TF_F8_E5M2, TF_F8_E4M3, TF_F8_E8M0,
    TF_I16, TF_U16, TF_F16, TF_BF16,
    TF_I32, TF_U32, TF_F32,
    TF_I64, TF_U64, TF_F64, TF_C64,
    TF_DTYPE_COUNT
} tf_dtype;

static const struct { const char *name; unsigned size; } tf_dtypes[TF_DTYPE_COUNT] = {
    {"?", 0},
    {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
    {"I16", 2}, {"U16", 2}, {"F16", 2}, {"BF16", 2},
    {"I32", 4}, {"U32", 4}, {"F32", 4},
    {"I64", 8}, {"U64", 8}, {"F64", 8}, {"C64", 8},
};

TF_DEF tf_dtype tf_dtype_from_name(const char *s, size_t len)
{
    int d;
    for (d = 1; d < TF_DTYPE_COUNT; d++)
        if (strlen(tf_dtypes[d].name) == len && memcmp(tf_dtypes[d].name, s, len) == 0) return (tf_dtype)d;
    return TF_UNKNOWN;
}

/* the dtypes the library prunes */
TF_DEF int tf_dtype_is_prunable(tf_dtype d) { return d == TF_F32 || d == TF_F16 || d == TF_BF16; }

/* ==================================================================================
   UTF-8 and a small JSON reader (a DOM of nodes in document order)
   ================================================================================== */

/* Length of the valid UTF-8 sequence at s (1-4), 0 when invalid (overlong forms,
   surrogates and code points above U+10FFFF are invalid). */
TF_DEF int tf_utf8_sequence(const unsigned char *s, size_t left)
{
    unsigned c = s[0], cp;
    int len, k;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else return 0;
    if ((size_t)len > left) return 0;
    for (k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    return len;
}

TF_DEF int tf_utf8_valid(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        const int k = tf_utf8_sequence((const unsigned char *)s + i, len - i);
        if (!k) return 0;
        i += (size_t)k;
    }
    return 1;
}

typedef enum tf_jtype { TF_JNULL, TF_JFALSE, TF_JTRUE, TF_JNUMBER, TF_JSTRING, TF_JARRAY, TF_JOBJECT } tf_jtype;

typedef struct tf_jnode {
    tf_jtype type;
    size_t end;          /* index one past this node's last descendant: the next sibling */
    size_t count;        /* array: elements; object: members (each a key node + a value)  */
    const char *str;     /* string: decoded UTF-8 (in the arena, NUL-terminated); number: raw text */
    size_t len;
    uint64_t u;          /* number: the value when it is a non-negative integer...       */
    int is_uint;         /* ...that fits 64 bits                                         */
} tf_jnode;

typedef struct tf_json {
    tf_jnode *node;
    size_t count, cap;
    char *arena;         /* decoded strings; never longer than the text they came from */
    size_t arena_used;
} tf_json;

typedef struct tf_jparser {
    const char *s;
    size_t len, pos;
    tf_json *doc;
    char *err;
} tf_jparser;

TF_DEF void tf_json_free(tf_json *doc)
{
    free(doc->node);
    free(doc->arena);
    memset(doc, 0, sizeof *doc);
}

TF_DEF void tf_jskip_space(tf_jparser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

TF_DEF long tf_jnew(tf_jparser *p, tf_jtype type)
{
    tf_json *d = p->doc;
    if (d->count == TF_MAX_JSON_NODES) return tf_fail(p->err, "JSON: more than %u values", TF_MAX_JSON_NODES);
    if (d->count == d->cap) {
        const size_t cap = d->cap ? d->cap * 2 : 64;
        tf_jnode *n = (tf_jnode *)realloc(d->node, cap * sizeof *n);
        if (!n) return tf_fail(p->err, "out of memory reading JSON");
        d->node = n;
        d->cap = cap;
    }
    memset(&d->node[d->count], 0, sizeof d->node[0]);
    d->node[d->count].type = type;
    return (long)d->count++;
}

TF_DEF int tf_jhex4(tf_jparser *p, unsigned *out)
{
    unsigned v = 0;
    int k;
    if (p->len - p->pos < 4) return 0;
    for (k = 0; k < 4; k++) {
        const char c = p->s[p->pos + (size_t)k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    p->pos += 4;
    *out = v;
    return 1;
}

TF_DEF size_t tf_utf8_encode(unsigned cp, char *out)
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | cp >> 6); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* a string at p->pos (the opening quote), decoded into the arena */
TF_DEF int tf_jstring(tf_jparser *p, long at)
{
    tf_json *d = p->doc;
    char *out = d->arena + d->arena_used;
    size_t n = 0;
    p->pos++;
    for (;;) {
        unsigned char c;
        if (p->pos >= p->len) return tf_fail(p->err, "JSON: unterminated string");
        c = (unsigned char)p->s[p->pos];
        if (c == '"') { p->pos++; break; }
        if (c < 0x20) return tf_fail(p->err, "JSON: control character in a string");
        if (c == '\\') {
            char e;
            unsigned cp;
            if (++p->pos >= p->len) return tf_fail(p->err, "JSON: unterminated string");
            e = p->s[p->pos++];
            switch (e) {
            case '"': out[n++] = '"'; break;
            case '\\': out[n++] = '\\'; break;
            case '/': out[n++] = '/'; break;
            case 'b': out[n++] = '\b'; break;
            case 'f': out[n++] = '\f'; break;
            case 'n': out[n++] = '\n'; break;
            case 'r': out[n++] = '\r'; break;
            case 't': out[n++] = '\t'; break;
            case 'u':
                if (!tf_jhex4(p, &cp)) return tf_fail(p->err, "JSON: bad \\u escape");
                if (cp >= 0xDC00 && cp <= 0xDFFF) return tf_fail(p->err, "JSON: lone low surrogate in a string");
                if (cp >= 0xD800 && cp <= 0xDBFF) {   /* a surrogate pair: \uD8xx\uDCxx */
                    unsigned lo;
                    if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                        return tf_fail(p->err, "JSON: lone high surrogate in a string");
                    p->pos += 2;
                    if (!tf_jhex4(p, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                        return tf_fail(p->err, "JSON: bad surrogate pair in a string");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                n += tf_utf8_encode(cp, out + n);   /* at most as long as the escape */
                break;
            default: return tf_fail(p->err, "JSON: bad escape \\%c", e);
            }
        } else {
            const int k = tf_utf8_sequence((const unsigned char *)p->s + p->pos, p->len - p->pos);
            if (!k) return tf_fail(p->err, "JSON: string is not valid UTF-8");
            memcpy(out + n, p->s + p->pos, (size_t)k);
            n += (size_t)k;
            p->pos += (size_t)k;
        }
    }
    out[n] = '\0';
    d->node[at].str = out;
    d->node[at].len = n;
    d->arena_used += n + 1;
    return 0;
}

TF_DEF int tf_jnumber(tf_jparser *p, long at)
{
    const size_t start = p->pos;
    int digits = 0, integer = 1, overflow = 0;
    uint64_t u = 0;
    if (p->s[p->pos] == '-') { p->pos++; integer = 0; }
    if (p->pos < p->len && p->s[p->pos] == '0') {
        p->pos++;
        digits = 1;
    } else {
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
            const unsigned dgt = (unsigned)(p->s[p->pos++] - '0');
            if (u > (UINT64_MAX - dgt) / 10) overflow = 1;
            else u = u * 10 + dgt;
            digits++;
        }
    }
    if (!digits) return tf_fail(p->err, "JSON: bad number");
    if (p->pos < p->len && p->s[p->pos] == '.') {
        integer = 0;
        p->pos++;
        if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9') return tf_fail(p->err, "JSON: bad number");
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        integer = 0;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
        if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9') return tf_fail(p->err, "JSON: bad number");
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    }
    p->doc->node[at].str = p->s + start;
    p->doc->node[at].len = p->pos - start;
    p->doc->node[at].u = u;
    p->doc->node[at].is_uint = integer && !overflow;
    return 0;
}

TF_DEF int tf_jvalue(tf_jparser *p, int depth)
{
    long at;
    char c;
    tf_jskip_space(p);
    if (p->pos >= p->len) return tf_fail(p->err, "JSON: unexpected end");
    if (depth > TF_MAX_JSON_DEPTH) return tf_fail(p->err, "JSON: nested deeper than %d", TF_MAX_JSON_DEPTH);
    c = p->s[p->pos];
    if (c == '{' || c == '[') {
        const int object = c == '{';
        const char close = object ? '}' : ']';
        if ((at = tf_jnew(p, object ? TF_JOBJECT : TF_JARRAY)) < 0) return -1;
        p->pos++;
        tf_jskip_space(p);
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
        } else {
            for (;;) {
                if (object) {
                    long key;
                    tf_jskip_space(p);
                    if (p->pos >= p->len || p->s[p->pos] != '"') return tf_fail(p->err, "JSON: expected a member name");
                    if ((key = tf_jnew(p, TF_JSTRING)) < 0 || tf_jstring(p, key) < 0) return -1;
                    p->doc->node[key].end = (size_t)key + 1;
                    tf_jskip_space(p);
                    if (p->pos >= p->len || p->s[p->pos] != ':') return tf_fail(p->err, "JSON: expected ':'");
                    p->pos++;
                }
                if (tf_jvalue(p, depth + 1) < 0) return -1;
                p->doc->node[at].count++;
                tf_jskip_space(p);
                if (p->pos >= p->len) return tf_fail(p->err, "JSON: unexpected end");
                if (p->s[p->pos] == ',') { p->pos++; continue; }
                if (p->s[p->pos] == close) { p->pos++; break; }
                return tf_fail(p->err, "JSON: expected ',' or '%c'", close);
            }
        }
    } else if (c == '"') {
        if ((at = tf_jnew(p, TF_JSTRING)) < 0 || tf_jstring(p, at) < 0) return -1;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        if ((at = tf_jnew(p, TF_JNUMBER)) < 0 || tf_jnumber(p, at) < 0) return -1;
    } else {
        static const struct { const char *word; tf_jtype type; } words[3] = {
            {"null", TF_JNULL}, {"false", TF_JFALSE}, {"true", TF_JTRUE}};
        int w;
        for (w = 0; w < 3; w++) {
            const size_t n = strlen(words[w].word);
            if (p->len - p->pos >= n && memcmp(p->s + p->pos, words[w].word, n) == 0) break;
        }
        if (w == 3) return tf_fail(p->err, "JSON: unexpected character 0x%02x", (unsigned)(unsigned char)c);
        if ((at = tf_jnew(p, words[w].type)) < 0) return -1;
        p->pos += strlen(words[w].word);
    }
    p->doc->node[at].end = p->doc->count;
    return 0;
}

/* Parses one JSON document (whitespace around it allowed, nothing else). */
TF_DEF int tf_json_parse(const char *s, size_t len, tf_json *doc, char *err)
{
    tf_jparser p;
    memset(doc, 0, sizeof *doc);
    doc->arena = (char *)malloc(len + 1);   /* decoded strings + their NULs fit in len + 1 */
    if (!doc->arena) return tf_fail(err, "out of memory reading JSON (%zu bytes)", len);
    p.s = s;
    p.len = len;
    p.pos = 0;
    p.doc = doc;
    p.err = err;
    if (tf_jvalue(&p, 0) < 0) { tf_json_free(doc); return -1; }
    tf_jskip_space(&p);
    if (p.pos != len) { tf_json_free(doc); return tf_fail(err, "JSON: trailing characters after the document"); }
    return 0;
}

/* the value node of member `name` of object node `obj`, or -1 */
TF_DEF long tf_json_member(const tf_json *doc, size_t obj, const char *name)
{
    size_t k = obj + 1, i;
    for (i = 0; i < doc->node[obj].count; i++) {
        const size_t value = k + 1;
        if (strlen(name) == doc->node[k].len && memcmp(doc->node[k].str, name, doc->node[k].len) == 0) return (long)value;
        k = doc->node[value].end;
    }
    return -1;
}

/* whether two members of object node `obj` share a name (small objects: pairwise) */
TF_DEF int tf_json_has_duplicate_member(const tf_json *doc, size_t obj)
{
    size_t a = obj + 1, i, j;
    if (doc->node[obj].count > 64) return 0;   /* only called on tensor entries (3-4 members) */
    for (i = 0; i < doc->node[obj].count; i++) {
        size_t b = doc->node[a + 1].end;
        for (j = i + 1; j < doc->node[obj].count; j++) {
            if (doc->node[a].len == doc->node[b].len && memcmp(doc->node[a].str, doc->node[b].str, doc->node[a].len) == 0) return 1;
            b = doc->node[b + 1].end;
        }
        a = doc->node[a + 1].end;
    }
    return 0;
}

/* ==================================================================================
   JSON writing: a growable string
   ================================================================================== */
typedef struct tf_buf {
    char *s;
    size_t len, cap;
    int oom;
} tf_buf;

TF_DEF void tf_buf_add(tf_buf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *t;
        while (cap < b->len + n + 1) cap *= 2;
        if (!(t = (char *)realloc(b->s, cap))) { b->oom = 1; return; }
        b->s = t;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

TF_DEF void tf_buf_str(tf_buf *b, const char *s) { tf_buf_add(b, s, strlen(s)); }

TF_DEF void tf_buf_printf(tf_buf *b, const char *fmt, ...)
{
    char tmp[128];
    int n;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) tf_buf_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* a JSON string literal (input is valid UTF-8 of the given length) */
TF_DEF void tf_buf_json_string(tf_buf *b, const char *s, size_t len)
{
    size_t i;
    tf_buf_add(b, "\"", 1);
    for (i = 0; i < len; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            const char esc[2] = {'\\', (char)c};
            tf_buf_add(b, esc, 2);
        } else if (c < 0x20) {
            tf_buf_printf(b, "\\u%04x", c);
        } else {
            tf_buf_add(b, s + i, 1);
        }
    }
    tf_buf_add(b, "\"", 1);
}

/* ==================================================================================
   safetensors: 8-byte little-endian header length N, N bytes of JSON, then the data
   ================================================================================== */
typedef struct tf_tensor {
    const char *name;         /* decoded, NUL-terminated (no NUL inside: checked)  */
    size_t name_len;
    tf_dtype dtype;
    int rank;
    uint64_t shape[TF_MAX_RANK];
    uint64_t numel, nbytes;
    uint64_t begin, end;      /* data_offsets, relative to the data section        */
} tf_tensor;

typedef struct tf_meta {      /* one "__metadata__" entry (string -> string)        */
    const char *key, *value;
    size_t key_len, value_len;
} tf_meta;

typedef struct tf_safetensors {
    const uint8_t *data;      /* the data section: data_len bytes                  */
    uint64_t data_len, header_len;
    size_t count, meta_count;
    tf_tensor *tensor;        /* in header order                                   */
    tf_meta *meta;
    tf_json doc;              /* owns the decoded names                            */
} tf_safetensors;

TF_DEF void tf_safetensors_free(tf_safetensors *st)
{
    free(st->tensor);
    free(st->meta);
    tf_json_free(&st->doc);
    memset(st, 0, sizeof *st);
}

/* formats the reason (it may name parts of st) and only then frees st */
TF_DEF int tf_st_bail(tf_safetensors *st, char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, TF_ERR_LEN, fmt, ap);
    va_end(ap);
    tf_safetensors_free(st);
    return -1;
}

TF_DEF uint64_t tf_le64(const uint8_t *p)
{
    uint64_t v = 0;
    int k;
    for (k = 7; k >= 0; k--) v = v << 8 | p[k];
    return v;
}

TF_DEF int tf_by_begin(const void *a, const void *b)
{
    const tf_tensor *x = *(const tf_tensor *const *)a, *y = *(const tf_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

TF_DEF int tf_by_name(const void *a, const void *b)
{
    const tf_tensor *x = *(const tf_tensor *const *)a, *y = *(const tf_tensor *const *)b;
    const size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    const int c = memcmp(x->name, y->name, n);
    return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* Parses a whole safetensors file held in buf[0..len). */
TF_DEF int tf_safetensors_parse(const uint8_t *buf, size_t len, tf_safetensors *st, char *err)
{
    tf_json *doc = &st->doc;
    tf_tensor **order = NULL;
    size_t k, i, tcount = 0, mcount = 0;
    memset(st, 0, sizeof *st);
    if (len < 8) return tf_fail(err, "truncated: %zu bytes, shorter than the 8-byte header length", len);
    st->header_len = tf_le64(buf);
    if (st->header_len > (uint64_t)(len - 8))
        return tf_fail(err, "header length %llu is larger than the file (%zu bytes)", (unsigned long long)st->header_len, len);
    if (st->header_len > TF_MAX_SAFETENSORS_HEADER)
        return tf_fail(err, "header length %llu exceeds the %u-byte limit", (unsigned long long)st->header_len, TF_MAX_SAFETENSORS_HEADER);
    if (st->header_len < 2) return tf_fail(err, "header of %llu bytes cannot hold a JSON object", (unsigned long long)st->header_len);
    st->data = buf + 8 + st->header_len;
    st->data_len = (uint64_t)len - 8 - st->header_len;
    if (tf_json_parse((const char *)buf + 8, (size_t)st->header_len, doc, err) < 0) {
        char inner[TF_ERR_LEN];
        memcpy(inner, err, TF_ERR_LEN);
        return tf_fail(err, "header: %s", inner);
    }
    if (doc->node[0].type != TF_JOBJECT) { return tf_st_bail(st, err, "header is not a JSON object"); }
    st->tensor = (tf_tensor *)calloc(doc->node[0].count + 1, sizeof *st->tensor);
    if (!st->tensor) { return tf_st_bail(st, err, "out of memory"); }
    for (k = 1, i = 0; i < doc->node[0].count; i++) {
        const tf_jnode *key = &doc->node[k];
        const size_t value = k + 1;
        k = doc->node[value].end;
        if (key->len == 12 && memcmp(key->str, "__metadata__", 12) == 0) {
            size_t q = value + 1, j;
            if (doc->node[value].type != TF_JOBJECT) { return tf_st_bail(st, err, "__metadata__ is not an object"); }
            if (st->meta) { return tf_st_bail(st, err, "__metadata__ appears twice"); }
            st->meta = (tf_meta *)calloc(doc->node[value].count + 1, sizeof *st->meta);
            if (!st->meta) { return tf_st_bail(st, err, "out of memory"); }
            for (j = 0; j < doc->node[value].count; j++) {
                if (doc->node[q + 1].type != TF_JSTRING) { return tf_st_bail(st, err, "__metadata__ value of \"%.60s\" is not a string", doc->node[q].str); }
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
            tf_tensor *t = &st->tensor[tcount];
            long dt, sh, off;
            size_t d;
            if (memchr(key->str, '\0', key->len) || key->len == 0) { return tf_st_bail(st, err, "a tensor name is empty or holds a NUL character"); }
            t->name = key->str;
            t->name_len = key->len;
            if (doc->node[value].type != TF_JOBJECT) { return tf_st_bail(st, err, "tensor \"%.60s\": entry is not an object", t->name); }
            if (tf_json_has_duplicate_member(doc, value)) return tf_st_bail(st, err, "tensor \"%.60s\": a field appears twice", t->name);
            dt = tf_json_member(doc, value, "dtype");
            sh = tf_json_member(doc, value, "shape");
            off = tf_json_member(doc, value, "data_offsets");
            if (dt < 0 || sh < 0 || off < 0) { return tf_st_bail(st, err, "tensor \"%.60s\": missing dtype, shape or data_offsets", t->name); }
            if (doc->node[dt].type != TF_JSTRING || !(t->dtype = tf_dtype_from_name(doc->node[dt].str, doc->node[dt].len))) {
                return tf_st_bail(st, err, "tensor \"%.60s\": unknown dtype%s%.20s", t->name, doc->node[dt].type == TF_JSTRING ? " " : "",
                               doc->node[dt].type == TF_JSTRING ? doc->node[dt].str : "");
            }
            if (doc->node[sh].type != TF_JARRAY || doc->node[sh].count > TF_MAX_RANK) { return tf_st_bail(st, err, "tensor \"%.60s\": shape is not an array of at most %d sizes", t->name, TF_MAX_RANK); }
            t->rank = (int)doc->node[sh].count;
            t->numel = 1;
            for (d = 0; d < doc->node[sh].count; d++) {
                const tf_jnode *dim = &doc->node[(size_t)sh + 1 + d];
                if (dim->type != TF_JNUMBER || !dim->is_uint) { return tf_st_bail(st, err, "tensor \"%.60s\": shape holds a value that is not a size", t->name); }
                t->shape[d] = dim->u;
                if (!tf_mul_size(t->numel, dim->u, &t->numel)) { return tf_st_bail(st, err, "tensor \"%.60s\": shape's element count overflows", t->name); }
            }
            if (!tf_mul_size(t->numel, tf_dtypes[t->dtype].size, &t->nbytes)) { return tf_st_bail(st, err, "tensor \"%.60s\": byte size overflows", t->name); }
            if (doc->node[off].type != TF_JARRAY || doc->node[off].count != 2 || doc->node[off + 1].type != TF_JNUMBER ||
                !doc->node[off + 1].is_uint || doc->node[off + 2].type != TF_JNUMBER || !doc->node[off + 2].is_uint) {
                return tf_st_bail(st, err, "tensor \"%.60s\": data_offsets is not a pair of offsets", t->name);
            }
            t->begin = doc->node[off + 1].u;
            t->end = doc->node[off + 2].u;
            if (t->begin > t->end || t->end > st->data_len) {
                return tf_st_bail(st, err, "tensor \"%.60s\": data_offsets [%llu, %llu] out of range (data section is %llu bytes)", t->name,
                               (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)st->data_len);
            }
            if (t->end - t->begin != t->nbytes) {
                return tf_st_bail(st, err, "tensor \"%.60s\": %llu bytes of data for %s shape of %llu elements (%llu bytes)", t->name,
                               (unsigned long long)(t->end - t->begin), tf_dtypes[t->dtype].name, (unsigned long long)t->numel, (unsigned long long)t->nbytes);
            }
            tcount++;
        }
    }
    st->count = tcount;
    st->meta_count = mcount;
    /* no two tensors may share a name or a byte */
    if (tcount > 1) {
        order = (tf_tensor **)malloc(tcount * sizeof *order);
        if (!order) { return tf_st_bail(st, err, "out of memory"); }
        for (i = 0; i < tcount; i++) order[i] = &st->tensor[i];
        qsort(order, tcount, sizeof *order, tf_by_name);
        for (i = 1; i < tcount; i++)
            if (tf_by_name(&order[i - 1], &order[i]) == 0) {
                const char *name = order[i]->name;
                free(order);
                tf_fail(err, "tensor \"%.60s\" appears twice", name);
                tf_safetensors_free(st);
                return -1;
            }
        qsort(order, tcount, sizeof *order, tf_by_begin);
        {   /* in begin order, each non-empty tensor must start at or after the end of every
               non-empty one before it (not only its neighbour: empty tensors sit anywhere) */
            const tf_tensor *reach = NULL;   /* the non-empty tensor that ends last so far */
            for (i = 0; i < tcount; i++) {
                if (!order[i]->nbytes) continue;
                if (reach && order[i]->begin < reach->end) {
                    char a[64], b[64];
                    snprintf(a, sizeof a, "%s", reach->name);
                    snprintf(b, sizeof b, "%s", order[i]->name);
                    free(order);
                    return tf_st_bail(st, err, "tensors \"%s\" and \"%s\" overlap in the data section", a, b);
                }
                if (!reach || order[i]->end > reach->end) reach = order[i];
            }
        }
        free(order);
    }
    return 0;
}

/* ==================================================================================
   model.safetensors.index.json: {"metadata": {...}, "weight_map": {"tensor": "shard"}}
   ================================================================================== */
struct tf_index_entry { const char *shard, *tensor; };

typedef struct tf_index {
    size_t count;             /* weight_map entries, in file order                */
    const char **tensor, **shard;
    struct tf_index_entry *by_shard;   /* weight_map sorted by (shard, tensor)    */
    size_t shard_count;       /* distinct shard file names, sorted                */
    const char **shard_name;
    size_t *shard_first;      /* shard s's entries: by_shard[shard_first[s] .. shard_first[s+1]) */
    long metadata;            /* node of "metadata", or -1                        */
    tf_json doc;
} tf_index;

TF_DEF void tf_index_free(tf_index *ix)
{
    free((void *)ix->tensor);
    free((void *)ix->shard);
    free((void *)ix->shard_name);
    free(ix->by_shard);
    free(ix->shard_first);
    tf_json_free(&ix->doc);
    memset(ix, 0, sizeof *ix);
}

TF_DEF int tf_index_bail(tf_index *ix, char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, TF_ERR_LEN, fmt, ap);
    va_end(ap);
    tf_index_free(ix);
    return -1;
}

/* a shard must be a plain file name in the checkpoint's directory */
TF_DEF int tf_shard_name_ok(const char *s, size_t len)
{
    if (len == 0 || memchr(s, '/', len) || memchr(s, '\\', len) || memchr(s, '\0', len)) return 0;
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')) return 0;
    return 1;
}

TF_DEF int tf_index_by_tensor(const void *a, const void *b)
{
    return strcmp(((const struct tf_index_entry *)a)->tensor, ((const struct tf_index_entry *)b)->tensor);
}

TF_DEF int tf_index_by_shard(const void *a, const void *b)
{
    const struct tf_index_entry *x = (const struct tf_index_entry *)a, *y = (const struct tf_index_entry *)b;
    const int c = strcmp(x->shard, y->shard);
    return c ? c : strcmp(x->tensor, y->tensor);
}

TF_DEF int tf_index_parse(const char *text, size_t len, tf_index *ix, char *err)
{
    tf_json *doc = &ix->doc;
    long map;
    size_t i, k;
    memset(ix, 0, sizeof *ix);
    ix->metadata = -1;
    if (tf_json_parse(text, len, doc, err) < 0) return -1;
    if (doc->node[0].type != TF_JOBJECT) { return tf_index_bail(ix, err, "index is not a JSON object"); }
    map = tf_json_member(doc, 0, "weight_map");
    if (map < 0 || doc->node[map].type != TF_JOBJECT) { return tf_index_bail(ix, err, "index has no \"weight_map\" object"); }
    ix->metadata = tf_json_member(doc, 0, "metadata");
    if (ix->metadata >= 0 && doc->node[ix->metadata].type != TF_JOBJECT) { return tf_index_bail(ix, err, "index \"metadata\" is not an object"); }
    ix->count = doc->node[map].count;
    ix->tensor = (const char **)calloc(ix->count + 1, sizeof *ix->tensor);
    ix->shard = (const char **)calloc(ix->count + 1, sizeof *ix->shard);
    ix->shard_name = (const char **)calloc(ix->count + 1, sizeof *ix->shard_name);
    ix->by_shard = (struct tf_index_entry *)calloc(ix->count + 1, sizeof *ix->by_shard);
    ix->shard_first = (size_t *)calloc(ix->count + 2, sizeof *ix->shard_first);
    if (!ix->tensor || !ix->shard || !ix->shard_name || !ix->by_shard || !ix->shard_first) { return tf_index_bail(ix, err, "out of memory"); }
    for (k = (size_t)map + 1, i = 0; i < ix->count; i++) {
        const tf_jnode *key = &doc->node[k], *val = &doc->node[k + 1];
        if (val->type != TF_JSTRING || !tf_shard_name_ok(val->str, val->len)) {
            return tf_index_bail(ix, err, "index: shard of \"%.60s\" is not a plain file name", key->str);
        }
        if (memchr(key->str, '\0', key->len)) { return tf_index_bail(ix, err, "index: a tensor name holds a NUL character"); }
        ix->tensor[i] = key->str;
        ix->shard[i] = val->str;
        ix->by_shard[i].shard = val->str;
        ix->by_shard[i].tensor = key->str;
        k = val->end;
    }
    if (ix->count == 0) { return tf_index_bail(ix, err, "index: weight_map is empty"); }
    /* sorted by tensor: a name twice is an error; then by shard: each shard's entries
       are one run (n log n: an index may name many thousands) */
    qsort(ix->by_shard, ix->count, sizeof *ix->by_shard, tf_index_by_tensor);
    for (i = 1; i < ix->count; i++)
        if (strcmp(ix->by_shard[i - 1].tensor, ix->by_shard[i].tensor) == 0)
            return tf_index_bail(ix, err, "index: tensor \"%.60s\" appears twice in weight_map", ix->by_shard[i].tensor);
    qsort(ix->by_shard, ix->count, sizeof *ix->by_shard, tf_index_by_shard);
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
typedef struct tf_npy {
    tf_dtype dtype;           /* TF_F32, TF_F16, TF_U8, ... (little-endian or single byte) */
    char descr[16];           /* as written, e.g. "<f4"                             */
    int fortran_order;
    int rank;
    uint64_t shape[TF_MAX_RANK];
    uint64_t numel, nbytes;
    size_t data_offset;       /* header size: where the data starts                 */
    int big_endian;           /* a multi-byte dtype stored big-endian (not supported for pruning) */
} tf_npy;

TF_DEF void tf_npy_skip_space(const char *s, size_t len, size_t *i)
{
    while (*i < len && (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\n')) (*i)++;
}

/* a Python string literal ('...' or "..."), no escapes (numpy never writes any here) */
TF_DEF int tf_npy_string(const char *s, size_t len, size_t *i, const char **out, size_t *out_len)
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

TF_DEF int tf_npy_parse(const uint8_t *buf, size_t len, tf_npy *a, char *err)
{
    const char *h;
    size_t hlen, pre, i = 0;
    int have_descr = 0, have_order = 0, have_shape = 0;
    memset(a, 0, sizeof *a);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) return tf_fail(err, "not a .npy file (no \\x93NUMPY magic)");
    if (buf[6] == 1) {
        pre = 10;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    } else if (buf[6] == 2 || buf[6] == 3) {
        if (len < 12) return tf_fail(err, "truncated .npy header");
        pre = 12;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    } else {
        return tf_fail(err, ".npy format version %u.%u is not supported", buf[6], buf[7]);
    }
    if (hlen > len - pre) return tf_fail(err, ".npy header length %zu is larger than the file", hlen);
    h = (const char *)buf + pre;
    a->data_offset = pre + hlen;
    if (!tf_utf8_valid(h, hlen)) return tf_fail(err, ".npy header is not valid text");
    tf_npy_skip_space(h, hlen, &i);
    if (i >= hlen || h[i++] != '{') return tf_fail(err, ".npy header is not a dict");
    for (;;) {
        const char *key;
        size_t key_len;
        tf_npy_skip_space(h, hlen, &i);
        if (i < hlen && h[i] == '}') { i++; break; }
        if (i >= hlen || !tf_npy_string(h, hlen, &i, &key, &key_len)) return tf_fail(err, ".npy header: expected a key");
        tf_npy_skip_space(h, hlen, &i);
        if (i >= hlen || h[i++] != ':') return tf_fail(err, ".npy header: expected ':'");
        tf_npy_skip_space(h, hlen, &i);
        if (key_len == 5 && memcmp(key, "descr", 5) == 0) {
            const char *d;
            size_t dl;
            if (have_descr++ || !tf_npy_string(h, hlen, &i, &d, &dl) || dl < 2 || dl >= sizeof a->descr)
                return tf_fail(err, ".npy header: bad descr");
            memcpy(a->descr, d, dl);
            a->descr[dl] = '\0';
        } else if (key_len == 13 && memcmp(key, "fortran_order", 13) == 0) {
            if (have_order++) return tf_fail(err, ".npy header: fortran_order twice");
            if (hlen - i >= 4 && memcmp(h + i, "True", 4) == 0) { a->fortran_order = 1; i += 4; }
            else if (hlen - i >= 5 && memcmp(h + i, "False", 5) == 0) { i += 5; }
            else return tf_fail(err, ".npy header: fortran_order is not True or False");
        } else if (key_len == 5 && memcmp(key, "shape", 5) == 0) {
            if (have_shape++ || i >= hlen || h[i++] != '(') return tf_fail(err, ".npy header: bad shape");
            a->numel = 1;
            for (;;) {
                uint64_t v = 0;
                int digits = 0;
                tf_npy_skip_space(h, hlen, &i);
                if (i < hlen && h[i] == ')') { i++; break; }
                while (i < hlen && h[i] >= '0' && h[i] <= '9') {
                    if (v > (UINT64_MAX - 9) / 10) return tf_fail(err, ".npy header: shape value too large");
                    v = v * 10 + (uint64_t)(h[i++] - '0');
                    digits++;
                }
                if (!digits) return tf_fail(err, ".npy header: bad shape");
                if (a->rank == TF_MAX_RANK) return tf_fail(err, ".npy header: more than %d dimensions", TF_MAX_RANK);
                a->shape[a->rank++] = v;
                if (!tf_mul_size(a->numel, v, &a->numel)) return tf_fail(err, ".npy header: element count overflows");
                tf_npy_skip_space(h, hlen, &i);
                if (i < hlen && h[i] == ',') { i++; continue; }
                if (i < hlen && h[i] == ')') { i++; break; }
                return tf_fail(err, ".npy header: bad shape");
            }
        } else {
            return tf_fail(err, ".npy header: unknown key");
        }
        tf_npy_skip_space(h, hlen, &i);
        if (i < hlen && h[i] == ',') { i++; continue; }
        if (i < hlen && h[i] == '}') { i++; break; }
        return tf_fail(err, ".npy header: expected ',' or '}'");
    }
    if (!have_descr || !have_order || !have_shape) return tf_fail(err, ".npy header lacks descr, fortran_order or shape");
    {   /* descr: byte order + kind + size */
        static const struct { const char *code; tf_dtype dtype; } kinds[] = {
            {"f2", TF_F16}, {"f4", TF_F32}, {"f8", TF_F64}, {"i1", TF_I8}, {"u1", TF_U8}, {"b1", TF_BOOL},
            {"i2", TF_I16}, {"u2", TF_U16}, {"i4", TF_I32}, {"u4", TF_U32}, {"i8", TF_I64}, {"u8", TF_U64}};
        const char order = a->descr[0];
        size_t q;
        if (order != '<' && order != '>' && order != '|' && order != '=')
            return tf_fail(err, ".npy dtype '%s' is not supported", a->descr);
        for (q = 0; q < sizeof kinds / sizeof kinds[0]; q++)
            if (strcmp(a->descr + 1, kinds[q].code) == 0) a->dtype = kinds[q].dtype;
        if (!a->dtype) return tf_fail(err, ".npy dtype '%s' is not supported", a->descr);
        a->big_endian = order == '>' && tf_dtypes[a->dtype].size > 1;
    }
    if (!tf_mul_size(a->numel, tf_dtypes[a->dtype].size, &a->nbytes)) return tf_fail(err, ".npy byte size overflows");
    if (a->nbytes != (uint64_t)(len - a->data_offset))
        return tf_fail(err, ".npy holds %llu bytes of data for a shape of %llu bytes", (unsigned long long)(len - a->data_offset),
                       (unsigned long long)a->nbytes);
    return 0;
}

/* A version-1.0 .npy header for an array of descr/shape, padded with spaces and a
   newline so the data starts 64-byte aligned (what numpy writes). */
TF_DEF int tf_npy_header(tf_buf *b, const char *descr, int fortran_order, const uint64_t *shape, int rank)
{
    tf_buf dict = {NULL, 0, 0, 0};
    int d;
    size_t total, pad;
    tf_buf_printf(&dict, "{'descr': '%s', 'fortran_order': %s, 'shape': (", descr, fortran_order ? "True" : "False");
    for (d = 0; d < rank; d++) tf_buf_printf(&dict, "%llu%s", (unsigned long long)shape[d], rank == 1 || d < rank - 1 ? ", " : "");
    tf_buf_str(&dict, "), }");
    if (dict.oom) { free(dict.s); return -1; }
    total = 10 + dict.len + 1;
    pad = (64 - total % 64) % 64;
    if (dict.len + pad + 1 > 65535) { free(dict.s); return -1; }
    {
        const size_t hl = dict.len + pad + 1;
        const char pre[10] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0, (char)(hl & 0xFF), (char)(hl >> 8)};
        tf_buf_add(b, pre, 10);
    }
    tf_buf_add(b, dict.s, dict.len);
    while (pad--) tf_buf_add(b, " ", 1);
    tf_buf_add(b, "\n", 1);
    free(dict.s);
    return b->oom ? -1 : 0;
}

#endif /* TSENOR_FILES_H */
