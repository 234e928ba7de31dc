/* Argument checks and status -> exception mapping shared by every binding file. */
#include "bind_common.h"

#include <math.h>

static const char *dtype_name(int typenum)
{
    switch (typenum) {
    case NPY_FLOAT32: return "float32";
    case NPY_FLOAT64: return "float64";
    case NPY_INT64: return "int64";
    case NPY_INT32: return "int32";
    case NPY_UINT8: return "uint8";
    case NPY_BOOL: return "bool";
    case NPY_FLOAT16: return "float16";
    case NPY_COMPLEX64: return "complex64";
    case NPY_COMPLEX128: return "complex128";
    case NPY_OBJECT: return "object";
    case TLL_DT_FLOAT: return "float32 or float64";
    }
    return "another dtype";
}

PyArrayObject *tll_array_arg(PyObject *obj, const char *name, int ndim, int typenum, int writable)
{
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a numpy.ndarray, got %s", name, Py_TYPE(obj)->tp_name);
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    int t = PyArray_TYPE(a);
    int ok = typenum == TLL_DT_FLOAT ? (t == NPY_FLOAT32 || t == NPY_FLOAT64) : t == typenum;
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s must have dtype %s, got %s", name, dtype_name(typenum),
                     dtype_name(t));
        return NULL;
    }
    if (ndim >= 0 && PyArray_NDIM(a) != ndim) {
        PyErr_Format(PyExc_ValueError, "%s must have %d dimensions, got %d", name, ndim, PyArray_NDIM(a));
        return NULL;
    }
    /* the kernels read raw memory as native numbers: a byte-swapped array would be
     * silent garbage, so it is refused here, in the one check every binding uses */
    if (PyArray_ISBYTESWAPPED(a)) {
        PyErr_Format(PyExc_TypeError, "%s must have native byte order (call .astype(%s.dtype.newbyteorder('=')))",
                     name, name);
        return NULL;
    }
    if (!PyArray_IS_C_CONTIGUOUS(a) || !PyArray_ISALIGNED(a)) {
        PyErr_Format(PyExc_ValueError, "%s must be C-contiguous and aligned (call .contiguous() first)", name);
        return NULL;
    }
    if (writable && !PyArray_ISWRITEABLE(a)) {
        PyErr_Format(PyExc_ValueError, "%s must be writeable", name);
        return NULL;
    }
    return a;
}

int tll_same_dtype(PyArrayObject *a, const char *na, PyArrayObject *b, const char *nb)
{
    if (PyArray_TYPE(a) != PyArray_TYPE(b)) {
        PyErr_Format(PyExc_TypeError, "%s and %s must have the same dtype (%s vs %s)", na, nb,
                     dtype_name(PyArray_TYPE(a)), dtype_name(PyArray_TYPE(b)));
        return -1;
    }
    return 0;
}

int tll_same_shape(PyArrayObject *a, const char *na, PyArrayObject *b, const char *nb)
{
    int nd = PyArray_NDIM(a);
    int same = nd == PyArray_NDIM(b);
    for (int i = 0; same && i < nd; i++)
        same = PyArray_DIM(a, i) == PyArray_DIM(b, i);
    if (!same) {
        PyErr_Format(PyExc_ValueError, "%s and %s must have the same shape", na, nb);
        return -1;
    }
    return 0;
}

int tll_dim_is(PyArrayObject *a, const char *na, int dim, npy_intp expect)
{
    if (PyArray_NDIM(a) <= dim || PyArray_DIM(a, dim) != expect) {
        PyErr_Format(PyExc_ValueError, "%s: dimension %d must be %zd, got %zd", na, dim, (Py_ssize_t)expect,
                     PyArray_NDIM(a) > dim ? (Py_ssize_t)PyArray_DIM(a, dim) : (Py_ssize_t)-1);
        return -1;
    }
    return 0;
}

int tll_no_overlap(PyArrayObject *o, const char *no, PyArrayObject *i, const char *ni)
{
    if (!o || !i || PyArray_NBYTES(o) == 0 || PyArray_NBYTES(i) == 0)
        return 0;
    const char *o0 = PyArray_BYTES(o), *i0 = PyArray_BYTES(i);
    if (o0 < i0 + PyArray_NBYTES(i) && i0 < o0 + PyArray_NBYTES(o)) {
        PyErr_Format(PyExc_ValueError, "%s must not share memory with %s", no, ni);
        return -1;
    }
    return 0;
}

int tll_outputs_disjoint(PyArrayObject *const *outs, const char *const *out_names, int n_out,
                         PyArrayObject *const *ins, const char *const *in_names, int n_in)
{
    for (int k = 0; k < n_out; k++) {
        for (int j = 0; j < n_in; j++)
            if (tll_no_overlap(outs[k], out_names[k], ins[j], in_names[j]))
                return -1;
        for (int j = 0; j < k; j++)
            if (tll_no_overlap(outs[k], out_names[k], outs[j], out_names[j]))
                return -1;
    }
    return 0;
}

int tll_int_arg(PyObject *obj, const char *name, long long lo, long long hi, long long *out)
{
    if (PyBool_Check(obj) || PyArray_IsScalar(obj, Bool) || !PyIndex_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, got %s", name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyObject *v = PyNumber_Index(obj);
    if (!v)
        return -1;
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    Py_DECREF(v);
    if (x == -1 && PyErr_Occurred())
        return -1;
    if (overflow || x < lo || x > hi) {
        PyErr_Format(PyExc_ValueError, "%s must be in [%lld, %lld], got %R", name, lo, hi, obj);
        return -1;
    }
    *out = x;
    return 0;
}

int tll_double_arg(PyObject *obj, const char *name, int require_finite, double *out)
{
    /* int, float and other real numbers (NumPy scalars); not bool, text or complex */
    if (PyBool_Check(obj) || PyUnicode_Check(obj) || PyBytes_Check(obj) || PyComplex_Check(obj) ||
        PyArray_IsScalar(obj, ComplexFloating) || PyArray_IsScalar(obj, Bool)) {
        PyErr_Format(PyExc_TypeError, "%s must be a real number, got %s", name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    double x = PyFloat_AsDouble(obj);
    if (x == -1.0 && PyErr_Occurred()) {
        int overflow = PyErr_ExceptionMatches(PyExc_OverflowError); /* an int beyond the double range */
        PyErr_Clear();
        if (overflow)
            PyErr_Format(PyExc_ValueError, "%s is too large for a double", name);
        else
            PyErr_Format(PyExc_TypeError, "%s must be a real number, got %s", name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    if (require_finite && !isfinite(x)) {
        PyErr_Format(PyExc_ValueError, "%s must be finite, got %R", name, obj);
        return -1;
    }
    *out = x;
    return 0;
}

int tll_poll_signals(void *ctx)
{
    (void)ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    int stop = PyErr_CheckSignals() != 0;
    PyGILState_Release(g);
    return stop;
}

PyObject *tll_raise_status(tll_status s, const char *what)
{
    if (s == TLL_ERR_INTERRUPTED && PyErr_Occurred())
        return NULL;
    if (s == TLL_ERR_NOMEM)
        PyErr_Format(PyExc_MemoryError, "%s: %s", what, tll_status_string(s));
    else
        PyErr_Format(PyExc_ValueError, "%s: %s", what, tll_status_string(s));
    return NULL;
}

PyObject *tll_none_or_raise(tll_status s, const char *what)
{
    if (s != TLL_OK)
        return tll_raise_status(s, what);
    Py_RETURN_NONE;
}
