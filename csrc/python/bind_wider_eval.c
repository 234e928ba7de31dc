/* Binding of the WIDER FACE evaluation kernel (core/wider_eval.c). */
#include "bind_common.h"

#include <math.h>

/* Raise ValueError unless offsets (n+1,) start at 0, never decrease and end at total. */
static int check_offsets(PyArrayObject *a, const char *name, npy_intp total)
{
    const int64_t *o = (const int64_t *)PyArray_DATA(a);
    npy_intp n = PyArray_DIM(a, 0);
    if (n < 1) {
        PyErr_Format(PyExc_ValueError, "%s must have at least one element (n_images + 1)", name);
        return -1;
    }
    if (o[0] != 0) {
        PyErr_Format(PyExc_ValueError, "%s[0] must be 0, got %lld", name, (long long)o[0]);
        return -1;
    }
    for (npy_intp i = 1; i < n; i++) {
        if (o[i] < o[i - 1]) {
            PyErr_Format(PyExc_ValueError, "%s must be non-decreasing (index %zd)", name, (Py_ssize_t)i);
            return -1;
        }
    }
    if (o[n - 1] != (int64_t)total) {
        PyErr_Format(PyExc_ValueError, "%s[-1] must equal the number of rows (%zd), got %lld", name,
                     (Py_ssize_t)total, (long long)o[n - 1]);
        return -1;
    }
    return 0;
}

/* An input array (tll_array_arg) whose dimension 1 is `cols` when cols >= 0. */
static PyArrayObject *input_arg(PyObject *obj, const char *name, int ndim, int typenum, npy_intp cols)
{
    PyArrayObject *a = tll_array_arg(obj, name, ndim, typenum, 0);
    if (!a || (cols >= 0 && tll_dim_is(a, name, 1, cols)))
        return NULL;
    return a;
}

static int check_finite(PyArrayObject *a, const char *name)
{
    const double *d = (const double *)PyArray_DATA(a);
    npy_intp n = PyArray_SIZE(a);
    for (npy_intp i = 0; i < n; i++) {
        if (!isfinite(d[i])) {
            PyErr_Format(PyExc_ValueError, "%s must be finite (element %zd is not)", name, (Py_ssize_t)i);
            return -1;
        }
    }
    return 0;
}

PyDoc_STRVAR(forward_doc,
             "wider_eval_forward(pr_counts, pred, pred_offsets, gt, gt_offsets, counted, score_min, score_max, "
             "iou_thresh)\n\n"
             "Fill pr_counts (S, T, 2) int64 with the dataset sums of (counted proposals, recalled faces) per\n"
             "threshold t = 1..T (thresh = 1 - t/T) and setting. pred (P, 5) float64 x y w h raw score and\n"
             "gt (G, 4) float64 x y w h are grouped per image by pred_offsets / gt_offsets (I+1,) int64;\n"
             "counted (S, G) uint8 marks the faces each setting counts. Private: use tasklle.eval.wider.");

