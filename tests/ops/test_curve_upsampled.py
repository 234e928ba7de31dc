"""tasklle.ops.curve_upsampled (the fused C upsample + curve of Zero-DCE++
inference) against its pure-PyTorch twin, and the model that uses it."""
import pytest
import torch

import tasklle
from tasklle import _C
from tasklle.models import ZeroDCEPP
from tasklle.ops.curve import curve_upsampled
from tasklle.reference.curve import curve_upsampled as ref_upsampled

DTYPES = [torch.float32, torch.float64]
SHAPES = [(2, 37, 53, 3, 4), (1, 90, 120, 7, 10), (1, 5, 7, 1, 3), (1, 1, 1, 1, 1), (1, 6, 6, 6, 6),
          (3, 10, 1, 2, 1), (1, 2, 9, 9, 2)]  # (B, H, W, h, w); the last one downsamples


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_twin(shape, dtype):
    B, H, W, h, w = shape
    g = torch.Generator().manual_seed(H * W + h)
    x = torch.rand(B, 3, H, W, dtype=dtype, generator=g)
    a = torch.rand(B, 3, h, w, dtype=dtype, generator=g) * 2 - 1
    out, maps = curve_upsampled(x, a, 8)
    r_out, r_maps = ref_upsampled(x, a, 8)
    torch.testing.assert_close(maps, r_maps, **_tol(dtype))
    torch.testing.assert_close(out, r_out, **_tol(dtype))
    # without the map: the same enhanced image, bit for bit
    assert torch.equal(curve_upsampled(x, a, 8, return_maps=False), out)


def test_same_bits_for_any_thread_count():
    x = torch.rand(2, 3, 67, 131)
    a = torch.rand(2, 3, 5, 10) * 2 - 1
    n0 = tasklle.get_num_threads()
    try:
        outs = []
        for t in (1, 2):
            tasklle.set_num_threads(t)
            outs.append(curve_upsampled(x, a, 8))
    finally:
        tasklle.set_num_threads(n0)
    assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1])


def test_gradient_path():
    # no fused backward: with a gradient wanted the op is torch's upsampling and the C curve op (gradchecked
    # in test_curve.py); same values as the fused forward
    x = torch.rand(1, 3, 12, 15, dtype=torch.float64, requires_grad=True)
    a = (torch.rand(1, 3, 3, 4, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, a: curve_upsampled(x, a, 8), (x, a))
    with torch.no_grad():
        c_out, c_maps = curve_upsampled(x, a, 8)
    out, maps = curve_upsampled(x, a, 8)
    torch.testing.assert_close(out.detach(), c_out, **_tol(torch.float64))
    torch.testing.assert_close(maps.detach(), c_maps, **_tol(torch.float64))


def test_non_contiguous_and_nan():
    x = torch.rand(1, 20, 30, 3).permute(0, 3, 1, 2)  # channels-last view
    a = torch.rand(1, 3, 4, 5) * 2 - 1
    a[0, 1, 2, 2] = float("nan")
    out, maps = curve_upsampled(x, a, 8)
    r_out, r_maps = ref_upsampled(x, a, 8)
    torch.testing.assert_close(out, r_out, equal_nan=True, **_tol(torch.float32))
    assert torch.isnan(out[0, 1]).any() and not torch.isnan(out[0, 0]).any()


@pytest.mark.parametrize("fn", [curve_upsampled, ref_upsampled])
def test_errors_name_the_argument(fn):
    x, a = torch.rand(1, 3, 8, 8), torch.rand(1, 3, 2, 2)
    with pytest.raises(TypeError, match="a must be a torch.Tensor"):
        fn(x, a.numpy())
    with pytest.raises(TypeError, match="a and x must have the same dtype"):
        fn(x, a.double())
    with pytest.raises(ValueError, match="a must have shape"):
        fn(x, torch.rand(2, 3, 2, 2))
    with pytest.raises(ValueError, match="a must have shape"):
        fn(x, torch.rand(1, 3, 0, 2))
    with pytest.raises(ValueError, match="x must have 3 channels"):
        fn(torch.rand(1, 4, 8, 8), a)
    with pytest.raises(ValueError, match="iterations must be >= 1"):
        fn(x, a, 0)
    with pytest.raises(TypeError, match="return_maps must be a bool"):
        fn(x, a, 8, 1)


def test_binding_checks():
    x, a = torch.rand(1, 3, 8, 8).numpy(), torch.rand(1, 3, 2, 2).numpy()
    out = torch.empty(1, 3, 8, 8).numpy()
    with pytest.raises(ValueError, match="out"):
        _C.curve_upsample_forward(torch.empty(1, 3, 8, 7).numpy(), None, x, a, 8)
    with pytest.raises(ValueError, match="iterations"):
        _C.curve_upsample_forward(out, None, x, a, 0)
    with pytest.raises(ValueError):
        _C.curve_upsample_forward(x, None, x, a, 8)  # out aliases x


@pytest.mark.parametrize("size", [(90, 120), (37, 50)])
def test_model_inference_matches_reference_impl(size):
    torch.manual_seed(0)
    m = ZeroDCEPP(scale_factor=12).init_weights(0.02).eval()
    ref = ZeroDCEPP(scale_factor=12, impl="reference").eval()
    ref.load_state_dict(m.state_dict())
    x = torch.rand(2, 3, *size) * 0.4
    with torch.no_grad():
        out, maps = m(x)
        r_out, r_maps = ref(x)
    torch.testing.assert_close(maps, r_maps, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out, r_out, rtol=1e-4, atol=1e-5)
    # with gradients (training at s > 1): the twin path, backward reaches the weights
    out, maps = m(x)
    (out.sum() + maps.sum()).backward()
    assert m.e_conv1.point_conv.weight.grad is not None
