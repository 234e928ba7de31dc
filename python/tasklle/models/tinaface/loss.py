"""Training loss of TinaFace (vedadet ``IoUBBoxAnchorCriterion`` as the
tinaface_r50_fpn_gn_dcn config sets it up).

For each image the anchors are assigned with ``tasklle.ops.assign_max_iou``
(pos = neg = min_pos = 0.35, low-quality matching, every anchor tied at a gt's
best IoU, ignored gts take no part, all anchors used). Then, summed over the
batch:

- cls: sigmoid focal loss (gamma 2, alpha 0.25) on every non-IGNORED anchor,
  target 1 for positives and 0 for negatives, weight 1;
- reg: DIoU loss (``tasklle.ops.diou_loss``, eps 1e-6) between the decoded
  box (delta coder, no clipping) of each positive anchor and its gt, weight 2;
- iou: BCE-with-logits of the IoU branch of each positive anchor against the
  IoU of its *detached* decoded box with its gt, weight 1;

each divided by the normaliser ``num_pos = sum over images of max(#positives, 1)``
(vedadet floors every image at 1, which also floors the batch at 1). In
distributed training vedadet averages that normaliser over the processes
(``reduce_mean``) and floors the mean at 1; ``num_pos_reduce`` does that here,
which makes N processes on N shards produce the same (averaged) gradient as one
process on the whole batch.
"""
import torch
import torch.nn.functional as F

from ... import ops
from . import coder

POS_THR = NEG_THR = MIN_POS_THR = 0.35
GAMMA, ALPHA = 2.0, 0.25
CLS_WEIGHT, REG_WEIGHT, IOU_WEIGHT = 1.0, 2.0, 1.0


def sigmoid_focal_loss(logits, targets, gamma=GAMMA, alpha=ALPHA):
    """Element-wise sigmoid focal loss (Lin et al. 2017), mmdet/mmcv form:
    ``alpha_t * (1 - p_t)^gamma * BCE(logits, targets)``. Same shape as logits."""
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    pt = (1 - p) * targets + p * (1 - targets)  # 1 - p_t
    w = (alpha * targets + (1 - alpha) * (1 - targets)) * pt.pow(gamma)
    return ce * w


def flatten_outputs(cls_scores, bbox_preds, iou_preds):
    """Per-level head maps -> (B, N) cls logits, (B, N, 4) deltas, (B, N) iou
    logits, anchors ordered level by level and (y * W + x) * A + a inside a level."""
    B = cls_scores[0].shape[0]
    cls = torch.cat([c.permute(0, 2, 3, 1).reshape(B, -1) for c in cls_scores], dim=1)
    reg = torch.cat([r.permute(0, 2, 3, 1).reshape(B, -1, 4) for r in bbox_preds], dim=1)
    iou = torch.cat([i.permute(0, 2, 3, 1).reshape(B, -1) for i in iou_preds], dim=1)
    return cls, reg, iou


def check_targets(targets, batch, dtype=torch.float32, device="cpu"):
    """Validate the targets list: B dicts {'boxes': (N, 4) x1 y1 x2 y2 pixels,
    'ignore': optional (N,) bool}. Returns a list of (boxes, ignore) tensors."""
    if not isinstance(targets, (list, tuple)):
        raise TypeError(f"targets must be a list of dicts, got {type(targets).__name__}")
    if len(targets) != batch:
        raise ValueError(f"targets has {len(targets)} entries for a batch of {batch} images")
    out = []
    for i, t in enumerate(targets):
        if not isinstance(t, dict) or "boxes" not in t:
            raise TypeError(f"targets[{i}] must be a dict with a 'boxes' entry")
        boxes = torch.as_tensor(t["boxes"])
        if boxes.numel() == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.dim() != 2 or boxes.shape[1] != 4:
            raise ValueError(f"targets[{i}]['boxes'] must be (N, 4), got {tuple(boxes.shape)}")
        if not (boxes.is_floating_point() or boxes.dtype in (torch.int32, torch.int64)):
            raise TypeError(f"targets[{i}]['boxes'] must be numeric, got {boxes.dtype}")
        boxes = boxes.to(device=device, dtype=dtype)
        if not torch.isfinite(boxes).all():
            raise ValueError(f"targets[{i}]['boxes'] contains NaN or infinite values")
        ign = t.get("ignore")
        if ign is None:
            ign = torch.zeros(boxes.shape[0], dtype=torch.bool)
        ign = torch.as_tensor(ign)
        if ign.dtype != torch.bool:
            raise TypeError(f"targets[{i}]['ignore'] must be bool, got {ign.dtype}")
        if ign.shape != (boxes.shape[0],):
            raise ValueError(f"targets[{i}]['ignore'] must have shape ({boxes.shape[0]},), got {tuple(ign.shape)}")
        out.append((boxes, ign.to(device)))
    return out


