/* tsenor - the command line: transposable N:M masks for real model checkpoints.

     tsenor prune IN -o OUT --nm N:M [--mask-method tsenor|exact|greedy|rowwise] [--masks]
                  [--method magnitude|wanda|sparsegpt|alps --gram GRAMS [--allow-missing-gram]
                   [--iterations K] [--damping F]]
                  [--include REGEX]... [--exclude REGEX]... [--no-default-excludes]
                  [--conv] [--threads K] [--gpu] [--force] [--quiet]
     tsenor check FILE [--nm N:M] [--include REGEX]... [--exclude REGEX]... [--conv]

   IN / FILE: a .safetensors file, a sharded checkpoint directory (with
   model.safetensors.index.json), or a .npy array. `tsenor --help` has the details.

   How it stays safe: the input is memory-mapped read-only and never written; every
   output file is written under a temporary name in the target directory, fsynced and
   renamed into place only when everything succeeded (a sharded checkpoint goes to a
   temporary directory renamed as a whole), and a signal removes the temporary files.
   Memory is bounded by the largest tensor (with --gram, plus its gram and the pruning's
   work arrays): tensors are solved and written one at a time, and the grams file is
   memory-mapped too, each gram's pages dropped after its layer.

   Exit status: 0 success, 1 a check failed or nothing to prune, 2 bad usage or bad input
   (one line on stderr). */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE   /* madvise (glibc) */
#define TSENOR_IMPLEMENTATION
#include "../tsenor.h"
#ifdef TSENOR_CUDA
#include "../tsenor_cuda.h"
#endif
#include "tensorfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <regex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

#define CLI_MAX_PATTERNS 64
#define CLI_WRITE_CHUNK (1u << 20)

/* ==================================================================================
   options
   ================================================================================== */
typedef struct cli_options {
    const char *command, *in, *out;
    int n, m;
    tsenor_method method;         /* the mask solver                                     */
    tsenor_prune_method prune;    /* --method magnitude|wanda|sparsegpt|alps; DEFAULT (0):
                                     none given, today's mask-only path                   */
    const char *gram;             /* --gram GRAMS                                        */
    int allow_missing_gram, iterations;
    float damping;
    int masks, conv, gpu, force, quiet, threads, default_excludes;
    regex_t include[CLI_MAX_PATTERNS], exclude[CLI_MAX_PATTERNS];
    int n_include, n_exclude;
} cli_options;

/* What usually stays dense, matched case-insensitively against tensor names: these
   tensors are copied unless an --include pattern names them (--no-default-excludes
   drops the list). Each with the reason it is kept dense. */
static const struct { const char *pattern, *why; } default_excludes[] = {
    {"embed|(^|[._])(wte|wpe|shared)([._]|$)", "embeddings (a lookup, not a matrix product)"},
    {"position|token_type", "position / token-type tables"},
    {"lm_head|(^|[._])(output|classifier|score)\\.weight$", "output heads (sensitive, small)"},
    {"norm|(^|[._])ln_?[0-9a-z]*([._]|$)", "normalisation weights"},
    {"bias$", "biases"},
};
#define N_DEFAULT_EXCLUDES ((int)(sizeof default_excludes / sizeof default_excludes[0]))
static regex_t default_exclude_re[N_DEFAULT_EXCLUDES];
static int n_default_compiled;

static void usage(FILE *f)
{
    int k;
    fprintf(f,
            "usage: tsenor prune IN -o OUT --nm N:M [options]\n"
            "       tsenor check FILE [--nm N:M] [--include R]... [--exclude R]... [--conv]\n"
            "\n"
            "Finds transposable N:M masks (N of every M weights kept along rows and columns of\n"
            "every M x M block) for the weight matrices of a checkpoint.\n"
            "\n"
            "IN, OUT, FILE: a .safetensors file, a sharded checkpoint directory (with\n"
            "model.safetensors.index.json; OUT is then a directory with the same shards and\n"
            "a rewritten index), or a .npy array.\n"
            "\n"
            "prune options:\n"
            "  --nm N:M              the pattern, e.g. 2:4, 8:16, 16:32 (1 <= N < M <= %d)\n"
            "  --mask-method NAME    the mask solver: tsenor (default), exact, greedy, or rowwise\n"
            "                        (standard N:M along rows, not transposable)\n"
            "  --method NAME         magnitude, wanda, sparsegpt or alps: prune with calibration\n"
            "                        data (GRAMS); without it, masks of |w| with kept weights\n"
            "                        unchanged. A mask solver's name here is --mask-method NAME\n"
            "  --gram GRAMS          a .safetensors file holding, for each weight to prune, the\n"
            "                        F32 gram H = X^T X of its inputs X (tokens x cols), cols x\n"
            "                        cols, under the weight's own name (the gram of the weight\n"
            "                        layer.0.fc.weight is GRAMS's tensor layer.0.fc.weight); for\n"
            "                        a .npy IN, a .npy F32 array. Needed by wanda, sparsegpt and\n"
            "                        alps; with magnitude it adds the errors to the table\n"
            "  --allow-missing-gram  prune weights without a gram by magnitude (named in the table)\n"
            "                        instead of refusing the run\n"
            "  --iterations K        ADMM iterations at most (alps; default %d)\n"
            "  --damping F           added to the gram's diagonal, relative to its mean (default %g)\n"
            "  --masks               write U8 0/1 masks instead of pruned weights\n"
            "  --include REGEX       prune only tensors whose name matches (repeatable)\n"
            "  --exclude REGEX       never prune tensors whose name matches (repeatable)\n"
            "  --no-default-excludes do not keep the usual dense tensors (below) dense\n"
            "  --conv                prune rank-4 weights (out, in, kh, kw) as (out, in*kh*kw)\n"
            "  --threads K           CPU threads (default: all)\n"
            "  --gpu                 solve (and prune) on the GPU (build/tsenor_gpu, from `make cuda`)\n"
            "  --force               replace an existing OUT\n"
            "  --quiet               no progress bar and no table\n"
            "\n"
            "Pruned: F32, F16 and BF16 tensors of rank 2 whose dimensions are multiples of M,\n"
            "selected by the patterns; everything else is copied byte for byte. Kept dense by\n"
            "default (POSIX extended regexes, case-insensitive; an --include match overrides):\n",
            TSENOR_MAX_M, _TSENOR_PRUNE_DEFAULT_ITERATIONS, (double)_TSENOR_PRUNE_DEFAULT_DAMPING);
    for (k = 0; k < N_DEFAULT_EXCLUDES; k++) fprintf(f, "  %-44s %s\n", default_excludes[k].pattern, default_excludes[k].why);
    fprintf(f,
            "\n"
            "A run that would prune no tensor writes nothing and exits 1, with the reasons.\n"
            "\n"
            "With --method, each pruned weight is read as F32, pruned by tsenor_prune_f32 and\n"
            "written back in its own dtype (F16/BF16 rounded to nearest even); the table gives\n"
            "each layer's relative error tr(D H D^T) / tr(W H W^T), D = W - W^, before that\n"
            "rounding. A pruned weight without a gram stops the run before anything is\n"
            "written (exit 2, naming it) unless --allow-missing-gram.\n"
            "\n"
            "check: exit 0 when every tensor prune would select (and every U8 mask of such a\n"
            "name) keeps at most N nonzeros in every row and column of every M x M block\n"
            "(also when no tensor is selected: it says so). Without --nm the pattern is the\n"
            "file's tsenor.pattern metadata, which prune writes (.npy arrays have none).\n"
            ".npy arrays may be C or Fortran order.\n"
            "Exit status: 0 success, 1 a check failed or nothing to prune, 2 bad usage or bad input.\n");
}

