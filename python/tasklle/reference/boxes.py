"""Pure-PyTorch twins of the box kernels (csrc/core/boxes.c): the specification.

Boxes are (N, 4) tensors ``x1, y1, x2, y2`` in pixels; widths are ``x2 - x1``
(no +1). Boxes with x2 < x1 are not rejected: their area is the
signed product and the formulas are applied as written (mmdet does the same).

- ``box_iou(a, b)``: (N, M) IoU, union floored at 1e-6 (mmdet bbox_overlaps).
- ``diou_loss(pred, target, ...)``: mmdet's DIoU loss for aligned pairs,
  ``1 - IoU + rho^2 / c^2`` with IoU = overlap / (union + eps) and
  c^2 = enclosing diagonal^2 + eps; per-pair weights and mmdet's reduction.
- ``nms(boxes, scores, iou_threshold)``: greedy NMS, IoU > threshold suppresses.

The IoU arithmetic is written in the same operation order as the C core so
both give bit-identical IoUs in float32 and float64 (the C core is built
without floating-point contraction), which keeps threshold ties identical.
"""
import torch

IOU_EPS = 1e-6
_REDUCTIONS = ("none", "mean", "sum")


def _scannable(t):
    """True when t's values can be read: meta tensors carry shapes only, so the
    NaN/inf scan is skipped for them (shape semantics, as every op on meta)."""
    return t.numel() > 0 and t.device.type != "meta"


def check_boxes(boxes, name, dtype=None, device=None, finite=True):
    """Validate a (N, 4) floating-point box tensor; raise TypeError/ValueError naming it.

    dtype/device, when given, must match (the first box argument fixes them).
    finite=False skips the NaN/inf scan (the C binding does it itself, faster)."""
    if not isinstance(boxes, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(boxes).__name__}")
    if not boxes.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {boxes.dtype}")
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) (x1, y1, x2, y2), got {tuple(boxes.shape)}")
    if dtype is not None and boxes.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} like the first box argument, got {boxes.dtype}")
    if device is not None and boxes.device != device:
        raise ValueError(f"{name} must be on {device} like the first box argument, got {boxes.device}")
    if boxes.is_complex():
        raise TypeError(f"{name} must be a real floating-point tensor, got {boxes.dtype}")
    if finite and _scannable(boxes) and not bool(torch.isfinite(boxes).all()):
        raise ValueError(f"{name} must contain only finite values (found NaN or inf)")
    return boxes


def check_vector(t, name, n, dtype=None, device=None, floating=True, finite=True):
    """Validate a (n,) tensor (weights, scores); finite when floating."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if floating and not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {t.dtype}")
    if t.is_complex():
        raise TypeError(f"{name} must be a real floating-point tensor, got {t.dtype}")
    if t.dim() != 1 or t.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {tuple(t.shape)}")
    if dtype is not None and t.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {t.dtype}")
    if device is not None and t.device != device:
        raise ValueError(f"{name} must be on {device}, got {t.device}")
    if floating and finite and _scannable(t) and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must contain only finite values (found NaN or inf)")
    return t


def check_scalar(x, name, low=None, high=None):
    """A finite real number (python number or 0-dim tensor) as float."""
    if isinstance(x, torch.Tensor):
        if x.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got a tensor of shape {tuple(x.shape)}")
        if x.device.type == "meta":
            raise ValueError(f"{name} must be a number or a tensor with a value, got a meta tensor")
        x = x.item()
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}")
    x = float(x)
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {x}")
    if low is not None and x < low:
        raise ValueError(f"{name} must be >= {low}, got {x}")
    if high is not None and x > high:
        raise ValueError(f"{name} must be <= {high}, got {x}")
    return x


def check_diou_args(pred, target, weight, reduction, avg_factor, eps, finite=True):
    """Shared argument validation of diou_loss (C path and twin). Returns (avg_factor, eps) as floats."""
    check_boxes(pred, "pred", finite=finite)
    check_boxes(target, "target", dtype=pred.dtype, device=pred.device, finite=finite)
    if target.shape != pred.shape:
        raise ValueError(f"target must have the same shape as pred {tuple(pred.shape)}, got {tuple(target.shape)}")
    if weight is not None:
        check_vector(weight, "weight", pred.shape[0], dtype=pred.dtype, device=pred.device, finite=finite)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if avg_factor is not None:
        avg_factor = check_scalar(avg_factor, "avg_factor")
        if reduction == "sum":
            raise ValueError("avg_factor can not be used with reduction='sum' (mmdet semantics)")
        if reduction == "mean" and avg_factor == 0:
            raise ValueError("avg_factor must be non-zero")
    eps = check_scalar(eps, "eps", low=0.0)
    return avg_factor, eps


def _pairwise_iou(a, b):
    """(N, M) IoU without validation. Operation order mirrors boxes.c."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = (area_a[:, None] + area_b[None, :]) - overlap
    union = torch.clamp(union, min=IOU_EPS)
    return overlap / union


