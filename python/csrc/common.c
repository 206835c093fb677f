/* common.c - errors, solver options and buffer layouts shared by the entry points. */
#include "ext.h"

#include <stdarg.h>
#include <string.h>

#ifdef TSENOR_CUDA
#include "tsenor_cuda.h"
const int tsenor_ext_has_cuda = 1;
#else
const int tsenor_ext_has_cuda = 0;
#endif

PyObject *tsenor_ext_fail(tsenor_status status, const char *detail)
{
    PyObject *type = PyExc_ValueError;
    const char *text = tsenor_status_string(status);
    if (status == TSENOR_ERR_OUT_OF_MEMORY) type = PyExc_MemoryError;
    if (status == TSENOR_ERR_DEVICE) {
        type = PyExc_RuntimeError;
#ifdef TSENOR_CUDA
        /* CUDA's own words say what is missing (no driver, no device, ...) */
        if (!detail) detail = tsenor_cuda_last_error();
#endif
    }
    if (detail && *detail)
        PyErr_Format(type, "%s: %s", text, detail);
    else
        PyErr_SetString(type, text);
    return NULL;
}

PyObject *tsenor_ext_invalid(const char *format, ...)
{
    char detail[512];
    va_list args;
    va_start(args, format);
    PyOS_vsnprintf(detail, sizeof detail, format, args);
    va_end(args);
    return tsenor_ext_fail(TSENOR_ERR_INVALID_ARGUMENT, detail);
}

/* the method whose tsenor_method_string is name; DEFAULT (0) when none is */
static tsenor_method method_named(const char *name)
{
    int method;
    for (method = TSENOR_METHOD_TSENOR; method <= TSENOR_METHOD_ROWWISE; method++)
        if (strcmp(name, tsenor_method_string((tsenor_method)method)) == 0) return (tsenor_method)method;
    return TSENOR_METHOD_DEFAULT;
}

/* names the options that were given (0 means "the default" and is never wrong) */
static void invalid_options(int iterations, double tau, int threads)
{
    char given[200] = "";
    size_t used = 0;
    if (iterations != 0) used += (size_t)PyOS_snprintf(given + used, sizeof given - used, " iterations=%d", iterations);
    if (tau != 0.0) used += (size_t)PyOS_snprintf(given + used, sizeof given - used, " tau=%g", tau);
    if (threads != 0) PyOS_snprintf(given + used, sizeof given - used, " threads=%d", threads);
    tsenor_ext_invalid("options out of range:%s", given);
}

int tsenor_ext_options(int n, int m, const char *method, int iterations, double tau, int threads,
                       tsenor_options *opt)
{
    tsenor_options resolved;
    memset(opt, 0, sizeof *opt);
    opt->n = n;
    opt->m = m;
    opt->method = method_named(method);
    opt->iterations = iterations;
    opt->tau = (float)tau;
    opt->threads = threads;
    if (opt->method == TSENOR_METHOD_DEFAULT) {
        tsenor_ext_invalid("unknown method '%s' (one of %s, %s, %s, %s)", method,
                           tsenor_method_string(TSENOR_METHOD_TSENOR), tsenor_method_string(TSENOR_METHOD_EXACT),
                           tsenor_method_string(TSENOR_METHOD_GREEDY), tsenor_method_string(TSENOR_METHOD_ROWWISE));
        return -1;
    }
    /* checked here, before any memory is touched, so the message can name the values */
    if (tsenor_resolve_options(opt, &resolved) != TSENOR_OK) {
        if (m < 2 || m > TSENOR_MAX_M || n < 1 || n >= m)
            tsenor_ext_invalid("n=%d, m=%d (need 1 <= n < m <= %d)", n, m, TSENOR_MAX_M);
        else
            invalid_options(iterations, tau, threads);
        return -1;
    }
    return 0;
}

int tsenor_ext_matrix_of(const Py_buffer *view, Py_ssize_t itemsize, const char *name, tsenor_ext_matrix *out)
{
    Py_ssize_t rows, cols, row_stride;
    if (view->ndim != 2) {
        tsenor_ext_invalid("%s must be 2-D, got %d-D", name, view->ndim);
        return -1;
    }
    if (view->itemsize != itemsize) {
        tsenor_ext_invalid("%s has %zd-byte elements, expected %zd", name, view->itemsize, itemsize);
        return -1;
    }
    rows = view->shape[0];
    cols = view->shape[1];
    if (rows < 1 || cols < 1) {
        tsenor_ext_invalid("%s is empty (shape %zd x %zd)", name, rows, cols);
        return -1;
    }
    /* one row needs no leading dimension and one column no inner stride */
    row_stride = rows == 1 ? cols * itemsize : view->strides[0];
    if ((cols > 1 && view->strides[1] != itemsize) || row_stride <= 0 || row_stride % itemsize != 0 ||
        row_stride / itemsize < cols || (uintptr_t)view->buf % (uintptr_t)itemsize != 0) {
        tsenor_ext_invalid("%s's rows must be aligned, with unit inner stride and a leading dimension >= cols "
                           "(strides %zd, %zd bytes)", name, view->strides[0], view->strides[1]);
        return -1;
    }
    out->rows = (size_t)rows;
    out->cols = (size_t)cols;
    out->ld = (size_t)(row_stride / itemsize);
    return 0;
}

