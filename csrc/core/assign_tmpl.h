/*
 * assign_tmpl.h -- private template of csrc/core/assign.c, included once per
 * element type with T (float / double) and S (f32 / f64) defined.
 *
 * tll_assign_max_iou_<S> runs its passes over one context (CTX):
 *  1. assign_valid_gts_: the gts that take part (index, box, area);
 *  2. assign_best_ (per block: assign_best_block_): each anchor's max IoU and
 *     first argmax gt, each gt's max IoU and first argmax anchor per thread;
 *  3. assign_combine_: the per-thread gt bests merged in a fixed order;
 *  4. assign_eligible_: the gts that may take anchors by low-quality matching;
 *  5. assign_label_ (per block: assign_label_block_): thresholds, then the
 *     low-quality scan (gt_max_assign_all);
 *  6. assign_first_best_: low-quality matching of the first best anchor only.
 */
#include "box_iou_tmpl.h"

#define IOU_PAIR TLL_CAT(tll_box_iou_pair_, S)
#define AREA TLL_CAT(tll_box_area_, S)
#define IOU_XY TLL_CAT(tll_box_iou_xy_, S)
#define CTX FN(assign_ctx_)

typedef struct {
    const T *anchors;
    int64_t na, nv, nblk; /* anchors, valid gts, blocks of anchors */
    int nt, par;          /* threads; 1 if the passes run in parallel */
    /* shared: valid gts (index, box, area), their best IoU and first best anchor, eligible list */
    int64_t *vidx, *garg, *elig;
    T *vbox, *varea, *gmax;
    /* per thread: running best IoU / anchor of every valid gt, candidate list */
    T *tmax;
    int64_t *targ, *tcand;
    T pos, neg, min_pos;
    int64_t ne;    /* eligible gts */
    T elig_min;    /* the smallest best IoU among them */
    int elig_zero; /* an eligible gt with best IoU 0 ties with every non-overlapping anchor */
    int scan;      /* pass 2 runs the low-quality scan */
    /* set by thread 0 (the caller's thread, which alone has the poll function:
       see tll_set_poll) when the caller asks to stop; the others then skip
       their remaining blocks */
    int stop;
} CTX;

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

static void FN(assign_free_)(CTX *c)
{
    free(c->vidx);
    free(c->vbox);
    free(c->varea);
    free(c->gmax);
    free(c->garg);
    free(c->elig);
    free(c->tmax);
    free(c->targ);
    free(c->tcand);
}

/* The scratch of c->nv valid gts and c->nt threads; the per-thread bests start
   at "IoU 0, no anchor seen" in every slot, also of threads the runtime may not start. */
static tll_status FN(assign_alloc_)(CTX *c)
{
    size_t nv = (size_t)c->nv, nt = (size_t)c->nt;
    c->vidx = malloc(nv * sizeof(int64_t));
    c->vbox = malloc(nv * 4 * sizeof(T));
    c->varea = malloc(nv * sizeof(T));
    c->gmax = malloc(nv * sizeof(T));
    c->garg = malloc(nv * sizeof(int64_t));
    c->elig = malloc(nv * sizeof(int64_t));
    c->tmax = malloc(nt * nv * sizeof(T));
    c->targ = malloc(nt * nv * sizeof(int64_t));
    c->tcand = malloc(nt * nv * sizeof(int64_t));
    if (!c->vidx || !c->vbox || !c->varea || !c->gmax || !c->garg || !c->elig || !c->tmax || !c->targ || !c->tcand)
        return TLL_ERR_NOMEM;
    for (size_t s = 0; s < nt * nv; s++) {
        c->tmax[s] = (T)0; /* IoUs are >= 0; a gt no anchor overlaps keeps 0 */
        c->targ[s] = c->na; /* "no anchor above 0 seen" */
    }
    return TLL_OK;
}

/* Pass 1 setup: the gts that take part, in order (index, box, area). */
static void FN(assign_valid_gts_)(CTX *c, const T *gts, int64_t ng, const uint8_t *gt_ignore)
{
    for (int64_t g = 0, v = 0; g < ng; g++) {
        if (gt_ignore && gt_ignore[g])
            continue;
        c->vidx[v] = g;
        memcpy(c->vbox + 4 * v, gts + 4 * g, 4 * sizeof(T));
        c->varea[v] = AREA(gts + 4 * g);
        v++;
    }
}

/* Pass 1 on anchors [lo, hi): their max IoU and first argmax gt (stored in
   assigned[] as a valid-gt index for now), and this thread's running best
   anchor of every gt that may overlap the block. */
