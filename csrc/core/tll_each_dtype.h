/*
 * tll_each_dtype.h -- private to csrc/core: includes the template named by
 * TLL_TMPL once per element type, with T and S defined (see tll_tmpl.h).
 * Deliberately without an include guard: it is included once per family file.
 */
#include "tll_tmpl.h"

#ifndef TLL_TMPL
#error "define TLL_TMPL as the template's file name before including tll_each_dtype.h"
#endif

#define T float
#define S f32
#include TLL_TMPL
#undef T
#undef S

#define T double
#define S f64
#include TLL_TMPL
#undef T
#undef S

#undef TLL_TMPL