/* the pruning method whose tsenor_prune_method_string is name; DEFAULT (0) when none is */
static tsenor_prune_method prune_method_named(const char *name)
{
    int method;
    for (method = TSENOR_PRUNE_MAGNITUDE; method <= TSENOR_PRUNE_ALPS; method++)
        if (strcmp(name, tsenor_prune_method_string((tsenor_prune_method)method)) == 0)
            return (tsenor_prune_method)method;
    return TSENOR_PRUNE_DEFAULT;
}

int tsenor_ext_prune_options(int n, int m, const char *mask_method, int mask_iterations, double tau, int threads,
                             const char *method, double damping, int iterations, int cg_iterations, double rho,
                             tsenor_prune_options *opt)
{
    memset(opt, 0, sizeof *opt);
    if (tsenor_ext_options(n, m, mask_method, mask_iterations, tau, threads, &opt->mask) != 0) return -1;
    opt->method = prune_method_named(method);
    if (opt->method == TSENOR_PRUNE_DEFAULT) {
        tsenor_ext_invalid("unknown pruning method '%s' (one of %s, %s, %s, %s)", method,
                           tsenor_prune_method_string(TSENOR_PRUNE_MAGNITUDE), tsenor_prune_method_string(TSENOR_PRUNE_WANDA),
                           tsenor_prune_method_string(TSENOR_PRUNE_SPARSEGPT), tsenor_prune_method_string(TSENOR_PRUNE_ALPS));
        return -1;
    }
    opt->damping = (float)damping;
    opt->iterations = iterations;
    opt->cg_iterations = cg_iterations;
    opt->rho = (float)rho;
    return 0;
}

/* Whether the library takes these options: the options alone decide the outcome on a
   1 x 1 layer with a unit gram, so a refusal there is the options' fault. */
static int prune_options_accepted(const tsenor_prune_options *opt)
{
    const float w = 1.0f, gram = 1.0f;
    float out = 0.0f;
    uint8_t mask = 0;
    tsenor_prune_options probe = *opt;
    probe.mask.threads = 1;
    return tsenor_cpu_prune_f32(&w, 1, 1, 1, &gram, 1, &out, 1, &mask, 1, &probe, NULL) == TSENOR_OK;
}

PyObject *tsenor_ext_prune_fail(tsenor_status status, const tsenor_prune_options *opt, const char *detail)
{
    if (status != TSENOR_ERR_INVALID_ARGUMENT || detail) return tsenor_ext_fail(status, detail);
    if (!prune_options_accepted(opt))
        return tsenor_ext_invalid("options out of range: damping=%g iterations=%d cg_iterations=%d rho=%g",
                                  (double)opt->damping, opt->iterations, opt->cg_iterations, (double)opt->rho);
    return tsenor_ext_invalid("gram must be symmetric and positive definite after damping "
                              "(and no output may overlap an input)");
}

PyObject *tsenor_ext_prune_report(const tsenor_prune_report *r)
{
    return Py_BuildValue("(ddisdiidi)", r->error, r->seconds, r->iterations, r->backend ? r->backend : "",
                         r->projection_seconds, r->projections, r->cg_iterations, r->factor_seconds,
                         r->factorizations);
}

#ifdef TSENOR_CUDA
#include <cuda_runtime_api.h>

tsenor_status tsenor_ext_device_enter(int device, int *previous, char *why, size_t why_size)
{
    cudaError_t e;
    *previous = -1;
    if (tsenor_cuda_device_count() == 0) return TSENOR_ERR_DEVICE;
    if (cudaGetDevice(previous) != cudaSuccess) *previous = -1;
    if ((e = cudaSetDevice(device)) != cudaSuccess) {
        PyOS_snprintf(why, why_size, "cudaSetDevice(%d): %s", device, cudaGetErrorString(e));
        cudaGetLastError();
        return TSENOR_ERR_DEVICE;
    }
    return TSENOR_OK;
}

void tsenor_ext_device_leave(int device, int previous)
{
    if (previous >= 0 && previous != device) cudaSetDevice(previous);
}
#endif
