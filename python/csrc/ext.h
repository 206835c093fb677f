/* ext.h - what the files of the tsenor extension share.

   One file per Python entry point (mask_host.c, mask_device.c, check.c), each exporting
   a PyCFunction listed in module.c's method table; a new entry point is a new file and
   one line there. Arguments arrive already checked for type by the Python wrapper
   (src/tsenor/__init__.py); the C side checks memory layouts and lets the library check
   values, so every message about a value carries the library's status text. */
#ifndef TSENOR_EXT_H
#define TSENOR_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "tsenor.h"

/* Raises the exception that fits a failed status (ValueError for bad arguments and
   non-finite input, MemoryError, RuntimeError for the GPU) with the library's text,
   then ": " and detail when detail is not NULL. Returns NULL for `return fail(...)`. */
PyObject *tsenor_ext_fail(tsenor_status status, const char *detail);

/* ValueError with the invalid-argument text and a printf-style detail. */
PyObject *tsenor_ext_invalid(const char *format, ...);

/* Fills opt from the solver keywords shared by every mask call: n, m, the method's
   name, iterations, tau, threads (0 = the library's default). 0 on success, -1 with
   an exception set. */
int tsenor_ext_options(int n, int m, const char *method, int iterations, double tau, int threads,
                       tsenor_options *opt);

/* The layout of a 2-D buffer the library can read in place: rows, cols and the leading
   dimension in elements. 0 on success, -1 with ValueError set (name says which). */
typedef struct tsenor_ext_matrix {
    size_t rows, cols, ld;
} tsenor_ext_matrix;
int tsenor_ext_matrix_of(const Py_buffer *view, Py_ssize_t itemsize, const char *name, tsenor_ext_matrix *out);

PyObject *tsenor_ext_mask_host(PyObject *self, PyObject *args);
PyObject *tsenor_ext_mask_device(PyObject *self, PyObject *args);
PyObject *tsenor_ext_check(PyObject *self, PyObject *args);

/* 1 when the CUDA backend is compiled in. */
extern const int tsenor_ext_has_cuda;

#endif
