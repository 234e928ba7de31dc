/*
 * boxes_tmpl.h -- private template of csrc/core/boxes.c, included once per
 * element type with T (float / double) and S (f32 / f64) defined.
 */
#include "box_iou_tmpl.h"

#define IOU_PAIR TLL_CAT(tll_box_iou_pair_, S)
#define AREA TLL_CAT(tll_box_area_, S)
#define IOU_XY TLL_CAT(tll_box_iou_xy_, S)

tll_status FN(tll_box_iou_forward_)(T *out, const T *a, int64_t n, const T *b, int64_t m)
{
    if (n < 0 || m < 0)
        return TLL_ERR_ARG;
    if (n > 0 && m > INT64_MAX / n)
        return TLL_ERR_OVERFLOW;
    int64_t i;
#pragma omp parallel for schedule(static) num_threads(tll_get_num_threads()) if (n * m > 32768)
    for (i = 0; i < n; i++) {
        const T *ai = a + 4 * i;
        T aa = AREA(ai);
        T *row = out + i * m;
        for (int64_t j = 0; j < m; j++)
            row[j] = IOU_PAIR(ai, aa, b + 4 * j, AREA(b + 4 * j));
    }
    return TLL_OK;
}

tll_status FN(tll_box_iou_aligned_forward_)(T *out, const T *a, const T *b, int64_t n)
{
    if (n < 0)
        return TLL_ERR_ARG;
    int64_t i;
#pragma omp parallel for schedule(static) num_threads(tll_get_num_threads()) if (n > 32768)
    for (i = 0; i < n; i++)
        out[i] = IOU_PAIR(a + 4 * i, AREA(a + 4 * i), b + 4 * i, AREA(b + 4 * i));
    return TLL_OK;
}

/* mmdet diou_loss for one pair, in the twin's operation order. */
static inline T FN(diou_one_)(const T *p, const T *t, T eps)
{
    T lx = p[0] > t[0] ? p[0] : t[0], ly = p[1] > t[1] ? p[1] : t[1];
    T rx = p[2] < t[2] ? p[2] : t[2], ry = p[3] < t[3] ? p[3] : t[3];
    T w = rx - lx, h = ry - ly;
    w = w < (T)0 ? (T)0 : w;
    h = h < (T)0 ? (T)0 : h;
    T overlap = w * h;
    T ap = (p[2] - p[0]) * (p[3] - p[1]);
    T ag = (t[2] - t[0]) * (t[3] - t[1]);
    T u = ((ap + ag) - overlap) + eps;
    T iou = overlap / u;
    T ex1 = p[0] < t[0] ? p[0] : t[0], ey1 = p[1] < t[1] ? p[1] : t[1];
    T ex2 = p[2] > t[2] ? p[2] : t[2], ey2 = p[3] > t[3] ? p[3] : t[3];
    T cw = ex2 - ex1, ch = ey2 - ey1;
    cw = cw < (T)0 ? (T)0 : cw;
    ch = ch < (T)0 ? (T)0 : ch;
    T c2 = (cw * cw + ch * ch) + eps;
    T dx = (t[0] + t[2]) - (p[0] + p[2]);
    T dy = (t[1] + t[3]) - (p[1] + p[3]);
    T rho2 = dx * dx / (T)4 + dy * dy / (T)4;
    return (T)1 - (iou - rho2 / c2);
}

