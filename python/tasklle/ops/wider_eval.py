"""The WIDER FACE PR accumulation as an op: the per-image matching of the
official ``wider_eval.m`` and the dataset sums of (counted proposals, recalled
faces) per score threshold, for every setting at once.

The C core (``csrc/core/wider_eval.c``) runs it with OpenMP over images, in
float64 with integer sums, so results do not depend on the thread count; the
twin ``tasklle.reference.wider_eval.wider_pr_counts`` is the literal
transcription of the MATLAB loops. Both check their arguments with
``check_wider_pr_args``. The op works on NumPy arrays (the evaluation has no
autograd and no device); ``impl`` follows the rule of every op
(``tasklle.ops._common.use_c``).
"""
import numpy as np

from .. import _C
from ..reference import wider_eval as _ref
from ._common import use_c

__all__ = ["wider_pr_counts"]


def wider_pr_counts(pred, pred_offsets, gt, gt_offsets, counted, iou_thresh=0.5, thresh_num=1000, impl="auto",
                    per_image=False, score_range=None):
    """Dataset PR sums of the WIDER FACE protocol.

    Args:
        pred: (P, 5) x y w h raw score of every prediction, image after image
            (any order within an image: each image is sorted by descending
            score, and scores are normalised once over all P,
            (s - min) / (max - min), 1 when all are equal).
        pred_offsets: (I+1,) int: image i owns pred[pred_offsets[i]:pred_offsets[i+1]].
        gt: (G, 4) x y w h of every face, image after image.
        gt_offsets: (I+1,) int, the same for gt.
        counted: (S, G) bool (or 0/1): the faces each setting counts; every
            other face is "ignore" (a prediction on it is not counted).
        iou_thresh: in (0, 1].
        thresh_num: number of score thresholds T (1000 in the protocol).
        impl: 'auto', 'c' or 'reference'.
        per_image: return each image's counts (I, S, T, 2) instead of their
            sum (the bootstrap over images re-weights these rows).
        score_range: (min, max) of the normalisation instead of pred's own
            (finite, min <= max): a chunk of a larger set evaluated with the
            whole set's range gives exactly that set's rows.

    Returns:
        (S, T, 2) int64: [counted proposals, recalled faces] summed over the
        images at thresh = 1 - t / T, t = 1..T (images without gt or without
        predictions add nothing); with ``per_image``, (I, S, T, 2), whose sum
        over axis 0 is exactly the default result.
    """
    pred, pred_offsets, gt, gt_offsets, counted, iou_thresh, thresh_num = _ref.check_wider_pr_args(
        pred, pred_offsets, gt, gt_offsets, counted, iou_thresh, thresh_num)
    per_image = _ref.check_per_image(per_image)
    lo, hi = _ref.check_score_range(score_range, pred)
    if not use_c("wider_pr_counts", impl):
        return _ref.wider_pr_counts(pred, pred_offsets, gt, gt_offsets, counted, iou_thresh, thresh_num,
                                    per_image=per_image, score_range=(lo, hi))
    if per_image:
        out = np.zeros((len(pred_offsets) - 1, len(counted), thresh_num, 2), dtype=np.int64)
        _C.wider_eval_per_image(out, pred, pred_offsets, gt, gt_offsets, counted.view(np.uint8), lo, hi, iou_thresh)
        return out
    sums = np.zeros((len(counted), thresh_num, 2), dtype=np.int64)
    _C.wider_eval_forward(sums, pred, pred_offsets, gt, gt_offsets, counted.view(np.uint8), lo, hi, iou_thresh)
    return sums