/* Both entry points: per_image = 0 fills pr_counts (S, T, 2), 1 fills counts (I, S, T, 2). */
static PyObject *run(PyObject *args, int per_image)
{
    PyObject *o_out, *o_pred, *o_poff, *o_gt, *o_goff, *o_cnt, *o_smin, *o_smax, *o_iou;
    double score_min, score_max, iou_thresh;
    const char *fname = per_image ? "wider_eval_per_image" : "wider_eval_forward";
    const char *out_name = per_image ? "counts" : "pr_counts";
    if (!PyArg_ParseTuple(args, per_image ? "OOOOOOOOO:wider_eval_per_image" : "OOOOOOOOO:wider_eval_forward",
                          &o_out, &o_pred, &o_poff, &o_gt, &o_goff, &o_cnt, &o_smin, &o_smax, &o_iou))
        return NULL;
    const int d0 = per_image; /* the out array's settings axis */
    if (tll_double_arg(o_smin, "score_min", 1, &score_min) || tll_double_arg(o_smax, "score_max", 1, &score_max) ||
        tll_double_arg(o_iou, "iou_thresh", 0, &iou_thresh))
        return NULL;
    /* checked in argument order; the first failure raises */
    PyArrayObject *out = tll_array_arg(o_out, out_name, 3 + per_image, NPY_INT64, 1);
    PyArrayObject *pred = out ? input_arg(o_pred, "pred", 2, NPY_FLOAT64, 5) : NULL;
    PyArrayObject *poff = pred ? input_arg(o_poff, "pred_offsets", 1, NPY_INT64, -1) : NULL;
    PyArrayObject *gt = poff ? input_arg(o_gt, "gt", 2, NPY_FLOAT64, 4) : NULL;
    PyArrayObject *goff = gt ? input_arg(o_goff, "gt_offsets", 1, NPY_INT64, -1) : NULL;
    PyArrayObject *cnt = goff ? input_arg(o_cnt, "counted", 2, NPY_UINT8, -1) : NULL;
    if (!cnt)
        return NULL;
    PyArrayObject *ins[5] = {pred, poff, gt, goff, cnt};
    const char *in_names[5] = {"pred", "pred_offsets", "gt", "gt_offsets", "counted"};
    if (tll_outputs_disjoint(&out, &out_name, 1, ins, in_names, 5))
        return NULL;

    npy_intp n_images = PyArray_DIM(poff, 0) - 1;
    if (PyArray_DIM(goff, 0) != PyArray_DIM(poff, 0)) {
        PyErr_Format(PyExc_ValueError, "gt_offsets and pred_offsets must have the same length (n_images + 1)");
        return NULL;
    }
    if (check_offsets(poff, "pred_offsets", PyArray_DIM(pred, 0)) ||
        check_offsets(goff, "gt_offsets", PyArray_DIM(gt, 0)))
        return NULL;
    npy_intp n_settings = PyArray_DIM(cnt, 0);
    if (tll_dim_is(cnt, "counted", 1, PyArray_DIM(gt, 0)) || (per_image && tll_dim_is(out, out_name, 0, n_images)) ||
        tll_dim_is(out, out_name, d0, n_settings) || tll_dim_is(out, out_name, d0 + 2, 2))
        return NULL;
    npy_intp n_thresh = PyArray_DIM(out, d0 + 1);
    if (n_thresh < 1) {
        PyErr_Format(PyExc_ValueError, "%s: dimension %d (thresholds) must be at least 1", out_name, d0 + 1);
        return NULL;
    }
    if (check_finite(pred, "pred") || check_finite(gt, "gt"))
        return NULL;
    if (!(iou_thresh > 0.0 && iou_thresh <= 1.0)) {
        PyErr_Format(PyExc_ValueError, "iou_thresh must be in (0, 1], got %g", iou_thresh);
        return NULL;
    }

    tll_status st;
    Py_BEGIN_ALLOW_THREADS
    st = (per_image ? tll_wider_eval_per_image : tll_wider_eval_forward)(
        (int64_t *)PyArray_DATA(out), (const double *)PyArray_DATA(pred), (const int64_t *)PyArray_DATA(poff),
        (const double *)PyArray_DATA(gt), (const int64_t *)PyArray_DATA(goff), (const uint8_t *)PyArray_DATA(cnt),
        (int64_t)n_images, (int64_t)n_settings, (int64_t)n_thresh, score_min, score_max, iou_thresh);
    Py_END_ALLOW_THREADS
    return tll_none_or_raise(st, fname);
}

static PyObject *py_forward(PyObject *self, PyObject *args)
{
    return run(args, 0);
}

PyDoc_STRVAR(per_image_doc,
             "wider_eval_per_image(counts, pred, pred_offsets, gt, gt_offsets, counted, score_min, score_max, "
             "iou_thresh)\n\n"
             "As wider_eval_forward, but fill counts (I, S, T, 2) int64 with each image's own (counted\n"
             "proposals, recalled faces); summed over images they are wider_eval_forward's pr_counts.\n"
             "Private: use tasklle.ops.wider_pr_counts(..., per_image=True).");

static PyObject *py_per_image(PyObject *self, PyObject *args)
{
    return run(args, 1);
}


PyMethodDef tll_wider_eval_methods[] = {
    {"wider_eval_forward", py_forward, METH_VARARGS, forward_doc},
    {"wider_eval_per_image", py_per_image, METH_VARARGS, per_image_doc},
    {NULL, NULL, 0, NULL},
};