tll_status FN(tll_diou_forward_)(T *loss, double *weighted_sum, const T *pred, const T *target, const T *weight,
                                 int64_t n, double eps)
{
    if (n < 0 || !weighted_sum)
        return TLL_ERR_ARG;
    *weighted_sum = 0.0;
    if (n == 0)
        return TLL_OK;
    int64_t nblk = (n + TLL_DIOU_BLOCK - 1) / TLL_DIOU_BLOCK;
    double *part = malloc((size_t)nblk * sizeof(double));
    if (!part)
        return TLL_ERR_NOMEM;
    T e = (T)eps;
    int64_t blk;
#pragma omp parallel for schedule(static) num_threads(tll_get_num_threads()) if (n > 16384)
    for (blk = 0; blk < nblk; blk++) {
        int64_t lo = blk * TLL_DIOU_BLOCK, hi = lo + TLL_DIOU_BLOCK < n ? lo + TLL_DIOU_BLOCK : n;
        double s = 0.0;
        for (int64_t i = lo; i < hi; i++) {
            T l = FN(diou_one_)(pred + 4 * i, target + 4 * i, e);
            if (loss)
                loss[i] = l;
            s += weight ? (double)(l * weight[i]) : (double)l;
        }
        part[blk] = s;
    }
    double total = 0.0;
    for (blk = 0; blk < nblk; blk++) /* fixed order: independent of the thread count */
        total += part[blk];
    free(part);
    *weighted_sum = total;
    return TLL_OK;
}

/* torch.maximum(p, t) backward: the share of p -- 1 if p wins, 0 if t wins, 1/2 on a
   tie (the gradient is split in halves). Branch-free so the pair loop vectorizes. */
static inline T FN(share_max_)(T pv, T tv) { return (T)(pv > tv) + (T)0.5 * (T)(pv == tv); }

/* d loss / d pred (gp) and d target (gt) for one pair, times g: the chain rule of
   diou_one_ by hand. Accumulates in scalars and stores once (vectorizable). */
static inline void FN(diou_grad_one_)(T *gp, T *gt, const T *p, const T *t, T eps, T g)
{
    T lx = p[0] > t[0] ? p[0] : t[0], ly = p[1] > t[1] ? p[1] : t[1];
    T rx = p[2] < t[2] ? p[2] : t[2], ry = p[3] < t[3] ? p[3] : t[3];
    T wr = rx - lx, hr = ry - ly;
    T w = wr < (T)0 ? (T)0 : wr, h = hr < (T)0 ? (T)0 : hr;
    T overlap = w * h;
    T pw = p[2] - p[0], ph = p[3] - p[1], tw = t[2] - t[0], th = t[3] - t[1];
    T u = ((pw * ph + tw * th) - overlap) + eps;
    T ex1 = p[0] < t[0] ? p[0] : t[0], ey1 = p[1] < t[1] ? p[1] : t[1];
    T ex2 = p[2] > t[2] ? p[2] : t[2], ey2 = p[3] > t[3] ? p[3] : t[3];
    T cwr = ex2 - ex1, chr = ey2 - ey1;
    T cw = cwr < (T)0 ? (T)0 : cwr, ch = chr < (T)0 ? (T)0 : chr;
    T c2 = (cw * cw + ch * ch) + eps;
    T dx = (t[0] + t[2]) - (p[0] + p[2]);
    T dy = (t[1] + t[3]) - (p[1] + p[3]);
    T rho2 = dx * dx / (T)4 + dy * dy / (T)4;

    /* loss = 1 - iou + rho2 / c2 */
    T inv_c2 = (T)1 / c2, inv_u = (T)1 / u;
    T g_rho2 = g * inv_c2;
    T g_c2 = -g_rho2 * rho2 * inv_c2;
    /* iou = overlap / u, u = ap + ag - overlap + eps; d loss / d iou = -g */
    T g_u = g * overlap * inv_u * inv_u;
    T g_ov = -g * inv_u - g_u;
    /* ap = pw * ph, ag = tw * th: both get g_u */
    T p0 = -g_u * ph, p1 = -g_u * pw, p2 = g_u * ph, p3 = g_u * pw;
    T t0 = -g_u * th, t1 = -g_u * tw, t2 = g_u * th, t3 = g_u * tw;
    /* overlap = clamp(rx - lx, 0) * clamp(ry - ly, 0); clamp passes the gradient at >= 0;
       rx = min(p2, t2) (p's share = share_max(t2, p2)), lx = max(p0, t0) */
    T g_w = g_ov * h * (T)(wr >= (T)0);
    T g_h = g_ov * w * (T)(hr >= (T)0);
    T k;
    k = FN(share_max_)(t[2], p[2]);
    p2 += g_w * k;
    t2 += g_w * ((T)1 - k);
    k = FN(share_max_)(p[0], t[0]);
    p0 -= g_w * k;
    t0 -= g_w * ((T)1 - k);
    k = FN(share_max_)(t[3], p[3]);
    p3 += g_h * k;
    t3 += g_h * ((T)1 - k);
    k = FN(share_max_)(p[1], t[1]);
    p1 -= g_h * k;
    t1 -= g_h * ((T)1 - k);
    /* c2 = clamp(ex2 - ex1, 0)^2 + clamp(ey2 - ey1, 0)^2 + eps; ex2 = max(p2, t2), ex1 = min(p0, t0) */
    T g_cw = g_c2 * (T)2 * cw * (T)(cwr >= (T)0);
    T g_ch = g_c2 * (T)2 * ch * (T)(chr >= (T)0);
    k = FN(share_max_)(p[2], t[2]);
    p2 += g_cw * k;
    t2 += g_cw * ((T)1 - k);
    k = FN(share_max_)(t[0], p[0]);
    p0 -= g_cw * k;
    t0 -= g_cw * ((T)1 - k);
    k = FN(share_max_)(p[3], t[3]);
    p3 += g_ch * k;
    t3 += g_ch * ((T)1 - k);
    k = FN(share_max_)(t[1], p[1]);
    p1 -= g_ch * k;
    t1 -= g_ch * ((T)1 - k);
    /* rho2 = dx^2 / 4 + dy^2 / 4, dx = (t0 + t2) - (p0 + p2) */
    T g_dx = g_rho2 * dx / (T)2, g_dy = g_rho2 * dy / (T)2;
    p0 -= g_dx;
    p2 -= g_dx;
    t0 += g_dx;
    t2 += g_dx;
    p1 -= g_dy;
    p3 -= g_dy;
    t1 += g_dy;
    t3 += g_dy;
    gp[0] = p0;
    gp[1] = p1;
    gp[2] = p2;
    gp[3] = p3;
    gt[0] = t0;
    gt[1] = t1;
    gt[2] = t2;
    gt[3] = t3;
}

