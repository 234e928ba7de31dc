/*
 * tasklle.h -- the public API of the tasklle C core. Plain C11, no Python.
 *
 * Conventions (read these before calling anything):
 *  - Names are tll_<op>_<forward|backward>; outputs come first, sizes are explicit.
 *  - Every function returns a tll_status. The core validates nothing that the
 *    binding already validated (dtype, shape, contiguity); it reports only what
 *    it alone can see (allocation failure, a size that overflows).
 *  - Tensors are dense, C-contiguous, row-major (B, C, H, W) unless stated.
 *  - Allocation policy: kernels allocate only small per-thread scratch, stated in
 *    each kernel's comment; large outputs are always provided by the caller.
 *  - Determinism: reductions use per-thread partials combined in a fixed order,
 *    so results do not depend on the thread count beyond what each kernel states.
 *  - Threads: one process-wide setting, tll_set_num_threads(); every parallel
 *    region uses it.
 */
#ifndef TASKLLE_H
#define TASKLLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TLL_OK = 0,
    TLL_ERR_NOMEM = 1,     /* an allocation failed */
    TLL_ERR_ARG = 2,       /* an argument is out of range (the binding should have caught it) */
    TLL_ERR_OVERFLOW = 3,  /* a size computation overflowed */
} tll_status;

/* Human-readable text for a status code (static storage). */
const char *tll_status_string(tll_status s);

/* ---- threads (core/threads.c) ------------------------------------------ */
/* n <= 0 restores the default (the number of processors OpenMP sees). */
void tll_set_num_threads(int n);
int tll_get_num_threads(void);
/* 1 if the core was compiled with OpenMP. */
int tll_have_openmp(void);

/* ---- curve (core/curve.c) ---------------------------------------------- */
/* BEGIN curve */
/* END curve */

/* ---- Zero-DCE losses (core/zerodce_loss.c) ----------------------------- */
/* BEGIN zerodce_loss */
/* END zerodce_loss */

/* ---- boxes: IoU, DIoU, NMS (core/boxes.c) ------------------------------ */
/* BEGIN boxes */
/* END boxes */

/* ---- anchor assignment (core/assign.c) --------------------------------- */
/* BEGIN assign */
/* END assign */

/* ---- WIDER FACE evaluation (core/wider_eval.c) ------------------------- */
/* BEGIN wider_eval */
/* END wider_eval */

#ifdef __cplusplus
}
#endif
#endif /* TASKLLE_H */
