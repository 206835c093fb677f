/* json.h - the JSON of the tsenor command line: a reader into a flat DOM (the headers
   of safetensors files, model.safetensors.index.json) and a growable string to write
   JSON back.

   The reader trusts nothing: strings must be valid UTF-8 (escapes decoded, surrogates
   paired), nesting and the number of values are bounded, and a failure gives -1 with
   a one-line reason in `err` (JSON_ERR_LEN bytes), never a crash or an out-of-bounds
   read. Nodes point into an arena the document owns (numbers into the text, which must
   outlive them).

   Used by cli/tensorfile.h and cli/tsenor_cli.c; all functions are static. C99, no
   dependencies beyond the C library. */
#ifndef TSENOR_JSON_H
#define TSENOR_JSON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define JSON_DEF static __attribute__((unused))   /* each includer uses some of them */
#else
#define JSON_DEF static
#endif

#define JSON_ERR_LEN 256
#define JSON_MAX_DEPTH 64
#define JSON_MAX_NODES (1u << 22)   /* ~10 per tensor: 400 000 tensors; bounds memory at ~200 MB */

JSON_DEF int json_fail(char *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, JSON_ERR_LEN, fmt, ap);
    va_end(ap);
    return -1;
}

/* ==================================================================================
   UTF-8 and a small JSON reader (a DOM of nodes in document order)
   ================================================================================== */

/* Length of the valid UTF-8 sequence at s (1-4), 0 when invalid (overlong forms,
   surrogates and code points above U+10FFFF are invalid). */
JSON_DEF int json_utf8_sequence(const unsigned char *s, size_t left)
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

JSON_DEF int json_utf8_valid(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        const int k = json_utf8_sequence((const unsigned char *)s + i, len - i);
        if (!k) return 0;
        i += (size_t)k;
    }
    return 1;
}

