/* ext.h - what the files of the tsenor extension share.

   One file per Python entry point (mask_host.c, mask_device.c, check.c, prune_host.c,
   prune_device.c, gram_host.c, gram_device.c), each exporting
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

/* Fills opt from the pruning keywords: the mask's (as tsenor_ext_options; mask_method is
   its method), the pruning method's name, damping, iterations, cg_iterations and rho with
   tsenor_prune_options' meanings (0 = default). 0 on success, -1 with an exception set. */
int tsenor_ext_prune_options(int n, int m, const char *mask_method, int mask_iterations, double tau, int threads,
                             const char *method, double damping, int iterations, int cg_iterations, double rho,
                             tsenor_prune_options *opt);

/* Raises the exception of a failed pruning call. For TSENOR_ERR_INVALID_ARGUMENT it says
   whether the options or the data were at fault. Returns NULL. */
PyObject *tsenor_ext_prune_fail(tsenor_status status, const tsenor_prune_options *opt, const char *detail);

/* A filled tsenor_prune_report as the tuple (error, seconds, iterations, backend,
   projection_seconds, projections, cg_iterations, factor_seconds, factorizations). */
PyObject *tsenor_ext_prune_report(const tsenor_prune_report *report);

#ifdef TSENOR_CUDA
/* Makes CUDA device `device` current for the calling thread (no GIL needed); *previous
   receives the device to put back with tsenor_ext_device_leave, so that torch's current
   device is unchanged. TSENOR_OK, or TSENOR_ERR_DEVICE with why filled when CUDA said why. */
tsenor_status tsenor_ext_device_enter(int device, int *previous, char *why, size_t why_size);
void tsenor_ext_device_leave(int device, int previous);
#endif

PyObject *tsenor_ext_mask_host(PyObject *self, PyObject *args);
PyObject *tsenor_ext_mask_device(PyObject *self, PyObject *args);
PyObject *tsenor_ext_check(PyObject *self, PyObject *args);
PyObject *tsenor_ext_prune_host(PyObject *self, PyObject *args);
PyObject *tsenor_ext_prune_device(PyObject *self, PyObject *args);
PyObject *tsenor_ext_gram_host(PyObject *self, PyObject *args);
PyObject *tsenor_ext_gram_device(PyObject *self, PyObject *args);

/* 1 when the CUDA backend is compiled in. */
extern const int tsenor_ext_has_cuda;

#endif