/* one line on stderr, control characters of names shown as '?' */
static void cli_error(const char *fmt, ...)
{
    char line[1024];
    size_t i;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    for (i = 0; line[i]; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7F) line[i] = '?';
    fprintf(stderr, "tsenor: error: %s\n", line);
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

/* "N:M": two unsigned decimal numbers and a colon, nothing else (no signs, spaces or
   trailing characters). 0 when it is not that form, -1 when the numbers are out of
   range (1 <= N < M <= TSENOR_MAX_M), 1 with *n, *m set. */
static int parse_pattern(const char *s, int *n, int *m)
{
    long v[2] = {0, 0};
    int k, in_range = 1;
    for (k = 0; k < 2; k++) {
        const char *start = s;
        for (; *s >= '0' && *s <= '9'; s++) {
            if (v[k] > TSENOR_MAX_M) in_range = 0;   /* stops growing: no overflow */
            else v[k] = v[k] * 10 + (*s - '0');
        }
        if (s == start || *s != (k == 0 ? ':' : '\0')) return 0;
        s++;
    }
    if (!in_range || v[0] < 1 || v[0] >= v[1] || v[1] > TSENOR_MAX_M) return -1;
    *n = (int)v[0];
    *m = (int)v[1];
    return 1;
}

static int add_pattern(regex_t *list, int *count, const char *pattern, const char *flag)
{
    int rc;
    if (*count == CLI_MAX_PATTERNS) { cli_error("%s: at most %d patterns", flag, CLI_MAX_PATTERNS); return 0; }
    rc = regcomp(&list[*count], pattern, REG_EXTENDED | REG_NOSUB);
    if (rc) {
        char msg[160];
        regerror(rc, &list[*count], msg, sizeof msg);
        cli_error("%s '%s': %s", flag, pattern, msg);
        return 0;
    }
    (*count)++;
    return 1;
}

static int parse_args(int argc, char **argv, cli_options *o)
{
    int i;
    memset(o, 0, sizeof *o);
    o->method = TSENOR_METHOD_TSENOR;
    o->default_excludes = 1;
    if (argc < 2) { usage(stderr); return 2; }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) { usage(stdout); return 0; }
    if (!strcmp(argv[1], "--version")) {
        printf("tsenor %d.%d.%d\n", TSENOR_VERSION_MAJOR, TSENOR_VERSION_MINOR, TSENOR_VERSION_PATCH);
        return 0;
    }
    o->command = argv[1];
    if (strcmp(o->command, "prune") && strcmp(o->command, "check")) {
        cli_error("unknown command '%s' (prune or check; --help for usage)", o->command);
        return 2;
    }
    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        const int has_value = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        if (!strcmp(a, "-o") || !strcmp(a, "--nm") || !strcmp(a, "--method") || !strcmp(a, "--mask-method") ||
            !strcmp(a, "--include") || !strcmp(a, "--exclude") || !strcmp(a, "--threads") || !strcmp(a, "--gram") ||
            !strcmp(a, "--iterations") || !strcmp(a, "--damping")) {
            const char *v;
            if (!has_value) { cli_error("%s needs a value", a); return 2; }
            v = argv[++i];
            if (!strcmp(a, "-o")) {
                o->out = v;
            } else if (!strcmp(a, "--nm")) {
                const int parsed = parse_pattern(v, &o->n, &o->m);
                if (parsed == 0) { cli_error("--nm '%s': expected N:M, e.g. 8:16", v); return 2; }
                if (parsed < 0) { cli_error("--nm '%s': expected N:M with 1 <= N < M <= %d", v, TSENOR_MAX_M); return 2; }
            } else if (!strcmp(a, "--method") || !strcmp(a, "--mask-method")) {
                /* the names do not overlap, so --method also takes a mask solver's: what it
                   meant before pruning with calibration data existed */
                static const tsenor_method methods[] = {TSENOR_METHOD_TSENOR, TSENOR_METHOD_EXACT, TSENOR_METHOD_GREEDY,
                                                        TSENOR_METHOD_ROWWISE};
                static const tsenor_prune_method prunes[] = {TSENOR_PRUNE_MAGNITUDE, TSENOR_PRUNE_WANDA,
                                                             TSENOR_PRUNE_SPARSEGPT, TSENOR_PRUNE_ALPS};
                size_t k, p;
                for (k = 0; k < 4 && strcmp(v, tsenor_method_string(methods[k])); k++) {}
                for (p = 0; p < 4 && strcmp(v, tsenor_prune_method_string(prunes[p])); p++) {}
                if (k < 4) o->method = methods[k];
                else if (p < 4 && !strcmp(a, "--method")) o->prune = prunes[p];
                else if (!strcmp(a, "--method")) {
                    cli_error("--method '%s': magnitude, wanda, sparsegpt or alps (or a mask solver: tsenor, exact, greedy, rowwise)", v);
                    return 2;
                } else {
                    cli_error("--mask-method '%s': tsenor, exact, greedy or rowwise", v);
                    return 2;
                }
            } else if (!strcmp(a, "--gram")) {
                o->gram = v;
            } else if (!strcmp(a, "--iterations")) {
                if (!parse_int(v, 1, 1000000, &o->iterations)) { cli_error("--iterations '%s': a count from 1 to 1000000", v); return 2; }
            } else if (!strcmp(a, "--damping")) {
                char *end;
                double d;
                errno = 0;
                d = strtod(v, &end);
                /* 0 would mean the default to the library: only positive values are a choice */
                if (errno || end == v || *end || !(d > 0.0) || d > 1e6) { cli_error("--damping '%s': a number above 0 (and at most 1e6)", v); return 2; }
                o->damping = (float)d;
            } else if (!strcmp(a, "--include")) {
                if (!add_pattern(o->include, &o->n_include, v, a)) return 2;
            } else if (!strcmp(a, "--exclude")) {
                if (!add_pattern(o->exclude, &o->n_exclude, v, a)) return 2;
            } else if (!parse_int(v, 1, 4096, &o->threads)) {
                cli_error("--threads '%s': a count from 1 to 4096", v);
                return 2;
            }
        } else if (!strcmp(a, "--masks")) o->masks = 1;
        else if (!strcmp(a, "--allow-missing-gram")) o->allow_missing_gram = 1;
        else if (!strcmp(a, "--conv")) o->conv = 1;
        else if (!strcmp(a, "--gpu")) o->gpu = 1;
        else if (!strcmp(a, "--force")) o->force = 1;
        else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) o->quiet = 1;
        else if (!strcmp(a, "--no-default-excludes")) o->default_excludes = 0;
        else if (a[0] == '-' && a[1]) { cli_error("unknown option '%s' (--help for usage)", a); return 2; }
        else if (!o->in) o->in = a;
        else { cli_error("unexpected argument '%s'", a); return 2; }
    }
    if (!o->in) { cli_error("%s: no input given", o->command); return 2; }
    if (!o->n && strcmp(o->command, "check")) { cli_error("--nm N:M is required"); return 2; }   /* check reads it from the file */
    if (!strcmp(o->command, "prune") && !o->out) { cli_error("prune: -o OUT is required"); return 2; }
    if (o->out) {   /* "out/" names the directory "out" */
        static char out[PATH_MAX];
        size_t n = strlen(o->out);
        if (n >= PATH_MAX) { cli_error("-o: path too long"); return 2; }
        memcpy(out, o->out, n + 1);
        while (n > 1 && out[n - 1] == '/') out[--n] = '\0';
        o->out = out;
    }
    if (!strcmp(o->command, "check") && (o->out || o->masks || o->gpu || o->force || o->prune || o->gram ||
                                         o->allow_missing_gram || o->iterations || o->damping > 0.0f)) {
        cli_error("check takes FILE [--nm N:M] and the selection options only");
        return 2;
    }
    if (o->prune && o->prune != TSENOR_PRUNE_MAGNITUDE && !o->gram) {
        cli_error("--method %s needs --gram GRAMS (a gram H = X^T X of each pruned weight's inputs)", tsenor_prune_method_string(o->prune));
        return 2;
    }
    if (o->gram && !o->prune) { cli_error("--gram: give --method magnitude, wanda, sparsegpt or alps too"); return 2; }
    if (o->allow_missing_gram && !o->gram) { cli_error("--allow-missing-gram applies with --gram only"); return 2; }
    if (o->damping > 0.0f && !o->gram) { cli_error("--damping applies with --gram only"); return 2; }
    if (o->iterations && o->prune != TSENOR_PRUNE_ALPS) { cli_error("--iterations applies to --method alps only"); return 2; }
#ifndef TSENOR_CUDA
    if (o->gpu) { cli_error("--gpu: this tsenor has no CUDA backend (build/tsenor_gpu from `make cuda` has)"); return 2; }
#endif
    for (i = 0; i < N_DEFAULT_EXCLUDES; i++) {
        if (regcomp(&default_exclude_re[i], default_excludes[i].pattern, REG_EXTENDED | REG_NOSUB | REG_ICASE)) {
            cli_error("internal: default pattern %d does not compile", i);
            return 2;
        }
        n_default_compiled = i + 1;
    }
    return -1;   /* go on */
}

/* ==================================================================================
   selection: which tensors are pruned (and checked)
   ================================================================================== */
typedef enum dense_reason {   /* why a tensor is not pruned, in the order they are tested */
    DENSE_NONE = 0,           /* it is pruned                                        */
    DENSE_DTYPE, DENSE_RANK, DENSE_NAME, DENSE_SHAPE,
    DENSE_REASON_COUNT
} dense_reason;

typedef struct selection {
    int prune;              /* 1: prune as a rows x cols matrix                    */
    uint64_t rows, cols;
    dense_reason reason;
    char why[96];           /* when not pruned: the reason shown in the table       */
} selection;

static int name_matches(const regex_t *list, int count, const char *name)
{
    int k;
    for (k = 0; k < count; k++)
        if (regexec(&list[k], name, 0, NULL, 0) == 0) return 1;
    return 0;
}

/* named: whether patterns apply (.npy arrays have no tensor names). masks_too: U8
   tensors are selected as well (check reads the files that --masks writes). */
static selection select_tensor(const cli_options *o, const char *name, int named, tensorfile_dtype dtype, int rank,
                               const uint64_t *shape, int masks_too)
{
    selection s;
    int d;
    memset(&s, 0, sizeof s);
    if (!tensorfile_dtype_is_prunable(dtype) && !(masks_too && dtype == TENSORFILE_U8)) {
        s.reason = DENSE_DTYPE;
        snprintf(s.why, sizeof s.why, "dense: dtype %s", tensorfile_dtypes[dtype].name);
        return s;
    }
    if (rank == 2) {
        s.rows = shape[0];
        s.cols = shape[1];
    } else if (rank == 4 && o->conv) {
        s.rows = shape[0];
        s.cols = shape[1] * shape[2] * shape[3];   /* fits: the tensor's byte size was checked */
    } else {
        s.reason = DENSE_RANK;
        snprintf(s.why, sizeof s.why, rank == 4 ? "dense: rank 4 (--conv prunes it)" : "dense: rank %d", rank);
        return s;
    }
    if (named) {
        const int included = o->n_include && name_matches(o->include, o->n_include, name);
        s.reason = DENSE_NAME;
        if (o->n_include && !included) { snprintf(s.why, sizeof s.why, "dense: not matched by --include"); return s; }
        if (name_matches(o->exclude, o->n_exclude, name)) { snprintf(s.why, sizeof s.why, "dense: --exclude"); return s; }
        if (!included && o->default_excludes)
            for (d = 0; d < N_DEFAULT_EXCLUDES; d++)
                if (regexec(&default_exclude_re[d], name, 0, NULL, 0) == 0) {
                    snprintf(s.why, sizeof s.why, "dense: default exclude (%s)", default_excludes[d].why);
                    return s;
                }
        s.reason = DENSE_NONE;
    }
    if (s.rows == 0 || s.cols == 0 || s.rows % (uint64_t)o->m || s.cols % (uint64_t)o->m) {
        s.reason = DENSE_SHAPE;
        snprintf(s.why, sizeof s.why, "dense: %llux%llu not a multiple of %d", (unsigned long long)s.rows,
                 (unsigned long long)s.cols, o->m);
        return s;
    }
    s.prune = 1;
    return s;
}

/* what a run would prune, and why the rest stays dense */
typedef struct selection_tally {
    size_t tensors, pruned;
    size_t dense[DENSE_REASON_COUNT];
    size_t rank4;             /* rank-4 tensors left dense for want of --conv        */
} selection_tally;

static void tally_selection(const cli_options *o, const tensorfile_safetensors *st, selection_tally *tally)
{
    size_t i;
    for (i = 0; i < st->count; i++) {
        const tensorfile_tensor *t = &st->tensor[i];
        const selection sel = select_tensor(o, t->name, 1, t->dtype, t->rank, t->shape, 0);
        tally->tensors++;
        tally->pruned += (size_t)sel.prune;
        tally->dense[sel.reason]++;
        tally->rank4 += sel.reason == DENSE_RANK && t->rank == 4;
    }
}

/* A run that would prune nothing says why, in one line: the count of each reason. */
static void report_nothing_to_prune(const char *in, const cli_options *o, const selection_tally *tally)
{
    static const dense_reason order[4] = {DENSE_SHAPE, DENSE_NAME, DENSE_DTYPE, DENSE_RANK};
    char why[512];
    size_t len = 0;
    int k;
    if (tally->tensors == 0) { cli_error("%s: nothing to prune: it holds no tensors", in); return; }
    why[0] = '\0';
    for (k = 0; k < 4 && len < sizeof why; k++) {
        const size_t count = tally->dense[order[k]];
        char part[128];
        if (!count) continue;
        if (order[k] == DENSE_SHAPE) snprintf(part, sizeof part, "with dimensions not multiples of %d", o->m);
        else if (order[k] == DENSE_NAME) snprintf(part, sizeof part, "excluded by name");
        else if (order[k] == DENSE_DTYPE) snprintf(part, sizeof part, "of a dtype other than F32/F16/BF16");
        else if (o->conv) snprintf(part, sizeof part, "not of rank 2 or 4");
        else if (tally->rank4) snprintf(part, sizeof part, "not of rank 2 (%zu of rank 4: --conv prunes those)", tally->rank4);
        else snprintf(part, sizeof part, "not of rank 2");
        len += (size_t)snprintf(why + len, sizeof why - len, "%s%zu %s", len ? "; " : "", count, part);
    }
    cli_error("%s: nothing to prune at %d:%d, none of its %zu tensors is selected: %s", in, o->n, o->m, tally->tensors, why);
}

/* ==================================================================================
   files: read-only maps, and outputs that appear whole or not at all
   ================================================================================== */
typedef struct mapped_file {
    const uint8_t *data;
    size_t len;
} mapped_file;

static int map_file(const char *path, mapped_file *f)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_NONBLOCK);   /* a FIFO would block in open() */
    memset(f, 0, sizeof *f);
    if (fd < 0) { cli_error("%s: %s", path, strerror(errno)); return 0; }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        cli_error("%s: not a regular file", path);
        close(fd);
        return 0;
    }
    f->len = (size_t)sb.st_size;
    if (f->len) {
        void *p = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) { cli_error("%s: cannot map: %s", path, strerror(errno)); close(fd); return 0; }
        f->data = (const uint8_t *)p;
    }
    close(fd);
    return 1;
}

/* Drops the pages of [p, p + n) that the process holds (they are re-read from the
   file if touched again): what keeps memory bounded by one tensor, not the file. */
