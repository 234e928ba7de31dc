"""Reference twin of the WIDER FACE evaluation (the C kernel
``tll_wider_eval_forward`` and the dataset-level steps around it).

``wider_pr_counts`` (at the end) is the twin of the op
``tasklle.ops.wider_pr_counts`` (same arguments, same checks through
``check_wider_pr_args``, same result), built from the per-step functions
before it; ``wider_dataset_pr`` and ``wider_voc_ap`` transcribe the dataset
steps that ``tasklle.eval.wider.evaluate`` computes vectorised (the tests
compare the two). Written as a literal, loop-for-loop transcription of the official MATLAB
eval_tools (``wider_eval.m``: ``norm_score``, ``image_evaluation``,
``image_pr_info``, ``dataset_pr_info``, ``VOCap``), in float64 NumPy. It is
the specification the C path is tested against, so it deliberately makes no
use of the shortcuts the C kernel takes (it does not assume the scores are
sorted when looking up the last prediction above a threshold, it builds the
ignore vector from the 1-based keep indices, it sums in image order). It is
slow: a Python loop over predictions.

Where the official tools and their common Python port differ, see the notes
in ``tasklle.eval.wider``; this twin follows the same choices.
"""
import math
import numbers

import numpy as np

__all__ = [
    "check_iou_thresh",
    "check_wider_pr_args",
    "check_score_range",
    "wider_pr_counts",
    "wider_normalise_scores",
    "wider_box_overlap",
    "wider_image_matching",
    "wider_image_pr_info",
    "wider_evaluate_image",
    "wider_dataset_pr",
    "wider_voc_ap",
]


def normalise(s, lo, hi):
    """(s - lo) / (hi - lo); 1 where hi == lo. When hi - lo overflows (scores
    spanning more than the double range, e.g. 1e308 and -1e308) every operand is
    halved first -- exact, and the quotient is the same real number -- so no
    inf / inf = NaN appears. The C kernel uses the same formula."""
    if not hi > lo:
        return np.ones_like(s)
    if math.isfinite(hi - lo):
        return (s - lo) / (hi - lo)
    return (s * 0.5 - lo * 0.5) / (hi * 0.5 - lo * 0.5)


def wider_normalise_scores(preds, score_range=None):
    """Normalise the scores (column 4) of every prediction array once over
    all of them: (s - min) / (max - min), min and max over all predictions of
    all images (overflow-free, see ``normalise``). Empty arrays stay empty. When max == min (all scores equal)
    every score becomes 1 (the official tools divide by zero there).

    preds: list of (K_i, 5) arrays; score_range: (min, max) to use instead
    (the bootstrap's chunks use the whole set's). Returns (list of new arrays, min, max)."""
    lo, hi = math.inf, -math.inf
    for p in preds:
        if len(p) == 0:
            continue
        lo = min(lo, float(np.min(p[:, 4])))
        hi = max(hi, float(np.max(p[:, 4])))
    if score_range is not None:
        lo, hi = score_range
    out = []
    for p in preds:
        q = np.array(p, dtype=np.float64, copy=True).reshape(-1, 5)
        if len(q):
            q[:, 4] = normalise(q[:, 4], lo, hi)
        out.append(q)
    return out, lo, hi


