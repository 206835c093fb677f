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
