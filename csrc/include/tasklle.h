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
    TLL_ERR_INTERRUPTED = 4, /* the caller's poll function asked to stop (see tll_set_poll) */
} tll_status;

/* Human-readable text for a status code (static storage). */
const char *tll_status_string(tll_status s);

/* ---- threads (core/threads.c) ------------------------------------------ */
/* n <= 0 restores the default (the number of processors OpenMP sees). */
void tll_set_num_threads(int n);
int tll_get_num_threads(void);
/* 1 if the core was compiled with OpenMP. */
int tll_have_openmp(void);

/*
 * Cooperative interruption of long kernels. A caller may install, for the
 * calling thread only (thread-local), a poll function; kernels whose work grows
 * faster than their input (NMS: n^2 IoUs; anchor assignment: anchors x gts) call
 * tll_poll() from that thread between blocks of about TLL_POLL_WORK operations
 * (milliseconds). A non-zero answer stops the kernel, which returns
 * TLL_ERR_INTERRUPTED with its outputs unspecified. Without a poll function
 * tll_poll() is 0 and nothing changes. (The Python binding installs one that
 * runs Python's signal handlers, so Ctrl-C stops such a call.)
 */
typedef int (*tll_poll_fn)(void *ctx);
void tll_set_poll(tll_poll_fn fn, void *ctx);
int tll_poll(void);
#define TLL_POLL_WORK ((int64_t)1 << 22)

/* ---- curve (core/curve.c) ---------------------------------------------- */
/* BEGIN curve */
/*
 * Iterated enhancement curve (Zero-DCE / Zero-DCE++):
 *     x_0 = x,  x_{k+1} = x_k + A_k * (x_k*x_k - x_k),  k = 0..n-1  (n = iterations >= 1), no clamp.
 * x, out, half, grad_x, grad_out, grad_half: (batch, 3, height, width).
 * A, grad_A: (batch, 3, height, width) when per_iteration == 0 (one map shared by
 *   every iteration), or (batch, 3*n, height, width) when per_iteration != 0
 *   (map k = channels 3k..3k+2, used in iteration k).
 * half: x_{half_after} (0 <= half_after <= n; Zero-DCE uses n/2), or NULL.
 * Backward: grad_out / grad_half may be NULL (a zero gradient); grad_x / grad_A
 *   may be NULL (not wanted). NaN and inf propagate; nothing is clamped.
 * Memory: forward none; backward recomputes the chain per tile and allocates
 *   nthreads * max(32 KiB, 16*n*sizeof(T)) bytes of scratch per call.
 * Deterministic: elementwise, bit-identical for any thread count.
 * Returns TLL_ERR_ARG for iterations < 1 or half_after outside [0, n],
 * TLL_ERR_OVERFLOW if a size overflows, TLL_ERR_NOMEM if scratch allocation fails.
 */
tll_status tll_curve_forward_f32(float *out, float *half, const float *x, const float *A, size_t batch,
                                 size_t height, size_t width, int iterations, int per_iteration, int half_after);
tll_status tll_curve_forward_f64(double *out, double *half, const double *x, const double *A, size_t batch,
                                 size_t height, size_t width, int iterations, int per_iteration, int half_after);
tll_status tll_curve_backward_f32(float *grad_x, float *grad_A, const float *grad_out, const float *grad_half,
                                  const float *x, const float *A, size_t batch, size_t height, size_t width,
                                  int iterations, int per_iteration, int half_after);
tll_status tll_curve_backward_f64(double *grad_x, double *grad_A, const double *grad_out,
                                  const double *grad_half, const double *x, const double *A, size_t batch,
                                  size_t height, size_t width, int iterations, int per_iteration, int half_after);
/*
 * Fused upsample + curve (inference, no backward): map = bilinear upsampling
 * (align_corners=True) of a (batch, 3, height_a, width_a) to (batch, 3, height,
 * width), out = the curve of x with that shared map, `iterations` steps. map
 * may be NULL (not written). height_a, width_a >= 1. Scratch per thread:
 * width_a (+ width without map) elements. Deterministic for any thread count.
 * Returns TLL_ERR_ARG for iterations < 1 or an empty map, TLL_ERR_OVERFLOW,
 * TLL_ERR_NOMEM.
 */
tll_status tll_curve_upsample_forward_f32(float *out, float *map, const float *x, const float *a, size_t batch,
                                          size_t height, size_t width, size_t height_a, size_t width_a,
                                          int iterations);
tll_status tll_curve_upsample_forward_f64(double *out, double *map, const double *x, const double *a,
                                          size_t batch, size_t height, size_t width, size_t height_a,
                                          size_t width_a, int iterations);
