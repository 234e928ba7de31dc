/* Binding of the wider_eval kernels (placeholder until the family lands). */
#include "bind_common.h"

PyMethodDef tll_wider_eval_methods[] = {
    {NULL, NULL, 0, NULL},
};
