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

#include <stdint.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "tasklle.h"

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

/*
 * Per-thread scratch of one call: nthreads slots of `per` bytes each (rounded
 * up to 64) in one allocation, every slot 64-byte aligned (whole cache lines:
 * no false sharing, aligned vector loads). A parallel region indexes its slot
 * by tll_thread_id().
 */
typedef struct {
    unsigned char *block, *base;
    size_t per;
} tll_scratch;

static inline tll_status tll_scratch_alloc(tll_scratch *s, size_t bytes_per_thread, int nthreads)
{
    size_t n = nthreads < 1 ? 1 : (size_t)nthreads;
    if (bytes_per_thread > SIZE_MAX - 63)
        return TLL_ERR_OVERFLOW;
    s->per = (bytes_per_thread + 63) / 64 * 64;
    if (s->per > (SIZE_MAX - 64) / n)
        return TLL_ERR_OVERFLOW;
    s->block = malloc(s->per * n + 64);
    if (!s->block)
        return TLL_ERR_NOMEM;
    s->base = s->block + (64 - (uintptr_t)s->block % 64) % 64;
    return TLL_OK;
}

/* The calling thread's slot. */
static inline void *tll_scratch_slot(const tll_scratch *s)
{
    return s->base + s->per * (size_t)tll_thread_id();
}

#endif /* TLL_TMPL_H */
