"""IoU and DIoU loss: C core (tasklle.ops) against the PyTorch twin (tasklle.reference)."""
import pytest
import torch

import tasklle.ops as ops
import tasklle.reference as ref
from boxes_testutil import rand_boxes, threads, torch_one_thread  # noqa: F401 (autouse fixture)

DTYPES = [torch.float32, torch.float64]
PATHS = [ops, ref]


# ---- IoU -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, m, grid", [(37, 23, None), (1, 1, None), (64, 45, 5.0), (5, 300, 2.0)])
def test_iou_matches_twin_bitwise(dtype, n, m, grid):
    a, b = rand_boxes(n, dtype, grid=grid), rand_boxes(m, dtype, grid=grid)
    b[: min(n, m) // 2] = a[: min(n, m) // 2]  # duplicates: IoU exactly 1
    out = ops.box_iou(a, b)
    assert out.shape == (n, m) and out.dtype == dtype
    assert torch.equal(out, ref.box_iou(a, b))
    k = min(n, m)
    assert torch.equal(ops.box_iou(a[:k], b[:k], aligned=True), ref.box_iou(a[:k], b[:k], aligned=True))
    assert torch.equal(ops.box_iou(a[:k], b[:k], aligned=True), out[:k, :k].diagonal())


def test_iou_known_values():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0], [5.0, 5.0, 5.0, 9.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0], [5.0, 5.0, 5.0, 9.0]])
    out = ops.box_iou(a, b)
    expect = torch.tensor([[1 / 7, 1.0, 0.0, 0.0],  # no +1: 1 / (4 + 4 - 1)
                           [0.0, 0.0, 0.0, 0.0],  # zero-area boxes: overlap 0 over a union floored at 1e-6
                           [0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(out, expect)


@pytest.mark.parametrize("path", PATHS)
def test_iou_empty(path):
    a, b = torch.zeros(0, 4), rand_boxes(5)
    assert path.box_iou(a, b).shape == (0, 5)
    assert path.box_iou(b, a).shape == (5, 0)
    assert path.box_iou(a, a, aligned=True).shape == (0,)


def test_iou_with_grad_uses_autograd():
    a, b = rand_boxes(6, torch.float64).requires_grad_(), rand_boxes(4, torch.float64)
    ops.box_iou(a, b).sum().backward()
    assert a.grad is not None and a.grad.shape == (6, 4)


def test_iou_thread_invariance():
    a, b = rand_boxes(300), rand_boxes(200)
    with threads(1):
        one = ops.box_iou(a, b)
    with threads(2):
        two = ops.box_iou(a, b)
    assert torch.equal(one, two)


@pytest.mark.parametrize("path", PATHS)
def test_iou_bad_arguments(path):
    good = rand_boxes(3)
    with pytest.raises(ValueError, match="a must have shape"):
        path.box_iou(torch.zeros(3, 5), good)
    with pytest.raises(ValueError, match="b must have shape"):
        path.box_iou(good, torch.zeros(4))
    with pytest.raises(TypeError, match="a must be a floating"):
        path.box_iou(torch.zeros(3, 4, dtype=torch.int64), good)
    with pytest.raises(TypeError, match="b must have dtype"):
        path.box_iou(good, good.double())
    with pytest.raises(TypeError, match="a must be a torch.Tensor"):
        path.box_iou(good.numpy(), good)
    bad = good.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="b must contain only finite"):
        path.box_iou(good, bad)
    with pytest.raises(ValueError, match="aligned=True"):
        path.box_iou(good, rand_boxes(2), aligned=True)


# ---- DIoU loss ---------------------------------------------------------------

def _pairs(n, dtype, grid=None):
    p, t = rand_boxes(n, dtype, grid=grid), rand_boxes(n, dtype, grid=grid)
    k = n // 5
    t[:k] = p[:k]                                # identical boxes: every max/min is a tie
    t[k:2 * k, :2] = p[k:2 * k, :2]              # shared corner
    t[2 * k:3 * k] = p[2 * k:3 * k] + 40.0       # disjoint (overlap clamped to 0)
    return p, t


def _run(path, p, t, w, reduction, avg_factor):
    pp, tt = p.clone().requires_grad_(), t.clone().requires_grad_()
    ww = None if w is None else w.clone().requires_grad_()
    loss = path.diou_loss(pp, tt, ww, reduction=reduction, avg_factor=avg_factor)
    g = torch.linspace(-1, 2, loss.numel(), dtype=loss.dtype).reshape(loss.shape)
    (loss * g).sum().backward()
    return loss.detach(), pp.grad, tt.grad, None if w is None else ww.grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction, avg_factor", [("none", None), ("sum", None), ("mean", None), ("mean", 7.5)])
@pytest.mark.parametrize("weighted", [False, True])
def test_diou_matches_twin(dtype, reduction, avg_factor, weighted):
    p, t = _pairs(203, dtype, grid=4.0 if weighted else None)
    w = torch.rand(203, dtype=dtype) if weighted else None
    got, want = _run(ops, p, t, w, reduction, avg_factor), _run(ref, p, t, w, reduction, avg_factor)
    if dtype == torch.float64:
        for x, y in zip(got, want):
            assert (x is None) == (y is None)
            if y is not None:
                scale = float(y.abs().max()) if y.numel() else 1.0
                torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12 * scale)
        return
    # float32: identical or very thin boxes make the gradient a difference of nearly equal
    # terms, where the operation order shows. Both paths are judged against the twin in
    # float64 on the same inputs: the C error may not exceed twice the twin's own.
    exact = _run(ref, p.double(), t.double(), None if w is None else w.double(), reduction, avg_factor)
    for x, y, z in zip(got, want, exact):
        assert (x is None) == (y is None)
        if y is None:
            continue
        scale = float(z.abs().max()) if z.numel() else 1.0
        err_c = float((x.double() - z).abs().max()) if z.numel() else 0.0
        err_ref = float((y.double() - z).abs().max()) if z.numel() else 0.0
        assert err_c <= 2 * err_ref + 1e-6 * scale, (err_c, err_ref, scale)
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-3 * scale)


