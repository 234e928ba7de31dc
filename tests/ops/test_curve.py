"""tasklle.ops.curve (C core) against its pure-PyTorch twin tasklle.reference.curve."""
import numpy as np
import pytest
import torch

import tasklle
from tasklle import _C
from tasklle.ops.curve import curve
from tasklle.reference.curve import curve as ref_curve

DTYPES = [torch.float32, torch.float64]


def _tol(dtype):
    return dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)


def _inputs(B, H, W, maps, dtype, n=8):
    x = torch.rand(B, 3, H, W, dtype=dtype)
    A = torch.rand(B, 3 * (n if maps == "per" else 1), H, W, dtype=dtype) * 2 - 1
    return x, A


def _both(fn, x, A, n, half, grads):
    """Outputs and input gradients of fn for output weights `grads`."""
    x = x.detach().clone().requires_grad_()
    A = A.detach().clone().requires_grad_()
    out = fn(x, A, n, half)
    outs = out if half else (out,)
    gx, gA = torch.autograd.grad(outs, (x, A), grads[:len(outs)])
    return [o.detach() for o in outs], gx, gA


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("maps", ["shared", "per"])
@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 7, 5), (3, 16, 16), (4, 9, 33), (1, 29, 37)])
@pytest.mark.parametrize("half", [False, True])
def test_matches_reference(dtype, maps, shape, half):
    # (1, 29, 37): two full 512-pixel tiles and a remainder per plane. The
    # parallel path is held to the serial one in test_thread_count_invariance.
    B, H, W = shape
    x, A = _inputs(B, H, W, maps, dtype)
    grads = [torch.randn(B, 3, H, W, dtype=dtype) for _ in range(2)]
    outs, gx, gA = _both(curve, x, A, 8, half, grads)
    routs, rgx, rgA = _both(ref_curve, x, A, 8, half, grads)
    for o, r in zip(outs, routs):
        # same operations in the same order: the forward is bit-identical
        torch.testing.assert_close(o, r, rtol=0, atol=0)
    torch.testing.assert_close(gx, rgx, **_tol(dtype))
    torch.testing.assert_close(gA, rgA, **_tol(dtype))


@pytest.mark.parametrize("n", [1, 2, 3, 8])
@pytest.mark.parametrize("maps", ["shared", "per"])
def test_iteration_counts(n, maps):
    x, A = _inputs(2, 5, 6, maps, torch.float64, n=n)
    grads = [torch.randn(2, 3, 5, 6, dtype=torch.float64) for _ in range(2)]
    outs, gx, gA = _both(curve, x, A, n, True, grads)
    routs, rgx, rgA = _both(ref_curve, x, A, n, True, grads)
    for o, r in zip(outs, routs):
        torch.testing.assert_close(o, r, rtol=0, atol=0)
    torch.testing.assert_close(gx, rgx, **_tol(torch.float64))
    torch.testing.assert_close(gA, rgA, **_tol(torch.float64))


def test_known_values():
    # one pixel, x=0.5, A=-1: x <- x + x(1-x) = 0.75, then 0.9375 (paper's alpha = 1 brightens)
    x = torch.full((1, 3, 1, 1), 0.5)
    A = torch.full((1, 3, 1, 1), -1.0)
    torch.testing.assert_close(curve(x, A, 2), torch.full((1, 3, 1, 1), 0.9375))
    # per-iteration maps are taken in channel order: map 0 = channels 0..2
    A2 = torch.cat([torch.full((1, 3, 1, 1), -1.0), torch.zeros(1, 3, 1, 1)], 1)
    final, half = curve(x, A2, 2, return_half=True)
    torch.testing.assert_close(half, torch.full((1, 3, 1, 1), 0.75))
    torch.testing.assert_close(final, torch.full((1, 3, 1, 1), 0.75))


@pytest.mark.parametrize("maps", ["shared", "per"])
def test_non_contiguous(maps):
    x, A = _inputs(2, 9, 11, maps, torch.float32)
    xn = x.permute(0, 1, 3, 2).contiguous().permute(0, 1, 3, 2)  # same values, transposed strides
    An = A.contiguous(memory_format=torch.channels_last)
    assert not xn.is_contiguous() and not An.is_contiguous()
    torch.testing.assert_close(curve(xn, An), ref_curve(x, A), rtol=0, atol=0)
    # a strided slice of a larger tensor
    big = torch.rand(2, 6, 9, 22)
    xs, As_ = big[:, ::2, :, ::2], torch.rand(2, 3, 9, 11)
    torch.testing.assert_close(curve(xs, As_), ref_curve(xs, As_), rtol=0, atol=0)
    # non-contiguous incoming gradient
    xg = x.clone().requires_grad_()
    g = torch.randn(2, 3, 11, 9).transpose(2, 3)
    (gx,) = torch.autograd.grad(curve(xg, A), xg, g)
    xr = x.clone().requires_grad_()
    (rx,) = torch.autograd.grad(ref_curve(xr, A), xr, g)
    torch.testing.assert_close(gx, rx, **_tol(torch.float32))


