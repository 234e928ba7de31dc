/*
 * Binding of the depthwise-separable convolution kernels (core/separable_conv.c):
 *   _C.separable_conv_forward(y, x, x2, dw_w, dw_b, pw_w, pw_b, relu)
 *   _C.separable_conv_backward(grad_x, grad_x2, grad_dw_w, grad_dw_b, grad_pw_w, grad_pw_b,
 *                              grad_y, y, x, x2, dw_w, dw_b, pw_w, relu)
 * Outputs first (preallocated, C-contiguous, x's dtype), then inputs, then the
 * relu flag. Shapes: x (B,C1,H,W) and x2 (B,C2,H,W) or None, the two halves of
 * the input cat([x, x2], 1) with C = C1 + C2 channels; dw_w (C,1,3,3), dw_b
 * (C,), pw_w (O,C,1,1), pw_b (O,), y and grad_y (B,O,H,W); each gradient has
 * its input's shape. In the backward every gradient output may be None (not
 * wanted), and y may be None unless relu is true (its sign is the ReLU mask).
 */
#include "bind_common.h"

/* obj is None -> *out = NULL; else a checked array of `like`'s dtype with the given shape. */
static int optional_shaped(PyObject *obj, const char *name, PyArrayObject *like, int ndim, const npy_intp *shape,
                           int writable, PyArrayObject **out)
{
    *out = NULL;
    if (obj == Py_None)
        return 0;
    PyArrayObject *a = tll_array_arg(obj, name, ndim, TLL_DT_FLOAT, writable);
    if (!a || tll_same_dtype(a, name, like, "x"))
        return -1;
    for (int d = 0; d < ndim; d++)
        if (tll_dim_is(a, name, d, shape[d]))
            return -1;
    *out = a;
    return 0;
}

typedef struct {
    PyArrayObject *x, *x2, *dw_w, *dw_b, *pw_w;
    npy_intp B, C, C2, O, H, W; /* C: all input channels, C2: those in x2 */
} sep_inputs;

/* x, x2, dw_w, dw_b, pw_w checked; sizes set from x, x2 and pw_w. */
static int check_inputs(PyObject *xo, PyObject *x2o, PyObject *dwo, PyObject *dbo, PyObject *pwo, sep_inputs *in)
{
    in->x = tll_array_arg(xo, "x", 4, TLL_DT_FLOAT, 0);
    if (!in->x)
        return -1;
    in->B = PyArray_DIM(in->x, 0);
    in->C = PyArray_DIM(in->x, 1);
    in->H = PyArray_DIM(in->x, 2);
    in->W = PyArray_DIM(in->x, 3);
    if (in->C < 1) {
        PyErr_SetString(PyExc_ValueError, "x must have at least one channel");
        return -1;
    }
    in->x2 = NULL;
    in->C2 = 0;
    if (x2o != Py_None) {
        in->x2 = tll_array_arg(x2o, "x2", 4, TLL_DT_FLOAT, 0);
        if (!in->x2 || tll_same_dtype(in->x2, "x2", in->x, "x") || tll_dim_is(in->x2, "x2", 0, in->B) ||
            tll_dim_is(in->x2, "x2", 2, in->H) || tll_dim_is(in->x2, "x2", 3, in->W))
            return -1;
        in->C2 = PyArray_DIM(in->x2, 1);
        if (in->C2 < 1) {
            PyErr_SetString(PyExc_ValueError, "x2 must have at least one channel (or be None)");
            return -1;
        }
        in->C += in->C2;
    }
    in->pw_w = tll_array_arg(pwo, "pw_w", 4, TLL_DT_FLOAT, 0);
    if (!in->pw_w || tll_same_dtype(in->pw_w, "pw_w", in->x, "x"))
        return -1;
    in->O = PyArray_DIM(in->pw_w, 0);
    if (in->O < 1) {
        PyErr_SetString(PyExc_ValueError, "pw_w must have at least one output channel");
        return -1;
    }
    npy_intp sdw[4] = {in->C, 1, 3, 3}, sdb[1] = {in->C}, spw[4] = {in->O, in->C, 1, 1};
    PyArrayObject *db;
    if (optional_shaped(dwo, "dw_w", in->x, 4, sdw, 0, &in->dw_w) ||
        optional_shaped(dbo, "dw_b", in->x, 1, sdb, 0, &db) || optional_shaped(pwo, "pw_w", in->x, 4, spw, 0, &in->pw_w))
        return -1;
    if (!in->dw_w || !db) {
        PyErr_SetString(PyExc_TypeError, "dw_w and dw_b must be arrays, not None");
        return -1;
    }
    in->dw_b = db;
    return 0;
}

static PyObject *py_separable_conv_forward(PyObject *self, PyObject *args)
{
    PyObject *yo, *xo, *x2o, *dwo, *dbo, *pwo, *pbo;
    int relu;
    if (!PyArg_ParseTuple(args, "OOOOOOOp:separable_conv_forward", &yo, &xo, &x2o, &dwo, &dbo, &pwo, &pbo, &relu))
        return NULL;
    sep_inputs in;
    if (check_inputs(xo, x2o, dwo, dbo, pwo, &in))
        return NULL;
    npy_intp spb[1] = {in.O}, sy[4] = {in.B, in.O, in.H, in.W};
    PyArrayObject *pb, *y;
    if (optional_shaped(pbo, "pw_b", in.x, 1, spb, 0, &pb) || optional_shaped(yo, "y", in.x, 4, sy, 1, &y))
        return NULL;
    if (!pb || !y) {
        PyErr_SetString(PyExc_TypeError, "y and pw_b must be arrays, not None");
        return NULL;
    }
    PyArrayObject *ins[6] = {in.x, in.x2, in.dw_w, in.dw_b, in.pw_w, pb};
    const char *names[6] = {"x", "x2", "dw_w", "dw_b", "pw_w", "pw_b"}, *yname = "y";
    if (tll_outputs_disjoint(&y, &yname, 1, ins, names, 6))
        return NULL;
    tll_status st;
    Py_BEGIN_ALLOW_THREADS;
    st = TLL_CALL_BY_DTYPE(in.x, tll_separable_conv_forward, tll_data(y), tll_data(in.x), tll_data(in.x2),
                           tll_data(in.dw_w), tll_data(in.dw_b), tll_data(in.pw_w), tll_data(pb), (size_t)in.B,
                           (size_t)in.C, (size_t)in.C2, (size_t)in.O, (size_t)in.H, (size_t)in.W, relu);
    Py_END_ALLOW_THREADS;
    return tll_none_or_raise(st, "separable_conv_forward");
}

