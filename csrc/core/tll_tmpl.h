/*
 * tll_tmpl.h -- private to csrc/core: the one pattern of the kernel templates.
 *
 * A kernel family is a .c file (its manual, its type-independent helpers) and
 * a <family>_tmpl.h template written once in terms of an element type T and a
 * name suffix S. The .c file instantiates it for float (S = f32) and double
 * (S = f64) with
 *
 *     #define TLL_TMPL "family_tmpl.h"
 *     #include "tll_each_dtype.h"
 *
 * so every kernel is real code with real line numbers (for the compiler, gdb
 * and the sanitizers), not a multi-line macro. Inside a template, FN(name)
 * appends the suffix: FN(tll_curve_forward_) is tll_curve_forward_f32 in the
 * float instance. A template #undefs the helper macros it defines itself.
 */
#ifndef TLL_TMPL_H
#define TLL_TMPL_H

#ifdef _OPENMP
#include <omp.h>
#endif

#define TLL_CAT_(a, b) a##b
#define TLL_CAT(a, b) TLL_CAT_(a, b)
/* name with the element type's suffix appended (S is expanded where FN is used) */
#define FN(name) TLL_CAT(name, S)

/* The calling thread's index in the current parallel region (0 outside one, or
   without OpenMP): the index of its slot in per-thread scratch. */
static inline int tll_thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

#endif /* TLL_TMPL_H */