static void release_pages(const mapped_file *f, const uint8_t *p, uint64_t n)
{
#ifdef MADV_DONTNEED
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)p & ~(page - 1), hi = ((uintptr_t)(p + n) + page - 1) & ~(page - 1);
    const uintptr_t start = (uintptr_t)f->data, end = start + f->len;
    if (!f->data || page == 0 || (page & (page - 1))) return;
    if (lo < start) lo = start;
    if (hi > ((end + page - 1) & ~(page - 1))) hi = (end + page - 1) & ~(page - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
#else
    (void)f; (void)p; (void)n;
#endif
}

static void unmap_file(mapped_file *f)
{
    if (f->data) munmap((void *)f->data, f->len);
    memset(f, 0, sizeof *f);
}

/* Temporary paths a signal must remove (files first, then the directory). Written
   before they exist, counted after: the handler sees only complete strings. */
#define CLI_MAX_TEMP 4096
static char temp_path[CLI_MAX_TEMP][PATH_MAX];
static volatile sig_atomic_t temp_count;
static char temp_dir[PATH_MAX];
static volatile sig_atomic_t temp_dir_set;

static void remove_temporaries(void)
{
    int k;
    for (k = 0; k < temp_count; k++) unlink(temp_path[k]);
    if (temp_dir_set) rmdir(temp_dir);
}

/* A --force replace of a sharded OUT moves the old directory aside first: a signal in
   between moves it back, so OUT never just vanishes. */
static char moved_from[PATH_MAX], moved_to[PATH_MAX];
static volatile sig_atomic_t old_output_aside;

static void on_signal(int sig)
{
    remove_temporaries();   /* unlink, rmdir and rename are async-signal-safe */
    if (old_output_aside) rename(moved_to, moved_from);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* The input shrank or became unreadable while mapped (another program truncated it):
   the page access raised SIGBUS. Clean up, say so, exit 2. */
static void on_sigbus(int sig)
{
    static const char msg[] = "tsenor: error: an input file changed or became unreadable while being read\n";
    (void)sig;
    remove_temporaries();
    if (old_output_aside) rename(moved_to, moved_from);
    if (write(2, msg, sizeof msg - 1) < 0) { /* nothing more can be done */ }
    _exit(2);
}

static void forget_temporaries(void)
{
    temp_count = 0;
    temp_dir_set = 0;
}

typedef struct out_file {
    int fd;
    char tmp[PATH_MAX], final_path[PATH_MAX];
    int in_temp_dir;              /* written inside a temporary directory: no rename */
    unsigned char *buf;
    size_t used;
    uint64_t written;
    int failed;
} out_file;

static int split_dir(const char *path, char *dir, char *base)
{
    const char *slash = strrchr(path, '/');
    if (slash) {
        const size_t dl = slash == path ? 1 : (size_t)(slash - path);
        if (dl >= PATH_MAX || strlen(slash + 1) >= PATH_MAX) return 0;
        memcpy(dir, path, dl);
        dir[dl] = '\0';
        strcpy(base, slash + 1);
    } else {
        if (strlen(path) >= PATH_MAX) return 0;
        strcpy(dir, ".");
        strcpy(base, path);
    }
    return base[0] != '\0';
}

static void fsync_dir(const char *dir)
{
    const int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int out_open(out_file *f, const char *final_path, int in_temp_dir)
{
    char dir[PATH_MAX], base[PATH_MAX];
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->in_temp_dir = in_temp_dir;
    if (!split_dir(final_path, dir, base) || strlen(final_path) >= PATH_MAX) { cli_error("%s: bad output path", final_path); return 0; }
    strcpy(f->final_path, final_path);
    if (temp_count == CLI_MAX_TEMP) { cli_error("too many output files"); return 0; }
    if (in_temp_dir) {
        strcpy(f->tmp, final_path);
        strcpy(temp_path[temp_count], f->tmp);
        temp_count++;
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    } else {
        /* the name is generated in the slot a signal handler reads, registered first:
           no moment exists where the file is there and the handler does not know it */
        char *slot = temp_path[temp_count];
        if ((size_t)snprintf(slot, PATH_MAX, "%s/.%.200s.tsenor-XXXXXX", dir, base) >= PATH_MAX) { cli_error("%s: path too long", final_path); return 0; }
        temp_count++;
        f->fd = mkstemp(slot);
        strcpy(f->tmp, slot);
        if (f->fd >= 0) {
            mode_t mask = umask(0);
            umask(mask);
            fchmod(f->fd, 0666 & ~mask);   /* mkstemp makes 0600; outputs are ordinary files */
        }
    }
    if (f->fd < 0) { cli_error("%s: cannot create: %s", final_path, strerror(errno)); return 0; }
    f->buf = (unsigned char *)malloc(CLI_WRITE_CHUNK);
    if (!f->buf) { cli_error("out of memory"); close(f->fd); unlink(f->tmp); return 0; }
    return 1;
}

static void out_flush(out_file *f)
{
    size_t off = 0;
    while (!f->failed && off < f->used) {
        const ssize_t w = write(f->fd, f->buf + off, f->used - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            cli_error("%s: write failed: %s", f->final_path, w < 0 ? strerror(errno) : "no progress");
            f->failed = 1;
            break;
        }
        off += (size_t)w;
    }
    f->written += f->used;
    f->used = 0;
}

static void out_write(out_file *f, const void *data, size_t len)
{
    const unsigned char *p = (const unsigned char *)data;
    while (len && !f->failed) {
        size_t n = CLI_WRITE_CHUNK - f->used;
        if (n > len) n = len;
        memcpy(f->buf + f->used, p, n);
        f->used += n;
        p += n;
        len -= n;
        if (f->used == CLI_WRITE_CHUNK) out_flush(f);
    }
}

/* room for n bytes to fill in place (n <= CLI_WRITE_CHUNK) */
static unsigned char *out_reserve(out_file *f, size_t n)
{
    unsigned char *p;
    if (CLI_WRITE_CHUNK - f->used < n) out_flush(f);
    p = f->buf + f->used;
    f->used += n;
    return p;
}

static void out_abort(out_file *f)
{
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tmp[0]) unlink(f->tmp);
    free(f->buf);
    f->buf = NULL;
}

/* flush, fsync, close; outside a temporary directory also move into place (never
   over an existing file unless force) */
static int out_commit(out_file *f, int force)
{
    out_flush(f);
    if (!f->failed && fsync(f->fd) != 0) { cli_error("%s: fsync failed: %s", f->final_path, strerror(errno)); f->failed = 1; }
    if (close(f->fd) != 0 && !f->failed) { cli_error("%s: close failed: %s", f->final_path, strerror(errno)); f->failed = 1; }
    f->fd = -1;
    free(f->buf);
    f->buf = NULL;
    if (f->failed) { unlink(f->tmp); return 0; }
    if (!f->in_temp_dir) {
        char dir[PATH_MAX], base[PATH_MAX];
        int rc;
        if (force) rc = rename(f->tmp, f->final_path);
        else if ((rc = link(f->tmp, f->final_path)) == 0) unlink(f->tmp);   /* fails when OUT exists */
        else if (errno == EPERM || errno == EOPNOTSUPP || errno == ENOSYS || errno == EMLINK) {
            /* a filesystem without hard links (vfat, some network mounts): check, then rename */
            struct stat sb;
            if (lstat(f->final_path, &sb) == 0) { rc = -1; errno = EEXIST; }
            else rc = rename(f->tmp, f->final_path);
        }
        if (rc != 0) {
            cli_error("%s: %s", f->final_path, errno == EEXIST ? "exists (use --force to replace it)" : strerror(errno));
            unlink(f->tmp);
            return 0;
        }
        forget_temporaries();
        if (split_dir(f->final_path, dir, base)) fsync_dir(dir);
    }
    return 1;
}

/* ==================================================================================
   solving and writing one matrix
   ================================================================================== */
typedef struct row_report {   /* a line of the table */
    char name[72], shape[40], action[96];
    tensorfile_dtype dtype;
    double kept_pct, ms, error;
    int pruned, has_error;    /* has_error: pruned with a gram, error is its relative error */
} row_report;

/* The --gram file, mapped read-only for the whole run: a safetensors file of grams named
   like their weights, or (for a .npy IN) one .npy array. Only the headers are read up
   front; a gram's pages are read when its layer is pruned and dropped after it. */
typedef struct gram_source {
    const char *path;
    mapped_file file;
    tensorfile_safetensors st;
    const tensorfile_tensor **sorted;   /* st's tensors by name                          */
    tensorfile_npy npy;
    size_t missing;                     /* pruned weights without a gram                 */
    char missing_names[200];            /* the first of them, quoted, for the message    */
} gram_source;

typedef struct run_state {
    const cli_options *o;
    uint8_t *mask;            /* grown to the largest matrix                         */
    size_t mask_cap;
    uint8_t *stored_mask;     /* a Fortran-order .npy's mask in its memory order      */
    size_t stored_mask_cap;
    void *aligned;            /* copies of tensors that are not aligned to their dtype */
    size_t aligned_cap;
    row_report *rows;
    size_t n_rows, cap_rows;
    size_t pruned, copied;
    uint64_t pruned_elements, bytes_done, bytes_total;
    double kept, total, solve_seconds;
    const char *backend;
    int progress;             /* stderr is a terminal */
    int nothing_to_prune;     /* the run failed because no tensor was selected: exit 1 */
    /* --method: pruning with calibration data */
    gram_source grams;        /* path NULL without --gram                             */
    float *weights;           /* the matrix as F32, pruned in place                   */
    size_t weights_cap;
    float *reordered;         /* a Fortran-order .npy's result in its memory order     */
    size_t reordered_cap;
    float *gram_copy;         /* a gram that is not 4-byte aligned, or in Fortran order */
    size_t gram_copy_cap;
    size_t with_error, without_gram;
    double error_sum, error_max;
} run_state;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int grow(void **p, size_t *cap, size_t need)
{
    void *q;
    if (need <= *cap) return 1;
    q = realloc(*p, need);
    if (!q) return 0;
    *p = q;
    *cap = need;
    return 1;
}

/* a name for the terminal: control characters shown as '?' (names are arbitrary UTF-8) */
static void printable(char *dst, size_t size, const char *src)
{
    size_t i;
    snprintf(dst, size, "%s", src);
    for (i = 0; dst[i]; i++)
        if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7F) dst[i] = '?';
}

static void show_progress(run_state *r, const char *name)
{
    int k, filled;
    double frac;
    if (!r->progress) return;
    frac = r->bytes_total ? (double)r->bytes_done / (double)r->bytes_total : 1.0;
    filled = (int)(frac * 30.0 + 0.5);
    fprintf(stderr, "\r\033[K[");
    for (k = 0; k < 30; k++) fputc(k < filled ? '#' : '.', stderr);
    {
        char shown[52];
        printable(shown, sizeof shown, name);
        fprintf(stderr, "] %3d%%  %s", (int)(frac * 100.0 + 0.5), shown);
    }
    fflush(stderr);
}

static void clear_progress(run_state *r)
{
    if (r->progress) fprintf(stderr, "\r\033[K");
}

static row_report *add_row(run_state *r, const char *name, tensorfile_dtype dtype, int rank, const uint64_t *shape)
{
    row_report *row;
    int d;
    size_t len = 0;
    if (r->n_rows == r->cap_rows) {
        const size_t cap = r->cap_rows ? 2 * r->cap_rows : 64;
        row_report *t = (row_report *)realloc(r->rows, cap * sizeof *t);
        if (!t) return NULL;
        r->rows = t;
        r->cap_rows = cap;
    }
    row = &r->rows[r->n_rows++];
    memset(row, 0, sizeof *row);
    printable(row->name, sizeof row->name, name);
    row->dtype = dtype;
    for (d = 0; d < rank && len < sizeof row->shape - 1; d++)
        len += (size_t)snprintf(row->shape + len, sizeof row->shape - len, d ? "x%llu" : "%llu", (unsigned long long)shape[d]);
    if (rank == 0) strcpy(row->shape, "scalar");
    return row;
}

