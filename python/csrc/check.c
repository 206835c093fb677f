/* check.c - _core.check(mask, n, m, flags) -> (valid, blocks, bad_blocks, row, col,
   column, count, bad_value): tsenor_check_mask on a 2-D byte buffer read in place
   (rows with unit inner stride). flags: TSENOR_CHECK_TRANSPOSABLE | TSENOR_CHECK_AT_MOST. */
#include "ext.h"

PyObject *tsenor_ext_check(PyObject *self, PyObject *args)
{
    PyObject *mask_obj, *result = NULL;
    int n, m;
    unsigned int flags;
    Py_buffer view;
    tsenor_ext_matrix mm;
    tsenor_check_report report;
    tsenor_status status;
    (void)self;

    if (!PyArg_ParseTuple(args, "OiiI", &mask_obj, &n, &m, &flags)) return NULL;
    if (m < 2 || m > TSENOR_MAX_M || n < 1 || n >= m)
        return tsenor_ext_invalid("n=%d, m=%d (need 1 <= n < m <= %d)", n, m, TSENOR_MAX_M);
    if (PyObject_GetBuffer(mask_obj, &view, PyBUF_STRIDES) != 0) return NULL;
    if (tsenor_ext_matrix_of(&view, 1, "the mask", &mm) != 0) goto done;
    Py_BEGIN_ALLOW_THREADS
    status = tsenor_check_mask((const uint8_t *)view.buf, mm.rows, mm.cols, mm.ld, n, m, flags, &report);
    Py_END_ALLOW_THREADS
    if (status != TSENOR_OK && status != TSENOR_ERR_INVALID_MASK) {
        tsenor_ext_fail(status, NULL);
        goto done;
    }
    result = Py_BuildValue("(NnnnnNiN)", PyBool_FromLong(status == TSENOR_OK), (Py_ssize_t)report.blocks,
                           (Py_ssize_t)report.bad_blocks, (Py_ssize_t)report.row, (Py_ssize_t)report.col,
                           PyBool_FromLong(report.column), report.count, PyBool_FromLong(report.bad_value));
done:
    PyBuffer_Release(&view);
    return result;
}
