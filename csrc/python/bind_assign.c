/*
 * Binding of the anchor assignment (core/assign.c):
 *   _C.assign_max_iou(assigned, max_iou, anchors, gts, gt_ignore,
 *                     pos_thr, neg_thr, min_pos_thr, gt_max_assign_all, match_low_quality)
 * assigned (A,) int64 and max_iou (A,) of the anchors' dtype are outputs;
 * anchors (A, 4) and gts (G, 4) float32/float64 of one dtype; gt_ignore (G,)
 * uint8 or None. anchors and gts must be finite (ValueError naming them).
 */
#include "bind_common.h"
#include "bind_finite.h"

static PyObject *py_assign_max_iou(PyObject *self, PyObject *args)
{
    PyObject *ao_, *mo, *ano, *go, *io, *pos_o, *neg_o, *min_pos_o;
    double pos, neg, min_pos;
    int all, lowq;
    if (!PyArg_ParseTuple(args, "OOOOOOOOpp:assign_max_iou", &ao_, &mo, &ano, &go, &io, &pos_o, &neg_o, &min_pos_o,
                          &all, &lowq))
        return NULL;
    PyArrayObject *anchors = tll_array_arg(ano, "anchors", 2, TLL_DT_FLOAT, 0);
    if (!anchors || tll_dim_is(anchors, "anchors", 1, 4) || tll_require_finite(anchors, "anchors"))
        return NULL;
    PyArrayObject *gts = tll_array_arg(go, "gts", 2, TLL_DT_FLOAT, 0);
    if (!gts || tll_dim_is(gts, "gts", 1, 4) || tll_same_dtype(gts, "gts", anchors, "anchors") ||
        tll_require_finite(gts, "gts"))
        return NULL;
    npy_intp na = PyArray_DIM(anchors, 0), ng = PyArray_DIM(gts, 0);
    PyArrayObject *ign = NULL;
    if (io != Py_None) {
        ign = tll_array_arg(io, "gt_ignore", 1, NPY_UINT8, 0);
        if (!ign || tll_dim_is(ign, "gt_ignore", 0, ng))
            return NULL;
    }
    PyArrayObject *assigned = tll_array_arg(ao_, "assigned", 1, NPY_INT64, 1);
    if (!assigned || tll_dim_is(assigned, "assigned", 0, na))
        return NULL;
    PyArrayObject *max_iou = tll_array_arg(mo, "max_iou", 1, TLL_DT_FLOAT, 1);
    if (!max_iou || tll_dim_is(max_iou, "max_iou", 0, na) || tll_same_dtype(max_iou, "max_iou", anchors, "anchors"))
        return NULL;
    if (tll_double_arg(pos_o, "pos_thr", 1, &pos) || tll_double_arg(neg_o, "neg_thr", 1, &neg) ||
        tll_double_arg(min_pos_o, "min_pos_thr", 1, &min_pos))
        return NULL;
    PyArrayObject *outs[2] = {assigned, max_iou}, *ins[3] = {anchors, gts, ign};
    const char *out_names[2] = {"assigned", "max_iou"}, *in_names[3] = {"anchors", "gts", "gt_ignore"};
    if (tll_outputs_disjoint(outs, out_names, 2, ins, in_names, 3))
        return NULL;
    const uint8_t *ig = ign ? PyArray_DATA(ign) : NULL;
    tll_status st;
    tll_set_poll(tll_poll_signals, NULL); /* anchors x gts work: Ctrl-C must stop it */
    Py_BEGIN_ALLOW_THREADS
    st = TLL_CALL_BY_DTYPE(anchors, tll_assign_max_iou, PyArray_DATA(assigned), PyArray_DATA(max_iou),
                           PyArray_DATA(anchors), na, PyArray_DATA(gts), ng, ig, pos, neg, min_pos, all, lowq);
    Py_END_ALLOW_THREADS
    tll_set_poll(NULL, NULL);
    return tll_none_or_raise(st, "assign_max_iou");
}

PyMethodDef tll_assign_methods[] = {
    {"assign_max_iou", py_assign_max_iou, METH_VARARGS,
     "assign_max_iou(assigned, max_iou, anchors, gts, gt_ignore_u8_or_None, pos_thr, neg_thr, min_pos_thr, "
     "gt_max_assign_all, match_low_quality)"},
    {NULL, NULL, 0, NULL},
};
