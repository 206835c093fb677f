/* gram_host.c - _core.gram_host(x, gram, threads): gram += x^T x by tsenor_gram_f32 on
   host memory through the buffer protocol. x: 2-D float32 (tokens x cols, rows with unit
   inner stride); gram: writable cols x cols float32, accumulated in place (left as it was
   on any error). threads: 0 = all. */
#include "ext.h"

PyObject *tsenor_ext_gram_host(PyObject *self, PyObject *args)
{
    PyObject *x_obj, *gram_obj, *result = NULL;
    int threads;
    Py_buffer xv, gv;
    tsenor_ext_matrix xm, gm;
    tsenor_status status;
    (void)self;

    if (!PyArg_ParseTuple(args, "OOi", &x_obj, &gram_obj, &threads)) return NULL;
    if (threads < 0) return tsenor_ext_invalid("threads=%d (need >= 1, or 0 for all)", threads);
    if (PyObject_GetBuffer(x_obj, &xv, PyBUF_STRIDES) != 0) return NULL;
    if (PyObject_GetBuffer(gram_obj, &gv, PyBUF_STRIDES | PyBUF_WRITABLE) != 0) {
        PyBuffer_Release(&xv);
        return NULL;
    }
    if (tsenor_ext_matrix_of(&xv, 4, "x", &xm) != 0 || tsenor_ext_matrix_of(&gv, 4, "gram", &gm) != 0) goto done;
    if (gm.rows != xm.cols || gm.cols != xm.cols) {
        tsenor_ext_invalid("gram is %zu x %zu, x has %zu columns (gram must be cols x cols)", gm.rows, gm.cols, xm.cols);
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    status = tsenor_gram_f32((const float *)xv.buf, xm.rows, xm.cols, xm.ld, (float *)gv.buf, gm.ld, threads);
    Py_END_ALLOW_THREADS
    if (status != TSENOR_OK) {
        tsenor_ext_fail(status, NULL);
        goto done;
    }
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&gv);
    PyBuffer_Release(&xv);
    return result;
}
