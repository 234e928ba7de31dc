/*
 * bind_common.h -- shared helpers for the CPython/NumPy binding of the tasklle core.
 * This directory is the only C that includes Python.h or NumPy headers.
 *
 * Convention for every binding function: outputs are preallocated arrays passed
 * first, then inputs, then scalars; the binding checks dtype, ndim, shape,
 * C-contiguity, alignment and writability, releases the GIL around the kernel and
 * turns a tll_status into a Python exception that names the argument.
 */
#ifndef TLL_BIND_COMMON_H
#define TLL_BIND_COMMON_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define PY_ARRAY_UNIQUE_SYMBOL tasklle_ARRAY_API
#ifndef TLL_BIND_MAIN
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "tasklle.h"

/* Accepted dtype sets for tll_array_arg. */
#define TLL_DT_FLOAT (-1)   /* float32 or float64 */

/*
 * Check that obj is a C-contiguous, aligned NumPy array named `name` with the
 * given ndim (-1: any) and dtype (a NumPy type number, or TLL_DT_FLOAT).
 * writable != 0 also demands a writeable array (outputs). Returns a borrowed
 * PyArrayObject* or NULL with TypeError/ValueError set.
 */
PyArrayObject *tll_array_arg(PyObject *obj, const char *name, int ndim, int typenum, int writable);

/* Raise ValueError unless a and b have the same dtype. Returns 0 on success. */
int tll_same_dtype(PyArrayObject *a, const char *na, PyArrayObject *b, const char *nb);

/* Raise ValueError unless a and b have the same shape. Returns 0 on success. */
int tll_same_shape(PyArrayObject *a, const char *na, PyArrayObject *b, const char *nb);

/* Raise ValueError unless dimension `dim` of a equals `expect`. Returns 0 on success. */
int tll_dim_is(PyArrayObject *a, const char *na, int dim, npy_intp expect);

/* Raise ValueError if output array `o` (named no) shares memory with array `i`
 * (named ni); both C-contiguous, so comparing byte ranges is exact. NULL
 * arrays and empty arrays never overlap. Returns 0 on success. */
int tll_no_overlap(PyArrayObject *o, const char *no, PyArrayObject *i, const char *ni);

/* The general rule every binding applies once all its arrays are checked: no
 * output may share memory with any input or with another output (a kernel
 * reads its inputs while it writes its outputs, so an overlap gives silently
 * wrong results). outs/ins may contain NULL (absent optional arrays).
 * Returns 0 on success, -1 with ValueError naming both arrays. */
int tll_outputs_disjoint(PyArrayObject *const *outs, const char *const *out_names, int n_out,
                         PyArrayObject *const *ins, const char *const *in_names, int n_in);

/*
 * Integer scalar argument for C: obj must be a Python int (or an object with
 * __index__, but not bool) in [lo, hi]. TypeError for another type, ValueError
 * naming the argument when out of range -- never OverflowError, however large
 * the value. Returns 0 on success.
 */
int tll_int_arg(PyObject *obj, const char *name, long long lo, long long hi, long long *out);

/* Float scalar argument for C: a real number (int, float, NumPy scalar; not bool)
 * convertible to double; require_finite != 0 also rejects NaN and inf. TypeError
 * / ValueError naming the argument, never OverflowError. Returns 0 on success. */
int tll_double_arg(PyObject *obj, const char *name, int require_finite, double *out);

/* The largest number of curve iterations the binding accepts (see
 * tasklle.reference.curve.MAX_ITERATIONS): Zero-DCE uses 8, LEDNet's darkener 10;
 * the bound keeps a curve call's work a small multiple of its input size. */
#define TLL_MAX_CURVE_ITERATIONS 64

/* A tll_poll_fn for the kernels that poll (tll_set_poll): takes the GIL, runs
 * Python's signal handlers (PyErr_CheckSignals) and answers "stop" when one
 * raised (KeyboardInterrupt for Ctrl-C); the exception stays set for the
 * binding to return. Install with tll_set_poll(tll_poll_signals, NULL) before
 * Py_BEGIN_ALLOW_THREADS and remove with tll_set_poll(NULL, NULL) after. */
int tll_poll_signals(void *ctx);

/* Turn a non-OK status into a Python exception naming `what`; returns NULL.
 * TLL_ERR_INTERRUPTED keeps the exception the poll function set. */
PyObject *tll_raise_status(tll_status s, const char *what);

/* A binding's result when its kernel returns nothing: None for TLL_OK, else
 * tll_raise_status(s, what). */
PyObject *tll_none_or_raise(tll_status s, const char *what);

/*
 * Calling a kernel of the array's dtype. Every kernel family has a _f32 and a
 * _f64 entry point with the same parameters but the element type, and the
 * binding has checked (tll_array_arg, tll_same_dtype) that `a` and every
 * array passed are float32 or float64 alike. So the arguments are written
 * once, array data as `void *` (tll_data / tll_data_at, which C converts to
 * either element type), and TLL_CALL_BY_DTYPE(a, tll_x_forward, args...) calls
 * tll_x_forward_f32(args...) or tll_x_forward_f64(args...).
 */
#define TLL_CALL_BY_DTYPE(a, k, ...) (PyArray_TYPE(a) == NPY_FLOAT32 ? k##_f32(__VA_ARGS__) : k##_f64(__VA_ARGS__))

/* The data of an optional array: NULL for a NULL (absent) array. */
static inline void *tll_data(PyArrayObject *a)
{
    return a ? PyArray_DATA(a) : NULL;
}

/* The data of an optional array from byte `offset` on (a batch chunk); NULL for a NULL array. */
static inline void *tll_data_at(PyArrayObject *a, size_t offset)
{
    return a ? (char *)PyArray_DATA(a) + offset : NULL;
}

/* Method tables of each kernel family (one binding file each). */
extern PyMethodDef tll_curve_methods[];
extern PyMethodDef tll_zerodce_loss_methods[];
extern PyMethodDef tll_boxes_methods[];
extern PyMethodDef tll_assign_methods[];
extern PyMethodDef tll_wider_eval_methods[];
extern PyMethodDef tll_separable_conv_methods[];

#endif