/* The mask of a rows x cols matrix of dtype at data (any alignment). */
static int solve_mask(run_state *r, const char *label, const void *data, tensorfile_dtype dtype, uint64_t rows, uint64_t cols,
                      tsenor_report *rep)
{
    const cli_options *o = r->o;
    tsenor_options opt;
    tsenor_status s;
    const size_t es = tensorfile_dtypes[dtype].size;
    uint64_t numel;
    if (!tensorfile_mul_size(rows, cols, &numel) || numel > SIZE_MAX / 4) { cli_error("%s: too large", label); return 0; }
    if (!grow((void **)&r->mask, &r->mask_cap, (size_t)numel)) { cli_error("%s: out of memory (%llu bytes for the mask)", label, (unsigned long long)numel); return 0; }
    if ((uintptr_t)data % es) {   /* a file may place a tensor at any byte: copy it aligned */
        if (!grow(&r->aligned, &r->aligned_cap, (size_t)numel * es)) { cli_error("%s: out of memory", label); return 0; }
        memcpy(r->aligned, data, (size_t)numel * es);
        data = r->aligned;
    }
    memset(&opt, 0, sizeof opt);
    opt.n = o->n;
    opt.m = o->m;
    opt.method = o->method;
    opt.threads = o->threads;
#ifdef TSENOR_CUDA
    if (!o->gpu)   /* tsenor_mask runs on the GPU in this build; the CPU solver is per dtype */
        s = dtype == TENSORFILE_F32 ? tsenor_cpu_mask_f32((const float *)data, rows, cols, cols, r->mask, cols, &opt, rep)
          : dtype == TENSORFILE_F16 ? tsenor_cpu_mask_f16((const uint16_t *)data, rows, cols, cols, r->mask, cols, &opt, rep)
                                    : tsenor_cpu_mask_bf16((const uint16_t *)data, rows, cols, cols, r->mask, cols, &opt, rep);
    else
#endif
    s = tsenor_mask(data, dtype == TENSORFILE_F32 ? TSENOR_DTYPE_F32 : dtype == TENSORFILE_F16 ? TSENOR_DTYPE_F16 : TSENOR_DTYPE_BF16,
                    rows, cols, cols, r->mask, cols, &opt, rep);
#ifdef TSENOR_CUDA
    if (s == TSENOR_ERR_DEVICE) { cli_error("%s: GPU: %s", label, tsenor_cuda_last_error()); return 0; }
#endif
    if (s != TSENOR_OK) { cli_error("%s: %s", label, tsenor_status_string(s)); return 0; }
    r->backend = rep->backend;
    return 1;
}

/* weights with the pruned entries set to +0 (all-zero bits), kept entries bit for bit */
static void write_pruned(out_file *f, const uint8_t *src, const uint8_t *mask, size_t numel, size_t es)
{
    const size_t per_chunk = CLI_WRITE_CHUNK / es;
    size_t i = 0;
    while (i < numel && !f->failed) {
        const size_t n = numel - i < per_chunk ? numel - i : per_chunk;
        unsigned char *dst = out_reserve(f, n * es);
        size_t k;
        if (es == 4) {
            for (k = 0; k < n; k++) {
                uint32_t v;
                memcpy(&v, src + (i + k) * 4, 4);
                v &= 0u - (uint32_t)mask[i + k];
                memcpy(dst + k * 4, &v, 4);
            }
        } else {
            for (k = 0; k < n; k++) {
                uint16_t v;
                memcpy(&v, src + (i + k) * 2, 2);
                v = (uint16_t)(v & (0u - (unsigned)mask[i + k]));
                memcpy(dst + k * 2, &v, 2);
            }
        }
        i += n;
    }
}

/* Fortran (column-major) order <-> C (row-major) order of an array of `shape` with
   elements of es bytes: to_c copies Fortran src into C dst, else C src into Fortran dst. */
static void fortran_reorder(const uint8_t *src, uint8_t *dst, const uint64_t *shape, int rank, size_t es, int to_c)
{
    uint64_t idx[TENSORFILE_MAX_RANK], fstride[TENSORFILE_MAX_RANK], numel = 1, c, f = 0;
    int d;
    for (d = 0; d < rank; d++) { idx[d] = 0; fstride[d] = numel; numel *= shape[d]; }
    for (c = 0; c < numel; c++) {
        if (to_c) memcpy(dst + c * es, src + f * es, es);
        else memcpy(dst + f * es, src + c * es, es);
        for (d = rank - 1; d >= 0; d--) {   /* C order: the last index moves fastest */
            if (++idx[d] < shape[d]) { f += fstride[d]; break; }
            f -= fstride[d] * (shape[d] - 1);
            idx[d] = 0;
        }
    }
}

/* ==================================================================================
   pruning with calibration data (--method): grams, F16/BF16 <-> F32, one layer
   ================================================================================== */
static float bf16_to_f32(uint16_t h)
{
    const uint32_t b = (uint32_t)h << 16;
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static float f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
    uint32_t b;
    float f;
    if (exp == 0x1F) b = sign | 0x7F800000u | man << 13;
    else if (exp) b = sign | (exp + 112u) << 23 | man << 13;
    else {   /* zero or subnormal: man * 2^-24, exact in F32 */
        f = (float)man * 5.9604644775390625e-8f;
        memcpy(&b, &f, 4);
        b |= sign;
    }
    memcpy(&f, &b, 4);
    return f;
}

