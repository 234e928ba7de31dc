/*
 * Binding of the curve kernels (core/curve.c):
 *   _C.curve_forward(out, half, x, A, iterations, half_after)
 *   _C.curve_backward(grad_x, grad_A, grad_out, grad_half, x, A, iterations, half_after)
 * Outputs first (preallocated, C-contiguous, same dtype as x), then inputs, then
 * scalars. half, grad_x, grad_A, grad_out and grad_half may be None. The map
 * layout follows from A's channel count: 3 = one shared map, 3*iterations = one
 * map per iteration (for iterations == 1 the two coincide).
 *
 * iterations is bounded by TLL_MAX_CURVE_ITERATIONS, so one call costs at most a
 * small multiple of an elementwise pass; the batch is still processed in chunks
 * with a signal check between them, so Ctrl-C interrupts a large call.
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
static int check_inputs(PyObject *xo, PyObject *Ao, PyObject *it_o, PyObject *ha_o, int *iterations_out,
                        int *half_after_out, PyArrayObject **x, PyArrayObject **A, int *per_iteration)
{
    long long it, ha;
    if (tll_int_arg(it_o, "iterations", 1, TLL_MAX_CURVE_ITERATIONS, &it) ||
        tll_int_arg(ha_o, "half_after", 0, it, &ha))
        return -1;
    int iterations = (int)it;
    *iterations_out = iterations;
    *half_after_out = (int)ha;
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

/* Batch items per kernel call: about 2^24 element-iterations (tens of ms), so
 * signals are checked often without starving the threads of work. */
static size_t chunk_items(size_t b, size_t h, size_t w, int iterations)
{
    size_t per = 3 * h * w * (size_t)iterations;
    size_t n = per ? ((size_t)1 << 24) / per : b;
    return n < 1 ? 1 : (n > b ? b : n);
}

static PyObject *py_curve_forward(PyObject *self, PyObject *args)
{
    PyObject *oo, *ho, *xo, *Ao, *ito, *hao;
    int iterations, half_after;
    if (!PyArg_ParseTuple(args, "OOOOOO:curve_forward", &oo, &ho, &xo, &Ao, &ito, &hao))
        return NULL;
    PyArrayObject *x, *A, *out, *half;
    int per_iteration;
    if (check_inputs(xo, Ao, ito, hao, &iterations, &half_after, &x, &A, &per_iteration))
        return NULL;
    out = tll_array_arg(oo, "out", 4, TLL_DT_FLOAT, 1);
    if (!out || tll_same_dtype(out, "out", x, "x") || tll_same_shape(out, "out", x, "x"))
        return NULL;
    if (optional_like(ho, "half", x, "x", 1, &half))
        return NULL;
    PyArrayObject *outs[2] = {out, half}, *ins[2] = {x, A};
    const char *out_names[2] = {"out", "half"}, *in_names[2] = {"x", "A"};
    if (tll_outputs_disjoint(outs, out_names, 2, ins, in_names, 2))
        return NULL;
    size_t b = (size_t)PyArray_DIM(x, 0), h = (size_t)PyArray_DIM(x, 2), w = (size_t)PyArray_DIM(x, 3);
    size_t ca = (size_t)PyArray_DIM(A, 1), es = (size_t)PyArray_ITEMSIZE(x);
    size_t xstep = 3 * h * w * es, astep = ca * h * w * es, step = chunk_items(b, h, w, iterations);
    for (size_t i0 = 0; i0 < b; i0 += step) {
        size_t nb = b - i0 < step ? b - i0 : step, xo = i0 * xstep, ao = i0 * astep;
        tll_status st;
        Py_BEGIN_ALLOW_THREADS;
        st = TLL_CALL_BY_DTYPE(x, tll_curve_forward, tll_data_at(out, xo), tll_data_at(half, xo), tll_data_at(x, xo),
                               tll_data_at(A, ao), nb, h, w, iterations, per_iteration, half_after);
        Py_END_ALLOW_THREADS;
        if (st != TLL_OK)
            return tll_raise_status(st, "curve_forward");
        if (PyErr_CheckSignals())
            return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *py_curve_backward(PyObject *self, PyObject *args)
{
    PyObject *gxo, *gAo, *goo, *gho, *xo, *Ao, *ito, *hao;
    int iterations, half_after;
    if (!PyArg_ParseTuple(args, "OOOOOOOO:curve_backward", &gxo, &gAo, &goo, &gho, &xo, &Ao, &ito, &hao))
        return NULL;
    PyArrayObject *x, *A, *gx, *gA, *go, *gh;
    int per_iteration;
    if (check_inputs(xo, Ao, ito, hao, &iterations, &half_after, &x, &A, &per_iteration))
        return NULL;
    if (optional_like(gxo, "grad_x", x, "x", 1, &gx) || optional_like(gAo, "grad_A", A, "A", 1, &gA) ||
        optional_like(goo, "grad_out", x, "x", 0, &go) || optional_like(gho, "grad_half", x, "x", 0, &gh))
        return NULL;
    PyArrayObject *ins[4] = {x, A, go, gh}, *outs[2] = {gx, gA};
    const char *in_names[4] = {"x", "A", "grad_out", "grad_half"}, *out_names[2] = {"grad_x", "grad_A"};
    if (tll_outputs_disjoint(outs, out_names, 2, ins, in_names, 4))
        return NULL;
    size_t b = (size_t)PyArray_DIM(x, 0), h = (size_t)PyArray_DIM(x, 2), w = (size_t)PyArray_DIM(x, 3);
    size_t ca = (size_t)PyArray_DIM(A, 1), es = (size_t)PyArray_ITEMSIZE(x);
    size_t xstep = 3 * h * w * es, astep = ca * h * w * es, step = chunk_items(b, h, w, iterations);
    for (size_t i0 = 0; i0 < b; i0 += step) {
        size_t nb = b - i0 < step ? b - i0 : step, xo = i0 * xstep, ao = i0 * astep;
        tll_status st;
        Py_BEGIN_ALLOW_THREADS;
        st = TLL_CALL_BY_DTYPE(x, tll_curve_backward, tll_data_at(gx, xo), tll_data_at(gA, ao), tll_data_at(go, xo),
                               tll_data_at(gh, xo), tll_data_at(x, xo), tll_data_at(A, ao), nb, h, w, iterations,
                               per_iteration, half_after);
        Py_END_ALLOW_THREADS;
        if (st != TLL_OK)
            return tll_raise_status(st, "curve_backward");
        if (PyErr_CheckSignals())
            return NULL;
    }
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