def _aligned_iou(a, b):
    lt = torch.maximum(a[:, :2], b[:, :2])
    rb = torch.minimum(a[:, 2:], b[:, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[:, 0] * wh[:, 1]
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = torch.clamp((area_a + area_b) - overlap, min=IOU_EPS)
    return overlap / union


def check_box_iou_args(a, b, aligned, finite=True):
    """Shared validation of ``box_iou`` (C path and twin)."""
    check_boxes(a, "a", finite=finite)
    check_boxes(b, "b", dtype=a.dtype, device=a.device, finite=finite)
    if aligned and a.shape[0] != b.shape[0]:
        raise ValueError(f"aligned=True needs a and b of the same length, got {a.shape[0]} and {b.shape[0]}")


def box_iou(a, b, aligned=False):
    """IoU of two box sets.

    a: (N, 4), b: (M, 4), same floating dtype, x1 y1 x2 y2 (no +1).
    Returns (N, M) (or (N,) with ``aligned=True``, which needs M == N):
    overlap / max(union, 1e-6). Differentiable (plain autograd)."""
    check_box_iou_args(a, b, aligned)
    if aligned:
        return _aligned_iou(a, b)
    return _pairwise_iou(a, b)


def diou_terms(pred, target, eps):
    """Per-pair unweighted DIoU loss (N,), mmdet's formula with eps placement:
    union + eps in the IoU, diagonal^2 + eps in the penalty."""
    lt = torch.max(pred[:, :2], target[:, :2])
    rb = torch.min(pred[:, 2:], target[:, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[:, 0] * wh[:, 1]
    ap = (pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1])
    ag = (target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])
    union = ap + ag - overlap + eps
    ious = overlap / union
    enclose_x1y1 = torch.min(pred[:, :2], target[:, :2])
    enclose_x2y2 = torch.max(pred[:, 2:], target[:, 2:])
    enclose_wh = (enclose_x2y2 - enclose_x1y1).clamp(min=0)
    c2 = enclose_wh[:, 0] ** 2 + enclose_wh[:, 1] ** 2 + eps
    left = ((target[:, 0] + target[:, 2]) - (pred[:, 0] + pred[:, 2])) ** 2 / 4
    right = ((target[:, 1] + target[:, 3]) - (pred[:, 1] + pred[:, 3])) ** 2 / 4
    rho2 = left + right
    return 1 - (ious - rho2 / c2)


def reduce_loss(loss, weight, reduction, avg_factor):
    """mmdet weight_reduce_loss: weight elementwise, then 'none' | 'sum' | 'mean'
    (sum / N), or sum / avg_factor when avg_factor is given with 'mean'.
    'mean' of zero pairs is 0 (not NaN) so an image without positives adds
    nothing and back-propagates zeros."""
    if weight is not None:
        loss = loss * weight
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if avg_factor is not None:
        return loss.sum() / avg_factor
    n = loss.shape[0]
    return loss.sum() / max(n, 1)


def diou_loss(pred, target, weight=None, reduction="mean", avg_factor=None, eps=1e-6):
    """DIoU loss of aligned box pairs (mmdet ``diou_loss`` + ``weight_reduce_loss``).

    pred, target: (N, 4) same dtype, x1 y1 x2 y2. weight: optional (N,) per-pair weights.
    Per pair: ``1 - IoU + rho^2 / c^2``, IoU = overlap / (union + eps),
    c^2 = (enclosing w^2 + h^2) + eps, rho^2 = squared distance of the centres.
    reduction 'none' -> (N,) weighted losses; 'sum' -> scalar; 'mean' -> sum / N
    (0 when N == 0), or sum / avg_factor when avg_factor is given (avg_factor
    with 'sum' is an error, as in mmdet; with 'none' it is ignored).
    Gradients flow to pred, target and weight (plain autograd)."""
    avg_factor, eps = check_diou_args(pred, target, weight, reduction, avg_factor, eps)
    return reduce_loss(diou_terms(pred, target, eps), weight, reduction, avg_factor)


def check_nms_args(boxes, scores, iou_threshold, finite=True):
    check_boxes(boxes, "boxes", finite=finite)
    check_vector(scores, "scores", boxes.shape[0], device=boxes.device, finite=finite)
    return check_scalar(iou_threshold, "iou_threshold")


def nms(boxes, scores, iou_threshold):
    """Greedy non-maximum suppression.

    boxes: (N, 4) x1 y1 x2 y2; scores: (N,) floating (any float dtype).
    Visits boxes by descending score (equal scores: lower index first), keeps a
    box unless an already kept box has IoU > iou_threshold with it (IoU as in
    ``box_iou``, compared in the boxes' dtype). Returns int64 (K,) kept indices
    in descending score order."""
    iou_threshold = check_nms_args(boxes, scores, iou_threshold)
    if boxes.device.type == "meta" and boxes.shape[0]:
        # the number kept depends on the values, which meta tensors do not have
        raise ValueError("nms: boxes on the meta device have no values, so the kept count is undefined")
    n = boxes.shape[0]
    if n == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    boxes = boxes.detach()
    order = torch.sort(scores.detach(), descending=True, stable=True).indices
    b = boxes[order]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    thr = torch.tensor(iou_threshold, dtype=boxes.dtype, device=boxes.device)
    keep = []
    alive_list = [True] * n
    for i in range(n):
        if not alive_list[i]:
            continue
        keep.append(i)
        if i + 1 == n:
            break
        rest = b[i + 1:]
        lt = torch.maximum(b[i, :2], rest[:, :2])
        rb = torch.minimum(b[i, 2:], rest[:, 2:])
        wh = (rb - lt).clamp(min=0)
        overlap = wh[:, 0] * wh[:, 1]
        union = torch.clamp((area[i] + area[i + 1:]) - overlap, min=IOU_EPS)
        sup = (overlap / union) > thr
        for j in torch.nonzero(sup).flatten().tolist():
            alive_list[i + 1 + j] = False
    return order[torch.tensor(keep, dtype=torch.int64, device=boxes.device)]