def wider_box_overlap(gt_x1y1x2y2, box):
    """boxoverlap.m: IoU of one box (4,) x1 y1 x2 y2 with every row of
    gt (N, 4), +1 pixel convention, 0 where the boxes do not overlap."""
    a = gt_x1y1x2y2
    x1 = np.maximum(a[:, 0], box[0])
    y1 = np.maximum(a[:, 1], box[1])
    x2 = np.minimum(a[:, 2], box[2])
    y2 = np.minimum(a[:, 3], box[3])
    w = x2 - x1 + 1
    h = y2 - y1 + 1
    inter = w * h
    aarea = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    barea = (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        o = inter / (aarea + barea - inter)
    o[w <= 0] = 0
    o[h <= 0] = 0
    return o


def wider_image_matching(pred, gt, ignore, iou_thresh=0.5):
    """image_evaluation.m.

    pred (K, 5) x y w h score in evaluation order; gt (N, 4) x y w h (N >= 1);
    ignore (N,) with 1 where the face counts and 0 where it is ignored (the
    official tools' naming). Returns (pred_recall (K,) int64: counted faces
    recalled after each prediction, proposal_list (K,) int64: 1 for a counted
    proposal, -1 for a prediction on an ignored face)."""
    pred = np.array(pred, dtype=np.float64, copy=True)
    gt = np.array(gt, dtype=np.float64, copy=True)
    pred_recall = np.zeros(len(pred), dtype=np.int64)
    recall_list = np.zeros(len(gt), dtype=np.int64)
    proposal_list = np.ones(len(pred), dtype=np.int64)
    pred[:, 2] = pred[:, 0] + pred[:, 2]
    pred[:, 3] = pred[:, 1] + pred[:, 3]
    gt[:, 2] = gt[:, 0] + gt[:, 2]
    gt[:, 3] = gt[:, 1] + gt[:, 3]
    for h in range(len(pred)):
        overlap_list = wider_box_overlap(gt, pred[h, :4])
        idx = int(np.argmax(overlap_list))  # first index of the maximum, like MATLAB's max
        max_overlap = overlap_list[idx]
        if max_overlap >= iou_thresh:
            if ignore[idx] == 0:
                recall_list[idx] = -1
                proposal_list[h] = -1
            elif recall_list[idx] == 0:
                recall_list[idx] = 1
        pred_recall[h] = np.count_nonzero(recall_list == 1)
    return pred_recall, proposal_list


def wider_image_pr_info(thresh_num, pred, proposal_list, pred_recall):
    """image_pr_info.m: (thresh_num, 2) int64 [counted proposals, recalled
    faces] at thresh = 1 - t / thresh_num, t = 1..thresh_num, r = the last
    prediction whose score >= thresh (found without assuming sorted scores)."""
    scores = np.asarray(pred, dtype=np.float64)[:, 4]
    info = np.zeros((thresh_num, 2), dtype=np.int64)
    # All thresholds at once (a (T, K) mask) instead of MATLAB's t loop: same
    # find(score >= thresh, 1, 'last') per row, 1000x fewer Python steps.
    thresh = 1 - np.arange(1, thresh_num + 1) / thresh_num
    above = scores[None, :] >= thresh[:, None]
    found = above.any(axis=1)
    last = len(scores) - 1 - np.argmax(above[:, ::-1], axis=1)
    counted_so_far = np.cumsum(np.asarray(proposal_list) == 1)
    info[found, 0] = counted_so_far[last[found]]
    info[found, 1] = np.asarray(pred_recall)[last[found]]
    return info


def wider_evaluate_image(pred, gt, keep_index, iou_thresh=0.5, thresh_num=1000):
    """One image of one setting, as the official loop body does it.

    pred (K, 5) x y w h normalised score, already in evaluation order
    (descending score); gt (N, 4) x y w h; keep_index (k,) 1-based indices
    of the faces that count (every other face is ignored).
    Returns (thresh_num, 2) int64 [counted proposals, recalled faces];
    zeros when the image has no gt or no predictions (it is skipped)."""
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 5)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    if len(gt) == 0 or len(pred) == 0:
        return np.zeros((thresh_num, 2), dtype=np.int64)
    ignore = np.zeros(len(gt))
    keep_index = np.asarray(keep_index, dtype=np.int64).reshape(-1)
    if len(keep_index):
        ignore[keep_index - 1] = 1
    pred_recall, proposal_list = wider_image_matching(pred, gt, ignore, iou_thresh)
    return wider_image_pr_info(thresh_num, pred, proposal_list, pred_recall)


