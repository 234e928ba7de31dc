/* tasklle._C: module init; gathers the method tables of every binding file. */
#define TLL_BIND_MAIN
#include "bind_common.h"

#ifndef TLL_BUILD_NUMPY
#define TLL_BUILD_NUMPY "unknown"
#endif
#ifndef TLL_BUILD_COMPILER
#define TLL_BUILD_COMPILER "unknown"
#endif

static PyObject *py_set_num_threads(PyObject *self, PyObject *arg)
{
    long long n;
    if (tll_int_arg(arg, "n", 0, 4096, &n))
        return NULL;
    tll_set_num_threads((int)n);
    Py_RETURN_NONE;
}

static PyObject *py_get_num_threads(PyObject *self, PyObject *noargs)
{
    return PyLong_FromLong(tll_get_num_threads());
}

static PyObject *py_build_info(PyObject *self, PyObject *noargs)
{
    return Py_BuildValue("{s:s,s:O,s:s,s:s}", "compiler", TLL_BUILD_COMPILER, "openmp",
                         tll_have_openmp() ? Py_True : Py_False, "numpy_build", TLL_BUILD_NUMPY,
                         "python_build", PY_VERSION);
}

static PyMethodDef module_methods[] = {
    {"set_num_threads", py_set_num_threads, METH_O, "Set the C core's thread count (0 = default)."},
    {"get_num_threads", py_get_num_threads, METH_NOARGS, "The C core's thread count."},
    {"build_info", py_build_info, METH_NOARGS, "Facts about how the extension was built."},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef *family_tables[] = {
    module_methods,       tll_curve_methods, tll_zerodce_loss_methods, tll_boxes_methods,
    tll_assign_methods,   tll_wider_eval_methods,   tll_separable_conv_methods,
};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "tasklle._C",
                                       "The tasklle C core (private: use tasklle.ops).", -1, NULL};

PyMODINIT_FUNC PyInit__C(void)
{
    import_array();
    PyObject *m = PyModule_Create(&moduledef);
    if (!m)
        return NULL;
    size_t nt = sizeof(family_tables) / sizeof(family_tables[0]);
    for (size_t t = 0; t < nt; t++) {
        if (PyModule_AddFunctions(m, family_tables[t]) < 0) {
            Py_DECREF(m);
            return NULL;
        }
    }
    return m;
}
