/*
 * WIDER FACE evaluation: per-image matching and PR accumulation.
 *
 * Follows the official MATLAB eval_tools (wider_eval.m: read_pred, norm_score,
 * image_evaluation, image_pr_info) number for number, in float64 like MATLAB:
 *  - predictions of an image are sorted by descending raw score (stable, as
 *    MATLAB's sort(..., 'descend')), then scores are normalised;
 *  - boxes become x2 = x + w, y2 = y + h; IoU with the +1 pixel convention,
 *    computed with the same operation order as boxoverlap.m;
 *  - each prediction, in order, takes the gt of largest IoU (first on ties,
 *    ignored faces included); at IoU >= thresh an ignored gt makes the
 *    prediction "not counted", an unmatched counted gt becomes recalled, an
 *    already recalled one leaves the prediction a false positive;
 *  - for t = 1..T, thresh = 1 - t/T, r = last prediction whose normalised
 *    score >= thresh (the scores are non-increasing after the sort, so r is
 *    the number of such predictions minus one): add (counted proposals in
 *    0..r, recalled faces after r) to the sums.
 * The matching does not depend on the setting except through the ignore
 * mask, so the best gt of each prediction is found once per image and the
 * cheap per-setting pass runs S times.
 */
#include "tasklle.h"

#include <math.h>

#include <stdlib.h>
#include <string.h>

#include "tll_tmpl.h" /* tll_thread_id (the file has no template: float64 only, like MATLAB) */

typedef struct {
    double score;
    int64_t index;
} scored_t;

/* Descending score, then ascending row: a total order, so qsort gives the
 * stable descending order MATLAB's sort produces. */
static int cmp_desc(const void *pa, const void *pb)
{
    const scored_t *a = (const scored_t *)pa, *b = (const scored_t *)pb;
    if (a->score > b->score)
        return -1;
    if (a->score < b->score)
        return 1;
    return (a->index > b->index) - (a->index < b->index);
}

typedef struct {
    scored_t *order;    /* (max_np) sort keys */
    double *norm;       /* (max_np) normalised scores in evaluation order */
    double *best_iou;   /* (max_np) */
    int64_t *best_gt;   /* (max_np) image-local gt index of the best IoU */
    int64_t *prop_cum;  /* (max_np) counted proposals in 0..h */
    int64_t *rec_cum;   /* (max_np) recalled faces after prediction h */
    int8_t *gt_state;   /* (max_ng) 0 unmatched, 1 recalled, -1 ignored and hit */
    double *gbox;       /* (max_ng * 5) x1, y1, x2, y2, area */
    int64_t *kept;      /* (T) predictions kept at each threshold */
    int64_t *acc;       /* (S * T * 2) this thread's sums (NULL in the per-image mode) */
} scratch_t;

static void scratch_free(scratch_t *w)
{
    free(w->order);
    free(w->norm);
    free(w->best_iou);
    free(w->best_gt);
    free(w->prop_cum);
    free(w->rec_cum);
    free(w->gt_state);
    free(w->gbox);
    free(w->kept);
    free(w->acc);
    memset(w, 0, sizeof(*w));
}

static int scratch_alloc(scratch_t *w, int64_t max_np, int64_t max_ng, int64_t n_settings, int64_t n_thresh,
                         int with_acc)
{
    size_t np = (size_t)(max_np > 0 ? max_np : 1), ng = (size_t)(max_ng > 0 ? max_ng : 1);
    memset(w, 0, sizeof(*w));
    w->order = malloc(np * sizeof(scored_t));
    w->norm = malloc(np * sizeof(double));
    w->best_iou = malloc(np * sizeof(double));
    w->best_gt = malloc(np * sizeof(int64_t));
    w->prop_cum = malloc(np * sizeof(int64_t));
    w->rec_cum = malloc(np * sizeof(int64_t));
    w->gt_state = malloc(ng * sizeof(int8_t));
    w->gbox = malloc(ng * 5 * sizeof(double));
    w->kept = malloc((size_t)n_thresh * sizeof(int64_t));
    w->acc = with_acc ? calloc((size_t)(n_settings * n_thresh * 2), sizeof(int64_t)) : NULL;
    if (!w->order || !w->norm || !w->best_iou || !w->best_gt || !w->prop_cum || !w->rec_cum || !w->gt_state ||
        !w->gbox || !w->kept || (with_acc && !w->acc)) {
        scratch_free(w);
        return -1;
    }
    return 0;
}