/* round to nearest even; a NaN stays a NaN (quiet), never carried into an infinity */
static uint16_t f32_to_bf16(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    if ((b & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)(b >> 16 | 0x0040u);
    return (uint16_t)((b + 0x7FFFu + ((b >> 16) & 1u)) >> 16);
}

static uint16_t f32_to_f16(float f)
{
    uint32_t b, a, sign, h, rest;
    memcpy(&b, &f, 4);
    sign = (b >> 16) & 0x8000u;
    a = b & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | (a >> 13 & 0x3FFu));   /* NaN */
    if (a >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);   /* 65520 and up (a tie with 65504, whose last bit is odd) */
    if (a < 0x38800000u) {   /* below 2^-14: a subnormal, a * 2^24 rounded to an integer */
        const uint32_t e = a >> 23, m = (a & 0x7FFFFFu) | 0x800000u, shift = 126u - e;
        uint32_t q, half;
        if (shift > 24) return (uint16_t)sign;   /* below 2^-25: rounds to zero */
        q = m >> shift;
        rest = m & ((1u << shift) - 1u);
        half = 1u << (shift - 1u);
        if (rest > half || (rest == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);   /* q = 0x400 is the smallest normal: the encoding carries */
    }
    h = (a >> 13) - (112u << 10);
    rest = a & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;   /* a carry into the exponent is right */
    return (uint16_t)(sign | h);
}

/* element i of an F32/F16/BF16 array at any alignment */
static float value_at(const uint8_t *data, tensorfile_dtype dtype, size_t i)
{
    if (dtype == TENSORFILE_F32) {
        float f;
        memcpy(&f, data + 4 * i, 4);
        return f;
    } else {
        uint16_t h;
        memcpy(&h, data + 2 * i, 2);
        return dtype == TENSORFILE_F16 ? f16_to_f32(h) : bf16_to_f32(h);
    }
}

static int open_grams(run_state *r, int npy_in)
{
    gram_source *g = &r->grams;
    char err[TENSORFILE_ERR_LEN];
    g->path = r->o->gram;
    if (!map_file(g->path, &g->file)) return 0;
    if (tensorfile_is_npy(g->file.data, g->file.len)) {
        if (!npy_in) { cli_error("%s: a .npy array; the grams of a checkpoint are one .safetensors file, a gram per weight", g->path); return 0; }
        if (tensorfile_npy_parse(g->file.data, g->file.len, &g->npy, err) < 0) { cli_error("%s: %s", g->path, err); return 0; }
        return 1;
    }
    if (npy_in) { cli_error("%s: the gram of a .npy array is a .npy array (F32, cols x cols)", g->path); return 0; }
    if (!tensorfile_is_safetensors(g->file.data, g->file.len)) { cli_error("%s: neither a safetensors file nor a .npy array", g->path); return 0; }
    if (tensorfile_safetensors_parse(g->file.data, g->file.len, &g->st, err) < 0) { cli_error("%s: %s", g->path, err); return 0; }
    g->sorted = tensorfile_sorted_by_name(&g->st);
    if (!g->sorted) { cli_error("out of memory"); return 0; }
    return 1;
}

static void close_grams(gram_source *g)
{
    free((void *)g->sorted);
    tensorfile_safetensors_free(&g->st);
    unmap_file(&g->file);
}

/* The gram of the weight `name` (cols columns): 1 with *t set, 0 when the file has none,
   -1 (said) when the file's gram of that name has another dtype or shape. */
static int find_gram(const gram_source *g, const char *name, size_t name_len, uint64_t cols, const tensorfile_tensor **t)
{
    char err[TENSORFILE_ERR_LEN];
    *t = tensorfile_find(g->sorted, g->st.count, name, name_len);
    if (!*t) return 0;
    if (tensorfile_gram_check(*t, cols, err) < 0) { cli_error("%s: %s", g->path, err); return -1; }
    return 1;
}

/* Before anything is written: every weight of st that would be pruned has a gram of the
   right dtype and shape, or is counted as missing. 0 (said) on a wrong gram. */
static int check_grams(run_state *r, const tensorfile_safetensors *st)
{
    gram_source *g = &r->grams;
    size_t i;
    for (i = 0; i < st->count; i++) {
        const tensorfile_tensor *t = &st->tensor[i], *h;
        const selection sel = select_tensor(r->o, t->name, 1, t->dtype, t->rank, t->shape, 0);
        int found;
        if (!sel.prune) continue;
        found = find_gram(g, t->name, t->name_len, sel.cols, &h);
        if (found < 0) return 0;
        if (!found) {
            const size_t len = strlen(g->missing_names);
            if (g->missing < 3) snprintf(g->missing_names + len, sizeof g->missing_names - len, "%s\"%.60s\"", len ? ", " : "", t->name);
            g->missing++;
        }
    }
    return 1;
}

/* after check_grams of every input file: 1 to go on */
static int grams_complete(const run_state *r, size_t pruned)
{
    const gram_source *g = &r->grams;
    if (!g->missing || r->o->allow_missing_gram) return 1;
    cli_error("%s: no gram for %zu of the %zu weights to prune: %s%s (grams are named like their weights; "
              "--allow-missing-gram prunes these by magnitude, --exclude keeps them dense)",
              g->path, g->missing, pruned, g->missing_names, g->missing > 3 ? ", ..." : "");
    return 0;
}

/* A gram's floats, 4-byte aligned and in C order (copied when the file holds them
   otherwise). NULL (said) when one is NaN or infinite, or out of memory. */
static const float *gram_floats(run_state *r, const char *label, const uint8_t *raw, uint64_t cols, const tensorfile_npy *fortran)
{
    const size_t count = (size_t)(cols * cols);   /* the file holds 4 * count bytes of it: no overflow */
    const float *h = (const float *)(const void *)raw;
    size_t i;
    if (fortran || (uintptr_t)raw % 4) {
        if (!grow((void **)&r->gram_copy, &r->gram_copy_cap, count * 4)) { cli_error("%s: out of memory", label); return NULL; }
        if (fortran) fortran_reorder(raw, (uint8_t *)r->gram_copy, fortran->shape, 2, 4, 1);
        else memcpy(r->gram_copy, raw, count * 4);
        h = r->gram_copy;
    }
    for (i = 0; i < count; i++)
        if (!isfinite(h[i])) {
            cli_error("%s: holds NaN or infinity (row %zu, col %zu)", label, i / (size_t)cols, i % (size_t)cols);
            return NULL;
        }
    return h;
}

/* W^ in its dtype: pruned entries +0, F16/BF16 rounded to nearest even. 0 (said) when an
   updated weight is beyond the dtype's range (it would be written as an infinity). */
static int write_updated(out_file *f, const float *w, const uint8_t *mask, size_t numel, tensorfile_dtype dtype, const char *label)
{
    const size_t es = tensorfile_dtypes[dtype].size, per_chunk = CLI_WRITE_CHUNK / es;
    size_t i = 0;
    while (i < numel && !f->failed) {
        const size_t n = numel - i < per_chunk ? numel - i : per_chunk;
        unsigned char *dst = out_reserve(f, n * es);
        size_t k;
        for (k = 0; k < n; k++) {
            const float v = mask[i + k] ? w[i + k] : 0.0f;
            if (dtype == TENSORFILE_F32) {
                memcpy(dst + 4 * k, &v, 4);
            } else {
                const uint16_t h = dtype == TENSORFILE_F16 ? f32_to_f16(v) : f32_to_bf16(v);
                if ((h & 0x7FFFu) >= (dtype == TENSORFILE_F16 ? 0x7C00u : 0x7F80u)) {
                    cli_error("%s: an updated weight, %g, is beyond the range of %s", label, (double)v, tensorfile_dtypes[dtype].name);
                    return 0;
                }
                memcpy(dst + 2 * k, &h, 2);
            }
        }
        i += n;
    }
    return !f->failed;
}

/* --method: the matrix (C order at data, any alignment) read as F32, pruned in place by
   tsenor_prune_f32 with its gram (NULL: magnitude), written in its dtype (or as a mask),
   reordered for a Fortran-order .npy. Fills the table row. */
static int prune_calibrated(run_state *r, out_file *f, row_report *row, const char *label, const uint8_t *data,
                            const tensorfile_npy *fortran, tensorfile_dtype dtype, uint64_t rows, uint64_t cols, const float *gram)
{
    const cli_options *o = r->o;
    const double t0 = now_seconds();
    tsenor_prune_options opt;
    tsenor_prune_report rep;
    tsenor_status s;
    uint64_t numel64;
    size_t numel, i;
    double kept = 0.0, total = 0.0;
    const float *result;
    const uint8_t *mask;
    if (!tensorfile_mul_size(rows, cols, &numel64) || numel64 > SIZE_MAX / 4) { cli_error("%s: too large", label); return 0; }
    numel = (size_t)numel64;
    if (!grow((void **)&r->weights, &r->weights_cap, numel * 4) || !grow((void **)&r->mask, &r->mask_cap, numel)) {
        cli_error("%s: out of memory", label);
        return 0;
    }
    for (i = 0; i < numel; i++) r->weights[i] = value_at(data, dtype, i);
    memset(&opt, 0, sizeof opt);
    opt.mask.n = o->n;
    opt.mask.m = o->m;
    opt.mask.method = o->method;
    opt.mask.threads = o->threads;
    opt.method = gram ? o->prune : TSENOR_PRUNE_MAGNITUDE;
    opt.damping = o->damping;
    opt.iterations = o->iterations;
    memset(&rep, 0, sizeof rep);
#ifdef TSENOR_CUDA
    if (!o->gpu)   /* tsenor_prune_f32 runs on the GPU in this build */
        s = tsenor_cpu_prune_f32(r->weights, (size_t)rows, (size_t)cols, (size_t)cols, gram, (size_t)cols, r->weights, (size_t)cols,
                                 r->mask, (size_t)cols, &opt, &rep);
    else
#endif
    s = tsenor_prune_f32(r->weights, (size_t)rows, (size_t)cols, (size_t)cols, gram, (size_t)cols, r->weights, (size_t)cols, r->mask,
                         (size_t)cols, &opt, &rep);
#ifdef TSENOR_CUDA
    if (s == TSENOR_ERR_DEVICE) { cli_error("%s: GPU: %s", label, tsenor_cuda_last_error()); return 0; }
#endif
    if (s == TSENOR_ERR_INVALID_ARGUMENT && gram) {   /* the options were checked: what is left is the gram */
        cli_error("%s: its gram is not symmetric positive semidefinite (after damping), or %s", label, tsenor_status_string(s));
        return 0;
    }
    if (s != TSENOR_OK) { cli_error("%s: %s", label, tsenor_status_string(s)); return 0; }
    for (i = 0; i < numel; i++) {   /* the magnitude kept, of the weights as they were */
        const double a = fabs((double)value_at(data, dtype, i));
        total += a;
        if (r->mask[i]) kept += a;
    }
    result = r->weights;
    mask = r->mask;
    if (fortran) {
        if (!grow((void **)&r->reordered, &r->reordered_cap, numel * 4) || !grow((void **)&r->stored_mask, &r->stored_mask_cap, numel)) {
            cli_error("%s: out of memory", label);
            return 0;
        }
        fortran_reorder((const uint8_t *)r->weights, (uint8_t *)r->reordered, fortran->shape, fortran->rank, 4, 0);
        fortran_reorder(r->mask, r->stored_mask, fortran->shape, fortran->rank, 1, 0);
        result = r->reordered;
        mask = r->stored_mask;
    }
    if (o->masks) out_write(f, mask, numel);
    else if (!write_updated(f, result, mask, numel, dtype, label)) return 0;
    if (f->failed) return 0;
    row->pruned = 1;
    row->kept_pct = total > 0 ? 100.0 * kept / total : 100.0;
    row->ms = 1e3 * (now_seconds() - t0);
    row->has_error = gram != NULL;
    row->error = rep.error;
    snprintf(row->action, sizeof row->action, "%s + %s %d:%d%s%s", tsenor_prune_method_string(opt.method), tsenor_method_string(o->method),
             o->n, o->m, o->masks ? " mask" : "", r->grams.path && !gram ? " (no gram)" : "");
    r->pruned++;
    r->pruned_elements += numel;
    r->kept += kept;
    r->total += total;
    r->solve_seconds += rep.seconds;
    r->backend = rep.backend;
    if (gram) {
        r->with_error++;
        r->error_sum += rep.error;
        if (rep.error > r->error_max) r->error_max = rep.error;
    } else if (r->grams.path) {
        r->without_gram++;
    }
    return 1;
}

/* Prunes (or masks) one matrix and writes it to f; fills the table row. `data` is the
   matrix in C order (what is solved); `stored` the bytes as they lie in the file (what
   is written), which differ only for a Fortran-order .npy (fortran != NULL), whose
   mask is then reordered to match. gram: with --method, the layer's (NULL: none). */
static int prune_matrix(run_state *r, out_file *f, row_report *row, const char *label, const uint8_t *data,
                        const uint8_t *stored, const tensorfile_npy *fortran, tensorfile_dtype dtype, uint64_t rows, uint64_t cols,
                        const float *gram)
{
    tsenor_report rep;
    const double t0 = now_seconds();
    const size_t numel = (size_t)(rows * cols);
    const uint8_t *mask;
    if (r->o->prune) return prune_calibrated(r, f, row, label, data, fortran, dtype, rows, cols, gram);
    memset(&rep, 0, sizeof rep);
    if (!solve_mask(r, label, data, dtype, rows, cols, &rep)) return 0;
    mask = r->mask;   /* after the solve: it may have grown the buffer */
    if (fortran) {
        if (!grow((void **)&r->stored_mask, &r->stored_mask_cap, numel)) { cli_error("%s: out of memory", label); return 0; }
        fortran_reorder(r->mask, r->stored_mask, fortran->shape, fortran->rank, 1, 0);
        mask = r->stored_mask;
    }
    if (r->o->masks) out_write(f, mask, numel);
    else write_pruned(f, stored, mask, numel, tensorfile_dtypes[dtype].size);
    if (f->failed) return 0;
    row->pruned = 1;
    row->kept_pct = rep.total > 0 ? 100.0 * rep.kept / rep.total : 100.0;
    row->ms = 1e3 * (now_seconds() - t0);
    snprintf(row->action, sizeof row->action, "%s %d:%d%s", tsenor_method_string(r->o->method), r->o->n, r->o->m, r->o->masks ? " mask" : "");
    r->pruned++;
    r->pruned_elements += numel;
    r->kept += rep.kept;
    r->total += rep.total;
    r->solve_seconds += rep.seconds;
    return 1;
}

/* ==================================================================================
   safetensors: one file in, one file out
   ================================================================================== */
typedef struct out_tensor {
    const tensorfile_tensor *in;
    selection sel;
    tensorfile_dtype dtype;
    uint64_t nbytes, begin;
} out_tensor;

static int by_alignment_then_offset(const void *a, const void *b)
{
    const out_tensor *x = (const out_tensor *)a, *y = (const out_tensor *)b;
    const unsigned sx = tensorfile_dtypes[x->dtype].size, sy = tensorfile_dtypes[y->dtype].size;
    if (sx != sy) return sx > sy ? -1 : 1;   /* larger elements first: every start stays aligned */
    if (x->in->begin != y->in->begin) return x->in->begin < y->in->begin ? -1 : 1;
    return x->in->end < y->in->end ? -1 : x->in->end > y->in->end;
}

static void add_tsenor_metadata(json_buf *b, const cli_options *o, int first)
{
    char pattern[32];
    snprintf(pattern, sizeof pattern, "%d:%d", o->n, o->m);
    json_buf_str(b, first ? "" : ",");
    json_buf_str(b, "\"tsenor.pattern\":");
    json_buf_string(b, pattern, strlen(pattern));
    json_buf_str(b, ",\"tsenor.method\":");
    json_buf_string(b, tsenor_method_string(o->method), strlen(tsenor_method_string(o->method)));
    if (o->prune) {
        json_buf_str(b, ",\"tsenor.prune_method\":");
        json_buf_string(b, tsenor_prune_method_string(o->prune), strlen(tsenor_prune_method_string(o->prune)));
    }
    json_buf_str(b, ",\"tsenor.content\":");
    json_buf_str(b, o->masks ? "\"masks\"" : "\"pruned weights\"");
    json_buf_printf(b, ",\"tsenor.version\":\"%d.%d.%d\"", TSENOR_VERSION_MAJOR, TSENOR_VERSION_MINOR, TSENOR_VERSION_PATCH);
}

static int is_tsenor_key(const char *key, size_t len) { return len >= 7 && memcmp(key, "tsenor.", 7) == 0; }

/* Reads in_path (already parsed into st), writes out_path. Returns 1 on success.
   out_bytes receives the output's tensor bytes (an index's total_size). */
static int prune_safetensors_file(run_state *r, const char *in_path, const mapped_file *src, const tensorfile_safetensors *st,
                                  const char *out_path, int in_temp_dir, uint64_t *out_bytes)
{
    const cli_options *o = r->o;
    out_tensor *ot = (out_tensor *)calloc(st->count + 1, sizeof *ot);
    json_buf h = {NULL, 0, 0, 0};
    out_file f;
    size_t i;
    uint64_t offset = 0;
    int first = 1, ok = 1;
    if (!ot) { cli_error("out of memory"); return 0; }
    for (i = 0; i < st->count; i++) {
        const tensorfile_tensor *t = &st->tensor[i];
        ot[i].in = t;
        ot[i].sel = select_tensor(o, t->name, 1, t->dtype, t->rank, t->shape, 0);
        ot[i].dtype = ot[i].sel.prune && o->masks ? TENSORFILE_U8 : t->dtype;
        ot[i].nbytes = ot[i].sel.prune && o->masks ? t->numel : t->nbytes;
    }
    qsort(ot, st->count, sizeof *ot, by_alignment_then_offset);
    /* the header: metadata (the input's, then ours), then the tensors in data order */
    json_buf_str(&h, "{\"__metadata__\":{");
    for (i = 0; i < st->meta_count; i++) {
        if (is_tsenor_key(st->meta[i].key, st->meta[i].key_len)) continue;   /* ours are rewritten */
        if (!first) json_buf_str(&h, ",");
        json_buf_string(&h, st->meta[i].key, st->meta[i].key_len);
        json_buf_str(&h, ":");
        json_buf_string(&h, st->meta[i].value, st->meta[i].value_len);
        first = 0;
    }
    add_tsenor_metadata(&h, o, first);
    json_buf_str(&h, "}");
    for (i = 0; i < st->count; i++) {
        int d;
        ot[i].begin = offset;
        json_buf_str(&h, ",");
        json_buf_string(&h, ot[i].in->name, ot[i].in->name_len);
        json_buf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", tensorfile_dtypes[ot[i].dtype].name);
        for (d = 0; d < ot[i].in->rank; d++) json_buf_printf(&h, d ? ",%llu" : "%llu", (unsigned long long)ot[i].in->shape[d]);
        json_buf_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset, (unsigned long long)(offset + ot[i].nbytes));
        offset += ot[i].nbytes;
    }
    json_buf_str(&h, "}");
    while (h.len % 8) json_buf_str(&h, " ");   /* the data starts 8-byte aligned */
    if (h.oom) { cli_error("out of memory"); free(ot); free(h.s); return 0; }
    *out_bytes = offset;
    if (!out_open(&f, out_path, in_temp_dir)) { free(ot); free(h.s); return 0; }
    {
        unsigned char len8[8];
        int k;
        for (k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)h.len >> (8 * k));
        out_write(&f, len8, 8);
        out_write(&f, h.s, h.len);
    }
    free(h.s);
    for (i = 0; i < st->count && ok && !f.failed; i++) {
        const tensorfile_tensor *t = ot[i].in;
        const uint8_t *data = st->data + t->begin;
        row_report *row = add_row(r, t->name, t->dtype, t->rank, t->shape);
        if (!row) { cli_error("out of memory"); ok = 0; break; }
        show_progress(r, t->name);
        if (ot[i].sel.prune) {
            char label[PATH_MAX + 96];
            const tensorfile_tensor *g = NULL;
            const float *gram = NULL;
            snprintf(label, sizeof label, "%s: tensor \"%.60s\"", in_path, t->name);
            if (r->grams.path) {   /* check_grams has vetted it; none here means --allow-missing-gram */
                const int found = find_gram(&r->grams, t->name, t->name_len, ot[i].sel.cols, &g);
                if (found < 0 || (!found && !o->allow_missing_gram)) {
                    if (!found) cli_error("%s: no gram for it in %s", label, r->grams.path);
                    ok = 0;
                } else if (found) {
                    char glabel[PATH_MAX + 96];
                    snprintf(glabel, sizeof glabel, "%s: gram \"%.60s\"", r->grams.path, t->name);
                    ok = (gram = gram_floats(r, glabel, r->grams.st.data + g->begin, ot[i].sel.cols, NULL)) != NULL;
                }
            }
            if (ok) ok = prune_matrix(r, &f, row, label, data, data, NULL, t->dtype, ot[i].sel.rows, ot[i].sel.cols, gram);
            if (g) release_pages(&r->grams.file, r->grams.st.data + g->begin, g->nbytes);
        } else {
            const double t0 = now_seconds();
            out_write(&f, data, (size_t)t->nbytes);
            snprintf(row->action, sizeof row->action, "%s", ot[i].sel.why);
            row->ms = 1e3 * (now_seconds() - t0);
            r->copied++;
        }
        r->bytes_done += t->nbytes;
        release_pages(src, data, t->nbytes);
    }
    free(ot);
    if (!ok || f.failed) { out_abort(&f); return 0; }
    return out_commit(&f, o->force);
}

