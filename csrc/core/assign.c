/*
 * Max-IoU anchor assignment (mmdet MaxIoUAssigner as configured by TinaFace),
 * float32 and float64; the body is in assign_tmpl.h. Semantics:
 * tasklle.reference.assign. Memory O(A + G) plus O(G) per thread: the A x G
 * IoU matrix is never stored -- it is recomputed in a second pass, and only
 * for anchors that can take part in low-quality matching.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "tasklle.h"

/* As in boxes.c: GCC keeps float selects as branches under -ftrapping-math, which
   stops the IoU loops from vectorizing; lifting it changes no IEEE result. Set
   before the template (and box_iou_tmpl.h in it) so every function here shares
   the options. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

/* Anchors per block: gts that cannot overlap a block's bounding box are skipped
   for the whole block (anchors in grid order make blocks spatially compact). */
#define TLL_ASSIGN_BLOCK 64
/* anchors x gts below which both passes run on one thread */
#define TLL_ASSIGN_PARALLEL_PAIRS 65536.0

/* Anchors [lo, hi) of block blk; 0 (skip the block) once thread 0 has seen the
   caller ask to stop, so the other threads skip their remaining blocks. */
static inline int assign_block(int *stop, int64_t blk, int64_t na, int64_t *lo, int64_t *hi)
{
    int s;
#pragma omp atomic read
    s = *stop;
    *lo = blk * TLL_ASSIGN_BLOCK;
    *hi = *lo + TLL_ASSIGN_BLOCK < na ? *lo + TLL_ASSIGN_BLOCK : na;
    return !s;
}

/* Count `add` units of work on this thread; thread 0 (the caller's thread, the
   only one with the poll function: see tll_set_poll) asks tll_poll() after
   every TLL_POLL_WORK of its own. Returns 1 (and sets *stop) when asked to stop. */
static inline int assign_poll(int tid, int64_t *work, int64_t add, int *stop)
{
    *work += add;
    if (tid != 0 || *work < TLL_POLL_WORK)
        return 0;
    *work = 0;
    if (!tll_poll())
        return 0;
#pragma omp atomic write
    *stop = 1;
    return 1;
}

#define TLL_TMPL "assign_tmpl.h"
#include "tll_each_dtype.h"