@pytest.mark.parametrize("maps", ["shared", "per"])
@pytest.mark.parametrize("half", [False, True])
def test_gradcheck(maps, half):
    x, A = _inputs(2, 3, 4, maps, torch.float64, n=4)
    x.requires_grad_()
    A.requires_grad_()
    assert torch.autograd.gradcheck(lambda x, A: curve(x, A, 4, half), (x, A), nondet_tol=0)
    # with respect to x alone and A alone (the kernel skips the unwanted gradient)
    assert torch.autograd.gradcheck(lambda x: curve(x, A.detach(), 4, half), (x,))
    assert torch.autograd.gradcheck(lambda A: curve(x.detach(), A, 4, half), (A,))


def test_only_half_used():
    # the gradient of the half output alone (final unused, arrives as None)
    x, A = _inputs(1, 4, 4, "per", torch.float64)
    x.requires_grad_()
    A.requires_grad_()
    _, half = curve(x, A, return_half=True)
    gx, gA = torch.autograd.grad(half.sum(), (x, A))
    _, rhalf = ref_curve(x, A, return_half=True)
    rgx, rgA = torch.autograd.grad(rhalf.sum(), (x, A))
    torch.testing.assert_close(gx, rgx)
    torch.testing.assert_close(gA, rgA)
    assert (gA[:, 12:] == 0).all()  # maps after the half point do not touch it


@pytest.mark.parametrize("maps", ["shared", "per"])
def test_thread_count_invariance(maps):
    x, A = _inputs(2, 70, 130, maps, torch.float32)  # above the parallel threshold
    g = torch.randn(2, 3, 70, 130)
    before = tasklle.get_num_threads()
    results = []
    try:
        for t in (1, 2):
            tasklle.set_num_threads(t, torch_too=False)
            outs, gx, gA = _both(curve, x, A, 8, True, [g, g])
            results.append(outs + [gx, gA])
    finally:
        tasklle.set_num_threads(before, torch_too=False)
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_nan_propagates():
    x, A = _inputs(1, 2, 2, "shared", torch.float32)
    x[0, 0, 0, 0] = float("nan")
    A[0, 1, 1, 1] = float("nan")
    x.requires_grad_()
    A.requires_grad_()
    for fn in (curve, ref_curve):
        out = fn(x, A)
        nan = torch.isnan(out)
        assert nan[0, 0, 0, 0] and nan[0, 1, 1, 1] and nan.sum() == 2
        gx, gA = torch.autograd.grad(out.sum(), (x, A))
        assert torch.isnan(gx[0, 0, 0, 0]) and torch.isnan(gA[0, 1, 1, 1])
        assert torch.isnan(gx).sum() == 2 and torch.isnan(gA).sum() == 2


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values_forward(dtype):
    # inf, huge and signed values: no clamping, same IEEE results as the twin
    vals = torch.tensor([0.0, 1.0, -0.5, 2.0, 1e30, -1e30, float("inf"), -float("inf"), float("nan")], dtype=dtype)
    x = vals.repeat_interleave(len(vals)).reshape(1, 1, 9, 9).expand(1, 3, 9, 9)
    A = vals.repeat(len(vals)).reshape(1, 1, 9, 9).expand(1, 3, 9, 9)
    for n in (1, 2, 8):
        torch.testing.assert_close(curve(x, A, n), ref_curve(x, A, n), rtol=0, atol=0, equal_nan=True)


def test_empty():
    for B, H, W in [(0, 4, 4), (2, 0, 3), (1, 3, 0)]:
        x = torch.rand(B, 3, H, W, requires_grad=True)
        A = torch.rand(B, 24, H, W, requires_grad=True)
        final, half = curve(x, A, return_half=True)
        assert final.shape == half.shape == (B, 3, H, W)
        (final.sum() + half.sum()).backward()
        assert x.grad.shape == x.shape and A.grad.shape == A.shape


def test_inputs_not_mutated():
    x, A = _inputs(2, 5, 7, "per", torch.float32)
    x0, A0 = x.clone(), A.clone()
    xr, Ar = x.clone().requires_grad_(), A.clone().requires_grad_()
    final, half = curve(xr, Ar, return_half=True)
    g = torch.randn_like(final)
    g0 = g.clone()
    (final * g).sum().backward()
    curve(x, A)
    assert torch.equal(x, x0) and torch.equal(A, A0) and torch.equal(g, g0)
    assert torch.equal(xr.detach(), x0) and torch.equal(Ar.detach(), A0)


def test_outputs_are_fresh():
    x, A = _inputs(1, 3, 3, "shared", torch.float32)
    final, half = curve(x, A, iterations=1, return_half=True)  # half = the input after 0 steps
    torch.testing.assert_close(half, x, rtol=0, atol=0)
    assert half.data_ptr() != x.data_ptr()