/* END curve */

/* ---- depthwise-separable convolution (core/separable_conv.c) ----------- */
/* BEGIN separable_conv */
/*
 * The DCE-Net++ block: depthwise 3x3 (groups = cin, bias, stride 1, zero
 * padding 1), then pointwise 1x1 (cin -> cout, bias), then ReLU if relu != 0:
 *     y = [relu](pw_w @ dw(x) + pw_b)
 * x, grad_x: (batch, cin - cin2, height, width) and x2, grad_x2: (batch, cin2,
 * height, width), the two halves of the input's channel concatenation
 * cat([x, x2], 1) (cin2 = 0 and x2 = NULL for one input; 0 <= cin2 < cin);
 * y, grad_y: (batch, cout, height, width);
 * dw_w, grad_dw_w: (cin, 1, 3, 3); dw_b, grad_dw_b: (cin); pw_w, grad_pw_w:
 * (cout, cin, 1, 1); pw_b, grad_pw_b: (cout). cin, cout >= 1.
 * The depthwise output is never stored in full: it is computed per tile of at
 * most 2048 pixels (up to 256 columns, 8 rows at full width) into per-thread
 * scratch, and recomputed in the backward.
 * Backward: y is the forward's output, needed only with relu (the gradient
 *   passes where y > 0 is not false, as torch's relu backward); grad_y must not
 *   be NULL. Any of grad_x, grad_x2, grad_dw_w, grad_dw_b, grad_pw_w, grad_pw_b may be
 *   NULL (not wanted). With no pixels the weight gradients are zero.
 * Memory: per thread about (2*cin + cout)*(10*258) + (cin + cout + 1)*2048
 *   elements of scratch (backward; the forward less); the backward also allocates one
 *   partial of the weight gradients per tile, (cout*cin + cout + 10*cin)
 *   elements each.
 * Deterministic: bit-identical for any thread count (weight gradients are
 *   per-tile partials summed in tile order). Multiply-adds are fused (FMA)
 *   where the CPU has FMA, so the last bits may differ between CPUs.
 * Returns TLL_ERR_ARG for cin or cout 0, cin2 >= cin, x2 NULL with cin2 > 0 (or
 * given with cin2 = 0), a NULL grad_y, or relu without y;
 * TLL_ERR_OVERFLOW if a size overflows, TLL_ERR_NOMEM if allocation fails.
 */
tll_status tll_separable_conv_forward_f32(float *y, const float *x, const float *x2, const float *dw_w,
                                          const float *dw_b, const float *pw_w, const float *pw_b, size_t batch,
                                          size_t cin, size_t cin2, size_t cout, size_t height, size_t width,
                                          int relu);
tll_status tll_separable_conv_forward_f64(double *y, const double *x, const double *x2, const double *dw_w,
                                          const double *dw_b, const double *pw_w, const double *pw_b, size_t batch,
                                          size_t cin, size_t cin2, size_t cout, size_t height, size_t width,
                                          int relu);
tll_status tll_separable_conv_backward_f32(float *grad_x, float *grad_x2, float *grad_dw_w, float *grad_dw_b,
                                           float *grad_pw_w, float *grad_pw_b, const float *grad_y, const float *y,
                                           const float *x, const float *x2, const float *dw_w, const float *dw_b,
                                           const float *pw_w, size_t batch, size_t cin, size_t cin2, size_t cout,
                                           size_t height, size_t width, int relu);
tll_status tll_separable_conv_backward_f64(double *grad_x, double *grad_x2, double *grad_dw_w, double *grad_dw_b,
                                           double *grad_pw_w, double *grad_pw_b, const double *grad_y,
                                           const double *y, const double *x, const double *x2, const double *dw_w,
                                           const double *dw_b, const double *pw_w, size_t batch, size_t cin,
                                           size_t cin2, size_t cout, size_t height, size_t width, int relu);
/* END separable_conv */

