/* Binding of the curve kernels (placeholder until the family lands). */
#include "bind_common.h"

PyMethodDef tll_curve_methods[] = {
    {NULL, NULL, 0, NULL},
};