def wider_dataset_pr(pr_sums, count_face):
    """dataset_pr_info.m: (precision (T,), recall (T,)) from the summed
    [proposals, recalled] (T, 2). 0 / 0 gives NaN (as in MATLAB)."""
    pr_sums = np.asarray(pr_sums, dtype=np.float64)
    precision = np.empty(len(pr_sums))
    recall = np.empty(len(pr_sums))
    for i in range(len(pr_sums)):
        precision[i] = pr_sums[i, 1] / pr_sums[i, 0] if pr_sums[i, 0] != 0 else math.nan
        recall[i] = pr_sums[i, 1] / count_face if count_face != 0 else math.nan
    return precision, recall


def _matlab_max(a, b):
    # MATLAB's max ignores NaN unless both are NaN
    if math.isnan(a):
        return b
    if math.isnan(b):
        return a
    return max(a, b)


def wider_voc_ap(rec, prec):
    """VOCap.m: sentinels, monotone precision envelope (MATLAB max, which
    skips NaN), sum of delta-recall x precision where recall changes."""
    mrec = [0.0, *map(float, rec), 1.0]
    mpre = [0.0, *map(float, prec), 0.0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = _matlab_max(mpre[i], mpre[i + 1])
    ap = 0.0
    for i in range(1, len(mrec)):
        if mrec[i] != mrec[i - 1]:
            ap += (mrec[i] - mrec[i - 1]) * mpre[i]
    return ap


# ----------------------------------------------------------------------------
# the op's twin and the argument checks both paths share
# ----------------------------------------------------------------------------

def check_iou_thresh(iou_thresh):
    """``iou_thresh`` as a float in (0, 1]; TypeError / ValueError naming it."""
    if isinstance(iou_thresh, bool) or not isinstance(iou_thresh, numbers.Real):
        raise TypeError(f"iou_thresh must be a number, got {type(iou_thresh).__name__}")
    iou_thresh = float(iou_thresh)
    if not 0.0 < iou_thresh <= 1.0:
        raise ValueError(f"iou_thresh must be in (0, 1], got {iou_thresh}")
    return iou_thresh


def _real_array(a, name, ndim, columns=None):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {a.dtype}")
    if a.ndim != ndim or (columns is not None and a.shape[1] != columns):
        want = f"(n, {columns})" if columns is not None else f"{ndim}-d"
        raise ValueError(f"{name} must have shape {want}, got {a.shape}")
    return a


def _offsets(o, name, total):
    o = _real_array(o, name, 1)
    if o.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {o.dtype}")
    o = np.ascontiguousarray(o, dtype=np.int64)
    if len(o) < 1 or o[0] != 0 or (np.diff(o) < 0).any() or o[-1] != total:
        raise ValueError(f"{name} must start at 0, never decrease and end at the row count {total}")
    return o


def check_score_range(score_range, pred):
    """The normalisation (min, max) as two floats: from ``pred``'s scores
    (column 4) when ``score_range`` is None (0, 1 when there is no
    prediction), else the given finite pair with min <= max. TypeError /
    ValueError naming ``score_range``."""
    if score_range is None:
        return (float(pred[:, 4].min()), float(pred[:, 4].max())) if len(pred) else (0.0, 1.0)
    if isinstance(score_range, (str, bytes)) or not hasattr(score_range, "__len__") or len(score_range) != 2:
        raise TypeError(f"score_range must be None or a (min, max) pair, got {score_range!r}")
    if any(isinstance(v, bool) or not isinstance(v, numbers.Real) for v in score_range):
        raise TypeError(f"score_range must hold two real numbers, got {score_range!r}")
    lo, hi = (float(v) for v in score_range)
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ValueError(f"score_range must be finite with min <= max, got {score_range!r}")
    return lo, hi


def check_wider_pr_args(pred, pred_offsets, gt, gt_offsets, counted, iou_thresh, thresh_num):
    """The checks of ``wider_pr_counts``, shared by the C path and the twin.

    Returns the arguments as the kernel reads them: pred (P, 5) and gt (G, 4)
    C-contiguous float64, both offsets (I+1,) int64, counted (S, G) bool,
    iou_thresh float, thresh_num int. Raises TypeError / ValueError naming the
    argument."""
    pred = np.ascontiguousarray(_real_array(pred, "pred", 2, 5), dtype=np.float64)
    gt = np.ascontiguousarray(_real_array(gt, "gt", 2, 4), dtype=np.float64)
    pred_offsets = _offsets(pred_offsets, "pred_offsets", len(pred))
    gt_offsets = _offsets(gt_offsets, "gt_offsets", len(gt))
    if len(pred_offsets) != len(gt_offsets):
        raise ValueError(f"pred_offsets and gt_offsets must have the same length (images + 1), "
                         f"got {len(pred_offsets)} and {len(gt_offsets)}")
    for a, name in ((pred, "pred"), (gt, "gt")):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} must be finite")
    counted = _real_array(counted, "counted", 2)
    if counted.shape[1] != len(gt):
        raise ValueError(f"counted must have shape (settings, {len(gt)}), got {counted.shape}")
    if counted.dtype != np.bool_ and not np.isin(counted, (0, 1)).all():
        raise ValueError("counted must hold 0/1 (or bool) flags")
    counted = np.ascontiguousarray(counted, dtype=bool)
    iou_thresh = check_iou_thresh(iou_thresh)
    if isinstance(thresh_num, bool) or not isinstance(thresh_num, numbers.Integral):
        raise TypeError(f"thresh_num must be an integer, got {type(thresh_num).__name__}")
    if thresh_num < 1:
        raise ValueError(f"thresh_num must be at least 1, got {thresh_num}")
    return pred, pred_offsets, gt, gt_offsets, counted, iou_thresh, int(thresh_num)


