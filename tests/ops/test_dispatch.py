"""The one dispatch rule of every op (tasklle.ops._common.use_c): impl and
TASKLLE_IMPL, other devices to the twin, an unsupported dtype on the CPU is a
TypeError naming the argument (never a silent switch to the twin)."""
import numpy as np
import pytest
import torch

import tasklle.ops as ops
import tasklle.reference as ref
from tasklle.ops._common import use_c


def _boxes(n, dtype=torch.float32):
    xy = torch.rand(n, 2) * 50
    return torch.cat([xy, xy + 1 + torch.rand(n, 2) * 20], 1).to(dtype)


# (call, name of the argument that carries the dtype)
HALF_CALLS = [
    (lambda: ops.box_iou(_boxes(4, torch.float16), _boxes(3, torch.float16)), "a"),
    (lambda: ops.box_iou(_boxes(3, torch.bfloat16), _boxes(3, torch.bfloat16), aligned=True), "a"),
    (lambda: ops.diou_loss(_boxes(4, torch.float16), _boxes(4, torch.float16)), "pred"),
    (lambda: ops.nms(_boxes(5, torch.float16), torch.rand(5), 0.5), "boxes"),
    (lambda: ops.assign_max_iou(_boxes(6, torch.float16), _boxes(2, torch.float16)), "anchors"),
    (lambda: ops.zero_dce_losses(torch.rand(1, 3, 16, 16).half(), torch.rand(1, 3, 16, 16).half(),
                                 torch.rand(1, 3, 16, 16).half()), "enhanced"),
]


@pytest.mark.parametrize("call, arg", HALF_CALLS)
def test_unsupported_dtype_on_cpu_is_a_type_error_naming_the_argument(call, arg, monkeypatch):
    monkeypatch.delenv("TASKLLE_IMPL", raising=False)
    with pytest.raises(TypeError, match=rf"\b{arg} has dtype torch\.(b?float16).*float32 and float64"):
        call()


@pytest.mark.parametrize("call, arg", HALF_CALLS)
def test_forced_reference_path_takes_what_the_twin_takes(call, arg, monkeypatch):
    monkeypatch.setenv("TASKLLE_IMPL", "reference")
    call()  # the twins compute in any floating dtype


def test_forced_reference_gives_the_twins_result(monkeypatch):
    a, b = _boxes(7, torch.float64), _boxes(5, torch.float64)
    monkeypatch.setenv("TASKLLE_IMPL", "reference")
    assert torch.equal(ops.box_iou(a, b), ref.box_iou(a, b))
    s = torch.rand(7, dtype=torch.float64)
    assert torch.equal(ops.nms(a, s, 0.3), ref.nms(a, s, 0.3))


def test_rule_itself(monkeypatch):
    monkeypatch.delenv("TASKLLE_IMPL", raising=False)
    x32, x16, meta = torch.zeros(2), torch.zeros(2, dtype=torch.float16), torch.zeros(2, device="meta")
    assert use_c("op", x=x32, y=None)
    assert use_c("op")  # nothing to look at: the C core
    assert not use_c("op", "reference", x=x32)
    assert not use_c("op", x=meta)  # another device: the twin
    with pytest.raises(ValueError, match=r"op: impl='c' needs CPU tensors, got x on meta"):
        use_c("op", "c", x=meta)
    with pytest.raises(TypeError, match=r"op: y has dtype torch\.float16"):
        use_c("op", "c", x=x32, y=x16)
    assert not use_c("op", "reference", y=x16)
    with pytest.raises(ValueError, match="impl must be 'auto', 'c' or 'reference'"):
        use_c("op", "fast", x=x32)
    monkeypatch.setenv("TASKLLE_IMPL", "reference")
    assert not use_c("op", x=x32)
    assert use_c("op", "c", x=x32)  # an explicit impl wins over the environment
    monkeypatch.setenv("TASKLLE_IMPL", "c")
    with pytest.raises(ValueError, match="needs CPU tensors"):
        use_c("op", x=meta)
    monkeypatch.setenv("TASKLLE_IMPL", "fast")
    with pytest.raises(ValueError, match="TASKLLE_IMPL must be"):
        use_c("op", x=x32)


def test_every_c_backed_op_goes_through_the_rule(monkeypatch):
    # with the twin forced by the environment, no op may reach the C core
    from tasklle import _C

    class NoC:
        def __getattr__(self, name):
            raise AssertionError(f"_C.{name} called although TASKLLE_IMPL=reference")

    import importlib
    mods = [importlib.import_module(f"tasklle.ops.{m}")
            for m in ("curve", "separable_conv", "boxes", "assign", "zerodce_loss", "wider_eval")]
    for m in mods:
        assert m._C is _C
        monkeypatch.setattr(m, "_C", NoC())
    monkeypatch.setenv("TASKLLE_IMPL", "reference")
    x = torch.rand(1, 3, 8, 8)
    ops.curve(x, torch.rand(1, 3, 8, 8) - 0.5)
    ops.separable_conv(x, torch.randn(3, 1, 3, 3), torch.randn(3), torch.randn(2, 3, 1, 1), torch.randn(2))
    a, b = _boxes(4), _boxes(3)
    ops.box_iou(a, b)
    ops.diou_loss(a, _boxes(4))
    ops.nms(a, torch.rand(4), 0.5)
    ops.assign_max_iou(a, b)
    ops.zero_dce_losses(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16))
    ops.wider_pr_counts(np.array([[0, 0, 10, 10, 1.0]]), np.array([0, 1]), np.array([[0, 0, 10, 10.0]]),
                        np.array([0, 1]), np.ones((1, 1), bool))


