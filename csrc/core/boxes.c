/*
 * Box kernels: pairwise / aligned IoU, mmdet DIoU loss forward and backward,
 * greedy NMS (float32 and float64; the bodies are in boxes_tmpl.h).
 * Semantics and operation order follow tasklle.reference.boxes exactly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "tasklle.h"

/* GCC keeps float selects (a > b ? a : b) as branches under its default
   -ftrapping-math, which stops the pair loops from vectorizing. The kernels
   raise no FP exceptions anyone observes, and the flag changes no IEEE result
   (contraction stays off), so it is lifted for this file -- before the
   templates (and box_iou_tmpl.h in them), so that every function here has the
   same options and inlines. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

/* Pairs per partial sum of the DIoU forward: fixed, so the sum does not depend on threads. */
#define TLL_DIOU_BLOCK 4096
/* Pairs per tile of the DIoU backward (local buffers of 9 values per pair). */
#define TLL_DIOU_TILE 256

/*
 * order (n) <- 0..n-1 sorted by descending score, equal scores in index order
 * (bottom-up merge sort; tmp is n scratch). NaN compares as "not greater", so
 * it never makes the comparison inconsistent -- the order is merely arbitrary.
 */
static void tll_sort_desc_stable(int64_t *order, int64_t *tmp, const double *scores, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    int64_t *src = order, *dst = tmp;
    for (int64_t width = 1; width < n; width *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * width) {
            int64_t mid = lo + width < n ? lo + width : n;
            int64_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            int64_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi) /* right wins only when strictly greater: stable */
                dst[o++] = scores[src[j]] > scores[src[i]] ? src[j++] : src[i++];
            while (i < mid)
                dst[o++] = src[i++];
            while (j < hi)
                dst[o++] = src[j++];
        }
        int64_t *s = src;
        src = dst;
        dst = s;
    }
    if (src != order)
        memcpy(order, src, (size_t)n * sizeof(int64_t));
}

#define TLL_TMPL "boxes_tmpl.h"
#include "tll_each_dtype.h"
