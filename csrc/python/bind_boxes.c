/* Binding of the boxes kernels (placeholder until the family lands). */
#include "bind_common.h"

PyMethodDef tll_boxes_methods[] = {
    {NULL, NULL, 0, NULL},
};
