/*
 * Binding of the curve kernels (core/curve.c):
 *   _C.curve_forward(out, half, x, A, iterations, half_after)
 *   _C.curve_backward(grad_x, grad_A, grad_out, grad_half, x, A, iterations, half_after)
 * Outputs first (preallocated, C-contiguous, same dtype as x), then inputs, then
 * scalars. half, grad_x, grad_A, grad_out and grad_half may be None. The map
 * layout follows from A's channel count: 3 = one shared map, 3*iterations = one
 * map per iteration (for iterations == 1 the two coincide).
 */
#include "bind_common.h"

/* obj is None -> *out = NULL; else a checked array of x's dtype and `shape_of`'s shape. */
static int optional_like(PyObject *obj, const char *name, PyArrayObject *shape_of, const char *shape_name,
                         int writable, PyArrayObject **out)
{
    *out = NULL;
    if (obj == Py_None)
        return 0;
    PyArrayObject *a = tll_array_arg(obj, name, 4, TLL_DT_FLOAT, writable);
    if (!a || tll_same_dtype(a, name, shape_of, shape_name) || tll_same_shape(a, name, shape_of, shape_name))
        return -1;
    *out = a;
    return 0;
}

/* Validate x, A and the scalars; sets the sizes and the layout. */
static int check_inputs(PyObject *xo, PyObject *Ao, int iterations, int half_after, PyArrayObject **x,
                        PyArrayObject **A, int *per_iteration)
{
    if (iterations < 1) {
        PyErr_Format(PyExc_ValueError, "iterations must be >= 1, got %d", iterations);
        return -1;
    }
    if (half_after < 0 || half_after > iterations) {
        PyErr_Format(PyExc_ValueError, "half_after must be in [0, iterations=%d], got %d", iterations, half_after);
        return -1;
    }
    *x = tll_array_arg(xo, "x", 4, TLL_DT_FLOAT, 0);
    if (!*x)
        return -1;
    *A = tll_array_arg(Ao, "A", 4, TLL_DT_FLOAT, 0);
    if (!*A || tll_same_dtype(*A, "A", *x, "x") || tll_dim_is(*x, "x", 1, 3))
        return -1;
    npy_intp ca = PyArray_DIM(*A, 1);
    if (ca != 3 && ca != 3 * (npy_intp)iterations) {
        PyErr_Format(PyExc_ValueError,
                     "A must have 3 channels (shared map) or 3*iterations = %zd (one map per iteration), got %zd",
                     (Py_ssize_t)(3 * (npy_intp)iterations), (Py_ssize_t)ca);
        return -1;
    }
    if (PyArray_DIM(*A, 0) != PyArray_DIM(*x, 0) || PyArray_DIM(*A, 2) != PyArray_DIM(*x, 2) ||
        PyArray_DIM(*A, 3) != PyArray_DIM(*x, 3)) {
        PyErr_SetString(PyExc_ValueError, "A must have the batch size, height and width of x");
        return -1;
    }
    *per_iteration = ca != 3;
    return 0;
}

static PyObject *py_curve_forward(PyObject *self, PyObject *args)
{
    PyObject *oo, *ho, *xo, *Ao;
    int iterations, half_after;
    if (!PyArg_ParseTuple(args, "OOOOii:curve_forward", &oo, &ho, &xo, &Ao, &iterations, &half_after))
        return NULL;
    PyArrayObject *x, *A, *out, *half;
    int per_iteration;
    if (check_inputs(xo, Ao, iterations, half_after, &x, &A, &per_iteration))
        return NULL;
    out = tll_array_arg(oo, "out", 4, TLL_DT_FLOAT, 1);
    if (!out || tll_same_dtype(out, "out", x, "x") || tll_same_shape(out, "out", x, "x"))
        return NULL;
    if (optional_like(ho, "half", x, "x", 1, &half))
        return NULL;
    if (tll_no_overlap(out, "out", x, "x") || tll_no_overlap(out, "out", A, "A") || tll_no_overlap(half, "half", x, "x") ||
        tll_no_overlap(half, "half", A, "A") || tll_no_overlap(half, "half", out, "out"))
        return NULL;
    size_t b = (size_t)PyArray_DIM(x, 0), h = (size_t)PyArray_DIM(x, 2), w = (size_t)PyArray_DIM(x, 3);
    tll_status st;
    Py_BEGIN_ALLOW_THREADS;
    if (PyArray_TYPE(x) == NPY_FLOAT32)
        st = tll_curve_forward_f32((float *)PyArray_DATA(out), half ? (float *)PyArray_DATA(half) : NULL,
                                   (const float *)PyArray_DATA(x), (const float *)PyArray_DATA(A), b, h, w,
                                   iterations, per_iteration, half_after);
    else
        st = tll_curve_forward_f64((double *)PyArray_DATA(out), half ? (double *)PyArray_DATA(half) : NULL,
                                   (const double *)PyArray_DATA(x), (const double *)PyArray_DATA(A), b, h, w,
                                   iterations, per_iteration, half_after);
    Py_END_ALLOW_THREADS;
    if (st != TLL_OK)
        return tll_raise_status(st, "curve_forward");
    Py_RETURN_NONE;
}