typedef enum json_type { JSON_NULL, JSON_FALSE, JSON_TRUE, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_node {
    json_type type;
    size_t end;          /* index one past this node's last descendant: the next sibling */
    size_t count;        /* array: elements; object: members (each a key node + a value)  */
    const char *str;     /* string: decoded UTF-8 (in the arena, NUL-terminated); number: raw text */
    size_t len;
    uint64_t u;          /* number: the value when it is a non-negative integer...       */
    int is_uint;         /* ...that fits 64 bits                                         */
} json_node;

typedef struct json_doc {
    json_node *node;
    size_t count, cap;
    char *arena;         /* decoded strings; never longer than the text they came from */
    size_t arena_used;
} json_doc;

typedef struct json_parser {
    const char *s;
    size_t len, pos;
    json_doc *doc;
    char *err;
} json_parser;

JSON_DEF void json_free(json_doc *doc)
{
    free(doc->node);
    free(doc->arena);
    memset(doc, 0, sizeof *doc);
}

JSON_DEF void json_skip_space(json_parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

JSON_DEF long json_new_node(json_parser *p, json_type type)
{
    json_doc *d = p->doc;
    if (d->count == JSON_MAX_NODES) return json_fail(p->err, "JSON: more than %u values", JSON_MAX_NODES);
    if (d->count == d->cap) {
        const size_t cap = d->cap ? d->cap * 2 : 64;
        json_node *n = (json_node *)realloc(d->node, cap * sizeof *n);
        if (!n) return json_fail(p->err, "out of memory reading JSON");
        d->node = n;
        d->cap = cap;
    }
    memset(&d->node[d->count], 0, sizeof d->node[0]);
    d->node[d->count].type = type;
    return (long)d->count++;
}

JSON_DEF int json_hex4(json_parser *p, unsigned *out)
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

JSON_DEF size_t json_utf8_encode(unsigned cp, char *out)
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
JSON_DEF int json_read_string(json_parser *p, long at)
{
    json_doc *d = p->doc;
    char *out = d->arena + d->arena_used;
    size_t n = 0;
    p->pos++;
    for (;;) {
        unsigned char c;
        if (p->pos >= p->len) return json_fail(p->err, "JSON: unterminated string");
        c = (unsigned char)p->s[p->pos];
        if (c == '"') { p->pos++; break; }
        if (c < 0x20) return json_fail(p->err, "JSON: control character in a string");
        if (c == '\\') {
            char e;
            unsigned cp;
            if (++p->pos >= p->len) return json_fail(p->err, "JSON: unterminated string");
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
                if (!json_hex4(p, &cp)) return json_fail(p->err, "JSON: bad \\u escape");
                if (cp >= 0xDC00 && cp <= 0xDFFF) return json_fail(p->err, "JSON: lone low surrogate in a string");
                if (cp >= 0xD800 && cp <= 0xDBFF) {   /* a surrogate pair: \uD8xx\uDCxx */
                    unsigned lo;
                    if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                        return json_fail(p->err, "JSON: lone high surrogate in a string");
                    p->pos += 2;
                    if (!json_hex4(p, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                        return json_fail(p->err, "JSON: bad surrogate pair in a string");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                n += json_utf8_encode(cp, out + n);   /* at most as long as the escape */
                break;
            default: return json_fail(p->err, "JSON: bad escape \\%c", e);
            }
        } else {
            const int k = json_utf8_sequence((const unsigned char *)p->s + p->pos, p->len - p->pos);
            if (!k) return json_fail(p->err, "JSON: string is not valid UTF-8");
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

JSON_DEF int json_read_number(json_parser *p, long at)
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
    if (!digits) return json_fail(p->err, "JSON: bad number");
    if (p->pos < p->len && p->s[p->pos] == '.') {
        integer = 0;
        p->pos++;
        if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9') return json_fail(p->err, "JSON: bad number");
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        integer = 0;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
        if (p->pos >= p->len || p->s[p->pos] < '0' || p->s[p->pos] > '9') return json_fail(p->err, "JSON: bad number");
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    }
    p->doc->node[at].str = p->s + start;
    p->doc->node[at].len = p->pos - start;
    p->doc->node[at].u = u;
    p->doc->node[at].is_uint = integer && !overflow;
    return 0;
}

JSON_DEF int json_read_value(json_parser *p, int depth)
{
    long at;
    char c;
    json_skip_space(p);
    if (p->pos >= p->len) return json_fail(p->err, "JSON: unexpected end");
    if (depth > JSON_MAX_DEPTH) return json_fail(p->err, "JSON: nested deeper than %d", JSON_MAX_DEPTH);
    c = p->s[p->pos];
    if (c == '{' || c == '[') {
        const int object = c == '{';
        const char close = object ? '}' : ']';
        if ((at = json_new_node(p, object ? JSON_OBJECT : JSON_ARRAY)) < 0) return -1;
        p->pos++;
        json_skip_space(p);
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
        } else {
            for (;;) {
                if (object) {
                    long key;
                    json_skip_space(p);
                    if (p->pos >= p->len || p->s[p->pos] != '"') return json_fail(p->err, "JSON: expected a member name");
                    if ((key = json_new_node(p, JSON_STRING)) < 0 || json_read_string(p, key) < 0) return -1;
                    p->doc->node[key].end = (size_t)key + 1;
                    json_skip_space(p);
                    if (p->pos >= p->len || p->s[p->pos] != ':') return json_fail(p->err, "JSON: expected ':'");
                    p->pos++;
                }
                if (json_read_value(p, depth + 1) < 0) return -1;
                p->doc->node[at].count++;
                json_skip_space(p);
                if (p->pos >= p->len) return json_fail(p->err, "JSON: unexpected end");
                if (p->s[p->pos] == ',') { p->pos++; continue; }
                if (p->s[p->pos] == close) { p->pos++; break; }
                return json_fail(p->err, "JSON: expected ',' or '%c'", close);
            }
        }
    } else if (c == '"') {
        if ((at = json_new_node(p, JSON_STRING)) < 0 || json_read_string(p, at) < 0) return -1;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        if ((at = json_new_node(p, JSON_NUMBER)) < 0 || json_read_number(p, at) < 0) return -1;
    } else {
        static const struct { const char *word; json_type type; } words[3] = {
            {"null", JSON_NULL}, {"false", JSON_FALSE}, {"true", JSON_TRUE}};
        int w;
        for (w = 0; w < 3; w++) {
            const size_t n = strlen(words[w].word);
            if (p->len - p->pos >= n && memcmp(p->s + p->pos, words[w].word, n) == 0) break;
        }
        if (w == 3) return json_fail(p->err, "JSON: unexpected character 0x%02x", (unsigned)(unsigned char)c);
        if ((at = json_new_node(p, words[w].type)) < 0) return -1;
        p->pos += strlen(words[w].word);
    }
    p->doc->node[at].end = p->doc->count;
    return 0;
}

/* Parses one JSON document (whitespace around it allowed, nothing else). */
JSON_DEF int json_parse(const char *s, size_t len, json_doc *doc, char *err)
{
    json_parser p;
    memset(doc, 0, sizeof *doc);
    doc->arena = (char *)malloc(len + 1);   /* decoded strings + their NULs fit in len + 1 */
    if (!doc->arena) return json_fail(err, "out of memory reading JSON (%zu bytes)", len);
    p.s = s;
    p.len = len;
    p.pos = 0;
    p.doc = doc;
    p.err = err;
    if (json_read_value(&p, 0) < 0) { json_free(doc); return -1; }
    json_skip_space(&p);
    if (p.pos != len) { json_free(doc); return json_fail(err, "JSON: trailing characters after the document"); }
    return 0;
}

/* the value node of member `name` of object node `obj`, or -1 */
JSON_DEF long json_member(const json_doc *doc, size_t obj, const char *name)
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
JSON_DEF int json_has_duplicate_member(const json_doc *doc, size_t obj)
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
typedef struct json_buf {
    char *s;
    size_t len, cap;
    int oom;
} json_buf;

JSON_DEF void json_buf_add(json_buf *b, const char *s, size_t n)
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

JSON_DEF void json_buf_str(json_buf *b, const char *s) { json_buf_add(b, s, strlen(s)); }

JSON_DEF void json_buf_printf(json_buf *b, const char *fmt, ...)
{
    char tmp[128];
    int n;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) json_buf_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* a JSON string literal (input is valid UTF-8 of the given length) */
JSON_DEF void json_buf_string(json_buf *b, const char *s, size_t len)
{
    size_t i;
    json_buf_add(b, "\"", 1);
    for (i = 0; i < len; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            const char esc[2] = {'\\', (char)c};
            json_buf_add(b, esc, 2);
        } else if (c < 0x20) {
            json_buf_printf(b, "\\u%04x", c);
        } else {
            json_buf_add(b, s + i, 1);
        }
    }
    json_buf_add(b, "\"", 1);
}

/* node k and its descendants as JSON text (compact: no spaces), numbers as written */
JSON_DEF void json_buf_node(json_buf *b, const json_doc *doc, size_t k)
{
    const json_node *n = &doc->node[k];
    size_t i, c;
    switch (n->type) {
    case JSON_NULL: json_buf_str(b, "null"); break;
    case JSON_FALSE: json_buf_str(b, "false"); break;
    case JSON_TRUE: json_buf_str(b, "true"); break;
    case JSON_NUMBER: json_buf_add(b, n->str, n->len); break;
    case JSON_STRING: json_buf_string(b, n->str, n->len); break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        json_buf_str(b, n->type == JSON_OBJECT ? "{" : "[");
        for (i = 0, c = k + 1; i < n->count; i++) {
            if (i) json_buf_str(b, ",");
            if (n->type == JSON_OBJECT) {
                json_buf_node(b, doc, c);
                json_buf_str(b, ":");
                c++;
            }
            json_buf_node(b, doc, c);
            c = doc->node[c].end;
        }
        json_buf_str(b, n->type == JSON_OBJECT ? "}" : "]");
        break;
    }
}

#endif /* TSENOR_JSON_H */
