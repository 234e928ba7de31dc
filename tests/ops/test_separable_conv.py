"""tasklle.ops.separable_conv (fused C kernels) against its pure-PyTorch twin
tasklle.reference.separable_conv (F.conv2d with groups, then 1x1)."""
import numpy as np
import pytest
import torch

import tasklle
from tasklle import _C
from tasklle.ops.separable_conv import separable_conv
from tasklle.reference.separable_conv import separable_conv as ref_sep

pytestmark = pytest.mark.usefixtures("one_thread")

DTYPES = [torch.float32, torch.float64]


def _tol(dtype, cin=32):
    # different summation orders (and FMA): float32 differs in the last bits of sums over cin terms
    return dict(rtol=2e-4, atol=2e-5 * max(1, cin / 8)) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)


def _params(cin, cout, dtype):
    return [torch.randn(cin, 1, 3, 3, dtype=dtype) * 0.4, torch.randn(cin, dtype=dtype) * 0.2,
            torch.randn(cout, cin, 1, 1, dtype=dtype) / cin ** 0.5, torch.randn(cout, dtype=dtype) * 0.2]


def _run(fn, x, params, relu, g):
    """Output and the gradients of every input for output weights g."""
    leaves = [t.detach().clone().requires_grad_() for t in (x, *params)]
    y = fn(*leaves, relu=relu)
    grads = torch.autograd.grad(y, leaves, g)
    return y.detach(), grads


def _compare(x, params, relu, dtype):
    cin = x.shape[1]
    g = torch.randn(x.shape[0], params[2].shape[0], x.shape[2], x.shape[3], dtype=dtype)
    y, grads = _run(separable_conv, x, params, relu, g)
    ry, rgrads = _run(ref_sep, x, params, relu, g)
    torch.testing.assert_close(y, ry, **_tol(dtype, cin))
    n = x.shape[0] * x.shape[2] * x.shape[3]
    for name, a, b in zip(("x", "dw_weight", "dw_bias", "pw_weight", "pw_bias"), grads, rgrads):
        # weight gradients are sums over every pixel: scale the absolute tolerance with their count
        tol = _tol(dtype, cin) if name == "x" else dict(rtol=_tol(dtype)["rtol"], atol=_tol(dtype)["atol"] * n)
        torch.testing.assert_close(a, b, **tol, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 1, 9), (3, 7, 1), (1, 5, 7), (4, 33, 17), (2, 70, 130)])
