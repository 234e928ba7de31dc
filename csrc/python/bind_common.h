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

/* Turn a non-OK status into a Python exception naming `what`; returns NULL. */
PyObject *tll_raise_status(tll_status s, const char *what);

/* Method tables of each kernel family (one binding file each). */
extern PyMethodDef tll_curve_methods[];
extern PyMethodDef tll_zerodce_loss_methods[];
extern PyMethodDef tll_boxes_methods[];
extern PyMethodDef tll_assign_methods[];
extern PyMethodDef tll_wider_eval_methods[];
extern PyMethodDef tll_separable_conv_methods[];

#endif
