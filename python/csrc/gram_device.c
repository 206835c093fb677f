/* gram_device.c - _core.gram_device(x_ptr, tokens, cols, ld, gram_ptr, gram_ld, device,
   stream): gram += x^T x by tsenor_cuda_gram_f32_device on CUDA device memory (float32
   torch data_ptr()s), queued on `stream` of device `device`; returns when done. gram is
   left as it was on any error. */
#include "ext.h"

#ifdef TSENOR_CUDA
#include "tsenor_cuda.h"
#endif

PyObject *tsenor_ext_gram_device(PyObject *self, PyObject *args)
{
    unsigned long long x_ptr, gram_ptr, stream;
    Py_ssize_t tokens, cols, ld, gram_ld;
    int device;
    (void)self;

    if (!PyArg_ParseTuple(args, "KnnnKniK", &x_ptr, &tokens, &cols, &ld, &gram_ptr, &gram_ld, &device, &stream))
        return NULL;
#ifdef TSENOR_CUDA
    {
        tsenor_status status;
        char why[256] = "";
        int previous;
        if (tokens < 1 || cols < 1 || ld < 1 || gram_ld < 1 || device < 0)
            return tsenor_ext_invalid("tokens=%zd, cols=%zd, ld=%zd, gram_ld=%zd, device=%d", tokens, cols, ld,
                                      gram_ld, device);
        Py_BEGIN_ALLOW_THREADS
        status = tsenor_ext_device_enter(device, &previous, why, sizeof why);
        if (status == TSENOR_OK) {
            status = tsenor_cuda_gram_f32_device((const float *)(uintptr_t)x_ptr, (size_t)tokens, (size_t)cols,
                                                 (size_t)ld, (float *)(uintptr_t)gram_ptr, (size_t)gram_ld,
                                                 (void *)(uintptr_t)stream);
            tsenor_ext_device_leave(device, previous);
        }
        Py_END_ALLOW_THREADS
        if (status != TSENOR_OK) return tsenor_ext_fail(status, *why ? why : NULL);
        Py_RETURN_NONE;
    }
#else
    (void)x_ptr; (void)gram_ptr; (void)stream; (void)tokens; (void)cols; (void)ld; (void)gram_ld; (void)device;
    PyErr_SetString(PyExc_RuntimeError, "tsenor was built without CUDA: no device-memory calls");
    return NULL;
#endif
}