def test_namespace_is_callable():
    # the contract: tasklle.ops.curve(x, A, ...) and tasklle.reference.curve(x, A, ...)
    # (the packages bind the functions over the same-named submodules)
    x, A = _inputs(1, 3, 4, "per", torch.float32)
    for fn, direct in ((tasklle.ops.curve, curve), (tasklle.reference.curve, ref_curve)):
        final, half = fn(x, A, iterations=8, return_half=True)
        expect = direct(x, A, 8, True)
        assert torch.equal(final, expect[0]) and torch.equal(half, expect[1])
    from tasklle.ops import curve as imported
    assert torch.equal(imported(x, A), curve(x, A))


_x = torch.rand(2, 3, 4, 5)
_A = torch.rand(2, 3, 4, 5)
BAD = [
    ((np.zeros((2, 3, 4, 5)), _A), {}, TypeError, "x must be a torch.Tensor"),
    ((_x, [1.0]), {}, TypeError, "A must be a torch.Tensor"),
    ((_x.half(), _A.half()), {}, TypeError, "x must have dtype"),
    ((_x.long(), _A), {}, TypeError, "x must have dtype"),
    ((_x, _A.double()), {}, TypeError, "A and x must have the same dtype"),
    ((_x, _A), {"iterations": 2.0}, TypeError, "iterations must be an int"),
    ((_x, _A), {"iterations": True}, TypeError, "iterations must be an int"),
    ((_x, _A), {"iterations": 0}, ValueError, "iterations must be >= 1"),
    ((_x, _A), {"return_half": 1}, TypeError, "return_half must be a bool"),
    ((_x[0], _A), {}, ValueError, "x must have 4 dimensions"),
    ((_x, _A[0]), {}, ValueError, "A must have 4 dimensions"),
    ((torch.rand(2, 4, 4, 5), _A), {}, ValueError, "x must have 3 channels"),
    ((_x, torch.rand(2, 6, 4, 5)), {}, ValueError, "A must have 3 channels"),
    ((_x, torch.rand(2, 24, 4, 5)), {"iterations": 4}, ValueError, "3\\*iterations = 12"),
    ((_x, torch.rand(1, 3, 4, 5)), {}, ValueError, "batch size, height and width"),
    ((_x, torch.rand(2, 3, 5, 5)), {}, ValueError, "batch size, height and width"),
    ((_x, torch.rand(2, 3, 4, 4)), {}, ValueError, "batch size, height and width"),
    ((_x, torch.rand(2, 3, 4, 5, device="meta")), {}, ValueError, "same device"),
]


@pytest.mark.parametrize("args,kwargs,exc,match", BAD)
@pytest.mark.parametrize("fn", [curve, ref_curve], ids=["op", "reference"])
def test_bad_arguments(fn, args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fn(*args, **kwargs)


def test_other_device_uses_reference():
    # the meta device has no C path: shape semantics come from the twin
    x = torch.empty(2, 3, 4, 5, device="meta")
    A = torch.empty(2, 24, 4, 5, device="meta")
    final, half = curve(x, A, return_half=True)
    assert final.device.type == "meta" and final.shape == half.shape == (2, 3, 4, 5)


def test_binding_validates():
    x = np.random.rand(1, 3, 4, 4).astype(np.float32)
    A = np.random.rand(1, 3, 4, 4).astype(np.float32)
    out = np.empty_like(x)
    _C.curve_forward(out, None, x, A, 8, 4)
    torch.testing.assert_close(torch.from_numpy(out), ref_curve(torch.from_numpy(x), torch.from_numpy(A)))
    with pytest.raises(ValueError, match=r"iterations must be in \[1, 64\]"):
        _C.curve_forward(out, None, x, A, 0, 0)
    with pytest.raises(ValueError, match="half_after"):
        _C.curve_forward(out, None, x, A, 8, 9)
    with pytest.raises(TypeError, match="out and x must have the same dtype"):
        _C.curve_forward(out.astype(np.float64), None, x, A, 8, 4)
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        _C.curve_forward(np.empty((1, 3, 4, 8), np.float32)[..., ::2], None, x, A, 8, 4)
    with pytest.raises(ValueError, match="out must be writeable"):
        ro = np.empty_like(x)
        ro.flags.writeable = False
        _C.curve_forward(ro, None, x, A, 8, 4)
    with pytest.raises(ValueError, match="out must not share memory with x"):
        _C.curve_forward(x, None, x, A, 8, 4)
    with pytest.raises(ValueError, match="half and x must have the same shape"):
        _C.curve_forward(out, np.empty((1, 3, 4, 5), np.float32), x, A, 8, 4)
    with pytest.raises(ValueError, match="grad_A and A must have the same shape"):
        _C.curve_backward(None, np.empty((1, 24, 4, 4), np.float32), out, None, x, A, 8, 4)
    with pytest.raises(TypeError, match="grad_out must be a numpy.ndarray"):
        _C.curve_backward(np.empty_like(x), None, [1], None, x, A, 8, 4)