/* ---- Zero-DCE losses (core/zerodce_loss.c) ----------------------------- */
/* BEGIN zerodce_loss */
/*
 * Fused Zero-DCE non-reference losses (official Zero-DCE / Zero-DCE++ code; see
 * REFERENCE.md section 2). Y = enhanced, I = original: (batch, 3, height, width);
 * A = curve maps: (batch, channels, height_a, width_a). ps = spatial pool size,
 * pe = exposure patch size; pooling is AvgPool2d with floor (trailing rows and
 * columns that do not fill a whole window are ignored), hs = height/ps, ws =
 * width/ps, he = height/pe, we = width/pe.
 *
 *   L_spa = mean over (b, i, j) of sum over the 4 neighbours n of (D_I - D_Y)^2,
 *           D = pooled(i,j) - pooled(n), a neighbour outside the grid counts 0;
 *           pooled = ps x ps average of the channel mean.
 *   L_exp = mean over (b, i, j) of (pe x pe average of the channel mean - E[b])^2.
 *   L_col = mean over b of sqrt((mr-mg)^4 + (mr-mb)^4 + (mb-mg)^4), m = channel
 *           means; where the sqrt argument is 0 its gradient is taken as 0 (the
 *           continuous extension: |dk/dm| <= 2*max|d| -> 0).
 *   L_tv  = 2 * (sum dA_h^2 / ((height_a-1)*width_a) + sum dA_w^2 / (height_a*(width_a-1))) / batch;
 *           a direction with a single row (column) contributes 0 (the official
 *           code would divide 0 by 0).
 *
 * Forward (one read of Y and I): losses[0..2] <- L_spa, L_exp, L_col (the
 * terms not selected in `terms` are left untouched), and the per-pixel
 * gradients each loss needs for the backward pass, stored compactly:
 *   grad_spa (batch, hs, ws): dL_spa/dY at any pixel of cell (i, j) (channels alike);
 *     dL_spa/dI is its negative;
 *   grad_exp (batch, he, we): dL_exp/dY at any pixel of cell (i, j);
 *   grad_col (batch, 3):      dL_col/dY at any pixel of image b, channel c.
 * Pointers of terms not selected may be NULL (also `original` without SPA).
 * exposure: (batch,) targets E[b].
 * Backward (one write of grad_enhanced, and of grad_original if not NULL):
 *   grad_enhanced = c_spa*grad_spa + c_exp*grad_exp + c_col*grad_col (broadcast),
 *   grad_original = -c_spa*grad_spa (0 outside the pooled region).
 *   A NULL compact gradient or a zero coefficient skips that term.
 * TV forward: *loss <- L_tv and, if grad is not NULL, grad <- coef * dL_tv/dA in
 *   the same pass. TV backward: grad <- coef * dL_tv/dA.
 *
 * Sizes: batch, height, width >= 1; selected SPA needs height, width >= ps,
 * selected EXP needs height, width >= pe (TLL_ERR_ARG otherwise).
 * Memory: forward allocates (batch*hs*ws + batch*ceil(height/R)*3 + batch*max(hs,he)
 *   + nthreads*(2*width + ws + we)) doubles, R = lcm(ps, pe) rows per task (capped at
 *   height); backward nthreads*2*width doubles; TV forward 2*batch*channels*height_a
 *   doubles when a loss is wanted.
 * Deterministic: every pooled cell and row is summed by one task in a fixed order and
 * partials are combined in a fixed order, in double: bit-identical for any thread count.
 * Precision: sums and the image gradients in double; the elementwise TV gradient in the
 * element type (as the reference's autograd does).
 * NaN and inf propagate.
 */
#define TLL_ZDCE_SPA 1u
#define TLL_ZDCE_EXP 2u
#define TLL_ZDCE_COL 4u
tll_status tll_zerodce_loss_forward_f32(double *losses, double *grad_spa, double *grad_exp, double *grad_col,
                                        const float *enhanced, const float *original, const double *exposure,
                                        size_t batch, size_t height, size_t width, size_t spa_pool,
                                        size_t exp_pool, unsigned terms);
tll_status tll_zerodce_loss_forward_f64(double *losses, double *grad_spa, double *grad_exp, double *grad_col,
                                        const double *enhanced, const double *original, const double *exposure,
                                        size_t batch, size_t height, size_t width, size_t spa_pool,
                                        size_t exp_pool, unsigned terms);
tll_status tll_zerodce_loss_backward_f32(float *grad_enhanced, float *grad_original, const double *grad_spa,
                                         const double *grad_exp, const double *grad_col, size_t batch,
                                         size_t height, size_t width, size_t spa_pool, size_t exp_pool,
                                         double c_spa, double c_exp, double c_col);
tll_status tll_zerodce_loss_backward_f64(double *grad_enhanced, double *grad_original, const double *grad_spa,
                                         const double *grad_exp, const double *grad_col, size_t batch,
                                         size_t height, size_t width, size_t spa_pool, size_t exp_pool,
                                         double c_spa, double c_exp, double c_col);
tll_status tll_zerodce_tv_forward_f32(double *loss, float *grad, const float *A, size_t batch, size_t channels,
                                      size_t height, size_t width, double coef);