static void FN(assign_best_block_)(CTX *c, int tid, int64_t *work, int64_t lo, int64_t hi, int64_t *assigned,
                                   T *max_iou)
{
    int64_t nv = c->nv;
    T *mymax = c->tmax + (size_t)tid * nv;
    int64_t *myarg = c->targ + (size_t)tid * nv;
    int64_t *cand = c->tcand + (size_t)tid * nv;
    /* the block's anchors as structure of arrays, their running best IoU / gt, and
       one gt's IoUs with them: gt-outer, anchor-inner, so the IoU loop vectorizes */
    T ax1[TLL_ASSIGN_BLOCK], ay1[TLL_ASSIGN_BLOCK], ax2[TLL_ASSIGN_BLOCK], ay2[TLL_ASSIGN_BLOCK];
    T aar[TLL_ASSIGN_BLOCK], best[TLL_ASSIGN_BLOCK], iou[TLL_ASSIGN_BLOCK];
    int32_t barg[TLL_ASSIGN_BLOCK];
    int m = (int)(hi - lo);
    T bb[4];
    FN(block_bounds_)(bb, c->anchors, lo, hi);
    int64_t nc = 0;
    for (int64_t v = 0; v < nv; v++)
        if (FN(may_overlap_)(c->vbox + 4 * v, bb))
            cand[nc++] = v;
    /* anchors x gts IoUs: let the caller stop a long call (thread 0 asks) */
    if (assign_poll(tid, work, (int64_t)m * (nc + 1), &c->stop))
        return;
    for (int i = 0; i < m; i++) {
        const T *ab = c->anchors + 4 * (lo + i);
        ax1[i] = ab[0];
        ay1[i] = ab[1];
        ax2[i] = ab[2];
        ay2[i] = ab[3];
        aar[i] = AREA(ab);
        best[i] = (T)0;
        barg[i] = 0; /* all IoUs 0: the first valid gt, as torch.max */
    }
    for (int64_t k = 0; k < nc; k++) { /* ascending gts: strict > keeps the first max */
        int64_t v = cand[k];
        const T *g = c->vbox + 4 * v;
        T gx1 = g[0], gy1 = g[1], gx2 = g[2], gy2 = g[3], ga = c->varea[v];
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

/* Pass 1 over every block of anchors. */
static void FN(assign_best_)(CTX *c, int64_t *assigned, T *max_iou)
{
#pragma omp parallel num_threads(c->nt) if (c->par)
    {
        int tid = tll_thread_id();
        int64_t blk, lo, hi, work = 0; /* private: declared in the parallel region */
#pragma omp for schedule(dynamic, 4)
        for (blk = 0; blk < c->nblk; blk++)
            if (assign_block(&c->stop, blk, c->na, &lo, &hi))
                FN(assign_best_block_)(c, tid, &work, lo, hi, assigned, max_iou);
    }
}

/* Combine the per-thread bests of every gt: max, ties to the lowest anchor (order-free). */
static void FN(assign_combine_)(CTX *c)
{
    int64_t nv = c->nv;
    for (int64_t v = 0; v < nv; v++) {
        T m = c->tmax[v];
        int64_t arg = c->targ[v];
        for (int t = 1; t < c->nt; t++) {
            T mt = c->tmax[(size_t)t * nv + v];
            int64_t at = c->targ[(size_t)t * nv + v];
            if (mt > m || (mt == m && at < arg)) {
                m = mt;
                arg = at;
            }
        }
        c->gmax[v] = m;
        c->garg[v] = m > (T)0 ? arg : 0; /* max 0: every IoU is 0, the first anchor */
    }
}

/* The gts whose best IoU reaches min_pos (low-quality matching), the smallest such best. */
static void FN(assign_eligible_)(CTX *c, int gt_max_assign_all, int match_low_quality)
{
    c->ne = 0;
    c->elig_min = (T)0;
    c->elig_zero = 0;
    if (match_low_quality) {
        for (int64_t v = 0; v < c->nv; v++) {
            if (c->gmax[v] >= c->min_pos) {
                c->elig[c->ne++] = v;
                c->elig_min = c->ne == 1 || c->gmax[v] < c->elig_min ? c->gmax[v] : c->elig_min;
                c->elig_zero |= c->gmax[v] <= (T)0;
            }
        }
    }
    c->scan = match_low_quality && gt_max_assign_all && c->ne > 0;
}

/* Pass 2 on anchors [lo, hi): thresholds, then (gt_max_assign_all) the last
   eligible gt whose IoU with the anchor equals that gt's best claims it.
   iou(v, a) <= max_iou[a], so only anchors with max_iou >= the smallest
   eligible best, and gts whose best is <= max_iou[a], can match: most anchors
   skip the scan. */
static void FN(assign_label_block_)(CTX *c, int tid, int64_t *work, int64_t lo, int64_t hi, int64_t *assigned,
                                    const T *max_iou)
{
    int64_t *cand = c->tcand + (size_t)tid * c->nv;
    if (assign_poll(tid, work, (hi - lo) * (c->scan ? c->ne + 1 : 1), &c->stop))
        return;
    int64_t nc = -1; /* candidates built lazily: only blocks that need the scan */
    T bb[4];
    for (int64_t a = lo; a < hi; a++) {
        T m = max_iou[a];
        int64_t r = TLL_ASSIGN_IGNORED;
        if (m >= (T)0 && m < c->neg)
            r = TLL_ASSIGN_NEGATIVE;
        if (m >= c->pos)
            r = c->vidx[assigned[a]];
        if (c->scan && m >= c->elig_min) {
            if (nc < 0) {
                FN(block_bounds_)(bb, c->anchors, lo, hi);
                nc = 0;
                for (int64_t e = c->ne - 1; e >= 0; e--) { /* descending: the last gt wins */
                    int64_t v = c->elig[e];
                    if ((c->elig_zero && c->gmax[v] <= (T)0) || FN(may_overlap_)(c->vbox + 4 * v, bb))
                        cand[nc++] = v;
                }
            }
            const T *ab = c->anchors + 4 * a;
            T aa = AREA(ab);
            for (int64_t k = 0; k < nc; k++) {
                int64_t v = cand[k];
                if (c->gmax[v] > m)
                    continue;
                /* a gt with best > 0 can only tie with an anchor it overlaps */
                if (c->gmax[v] > (T)0 && !FN(may_overlap_)(c->vbox + 4 * v, ab))
                    continue;
                if (IOU_PAIR(c->vbox + 4 * v, c->varea[v], ab, aa) == c->gmax[v]) {
                    r = c->vidx[v];
                    break;
                }
            }
        }
        assigned[a] = r;
    }
}

/* Pass 2 over every block of anchors. */
static void FN(assign_label_)(CTX *c, int64_t *assigned, const T *max_iou)
{
#pragma omp parallel num_threads(c->nt) if (c->par)
    {
        int tid = tll_thread_id();
        int64_t blk, lo, hi, work = 0; /* private: declared in the parallel region */
#pragma omp for schedule(dynamic, 4)
        for (blk = 0; blk < c->nblk; blk++)
            if (assign_block(&c->stop, blk, c->na, &lo, &hi))
                FN(assign_label_block_)(c, tid, &work, lo, hi, assigned, max_iou);
    }
}

/* Low-quality matching without gt_max_assign_all: only each eligible gt's
   first best anchor, gts in order (a later gt overrides). */
static void FN(assign_first_best_)(const CTX *c, int64_t *assigned)
{
    for (int64_t e = 0; e < c->ne; e++)
        assigned[c->garg[c->elig[e]]] = c->vidx[c->elig[e]];
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
    CTX c;
    memset(&c, 0, sizeof c);
    c.anchors = anchors;
    c.na = na;
    c.nv = nv;
    c.nt = nt;
    c.nblk = (na + TLL_ASSIGN_BLOCK - 1) / TLL_ASSIGN_BLOCK;
    /* small problems run serially: starting a team costs more than the work */
    c.par = nt > 1 && (double)na * (double)nv >= TLL_ASSIGN_PARALLEL_PAIRS;
    c.pos = (T)pos_thr;
    c.neg = (T)neg_thr;
    c.min_pos = (T)min_pos_thr;
    tll_status st = FN(assign_alloc_)(&c);
    if (st == TLL_OK) {
        FN(assign_valid_gts_)(&c, gts, ng, gt_ignore);
        FN(assign_best_)(&c, assigned, max_iou);
    }
    if (st == TLL_OK && !c.stop) {
        FN(assign_combine_)(&c);
        FN(assign_eligible_)(&c, gt_max_assign_all, match_low_quality);
        FN(assign_label_)(&c, assigned, max_iou);
    }
    if (st == TLL_OK && c.stop)
        st = TLL_ERR_INTERRUPTED;
    if (st == TLL_OK && match_low_quality && !gt_max_assign_all)
        FN(assign_first_best_)(&c, assigned);
    FN(assign_free_)(&c);
    return st;
}

#undef IOU_PAIR
#undef AREA
#undef IOU_XY
#undef CTX