def _op_cases(device="cpu"):
    """(name, ops call taking impl=, twin call) for every C-backed op, float64 inputs on ``device``."""
    from tasklle.reference.curve import curve_upsampled as ref_upsampled
    from tasklle.reference.assign import assign_max_iou as ref_assign

    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 9, 7, generator=g, dtype=torch.float64).to(device)
    A = (torch.rand(2, 3, 9, 7, generator=g, dtype=torch.float64) - 0.5).to(device)
    small = (torch.rand(2, 3, 3, 2, generator=g, dtype=torch.float64) - 0.5).to(device)
    w = [t.to(device) for t in (torch.randn(3, 1, 3, 3, dtype=torch.float64), torch.randn(3, dtype=torch.float64),
                                torch.randn(4, 3, 1, 1, dtype=torch.float64), torch.randn(4, dtype=torch.float64))]
    a, b, p = (_boxes(n, torch.float64).to(device) for n in (6, 4, 6))
    s = torch.rand(6, dtype=torch.float64).to(device)
    y, i, m = (torch.rand(1, 3, 16, 16, generator=g, dtype=torch.float64).to(device) for _ in range(3))
    return [
        ("curve", lambda impl: ops.curve(x, A, 8, impl=impl), lambda: ref.curve(x, A, 8)),
        ("curve_upsampled", lambda impl: ops.curve_upsampled(x, small, 8, impl=impl),
         lambda: ref_upsampled(x, small, 8)),
        ("separable_conv", lambda impl: ops.separable_conv(x, *w, relu=True, impl=impl),
         lambda: ref.separable_conv(x, *w, relu=True)),
        ("box_iou", lambda impl: ops.box_iou(a, b, impl=impl), lambda: ref.box_iou(a, b)),
        ("diou_loss", lambda impl: ops.diou_loss(a, p, impl=impl), lambda: ref.diou_loss(a, p)),
        ("nms", lambda impl: ops.nms(a, s, 0.3, impl=impl), lambda: ref.nms(a, s, 0.3)),
        ("assign_max_iou", lambda impl: ops.assign_max_iou(a, b, impl=impl), lambda: ref_assign(a, b)),
        ("zero_dce_losses", lambda impl: ops.zero_dce_losses(y, i, m, impl=impl),
         lambda: ref.zero_dce_losses(y, i, m)),
    ]


def _flat(r):
    if isinstance(r, torch.Tensor):
        return [r]
    if isinstance(r, dict):
        return [t for k in sorted(r) for t in _flat(r[k])]
    return [t for v in r for t in _flat(v)]


@pytest.mark.parametrize("case", range(len(_op_cases())), ids=[c[0] for c in _op_cases()])
def test_impl_argument_of_every_op(case, monkeypatch):
    monkeypatch.delenv("TASKLLE_IMPL", raising=False)
    name, call, twin = _op_cases()[case]
    expect = _flat(twin())
    # 'reference' is the twin itself, bit for bit
    for got, want in zip(_flat(call("reference")), expect, strict=True):
        assert torch.equal(got, want), name
    # 'c' (and 'auto' on the CPU) is the C core: the twin's result to float rounding
    for impl in ("c", "auto"):
        for got, want in zip(_flat(call(impl)), expect, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12, msg=f"{name} impl={impl}")
    with pytest.raises(ValueError, match="impl must be 'auto', 'c' or 'reference'"):
        call("fast")


@pytest.mark.parametrize("case", range(len(_op_cases())), ids=[c[0] for c in _op_cases()])
def test_impl_c_refuses_another_device(case, monkeypatch):
    monkeypatch.delenv("TASKLLE_IMPL", raising=False)
    name, call, _ = _op_cases("meta")[case]
    with pytest.raises(ValueError, match=rf"{name}: impl='c' needs CPU tensors"):
        call("c")


def test_box_iou_gradient_takes_the_twin_under_auto_and_refuses_c():
    # the C box_iou has no backward: with a gradient wanted, 'auto' runs the differentiable twin
    # (pinned here, as its docstring says) and 'c' refuses rather than cutting the graph
    from tasklle import _C

    a, b = _boxes(5, torch.float64).requires_grad_(), _boxes(3, torch.float64)
    got = ops.box_iou(a, b)
    assert got.requires_grad
    torch.testing.assert_close(got, ref.box_iou(a, b), rtol=0, atol=0)
    got.sum().backward()
    assert a.grad is not None
    with pytest.raises(ValueError, match="box_iou: impl='c' has no backward"):
        ops.box_iou(a, b, impl="c")
    with torch.no_grad():
        out = ops.box_iou(a, b, impl="c")  # no gradient wanted: the C core
    assert not out.requires_grad and _C is not None