/* One image: sort, normalise, match, and add its PR info to acc (S, T, 2). */
static void eval_image(scratch_t *w, int64_t *acc_out, const double *pred, int64_t np, const double *gt, int64_t ng,
                       const uint8_t *counted, int64_t g_stride, int64_t n_settings, int64_t n_thresh,
                       double score_min, double score_max, double iou_thresh)
{
    /* Sort by descending raw score; detectors usually emit sorted lists, so
     * skip the sort when the rows already are in stable descending order. */
    int sorted = 1;
    for (int64_t h = 0; h < np; h++) {
        w->order[h].score = pred[h * 5 + 4];
        w->order[h].index = h;
        if (h > 0 && pred[h * 5 + 4] > pred[(h - 1) * 5 + 4])
            sorted = 0;
    }
    if (!sorted)
        qsort(w->order, (size_t)np, sizeof(scored_t), cmp_desc);

    /* (s - min) / (max - min); when max - min overflows (scores spanning more than
     * the double range) every operand is halved first: exact, the same real
     * quotient, no inf / inf. tasklle.reference.wider_eval.normalise is the same. */
    const double range = score_max - score_min;
    const int halve = !isfinite(range);
    const double lo = halve ? score_min * 0.5 : score_min, den = halve ? score_max * 0.5 - lo : range;
    for (int64_t h = 0; h < np; h++) {
        const double s = halve ? w->order[h].score * 0.5 : w->order[h].score;
        w->norm[h] = range > 0 ? (s - lo) / den : 1.0;
    }

    /* gt boxes as x1, y1, x2, y2 and their +1 areas (boxoverlap.m order). */
    for (int64_t j = 0; j < ng; j++) {
        const double *g = gt + j * 4;
        double *b = w->gbox + j * 5;
        b[0] = g[0];
        b[1] = g[1];
        b[2] = g[0] + g[2];
        b[3] = g[1] + g[3];
        b[4] = (b[2] - b[0] + 1) * (b[3] - b[1] + 1);
    }

    /* Best gt of each prediction (first index on ties, like MATLAB's max). */
    for (int64_t h = 0; h < np; h++) {
        const double *p = pred + w->order[h].index * 5;
        const double px1 = p[0], py1 = p[1], px2 = p[0] + p[2], py2 = p[1] + p[3];
        const double parea = (px2 - px1 + 1) * (py2 - py1 + 1);
        double best = 0.0;
        int64_t arg = 0;
        for (int64_t j = 0; j < ng; j++) {
            const double *b = w->gbox + j * 5;
            const double iw = (px2 < b[2] ? px2 : b[2]) - (px1 > b[0] ? px1 : b[0]) + 1;
            double o = 0.0;
            if (iw > 0) {
                const double ih = (py2 < b[3] ? py2 : b[3]) - (py1 > b[1] ? py1 : b[1]) + 1;
                if (ih > 0) {
                    const double inter = iw * ih;
                    o = inter / (b[4] + parea - inter);
                }
            }
            if (j == 0 || o > best) {
                best = o;
                arg = j;
            }
        }
        w->best_iou[h] = best;
        w->best_gt[h] = arg;
    }

    /* Predictions kept at each threshold (normalised scores are non-increasing). */
    {
        int64_t k = 0;
        for (int64_t t = 1; t <= n_thresh; t++) {
            const double thresh = 1.0 - (double)t / (double)n_thresh;
            while (k < np && w->norm[k] >= thresh)
                k++;
            w->kept[t - 1] = k;
        }
    }

    for (int64_t s = 0; s < n_settings; s++) {
        const uint8_t *cnt = counted + s * g_stride;
        memset(w->gt_state, 0, (size_t)ng * sizeof(int8_t));
        int64_t recalled = 0, proposals = 0;
        for (int64_t h = 0; h < np; h++) {
            int is_proposal = 1;
            if (w->best_iou[h] >= iou_thresh) {
                const int64_t j = w->best_gt[h];
                if (!cnt[j]) {
                    w->gt_state[j] = -1;
                    is_proposal = 0;
                } else if (w->gt_state[j] == 0) {
                    w->gt_state[j] = 1;
                    recalled++;
                }
            }
            proposals += is_proposal;
            w->prop_cum[h] = proposals;
            w->rec_cum[h] = recalled;
        }
        int64_t *acc = acc_out + s * n_thresh * 2;
        for (int64_t t = 0; t < n_thresh; t++) {
            const int64_t k = w->kept[t];
            if (k > 0) {
                acc[t * 2] += w->prop_cum[k - 1];
                acc[t * 2 + 1] += w->rec_cum[k - 1];
            }
        }
    }
}

