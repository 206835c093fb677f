/* mask_device.c - _core.mask_device(w_ptr, dtype, rows, cols, ld, mask_ptr, mask_ld,
   device, stream, n, m, method, iterations, tau, threads): the CUDA solver on device
   memory (a torch CUDA tensor's data_ptr()), queued on `stream` (a cudaStream_t as an
   integer, 0 = the default stream) of CUDA device `device`. The call returns when the
   mask is written; nothing leaves the device. The caller keeps both tensors alive. */
#include "ext.h"

#ifdef TSENOR_CUDA
#include "tsenor_cuda.h"

static tsenor_status solve(const void *w, tsenor_dtype dtype, size_t rows, size_t cols, size_t ld, uint8_t *mask,
                           size_t mask_ld, const tsenor_options *opt, void *stream)
{
    switch (dtype) {
    case TSENOR_DTYPE_F32:
        return tsenor_cuda_mask_f32_device((const float *)w, rows, cols, ld, mask, mask_ld, opt, NULL, stream);
    case TSENOR_DTYPE_F16:
        return tsenor_cuda_mask_f16_device((const uint16_t *)w, rows, cols, ld, mask, mask_ld, opt, NULL, stream);
    case TSENOR_DTYPE_BF16:
        return tsenor_cuda_mask_bf16_device((const uint16_t *)w, rows, cols, ld, mask, mask_ld, opt, NULL, stream);
    }
    return TSENOR_ERR_INVALID_ARGUMENT;
}

/* Runs on `device`, putting the caller's current device back afterwards. */
static tsenor_status solve_on(int device, const void *w, tsenor_dtype dtype, size_t rows, size_t cols, size_t ld,
                              uint8_t *mask, size_t mask_ld, const tsenor_options *opt, void *stream,
                              char *why, size_t why_size)
{
    int previous;
    tsenor_status status = tsenor_ext_device_enter(device, &previous, why, why_size);
    if (status != TSENOR_OK) return status;
    status = solve(w, dtype, rows, cols, ld, mask, mask_ld, opt, stream);
    tsenor_ext_device_leave(device, previous);
    return status;
}
#endif

PyObject *tsenor_ext_mask_device(PyObject *self, PyObject *args)
{
    unsigned long long w_ptr, mask_ptr, stream;
    Py_ssize_t rows, cols, ld, mask_ld;
    const char *method;
    int dtype, device, n, m, iterations, threads;
    double tau;
    (void)self;

    if (!PyArg_ParseTuple(args, "KinnnKniKiisidi", &w_ptr, &dtype, &rows, &cols, &ld, &mask_ptr, &mask_ld, &device,
                          &stream, &n, &m, &method, &iterations, &tau, &threads))
        return NULL;
#ifdef TSENOR_CUDA
    {
        tsenor_options opt;
        tsenor_status status;
        char why[256] = "";
        if (dtype < TSENOR_DTYPE_F32 || dtype > TSENOR_DTYPE_BF16) return tsenor_ext_invalid("unknown dtype code %d", dtype);
        if (rows < 1 || cols < 1 || ld < 1 || mask_ld < 1 || device < 0)
            return tsenor_ext_invalid("rows=%zd, cols=%zd, ld=%zd, mask_ld=%zd, device=%d", rows, cols, ld, mask_ld, device);
        if (tsenor_ext_options(n, m, method, iterations, tau, threads, &opt) != 0) return NULL;
        Py_BEGIN_ALLOW_THREADS
        status = solve_on(device, (const void *)(uintptr_t)w_ptr, (tsenor_dtype)dtype, (size_t)rows, (size_t)cols,
                          (size_t)ld, (uint8_t *)(uintptr_t)mask_ptr, (size_t)mask_ld, &opt,
                          (void *)(uintptr_t)stream, why, sizeof why);
        Py_END_ALLOW_THREADS
        if (status != TSENOR_OK) return tsenor_ext_fail(status, *why ? why : NULL);
        Py_RETURN_NONE;
    }
#else
    (void)w_ptr; (void)mask_ptr; (void)stream; (void)rows; (void)cols; (void)ld; (void)mask_ld; (void)method;
    (void)dtype; (void)device; (void)n; (void)m; (void)iterations; (void)tau; (void)threads;
    PyErr_SetString(PyExc_RuntimeError, "tsenor was built without CUDA: no device-memory calls");
    return NULL;
#endif
}
