"""Max-IoU anchor assignment (mmdet MaxIoUAssigner as TinaFace configures it).

CPU float32/float64 tensors run in the C core (csrc/core/assign.c), which never
holds the anchors x gts IoU matrix (O(A + G) memory plus per-thread scratch);
other devices run the twin ``tasklle.reference.assign`` -- the full
specification is in its docstring. Paths are picked by ``ops._common.use_c``:
another dtype on the CPU is a TypeError."""
import torch

from .. import _C
from ..reference import assign as _ref
from ._common import resolved, use_c
from ..reference.assign import IGNORED, NEGATIVE

__all__ = ["assign_max_iou", "NEGATIVE", "IGNORED"]


def assign_max_iou(anchors, gts, pos_thr=0.35, neg_thr=0.35, min_pos_thr=0.35, gt_max_assign_all=True,
                   match_low_quality=True, gt_ignore=None, impl="auto"):
    """Assign each anchor a gt index, NEGATIVE (-1) or IGNORED (-2).

    anchors: (A, 4), gts: (G, 4) same floating dtype (x1 y1 x2 y2, no +1);
    gt_ignore: optional (G,) bool (True = this gt takes no part).
    Returns (assigned int64 (A,) -- indices into the given gts --, max_iou (A,)
    in the anchors' dtype: each anchor's best IoU over the non-ignored gts).
    impl: 'auto' (C on CPU, the twin elsewhere), 'c' or 'reference'
    (``tasklle.ops._common.use_c``). See tasklle.reference.assign for the exact semantics."""
    # finiteness of the boxes is scanned by the C binding or by the twin
    pos, neg, min_pos, _ = _ref.check_assign_args(anchors, gts, pos_thr, neg_thr, min_pos_thr, gt_ignore,
                                                  finite=False)
    # the checker has put gt_ignore (bool) on the boxes' device
    if not use_c("assign_max_iou", impl, anchors=anchors, gts=gts):
        return _ref.assign_max_iou(anchors, gts, pos, neg, min_pos, gt_max_assign_all, match_low_quality,
                                   gt_ignore)
    a = resolved(anchors)
    g = resolved(gts)
    ign = None if gt_ignore is None else resolved(gt_ignore).to(torch.uint8).numpy()
    assigned = torch.empty(a.shape[0], dtype=torch.int64)
    max_iou = torch.empty(a.shape[0], dtype=a.dtype)
    _C.assign_max_iou(assigned.numpy(), max_iou.numpy(), a.numpy(), g.numpy(), ign, pos, neg, min_pos,
                      bool(gt_max_assign_all), bool(match_low_quality))
    return assigned, max_iou
