"""Sensor noise: LEDNet's model (parameters of REFERENCE §3) and the physical model."""
import math

import pytest
import torch

from tasklle.noise import add_noise, generator_for, lednet_noise, physical_noise


def _levels_image(levels, h=64, w=64):
    """(3, h, w) image with exactly `levels` distinct 8-bit values (a ramp)."""
    idx = torch.arange(h * w * 3) % levels
    return (idx.float() + 10).reshape(3, h, w) / 255.0


def test_lednet_is_deterministic_per_seed():
    x = torch.rand(3, 24, 31) * 0.3
    a, pa = add_noise(x, "lednet", seed=7)
    b, pb = add_noise(x, "lednet", seed=7)
    c, _ = add_noise(x, "lednet", seed=8)
    assert torch.equal(a, b) and pa == pb
    assert not torch.equal(a, c)
    d, pd = lednet_noise(x, generator_for(7))
    assert torch.equal(a, d) and pa == pd


def test_lednet_parameter_distribution():
    x = torch.full((3, 4, 4), 0.3)
    params = [add_noise(x, "lednet", seed=s)[1] for s in range(600)]
    gauss = [p for p in params if p["type"] == "gaussian"]
    pois = [p for p in params if p["type"] == "poisson"]
    # p = 0.5 Gaussian, 0.3 grey: binomial std for n=600 is 0.02, allow 4 std
    assert abs(len(gauss) / 600 - 0.5) < 0.08
    assert abs(sum(p["gray"] for p in params) / 600 - 0.3) < 0.08
    sig = [p["sigma"] for p in gauss]
    sc = [p["scale"] for p in pois]
    assert 0 <= min(sig) and max(sig) <= 8 and max(sig) > 7 and min(sig) < 1
    assert 0.1 <= min(sc) and max(sc) <= 1.2 and max(sc) > 1.1 and min(sc) < 0.2


def _find_seed(want):
    x = torch.full((3, 2, 2), 0.5)
    for s in range(1000):
        p = add_noise(x, "lednet", seed=s)[1]
        if all(p[k] == v for k, v in want.items()):
            return s
    raise AssertionError(f"no seed gives {want}")


@pytest.mark.parametrize("kind", ["gaussian", "poisson"])
def test_grey_noise_is_the_same_on_all_channels(kind):
    x = _levels_image(100)  # away from 0 and 1: no clipping
    x[:] = x[0:1]  # same image on the three channels
    s = _find_seed({"type": kind, "gray": True})
    y, p = add_noise(x, "lednet", seed=s)
    n = y - x
    assert p["gray"] and torch.allclose(n[0], n[1]) and torch.allclose(n[0], n[2])
    s = _find_seed({"type": kind, "gray": False})
    y, _ = add_noise(x, "lednet", seed=s)
    n = y - x
    assert not torch.allclose(n[0], n[1])


def test_gaussian_noise_level_matches_sigma():
    x = torch.full((3, 128, 128), 0.5)
    s = _find_seed({"type": "gaussian", "gray": False})
    y, p = add_noise(x, "lednet", seed=s)
    std = (y - x).std().item()
    assert std == pytest.approx(p["sigma"] / 255.0, rel=0.05)


def test_poisson_vals_and_level():
    # 50 distinct 8-bit levels -> vals = 2**ceil(log2(50)) = 64; noise var = q / vals * scale^2
    x = _levels_image(50, 128, 128)
    s = _find_seed({"type": "poisson", "gray": False})
    y, p = add_noise(x, "lednet", seed=s)
    assert p["vals"] == 64
    expected = math.sqrt(x.mean().item() / 64) * p["scale"]
    assert (y - x).std().item() == pytest.approx(expected, rel=0.1)


def test_output_is_clipped():
    x = torch.cat([torch.zeros(3, 16, 16), torch.ones(3, 16, 16)], 1)
    for s in range(20):
        y, _ = add_noise(x, "lednet", seed=s)
        assert y.min() >= 0 and y.max() <= 1
        y, _ = add_noise(x, "physical", seed=s)
        assert y.min() >= 0 and y.max() <= 1


def test_physical_model():
    x = torch.full((3, 96, 96), 0.2)
    a, pa = add_noise(x, "physical", seed=3)
    b, pb = physical_noise(x, generator_for(3))
    assert torch.equal(a, b) and pa == pb and pa["kind"] == "physical"
    assert 200 <= pa["white_level"] <= 5000 and 0.5 <= pa["read_noise"] <= 5
    # fewer electrons -> more noise; the mean is kept (shot noise is unbiased in linear space)
    lo, _ = add_noise(x, "physical", seed=3, white_level=300.0, read_noise=2.0)
    hi, _ = add_noise(x, "physical", seed=3, white_level=30000.0, read_noise=2.0)
    assert (lo - x).std() > 3 * (hi - x).std()
    assert lo.mean().item() == pytest.approx(0.2, abs=0.01)
    # read noise alone on a black image
    black = torch.zeros(3, 64, 64)
    y, p = add_noise(black, "physical", seed=1, white_level=1000.0, read_noise=0.0)
    assert torch.equal(y, black) and p["read_noise"] == 0.0


def test_none_and_errors():
    x = torch.rand(3, 8, 8)
    y, p = add_noise(x, None)
    assert y is x and p == {"kind": None}
    with pytest.raises(ValueError, match="kind"):
        add_noise(x, "speckle")
    with pytest.raises(ValueError, match="shape"):
        add_noise(torch.rand(1, 3, 8, 8), "lednet", seed=0)
    with pytest.raises(TypeError, match="image"):
        add_noise(x.numpy(), "lednet", seed=0)
    with pytest.raises(ValueError, match="seed"):
        add_noise(x, "lednet", seed=-1)
    with pytest.raises(TypeError, match="generator"):
        add_noise(x, "lednet", generator=3)
    with pytest.raises(ValueError, match="white_level"):
        add_noise(x, "physical", seed=0, white_level=-5)
    with pytest.raises(TypeError, match="lednet"):
        add_noise(x, "lednet", seed=0, sigma=3)
