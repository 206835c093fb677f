/* prune_host.c - _core.prune_host(w, gram, out, mask, n, m, mask_method, mask_iterations,
   tau, threads, method, damping, iterations, cg_iterations, rho) -> report tuple:
   tsenor_cpu_prune_f32 on host memory, read and written in place through the buffer
   protocol. w: 2-D float32 (rows with unit inner stride); gram: cols x cols float32, or
   None (magnitude only); out: writable float32 of w's shape, receives W^; mask: writable
   bytes of w's shape, receives 0/1. Nothing is written unless the call succeeds. The
   report tuple is tsenor_ext_prune_report's. Always the CPU, as mask_host. */
#include "ext.h"

PyObject *tsenor_ext_prune_host(PyObject *self, PyObject *args)
{
    PyObject *w_obj, *gram_obj, *out_obj, *mask_obj, *result = NULL;
    const char *mask_method, *method;
    int n, m, mask_iterations, threads, iterations, cg_iterations;
    double tau, damping, rho;
    Py_buffer wv, gv, ov, mv;
    int have_w = 0, have_gram = 0, have_out = 0, have_mask = 0;
    tsenor_ext_matrix wm, gm, om, mm;
    tsenor_prune_options opt;
    tsenor_prune_report report;
    tsenor_status status;
    (void)self;

    if (!PyArg_ParseTuple(args, "OOOOiisidisdiid", &w_obj, &gram_obj, &out_obj, &mask_obj, &n, &m, &mask_method,
                          &mask_iterations, &tau, &threads, &method, &damping, &iterations, &cg_iterations, &rho))
        return NULL;
    if (tsenor_ext_prune_options(n, m, mask_method, mask_iterations, tau, threads, method, damping, iterations,
                                 cg_iterations, rho, &opt) != 0)
        return NULL;
    if (gram_obj == Py_None && opt.method != TSENOR_PRUNE_MAGNITUDE)
        return tsenor_ext_invalid("no gram: only method '%s' prunes without one",
                                  tsenor_prune_method_string(TSENOR_PRUNE_MAGNITUDE));
    if (PyObject_GetBuffer(w_obj, &wv, PyBUF_STRIDES) != 0) goto done;
    have_w = 1;
    if (gram_obj != Py_None) {
        if (PyObject_GetBuffer(gram_obj, &gv, PyBUF_STRIDES) != 0) goto done;
        have_gram = 1;
    }
    if (PyObject_GetBuffer(out_obj, &ov, PyBUF_STRIDES | PyBUF_WRITABLE) != 0) goto done;
    have_out = 1;
    if (PyObject_GetBuffer(mask_obj, &mv, PyBUF_STRIDES | PyBUF_WRITABLE) != 0) goto done;
    have_mask = 1;
    if (tsenor_ext_matrix_of(&wv, 4, "w", &wm) != 0 || (have_gram && tsenor_ext_matrix_of(&gv, 4, "gram", &gm) != 0) ||
        tsenor_ext_matrix_of(&ov, 4, "out", &om) != 0 || tsenor_ext_matrix_of(&mv, 1, "the mask", &mm) != 0)
        goto done;
    if (have_gram && (gm.rows != wm.cols || gm.cols != wm.cols)) {
        tsenor_ext_invalid("gram is %zu x %zu, w has %zu columns (gram must be cols x cols)", gm.rows, gm.cols, wm.cols);
        goto done;
    }
    if (om.rows != wm.rows || om.cols != wm.cols || mm.rows != wm.rows || mm.cols != wm.cols) {
        tsenor_ext_invalid("out is %zu x %zu and the mask %zu x %zu, w is %zu x %zu", om.rows, om.cols, mm.rows,
                           mm.cols, wm.rows, wm.cols);
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    status = tsenor_cpu_prune_f32((const float *)wv.buf, wm.rows, wm.cols, wm.ld,
                                  have_gram ? (const float *)gv.buf : NULL, have_gram ? gm.ld : 0,
                                  (float *)ov.buf, om.ld, (uint8_t *)mv.buf, mm.ld, &opt, &report);
    Py_END_ALLOW_THREADS
    if (status != TSENOR_OK) {
        tsenor_ext_prune_fail(status, &opt, NULL);
        goto done;
    }
    result = tsenor_ext_prune_report(&report);
done:
    if (have_mask) PyBuffer_Release(&mv);
    if (have_out) PyBuffer_Release(&ov);
    if (have_gram) PyBuffer_Release(&gv);
    if (have_w) PyBuffer_Release(&wv);
    return result;
}
