"""The fused depthwise-separable layers (impl='auto', the C core of
tasklle.ops.separable_conv) against plain PyTorch (impl='reference', the op's
twin: two F.conv2d on the nn.Conv2d parameters) inside ZeroDCEPP and
ECZeroDCE: same parameters, same outputs and gradients to float rounding,
official and shipped checkpoints included."""
import pytest
import torch

from tasklle.models import ZeroDCEPP
from tasklle.models.ec_zero_dce import WEIGHTS, ECZeroDCE

pytestmark = pytest.mark.usefixtures("one_thread")


def _outputs_and_grads(model, x, *args):
    model.zero_grad(set_to_none=True)
    y, a = model(x, *args)
    (y.square().mean() + a.square().mean()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return y.detach(), a.detach(), grads


def _assert_same(model, x, *args, tol=None):
    tol = tol or dict(rtol=1e-4, atol=1e-5)
    model.impl = "reference"
    ref = _outputs_and_grads(model, x, *args)
    model.impl = "auto"
    got = _outputs_and_grads(model, x, *args)
    torch.testing.assert_close(got[0], ref[0], **tol)
    torch.testing.assert_close(got[1], ref[1], **tol)
    assert got[2].keys() == ref[2].keys() and len(got[2]) > 0
    for name in ref[2]:
        scale = ref[2][name].abs().max().clamp_min(1e-12)
        torch.testing.assert_close(got[2][name] / scale, ref[2][name] / scale, rtol=0, atol=tol["rtol"] * 10,
                                   msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (2, 3, 17, 33), (4, 3, 40, 24)])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_zero_dce_pp_auto_matches_reference(shape, layout):
    model = ZeroDCEPP().init_weights(0.1)
    x = torch.rand(shape)
    if layout == "channels_last":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    _assert_same(model, x)


def test_zero_dce_pp_float64_and_scale_factor():
    model = ZeroDCEPP(scale_factor=3).init_weights(0.1).double()
    _assert_same(model, torch.rand(2, 3, 31, 26, dtype=torch.float64), tol=dict(rtol=1e-10, atol=1e-12))


def test_zero_dce_pp_reference_is_plain_torch(monkeypatch):
    # impl='reference' runs plain PyTorch on the nn.Conv2d parameters: no C op is involved;
    # impl='auto' runs the fused C kernel of every layer
    import importlib

    op = importlib.import_module("tasklle.ops.separable_conv")  # the module (the package binds the function)

    calls = []
    c_forward = op._C.separable_conv_forward

    class CountingC:
        def separable_conv_forward(self, *args):
            calls.append(1)
            return c_forward(*args)

    monkeypatch.setattr(op, "_C", CountingC())
    model = ZeroDCEPP(impl="reference")
    x = torch.rand(1, 3, 5, 5)
    with torch.no_grad():
        ref = model.curve_maps(x)
        assert calls == []
        want = model.e_conv1.point_conv(model.e_conv1.depth_conv(x)).relu()
        torch.testing.assert_close(model.e_conv1(x, relu=True, impl="reference"), want, rtol=0, atol=0)
        model.impl = "auto"
        torch.testing.assert_close(model.curve_maps(x), ref, rtol=1e-4, atol=1e-5)
    assert calls == [1] * 7


def test_zero_dce_pp_official_weights(zero_dce_pp_weights):
    model = ZeroDCEPP.from_official(zero_dce_pp_weights, scale_factor=1)
    x = torch.rand(2, 3, 48, 64)
    with torch.no_grad():
        model.impl = "reference"
        y_ref, a_ref = model(x)
        model.impl = "auto"
        y, a = model(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(a, a_ref, rtol=1e-4, atol=1e-5)


def test_ec_zero_dce_auto_matches_reference():
    torch.manual_seed(0)
    model = ECZeroDCE(preserve_color=False).init_weights(0.05)
    # non-zero FiLM so that the conditioning path is exercised
    torch.nn.init.normal_(model.cond[2].weight, 0, 0.1)
    _assert_same(model, torch.rand(2, 3, 45, 38), torch.tensor([0.1, 0.3]))


def test_ec_zero_dce_shipped_weights():
    if not WEIGHTS.is_file():
        pytest.skip("shipped weights absent")
    model = ECZeroDCE.shipped()
    x = torch.rand(2, 3, 64, 80)
    with torch.no_grad():
        model.impl = "reference"
        y_ref, a_ref = model(x, 0.15)
        model.impl = "auto"
        y, a = model(x, 0.15)
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(a, a_ref, rtol=1e-4, atol=1e-5)


def test_bad_impl():
    # the ops' rule: 'auto', 'c' and 'reference' are the choices, anything else a ValueError
    with pytest.raises(ValueError, match="impl must be 'auto', 'c' or 'reference'"):
        ECZeroDCE(impl="fast")
    with pytest.raises(ValueError, match="impl must be 'auto', 'c' or 'reference'"):
        ZeroDCEPP(impl="fast")
    for cls in (ECZeroDCE, ZeroDCEPP):
        assert cls(impl="c").impl == "c"


def test_impl_c_on_another_device_is_the_ops_error():
    model = ZeroDCEPP(impl="c").to("meta")
    with pytest.raises(ValueError, match="separable_conv: impl='c' needs CPU tensors"):
        model(torch.rand(1, 3, 4, 4, device="meta"))
