/*
 * Binding of the box kernels (core/boxes.c):
 *   _C.boxes_iou(out, a, b)                        out (N, M)
 *   _C.boxes_iou_aligned(out, a, b)                out (N,)
 *   _C.boxes_diou_forward(loss, pred, target, weight, eps) -> weighted sum (float)
 *   _C.boxes_diou_backward(grad_pred, grad_target, grad_loss, pred, target, weight, scale, eps)
 *   _C.boxes_nms(keep, boxes, scores, iou_threshold) -> number kept
 * Outputs first (preallocated), then inputs, then scalars. Boxes are (N, 4)
 * float32/float64 arrays; every other float array has the boxes' dtype, except
 * the NMS scores, which are float64. loss, grad_pred, grad_target, grad_loss
 * and weight may be None. Every input must be finite (ValueError naming it).
 */
#include "bind_common.h"
#include "bind_finite.h"

/* A (N, 4) float array. */
static PyArrayObject *box_arg(PyObject *obj, const char *name)
{
    PyArrayObject *a = tll_array_arg(obj, name, 2, TLL_DT_FLOAT, 0);
    if (!a || tll_dim_is(a, name, 1, 4) || tll_require_finite(a, name))
        return NULL;
    return a;
}

/* obj is None -> *out = NULL; else an array of `like`'s dtype with ndim dims, dim 0 == n (and dim 1 == 4 if ndim 2). */
static int optional_arg(PyObject *obj, const char *name, int ndim, npy_intp n, PyArrayObject *like,
                        const char *like_name, int writable, PyArrayObject **out)
{
    *out = NULL;
    if (obj == Py_None)
        return 0;
    PyArrayObject *a = tll_array_arg(obj, name, ndim, TLL_DT_FLOAT, writable);
    if (!a || tll_same_dtype(a, name, like, like_name) || tll_dim_is(a, name, 0, n) ||
        (ndim == 2 && tll_dim_is(a, name, 1, 4)))
        return -1;
    *out = a;
    return 0;
}


static PyObject *py_boxes_iou(PyObject *self, PyObject *args)
{
    PyObject *oo, *ao, *bo;
    if (!PyArg_ParseTuple(args, "OOO:boxes_iou", &oo, &ao, &bo))
        return NULL;
    PyArrayObject *a = box_arg(ao, "a"), *b = a ? box_arg(bo, "b") : NULL;
    if (!a || !b || tll_same_dtype(b, "b", a, "a"))
        return NULL;
    PyArrayObject *out = tll_array_arg(oo, "out", 2, TLL_DT_FLOAT, 1);
    npy_intp n = PyArray_DIM(a, 0), m = PyArray_DIM(b, 0);
    PyArrayObject *ins[2] = {a, b};
    const char *in_names[2] = {"a", "b"}, *out_name = "out";
    if (!out || tll_same_dtype(out, "out", a, "a") || tll_dim_is(out, "out", 0, n) || tll_dim_is(out, "out", 1, m) ||
        tll_outputs_disjoint(&out, &out_name, 1, ins, in_names, 2))
        return NULL;
    tll_status st;
    Py_BEGIN_ALLOW_THREADS
    st = TLL_CALL_BY_DTYPE(a, tll_box_iou_forward, PyArray_DATA(out), PyArray_DATA(a), n, PyArray_DATA(b), m);
    Py_END_ALLOW_THREADS
    return tll_none_or_raise(st, "boxes_iou");
}

