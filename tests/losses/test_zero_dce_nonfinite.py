"""The non-finite rule of the Zero-DCE losses (tasklle.reference.zerodce_loss
docstring): the C core and the twin give NaN / +inf / -inf in the same terms
and the same gradient elements for NaN and infinities anywhere in enhanced,
original or the curve maps."""
import random

import pytest
import torch

from tasklle.ops import zero_dce_losses

_BAD = (float("nan"), float("inf"), float("-inf"))


def _pattern(t):
    """Where t is NaN, +inf, -inf (the finite values are compared elsewhere)."""
    return torch.stack((t.isnan(), t == float("inf"), t == float("-inf")))


def _run(impl, y, i, a):
    yy, ii, aa = (t.clone().requires_grad_() for t in (y, i, a))
    total, terms = zero_dce_losses(yy, ii, aa, impl=impl)
    total.backward()
    return [total.detach()] + [v.detach() for v in terms.values()] + [yy.grad, ii.grad, aa.grad]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_nonfinite_same_pattern_as_twin(dtype):
    rng = random.Random(7)
    gen = torch.Generator().manual_seed(3)
    for trial in range(120):
        b, h, w = rng.choice([(1, 32, 32), (2, 16, 20), (1, 17, 33)])
        y = torch.rand(b, 3, h, w, dtype=dtype, generator=gen)
        i = torch.rand(b, 3, h, w, dtype=dtype, generator=gen)
        a = torch.rand(b, 24, h, w, dtype=dtype, generator=gen)
        for _ in range(rng.randint(1, 3)):
            t = rng.choice((y, i, a))
            t[rng.randrange(b), rng.randrange(t.shape[1]), rng.randrange(h), rng.randrange(w)] = rng.choice(_BAD)
        c, r = _run("c", y, i, a), _run("reference", y, i, a)
        for k, (u, v) in enumerate(zip(c, r)):
            assert torch.equal(_pattern(u), _pattern(v)), (trial, k)
            fin = torch.isfinite(u) & torch.isfinite(v)
            torch.testing.assert_close(u[fin], v[fin], rtol=1e-4, atol=1e-6)


def test_inf_in_original_gives_inf_not_nan():
    # the documented rule on the smallest case: one infinite pixel in `original`
    y = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    i = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    i[0, 1, 5, 6] = float("inf")
    for impl in ("c", "reference"):
        yy = y.clone().requires_grad_()
        _, terms = zero_dce_losses(yy, i, None, terms=("spa",), impl=impl)
        assert terms["spa"].item() == float("inf")
        terms["spa"].backward()
        # the cell of the pixel and its four neighbours: infinite gradient, never NaN
        assert not yy.grad.isnan().any()
        assert int(yy.grad.isinf().sum()) == 5 * 16 * 3
