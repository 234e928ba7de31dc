/*
 * Binding of the fused Zero-DCE losses (core/zerodce_loss.c):
 *   _C.zerodce_loss_forward(losses, grad_spa, grad_exp, grad_col, enhanced, original, exposure,
 *                           spa_pool, exp_pool, terms)
 *   _C.zerodce_loss_backward(grad_enhanced, grad_original, grad_spa, grad_exp, grad_col,
 *                            spa_pool, exp_pool, c_spa, c_exp, c_col)
 *   _C.zerodce_loss_tv_forward(loss, grad, curve_maps, coef)
 *   _C.zerodce_loss_tv_backward(grad, curve_maps, coef)
 * Outputs first (preallocated, C-contiguous), then inputs, then scalars.
 * Images and their gradients: float32 or float64 (B,3,H,W), one dtype; losses and
 * the compact gradients: float64. Arrays of terms not selected may be None.
 */
#include "bind_common.h"

/* A float64 array of the given shape (ndim <= 3), or NULL with an exception set. */
static PyArrayObject *f64_shaped(PyObject *obj, const char *name, int ndim, const npy_intp *shape, int writable)
{
    PyArrayObject *a = tll_array_arg(obj, name, ndim, NPY_FLOAT64, writable);
    if (!a)
        return NULL;
    for (int d = 0; d < ndim; d++)
        if (tll_dim_is(a, name, d, shape[d]))
            return NULL;
    return a;
}

/* Optional float64 array: None -> *out = NULL (allowed only when !required). */
static int f64_optional(PyObject *obj, const char *name, int required, int ndim, const npy_intp *shape,
                        int writable, PyArrayObject **out)
{
    *out = NULL;
    if (obj == Py_None) {
        if (required) {
            PyErr_Format(PyExc_ValueError, "%s is required for the selected terms", name);
            return -1;
        }
        return 0;
    }
    *out = f64_shaped(obj, name, ndim, shape, writable);
    return *out ? 0 : -1;
}

/* spa_pool and exp_pool: ints >= 1 (TypeError/ValueError naming them, never OverflowError). */
static int check_pools(PyObject *pso, PyObject *peo, Py_ssize_t *spa_pool, Py_ssize_t *exp_pool)
{
    long long ps, pe;
    if (tll_int_arg(pso, "spa_pool", 1, PY_SSIZE_T_MAX, &ps) || tll_int_arg(peo, "exp_pool", 1, PY_SSIZE_T_MAX, &pe))
        return -1;
    *spa_pool = (Py_ssize_t)ps;
    *exp_pool = (Py_ssize_t)pe;
    return 0;
}

/* The image (B,3,H,W) of a float dtype, non-empty. */
static PyArrayObject *image_arg(PyObject *obj, const char *name, int writable)
{
    PyArrayObject *a = tll_array_arg(obj, name, 4, TLL_DT_FLOAT, writable);
    if (!a || tll_dim_is(a, name, 1, 3))
        return NULL;
    if (PyArray_DIM(a, 0) < 1 || PyArray_DIM(a, 2) < 1 || PyArray_DIM(a, 3) < 1) {
        PyErr_Format(PyExc_ValueError, "%s must not be empty, got shape (%zd, 3, %zd, %zd)", name,
                     (Py_ssize_t)PyArray_DIM(a, 0), (Py_ssize_t)PyArray_DIM(a, 2), (Py_ssize_t)PyArray_DIM(a, 3));
        return NULL;
    }
    return a;
}

static int pool_fits(const char *what, Py_ssize_t pool, npy_intp h, npy_intp w)
{
    if (h < pool || w < pool) {
        PyErr_Format(PyExc_ValueError, "%s needs height and width >= its pool size %zd, got %zd x %zd", what, pool,
                     (Py_ssize_t)h, (Py_ssize_t)w);
        return -1;
    }
    return 0;
}

