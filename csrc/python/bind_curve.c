/*
 * Binding of the curve kernels (core/curve.c):
 *   _C.curve_forward(out, half, x, A, iterations, half_after)
 *   _C.curve_backward(grad_x, grad_A, grad_out, grad_half, x, A, iterations, half_after)
 *   _C.curve_upsample_forward(out, maps, x, a, iterations)   (inference: a is the small map)
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

/* One curve call: the checked arrays (absent optional ones NULL) and scalars. */
typedef struct {
    PyArrayObject *x, *A;
    PyArrayObject *out, *half;        /* forward outputs */
    PyArrayObject *gx, *gA, *go, *gh; /* backward outputs, then incoming gradients */
    int iterations, half_after, per_iteration;
} curve_args;

/* Validate x, A and the scalars into c; the layout follows from A's channels. */
static int check_inputs(PyObject *xo, PyObject *Ao, PyObject *it_o, PyObject *ha_o, curve_args *c)
{
    long long it, ha;
    *c = (curve_args){0};
    if (tll_int_arg(it_o, "iterations", 1, TLL_MAX_CURVE_ITERATIONS, &it) ||
        tll_int_arg(ha_o, "half_after", 0, it, &ha))
        return -1;
    c->iterations = (int)it;
    c->half_after = (int)ha;
    PyArrayObject *x = c->x = tll_array_arg(xo, "x", 4, TLL_DT_FLOAT, 0);
    if (!x)
        return -1;
    PyArrayObject *A = c->A = tll_array_arg(Ao, "A", 4, TLL_DT_FLOAT, 0);
    if (!A || tll_same_dtype(A, "A", x, "x") || tll_dim_is(x, "x", 1, 3))
        return -1;
    npy_intp ca = PyArray_DIM(A, 1);
    if (ca != 3 && ca != 3 * (npy_intp)it) {
        PyErr_Format(PyExc_ValueError,
                     "A must have 3 channels (shared map) or 3*iterations = %zd (one map per iteration), got %zd",
                     (Py_ssize_t)(3 * (npy_intp)it), (Py_ssize_t)ca);
        return -1;
    }
    if (PyArray_DIM(A, 0) != PyArray_DIM(x, 0) || PyArray_DIM(A, 2) != PyArray_DIM(x, 2) ||
        PyArray_DIM(A, 3) != PyArray_DIM(x, 3)) {
        PyErr_SetString(PyExc_ValueError, "A must have the batch size, height and width of x");
        return -1;
    }
    c->per_iteration = ca != 3;
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

/* The forward or the backward of a checked call, one batch chunk at a time
   with a signal check between chunks (so Ctrl-C stops a large call). */
static PyObject *run_chunked(const curve_args *c, int backward)
{
    PyArrayObject *x = c->x;
    size_t b = (size_t)PyArray_DIM(x, 0), h = (size_t)PyArray_DIM(x, 2), w = (size_t)PyArray_DIM(x, 3);
    size_t ca = (size_t)PyArray_DIM(c->A, 1), es = (size_t)PyArray_ITEMSIZE(x);
    size_t xstep = 3 * h * w * es, astep = ca * h * w * es, step = chunk_items(b, h, w, c->iterations);
    const int it = c->iterations, pi = c->per_iteration, ha = c->half_after;
    for (size_t i0 = 0; i0 < b; i0 += step) {
        size_t nb = b - i0 < step ? b - i0 : step, xo = i0 * xstep, ao = i0 * astep;
        tll_status st;
        Py_BEGIN_ALLOW_THREADS;
        if (backward)
            st = TLL_CALL_BY_DTYPE(x, tll_curve_backward, tll_data_at(c->gx, xo), tll_data_at(c->gA, ao),
                                   tll_data_at(c->go, xo), tll_data_at(c->gh, xo), tll_data_at(x, xo),
                                   tll_data_at(c->A, ao), nb, h, w, it, pi, ha);
        else
            st = TLL_CALL_BY_DTYPE(x, tll_curve_forward, tll_data_at(c->out, xo), tll_data_at(c->half, xo),
                                   tll_data_at(x, xo), tll_data_at(c->A, ao), nb, h, w, it, pi, ha);
        Py_END_ALLOW_THREADS;
        if (st != TLL_OK)
            return tll_raise_status(st, backward ? "curve_backward" : "curve_forward");
        if (PyErr_CheckSignals())
            return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *py_curve_forward(PyObject *self, PyObject *args)
{
    PyObject *oo, *ho, *xo, *Ao, *ito, *hao;
    if (!PyArg_ParseTuple(args, "OOOOOO:curve_forward", &oo, &ho, &xo, &Ao, &ito, &hao))
        return NULL;
    curve_args c;
    if (check_inputs(xo, Ao, ito, hao, &c))
        return NULL;
    c.out = tll_array_arg(oo, "out", 4, TLL_DT_FLOAT, 1);
    if (!c.out || tll_same_dtype(c.out, "out", c.x, "x") || tll_same_shape(c.out, "out", c.x, "x"))
        return NULL;
    if (optional_like(ho, "half", c.x, "x", 1, &c.half))
        return NULL;
    PyArrayObject *outs[2] = {c.out, c.half}, *ins[2] = {c.x, c.A};
    const char *out_names[2] = {"out", "half"}, *in_names[2] = {"x", "A"};
    if (tll_outputs_disjoint(outs, out_names, 2, ins, in_names, 2))
        return NULL;
    return run_chunked(&c, 0);
}

static PyObject *py_curve_backward(PyObject *self, PyObject *args)
{
    PyObject *gxo, *gAo, *goo, *gho, *xo, *Ao, *ito, *hao;
    if (!PyArg_ParseTuple(args, "OOOOOOOO:curve_backward", &gxo, &gAo, &goo, &gho, &xo, &Ao, &ito, &hao))
        return NULL;
    curve_args c;
    if (check_inputs(xo, Ao, ito, hao, &c))
        return NULL;
    if (optional_like(gxo, "grad_x", c.x, "x", 1, &c.gx) || optional_like(gAo, "grad_A", c.A, "A", 1, &c.gA) ||
        optional_like(goo, "grad_out", c.x, "x", 0, &c.go) || optional_like(gho, "grad_half", c.x, "x", 0, &c.gh))
        return NULL;
    PyArrayObject *ins[4] = {c.x, c.A, c.go, c.gh}, *outs[2] = {c.gx, c.gA};
    const char *in_names[4] = {"x", "A", "grad_out", "grad_half"}, *out_names[2] = {"grad_x", "grad_A"};
    if (tll_outputs_disjoint(outs, out_names, 2, ins, in_names, 4))
        return NULL;
    return run_chunked(&c, 1);
}

static PyObject *py_curve_upsample_forward(PyObject *self, PyObject *args)
{
    PyObject *oo, *mo, *xo, *ao, *ito;
    if (!PyArg_ParseTuple(args, "OOOOO:curve_upsample_forward", &oo, &mo, &xo, &ao, &ito))
        return NULL;
    long long it;
    if (tll_int_arg(ito, "iterations", 1, TLL_MAX_CURVE_ITERATIONS, &it))
        return NULL;
    PyArrayObject *x = tll_array_arg(xo, "x", 4, TLL_DT_FLOAT, 0);
    if (!x || tll_dim_is(x, "x", 1, 3))
        return NULL;
    PyArrayObject *a = tll_array_arg(ao, "a", 4, TLL_DT_FLOAT, 0);
    if (!a || tll_same_dtype(a, "a", x, "x") || tll_dim_is(a, "a", 1, 3) || tll_dim_is(a, "a", 0, PyArray_DIM(x, 0)))
        return NULL;
    if (PyArray_DIM(a, 2) < 1 || PyArray_DIM(a, 3) < 1) {
        PyErr_SetString(PyExc_ValueError, "a must have a height and width >= 1");
        return NULL;
    }
    PyArrayObject *out = tll_array_arg(oo, "out", 4, TLL_DT_FLOAT, 1);
    if (!out || tll_same_dtype(out, "out", x, "x") || tll_same_shape(out, "out", x, "x"))
        return NULL;
    PyArrayObject *maps;
    if (optional_like(mo, "maps", x, "x", 1, &maps))
        return NULL;
    PyArrayObject *outs[2] = {out, maps}, *ins[2] = {x, a};
    const char *out_names[2] = {"out", "maps"}, *in_names[2] = {"x", "a"};
    if (tll_outputs_disjoint(outs, out_names, 2, ins, in_names, 2))
        return NULL;
    size_t b = (size_t)PyArray_DIM(x, 0), h = (size_t)PyArray_DIM(x, 2), w = (size_t)PyArray_DIM(x, 3);
    size_t ha = (size_t)PyArray_DIM(a, 2), wa = (size_t)PyArray_DIM(a, 3), es = (size_t)PyArray_ITEMSIZE(x);
    size_t step = chunk_items(b, h, w, (int)it), xstep = 3 * h * w * es, astep = 3 * ha * wa * es;
    for (size_t i0 = 0; i0 < b; i0 += step) {
        size_t nb = b - i0 < step ? b - i0 : step;
        tll_status st;
        Py_BEGIN_ALLOW_THREADS;
        st = TLL_CALL_BY_DTYPE(x, tll_curve_upsample_forward, tll_data_at(out, i0 * xstep),
                               tll_data_at(maps, i0 * xstep), tll_data_at(x, i0 * xstep), tll_data_at(a, i0 * astep),
                               nb, h, w, ha, wa, (int)it);
        Py_END_ALLOW_THREADS;
        if (st != TLL_OK)
            return tll_raise_status(st, "curve_upsample_forward");
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
    {"curve_upsample_forward", py_curve_upsample_forward, METH_VARARGS,
     "curve_upsample_forward(out, maps, x, a, iterations): maps <- bilinear (align_corners=True) upsampling\n"
     "of the (B,3,h,w) map a to x's (B,3,H,W) size (maps may be None: not stored), out <- x after\n"
     "`iterations` curve steps with that map. float32 or float64, C-contiguous. Inference only."},
    {NULL, NULL, 0, NULL},
};
