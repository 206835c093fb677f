/* module.c - the tsenor._core extension: its method table and constants. The public,
   documented API is the Python wrapper in src/tsenor/__init__.py. */
#include "ext.h"

#ifdef TSENOR_CUDA
#include "tsenor_cuda.h"
#endif

static PyObject *version(PyObject *self, PyObject *unused)
{
    (void)self; (void)unused;
    return PyUnicode_FromString(tsenor_version());
}

static PyObject *status_string(PyObject *self, PyObject *arg)
{
    long status = PyLong_AsLong(arg);
    (void)self;
    if (status == -1 && PyErr_Occurred()) return NULL;
    return PyUnicode_FromString(tsenor_status_string((tsenor_status)status));
}

static PyObject *cuda_device_count(PyObject *self, PyObject *unused)
{
    (void)self; (void)unused;
#ifdef TSENOR_CUDA
    {
        int count;
        Py_BEGIN_ALLOW_THREADS
        count = tsenor_cuda_device_count();
        Py_END_ALLOW_THREADS
        return PyLong_FromLong(count);
    }
#else
    return PyLong_FromLong(0);
#endif
}

static PyMethodDef methods[] = {
    {"mask_host", tsenor_ext_mask_host, METH_VARARGS, "mask of host memory (see mask_host.c)"},
    {"mask_device", tsenor_ext_mask_device, METH_VARARGS, "mask of CUDA device memory (see mask_device.c)"},
    {"check", tsenor_ext_check, METH_VARARGS, "tsenor_check_mask on a byte buffer (see check.c)"},
    {"prune_host", tsenor_ext_prune_host, METH_VARARGS, "pruning of host memory (see prune_host.c)"},
    {"prune_device", tsenor_ext_prune_device, METH_VARARGS, "pruning of CUDA device memory (see prune_device.c)"},
    {"gram_host", tsenor_ext_gram_host, METH_VARARGS, "gram += x^T x of host memory (see gram_host.c)"},
    {"gram_device", tsenor_ext_gram_device, METH_VARARGS, "gram += x^T x of CUDA device memory (see gram_device.c)"},
    {"version", version, METH_NOARGS, "tsenor_version()"},
    {"status_string", status_string, METH_O, "tsenor_status_string(status)"},
    {"cuda_device_count", cuda_device_count, METH_NOARGS, "usable CUDA devices (0 without the CUDA backend)"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "tsenor._core", "The C side of tsenor (use the tsenor package).", -1, methods,
    NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC PyInit__core(void)
{
    PyObject *mod = PyModule_Create(&module);
    PyObject *names;
    if (!mod) return NULL;
    /* the methods by their C names, in the order of tsenor_method */
    names = Py_BuildValue("(ssss)", tsenor_method_string(TSENOR_METHOD_TSENOR), tsenor_method_string(TSENOR_METHOD_EXACT),
                          tsenor_method_string(TSENOR_METHOD_GREEDY), tsenor_method_string(TSENOR_METHOD_ROWWISE));
    if (!names || PyModule_AddObject(mod, "METHODS", names) != 0) {
        Py_XDECREF(names);
        Py_DECREF(mod);
        return NULL;
    }
    /* the pruning methods by their C names, in the order of tsenor_prune_method */
    names = Py_BuildValue("(ssss)", tsenor_prune_method_string(TSENOR_PRUNE_MAGNITUDE),
                          tsenor_prune_method_string(TSENOR_PRUNE_WANDA), tsenor_prune_method_string(TSENOR_PRUNE_SPARSEGPT),
                          tsenor_prune_method_string(TSENOR_PRUNE_ALPS));
    if (!names || PyModule_AddObject(mod, "PRUNE_METHODS", names) != 0) {
        Py_XDECREF(names);
        Py_DECREF(mod);
        return NULL;
    }
    if (PyModule_AddIntConstant(mod, "HAS_CUDA", tsenor_ext_has_cuda) != 0 ||
        PyModule_AddIntConstant(mod, "MAX_M", TSENOR_MAX_M) != 0 ||
#ifdef TSENOR_CUDA
        PyModule_AddIntConstant(mod, "CUDA_MAX_M", TSENOR_CUDA_MAX_M) != 0 ||
        PyModule_AddIntConstant(mod, "CUDA_MAX_M_EXACT", TSENOR_CUDA_MAX_M_EXACT) != 0 ||
#else
        PyModule_AddIntConstant(mod, "CUDA_MAX_M", 0) != 0 ||
        PyModule_AddIntConstant(mod, "CUDA_MAX_M_EXACT", 0) != 0 ||
#endif
        PyModule_AddIntConstant(mod, "DTYPE_F32", TSENOR_DTYPE_F32) != 0 ||
        PyModule_AddIntConstant(mod, "DTYPE_F16", TSENOR_DTYPE_F16) != 0 ||
        PyModule_AddIntConstant(mod, "DTYPE_BF16", TSENOR_DTYPE_BF16) != 0 ||
        PyModule_AddIntConstant(mod, "CHECK_TRANSPOSABLE", TSENOR_CHECK_TRANSPOSABLE) != 0 ||
        PyModule_AddIntConstant(mod, "CHECK_AT_MOST", TSENOR_CHECK_AT_MOST) != 0 ||
        PyModule_AddIntConstant(mod, "ERR_INVALID_ARGUMENT", TSENOR_ERR_INVALID_ARGUMENT) != 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