static PyObject *py_forward(PyObject *self, PyObject *args)
{
    PyObject *lo, *gso, *geo, *gco, *yo, *io, *eo, *pso, *peo, *to;
    Py_ssize_t ps, pe;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOO:zerodce_loss_forward", &lo, &gso, &geo, &gco, &yo, &io, &eo, &pso, &peo,
                          &to))
        return NULL;
    if (check_pools(pso, peo, &ps, &pe))
        return NULL;
    /* the whole value is range-checked (a C unsigned parse would silently truncate 2**32+1 to 1) */
    long long terms_ll;
    if (tll_int_arg(to, "terms", 1, TLL_ZDCE_SPA | TLL_ZDCE_EXP | TLL_ZDCE_COL, &terms_ll))
        return NULL;
    unsigned int terms = (unsigned int)terms_ll;
    const int spa = (terms & TLL_ZDCE_SPA) != 0, ex = (terms & TLL_ZDCE_EXP) != 0, col = (terms & TLL_ZDCE_COL) != 0;
    PyArrayObject *Y = image_arg(yo, "enhanced", 0);
    if (!Y)
        return NULL;
    npy_intp B = PyArray_DIM(Y, 0), H = PyArray_DIM(Y, 2), W = PyArray_DIM(Y, 3);
    PyArrayObject *Iarr = NULL;
    if (spa) {
        Iarr = image_arg(io, "original", 0);
        if (!Iarr || tll_same_dtype(Iarr, "original", Y, "enhanced") ||
            tll_same_shape(Iarr, "original", Y, "enhanced") || pool_fits("spatial consistency", ps, H, W))
            return NULL;
    }
    if (ex && pool_fits("exposure control", pe, H, W))
        return NULL;
    npy_intp three = 3, sb[1] = {B};
    npy_intp shs[3] = {B, H / ps, W / ps}, she[3] = {B, H / pe, W / pe}, shc[2] = {B, 3};
    PyArrayObject *L, *gs, *ge, *gc, *E = NULL;
    L = f64_shaped(lo, "losses", 1, &three, 1);
    if (!L || f64_optional(gso, "grad_spa", spa, 3, shs, 1, &gs) ||
        f64_optional(geo, "grad_exp", ex, 3, she, 1, &ge) || f64_optional(gco, "grad_col", col, 2, shc, 1, &gc))
        return NULL;
    if (ex) {
        E = f64_shaped(eo, "exposure", 1, sb, 0);
        if (!E)
            return NULL;
    }
    if (!spa)
        gs = NULL;
    if (!ex)
        ge = NULL;
    if (!col)
        gc = NULL;
    PyArrayObject *outs[4] = {L, gs, ge, gc}, *ins[3] = {Y, Iarr, E};
    const char *onames[4] = {"losses", "grad_spa", "grad_exp", "grad_col"};
    const char *inames[3] = {"enhanced", "original", "exposure"};
    if (tll_outputs_disjoint(outs, onames, 4, ins, inames, 3))
        return NULL;
    tll_status st;
    Py_BEGIN_ALLOW_THREADS;
    st = TLL_CALL_BY_DTYPE(Y, tll_zerodce_loss_forward, PyArray_DATA(L), tll_data(gs), tll_data(ge), tll_data(gc),
                           PyArray_DATA(Y), tll_data(Iarr), tll_data(E), (size_t)B, (size_t)H, (size_t)W, (size_t)ps,
                           (size_t)pe, terms);
    Py_END_ALLOW_THREADS;
    return tll_none_or_raise(st, "zerodce_loss_forward");
}

