"""Pure-PyTorch twin of the max-IoU anchor assigner (csrc/core/assign.c): the specification.

mmdet ``MaxIoUAssigner.assign_wrt_overlaps`` (as configured by TinaFace,
vedadet: pos = neg = min_pos = 0.35, gt_max_assign_all, match_low_quality,
ignore_iof_thr = -1), re-indexed:

- ``assigned[a] = g`` (0-based index into the *given* ``gts``, ignored ones
  included) for a positive anchor, ``NEGATIVE`` (-1) for a negative one,
  ``IGNORED`` (-2) for an anchor that is neither (only possible when
  neg_thr < pos_thr). mmdet's encoding is ``g + 1`` / 0 / -1.
- ``max_iou[a]``: the anchor's largest IoU over the non-ignored gts (not
  changed by low-quality matching), 0 when there are none.

Steps, with IoU = overlap / max(union, 1e-6), no +1:
1. every anchor takes its argmax gt (first one on ties, like ``torch.max``);
2. max IoU < neg_thr -> NEGATIVE; max IoU >= pos_thr -> its argmax gt
   (positive wins if the thresholds overlap);
3. with match_low_quality, for each gt g in increasing order whose best IoU
   over all anchors is >= min_pos_thr: every anchor whose IoU with g equals
   that best (gt_max_assign_all) -- or only the first such anchor -- is
   assigned g, overriding earlier steps and earlier gts.

Ignored gts (``gt_ignore`` True) take no part at all: with TinaFace's
ignore_iof_thr = -1, mmdet never sees them as gts. With no (non-ignored) gts
every anchor is NEGATIVE with max_iou 0 (mmdet assigns background); with no
anchors both outputs are empty.

This twin builds the IoU matrix in chunks of anchors (two passes: per-gt
best IoU, then per-anchor assignment) so it stays usable on large inputs.
"""
import torch

from .boxes import _pairwise_iou, check_boxes, check_scalar, check_vector

NEGATIVE = -1
IGNORED = -2

# anchors per chunk = max(1, _CHUNK_ELEMS // num_gts): bounds the twin's memory
_CHUNK_ELEMS = 1 << 22


def check_assign_args(anchors, gts, pos_thr, neg_thr, min_pos_thr, gt_ignore, finite=True):
    """Shared validation (C path and twin). Returns (pos, neg, min_pos, keep) where
    keep is the int64 index tensor of non-ignored gts (or None: all kept)."""
    check_boxes(anchors, "anchors", finite=finite)
    check_boxes(gts, "gts", dtype=anchors.dtype, device=anchors.device, finite=finite)
    pos_thr = check_scalar(pos_thr, "pos_thr")
    neg_thr = check_scalar(neg_thr, "neg_thr")
    min_pos_thr = check_scalar(min_pos_thr, "min_pos_thr")
    keep = None
    if gt_ignore is not None:
        check_vector(gt_ignore, "gt_ignore", gts.shape[0], device=gts.device, floating=False)
        if gt_ignore.dtype != torch.bool:
            raise TypeError(f"gt_ignore must be a bool tensor, got {gt_ignore.dtype}")
        if gt_ignore.device.type != "meta" and bool(gt_ignore.any()):
            keep = torch.nonzero(~gt_ignore).flatten()
    return pos_thr, neg_thr, min_pos_thr, keep


def assign_max_iou(anchors, gts, pos_thr=0.35, neg_thr=0.35, min_pos_thr=0.35, gt_max_assign_all=True,
                   match_low_quality=True, gt_ignore=None):
    """Max-IoU assignment of anchors to ground-truth boxes (see the module docstring).

    anchors: (A, 4), gts: (G, 4) same floating dtype, x1 y1 x2 y2.
    gt_ignore: optional (G,) bool, True = ignored gt.
    Returns (assigned int64 (A,), max_iou (A,) in the anchors' dtype)."""
    pos_thr, neg_thr, min_pos_thr, keep = check_assign_args(anchors, gts, pos_thr, neg_thr, min_pos_thr,
                                                            gt_ignore)
    anchors = anchors.detach()
    gts = gts.detach()
    dev, dt = anchors.device, anchors.dtype
    num_anchors = anchors.shape[0]
    gt_index = torch.arange(gts.shape[0], device=dev) if keep is None else keep
    valid = gts[gt_index]
    num_gts = valid.shape[0]
    assigned = torch.full((num_anchors,), NEGATIVE, dtype=torch.int64, device=dev)
    max_iou = torch.zeros(num_anchors, dtype=dt, device=dev)
    if num_gts == 0 or num_anchors == 0 or dev.type == "meta":
        return assigned, max_iou  # meta: shapes and dtypes only
    # thresholds are compared in the boxes' dtype, like the C core
    pos_t, neg_t, min_pos_t = (torch.tensor(v, dtype=dt, device=dev) for v in (pos_thr, neg_thr, min_pos_thr))
    chunk = max(1, _CHUNK_ELEMS // num_gts)
    argmax = torch.empty(num_anchors, dtype=torch.int64, device=dev)
    gt_max = torch.zeros(num_gts, dtype=dt, device=dev)
    gt_argmax = torch.zeros(num_gts, dtype=torch.int64, device=dev)
    # pass 1: per-anchor max / argmax over gts, per-gt max / first argmax over anchors
    for s in range(0, num_anchors, chunk):
        ov = _pairwise_iou(valid, anchors[s:s + chunk])  # (G, chunk), gts first as mmdet
        m, am = ov.max(dim=0)
        max_iou[s:s + chunk] = m
        argmax[s:s + chunk] = am
        cm, cam = ov.max(dim=1)
        better = cm > gt_max  # strict: an earlier chunk keeps ties (first anchor wins)
        gt_max = torch.where(better, cm, gt_max)
        gt_argmax = torch.where(better, cam + s, gt_argmax)
    assigned.fill_(IGNORED)
    assigned[(max_iou >= 0) & (max_iou < neg_t)] = NEGATIVE
    pos = max_iou >= pos_t
    assigned[pos] = gt_index[argmax[pos]]
    if match_low_quality:
        eligible = gt_max >= min_pos_t
        if gt_max_assign_all:
            # pass 2: the last eligible gt whose IoU equals its best claims the anchor
            order = torch.arange(num_gts, device=dev)
            for s in range(0, num_anchors, chunk):
                ov = _pairwise_iou(valid, anchors[s:s + chunk])
                hit = (ov == gt_max[:, None]) & eligible[:, None]
                any_hit = hit.any(dim=0)
                last = torch.where(hit, order[:, None], -1).max(dim=0).values
                sub = assigned[s:s + chunk]
                sub[any_hit] = gt_index[last[any_hit]]
        else:
            for i in torch.nonzero(eligible).flatten().tolist():
                assigned[gt_argmax[i]] = gt_index[i]
    return assigned, max_iou