static PyObject *py_separable_conv_backward(PyObject *self, PyObject *args)
{
    PyObject *gxo, *gx2o, *gdwo, *gdbo, *gpwo, *gpbo, *gyo, *yo, *xo, *x2o, *dwo, *dbo, *pwo;
    int relu;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOOp:separable_conv_backward", &gxo, &gx2o, &gdwo, &gdbo, &gpwo, &gpbo,
                          &gyo, &yo, &xo, &x2o, &dwo, &dbo, &pwo, &relu))
        return NULL;
    sep_inputs in;
    if (check_inputs(xo, x2o, dwo, dbo, pwo, &in))
        return NULL;
    npy_intp sx[4] = {in.B, in.C - in.C2, in.H, in.W}, sx2[4] = {in.B, in.C2, in.H, in.W};
    npy_intp sy[4] = {in.B, in.O, in.H, in.W};
    npy_intp sdw[4] = {in.C, 1, 3, 3}, sdb[1] = {in.C}, spw[4] = {in.O, in.C, 1, 1}, spb[1] = {in.O};
    PyArrayObject *gy, *y, *out[6];
    if (gx2o != Py_None && !in.x2) {
        PyErr_SetString(PyExc_ValueError, "grad_x2 must be None when x2 is None");
        return NULL;
    }
    if (optional_shaped(gyo, "grad_y", in.x, 4, sy, 0, &gy) || optional_shaped(yo, "y", in.x, 4, sy, 0, &y) ||
        optional_shaped(gxo, "grad_x", in.x, 4, sx, 1, &out[0]) ||
        optional_shaped(gx2o, "grad_x2", in.x, 4, sx2, 1, &out[1]) ||
        optional_shaped(gdwo, "grad_dw_w", in.x, 4, sdw, 1, &out[2]) ||
        optional_shaped(gdbo, "grad_dw_b", in.x, 1, sdb, 1, &out[3]) ||
        optional_shaped(gpwo, "grad_pw_w", in.x, 4, spw, 1, &out[4]) ||
        optional_shaped(gpbo, "grad_pw_b", in.x, 1, spb, 1, &out[5]))
        return NULL;
    if (!gy) {
        PyErr_SetString(PyExc_TypeError, "grad_y must be an array, not None");
        return NULL;
    }
    if (relu && !y) {
        PyErr_SetString(PyExc_ValueError, "y (the forward's output) is needed when relu is true");
        return NULL;
    }
    const char *onames[6] = {"grad_x", "grad_x2", "grad_dw_w", "grad_dw_b", "grad_pw_w", "grad_pw_b"};
    PyArrayObject *ins[7] = {gy, y, in.x, in.x2, in.dw_w, in.dw_b, in.pw_w};
    const char *inames[7] = {"grad_y", "y", "x", "x2", "dw_w", "dw_b", "pw_w"};
    if (tll_outputs_disjoint(out, onames, 6, ins, inames, 7))
        return NULL;
    tll_status st;
    Py_BEGIN_ALLOW_THREADS;
    st = TLL_CALL_BY_DTYPE(in.x, tll_separable_conv_backward, tll_data(out[0]), tll_data(out[1]), tll_data(out[2]),
                           tll_data(out[3]), tll_data(out[4]), tll_data(out[5]), tll_data(gy), tll_data(y),
                           tll_data(in.x), tll_data(in.x2), tll_data(in.dw_w), tll_data(in.dw_b), tll_data(in.pw_w),
                           (size_t)in.B, (size_t)in.C, (size_t)in.C2, (size_t)in.O, (size_t)in.H, (size_t)in.W, relu);
    Py_END_ALLOW_THREADS;
    return tll_none_or_raise(st, "separable_conv_backward");
}

PyMethodDef tll_separable_conv_methods[] = {
    {"separable_conv_forward", py_separable_conv_forward, METH_VARARGS,
     "separable_conv_forward(y, x, x2, dw_w, dw_b, pw_w, pw_b, relu): y <- [relu](pointwise(depthwise3x3(\n"
     "cat([x, x2], 1)))). x (B,C1,H,W), x2 (B,C2,H,W) or None, dw_w (C,1,3,3), dw_b (C,), pw_w (O,C,1,1),\n"
     "pw_b (O,), y (B,O,H,W) with C = C1 + C2; float32 or float64, C-contiguous."},
    {"separable_conv_backward", py_separable_conv_backward, METH_VARARGS,
     "separable_conv_backward(grad_x, grad_x2, grad_dw_w, grad_dw_b, grad_pw_w, grad_pw_b, grad_y, y, x, x2,\n"
     "dw_w, dw_b, pw_w, relu): gradients of the block given grad_y. Any gradient output may be None (not wanted); y is\n"
     "the forward's output, needed (and may otherwise be None) when relu is true."},
    {NULL, NULL, 0, NULL},
};
