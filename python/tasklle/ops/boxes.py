"""Box ops: IoU, DIoU loss (autograd), NMS. CPU float32/float64 tensors run in
the C core (csrc/core/boxes.c); other devices run the pure-PyTorch twin in
``tasklle.reference.boxes`` with the same semantics (see there). Paths are
picked by ``ops._common.use_c``: another dtype on the CPU is a TypeError."""
import torch

from .. import _C
from ..reference import boxes as _ref
from ._common import c_array as _np
from ._common import resolved as _resolved
from ._common import resolve_impl, use_c


def box_iou(a, b, aligned=False, impl="auto"):
    """IoU of two box sets (x1, y1, x2, y2, no +1; union floored at 1e-6).

    a: (N, 4), b: (M, 4), same floating dtype. Returns (N, M), or (N,) for
    ``aligned=True`` (pairs a[i], b[i]; needs M == N).

    impl: 'auto', 'c' or 'reference' (``tasklle.ops._common.use_c``). The C
    kernel has no backward: when a gradient is wanted (grad mode on and a or
    b requires grad), 'auto' runs the differentiable twin, and 'c' raises
    ValueError rather than returning a tensor cut from the graph."""
    # finiteness is scanned by the C binding (one fast pass) or by the twin
    _ref.check_box_iou_args(a, b, aligned, finite=False)
    grad = torch.is_grad_enabled() and (a.requires_grad or b.requires_grad)
    c = use_c("box_iou", impl, a=a, b=b)
    if c and grad and resolve_impl(impl) == "c":
        raise ValueError("box_iou: impl='c' has no backward and a or b requires grad "
                         "(use impl='auto' or 'reference' for the differentiable twin, or torch.no_grad())")
    if grad or not c:
        return _ref.box_iou(a, b, aligned=aligned)
    if aligned:
        out = torch.empty(a.shape[0], dtype=a.dtype)
        _C.boxes_iou_aligned(out.numpy(), _np(a), _np(b))
    else:
        out = torch.empty(a.shape[0], b.shape[0], dtype=a.dtype)
        _C.boxes_iou(out.numpy(), _np(a), _np(b))
    return out


class _DIoULoss(torch.autograd.Function):
    """C forward/backward of the DIoU loss; reduction handled here (see diou_loss)."""

    @staticmethod
    def forward(ctx, pred, target, weight, reduction, avg_factor, eps):
        p, t = _resolved(pred), _resolved(target)
        w = None if weight is None else _resolved(weight)
        n = p.shape[0]
        loss = torch.empty(n, dtype=p.dtype)  # unweighted per-pair loss
        total = _C.boxes_diou_forward(loss.numpy(), p.numpy(), t.numpy(), None if w is None else w.numpy(), eps)
        if reduction == "none":
            out = loss * w if w is not None else loss.clone()
            denom = None
        else:
            denom = 1.0 if reduction == "sum" else (avg_factor if avg_factor is not None else float(max(n, 1)))
            out = torch.tensor(total / denom, dtype=p.dtype)
        ctx.reduction, ctx.denom, ctx.eps = reduction, denom, eps
        ctx.has_weight = w is not None
        ctx.save_for_backward(p, t, w if w is not None else p.new_empty(0), loss)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        p, t, w, loss = ctx.saved_tensors
        w = w if ctx.has_weight else None
        n = p.shape[0]
        need_p, need_t, need_w = ctx.needs_input_grad[:3]
        if ctx.reduction == "none":
            gl = _resolved(grad_out.to(p.dtype))
            scale = 1.0
        else:
            gl = None
            scale = float(grad_out) / ctx.denom
        grad_p = torch.empty(n, 4, dtype=p.dtype) if need_p else None
        grad_t = torch.empty(n, 4, dtype=p.dtype) if need_t else None
        if need_p or need_t:
            _C.boxes_diou_backward(None if grad_p is None else grad_p.numpy(),
                                   None if grad_t is None else grad_t.numpy(),
                                   None if gl is None else gl.numpy(), p.numpy(), t.numpy(),
                                   None if w is None else w.numpy(), scale, ctx.eps)
        grad_w = None
        if need_w:
            grad_w = loss * gl if gl is not None else loss * scale
        return grad_p, grad_t, grad_w, None, None, None


def diou_loss(pred, target, weight=None, reduction="mean", avg_factor=None, eps=1e-6, impl="auto"):
    """DIoU loss of aligned box pairs (mmdet semantics).

    pred, target: (N, 4) same dtype, x1 y1 x2 y2 pixels. weight: optional (N,).
    Per pair ``1 - IoU + rho^2 / c^2`` with IoU = overlap / (union + eps),
    c^2 = enclosing diagonal^2 + eps, rho^2 = squared centre distance.
    reduction: 'none' -> (N,) weighted losses; 'sum'; 'mean' -> sum / N (0 for
    N == 0) or sum / avg_factor when avg_factor is given (avg_factor with
    'sum' raises ValueError, as in mmdet). Gradients reach pred, target and
    weight (first order only on the C path). impl: 'auto', 'c' or 'reference'
    (``tasklle.ops._common.use_c``)."""
    # finiteness is scanned by the C binding (one fast pass) or by the twin
    avg_factor, eps = _ref.check_diou_args(pred, target, weight, reduction, avg_factor, eps, finite=False)
    if not use_c("diou_loss", impl, pred=pred, target=target, weight=weight):
        return _ref.diou_loss(pred, target, weight, reduction, avg_factor, eps)
    return _DIoULoss.apply(pred, target, weight, reduction, avg_factor, eps)


def nms(boxes, scores, iou_threshold, impl="auto"):
    """Greedy NMS: boxes (N, 4) x1 y1 x2 y2, scores (N,) floating.

    Visits boxes by descending score (ties: lower index first); a box is
    dropped when a kept box has IoU > iou_threshold with it (IoU as box_iou,
    compared in the boxes' dtype). Returns int64 (K,) kept indices in
    descending score order. impl: 'auto', 'c' or 'reference'
    (``tasklle.ops._common.use_c``)."""
    thr = _ref.check_nms_args(boxes, scores, iou_threshold, finite=False)
    # scores go to C as float64 (exact for every float dtype): only the boxes' dtype matters;
    # the checker has put scores on the boxes' device and refused complex ones
    if not use_c("nms", impl, boxes=boxes):
        return _ref.nms(boxes, scores, thr)
    # finiteness is scanned by the C binding
    n = boxes.shape[0]
    keep = torch.empty(n, dtype=torch.int64)
    # scores as float64: exact for every float dtype, so the order is the same as the twin's
    k = _C.boxes_nms(keep.numpy(), _np(boxes), _np(scores.to(torch.float64)), thr)
    return keep[:k].clone()