static PyObject *py_boxes_iou_aligned(PyObject *self, PyObject *args)
{
    PyObject *oo, *ao, *bo;
    if (!PyArg_ParseTuple(args, "OOO:boxes_iou_aligned", &oo, &ao, &bo))
        return NULL;
    PyArrayObject *a = box_arg(ao, "a"), *b = a ? box_arg(bo, "b") : NULL;
    if (!a || !b || tll_same_dtype(b, "b", a, "a") || tll_same_shape(b, "b", a, "a"))
        return NULL;
    npy_intp n = PyArray_DIM(a, 0);
    PyArrayObject *out = tll_array_arg(oo, "out", 1, TLL_DT_FLOAT, 1);
    PyArrayObject *ins[2] = {a, b};
    const char *in_names[2] = {"a", "b"}, *out_name = "out";
    if (!out || tll_same_dtype(out, "out", a, "a") || tll_dim_is(out, "out", 0, n) ||
        tll_outputs_disjoint(&out, &out_name, 1, ins, in_names, 2))
        return NULL;
    tll_status st;
    Py_BEGIN_ALLOW_THREADS
    st = TLL_CALL_BY_DTYPE(a, tll_box_iou_aligned_forward, PyArray_DATA(out), PyArray_DATA(a), PyArray_DATA(b), n);
    Py_END_ALLOW_THREADS
    return tll_none_or_raise(st, "boxes_iou_aligned");
}

/* pred, target (N, 4) same dtype and shape; weight optional (N,). */
static int diou_inputs(PyObject *po, PyObject *to, PyObject *wo, PyObject *eps_o, double *eps_out, PyArrayObject **p,
                       PyArrayObject **t, PyArrayObject **w)
{
    *p = box_arg(po, "pred");
    if (!*p)
        return -1;
    *t = box_arg(to, "target");
    if (!*t || tll_same_dtype(*t, "target", *p, "pred") || tll_same_shape(*t, "target", *p, "pred"))
        return -1;
    if (optional_arg(wo, "weight", 1, PyArray_DIM(*p, 0), *p, "pred", 0, w) || (*w && tll_require_finite(*w, "weight")))
        return -1;
    double eps;
    if (tll_double_arg(eps_o, "eps", 1, &eps))
        return -1;
    *eps_out = eps;
    if (eps < 0) {
        PyErr_SetString(PyExc_ValueError, "eps must be >= 0");
        return -1;
    }
    return 0;
}

static PyObject *py_boxes_diou_forward(PyObject *self, PyObject *args)
{
    PyObject *lo, *po, *to, *wo, *eps_o;
    double eps;
    if (!PyArg_ParseTuple(args, "OOOOO:boxes_diou_forward", &lo, &po, &to, &wo, &eps_o))
        return NULL;
    PyArrayObject *p, *t, *w, *loss;
    if (diou_inputs(po, to, wo, eps_o, &eps, &p, &t, &w))
        return NULL;
    npy_intp n = PyArray_DIM(p, 0);
    PyArrayObject *ins[3] = {p, t, w};
    const char *in_names[3] = {"pred", "target", "weight"}, *out_name = "loss";
    if (optional_arg(lo, "loss", 1, n, p, "pred", 1, &loss) ||
        tll_outputs_disjoint(&loss, &out_name, 1, ins, in_names, 3))
        return NULL;
    double total = 0.0;
    tll_status st;
    Py_BEGIN_ALLOW_THREADS
    st = TLL_CALL_BY_DTYPE(p, tll_diou_forward, tll_data(loss), &total, PyArray_DATA(p), PyArray_DATA(t), tll_data(w),
                           n, eps);
    Py_END_ALLOW_THREADS
    if (st != TLL_OK)
        return tll_raise_status(st, "boxes_diou_forward");
    return PyFloat_FromDouble(total);
}