def assign(anchors, boxes, ignore):
    """Anchor assignment of one image: int64 (N,) gt index / NEGATIVE / IGNORED."""
    if boxes.shape[0] == 0 or bool(ignore.all()):
        return torch.full((anchors.shape[0],), ops.NEGATIVE, dtype=torch.int64, device=anchors.device)
    assigned, _ = ops.assign_max_iou(anchors, boxes, POS_THR, NEG_THR, MIN_POS_THR, gt_max_assign_all=True,
                                     match_low_quality=True, gt_ignore=ignore)
    return assigned


def tinaface_loss(cls, reg, iou, anchors, targets, num_pos_reduce=None):
    """Loss from flattened head outputs.

    Args:
        cls: (B, N) logits; reg: (B, N, 4) deltas; iou: (B, N) logits.
        anchors: (N, 4) in padded-input pixels.
        targets: list of B dicts {'boxes': (n, 4), 'ignore': (n,) bool}.
        num_pos_reduce: optional callable float -> float applied to the
            normaliser (e.g. the mean over distributed processes).

    Returns:
        (total, parts, num_pos) with parts {'cls', 'reg', 'iou'} weighted
        scalar tensors (total is their sum) and num_pos the local normaliser.
    """
    B, N = cls.shape
    tg = check_targets(targets, B, dtype=anchors.dtype, device=anchors.device)
    labels = torch.zeros_like(cls)
    weights = torch.ones_like(cls)
    pos_b, pos_n, pos_gt = [], [], []
    num_pos = 0.0
    for b, (boxes, ignore) in enumerate(tg):
        assigned = assign(anchors, boxes, ignore)
        pos = torch.nonzero(assigned >= 0).flatten()
        labels[b, pos] = 1.0
        weights[b, assigned == ops.IGNORED] = 0.0
        pos_b.append(torch.full_like(pos, b))
        pos_n.append(pos)
        pos_gt.append(boxes[assigned[pos]])
        num_pos += max(int(pos.numel()), 1)
    avg = float(num_pos_reduce(num_pos)) if num_pos_reduce is not None else num_pos
    avg = max(avg, 1.0)

    loss_cls = (sigmoid_focal_loss(cls, labels) * weights).sum()
    pb, pn, gts = torch.cat(pos_b), torch.cat(pos_n), torch.cat(pos_gt)
    # the zero terms keep every head output in the graph when there is no
    # positive, so all parameters receive a (zero) gradient (DDP needs that)
    if pn.numel() > 0:
        decoded = coder.decode(anchors[pn], reg[pb, pn])
        loss_reg = ops.diou_loss(decoded, gts, reduction="sum")
        iou_t = ops.box_iou(decoded.detach(), gts, aligned=True)
        loss_iou = F.binary_cross_entropy_with_logits(iou[pb, pn], iou_t, reduction="sum")
    else:
        loss_reg = reg.sum() * 0.0
        loss_iou = iou.sum() * 0.0
    parts = {
        "cls": loss_cls * (CLS_WEIGHT / avg),
        "reg": loss_reg * (REG_WEIGHT / avg),
        "iou": loss_iou * (IOU_WEIGHT / avg),
    }
    total = parts["cls"] + parts["reg"] + parts["iou"]
    return total, parts, num_pos