def test_diou_known_values():
    p = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0]], dtype=torch.float64)
    t = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 0.0, 3.0, 2.0], [2.0, 0.0, 3.0, 1.0]], dtype=torch.float64)
    eps = 1e-6
    # identical: 1 - 4 / (4 + eps); shifted by 1: 1 - 2 / (6 + eps) + 1 / (9 + 4 + eps)
    # disjoint unit boxes 2 apart: 1 - 0 + 4 / (9 + 1 + eps)
    expect = torch.tensor([1 - 4 / (4 + eps), 1 - 2 / (6 + eps) + 1 / (13 + eps), 1 + 4 / (10 + eps)],
                          dtype=torch.float64)
    torch.testing.assert_close(ops.diou_loss(p, t, reduction="none"), expect, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(ops.diou_loss(p, t), expect.mean(), rtol=1e-14, atol=1e-14)


def test_diou_gradcheck():
    p, t = _pairs(25, torch.float64)
    # keep away from the kinks (ties, touching edges) where the derivative is one-sided
    p = p + torch.rand(25, 4, dtype=torch.float64) * 0.3
    w = torch.rand(25, dtype=torch.float64)
    p.requires_grad_(), t.requires_grad_(), w.requires_grad_()
    for reduction, af in [("none", None), ("sum", None), ("mean", None), ("mean", 3.0)]:
        assert torch.autograd.gradcheck(lambda a, b, c: ops.diou_loss(a, b, c, reduction=reduction, avg_factor=af),
                                        (p, t, w))
    assert torch.autograd.gradcheck(lambda a: ops.diou_loss(a, t.detach()), (p,))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("reduction, avg_factor", [("mean", None), ("sum", None), ("none", None), ("mean", 4.0)])
def test_diou_empty(path, reduction, avg_factor):
    p = torch.zeros(0, 4, requires_grad=True)
    t = torch.zeros(0, 4)
    loss = path.diou_loss(p, t, torch.zeros(0), reduction=reduction, avg_factor=avg_factor)
    if reduction == "none":
        assert loss.shape == (0,)
        loss = loss.sum()
    assert loss.item() == 0.0  # 'mean' of zero pairs is 0, not NaN
    loss.backward()
    assert p.grad.shape == (0, 4)


def test_diou_target_without_grad_and_thread_invariance():
    p, t = _pairs(20001, torch.float32)
    w = torch.rand(20001)
    res = []
    for n in (1, 2):
        with threads(n):
            pp = p.clone().requires_grad_()
            loss = ops.diou_loss(pp, t, w, reduction="mean")
            loss.backward()
            res.append((loss.detach(), pp.grad))
    assert torch.equal(res[0][0], res[1][0]) and torch.equal(res[0][1], res[1][1])


@pytest.mark.parametrize("path", PATHS)
def test_diou_bad_arguments(path):
    p, t = _pairs(4, torch.float32)
    with pytest.raises(ValueError, match="target must have the same shape"):
        path.diou_loss(p, t[:3])
    with pytest.raises(ValueError, match="pred must have shape"):
        path.diou_loss(p[:, :3], t[:, :3])
    with pytest.raises(TypeError, match="target must have dtype"):
        path.diou_loss(p, t.double())
    with pytest.raises(ValueError, match="weight must have shape"):
        path.diou_loss(p, t, torch.ones(3))
    with pytest.raises(ValueError, match="reduction must be"):
        path.diou_loss(p, t, reduction="avg")
    with pytest.raises(ValueError, match="avg_factor can not be used"):
        path.diou_loss(p, t, reduction="sum", avg_factor=2.0)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        path.diou_loss(p, t, eps=-1.0)
    bad = p.clone()
    bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match="pred must contain only finite"):
        path.diou_loss(bad, t)
    w = torch.ones(4)
    w[2] = float("nan")
    with pytest.raises(ValueError, match="weight must contain only finite"):
        path.diou_loss(p, t, w)


def test_diou_avg_factor_tensor():
    p, t = _pairs(10, torch.float32)
    a = ops.diou_loss(p, t, avg_factor=torch.tensor(4.0))
    torch.testing.assert_close(a, ops.diou_loss(p, t, reduction="sum") / 4.0)