/* Both entry points: per_image = 0 sums into out (S, T, 2) through per-thread
 * accumulators; per_image = 1 writes image i's counts into out + i * S * T * 2
 * (each image owns its block, so no accumulator and no reduction). */
static tll_status wider_eval_run(int64_t *out, int per_image, const double *pred, const int64_t *pred_offsets,
                                 const double *gt, const int64_t *gt_offsets, const uint8_t *counted,
                                 int64_t n_images, int64_t n_settings, int64_t n_thresh, double score_min,
                                 double score_max, double iou_thresh)
{
    if (n_images < 0 || n_settings < 0 || n_thresh < 1)
        return TLL_ERR_ARG;
    if (n_settings > INT64_MAX / 2 / n_thresh)
        return TLL_ERR_OVERFLOW;
    const int64_t block = n_settings * n_thresh * 2; /* one image's (S, T, 2) */
    if (per_image && block > 0 && n_images > (int64_t)(SIZE_MAX / sizeof(int64_t)) / block)
        return TLL_ERR_OVERFLOW;
    const int64_t n_out = per_image ? n_images * block : block;
    if (n_out > 0)
        memset(out, 0, (size_t)n_out * sizeof(int64_t));
    if (n_images == 0 || n_settings == 0)
        return TLL_OK;

    int64_t max_np = 0, max_ng = 0;
    for (int64_t i = 0; i < n_images; i++) {
        const int64_t np = pred_offsets[i + 1] - pred_offsets[i], ng = gt_offsets[i + 1] - gt_offsets[i];
        if (np < 0 || ng < 0)
            return TLL_ERR_ARG;
        if (np > max_np)
            max_np = np;
        if (ng > max_ng)
            max_ng = ng;
    }
    const int64_t g_stride = gt_offsets[n_images];

    int nthreads = tll_get_num_threads();
    if ((int64_t)nthreads > n_images)
        nthreads = (int)n_images;
    scratch_t *work = calloc((size_t)nthreads, sizeof(scratch_t));
    if (!work)
        return TLL_ERR_NOMEM;
    int failed = 0;

#pragma omp parallel num_threads(nthreads)
    {
        const int tid = tll_thread_id();
        scratch_t *w = &work[tid];
        int ok = scratch_alloc(w, max_np, max_ng, n_settings, n_thresh, !per_image) == 0;
        if (!ok) {
#pragma omp atomic write
            failed = 1;
        }
        /* Every thread takes part in the loop (a worksharing construct must be
         * met by all); a thread without scratch just skips its images. */
#pragma omp for schedule(dynamic, 8)
        for (int64_t i = 0; i < n_images; i++) {
            const int64_t p0 = pred_offsets[i], np = pred_offsets[i + 1] - p0;
            const int64_t g0 = gt_offsets[i], ng = gt_offsets[i + 1] - g0;
            if (!ok || np == 0 || ng == 0)
                continue;
            eval_image(w, per_image ? out + i * block : w->acc, pred + p0 * 5, np, gt + g0 * 4, ng, counted + g0,
                       g_stride, n_settings, n_thresh, score_min, score_max, iou_thresh);
        }
    }

    /* Combine the per-thread integer sums in thread order. */
    for (int t = 0; t < nthreads; t++) {
        if (work[t].acc)
            for (int64_t k = 0; k < n_out; k++)
                out[k] += work[t].acc[k];
        scratch_free(&work[t]);
    }
    free(work);
    if (failed) {
        memset(out, 0, (size_t)n_out * sizeof(int64_t));
        return TLL_ERR_NOMEM;
    }
    return TLL_OK;
}

tll_status tll_wider_eval_forward(int64_t *pr_counts, const double *pred, const int64_t *pred_offsets,
                                  const double *gt, const int64_t *gt_offsets, const uint8_t *counted,
                                  int64_t n_images, int64_t n_settings, int64_t n_thresh,
                                  double score_min, double score_max, double iou_thresh)
{
    return wider_eval_run(pr_counts, 0, pred, pred_offsets, gt, gt_offsets, counted, n_images, n_settings,
                          n_thresh, score_min, score_max, iou_thresh);
}

tll_status tll_wider_eval_per_image(int64_t *counts, const double *pred, const int64_t *pred_offsets,
                                    const double *gt, const int64_t *gt_offsets, const uint8_t *counted,
                                    int64_t n_images, int64_t n_settings, int64_t n_thresh,
                                    double score_min, double score_max, double iou_thresh)
{
    return wider_eval_run(counts, 1, pred, pred_offsets, gt, gt_offsets, counted, n_images, n_settings, n_thresh,
                          score_min, score_max, iou_thresh);
}
