"""The fused Zero-DCE losses: C path vs the reference twin (the official
formulation), gradients (gradcheck in float64), edge cases, exceptions and the
kornia-style functions and modules."""
import numpy as np
import pytest
import torch

import tasklle
from tasklle import losses
from tasklle.ops.zerodce_loss import zero_dce_losses

TERMS = ("spa", "exp", "col", "tv")


def _inputs(b, h, w, ca=3, ha=None, wa=None, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.rand(b, 3, h, w, generator=g, dtype=dtype)
    i = torch.rand(b, 3, h, w, generator=g, dtype=dtype) * 0.3
    a = torch.randn(b, ca, ha or h, wa or w, generator=g, dtype=dtype) * 0.2
    e = torch.rand(b, generator=g, dtype=dtype) * 0.5 + 0.2
    return y, i, a, e


def _run(impl, y, i, a, e, with_grads=True, **kw):
    leaves = [t.detach().clone().requires_grad_(with_grads) for t in (y, i, a, e)]
    total, terms = zero_dce_losses(*leaves, impl=impl, **kw)
    grads = None
    if with_grads:
        # unit gradient of the total plus extra weight on two terms: exercises every coefficient path
        (total + 3.0 * terms["spa"] - 0.5 * terms["tv"]).backward()
        grads = [t.grad for t in leaves]
    return total, terms, grads


SHAPES = [(1, 16, 16), (2, 37, 53), (3, 17, 64), (2, 64, 19), (1, 33, 35)]


@pytest.mark.parametrize("b,h,w", SHAPES)
@pytest.mark.parametrize("pools", [(4, 16), (3, 5), (4, 6), (2, 2)])
def test_c_matches_reference_float64(b, h, w, pools):
    ps, pe = pools
    if min(h, w) < max(ps, pe):
        pytest.skip("image smaller than the pool")
    y, i, a, e = _inputs(b, h, w, ca=6, ha=h + 2, wa=w - 1)
    tc, dc, gc = _run("c", y, i, a, e, spa_pool=ps, exp_pool=pe)
    tr, dr, gr = _run("reference", y, i, a, e, spa_pool=ps, exp_pool=pe)
    torch.testing.assert_close(tc, tr, rtol=1e-12, atol=1e-14)
    for t in TERMS:
        torch.testing.assert_close(dc[t], dr[t], rtol=1e-11, atol=1e-14)
    for name, g1, g2 in zip(("enhanced", "original", "curve_maps", "exposure"), gc, gr):
        torch.testing.assert_close(g1, g2, rtol=1e-10, atol=1e-13, msg=name)


@pytest.mark.parametrize("b,h,w", SHAPES[:3])
def test_c_float32_within_float32_rounding(b, h, w):
    """float32 C vs the reference evaluated in float64 on the same values: the C
    path accumulates in double, so it sits within float32 rounding of the exact result."""
    y, i, a, e = _inputs(b, h, w, dtype=torch.float32)
    tc, dc, gc = _run("c", y, i, a, e)
    tr, dr, gr = _run("reference", y.double(), i.double(), a.double(), e.double())
    for t in TERMS:
        torch.testing.assert_close(dc[t].double(), dr[t], rtol=2e-6, atol=1e-9)
        assert dc[t].dtype == torch.float32
    for g1, g2 in zip(gc[:3], gr[:3]):
        torch.testing.assert_close(g1.double(), g2, rtol=1e-5, atol=1e-6 * g2.abs().max().item())
    # and against the float32 reference itself (its own rounding is larger)
    t32, d32, g32 = _run("reference", y, i, a, e)
    for t in TERMS:
        torch.testing.assert_close(dc[t], d32[t], rtol=1e-4, atol=1e-7)


def test_gradcheck_all_inputs():
    y, i, a, e = _inputs(2, 9, 10, ca=3)
    leaves = [t.clone().requires_grad_() for t in (y, i, a, e)]

    def f(y, i, a, e):
        total, terms = zero_dce_losses(y, i, a, e, spa_pool=2, exp_pool=3, impl="c")
        return (total, terms["spa"], terms["exp"], terms["col"], terms["tv"])

    assert torch.autograd.gradcheck(f, leaves, nondet_tol=0.0)


@pytest.mark.parametrize("fn,args", [
    (losses.spatial_consistency, lambda y, i, a, e: (y, i, 3)),
    (losses.exposure_control, lambda y, i, a, e: (y, e, 4)),
    (losses.color_constancy, lambda y, i, a, e: (y,)),
    (losses.illumination_smoothness, lambda y, i, a, e: (a,)),
])
def test_gradcheck_each_loss(fn, args):
    y, i, a, e = _inputs(2, 8, 11, ca=2)
    inputs = [t.requires_grad_() if isinstance(t, torch.Tensor) else t for t in args(y, i, a, e)]
    assert torch.autograd.gradcheck(lambda *t: fn(*t), inputs, nondet_tol=0.0)


@pytest.mark.parametrize("fn,args", [
    (losses.spatial_consistency, lambda y, i, a, e: (y, i)),
    (losses.exposure_control, lambda y, i, a, e: (y, e)),
    (losses.color_constancy, lambda y, i, a, e: (y,)),
    (losses.illumination_smoothness, lambda y, i, a, e: (a,)),
])
def test_functions_match_reference(fn, args):
    y, i, a, e = _inputs(3, 35, 41, ca=24)
    out_c = fn(*args(y, i, a, e), impl="c")
    out_r = fn(*args(y, i, a, e), impl="reference")
    torch.testing.assert_close(out_c, out_r, rtol=1e-12, atol=1e-15)
    assert out_c.shape == torch.Size([])


def test_official_values_by_hand():
    # constant image c: L_exp = (c - E)^2, L_col = 0, L_spa of identical pooled grids vs 0-image
    y = torch.full((1, 3, 16, 16), 0.5)
    assert abs(losses.exposure_control(y, 0.6).item() - 0.01) < 1e-7
    assert losses.color_constancy(y).item() == 0.0
    # one 4x4 pooled cell per image (pool 16 on 16x16): D = cell itself for all 4 zero neighbours
    i = torch.zeros(1, 3, 16, 16)
    assert abs(losses.spatial_consistency(y, i, pool_size=16).item() - 4 * 0.25) < 1e-6
    # colour: means r=0.5, g=0.2, b=0.1 -> sqrt(0.3^4 + 0.4^4 + 0.1^4)
    y = torch.tensor([0.5, 0.2, 0.1]).view(1, 3, 1, 1).expand(1, 3, 5, 5)
    expect = (0.3 ** 4 + 0.4 ** 4 + 0.1 ** 4) ** 0.5
    assert abs(losses.color_constancy(y).item() - expect) < 1e-6
    # TV: a ramp along W with step 0.1 on (2,3,4,5): sum dA_w^2 = B*C*H*(W-1)*0.01, divided by H*(W-1), *2/B
    a = torch.arange(5.0).view(1, 1, 1, 5).expand(2, 3, 4, 5) * 0.1
    assert abs(losses.illumination_smoothness(a).item() - 2 * (2 * 3 * 4 * 4 * 0.01) / (4 * 4) / 2) < 1e-6


def test_color_constancy_safe_gradient_where_means_equal():
    y = torch.rand(1, 1, 6, 7, dtype=torch.float64).expand(2, 3, 6, 7).clone()
    for impl in ("c", "reference"):
        x = y.clone().requires_grad_()
        loss = losses.color_constancy(x, impl=impl)
        loss.backward()
        assert loss.item() == 0.0
        assert torch.isfinite(x.grad).all() and (x.grad == 0).all()


@pytest.mark.parametrize("shape", [(2, 3, 1, 7), (2, 3, 6, 1), (1, 2, 1, 1)])
def test_tv_single_row_or_column_defined(shape):
    a = torch.randn(shape, dtype=torch.float64)
    vals = []
    for impl in ("c", "reference"):
        x = a.clone().requires_grad_()
        v = losses.illumination_smoothness(x, impl=impl)
        v.backward()
        assert torch.isfinite(v) and torch.isfinite(x.grad).all()
        vals.append((v, x.grad))
    torch.testing.assert_close(vals[0][0], vals[1][0])
    torch.testing.assert_close(vals[0][1], vals[1][1])
    if shape[2] == 1 and shape[3] == 1:
        assert vals[0][0].item() == 0.0


def test_thread_count_invariance():
    y, i, a, e = _inputs(3, 67, 45, dtype=torch.float32, ca=6)
    before = tasklle.get_num_threads()
    tb = torch.get_num_threads()
    try:
        out = []
        for n in (1, 2, 3):
            tasklle.set_num_threads(n, torch_too=False)
            out.append(_run("c", y, i, a, e))
    finally:
        tasklle.set_num_threads(before, torch_too=False)
        torch.set_num_threads(tb)
    for t, d, g in out[1:]:
        assert torch.equal(t, out[0][0])
        for k in TERMS:
            assert torch.equal(d[k], out[0][1][k])
        for g1, g2 in zip(g, out[0][2]):
            assert torch.equal(g1, g2)


def test_per_image_exposure_is_per_image():
    y, i, a, e = _inputs(3, 32, 32)
    per = losses.exposure_control(y, e)
    single = torch.stack([losses.exposure_control(y[k:k + 1], float(e[k])) for k in range(3)])
    torch.testing.assert_close(per, single.mean())
    # a scalar tensor and a 1-element tensor broadcast like the number
    torch.testing.assert_close(losses.exposure_control(y, torch.tensor(0.4)), losses.exposure_control(y, 0.4))
    torch.testing.assert_close(losses.exposure_control(y, [0.4]), losses.exposure_control(y, 0.4))


def test_nan_propagates_on_both_paths():
    y, i, a, e = _inputs(2, 16, 16)
    y[1, 2, 3, 4] = float("nan")
    a[0, 0, 0, 0] = float("inf")
    for impl in ("c", "reference"):
        total, terms = zero_dce_losses(y, i, a, 0.6, impl=impl)
        assert torch.isnan(terms["spa"]) and torch.isnan(terms["exp"]) and torch.isnan(terms["col"])
        assert not torch.isfinite(terms["tv"])


def test_inputs_not_mutated_and_noncontiguous():
    y, i, a, e = _inputs(2, 20, 24, dtype=torch.float32)
    copies = [t.clone() for t in (y, i, a, e)]
    yt = y.transpose(2, 3).contiguous().transpose(2, 3)  # same values, non-contiguous strides
    assert not yt.is_contiguous()
    t1, d1, g1 = _run("c", yt, i, a, e)
    t2, d2, g2 = _run("c", y, i, a, e)
    assert torch.equal(t1, t2)
    for t, c in zip((y, i, a, e), copies):
        assert torch.equal(t, c)


def test_second_backward_and_scaled_total():
    y, i, a, e = _inputs(2, 16, 20)
    a = a.requires_grad_()
    total, _ = zero_dce_losses(y, i, a, e, impl="c")
    total.backward(retain_graph=True)
    g1 = a.grad.clone()
    total.backward(retain_graph=True)  # the fused dL/dA was handed over once; this one is recomputed
    torch.testing.assert_close(a.grad, 2 * g1, rtol=1e-14, atol=0)
    a.grad = None
    (0.25 * total).backward()
    torch.testing.assert_close(a.grad, 0.25 * g1, rtol=1e-14, atol=0)


def test_no_grad_and_partial_requires_grad():
    y, i, a, e = _inputs(2, 16, 16)
    with torch.no_grad():
        t1, _ = zero_dce_losses(y.requires_grad_(), i, a.requires_grad_(), e, impl="c")
    assert not t1.requires_grad
    y.grad = None
    t2, _ = zero_dce_losses(y, i, a.detach(), e, impl="c")
    t2.backward()
    assert y.grad is not None and y.grad.shape == y.shape


def test_double_backward_needs_reference_path():
    y, i, a, e = _inputs(1, 16, 16)
    y.requires_grad_()
    total, _ = zero_dce_losses(y, i, a, e, impl="c")
    (g,) = torch.autograd.grad(total, y, create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()
    total, _ = zero_dce_losses(y, i, a, e, impl="reference")
    (g,) = torch.autograd.grad(total, y, create_graph=True)
    g.sum().backward()  # works on the reference path


def test_env_forces_reference(monkeypatch):
    y, i, a, e = _inputs(1, 16, 16, dtype=torch.float32)
    monkeypatch.setenv("TASKLLE_IMPL", "reference")
    # float16 on CPU is refused by the C path but the forced reference path accepts it
    total, _ = zero_dce_losses(y.half(), i.half(), a.half(), 0.6)
    assert total.dtype == torch.float16


BAD = [
    (lambda y, i, a: (y[:, :2], i[:, :2], a), {}, ValueError, "shape"),
    (lambda y, i, a: (y[0], i[0], a), {}, ValueError, "shape"),
    (lambda y, i, a: (y, i[:, :, :-1], a), {}, ValueError, "same shape"),
    (lambda y, i, a: (y, i.float(), a), {}, TypeError, "same dtype"),
    (lambda y, i, a: (y, i, a.float()), {}, TypeError, "same dtype"),
    (lambda y, i, a: (y, i, a[:1]), {}, ValueError, "batch size"),
    (lambda y, i, a: (y[:, :, :15], i[:, :, :15], a), {}, ValueError, "exposure control"),
    (lambda y, i, a: (y[:, :, :3], i[:, :, :3], a), {"exp_pool": 2}, ValueError, "spatial consistency"),
    (lambda y, i, a: (y[:0], i[:0], a), {}, ValueError, "empty"),
    (lambda y, i, a: (y.long(), i.long(), a), {}, TypeError, "floating"),
    (lambda y, i, a: ("img", i, a), {}, TypeError, "enhanced"),
    (lambda y, i, a: (y, None, a), {}, ValueError, "original"),
    (lambda y, i, a: (y, i, None), {}, ValueError, "curve_maps"),
    (lambda y, i, a: (y, i, a), {"spa_pool": 0}, ValueError, "spa_pool"),
    (lambda y, i, a: (y, i, a), {"exp_pool": 2.5}, TypeError, "exp_pool"),
    (lambda y, i, a: (y, i, a), {"weights": {"spatial": 1}}, ValueError, "unknown term"),
    (lambda y, i, a: (y, i, a), {"weights": {"tv": float("nan")}}, ValueError, "finite"),
    (lambda y, i, a: (y, i, a), {"exposure": torch.ones(3)}, ValueError, "exposure"),
    (lambda y, i, a: (y, i, a), {"exposure": float("inf")}, ValueError, "exposure"),
    (lambda y, i, a: (y, i, a), {"exposure": "bright"}, TypeError, "exposure"),
    (lambda y, i, a: (y, i, a), {"terms": ("spa", "bogus")}, ValueError, "unknown term"),
]


@pytest.mark.parametrize("make,kw,exc,match", BAD)
@pytest.mark.parametrize("impl", ["c", "reference"])
def test_bad_arguments_raise_the_same_on_both_paths(make, kw, exc, match, impl):
    y, i, a, _ = _inputs(2, 16, 16)
    with pytest.raises(exc, match=match):
        zero_dce_losses(*make(y, i, a), impl=impl, **kw)


def test_c_path_refuses_half_and_bad_impl():
    y, i, a, _ = _inputs(1, 16, 16)
    with pytest.raises(TypeError, match="float32 and float64"):
        zero_dce_losses(y.half(), i.half(), a.half(), impl="c")
    with pytest.raises(ValueError, match="impl"):
        zero_dce_losses(y, i, a, impl="fast")


def test_binding_validates_arguments():
    from tasklle import _C

    y = np.random.rand(1, 3, 16, 16).astype(np.float32)
    losses3 = np.zeros(3)
    gs, ge, gc = np.zeros((1, 4, 4)), np.zeros((1, 1, 1)), np.zeros((1, 3))
    e = np.full(1, 0.6)
    _C.zerodce_loss_forward(losses3, gs, ge, gc, y, y, e, 4, 16, 7)
    with pytest.raises(ValueError, match="grad_spa"):
        _C.zerodce_loss_forward(losses3, np.zeros((1, 3, 4)), ge, gc, y, y, e, 4, 16, 7)
    with pytest.raises(TypeError, match="original"):
        _C.zerodce_loss_forward(losses3, gs, ge, gc, y, y.astype(np.float64), e, 4, 16, 7)
    with pytest.raises(ValueError, match="terms"):
        _C.zerodce_loss_forward(losses3, gs, ge, gc, y, y, e, 4, 16, 8)
    with pytest.raises(ValueError, match="pool size"):
        _C.zerodce_loss_forward(losses3, gs, ge, gc, y, y, e, 4, 17, 2)
    with pytest.raises(ValueError, match="share memory"):
        _C.zerodce_loss_tv_forward(np.zeros(1), y, y, 1.0)
    with pytest.raises(ValueError, match="C-contiguous"):
        _C.zerodce_loss_tv_forward(np.zeros(1), None, y[:, :, ::2], 1.0)


class TestModules:
    def test_modules_match_functions(self):
        y, i, a, e = _inputs(2, 32, 32)
        torch.testing.assert_close(losses.SpatialConsistencyLoss()(y, i), losses.spatial_consistency(y, i))
        torch.testing.assert_close(losses.ExposureControlLoss(0.5)(y), losses.exposure_control(y, 0.5))
        torch.testing.assert_close(losses.ExposureControlLoss(0.5)(y, e), losses.exposure_control(y, e))
        torch.testing.assert_close(losses.ColorConstancyLoss()(y), losses.color_constancy(y))
        torch.testing.assert_close(losses.IlluminationSmoothnessLoss()(a), losses.illumination_smoothness(a))
        total, terms = losses.ZeroDCELoss(weights={"tv": 200})(y, i, a)
        expect = terms["spa"] + 10 * terms["exp"] + 5 * terms["col"] + 200 * terms["tv"]
        torch.testing.assert_close(total, expect)
        assert "tv" in repr(losses.ZeroDCELoss())

    def test_zero_dce_loss_defaults_are_the_official_weights(self):
        y, i, a, e = _inputs(2, 32, 32)
        total, terms = losses.zero_dce_loss(y, i, a)
        expect = terms["spa"] + 10 * terms["exp"] + 5 * terms["col"] + 1600 * terms["tv"]
        torch.testing.assert_close(total, expect)
        assert set(terms) == set(TERMS)

    def test_reference_functions_exist(self):
        y, i, a, e = _inputs(1, 16, 16)
        for name in ("spatial_consistency", "exposure_control", "color_constancy", "illumination_smoothness",
                     "zero_dce_losses"):
            assert callable(getattr(tasklle.reference, name))
        torch.testing.assert_close(tasklle.reference.spatial_consistency(y, i), losses.spatial_consistency(y, i))