def wider_pr_counts(pred, pred_offsets, gt, gt_offsets, counted, iou_thresh=0.5, thresh_num=1000,
                    per_image=False, score_range=None):
    """The dataset PR sums of the official loop (twin of ``tasklle.ops.wider_pr_counts``).

    pred (P, 5) x y w h raw score and gt (G, 4) x y w h, grouped per image by
    pred_offsets / gt_offsets (I+1,); counted (S, G): the faces each setting
    counts (every other face is ignored). Returns (S, thresh_num, 2) int64
    [counted proposals, recalled faces] summed over the images at
    thresh = 1 - t / thresh_num, t = 1..thresh_num; with ``per_image`` the
    (I, S, thresh_num, 2) rows of each image instead. score_range: the
    normalisation's (min, max) (default: over all of pred)."""
    pred, pred_offsets, gt, gt_offsets, counted, iou_thresh, thresh_num = check_wider_pr_args(
        pred, pred_offsets, gt, gt_offsets, counted, iou_thresh, thresh_num)
    per_image = check_per_image(per_image)
    score_range = check_score_range(score_range, pred)
    n = len(pred_offsets) - 1
    # read_pred.m sorts each image by descending raw score (stable), then
    # norm_score.m normalises over everything.
    ordered = []
    for i in range(n):
        p = pred[pred_offsets[i]:pred_offsets[i + 1]]
        ordered.append(p[np.argsort(-p[:, 4], kind="stable")])
    normed, _, _ = wider_normalise_scores(ordered, score_range)
    out = np.zeros(((n,) if per_image else ()) + (len(counted), thresh_num, 2), dtype=np.int64)
    for s, mask in enumerate(counted):
        for i, p in enumerate(normed):  # image order, as dataset_pr_info.m sums them
            g = gt[gt_offsets[i]:gt_offsets[i + 1]]
            if len(g) == 0 or len(p) == 0:
                continue
            keep_index = np.nonzero(mask[gt_offsets[i]:gt_offsets[i + 1]])[0] + 1  # gt_list is 1-based
            info = wider_evaluate_image(p, g, keep_index, iou_thresh, thresh_num)
            if per_image:
                out[i, s] = info
            else:
                out[s] += info
    return out


def check_per_image(per_image):
    if not isinstance(per_image, (bool, np.bool_)):
        raise TypeError(f"per_image must be a bool, got {type(per_image).__name__}")
    return bool(per_image)