/* ==================================================================================
   .npy: one array in, one array out
   ================================================================================== */
static int prune_npy(run_state *r, const char *in_path, const mapped_file *in, const char *out_path)
{
    const cli_options *o = r->o;
    tensorfile_npy a;
    char err[TENSORFILE_ERR_LEN];
    selection sel;
    row_report *row;
    out_file f;
    const uint8_t *stored, *data;
    const float *gram = NULL;
    if (tensorfile_npy_parse(in->data, in->len, &a, err) < 0) { cli_error("%s: %s", in_path, err); return 0; }
    if (a.big_endian) { cli_error("%s: big-endian arrays ('%s') are not supported", in_path, a.descr); return 0; }
    sel = select_tensor(o, NULL, 0, a.dtype, a.rank, a.shape, 0);   /* the logical shape, in any memory order */
    if (!sel.prune) {
        cli_error("%s: %s; nothing to prune", in_path, sel.why + strlen("dense: "));
        r->nothing_to_prune = 1;
        return 0;
    }
    stored = data = in->data + a.data_offset;
    if (a.fortran_order) {   /* solved in C order (what the mask's rows and columns mean), written back as stored */
        if (!grow(&r->aligned, &r->aligned_cap, (size_t)a.nbytes)) { cli_error("%s: out of memory", in_path); return 0; }
        fortran_reorder(stored, (uint8_t *)r->aligned, a.shape, a.rank, tensorfile_dtypes[a.dtype].size, 1);
        data = (const uint8_t *)r->aligned;
    }
    if (r->grams.path) {   /* before any output exists */
        const tensorfile_npy *g = &r->grams.npy;
        if (g->dtype != TENSORFILE_F32 || g->big_endian || g->rank != 2 || g->shape[0] != sel.cols || g->shape[1] != sel.cols) {
            cli_error("%s: the gram must be a little-endian F32 array of %llux%llu (the weight has %llu columns); it is '%s' of rank %d",
                      r->grams.path, (unsigned long long)sel.cols, (unsigned long long)sel.cols, (unsigned long long)sel.cols, g->descr, g->rank);
            return 0;
        }
        gram = gram_floats(r, r->grams.path, r->grams.file.data + g->data_offset, sel.cols, g->fortran_order ? g : NULL);
        if (!gram) return 0;
    }
    r->bytes_total = a.nbytes;
    row = add_row(r, in_path, a.dtype, a.rank, a.shape);
    if (!row) { cli_error("out of memory"); return 0; }
    show_progress(r, in_path);
    if (!out_open(&f, out_path, 0)) return 0;
    if (o->masks) {
        json_buf h = {NULL, 0, 0, 0};
        if (tensorfile_npy_header(&h, "|u1", a.fortran_order, a.shape, a.rank) < 0) { cli_error("out of memory"); free(h.s); out_abort(&f); return 0; }
        out_write(&f, h.s, h.len);
        free(h.s);
    } else {
        out_write(&f, in->data, a.data_offset);   /* the same header, byte for byte */
    }
    if (!prune_matrix(r, &f, row, in_path, data, stored, a.fortran_order ? &a : NULL, a.dtype, sel.rows, sel.cols, gram)) {
        out_abort(&f);
        return 0;
    }
    r->bytes_done = a.nbytes;
    return out_commit(&f, o->force);
}

/* ==================================================================================
   sharded checkpoints: a directory with model.safetensors.index.json
   ================================================================================== */
#define INDEX_NAME "model.safetensors.index.json"

static int join_path(char *out, const char *dir, const char *name)
{
    return (size_t)snprintf(out, PATH_MAX, "%s/%s", dir, name) < PATH_MAX;
}

/* Removes a previous output directory that --force replaces: only regular files, and
   only a checkpoint directory or an empty one (never a tree it did not write). */
static int old_output_removable(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0, has_index = 0, other = 0;
    if (!d) return 0;
    while ((e = readdir(d)) != NULL) {
        char p[PATH_MAX];
        struct stat sb;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (!join_path(p, dir, e->d_name) || lstat(p, &sb) != 0 || !S_ISREG(sb.st_mode)) other = 1;
        if (!strcmp(e->d_name, INDEX_NAME)) has_index = 1;
        files++;
    }
    closedir(d);
    return !other && (files == 0 || has_index);
}

