"""Deformable convolution v1: the op (grid_sample based) against the slow
loop-based reference twin, F.conv2d at zero offsets, gradcheck in float64."""
import pytest
import torch
import torch.nn.functional as F

from tasklle.ops import deform_conv2d
from tasklle.ops.deform_conv import DeformConv2d
from tasklle.reference import deform_conv2d as ref_deform_conv2d

pytestmark = pytest.mark.usefixtures("one_thread")


# (B, C, H, W, C_out, k, stride, padding, dilation, groups, deform_groups)
CASES = [
    (2, 4, 5, 6, 6, 3, 1, 1, 1, 1, 1),
    (1, 4, 7, 5, 4, 3, 2, 1, 1, 2, 2),
    (1, 2, 4, 4, 3, 2, 1, 0, 2, 1, 1),
    (1, 3, 1, 1, 2, 3, 1, 1, 1, 1, 1),  # 1x1 image: every tap but the centre is padding
    (1, 2, 3, 7, 2, 1, 1, 0, 1, 1, 2),  # 1x1 kernel
]


def _inputs(case, dtype=torch.float64, scale=2.0, seed=0):
    B, C, H, W, Co, k, s, p, d, g, dg = case
    gen = torch.Generator().manual_seed(seed)
    Ho = (H + 2 * p - d * (k - 1) - 1) // s + 1
    Wo = (W + 2 * p - d * (k - 1) - 1) // s + 1
    x = torch.randn(B, C, H, W, generator=gen, dtype=dtype)
    off = torch.randn(B, 2 * dg * k * k, Ho, Wo, generator=gen, dtype=dtype) * scale
    w = torch.randn(Co, C // g, k, k, generator=gen, dtype=dtype)
    b = torch.randn(Co, generator=gen, dtype=dtype)
    return x, off, w, b, dict(stride=s, padding=p, dilation=d, groups=g, deform_groups=dg)


@pytest.mark.parametrize("case", CASES)
def test_matches_reference_forward_and_backward(case):
    x, off, w, b, kw = _inputs(case)
    for t in (x, off, w, b):
        t.requires_grad_(True)
    out = deform_conv2d(x, off, w, b, **kw)
    ref = ref_deform_conv2d(x, off, w, b, **kw)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    go = torch.randn_like(out)
    g1 = torch.autograd.grad(out, (x, off, w, b), go)
    g2 = torch.autograd.grad(ref, (x, off, w, b), go)
    for a, r in zip(g1, g2):
        torch.testing.assert_close(a, r, rtol=1e-9, atol=1e-9)


def test_float32_matches_reference():
    x, off, w, b, kw = _inputs(CASES[0], dtype=torch.float32)
    torch.testing.assert_close(deform_conv2d(x, off, w, b, **kw), ref_deform_conv2d(x, off, w, b, **kw),
                               rtol=1e-4, atol=1e-4)


# tiny sizes: gradcheck perturbs every input element
GRAD_CASES = [
    (1, 2, 4, 3, 2, 3, 1, 1, 1, 1, 1),
    (1, 4, 5, 4, 2, 3, 2, 1, 1, 2, 2),
    (1, 2, 4, 4, 1, 2, 1, 0, 2, 1, 1),
]


@pytest.mark.parametrize("case", GRAD_CASES)
def test_gradcheck(case):
    # random, non-integer offsets: bilinear sampling has kinks at integer positions
    x, off, w, b, kw = _inputs(case, scale=1.3)
    args = tuple(t.requires_grad_(True) for t in (x, off, w, b))
    assert torch.autograd.gradcheck(lambda *a: deform_conv2d(*a, **kw), args, nondet_tol=0.0)


@pytest.mark.parametrize("case", CASES)
def test_zero_offsets_equal_conv2d(case):
    x, off, w, b, kw = _inputs(case, dtype=torch.float32)
    dg = kw.pop("deform_groups")
    out = deform_conv2d(x, torch.zeros_like(off), w, b, deform_groups=dg, **kw)
    torch.testing.assert_close(out, F.conv2d(x, w, b, **kw), rtol=1e-5, atol=1e-5)


def test_integer_offset_shifts_the_sample():
    # one tap (1x1 kernel) with offset (dy, dx) = (1, -2) reads x[h+1, w-2], zero outside
    x = torch.arange(30, dtype=torch.float64).reshape(1, 1, 5, 6)
    w = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    off = torch.zeros(1, 2, 5, 6, dtype=torch.float64)
    off[:, 0] = 1.0
    off[:, 1] = -2.0
    out = deform_conv2d(x, off, w)[0, 0]
    expect = torch.zeros(5, 6, dtype=torch.float64)
    expect[:4, 2:] = x[0, 0, 1:, :4]
    torch.testing.assert_close(out, expect)


def test_far_and_nonfinite_positions_sample_zero():
    x, off, w, b, kw = _inputs(CASES[0])
    off = off.clone()
    off[0, 0, 0, 0] = 1e6
    off[0, 1, 1, 1] = float("nan")
    off[1, 3, 2, 2] = float("-inf")
    out = deform_conv2d(x, off, w, b, **kw)
    ref = ref_deform_conv2d(x, off, w, b, **kw)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


def test_nan_input_propagates_like_reference():
    x, off, w, b, kw = _inputs(CASES[0])
    x = x.clone()
    x[0, 1, 2, 3] = float("nan")
    out = deform_conv2d(x, off, w, b, **kw)
    ref = ref_deform_conv2d(x, off, w, b, **kw)
    assert torch.equal(torch.isnan(out), torch.isnan(ref))
    assert torch.isnan(out).any()


def test_empty_batch():
    x, off, w, b, kw = _inputs(CASES[0])
    out = deform_conv2d(x[:0], off[:0], w, b, **kw)
    assert out.shape == (0, 6, 5, 6)
    assert ref_deform_conv2d(x[:0], off[:0], w, b, **kw).shape == (0, 6, 5, 6)


@pytest.mark.parametrize("fn", [deform_conv2d, ref_deform_conv2d])
def test_bad_arguments_raise_the_same(fn):
    x, off, w, b, kw = _inputs(CASES[0])
    with pytest.raises(ValueError, match="offset"):
        fn(x, off[:, :4], w, b, **kw)
    with pytest.raises(ValueError, match="input"):
        fn(x[0], off, w, b, **kw)
    with pytest.raises(TypeError, match="dtype"):
        fn(x.float(), off, w, b, **kw)
    with pytest.raises(ValueError, match="groups"):
        fn(x, off, w, b, stride=1, padding=1, groups=3)
    with pytest.raises(ValueError, match="deform_groups"):
        fn(x, off, w, b, stride=1, padding=1, deform_groups=3)
    with pytest.raises(ValueError, match="too small"):
        fn(x[..., :1, :1], off, w, b)
    with pytest.raises(TypeError, match="input"):
        fn(x.numpy(), off, w, b, **kw)


def test_module_starts_as_a_plain_convolution_and_learns_offsets():
    torch.manual_seed(0)
    m = DeformConv2d(4, 5, 3, stride=2, padding=1)
    assert set(m.state_dict()) == {"weight", "conv_offset.weight", "conv_offset.bias"}
    assert m.conv_offset.weight.shape == (18, 4, 3, 3)
    assert not m.conv_offset.weight.any() and not m.conv_offset.bias.any()
    x = torch.randn(2, 4, 9, 8)
    torch.testing.assert_close(m(x), F.conv2d(x, m.weight, None, 2, 1), rtol=1e-5, atol=1e-5)
    m(x).square().sum().backward()
    # with zero offsets every sample sits on a pixel; the (one-sided) offset gradient is non-zero
    assert m.conv_offset.weight.grad.abs().sum() > 0
