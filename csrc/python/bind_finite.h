/*
 * bind_finite.h -- private to bind_boxes.c and bind_assign.c: a fast "all values
 * finite" check of a float32/float64 array, so the C path validates its inputs
 * in one vectorizable pass (exponent bits, OR-reduced) instead of torch.isfinite.
 */
#ifndef TLL_BIND_FINITE_H
#define TLL_BIND_FINITE_H
#include <string.h>

#include "bind_common.h"

/* 0 if every element of the (contiguous, float) array is finite; else ValueError naming it, -1. */
static int tll_require_finite(PyArrayObject *a, const char *name)
{
    npy_intp n = PyArray_SIZE(a);
    unsigned bad = 0;
    if (PyArray_TYPE(a) == NPY_FLOAT32) {
        const uint32_t *v = PyArray_DATA(a); /* aligned float32 data viewed as its bits */
        for (npy_intp i = 0; i < n; i++)
            bad |= (v[i] & 0x7f800000u) == 0x7f800000u;
    } else {
        const uint64_t *v = PyArray_DATA(a);
        for (npy_intp i = 0; i < n; i++)
            bad |= (v[i] & 0x7ff0000000000000ull) == 0x7ff0000000000000ull;
    }
    if (bad) {
        PyErr_Format(PyExc_ValueError, "%s must contain only finite values (found NaN or inf)", name);
        return -1;
    }
    return 0;
}
#endif
