"""The shared binding checks (csrc/python/bind_common.c): native byte order,
outputs never overlapping inputs, integer scalars as TypeError/ValueError
naming them (never OverflowError), the curve's iteration bound and a curve
call that a signal interrupts. The fuzz suite (tests/fuzz) covers every
function; these are the issue's cases, spelled out."""
import signal

import numpy as np
import pytest
import torch

from tasklle import _C, ops
from tasklle.reference.curve import MAX_ITERATIONS


def _box(n=1):
    return np.tile(np.array([[1.0, 2.0, 11.0, 14.0]]), (n, 1))


def test_big_endian_is_refused_not_misread():
    a = _box()
    out = np.empty((1, 1))
    _C.boxes_iou(out, a, a)
    assert out[0, 0] == 1.0
    with pytest.raises(TypeError, match="a must have native byte order"):
        _C.boxes_iou(out, a.astype(">f8"), a)
    with pytest.raises(TypeError, match="out must have native byte order"):
        _C.boxes_iou(np.empty((1, 1), ">f8"), a, a)


def test_every_function_refuses_an_overlapping_output():
    b = _box(4)
    buf = np.zeros(64)
    cases = [
        lambda: _C.boxes_iou(buf[:16].reshape(4, 4), buf[:16].reshape(4, 4), b),
        lambda: _C.boxes_diou_forward(buf[:4], buf[:16].reshape(4, 4), b, None, 1e-6),
        lambda: _C.boxes_diou_backward(buf[:16].reshape(4, 4), None, None, buf[8:24].reshape(4, 4), b, None, 1.0,
                                       1e-6),
        lambda: _C.boxes_diou_backward(buf[:16].reshape(4, 4), buf[8:24].reshape(4, 4), None, b, b, None, 1.0, 1e-6),
        lambda: _C.boxes_nms(buf[:4].view(np.int64), buf[:16].reshape(4, 4), np.ones(4), 0.5),
        lambda: _C.assign_max_iou(np.empty(4, np.int64), buf[:4], buf[:16].reshape(4, 4), b, None, 0.3, 0.3, 0.3,
                                  True, True),
        lambda: _C.zerodce_loss_tv_forward(buf[:1], None, buf[:16].reshape(1, 1, 4, 4), 1.0),
        lambda: _C.zerodce_loss_backward(buf[:48].reshape(1, 3, 4, 4), None, buf[:1].reshape(1, 1, 1), None, None,
                                         4, 4, 1.0, 0.0, 0.0),
        lambda: _C.wider_eval_forward(buf[:2].view(np.int64).reshape(1, 1, 2), buf[:5].reshape(1, 5),
                                      np.array([0, 1]), np.zeros((1, 4)), np.array([0, 1]),
                                      np.ones((1, 1), np.uint8), 0.0, 1.0, 0.5),
        lambda: _C.wider_eval_per_image(buf[:2].view(np.int64).reshape(1, 1, 1, 2), buf[:5].reshape(1, 5),
                                        np.array([0, 1]), np.zeros((1, 4)), np.array([0, 1]),
                                        np.ones((1, 1), np.uint8), 0.0, 1.0, 0.5),
    ]
    for k, call in enumerate(cases):
        with pytest.raises(ValueError, match="must not share memory with"):
            call()


@pytest.mark.parametrize("bad", [0, MAX_ITERATIONS + 1, 2**31, 2**63, 10**30, -2**70])
def test_iterations_out_of_range_is_a_value_error(bad):
    x, A = torch.rand(1, 3, 4, 4), -torch.rand(1, 3, 4, 4)
    with pytest.raises(ValueError, match="iterations"):
        ops.curve(x, A, iterations=bad)
    xn, An = x.numpy(), A.numpy()
    with pytest.raises(ValueError, match="iterations"):
        _C.curve_forward(np.empty_like(xn), None, xn, An, bad, 0)


def test_integer_scalars_never_overflow_error():
    y = np.random.rand(1, 3, 16, 16)
    args = [np.zeros(3), np.empty((1, 4, 4)), None, None, y, y.copy(), None]
    for name, pos, bad in [("spa_pool", 7, 2**64), ("exp_pool", 8, 2**64), ("terms", 9, 2**32 + 1),
                           ("terms", 9, -1)]:
        call = args + [4, 16, 1]
        call[pos] = bad
        with pytest.raises(ValueError, match=name):
            _C.zerodce_loss_forward(*call)
    with pytest.raises(TypeError, match="iterations must be an int"):
        _C.curve_forward(np.empty((1, 3, 2, 2)), None, np.zeros((1, 3, 2, 2)), np.zeros((1, 3, 2, 2)), 8.0, 4)
    with pytest.raises(ValueError, match="n must be in"):
        _C.set_num_threads(2**70)
    with pytest.raises(ValueError, match="eps is too large"):
        _C.boxes_diou_forward(None, _box(), _box(), None, 10**400)


def test_curve_call_is_interrupted_by_a_signal():
    """A Python signal handler runs between the batch chunks of a long curve call:
    the call stops early (later batch items are never written) instead of
    finishing first."""
    x = np.random.rand(512, 3, 64, 64).astype(np.float32)
    A = -np.random.rand(512, 3, 64, 64).astype(np.float32)
    out = np.full_like(x, np.nan)
    assert _interrupt(lambda: _C.curve_forward(out, None, x, A, MAX_ITERATIONS, 0), after=0.005)
    assert np.isnan(out[-1]).all()  # the last chunk never ran
    assert not np.isnan(out[0]).any()  # the first one did


def _interrupt(call, after=0.02):
    """Run call with a SIGALRM handler raising Stop ``after`` seconds in; True when Stop came out of it."""

    class Stop(Exception):
        pass

    def handler(signum, frame):
        raise Stop

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, after)
        try:
            call()
        except Stop:
            return True
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_nms_and_assign_are_interrupted_by_a_signal():
    """The kernels whose work grows faster than their input (NMS: n^2 IoUs,
    assignment: anchors x gts) poll for signals between blocks: the call stops
    midway (outputs not all written) instead of running to the end first."""
    n = 20000
    x = np.arange(n, dtype=np.float64)[:, None] * 10
    boxes = np.concatenate([x, 0 * x, x + 5, 0 * x + 5], 1)  # disjoint: nothing suppressed, n^2/2 IoUs
    keep = np.full(n, -1, np.int64)
    assert _interrupt(lambda: _C.boxes_nms(keep, boxes, np.linspace(1, 0, n), 0.5))
    assert keep[-1] == -1  # stopped before the last box was kept

    rng = np.random.default_rng(0)
    anchors = rng.uniform(0, 100, (200000, 4))
    anchors[:, 2:] += anchors[:, :2]
    max_iou = np.full(len(anchors), np.nan)
    assert _interrupt(lambda: _C.assign_max_iou(np.empty(len(anchors), np.int64), max_iou, anchors,
                                                anchors[:2000].copy(), None, 0.35, 0.35, 0.35, True, True))
    assert np.isnan(max_iou).any()  # blocks after the stop were never computed