@pytest.mark.parametrize("relu", [False, True])
def test_matches_reference_sizes(dtype, shape, relu):
    # (2, 70, 130): several tiles in both directions and partial tiles at the edges
    B, H, W = shape
    _compare(torch.randn(B, 5, H, W, dtype=dtype), _params(5, 7, dtype), relu, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cin,cout", [(3, 32), (32, 32), (64, 32), (64, 3), (5, 64), (32, 5)])
@pytest.mark.parametrize("relu", [False, True])
def test_matches_reference_channels(dtype, cin, cout, relu):
    _compare(torch.randn(2, cin, 9, 21, dtype=dtype), _params(cin, cout, dtype), relu, dtype)


@pytest.mark.parametrize("layout", ["channels_last", "strided", "expanded_batch"])
def test_non_contiguous_inputs(layout):
    dtype = torch.float64
    params = _params(6, 4, dtype)
    if layout == "channels_last":
        x = torch.randn(3, 6, 8, 11, dtype=dtype).contiguous(memory_format=torch.channels_last)
        params[0] = params[0].contiguous(memory_format=torch.channels_last)
        params[2] = params[2].contiguous(memory_format=torch.channels_last)
    elif layout == "strided":
        x = torch.randn(3, 12, 8, 22, dtype=dtype)[:, ::2, :, ::2]
        params[3] = torch.randn(8, dtype=dtype)[::2]
    else:
        x = torch.randn(1, 6, 8, 11, dtype=dtype).expand(3, 6, 8, 11)
    assert not x.is_contiguous()
    _compare(x, params, True, dtype)


@pytest.mark.parametrize("relu", [False, True])
def test_gradcheck(relu):
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    params = [p.requires_grad_() for p in _params(3, 4, torch.float64)]
    if relu:  # finite differences need the pre-activations away from ReLU's kink at 0
        with torch.no_grad():
            assert ref_sep(x, *params, relu=False).abs().min() > 1e-4
    assert torch.autograd.gradcheck(lambda *a: separable_conv(*a, relu=relu), (x, *params), eps=1e-6, atol=1e-7)


def test_gradcheck_partial_requires_grad():
    # only some inputs need gradients (the first layer's x does not): the others come back None
    x = torch.randn(1, 3, 4, 5, dtype=torch.float64)
    params = _params(3, 2, torch.float64)
    params[2].requires_grad_()
    y = separable_conv(x, *params, relu=False)
    assert y.requires_grad
    assert torch.autograd.gradcheck(lambda w: separable_conv(x, params[0], params[1], w, params[3]), (params[2],))


def test_thread_count_invariance():
    x = torch.randn(3, 16, 70, 130)  # above the parallel threshold, many tiles
    params = _params(16, 12, torch.float32)
    g = torch.randn(3, 12, 70, 130)
    before = tasklle.get_num_threads()
    results = []
    try:
        for t in (1, 2):
            tasklle.set_num_threads(t, torch_too=False)
            y, grads = _run(separable_conv, x, params, True, g)
            results.append([y, *grads])
    finally:
        tasklle.set_num_threads(before, torch_too=False)
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_large_output_streaming_path():
    # outputs of 64 MiB and more are written with streaming stores on AVX-512 CPUs
    x = torch.randn(1, 16, 1024, 1040)
    params = _params(16, 16, torch.float32)
    y = separable_conv(x, *params, relu=True)
    torch.testing.assert_close(y, ref_sep(x, *params, relu=True), **_tol(torch.float32, 16))
    gx, = torch.autograd.grad(separable_conv(x.requires_grad_(), *params), x, torch.ones_like(y))
    rgx, = torch.autograd.grad(ref_sep(x, *params), x, torch.ones_like(y))
    torch.testing.assert_close(gx, rgx, **_tol(torch.float32, 16))


def test_known_values():
    # identity depthwise kernel, 1x1 sums the channels: y = x0 + x1 + biases
    x = torch.arange(24, dtype=torch.float64).reshape(1, 2, 3, 4)
    dw = torch.zeros(2, 1, 3, 3, dtype=torch.float64)
    dw[:, 0, 1, 1] = 1
    db = torch.tensor([0.5, -1.0], dtype=torch.float64)
    pw = torch.ones(1, 2, 1, 1, dtype=torch.float64)
    pb = torch.tensor([2.0], dtype=torch.float64)
    y = separable_conv(x, dw, db, pw, pb)
    assert torch.equal(y[0, 0], x[0, 0] + x[0, 1] + 1.5)
    # a shift kernel reads the zero padding at the border
    dw.zero_()
    dw[:, 0, 0, 0] = 1  # y[i, j] = x[i-1, j-1]
    y = separable_conv(x, dw, torch.zeros_like(db), pw, torch.zeros_like(pb), relu=True)
    assert (y[0, 0, 0] == 0).all() and (y[0, 0, :, 0] == 0).all()
    assert torch.equal(y[0, 0, 1:, 1:], x[0, 0, :-1, :-1] + x[0, 1, :-1, :-1])


def test_relu_mask_and_nan():
    dtype = torch.float32
    x = torch.randn(1, 3, 6, 7, dtype=dtype)
    x[0, 1, 2, 3] = float("nan")
    params = _params(3, 4, dtype)
    y = separable_conv(x, *params, relu=True)
    ry = ref_sep(x, *params, relu=True)
    assert torch.equal(torch.isnan(y), torch.isnan(ry))
    assert torch.isnan(y[0, :, 1:4, 2:5]).all()
    assert (y[~torch.isnan(y)] >= 0).all()


@pytest.mark.parametrize("which", range(4))
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("fn", [separable_conv, ref_sep])
def test_non_finite_weights_refused_on_both_paths(fn, bad, which):
    names = ["dw_weight", "dw_bias", "pw_weight", "pw_bias"]
    params = list(_params(3, 4, torch.float32))
    params[which] = params[which].clone()
    params[which].view(-1)[0] = bad
    with pytest.raises(ValueError, match=names[which] + " must be finite"):
        fn(torch.rand(1, 3, 5, 6), *params)


def test_empty_batch():
    x = torch.randn(0, 3, 4, 5, requires_grad=True)
    params = [p.requires_grad_() for p in _params(3, 2, torch.float32)]
    y = separable_conv(x, *params)
    assert y.shape == (0, 2, 4, 5)
    grads = torch.autograd.grad(y.sum(), [x, *params])
    assert grads[0].shape == x.shape and all((g == 0).all() for g in grads[1:])


def test_inputs_not_mutated_and_exported():
    x = torch.randn(2, 4, 5, 6)
    params = _params(4, 3, torch.float32)
    keep = [t.clone() for t in (x, *params)]
    y = tasklle.ops.separable_conv(x, *params, relu=True)
    for a, b in zip((x, *params), keep):
        assert torch.equal(a, b)
    assert torch.equal(y, separable_conv(x, *params, relu=True))
    torch.testing.assert_close(y, tasklle.reference.separable_conv(x, *params, relu=True))


def test_other_device_uses_reference():
    x = torch.empty(2, 3, 4, 5, device="meta")
    params = [p.to("meta") for p in _params(3, 6, torch.float32)]
    y = separable_conv(x, *params, relu=True)
    assert y.device.type == "meta" and y.shape == (2, 6, 4, 5)


_x = torch.rand(2, 3, 4, 5)
_p = _params(3, 4, torch.float32)
BAD = [
    ((np.zeros((2, 3, 4, 5)), *_p), {}, TypeError, "x must be a torch.Tensor"),
    ((_x, None, *_p[1:]), {}, TypeError, "dw_weight must be a torch.Tensor"),
    ((_x.half(), *_p), {}, TypeError, "x must have dtype"),
    ((_x, _p[0].long(), *_p[1:]), {}, TypeError, "dw_weight must have dtype"),
    ((_x.double(), *_p), {}, TypeError, "dw_weight and x must have the same dtype"),
    ((_x, *_p[:3], _p[3].double()), {}, TypeError, "pw_bias and x must have the same dtype"),
    ((_x, *_p), {"relu": 1}, TypeError, "relu must be a bool"),
    ((_x[0], *_p), {}, ValueError, "x must have 4 dimensions"),
    ((torch.rand(2, 3, 0, 5), *_p), {}, ValueError, "at least one channel, row and column"),
    ((torch.rand(2, 4, 4, 5), *_p), {}, ValueError, "dw_weight must have shape \\(4, 1, 3, 3\\)"),
    ((_x, torch.rand(3, 1, 5, 5), *_p[1:]), {}, ValueError, "dw_weight must have shape"),
    ((_x, _p[0], torch.rand(4), *_p[2:]), {}, ValueError, "dw_bias must have shape"),
    ((_x, *_p[:2], torch.rand(4, 2, 1, 1), _p[3]), {}, ValueError, "pw_weight must have shape"),
    ((_x, *_p[:2], torch.rand(4, 3, 3, 3), _p[3]), {}, ValueError, "pw_weight must have shape"),
    ((_x, *_p[:2], torch.rand(4, 3), _p[3]), {}, ValueError, "pw_weight must have shape"),
    ((_x, *_p[:3], torch.rand(3)), {}, ValueError, "pw_bias must have shape"),
    ((_x, _p[0].to("meta"), *_p[1:]), {}, ValueError, "same device"),
]


@pytest.mark.parametrize("args,kwargs,exc,match", BAD)
@pytest.mark.parametrize("fn", [separable_conv, ref_sep], ids=["op", "reference"])
def test_bad_arguments(fn, args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fn(*args, **kwargs)


def test_binding_validates():
    x = np.random.rand(1, 3, 4, 5).astype(np.float32)
    dw, db = np.random.rand(3, 1, 3, 3).astype(np.float32), np.random.rand(3).astype(np.float32)
    pw, pb = np.random.rand(2, 3, 1, 1).astype(np.float32), np.random.rand(2).astype(np.float32)
    y = np.empty((1, 2, 4, 5), np.float32)
    _C.separable_conv_forward(y, x, None, dw, db, pw, pb, True)
    expect = ref_sep(*(torch.from_numpy(a) for a in (x, dw, db, pw, pb)), relu=True)
    torch.testing.assert_close(torch.from_numpy(y), expect)
    y2 = np.empty_like(y)
    _C.separable_conv_forward(y2, np.ascontiguousarray(x[:, :1]), np.ascontiguousarray(x[:, 1:]), dw, db, pw, pb,
                              True)
    assert np.array_equal(y, y2)
    with pytest.raises(TypeError, match="pw_w and x must have the same dtype"):
        _C.separable_conv_forward(y, x, None, dw, db, pw.astype(np.float64), pb, False)
    with pytest.raises(ValueError, match="dw_w: dimension 2 must be 3"):
        _C.separable_conv_forward(y, x, None, np.zeros((3, 1, 2, 3), np.float32), db, pw, pb, False)
    with pytest.raises(ValueError, match="dw_w: dimension 0 must be 4"):
        _C.separable_conv_forward(y, x, np.zeros((1, 1, 4, 5), np.float32), dw, db, pw, pb, False)
    with pytest.raises(ValueError, match="x2: dimension 2 must be 4"):
        _C.separable_conv_forward(y, x, np.zeros((1, 1, 3, 5), np.float32), dw, db, pw, pb, False)
    with pytest.raises(ValueError, match="y: dimension 1 must be 2"):
        _C.separable_conv_forward(np.empty((1, 3, 4, 5), np.float32), x, None, dw, db, pw, pb, False)
    with pytest.raises(ValueError, match="y must be C-contiguous"):
        _C.separable_conv_forward(np.empty((1, 2, 4, 10), np.float32)[..., ::2], x, None, dw, db, pw, pb, False)
    with pytest.raises(ValueError, match="y must not share memory with x"):
        _C.separable_conv_forward(x[:, :2], x, None, dw, db, pw, pb, False)
    gy = np.random.rand(1, 2, 4, 5).astype(np.float32)
    with pytest.raises(ValueError, match="y .the forward's output. is needed"):
        _C.separable_conv_backward(None, None, None, None, np.empty_like(pw), None, gy, None, x, None, dw, db, pw,
                                   True)
    with pytest.raises(ValueError, match="grad_x2 must be None when x2 is None"):
        _C.separable_conv_backward(None, np.empty_like(x), None, None, None, None, gy, y, x, None, dw, db, pw, True)
    with pytest.raises(ValueError, match="grad_x must not share memory with grad_y"):
        big = np.zeros((1, 3, 4, 5), np.float32)
        _C.separable_conv_backward(big, None, None, None, None, None, big[:, :2], None, x, None, dw, db, pw, False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("split", [(1, 2), (32, 32), (5, 27)])
@pytest.mark.parametrize("relu", [False, True])
def test_pair_input_is_the_concatenation(dtype, split, relu):
    # the pair (a, b) stands for cat([a, b], 1): same output and gradients as the concatenated input
    ca, cb = split
    a, b = torch.randn(2, ca, 11, 19, dtype=dtype), torch.randn(2, cb, 11, 19, dtype=dtype)
    params = _params(ca + cb, 6, dtype)
    g = torch.randn(2, 6, 11, 19, dtype=dtype)
    leaves = [t.clone().requires_grad_() for t in (a, b, *params)]
    y = separable_conv((leaves[0], leaves[1]), *leaves[2:], relu=relu)
    grads = torch.autograd.grad(y, leaves, g)
    cat = torch.cat([a, b], 1)
    y_cat, cat_grads = _run(separable_conv, cat, params, relu, g)
    assert torch.equal(y, y_cat)  # the kernel reads the same values in the same order
    assert torch.equal(torch.cat(grads[:2], 1), cat_grads[0])
    for u, v in zip(grads[2:], cat_grads[1:]):
        assert torch.equal(u, v)
    ry = ref_sep((a, b), *params, relu=relu)
    torch.testing.assert_close(y.detach(), ry, **_tol(dtype, ca + cb))


def test_pair_input_gradcheck():
    a = torch.randn(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(1, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    params = [p.requires_grad_() for p in _params(5, 2, torch.float64)]
    assert torch.autograd.gradcheck(lambda a, b, *p: separable_conv((a, b), *p), (a, b, *params))
    # only the second half needs a gradient
    assert torch.autograd.gradcheck(lambda b: separable_conv((a.detach(), b), *[p.detach() for p in params]), (b,))


PAIR_BAD = [
    (((_x,),), ValueError, "a pair of tensors"),
    (((_x, _x, _x),), ValueError, "a pair of tensors"),
    (((_x[:, :1], _x[:, 1:].double()),), TypeError, "x\\[1\\] and x\\[0\\] must have the same dtype"),
    (((_x[:, :1], torch.rand(2, 2, 4, 6)),), ValueError, "x\\[1\\] must have the batch size, height and width"),
    (((_x[:, :1], torch.rand(2, 3, 4, 5)),), ValueError, "dw_weight must have shape \\(4, 1, 3, 3\\)"),
    (((_x[:, :1], _x[:, 1:2]),), ValueError, "dw_weight must have shape \\(2, 1, 3, 3\\)"),
]


@pytest.mark.parametrize("x,exc,match", PAIR_BAD)
@pytest.mark.parametrize("fn", [separable_conv, ref_sep], ids=["op", "reference"])
def test_bad_pairs(fn, x, exc, match):
    with pytest.raises(exc, match=match):
        fn(x[0], *_p)
