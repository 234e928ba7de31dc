/*
 * assign_tmpl.h -- private template of csrc/core/assign.c, included once per
 * element type with T (float / double) and S (f32 / f64) defined.
 */
#include "box_iou_tmpl.h"

#define IOU_PAIR TLL_CAT(tll_box_iou_pair_, S)
#define AREA TLL_CAT(tll_box_area_, S)
#define IOU_XY TLL_CAT(tll_box_iou_xy_, S)

/* Bounding box of anchors [lo, hi) into bb[4]. */
static void FN(block_bounds_)(T *bb, const T *anchors, int64_t lo, int64_t hi)
{
    bb[0] = anchors[4 * lo];
    bb[1] = anchors[4 * lo + 1];
    bb[2] = anchors[4 * lo + 2];
    bb[3] = anchors[4 * lo + 3];
    for (int64_t a = lo + 1; a < hi; a++) {
        const T *b = anchors + 4 * a;
        bb[0] = b[0] < bb[0] ? b[0] : bb[0];
        bb[1] = b[1] < bb[1] ? b[1] : bb[1];
        bb[2] = b[2] > bb[2] ? b[2] : bb[2];
        bb[3] = b[3] > bb[3] ? b[3] : bb[3];
    }
}

/* 1 if gt box g may overlap an anchor inside bounds bb. When it returns 0 the
   clamped overlap width or height is 0 for every anchor of the block, so the
   IoU is exactly 0 (even for degenerate or inverted boxes). */
static inline int FN(may_overlap_)(const T *g, const T *bb)
{
    return !(g[0] >= bb[2] || g[2] <= bb[0] || g[1] >= bb[3] || g[3] <= bb[1]);
}

