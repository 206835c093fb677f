/* mask_host.c - _core.mask_host(w, dtype, out, n, m, method, iterations, tau, threads):
   the CPU solver on host memory, read and written in place through the buffer
   protocol. w: 2-D, f32 (4-byte) or f16/bf16 bits (2-byte) elements, rows with unit
   inner stride; out: a writable 2-D byte buffer of the same shape that receives 0/1.
   Always tsenor_cpu_mask_*: host arrays never need a GPU, even in a CUDA build. */
#include "ext.h"

static tsenor_status solve(const void *w, tsenor_dtype dtype, const tsenor_ext_matrix *wm, uint8_t *mask,
                           size_t mask_ld, const tsenor_options *opt)
{
    switch (dtype) {
    case TSENOR_DTYPE_F32:
        return tsenor_cpu_mask_f32((const float *)w, wm->rows, wm->cols, wm->ld, mask, mask_ld, opt, NULL);
    case TSENOR_DTYPE_F16:
        return tsenor_cpu_mask_f16((const uint16_t *)w, wm->rows, wm->cols, wm->ld, mask, mask_ld, opt, NULL);
    case TSENOR_DTYPE_BF16:
        return tsenor_cpu_mask_bf16((const uint16_t *)w, wm->rows, wm->cols, wm->ld, mask, mask_ld, opt, NULL);
    }
    return TSENOR_ERR_INVALID_ARGUMENT;
}

PyObject *tsenor_ext_mask_host(PyObject *self, PyObject *args)
{
    PyObject *w_obj, *out_obj, *result = NULL;
    const char *method;
    int dtype, n, m, iterations, threads;
    double tau;
    Py_buffer wv, outv;
    tsenor_ext_matrix wm, mm;
    tsenor_options opt;
    tsenor_status status;
    (void)self;

    if (!PyArg_ParseTuple(args, "OiOiisidi", &w_obj, &dtype, &out_obj, &n, &m, &method, &iterations, &tau, &threads))
        return NULL;
    if (dtype < TSENOR_DTYPE_F32 || dtype > TSENOR_DTYPE_BF16) return tsenor_ext_invalid("unknown dtype code %d", dtype);
    if (tsenor_ext_options(n, m, method, iterations, tau, threads, &opt) != 0) return NULL;
    if (PyObject_GetBuffer(w_obj, &wv, PyBUF_STRIDES) != 0) return NULL;
    if (PyObject_GetBuffer(out_obj, &outv, PyBUF_STRIDES | PyBUF_WRITABLE) != 0) {
        PyBuffer_Release(&wv);
        return NULL;
    }
    if (tsenor_ext_matrix_of(&wv, dtype == TSENOR_DTYPE_F32 ? 4 : 2, "w", &wm) != 0 ||
        tsenor_ext_matrix_of(&outv, 1, "the mask", &mm) != 0)
        goto done;
    if (mm.rows != wm.rows || mm.cols != wm.cols) {
        tsenor_ext_invalid("the mask is %zu x %zu, w is %zu x %zu", mm.rows, mm.cols, wm.rows, wm.cols);
        goto done;
    }
    /* the GIL is released while solving: other Python threads run meanwhile */
    Py_BEGIN_ALLOW_THREADS
    status = solve(wv.buf, (tsenor_dtype)dtype, &wm, (uint8_t *)outv.buf, mm.ld, &opt);
    Py_END_ALLOW_THREADS
    if (status != TSENOR_OK) {
        tsenor_ext_fail(status, NULL);
        goto done;
    }
    Py_INCREF(Py_None);
    result = Py_None;
done:
    PyBuffer_Release(&outv);
    PyBuffer_Release(&wv);
    return result;
}