static PyObject *py_backward(PyObject *self, PyObject *args)
{
    PyObject *gyo, *gio, *gso, *geo, *gco, *pso, *peo, *cso, *ceo, *cco;
    Py_ssize_t ps, pe;
    double cs, ce, cc;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOO:zerodce_loss_backward", &gyo, &gio, &gso, &geo, &gco, &pso, &peo, &cso,
                          &ceo, &cco))
        return NULL;
    /* the coefficients come from upstream gradients: NaN/inf propagate, as in torch */
    if (check_pools(pso, peo, &ps, &pe) || tll_double_arg(cso, "c_spa", 0, &cs) || tll_double_arg(ceo, "c_exp", 0, &ce) ||
        tll_double_arg(cco, "c_col", 0, &cc))
        return NULL;
    PyArrayObject *gY = image_arg(gyo, "grad_enhanced", 1), *gI = NULL;
    if (!gY)
        return NULL;
    npy_intp B = PyArray_DIM(gY, 0), H = PyArray_DIM(gY, 2), W = PyArray_DIM(gY, 3);
    if (gio != Py_None) {
        gI = image_arg(gio, "grad_original", 1);
        if (!gI || tll_same_dtype(gI, "grad_original", gY, "grad_enhanced") ||
            tll_same_shape(gI, "grad_original", gY, "grad_enhanced"))
            return NULL;
    }
    PyArrayObject *gs = NULL, *ge = NULL, *gc = NULL;
    if (gso != Py_None || gI) {
        if (pool_fits("spatial consistency", ps, H, W))
            return NULL;
        npy_intp shs[3] = {B, H / ps, W / ps};
        if (f64_optional(gso, "grad_spa", gI != NULL, 3, shs, 0, &gs))
            return NULL;
    }
    if (geo != Py_None) {
        if (pool_fits("exposure control", pe, H, W))
            return NULL;
        npy_intp she[3] = {B, H / pe, W / pe};
        if (f64_optional(geo, "grad_exp", 0, 3, she, 0, &ge))
            return NULL;
    }
    npy_intp shc[2] = {B, 3};
    if (f64_optional(gco, "grad_col", 0, 2, shc, 0, &gc))
        return NULL;
    PyArrayObject *outs[2] = {gY, gI}, *ins[3] = {gs, ge, gc};
    const char *onames[2] = {"grad_enhanced", "grad_original"}, *inames[3] = {"grad_spa", "grad_exp", "grad_col"};
    if (tll_outputs_disjoint(outs, onames, 2, ins, inames, 3))
        return NULL;
    tll_status st;
    Py_BEGIN_ALLOW_THREADS;
    st = TLL_CALL_BY_DTYPE(gY, tll_zerodce_loss_backward, PyArray_DATA(gY), tll_data(gI), tll_data(gs), tll_data(ge),
                           tll_data(gc), (size_t)B, (size_t)H, (size_t)W, (size_t)ps, (size_t)pe, cs, ce, cc);
    Py_END_ALLOW_THREADS;
    return tll_none_or_raise(st, "zerodce_loss_backward");
}

/* curve_maps (B,C,H,W) non-empty, its shape into dims; grad (same shape and dtype) optional. */
static int tv_args(PyObject *go, int grad_required, PyObject *ao, PyArrayObject **A, PyArrayObject **g, size_t *dims)
{
    *g = NULL;
    *A = tll_array_arg(ao, "curve_maps", 4, TLL_DT_FLOAT, 0);
    if (!*A)
        return -1;
    for (int d = 0; d < 4; d++) {
        if (PyArray_DIM(*A, d) < 1) {
            PyErr_SetString(PyExc_ValueError, "curve_maps must not be empty");
            return -1;
        }
        dims[d] = (size_t)PyArray_DIM(*A, d);
    }
    if (go == Py_None) {
        if (grad_required) {
            PyErr_SetString(PyExc_ValueError, "grad is required");
            return -1;
        }
        return 0;
    }
    *g = tll_array_arg(go, "grad", 4, TLL_DT_FLOAT, 1);
    if (!*g || tll_same_dtype(*g, "grad", *A, "curve_maps") || tll_same_shape(*g, "grad", *A, "curve_maps"))
        return -1;
    return 0;
}

