/* Binding of the assign kernels (placeholder until the family lands). */
#include "bind_common.h"

PyMethodDef tll_assign_methods[] = {
    {NULL, NULL, 0, NULL},
};