tll_status FN(tll_diou_backward_)(T *grad_pred, T *grad_target, const T *grad_loss, double scale, const T *pred,
                                  const T *target, const T *weight, int64_t n, double eps)
{
    if (n < 0)
        return TLL_ERR_ARG;
    if (!grad_pred && !grad_target)
        return TLL_OK;
    T e = (T)eps, sc = (T)scale;
    int64_t ntile = (n + TLL_DIOU_TILE - 1) / TLL_DIOU_TILE;
    int64_t tile;
    /* Tiles of pairs: the per-pair factors first, then one branch-free loop over the
       tile into local buffers (vectorizable), then copies to the outputs asked for. */
#pragma omp parallel for schedule(static) num_threads(tll_get_num_threads()) if (n > 16384)
    for (tile = 0; tile < ntile; tile++) {
        int64_t lo = tile * TLL_DIOU_TILE, cnt = n - lo < TLL_DIOU_TILE ? n - lo : TLL_DIOU_TILE;
        T g[TLL_DIOU_TILE], gp[4 * TLL_DIOU_TILE], gt[4 * TLL_DIOU_TILE];
        for (int64_t i = 0; i < cnt; i++)
            g[i] = sc;
        if (grad_loss)
            for (int64_t i = 0; i < cnt; i++)
                g[i] *= grad_loss[lo + i];
        if (weight)
            for (int64_t i = 0; i < cnt; i++)
                g[i] *= weight[lo + i];
        const T *pt = pred + 4 * lo, *tt = target + 4 * lo;
        for (int64_t i = 0; i < cnt; i++)
            FN(diou_grad_one_)(gp + 4 * i, gt + 4 * i, pt + 4 * i, tt + 4 * i, e, g[i]);
        if (grad_pred)
            memcpy(grad_pred + 4 * lo, gp, (size_t)cnt * 4 * sizeof(T));
        if (grad_target)
            memcpy(grad_target + 4 * lo, gt, (size_t)cnt * 4 * sizeof(T));
    }
    return TLL_OK;
}

