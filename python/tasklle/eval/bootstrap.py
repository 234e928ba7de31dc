"""Bootstrap intervals over images: the resampling every tasklle table shares.

A claim about a group of images is as strong as its interval. Every interval
in tasklle resamples *images* (the unit the val split is drawn in) with
replacement, ``resamples`` times (default 1,000), from a seeded NumPy
generator, and reports the percentile interval of the statistic (default
95%: the 2.5th and 97.5th percentiles). Differences between two groups
evaluated on the same images are *paired*: both groups use the same resampled
images, so the interval is that of the difference itself.

A resample is held as a row of counts, ``weights[r, i]`` = how many times image
``i`` was drawn in resample ``r`` (a multinomial draw, rows summing to ``n``),
so any statistic that is a sum over images is one matrix product
(``weights @ per_image``), and every caller that passes the same
``(n, resamples, seed)`` gets the same resamples: a table's AP intervals,
quality intervals and differences all use one set.

Functions:
    resample_weights(n, resamples, seed) -> (R, n) int64 counts
    percentile_interval(samples, level) -> (lo, hi) along axis 0
    mean_interval(values, ...) -> (lo, hi) of the mean over images
    verdict(ci) -> "better (interval excludes 0)" / "worse (...)" / "not distinguishable"
"""
import numpy as np

__all__ = ["RESAMPLES", "LEVEL", "SEED", "resample_weights", "percentile_interval", "mean_interval", "verdict"]

RESAMPLES = 1000
LEVEL = 0.95
SEED = 0


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _check_level(level):
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)):
        raise TypeError(f"level must be a number, got {type(level).__name__}")
    if not (0.0 < float(level) < 1.0):
        raise ValueError(f"level must be in (0, 1), got {level}")
    return float(level)


def resample_weights(n, resamples=RESAMPLES, seed=SEED):
    """(resamples, n) int64: how often each of n images is drawn in each resample.

    Row r is one bootstrap sample of n images drawn with replacement
    (multinomial with equal probabilities, so every row sums to n). The same
    (n, resamples, seed) always gives the same matrix."""
    n = _check_int("n", n, 1)
    resamples = _check_int("resamples", resamples, 1)
    seed = _check_int("seed", seed, 0)
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.int64)


def percentile_interval(samples, level=LEVEL):
    """The (lo, hi) percentile interval of bootstrap ``samples`` along axis 0.

    samples: (R, ...) array; NaN samples (a statistic undefined on a resample,
    e.g. an AP with no counted face drawn) are left out; all-NaN gives NaN.
    Returns two arrays of the trailing shape (floats for 1-D input)."""
    level = _check_level(level)
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim == 0 or s.shape[0] == 0:
        raise ValueError(f"samples must have at least one resample along axis 0, got shape {s.shape}")
    alpha = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices give NaN, as documented
            lo = np.nanquantile(s, alpha, axis=0)
            hi = np.nanquantile(s, 1.0 - alpha, axis=0)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def mean_interval(values, resamples=RESAMPLES, seed=SEED, level=LEVEL, weights=None):
    """(lo, hi) bootstrap interval of the mean of per-image ``values`` (n,).

    weights: an (R, n) matrix from :func:`resample_weights` to reuse (then
    ``resamples`` and ``seed`` are not used); pass the same one to two calls
    on paired values of the same images, or use the differences' values."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty 1-D array of per-image values, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("values must be finite")
    if weights is None:
        weights = resample_weights(v.size, resamples, seed)
    w = np.asarray(weights)
    if w.ndim != 2 or w.shape[1] != v.size:
        raise ValueError(f"weights must be (R, {v.size}), got shape {w.shape}")
    means = (w @ v) / w.sum(axis=1)
    return percentile_interval(means, level)


def verdict(ci, higher="better", lower="worse"):
    """The wording a difference's interval supports: ``"<higher> (interval
    excludes 0)"`` when lo > 0, ``"<lower> (interval excludes 0)"`` when hi < 0,
    else ``"not distinguishable"`` (the interval holds 0, or is NaN)."""
    lo, hi = (float(x) for x in ci)
    if lo > 0:
        return f"{higher} (interval excludes 0)"
    if hi < 0:
        return f"{lower} (interval excludes 0)"
    return "not distinguishable"
