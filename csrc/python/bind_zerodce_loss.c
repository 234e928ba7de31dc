/* Binding of the zerodce_loss kernels (placeholder until the family lands). */
#include "bind_common.h"

PyMethodDef tll_zerodce_loss_methods[] = {
    {NULL, NULL, 0, NULL},
};