tll_status FN(tll_nms_forward_)(int64_t *keep, int64_t *num_kept, const T *boxes, const double *scores, int64_t n,
                                double iou_threshold)
{
    if (n < 0 || !num_kept)
        return TLL_ERR_ARG;
    *num_kept = 0;
    if (n == 0)
        return TLL_OK;
    if ((uint64_t)n > SIZE_MAX / (5 * sizeof(double) + 2 * sizeof(int64_t) + 1))
        return TLL_ERR_OVERFLOW;
    /* survivors in visiting order, structure of arrays (contiguous: the IoU loop vectorizes) */
    int64_t *id = malloc((size_t)n * sizeof(int64_t));
    int64_t *tmp = malloc((size_t)n * sizeof(int64_t));
    T *x1 = malloc((size_t)n * sizeof(T)), *y1 = malloc((size_t)n * sizeof(T));
    T *x2 = malloc((size_t)n * sizeof(T)), *y2 = malloc((size_t)n * sizeof(T));
    T *ar = malloc((size_t)n * sizeof(T));
    unsigned char *live = malloc((size_t)n);
    tll_status st = TLL_OK;
    if (!id || !tmp || !x1 || !y1 || !x2 || !y2 || !ar || !live) {
        st = TLL_ERR_NOMEM;
        goto done;
    }
    tll_sort_desc_stable(id, tmp, scores, n);
    for (int64_t r = 0; r < n; r++) {
        const T *bx = boxes + 4 * id[r];
        x1[r] = bx[0];
        y1[r] = bx[1];
        x2[r] = bx[2];
        y2[r] = bx[3];
        ar[r] = AREA(bx);
    }
    T thr = (T)iou_threshold;
    int64_t cnt = n, k = 0, work = 0;
    for (int64_t s = 0; s < cnt; s++) {
        /* n^2 IoUs at worst (nothing suppressed): let the caller stop a long call */
        work += cnt - s;
        if (work >= TLL_POLL_WORK) {
            work = 0;
            if (tll_poll()) {
                st = TLL_ERR_INTERRUPTED;
                goto done;
            }
        }
        /* survivor s is the best remaining box: keep it, drop the tail boxes it overlaps */
        keep[k++] = id[s];
        T bx1 = x1[s], by1 = y1[s], bx2 = x2[s], by2 = y2[s], ba = ar[s];
        int64_t dead = 0;
        for (int64_t r = s + 1; r < cnt; r++) {
            /* IoU with box s first, as tll_box_iou_pair(s, r); a NaN IoU does not suppress */
            unsigned char l = !(IOU_XY(bx1, by1, bx2, by2, ba, x1[r], y1[r], x2[r], y2[r], ar[r]) > thr);
            live[r] = l;
            dead += !l;
        }
        if (dead == 0)
            continue;
        int64_t w = s + 1;
        for (int64_t r = s + 1; r < cnt; r++) {
            if (!live[r])
                continue;
            id[w] = id[r];
            x1[w] = x1[r];
            y1[w] = y1[r];
            x2[w] = x2[r];
            y2[w] = y2[r];
            ar[w] = ar[r];
            w++;
        }
        cnt = w;
    }
    *num_kept = k;
done:
    free(id);
    free(tmp);
    free(x1);
    free(y1);
    free(x2);
    free(y2);
    free(ar);
    free(live);
    return st;
}

#undef IOU_PAIR
#undef AREA
#undef IOU_XY