static PyObject *py_boxes_diou_backward(PyObject *self, PyObject *args)
{
    PyObject *gpo, *gto, *glo, *po, *to, *wo, *scale_o, *eps_o;
    double scale, eps;
    if (!PyArg_ParseTuple(args, "OOOOOOOO:boxes_diou_backward", &gpo, &gto, &glo, &po, &to, &wo, &scale_o, &eps_o))
        return NULL;
    PyArrayObject *p, *t, *w, *gp, *gt, *gl;
    if (diou_inputs(po, to, wo, eps_o, &eps, &p, &t, &w) || tll_double_arg(scale_o, "scale", 1, &scale))
        return NULL;
    npy_intp n = PyArray_DIM(p, 0);
    if (optional_arg(gpo, "grad_pred", 2, n, p, "pred", 1, &gp) ||
        optional_arg(gto, "grad_target", 2, n, p, "pred", 1, &gt) ||
        optional_arg(glo, "grad_loss", 1, n, p, "pred", 0, &gl))
        return NULL;
    PyArrayObject *outs[2] = {gp, gt}, *ins[4] = {p, t, w, gl};
    const char *out_names[2] = {"grad_pred", "grad_target"}, *in_names[4] = {"pred", "target", "weight", "grad_loss"};
    if (tll_outputs_disjoint(outs, out_names, 2, ins, in_names, 4))
        return NULL;
    /* grad_loss is not checked for finiteness: a NaN upstream gradient propagates, as in torch */
    tll_status st;
    Py_BEGIN_ALLOW_THREADS
    st = TLL_CALL_BY_DTYPE(p, tll_diou_backward, tll_data(gp), tll_data(gt), tll_data(gl), scale, PyArray_DATA(p),
                           PyArray_DATA(t), tll_data(w), n, eps);
    Py_END_ALLOW_THREADS
    return tll_none_or_raise(st, "boxes_diou_backward");
}

static PyObject *py_boxes_nms(PyObject *self, PyObject *args)
{
    PyObject *ko, *bo, *so, *thr_o;
    double thr;
    if (!PyArg_ParseTuple(args, "OOOO:boxes_nms", &ko, &bo, &so, &thr_o))
        return NULL;
    PyArrayObject *b = box_arg(bo, "boxes");
    if (!b)
        return NULL;
    npy_intp n = PyArray_DIM(b, 0);
    PyArrayObject *s = tll_array_arg(so, "scores", 1, NPY_FLOAT64, 0);
    if (!s || tll_dim_is(s, "scores", 0, n) || tll_require_finite(s, "scores"))
        return NULL;
    PyArrayObject *keep = tll_array_arg(ko, "keep", 1, NPY_INT64, 1);
    PyArrayObject *ins[2] = {b, s};
    const char *in_names[2] = {"boxes", "scores"}, *out_name = "keep";
    if (!keep || tll_dim_is(keep, "keep", 0, n) || tll_double_arg(thr_o, "iou_threshold", 1, &thr) ||
        tll_outputs_disjoint(&keep, &out_name, 1, ins, in_names, 2))
        return NULL;
    int64_t k = 0;
    tll_status st;
    tll_set_poll(tll_poll_signals, NULL); /* n^2 work at worst: Ctrl-C must stop it */
    Py_BEGIN_ALLOW_THREADS
    st = TLL_CALL_BY_DTYPE(b, tll_nms_forward, PyArray_DATA(keep), &k, PyArray_DATA(b), PyArray_DATA(s), n, thr);
    Py_END_ALLOW_THREADS
    tll_set_poll(NULL, NULL);
    if (st != TLL_OK)
        return tll_raise_status(st, "boxes_nms");
    return PyLong_FromLongLong((long long)k);
}

PyMethodDef tll_boxes_methods[] = {
    {"boxes_iou", py_boxes_iou, METH_VARARGS, "boxes_iou(out, a, b): pairwise IoU (N, M) into out."},
    {"boxes_iou_aligned", py_boxes_iou_aligned, METH_VARARGS, "boxes_iou_aligned(out, a, b): IoU of pairs (N,)."},
    {"boxes_diou_forward", py_boxes_diou_forward, METH_VARARGS,
     "boxes_diou_forward(loss, pred, target, weight, eps) -> weighted sum; loss (N,) unweighted or None."},
    {"boxes_diou_backward", py_boxes_diou_backward, METH_VARARGS,
     "boxes_diou_backward(grad_pred, grad_target, grad_loss, pred, target, weight, scale, eps)."},
    {"boxes_nms", py_boxes_nms, METH_VARARGS,
     "boxes_nms(keep, boxes, scores_f64, iou_threshold) -> number of kept indices written to keep."},
    {NULL, NULL, 0, NULL},
};