tll_status tll_zerodce_tv_forward_f64(double *loss, double *grad, const double *A, size_t batch,
                                      size_t channels, size_t height, size_t width, double coef);
tll_status tll_zerodce_tv_backward_f32(float *grad, const float *A, size_t batch, size_t channels, size_t height,
                                       size_t width, double coef);
tll_status tll_zerodce_tv_backward_f64(double *grad, const double *A, size_t batch, size_t channels,
                                       size_t height, size_t width, double coef);
/* END zerodce_loss */

/* ---- boxes: IoU, DIoU, NMS (core/boxes.c) ------------------------------ */
/* BEGIN boxes */
/*
 * Boxes are rows x1, y1, x2, y2 (widths x2 - x1, no +1). IoU = overlap /
 * max(union, 1e-6), computed in the element type with the operation order of
 * tasklle.reference.boxes (bit-identical to it). _f32 / _f64 variants.
 */
/* out (n, m): IoU of a[i] (n, 4) with b[j] (m, 4). Parallel over rows; no scratch. */
tll_status tll_box_iou_forward_f32(float *out, const float *a, int64_t n, const float *b, int64_t m);
tll_status tll_box_iou_forward_f64(double *out, const double *a, int64_t n, const double *b, int64_t m);
/* out (n,): IoU of the aligned pairs a[i], b[i]. */
tll_status tll_box_iou_aligned_forward_f32(float *out, const float *a, const float *b, int64_t n);
tll_status tll_box_iou_aligned_forward_f64(double *out, const double *a, const double *b, int64_t n);
/*
 * DIoU loss of aligned pairs (mmdet): loss_i = 1 - (IoU - rho^2 / c^2) with
 * IoU = overlap / (union + eps), c^2 = enclosing w^2 + h^2 + eps, rho^2 the
 * squared centre distance. loss (n,) receives the unweighted losses (may be
 * NULL); *weighted_sum = sum_i w_i * loss_i (w_i = 1 when weight is NULL),
 * accumulated in double over fixed blocks of pairs combined in order (thread-
 * count independent). Scratch: one double per block of 4096 pairs.
 */
tll_status tll_diou_forward_f32(float *loss, double *weighted_sum, const float *pred, const float *target,
                                const float *weight, int64_t n, double eps);
tll_status tll_diou_forward_f64(double *loss, double *weighted_sum, const double *pred, const double *target,
                                const double *weight, int64_t n, double eps);
/*
 * Backward of the above: with g_i = scale * (grad_loss ? grad_loss[i] : 1) * (weight ? weight[i] : 1),
 * grad_pred / grad_target (n, 4) receive g_i * d loss_i / d box (either may be NULL).
 * Non-smooth points follow torch autograd: max/min ties split the gradient
 * in halves, clamp(min=0) passes it at exactly 0. No scratch.
 */
tll_status tll_diou_backward_f32(float *grad_pred, float *grad_target, const float *grad_loss, double scale,
                                 const float *pred, const float *target, const float *weight, int64_t n,
                                 double eps);
tll_status tll_diou_backward_f64(double *grad_pred, double *grad_target, const double *grad_loss, double scale,
                                 const double *pred, const double *target, const double *weight, int64_t n,
                                 double eps);
/*
 * Greedy NMS: visit boxes (n, 4) by descending score (stable: equal scores in
 * index order); keep a box unless a kept box has IoU > iou_threshold (compared
 * in the element type). keep (n,) receives the kept indices in visiting order,
 * *num_kept their count. Scores are double (exact for every float type).
 * Scratch: about n * (5 elements + 3 int64). Deterministic, serial.
 */
tll_status tll_nms_forward_f32(int64_t *keep, int64_t *num_kept, const float *boxes, const double *scores,
                               int64_t n, double iou_threshold);
tll_status tll_nms_forward_f64(int64_t *keep, int64_t *num_kept, const double *boxes, const double *scores,
                               int64_t n, double iou_threshold);
/* END boxes */

/* ---- anchor assignment (core/assign.c) --------------------------------- */
/* BEGIN assign */
#define TLL_ASSIGN_NEGATIVE (-1)
#define TLL_ASSIGN_IGNORED (-2)
/*
 * Max-IoU assignment of anchors (a, 4) to gts (g, 4), mmdet MaxIoUAssigner
 * semantics (see tasklle.reference.assign): assigned (a,) receives a gt index
 * (0-based, into gts) or TLL_ASSIGN_NEGATIVE / TLL_ASSIGN_IGNORED; max_iou (a,)
 * each anchor's best IoU over the non-ignored gts (0 if none). gt_ignore (g,)
 * may be NULL; nonzero = that gt takes no part. Thresholds are compared in the
 * element type. Never holds the a x g IoU matrix: two passes over blocks of
 * anchors, skipping gts that cannot overlap a block. Scratch: O(g) per thread
 * plus O(g) shared. Deterministic (ties: first gt / first anchor, later gt
 * overrides in low-quality matching), independent of the thread count.
 */