static void remove_flat_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (d) {
        while ((e = readdir(d)) != NULL) {
            char p[PATH_MAX];
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            if (join_path(p, dir, e->d_name)) unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static int by_string(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* the first tensor the index puts in shard s that the shard does not hold, or NULL
   (sorted names and binary search: an index may name many thousands) */
static const char *missing_from_shard(const tensorfile_index *ix, size_t s, const tensorfile_safetensors *st, int *oom)
{
    const char **names = (const char **)malloc((st->count + 1) * sizeof *names);
    const char *missing = NULL;
    size_t i;
    *oom = !names;
    if (!names) return NULL;
    for (i = 0; i < st->count; i++) names[i] = st->tensor[i].name;
    qsort(names, st->count, sizeof *names, by_string);
    for (i = ix->shard_first[s]; i < ix->shard_first[s + 1] && !missing; i++)
        if (!bsearch(&ix->by_shard[i].tensor, names, st->count, sizeof *names, by_string)) missing = ix->by_shard[i].tensor;
    free(names);
    return missing;
}

static int prune_sharded(run_state *r, const char *in_dir, const char *out_dir)
{
    const cli_options *o = r->o;
    char path[PATH_MAX], err[TENSORFILE_ERR_LEN], parent[PATH_MAX], base[PATH_MAX];
    mapped_file idx_file;
    tensorfile_index ix;
    selection_tally tally;
    uint64_t total_out = 0;
    size_t s, i;
    int ok = 1;
    struct stat sb;
    memset(&tally, 0, sizeof tally);
    if (!join_path(path, in_dir, INDEX_NAME) || !map_file(path, &idx_file)) return 0;
    if (tensorfile_index_parse((const char *)idx_file.data, idx_file.len, &ix, err) < 0) {
        cli_error("%s: %s", path, err);
        unmap_file(&idx_file);
        return 0;
    }
    if (lstat(out_dir, &sb) == 0 && S_ISLNK(sb.st_mode)) {
        cli_error("%s: is a symbolic link; give the directory it points to", out_dir);
        ok = 0;
    } else if (stat(out_dir, &sb) == 0) {
        if (!o->force) { cli_error("%s: exists (use --force to replace it)", out_dir); ok = 0; }
        else if (!S_ISDIR(sb.st_mode) || !old_output_removable(out_dir)) {
            cli_error("%s: --force replaces only a checkpoint directory of plain files; remove it yourself", out_dir);
            ok = 0;
        }
    }
    for (s = 0; ok && s < ix.shard_count; s++) {   /* sizes, for the progress bar */
        if (!join_path(path, in_dir, ix.shard_name[s]) || stat(path, &sb) != 0) { cli_error("%s: shard %s: %s", in_dir, ix.shard_name[s], strerror(errno)); ok = 0; }
        else r->bytes_total += (uint64_t)sb.st_size;
    }
    for (s = 0; ok && s < ix.shard_count; s++) {   /* what would be pruned: when nothing, no output at all */
        mapped_file shard;
        tensorfile_safetensors st;
        int oom;
        const char *missing;
        if (!join_path(path, in_dir, ix.shard_name[s]) || !map_file(path, &shard)) { ok = 0; break; }
        if (tensorfile_safetensors_parse(shard.data, shard.len, &st, err) < 0) {
            cli_error("%s: %s", path, err);
            ok = 0;
        } else {
            if ((missing = missing_from_shard(&ix, s, &st, &oom)) != NULL || oom) {
                if (oom) cli_error("out of memory");
                else cli_error("%s: the index puts tensor \"%.60s\" in %s, which does not hold it", in_dir, missing, ix.shard_name[s]);
                ok = 0;
            }
            tally_selection(o, &st, &tally);
            if (ok && r->grams.path && !check_grams(r, &st)) ok = 0;
            tensorfile_safetensors_free(&st);
        }
        unmap_file(&shard);
    }
    if (ok && tally.pruned == 0) {
        report_nothing_to_prune(in_dir, o, &tally);
        r->nothing_to_prune = 1;
        ok = 0;
    }
    if (ok && r->grams.path && !grams_complete(r, tally.pruned)) ok = 0;
    if (ok && (!split_dir(out_dir, parent, base) ||
               (size_t)snprintf(temp_dir, PATH_MAX, "%s/.%.200s.tsenor-XXXXXX", parent, base) >= PATH_MAX)) {
        cli_error("%s: bad output path", out_dir);
        ok = 0;
    }
    if (ok) {
        temp_dir_set = 1;   /* before it exists (see out_open): rmdir of a name not made yet is harmless */
        if (!mkdtemp(temp_dir)) {
            cli_error("%s: cannot create a temporary directory beside it: %s", out_dir, strerror(errno));
            temp_dir_set = 0;
            ok = 0;
        } else {
            const mode_t mask = umask(0);
            umask(mask);
            chmod(temp_dir, 0777 & ~mask);   /* mkdtemp makes 0700; OUT is an ordinary directory */
        }
    }
    for (s = 0; ok && s < ix.shard_count; s++) {
        mapped_file shard;
        tensorfile_safetensors st;
        char out_path[PATH_MAX];
        uint64_t bytes = 0;
        if (!join_path(path, in_dir, ix.shard_name[s]) || !join_path(out_path, temp_dir, ix.shard_name[s]) || !map_file(path, &shard)) { ok = 0; break; }
        if (tensorfile_safetensors_parse(shard.data, shard.len, &st, err) < 0) {
            cli_error("%s: %s", path, err);
            unmap_file(&shard);
            ok = 0;
            break;
        }
        {
            int oom;
            const char *missing = missing_from_shard(&ix, s, &st, &oom);
            if (oom) { cli_error("out of memory"); ok = 0; }
            else if (missing) {
                cli_error("%s: the index puts tensor \"%.60s\" in %s, which does not hold it", in_dir, missing, ix.shard_name[s]);
                ok = 0;
            }
        }
        if (ok) ok = prune_safetensors_file(r, path, &shard, &st, out_path, 1, &bytes);
        total_out += bytes;
        tensorfile_safetensors_free(&st);
        unmap_file(&shard);
    }
    if (ok) {   /* the index: the input's metadata with total_size recomputed, then the map */
        json_buf b = {NULL, 0, 0, 0};
        out_file f;
        char out_path[PATH_MAX];
        size_t k;
        json_buf_str(&b, "{\n  \"metadata\": {");
        if (ix.metadata >= 0) {
            const json_node *m = &ix.doc.node[ix.metadata];
            for (i = 0, k = (size_t)ix.metadata + 1; i < m->count; i++) {
                const json_node *key = &ix.doc.node[k];
                if (strcmp(key->str, "total_size") && !is_tsenor_key(key->str, key->len)) {
                    json_buf_node(&b, &ix.doc, k);
                    json_buf_str(&b, ": ");
                    json_buf_node(&b, &ix.doc, k + 1);
                    json_buf_str(&b, ", ");
                }
                k = ix.doc.node[k + 1].end;
            }
        }
        json_buf_printf(&b, "\"total_size\": %llu", (unsigned long long)total_out);
        add_tsenor_metadata(&b, o, 0);
        json_buf_str(&b, "},\n  \"weight_map\": {");
        for (i = 0; i < ix.count; i++) {
            json_buf_str(&b, i ? ",\n    " : "\n    ");
            json_buf_string(&b, ix.tensor[i], strlen(ix.tensor[i]));
            json_buf_str(&b, ": ");
            json_buf_string(&b, ix.shard[i], strlen(ix.shard[i]));
        }
        json_buf_str(&b, "\n  }");
        for (i = 0, k = 1; i < ix.doc.node[0].count; i++) {   /* other top-level members, as they were */
            const json_node *key = &ix.doc.node[k];
            if (strcmp(key->str, "metadata") && strcmp(key->str, "weight_map")) {
                json_buf_str(&b, ",\n  ");
                json_buf_node(&b, &ix.doc, k);
                json_buf_str(&b, ": ");
                json_buf_node(&b, &ix.doc, k + 1);
            }
            k = ix.doc.node[k + 1].end;
        }
        json_buf_str(&b, "\n}\n");
        if (b.oom) { cli_error("out of memory"); ok = 0; }
        else if (!join_path(out_path, temp_dir, INDEX_NAME) || !out_open(&f, out_path, 1)) ok = 0;
        else {
            out_write(&f, b.s, b.len);
            ok = out_commit(&f, 0);
        }
        free(b.s);
    }
    if (ok) {   /* the whole directory appears at once */
        char old[PATH_MAX];
        int replaced = 0;
        fsync_dir(temp_dir);
        if (o->force && lstat(out_dir, &sb) == 0) {
            if ((size_t)snprintf(old, PATH_MAX, "%s.tsenor-old-%ld", out_dir, (long)getpid()) >= PATH_MAX) {
                cli_error("%s: path too long", out_dir);
                ok = 0;
            } else {
                strcpy(moved_from, out_dir);
                strcpy(moved_to, old);
                if (rename(out_dir, old) != 0) {
                    cli_error("%s: cannot move the old output aside: %s", out_dir, strerror(errno));
                    ok = 0;
                } else {
                    old_output_aside = 1;
                    replaced = 1;
                }
            }
        } else if (!o->force && lstat(out_dir, &sb) == 0) {   /* appeared while we worked */
            cli_error("%s: exists (use --force to replace it)", out_dir);
            ok = 0;
        }
        if (ok && rename(temp_dir, out_dir) != 0) {
            cli_error("%s: %s", out_dir, strerror(errno));
            if (replaced) rename(old, out_dir);
            old_output_aside = 0;
            ok = 0;
        }
        if (ok) {
            old_output_aside = 0;
            forget_temporaries();
            fsync_dir(parent);
            if (replaced) remove_flat_dir(old);
        }
    }
    if (!ok) {
        remove_temporaries();
        forget_temporaries();
    }
    tensorfile_index_free(&ix);
    unmap_file(&idx_file);
    return ok;
}

/* ==================================================================================
   check: every selected tensor keeps at most N nonzeros per block row and column
   ================================================================================== */

/* the nonzero pattern of numel F32/F16/BF16 values into mask (-0.0 is a zero) */
static void nonzero_pattern(const uint8_t *data, tensorfile_dtype dtype, size_t numel, uint8_t *mask)
{
    size_t i;
    if (dtype == TENSORFILE_F32) {
        for (i = 0; i < numel; i++) {
            uint32_t v;
            memcpy(&v, data + 4 * i, 4);
            mask[i] = (v & 0x7FFFFFFFu) != 0;
        }
    } else {
        for (i = 0; i < numel; i++) {
            uint16_t v;
            memcpy(&v, data + 2 * i, 2);
            mask[i] = (v & 0x7FFFu) != 0;
        }
    }
}

/* 1 pass, 0 fail, -1 error. The rule: at most n in every row and column of every
   block (the selection takes only shapes that are whole blocks). A U8 tensor is the
   mask itself, and must hold only 0 and 1. */
static int check_matrix(run_state *r, const char *label, const uint8_t *data, tensorfile_dtype dtype, uint64_t rows, uint64_t cols)
{
    const int n = r->o->n, m = r->o->m;
    const size_t numel = (size_t)(rows * cols);
    const uint8_t *mask = data;
    tsenor_check_report rep;
    tsenor_status s;
    if (dtype != TENSORFILE_U8) {
        if (!grow((void **)&r->mask, &r->mask_cap, numel)) { cli_error("%s: out of memory", label); return -1; }
        nonzero_pattern(data, dtype, numel, r->mask);
        mask = r->mask;
    }
    s = tsenor_check_mask(mask, (size_t)rows, (size_t)cols, (size_t)cols, n, m, TSENOR_CHECK_TRANSPOSABLE | TSENOR_CHECK_AT_MOST, &rep);
    if (s == TSENOR_OK) {
        printf("ok    %s: transposable %d:%d\n", label, n, m);
        return 1;
    }
    if (s != TSENOR_ERR_INVALID_MASK) { cli_error("%s: %s", label, tsenor_status_string(s)); return -1; }
    printf("FAIL  %s: %zu of %zu blocks break %d:%d (at most %d per row and column); first: block (row %zu, col %zu), ", label,
           rep.bad_blocks, rep.blocks, n, m, n, rep.row - rep.row % (size_t)m, rep.col - rep.col % (size_t)m);
    if (rep.bad_value) printf("the byte at row %zu, col %zu is %d, not 0 or 1\n", rep.row, rep.col, rep.count);
    else if (rep.column) printf("col %zu keeps %d\n", rep.col, rep.count);
    else printf("row %zu keeps %d\n", rep.row, rep.count);
    return 0;
}

static int check_safetensors(run_state *r, const mapped_file *src, const tensorfile_safetensors *st, size_t *checked, size_t *failed)
{
    size_t i;
    for (i = 0; i < st->count; i++) {
        const tensorfile_tensor *t = &st->tensor[i];
        const selection sel = select_tensor(r->o, t->name, 1, t->dtype, t->rank, t->shape, 1);
        int rc;
        char label[160], name[104];
        if (!sel.prune) continue;
        printable(name, sizeof name, t->name);
        snprintf(label, sizeof label, "%s (%s %llux%llu)", name, tensorfile_dtypes[t->dtype].name, (unsigned long long)sel.rows,
                 (unsigned long long)sel.cols);
        rc = check_matrix(r, label, st->data + t->begin, t->dtype, sel.rows, sel.cols);
        release_pages(src, st->data + t->begin, t->nbytes);
        if (rc < 0) return 0;
        (*checked)++;
        if (!rc) (*failed)++;
    }
    return 1;
}

/* check without --nm: the pattern that prune recorded as tsenor.pattern (value NULL:
   the file has none). 1 with o->n, o->m set, else 0 after saying why. */
static int pattern_from_metadata(cli_options *o, const char *in, const char *value, size_t len)
{
    char text[32];
    if (!value) {
        cli_error("%s: no tsenor.pattern in its metadata (tsenor prune writes one); give --nm N:M", in);
        return 0;
    }
    snprintf(text, sizeof text, "%.*s", (int)(len < sizeof text ? len : sizeof text - 1), value);
    if (len >= sizeof text || strlen(text) != len || parse_pattern(text, &o->n, &o->m) != 1) {
        cli_error("%s: its tsenor.pattern '%s%s' is not N:M with 1 <= N < M <= %d; give --nm N:M", in, text,
                  len >= sizeof text ? "..." : "", TSENOR_MAX_M);
        return 0;
    }
    printf("pattern %d:%d, from the tsenor.pattern of %s\n", o->n, o->m, in);
    return 1;
}

static int run_check(run_state *r, cli_options *o, const char *in, int is_dir)
{
    char err[TENSORFILE_ERR_LEN], path[PATH_MAX];
    size_t checked = 0, failed = 0;
    if (is_dir) {
        mapped_file idx_file;
        tensorfile_index ix;
        size_t s;
        if (!join_path(path, in, INDEX_NAME) || !map_file(path, &idx_file)) return 2;
        if (tensorfile_index_parse((const char *)idx_file.data, idx_file.len, &ix, err) < 0) {
            cli_error("%s: %s", path, err);
            unmap_file(&idx_file);
            return 2;
        }
        if (!o->n) {   /* the index's metadata, where prune writes it for a sharded checkpoint */
            const long at = ix.metadata >= 0 ? json_member(&ix.doc, (size_t)ix.metadata, "tsenor.pattern") : -1;
            const json_node *v = at >= 0 ? &ix.doc.node[at] : NULL;
            if (!pattern_from_metadata(o, path, v ? (v->type == JSON_STRING ? v->str : "") : NULL, v && v->type == JSON_STRING ? v->len : 0)) {
                tensorfile_index_free(&ix);
                unmap_file(&idx_file);
                return 2;
            }
        }
        for (s = 0; s < ix.shard_count; s++) {
            mapped_file shard;
            tensorfile_safetensors st;
            int ok;
            if (!join_path(path, in, ix.shard_name[s]) || !map_file(path, &shard)) { tensorfile_index_free(&ix); unmap_file(&idx_file); return 2; }
            if (tensorfile_safetensors_parse(shard.data, shard.len, &st, err) < 0) {
                cli_error("%s: %s", path, err);
                unmap_file(&shard);
                tensorfile_index_free(&ix);
                unmap_file(&idx_file);
                return 2;
            }
            ok = check_safetensors(r, &shard, &st, &checked, &failed);
            tensorfile_safetensors_free(&st);
            unmap_file(&shard);
            if (!ok) { tensorfile_index_free(&ix); unmap_file(&idx_file); return 2; }
        }
        tensorfile_index_free(&ix);
        unmap_file(&idx_file);
    } else {
        mapped_file f;
        if (!map_file(in, &f)) return 2;
        if (tensorfile_is_npy(f.data, f.len)) {
            tensorfile_npy a;
            selection sel;
            const uint8_t *data;
            int rc;
            if (tensorfile_npy_parse(f.data, f.len, &a, err) < 0) { cli_error("%s: %s", in, err); unmap_file(&f); return 2; }
            if (!o->n) { cli_error("%s: a .npy array has no metadata to hold its pattern; give --nm N:M", in); unmap_file(&f); return 2; }
            sel = select_tensor(r->o, NULL, 0, a.dtype, a.rank, a.shape, 1);
            if (!sel.prune || a.big_endian) {
                cli_error("%s: %s", in, a.big_endian ? "big-endian arrays are not supported" : sel.why + strlen("dense: "));
                unmap_file(&f);
                return 2;
            }
            data = f.data + a.data_offset;
            if (a.fortran_order) {   /* checked in C order, where rows and columns are the array's */
                if (!grow(&r->aligned, &r->aligned_cap, (size_t)a.nbytes)) { cli_error("%s: out of memory", in); unmap_file(&f); return 2; }
                fortran_reorder(data, (uint8_t *)r->aligned, a.shape, a.rank, tensorfile_dtypes[a.dtype].size, 1);
                data = (const uint8_t *)r->aligned;
            }
            rc = check_matrix(r, in, data, a.dtype, sel.rows, sel.cols);
            unmap_file(&f);
            if (rc < 0) return 2;
            checked = 1;
            failed = rc == 0;
        } else {
            tensorfile_safetensors st;
            const char *pattern = NULL;
            size_t k, pattern_len = 0;
            int ok;
            if (!tensorfile_is_safetensors(f.data, f.len)) {
                cli_error("%s: neither a safetensors file nor a .npy array", in);
                unmap_file(&f);
                return 2;
            }
            if (tensorfile_safetensors_parse(f.data, f.len, &st, err) < 0) { cli_error("%s: %s", in, err); unmap_file(&f); return 2; }
            for (k = 0; k < st.meta_count; k++)
                if (st.meta[k].key_len == 14 && memcmp(st.meta[k].key, "tsenor.pattern", 14) == 0) {
                    pattern = st.meta[k].value;
                    pattern_len = st.meta[k].value_len;
                }
            if (!o->n && !pattern_from_metadata(o, in, pattern, pattern_len)) {
                tensorfile_safetensors_free(&st);
                unmap_file(&f);
                return 2;
            }
            ok = check_safetensors(r, &f, &st, &checked, &failed);
            tensorfile_safetensors_free(&st);
            unmap_file(&f);
            if (!ok) return 2;
        }
    }
    if (checked == 0) printf("no tensor of %s is selected for %d:%d: nothing to check\n", in, r->o->n, r->o->m);
    else printf("%zu of %zu tensors transposable %d:%d\n", checked - failed, checked, r->o->n, r->o->m);
    return failed ? 1 : 0;
}

/* ==================================================================================
   main
   ================================================================================== */
static void print_table(const run_state *r)
{
    size_t i, w = 6;
    for (i = 0; i < r->n_rows; i++) {
        const size_t l = strlen(r->rows[i].name);
        if (l > w) w = l;
    }
    if (w > 60) w = 60;
    /* the error column comes with --gram: a run without one is laid out as before */
    printf("%-*s  %-14s %-5s %8s", (int)w, "tensor", "shape", "dtype", "|w| kept");
    if (r->grams.path) printf(" %10s", "rel error");
    printf(" %9s  %s\n", "ms", "action");
    for (i = 0; i < r->n_rows; i++) {
        const row_report *row = &r->rows[i];
        char kept[16] = "", error[24] = "";
        if (row->pruned) snprintf(kept, sizeof kept, "%7.2f%%", row->kept_pct);
        if (row->has_error) snprintf(error, sizeof error, "%.4g", row->error);
        else if (row->pruned) snprintf(error, sizeof error, "-");
        printf("%-*.*s  %-14s %-5s %8s", (int)w, (int)w, row->name, row->shape, tensorfile_dtypes[row->dtype].name, kept);
        if (r->grams.path) printf(" %10s", error);
        printf(" %9.2f  %s\n", row->ms, row->action);
    }
}

static cli_options o;   /* static: the patterns are freed at exit, whichever way main ends */

static void free_patterns(void)
{
    int k;
    for (k = 0; k < o.n_include; k++) regfree(&o.include[k]);
    for (k = 0; k < o.n_exclude; k++) regfree(&o.exclude[k]);
    for (k = 0; k < n_default_compiled; k++) regfree(&default_exclude_re[k]);
}

int main(int argc, char **argv)
{
    run_state r;
    struct stat in_sb, out_sb;
    int rc, ok, is_dir;
    double t0;
    atexit(free_patterns);
    signal(SIGPIPE, SIG_IGN);   /* `tsenor ... | head`: the table is not worth an abnormal exit */
    rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    memset(&r, 0, sizeof r);
    r.o = &o;
    r.progress = !o.quiet && isatty(2);
    if (stat(o.in, &in_sb) != 0) { cli_error("%s: %s", o.in, strerror(errno)); return 2; }
#ifdef TSENOR_CUDA
    if (o.gpu && tsenor_cuda_device_count() < 1) {   /* fail before any output exists */
        cli_error("--gpu: no usable CUDA device");
        return 2;
    }
#endif
    is_dir = S_ISDIR(in_sb.st_mode);
    if (!strcmp(o.command, "check")) {
        rc = run_check(&r, &o, o.in, is_dir);
        free(r.mask);
        free(r.aligned);
        return rc;
    }
    if (stat(o.out, &out_sb) == 0 && out_sb.st_dev == in_sb.st_dev && out_sb.st_ino == in_sb.st_ino) {
        cli_error("%s: OUT is the input; the input is never modified", o.out);
        return 2;
    }
    if (o.gram) {
        struct stat gram_sb;
        if (stat(o.gram, &gram_sb) != 0) { cli_error("%s: %s", o.gram, strerror(errno)); return 2; }
        if (stat(o.out, &out_sb) == 0 && out_sb.st_dev == gram_sb.st_dev && out_sb.st_ino == gram_sb.st_ino) {
            cli_error("%s: OUT is the grams file; inputs are never modified", o.out);
            return 2;
        }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    signal(SIGBUS, on_sigbus);
    t0 = now_seconds();
    if (is_dir) {
        ok = (!o.gram || open_grams(&r, 0)) && prune_sharded(&r, o.in, o.out);
    } else {
        mapped_file f;
        char err[TENSORFILE_ERR_LEN];
        if (!map_file(o.in, &f)) return 2;
        if (o.gram && !open_grams(&r, tensorfile_is_npy(f.data, f.len))) {
            ok = 0;
        } else if (!o.force && stat(o.out, &out_sb) == 0) {
            cli_error("%s: exists (use --force to replace it)", o.out);
            ok = 0;
        } else if (tensorfile_is_npy(f.data, f.len)) {
            ok = prune_npy(&r, o.in, &f, o.out);
        } else {
            tensorfile_safetensors st;
            selection_tally tally;
            memset(&tally, 0, sizeof tally);
            if (!tensorfile_is_safetensors(f.data, f.len)) {
                cli_error("%s: neither a safetensors file nor a .npy array", o.in);
                ok = 0;
            } else if (tensorfile_safetensors_parse(f.data, f.len, &st, err) < 0) {
                cli_error("%s: %s", o.in, err);
                ok = 0;
            } else {
                uint64_t bytes;
                tally_selection(&o, &st, &tally);
                if (tally.pruned == 0) {   /* before any output exists */
                    report_nothing_to_prune(o.in, &o, &tally);
                    r.nothing_to_prune = 1;
                    ok = 0;
                } else if (o.gram && (!check_grams(&r, &st) || !grams_complete(&r, tally.pruned))) {
                    ok = 0;
                } else {
                    r.bytes_total = st.data_len;
                    ok = prune_safetensors_file(&r, o.in, &f, &st, o.out, 0, &bytes);
                }
                tensorfile_safetensors_free(&st);
            }
        }
        unmap_file(&f);
    }
    clear_progress(&r);
    if (ok && !o.quiet) {
        const double secs = now_seconds() - t0;
        char with[160], errors[160] = "";
        if (o.prune) snprintf(with, sizeof with, "%s (mask solver %s)", tsenor_prune_method_string(o.prune), tsenor_method_string(o.method));
        else snprintf(with, sizeof with, "%s", tsenor_method_string(o.method));
        if (r.with_error)
            snprintf(errors, sizeof errors, "; layer error mean %.4g, max %.4g", r.error_sum / (double)r.with_error, r.error_max);
        if (r.without_gram)
            snprintf(errors + strlen(errors), sizeof errors - strlen(errors), "; %zu without a gram (magnitude)", r.without_gram);
        print_table(&r);
        printf("pruned %zu tensors (%.2f M weights) to %s%d:%d with %s on %s: %.2f%% of |w| kept%s; "
               "copied %zu; %.2f s (%.2f s solving); wrote %s\n",
               r.pruned, 1e-6 * (double)r.pruned_elements, o.method == TSENOR_METHOD_ROWWISE ? "row-wise " : "transposable ",
               o.n, o.m, with, r.backend ? r.backend : "-",
               r.total > 0 ? 100.0 * r.kept / r.total : 100.0, errors, r.copied, secs, r.solve_seconds, o.out);
    }
    close_grams(&r.grams);
    free(r.mask);
    free(r.stored_mask);
    free(r.aligned);
    free(r.weights);
    free(r.reordered);
    free(r.gram_copy);
    free(r.rows);
    return ok ? 0 : r.nothing_to_prune ? 1 : 2;
}
