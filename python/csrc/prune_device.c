/* prune_device.c - _core.prune_device(w_ptr, rows, cols, ld, gram_ptr, gram_ld, out_ptr,
   out_ld, mask_ptr, mask_ld, device, stream, n, m, mask_method, mask_iterations, tau,
   threads, method, damping, iterations, cg_iterations, rho) -> report tuple:
   tsenor_cuda_prune_f32_device on CUDA device memory (torch data_ptr()s; float32 w, out
   and gram, 0/1 bytes for the mask; gram_ptr 0 = none, magnitude only), queued on
   `stream` of device `device`. Returns when done; nothing leaves the device, nothing is
   written on error. The caller keeps the tensors alive. EXACT with m > 32 is refused
   here (the Python wrapper prunes it on the host). */
#include "ext.h"

#ifdef TSENOR_CUDA
#include "tsenor_cuda.h"
#endif

PyObject *tsenor_ext_prune_device(PyObject *self, PyObject *args)
{
    unsigned long long w_ptr, gram_ptr, out_ptr, mask_ptr, stream;
    Py_ssize_t rows, cols, ld, gram_ld, out_ld, mask_ld;
    const char *mask_method, *method;
    int device, n, m, mask_iterations, threads, iterations, cg_iterations;
    double tau, damping, rho;
    (void)self;

    if (!PyArg_ParseTuple(args, "KnnnKnKnKniKiisidisdiid", &w_ptr, &rows, &cols, &ld, &gram_ptr, &gram_ld, &out_ptr,
                          &out_ld, &mask_ptr, &mask_ld, &device, &stream, &n, &m, &mask_method, &mask_iterations, &tau,
                          &threads, &method, &damping, &iterations, &cg_iterations, &rho))
        return NULL;
#ifdef TSENOR_CUDA
    {
        tsenor_prune_options opt;
        tsenor_prune_report report;
        tsenor_status status;
        char why[256] = "";
        int previous;
        if (rows < 1 || cols < 1 || ld < 1 || gram_ld < 0 || out_ld < 1 || mask_ld < 1 || device < 0)
            return tsenor_ext_invalid("rows=%zd, cols=%zd, ld=%zd, gram_ld=%zd, out_ld=%zd, mask_ld=%zd, device=%d",
                                      rows, cols, ld, gram_ld, out_ld, mask_ld, device);
        if (tsenor_ext_prune_options(n, m, mask_method, mask_iterations, tau, threads, method, damping, iterations,
                                     cg_iterations, rho, &opt) != 0)
            return NULL;
        if (gram_ptr == 0 && opt.method != TSENOR_PRUNE_MAGNITUDE)
            return tsenor_ext_invalid("no gram: only method '%s' prunes without one",
                                      tsenor_prune_method_string(TSENOR_PRUNE_MAGNITUDE));
        Py_BEGIN_ALLOW_THREADS
        status = tsenor_ext_device_enter(device, &previous, why, sizeof why);
        if (status == TSENOR_OK) {
            status = tsenor_cuda_prune_f32_device((const float *)(uintptr_t)w_ptr, (size_t)rows, (size_t)cols,
                                                  (size_t)ld, (const float *)(uintptr_t)gram_ptr, (size_t)gram_ld,
                                                  (float *)(uintptr_t)out_ptr, (size_t)out_ld,
                                                  (uint8_t *)(uintptr_t)mask_ptr, (size_t)mask_ld, &opt, &report,
                                                  (void *)(uintptr_t)stream);
            tsenor_ext_device_leave(device, previous);
        }
        Py_END_ALLOW_THREADS
        if (status != TSENOR_OK) return tsenor_ext_prune_fail(status, &opt, *why ? why : NULL);
        return tsenor_ext_prune_report(&report);
    }
#else
    (void)w_ptr; (void)gram_ptr; (void)out_ptr; (void)mask_ptr; (void)stream; (void)rows; (void)cols; (void)ld;
    (void)gram_ld; (void)out_ld; (void)mask_ld; (void)device; (void)n; (void)m; (void)mask_method;
    (void)mask_iterations; (void)tau; (void)threads; (void)method; (void)damping; (void)iterations;
    (void)cg_iterations; (void)rho;
    PyErr_SetString(PyExc_RuntimeError, "tsenor was built without CUDA: no device-memory calls");
    return NULL;
#endif
}