tll_status tll_assign_max_iou_f32(int64_t *assigned, float *max_iou, const float *anchors, int64_t a,
                                  const float *gts, int64_t g, const uint8_t *gt_ignore, double pos_thr,
                                  double neg_thr, double min_pos_thr, int gt_max_assign_all,
                                  int match_low_quality);
tll_status tll_assign_max_iou_f64(int64_t *assigned, double *max_iou, const double *anchors, int64_t a,
                                  const double *gts, int64_t g, const uint8_t *gt_ignore, double pos_thr,
                                  double neg_thr, double min_pos_thr, int gt_max_assign_all,
                                  int match_low_quality);
/* END assign */

/* ---- WIDER FACE evaluation (core/wider_eval.c) ------------------------- */
/* BEGIN wider_eval */
/*
 * tll_wider_eval_forward: the per-image matching and PR accumulation of the
 * official WIDER FACE evaluation (MATLAB eval_tools: image_evaluation +
 * image_pr_info), for every image and every setting in one call.
 *
 *   pr_counts  out (S, T, 2) int64: for threshold t = 1..T (thresh = 1 - t/T)
 *              and setting s, the dataset sums over images of
 *              [0] counted proposals among the predictions kept at thresh,
 *              [1] counted faces recalled by them.
 *   pred       (P, 5) float64 x, y, w, h, raw score; image i owns rows
 *              pred_offsets[i] .. pred_offsets[i+1]-1 (any order: the kernel
 *              sorts each image by descending raw score, ties in row order,
 *              like MATLAB's stable sort(..., 'descend')).
 *   pred_offsets (I+1) int64, 0 = pred_offsets[0] <= ... <= pred_offsets[I] = P.
 *   gt         (G, 4) float64 x, y, w, h; image i owns gt_offsets[i] .. gt_offsets[i+1]-1.
 *   gt_offsets (I+1) int64, same rules with G.
 *   counted    (S, G) uint8: nonzero where the face counts in setting s
 *              (its 1-based index is in gt_list); every other face is "ignore".
 *   score_min, score_max: the normalisation (s - min) / (max - min) applied
 *              to raw scores; when max <= min every normalised score is 1.
 *   iou_thresh: a prediction matches its best-IoU gt when IoU >= iou_thresh.
 *
 * Images with no predictions or no gt boxes contribute nothing (the caller
 * counts their faces). IoU uses x2 = x + w and the +1 pixel convention.
 * Inputs must be finite (the binding checks). Allocation: per-thread scratch
 * of O(max predictions per image + max gt per image + S*T) words.
 * Deterministic: integer counts, so results do not depend on the thread count.
 */
tll_status tll_wider_eval_forward(int64_t *pr_counts, const double *pred, const int64_t *pred_offsets,
                                  const double *gt, const int64_t *gt_offsets, const uint8_t *counted,
                                  int64_t n_images, int64_t n_settings, int64_t n_thresh,
                                  double score_min, double score_max, double iou_thresh);
/*
 * tll_wider_eval_per_image: the same matching, each image's counts kept apart
 * (for the bootstrap over images, tasklle.eval.intervals).
 *
 *   counts     out (I, S, T, 2) int64: image i's [counted proposals, recalled
 *              faces] per setting and threshold; summed over i they are
 *              exactly tll_wider_eval_forward's pr_counts. Images with no
 *              predictions or no gt get zeros.
 * Every other argument as for tll_wider_eval_forward; score_min / score_max
 * are the caller's (the bootstrap fixes them from all predictions, so a call
 * on a chunk of images gives the rows of the whole set). No per-thread
 * accumulator: each image writes its own block, so the result does not
 * depend on the thread count either.
 */
tll_status tll_wider_eval_per_image(int64_t *counts, const double *pred, const int64_t *pred_offsets,
                                    const double *gt, const int64_t *gt_offsets, const uint8_t *counted,
                                    int64_t n_images, int64_t n_settings, int64_t n_thresh,
                                    double score_min, double score_max, double iou_thresh);
/* END wider_eval */

#ifdef __cplusplus
}
#endif
#endif /* TASKLLE_H */