static PyObject *py_tv_forward(PyObject *self, PyObject *args)
{
    PyObject *lo, *go, *ao, *co;
    double coef;
    if (!PyArg_ParseTuple(args, "OOOO:zerodce_loss_tv_forward", &lo, &go, &ao, &co))
        return NULL;
    PyArrayObject *A, *g;
    size_t d[4];
    npy_intp one = 1;
    PyArrayObject *L = f64_shaped(lo, "loss", 1, &one, 1);
    if (!L || tv_args(go, 0, ao, &A, &g, d) || tll_double_arg(co, "coef", 0, &coef))
        return NULL;
    PyArrayObject *outs[2] = {L, g};
    const char *onames[2] = {"loss", "grad"}, *iname = "curve_maps";
    if (tll_outputs_disjoint(outs, onames, 2, &A, &iname, 1))
        return NULL;
    tll_status st;
    Py_BEGIN_ALLOW_THREADS;
    st = TLL_CALL_BY_DTYPE(A, tll_zerodce_tv_forward, PyArray_DATA(L), tll_data(g), PyArray_DATA(A), d[0], d[1], d[2],
                           d[3], coef);
    Py_END_ALLOW_THREADS;
    return tll_none_or_raise(st, "zerodce_loss_tv_forward");
}

static PyObject *py_tv_backward(PyObject *self, PyObject *args)
{
    PyObject *go, *ao, *co;
    double coef;
    if (!PyArg_ParseTuple(args, "OOO:zerodce_loss_tv_backward", &go, &ao, &co))
        return NULL;
    PyArrayObject *A, *g;
    size_t d[4];
    const char *oname = "grad", *iname = "curve_maps";
    if (tv_args(go, 1, ao, &A, &g, d) || tll_double_arg(co, "coef", 0, &coef) ||
        tll_outputs_disjoint(&g, &oname, 1, &A, &iname, 1))
        return NULL;
    tll_status st;
    Py_BEGIN_ALLOW_THREADS;
    st = TLL_CALL_BY_DTYPE(A, tll_zerodce_tv_backward, PyArray_DATA(g), PyArray_DATA(A), d[0], d[1], d[2], d[3], coef);
    Py_END_ALLOW_THREADS;
    return tll_none_or_raise(st, "zerodce_loss_tv_backward");
}

PyMethodDef tll_zerodce_loss_methods[] = {
    {"zerodce_loss_forward", py_forward, METH_VARARGS,
     "zerodce_loss_forward(losses, grad_spa, grad_exp, grad_col, enhanced, original, exposure, spa_pool,\n"
     "exp_pool, terms): losses (3,) float64 <- L_spa, L_exp, L_col (selected by the mask terms: SPA=1, EXP=2,\n"
     "COL=4); grad_spa (B,H//spa_pool,W//spa_pool), grad_exp (B,H//exp_pool,W//exp_pool), grad_col (B,3)\n"
     "float64 <- the per-pixel gradients of each loss w.r.t. enhanced. enhanced, original: (B,3,H,W)\n"
     "float32/float64; exposure (B,) float64. Arrays of unselected terms may be None."},
    {"zerodce_loss_backward", py_backward, METH_VARARGS,
     "zerodce_loss_backward(grad_enhanced, grad_original, grad_spa, grad_exp, grad_col, spa_pool, exp_pool,\n"
     "c_spa, c_exp, c_col): grad_enhanced <- c_spa*grad_spa + c_exp*grad_exp + c_col*grad_col (broadcast to\n"
     "(B,3,H,W)); grad_original <- -c_spa*grad_spa (may be None). Compact gradients may be None (skipped)."},
    {"zerodce_loss_tv_forward", py_tv_forward, METH_VARARGS,
     "zerodce_loss_tv_forward(loss, grad, curve_maps, coef): loss (1,) float64 <- L_tvA(curve_maps);\n"
     "grad (like curve_maps, may be None) <- coef * dL_tvA/dcurve_maps in the same pass."},
    {"zerodce_loss_tv_backward", py_tv_backward, METH_VARARGS,
     "zerodce_loss_tv_backward(grad, curve_maps, coef): grad <- coef * dL_tvA/dcurve_maps."},
    {NULL, NULL, 0, NULL},
};