static PyObject *py_curve_backward(PyObject *self, PyObject *args)
{
    PyObject *gxo, *gAo, *goo, *gho, *xo, *Ao;
    int iterations, half_after;
    if (!PyArg_ParseTuple(args, "OOOOOOii:curve_backward", &gxo, &gAo, &goo, &gho, &xo, &Ao, &iterations,
                          &half_after))
        return NULL;
    PyArrayObject *x, *A, *gx, *gA, *go, *gh;
    int per_iteration;
    if (check_inputs(xo, Ao, iterations, half_after, &x, &A, &per_iteration))
        return NULL;
    if (optional_like(gxo, "grad_x", x, "x", 1, &gx) || optional_like(gAo, "grad_A", A, "A", 1, &gA) ||
        optional_like(goo, "grad_out", x, "x", 0, &go) || optional_like(gho, "grad_half", x, "x", 0, &gh))
        return NULL;
    PyArrayObject *ins[4] = {x, A, go, gh};
    const char *in_names[4] = {"x", "A", "grad_out", "grad_half"};
    for (int i = 0; i < 4; i++)
        if (tll_no_overlap(gx, "grad_x", ins[i], in_names[i]) || tll_no_overlap(gA, "grad_A", ins[i], in_names[i]))
            return NULL;
    if (tll_no_overlap(gA, "grad_A", gx, "grad_x"))
        return NULL;
    size_t b = (size_t)PyArray_DIM(x, 0), h = (size_t)PyArray_DIM(x, 2), w = (size_t)PyArray_DIM(x, 3);
#define DATA(a, T) ((a) ? (T *)PyArray_DATA(a) : NULL)
    tll_status st;
    Py_BEGIN_ALLOW_THREADS;
    if (PyArray_TYPE(x) == NPY_FLOAT32)
        st = tll_curve_backward_f32(DATA(gx, float), DATA(gA, float), DATA(go, const float), DATA(gh, const float),
                                    DATA(x, const float), DATA(A, const float), b, h, w, iterations,
                                    per_iteration, half_after);
    else
        st = tll_curve_backward_f64(DATA(gx, double), DATA(gA, double), DATA(go, const double),
                                    DATA(gh, const double), DATA(x, const double), DATA(A, const double), b, h,
                                    w, iterations, per_iteration, half_after);
    Py_END_ALLOW_THREADS;
#undef DATA
    if (st != TLL_OK)
        return tll_raise_status(st, "curve_backward");
    Py_RETURN_NONE;
}

PyMethodDef tll_curve_methods[] = {
    {"curve_forward", py_curve_forward, METH_VARARGS,
     "curve_forward(out, half, x, A, iterations, half_after): out <- x after `iterations` curve steps,\n"
     "half <- x after `half_after` steps (half may be None). x, out, half: (B,3,H,W); A: (B,3,H,W) shared\n"
     "or (B,3*iterations,H,W) per-iteration maps. float32 or float64, C-contiguous."},
    {"curve_backward", py_curve_backward, METH_VARARGS,
     "curve_backward(grad_x, grad_A, grad_out, grad_half, x, A, iterations, half_after): gradients of the\n"
     "curve w.r.t. x and A given those of the final and half images. Any of grad_x, grad_A, grad_out,\n"
     "grad_half may be None (not wanted / zero)."},
    {NULL, NULL, 0, NULL},
};
