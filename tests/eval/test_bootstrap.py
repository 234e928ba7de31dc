"""The shared bootstrap: resample weights, percentile and mean intervals, verdicts."""
import numpy as np
import pytest

from tasklle.eval import bootstrap as bs


def test_weights_are_seeded_multinomial_rows():
    w = bs.resample_weights(7, resamples=50, seed=3)
    assert w.shape == (50, 7) and w.dtype == np.int64
    assert (w.sum(axis=1) == 7).all() and (w >= 0).all()
    assert np.array_equal(w, bs.resample_weights(7, resamples=50, seed=3))
    assert not np.array_equal(w, bs.resample_weights(7, resamples=50, seed=4))


def test_mean_interval_matches_explicit_resampling():
    rng = np.random.default_rng(0)
    v = rng.normal(size=25)
    w = bs.resample_weights(25, resamples=400, seed=1)
    # the same resamples written out as index draws
    means = np.array([np.repeat(v, row).mean() for row in w])
    lo, hi = bs.mean_interval(v, weights=w)
    assert lo == pytest.approx(np.quantile(means, 0.025), abs=1e-12)
    assert hi == pytest.approx(np.quantile(means, 0.975), abs=1e-12)
    assert lo < v.mean() < hi


def test_interval_narrows_with_more_images():
    rng = np.random.default_rng(1)
    small = bs.mean_interval(rng.normal(size=20), seed=0)
    large = bs.mean_interval(rng.normal(size=2000), seed=0)
    assert (large[1] - large[0]) < (small[1] - small[0]) / 4


def test_percentile_interval_skips_nan_and_keeps_shape():
    s = np.array([[1.0, np.nan], [2.0, np.nan], [3.0, np.nan]])
    lo, hi = bs.percentile_interval(s, level=0.5)
    assert lo.shape == (2,) and lo[0] == pytest.approx(1.5) and hi[0] == pytest.approx(2.5)
    assert np.isnan(lo[1]) and np.isnan(hi[1])


def test_verdict_follows_the_interval():
    assert bs.verdict((0.01, 0.2)) == "better (interval excludes 0)"
    assert bs.verdict((-0.2, -0.01)) == "worse (interval excludes 0)"
    assert bs.verdict((-0.01, 0.2)) == "not distinguishable"
    assert bs.verdict((float("nan"), float("nan"))) == "not distinguishable"


@pytest.mark.parametrize("kw, exc", [
    (dict(n=0), ValueError), (dict(n=2.5), TypeError), (dict(n=3, resamples=0), ValueError),
    (dict(n=3, seed=-1), ValueError), (dict(n=True), TypeError)])
def test_bad_weight_arguments(kw, exc):
    with pytest.raises(exc):
        bs.resample_weights(**kw)


def test_bad_values_and_level():
    with pytest.raises(ValueError, match="values"):
        bs.mean_interval([])
    with pytest.raises(ValueError, match="finite"):
        bs.mean_interval([1.0, np.nan])
    with pytest.raises(ValueError, match="weights"):
        bs.mean_interval([1.0, 2.0], weights=np.ones((3, 4)))
    with pytest.raises(ValueError, match="level"):
        bs.percentile_interval(np.ones(3), level=1.5)