tll_status FN(tll_assign_max_iou_)(int64_t *assigned, T *max_iou, const T *anchors, int64_t na, const T *gts,
                                   int64_t ng, const uint8_t *gt_ignore, double pos_thr, double neg_thr,
                                   double min_pos_thr, int gt_max_assign_all, int match_low_quality)
{
    if (na < 0 || ng < 0)
        return TLL_ERR_ARG;
    if (na == 0)
        return TLL_OK;
    int64_t nv = 0;
    for (int64_t g = 0; g < ng; g++)
        nv += !(gt_ignore && gt_ignore[g]);
    if (nv == 0) { /* no gt takes part: everything is background */
        for (int64_t a = 0; a < na; a++) {
            assigned[a] = TLL_ASSIGN_NEGATIVE;
            max_iou[a] = (T)0;
        }
        return TLL_OK;
    }
    if (nv > INT32_MAX) /* the per-block argmax is an int32 (a vector lane as wide as a float) */
        return TLL_ERR_OVERFLOW;
    int nt = tll_get_num_threads();
    if ((uint64_t)nv > SIZE_MAX / ((size_t)(nt + 1) * (4 * sizeof(double) + 3 * sizeof(int64_t))))
        return TLL_ERR_OVERFLOW;
    /* shared: valid gts (index, box, area), their best IoU and first best anchor, eligible list */
    int64_t *vidx = malloc((size_t)nv * sizeof(int64_t));
    T *vbox = malloc((size_t)nv * 4 * sizeof(T));
    T *varea = malloc((size_t)nv * sizeof(T));
    T *gmax = malloc((size_t)nv * sizeof(T));
    int64_t *garg = malloc((size_t)nv * sizeof(int64_t));
    int64_t *elig = malloc((size_t)nv * sizeof(int64_t));
    /* per thread: running best IoU / anchor of every valid gt, candidate list */
    T *tmax = malloc((size_t)nt * (size_t)nv * sizeof(T));
    int64_t *targ = malloc((size_t)nt * (size_t)nv * sizeof(int64_t));
    int64_t *tcand = malloc((size_t)nt * (size_t)nv * sizeof(int64_t));
    tll_status st = TLL_OK;
    if (!vidx || !vbox || !varea || !gmax || !garg || !elig || !tmax || !targ || !tcand) {
        st = TLL_ERR_NOMEM;
        goto done;
    }
    for (int64_t g = 0, v = 0; g < ng; g++) {
        if (gt_ignore && gt_ignore[g])
            continue;
        vidx[v] = g;
        memcpy(vbox + 4 * v, gts + 4 * g, 4 * sizeof(T));
        varea[v] = AREA(gts + 4 * g);
        v++;
    }
    int64_t nblk = (na + TLL_ASSIGN_BLOCK - 1) / TLL_ASSIGN_BLOCK;
    /* small problems run serially: starting a team costs more than the work */
    int par = nt > 1 && (double)na * (double)nv >= TLL_ASSIGN_PARALLEL_PAIRS;
    /* set by thread 0 (the caller's thread, which alone has the poll function:
       see tll_set_poll) when the caller asks to stop; the others then skip
       their remaining blocks */
    int stop = 0;
    /* every slot, also of threads the runtime may not start */
    for (size_t s = 0; s < (size_t)nt * (size_t)nv; s++) {
        tmax[s] = (T)0; /* IoUs are >= 0; a gt no anchor overlaps keeps 0 */
        targ[s] = na;   /* "no anchor above 0 seen" */
    }

    /* Pass 1: each anchor's max IoU and first argmax gt (stored in assigned[] as a
       valid-gt index for now); each gt's max IoU and first argmax anchor per thread. */
#pragma omp parallel num_threads(nt) if (par)
    {
        int tid = tll_thread_id();
        T *mymax = tmax + (size_t)tid * nv;
        int64_t *myarg = targ + (size_t)tid * nv;
        int64_t *cand = tcand + (size_t)tid * nv;
        /* the block's anchors as structure of arrays, their running best IoU / gt, and
           one gt's IoUs with them: gt-outer, anchor-inner, so the IoU loop vectorizes */
        T ax1[TLL_ASSIGN_BLOCK], ay1[TLL_ASSIGN_BLOCK], ax2[TLL_ASSIGN_BLOCK], ay2[TLL_ASSIGN_BLOCK];
        T aar[TLL_ASSIGN_BLOCK], best[TLL_ASSIGN_BLOCK], iou[TLL_ASSIGN_BLOCK];
        int32_t barg[TLL_ASSIGN_BLOCK];
        int64_t blk, lo, hi, work = 0; /* private: declared in the parallel region */
#pragma omp for schedule(dynamic, 4)
        for (blk = 0; blk < nblk; blk++) {
            if (!assign_block(&stop, blk, na, &lo, &hi))
                continue;
            int m = (int)(hi - lo);
            T bb[4];
            FN(block_bounds_)(bb, anchors, lo, hi);
            int64_t nc = 0;
            for (int64_t v = 0; v < nv; v++)
                if (FN(may_overlap_)(vbox + 4 * v, bb))
                    cand[nc++] = v;
            /* anchors x gts IoUs: let the caller stop a long call (thread 0 asks) */
            if (assign_poll(tid, &work, (int64_t)m * (nc + 1), &stop))
                continue;
            for (int i = 0; i < m; i++) {
                const T *ab = anchors + 4 * (lo + i);
                ax1[i] = ab[0];
                ay1[i] = ab[1];
                ax2[i] = ab[2];
                ay2[i] = ab[3];
                aar[i] = AREA(ab);
                best[i] = (T)0;
                barg[i] = 0; /* all IoUs 0: the first valid gt, as torch.max */
            }
            for (int64_t c = 0; c < nc; c++) { /* ascending gts: strict > keeps the first max */
                int64_t v = cand[c];
                const T *g = vbox + 4 * v;
                T gx1 = g[0], gy1 = g[1], gx2 = g[2], gy2 = g[3], ga = varea[v];
                for (int i = 0; i < m; i++) {
                    /* IoU(gt, anchor), gts first as mmdet's bbox_overlaps(gt, anchors) */
                    T x = IOU_XY(gx1, gy1, gx2, gy2, ga, ax1[i], ay1[i], ax2[i], ay2[i], aar[i]);
                    iou[i] = x;
                    T b = best[i];
                    best[i] = x > b ? x : b;
                    /* a mask, not a select: GCC does not vectorize the select form */
                    int32_t mk = -(int32_t)(x > b);
                    barg[i] = (barg[i] & ~mk) | ((int32_t)v & mk);
                }
                /* this gt's best anchor: the largest IoU, ties to the lowest anchor index */
                T gm = mymax[v];
                int64_t gi = myarg[v];
                for (int i = 0; i < m; i++) {
                    if (iou[i] > gm || (iou[i] == gm && lo + i < gi)) {
                        gm = iou[i];
                        gi = lo + i;
                    }
                }
                mymax[v] = gm;
                myarg[v] = gi;
            }
            for (int i = 0; i < m; i++) {
                max_iou[lo + i] = best[i];
                assigned[lo + i] = barg[i];
            }
        }
    }
    if (stop) {
        st = TLL_ERR_INTERRUPTED;
        goto done;
    }
    /* combine the per-thread bests: max, ties to the lowest anchor (order-free) */
    for (int64_t v = 0; v < nv; v++) {
        T m = tmax[v];
        int64_t arg = targ[v];
        for (int t = 1; t < nt; t++) {
            T mt = tmax[(size_t)t * nv + v];
            int64_t at = targ[(size_t)t * nv + v];
            if (mt > m || (mt == m && at < arg)) {
                m = mt;
                arg = at;
            }
        }
        gmax[v] = m;
        garg[v] = m > (T)0 ? arg : 0; /* max 0: every IoU is 0, the first anchor */
    }

    T pos = (T)pos_thr, neg = (T)neg_thr, min_pos = (T)min_pos_thr;
    int64_t ne = 0;
    T elig_min = (T)0;
    int elig_zero = 0; /* an eligible gt with best IoU 0 ties with every non-overlapping anchor */
    if (match_low_quality) {
        for (int64_t v = 0; v < nv; v++) {
            if (gmax[v] >= min_pos) {
                elig[ne++] = v;
                elig_min = ne == 1 || gmax[v] < elig_min ? gmax[v] : elig_min;
                elig_zero |= gmax[v] <= (T)0;
            }
        }
    }
    int scan = match_low_quality && gt_max_assign_all && ne > 0;

    /* Pass 2: thresholds, then (gt_max_assign_all) the last eligible gt whose IoU
       with the anchor equals that gt's best claims it. iou(v, a) <= max_iou[a], so
       only anchors with max_iou >= the smallest eligible best, and gts whose best
       is <= max_iou[a], can match: most anchors skip the scan. */
#pragma omp parallel num_threads(nt) if (par)
    {
        int tid = tll_thread_id();
        int64_t *cand = tcand + (size_t)tid * nv;
        int64_t blk, lo, hi, work = 0; /* private: declared in the parallel region */
#pragma omp for schedule(dynamic, 4)
        for (blk = 0; blk < nblk; blk++) {
            if (!assign_block(&stop, blk, na, &lo, &hi))
                continue;
            if (assign_poll(tid, &work, (hi - lo) * (scan ? ne + 1 : 1), &stop))
                continue;
            int64_t nc = -1; /* candidates built lazily: only blocks that need the scan */
            T bb[4];
            for (int64_t a = lo; a < hi; a++) {
                T m = max_iou[a];
                int64_t r = TLL_ASSIGN_IGNORED;
                if (m >= (T)0 && m < neg)
                    r = TLL_ASSIGN_NEGATIVE;
                if (m >= pos)
                    r = vidx[assigned[a]];
                if (scan && m >= elig_min) {
                    if (nc < 0) {
                        FN(block_bounds_)(bb, anchors, lo, hi);
                        nc = 0;
                        for (int64_t e = ne - 1; e >= 0; e--) { /* descending: the last gt wins */
                            int64_t v = elig[e];
                            if ((elig_zero && gmax[v] <= (T)0) || FN(may_overlap_)(vbox + 4 * v, bb))
                                cand[nc++] = v;
                        }
                    }
                    const T *ab = anchors + 4 * a;
                    T aa = AREA(ab);
                    for (int64_t c = 0; c < nc; c++) {
                        int64_t v = cand[c];
                        if (gmax[v] > m)
                            continue;
                        /* a gt with best > 0 can only tie with an anchor it overlaps */
                        if (gmax[v] > (T)0 && !FN(may_overlap_)(vbox + 4 * v, ab))
                            continue;
                        if (IOU_PAIR(vbox + 4 * v, varea[v], ab, aa) == gmax[v]) {
                            r = vidx[v];
                            break;
                        }
                    }
                }
                assigned[a] = r;
            }
        }
    }
    if (stop) {
        st = TLL_ERR_INTERRUPTED;
        goto done;
    }
    if (match_low_quality && !gt_max_assign_all) /* only the first best anchor, gts in order */
        for (int64_t e = 0; e < ne; e++)
            assigned[garg[elig[e]]] = vidx[elig[e]];

done:
    free(vidx);
    free(vbox);
    free(varea);
    free(gmax);
    free(garg);
    free(elig);
    free(tmax);
    free(targ);
    free(tcand);
    return st;
}

#undef IOU_PAIR
#undef AREA
#undef IOU_XY
