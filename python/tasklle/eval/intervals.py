"""Bootstrap intervals of WIDER FACE AP over val images, through the C evaluator.

Usage::

    from tasklle.eval import intervals
    b = intervals.bootstrap(predictions, gt_dir)          # 1,000 seeded resamples of the images
    b["hard"]                 # (lo, hi): the 95% percentile interval of hard AP
    b["ap"]["hard"]           # the point AP (equal to wider.evaluate's)
    b["samples"]["hard"]      # (R,) AP of every resample, for paired comparisons
    d = intervals.paired_difference(pred_a, pred_b, gt_dir)
    d["hard"]                 # {'delta': AP_a - AP_b, 'ci': [lo, hi], 'verdict': 'better (interval excludes 0)'}

How it works. A resample draws the val images with replacement
(:func:`tasklle.eval.bootstrap.resample_weights`: row r holds how often each
image is drawn). AP is a function of the dataset PR sums (counted proposals
and recalled faces per threshold) and of the counted faces, and both are sums
over images. So the matching runs once, per image
(``tasklle.ops.wider_pr_counts(..., per_image=True)``, the C core), and a
resample's sums are ``weights[r] @ per_image_counts``: exactly the sums
``wider.evaluate`` would get on the resampled image list with duplicated
images as distinct entries. Its AP comes from those sums through
``wider``'s own formula (vectorised over resamples). The per-image counts are
made in chunks of images, so the full WIDER val set (3,226 images, 3 settings,
1,000 thresholds, 1,000 resamples) needs about 150 MB and about 2 s on 2 CPU
cores (``benchmarks/bench_wider_eval.py``).

The score normalisation is not redone per resample. The protocol maps raw
scores to [0, 1] with (s - min) / (max - min) over all predictions, and the
1,000 thresholds live on that scale. Here min and max are fixed once, from
every prediction of the evaluated set, and every resample uses them. That is
the right choice for three reasons: (1) the bootstrap asks how AP varies with
*which images* the val set happens to hold, while the threshold grid is part
of the measuring instrument (like the IoU threshold), fixed by the detector's
score range and not a statistic of the images drawn; redoing it would add
the jitter of two extreme scores to every interval; (2) with a fixed grid a
resample's counts are the re-weighted per-image counts, so one matching pass
serves every resample (redoing it means matching every image again for each
of the 1,000 resamples); (3) the two groups of a paired difference are
resampled on the same images with their own fixed grids, so the difference
measures the groups, not a shift of a grid. A resample that happens to draw
the images holding the extreme scores gives exactly ``wider.evaluate`` on the
resampled list (the tests check it); others differ from it only by that
grid shift.

Functions:
    bootstrap(predictions, gt, resamples, seed, level, ...) -> {setting: (lo, hi), 'ap', 'samples', ...}
    difference(boot_a, boot_b, level=None) -> {setting: {'delta', 'ci', 'verdict'}}
    paired_difference(pred_a, pred_b, gt, ...) -> the same, from predictions
"""
import hashlib

import numpy as np

from ..data.wider_format import SETTINGS
from ..data.wider_format import check_settings as _check_settings
from . import wider
from .bootstrap import LEVEL, RESAMPLES, SEED, _check_int, _check_level, percentile_interval, resample_weights
from .bootstrap import verdict as _verdict

__all__ = ["bootstrap", "difference", "paired_difference", "CHUNK"]

ROUNDING = 1e-12  # per-resample AP differences below this are float rounding, taken as 0
CHUNK = 512  # images per per-image call: (CHUNK, S, T, 2) int64 is 25 MB at S = 3, T = 1000


def _weights_matrix(weights, n):
    w = np.asarray(weights)
    if w.ndim != 2 or w.shape[1] != n or w.shape[0] < 1:
        raise ValueError(f"weights must be (resamples, {n}) counts, got shape {w.shape}")
    if w.dtype.kind not in "iu" or (w < 0).any():
        raise ValueError("weights must hold non-negative integer counts (resample_weights makes them)")
    return w


def _exact_dtype(weights, max_count):
    """float32 when ``weights @ counts`` is exact in it, else float64.

    Every partial sum of the non-negative products is at most (largest row
    sum of weights) * (largest count); below 2**24 every such integer is a
    float32, so BLAS's float32 product (about twice as fast) is exact, in any
    summation order. float64 is exact below 2**53."""
    bound = float(np.asarray(weights).sum(axis=1).max()) * float(max_count)
    return np.float32 if bound < 2.0 ** 24 else np.float64


def _ap(sums, faces):
    """(...) AP from resampled sums (..., T, 2) and faces (...), with wider's formula."""
    return wider._ap_from_sums(sums[..., 0], sums[..., 1], faces)[2]


def bootstrap(predictions, gt, resamples=RESAMPLES, seed=SEED, level=LEVEL, *, settings=SETTINGS, iou_thresh=0.5,
              weights=None, impl="auto", chunk=CHUNK):
    """Percentile bootstrap intervals of AP per setting, resampling the images.

    Args:
        predictions, gt: as for :func:`tasklle.eval.wider.evaluate` (a
            prediction folder or mapping; a gt folder or ``GroundTruth``).
        resamples, seed: the resampling (:func:`tasklle.eval.bootstrap.resample_weights`
            over the gt's images); every call with the same gt, resamples and
            seed draws the same images, so two groups' samples are paired.
        level: the interval's coverage (0.95: the 2.5th and 97.5th percentiles).
        settings, iou_thresh, impl: as for ``evaluate``.
        weights: an (R, I) matrix of draw counts to use instead of
            (resamples, seed).
        chunk: images per per-image evaluation call (memory: chunk * S * T * 2 words).

    Returns:
        {setting: (lo, hi), 'ap': {setting: point AP (== evaluate's)},
        'samples': {setting: (R,) float64 AP per resample (NaN where a resample
        draws no counted face)}, 'level', 'resampling': {'unit': 'val images',
        'n_images', 'resamples', 'seed'} (explicit weights: seed None and
        their 'weights_sha256', so :func:`difference` can check the pairing)}.
    """
    from ..ops._common import check_impl
    from ..ops.wider_eval import wider_pr_counts
    from ..reference.wider_eval import check_iou_thresh, check_score_range

    settings = _check_settings(settings)
    check_impl(impl)
    iou_thresh = check_iou_thresh(iou_thresh)
    level = _check_level(level)
    chunk = _check_int("chunk", chunk, 1)
    gt = wider._resolve_gt(gt, settings)
    n = gt.n_images
    if weights is None:
        weights = resample_weights(n, resamples, seed)
        resampling = {"unit": "val images", "n_images": n, "resamples": int(resamples), "seed": int(seed)}
    else:
        weights = _weights_matrix(weights, n)
        digest = hashlib.sha256(np.ascontiguousarray(weights, dtype=np.int64).tobytes()).hexdigest()[:16]
        resampling = {"unit": "val images", "n_images": n, "resamples": len(weights), "seed": None,
                      "weights_sha256": digest}
    pred, offsets, _ = wider._gather(predictions, gt)
    counted = np.stack([gt.counted[s] for s in settings])
    faces = np.stack([np.diff(gt.keep[s][1]) for s in settings], axis=1)  # (I, S) len(gt_list) per image
    score_range = check_score_range(None, pred)  # the whole set's normalisation, fixed for every chunk
    T = wider.THRESH_NUM
    S = len(settings)
    R = len(weights)
    go = gt.offsets
    # a count of an image is at most its predictions (proposals) or its faces (recalled, counted)
    max_count = max(int(np.diff(offsets).max(initial=0)), int(np.diff(go).max(initial=0)))
    dtype = _exact_dtype(weights, max_count)
    w = np.asarray(weights, dtype=dtype)
    sums = np.zeros((R, S * T * 2), dtype=dtype)
    point = np.zeros((S, T, 2), dtype=np.int64)
    for i0 in range(0, n, chunk):
        i1 = min(n, i0 + chunk)
        rows = wider_pr_counts(pred[offsets[i0]:offsets[i1]], offsets[i0:i1 + 1] - offsets[i0],
                               gt.boxes[go[i0]:go[i1]], go[i0:i1 + 1] - go[i0], counted[:, go[i0]:go[i1]],
                               iou_thresh, T, impl=impl, per_image=True, score_range=score_range)
        sums += w[:, i0:i1] @ rows.reshape(i1 - i0, -1).astype(dtype)  # exact: see _exact_dtype
        point += rows.sum(axis=0)
    sums = sums.reshape(R, S, T, 2)
    face_sums = w @ faces.astype(dtype)  # (R, S)
    # AP a setting at a time (memory), from float64 copies of the exact integer sums
    samples = np.stack([_ap(sums[:, k].astype(np.float64), face_sums[:, k].astype(np.float64))
                        for k in range(S)], axis=1)  # (R, S)
    point_ap = _ap(point[None], faces.sum(axis=0)[None])[0]
    result = {}
    for k, s in enumerate(settings):
        result[s] = percentile_interval(samples[:, k], level)
    result["ap"] = {s: float(point_ap[k]) for k, s in enumerate(settings)}
    result["samples"] = {s: samples[:, k].copy() for k, s in enumerate(settings)}
    result["level"] = level
    result["resampling"] = resampling
    return result


def difference(boot_a, boot_b, level=None, higher="better", lower="worse"):
    """Paired intervals of AP(a) - AP(b) from two :func:`bootstrap` results on
    the same resamples (same gt images, resamples and seed).

    Returns {setting: {'delta': point AP(a) - AP(b), 'ci': [lo, hi] (the
    percentile interval of the per-resample differences), 'verdict':
    :func:`tasklle.eval.bootstrap.verdict` of the interval}} for the settings
    both hold. level: default the bootstraps' own."""
    for name, b in (("boot_a", boot_a), ("boot_b", boot_b)):
        if not (isinstance(b, dict) and "samples" in b and "resampling" in b):
            raise TypeError(f"{name} must be a bootstrap() result")
    if boot_a["resampling"] != boot_b["resampling"]:
        raise ValueError("boot_a and boot_b must come from the same resampling (same gt images, resamples and "
                         f"seed), got {boot_a['resampling']} and {boot_b['resampling']}")
    level = boot_a["level"] if level is None else _check_level(level)
    out = {}
    for s in boot_a["samples"]:
        if s not in boot_b["samples"]:
            continue
        diff = boot_a["samples"][s] - boot_b["samples"][s]
        # two APs equal in exact arithmetic but summed from different counts can differ by a rounding
        # error (~1e-16); such a difference is no evidence either way, so it counts as 0
        diff = np.where(np.abs(diff) < ROUNDING, 0.0, diff)
        lo, hi = percentile_interval(diff, level)
        ci = [float(lo), float(hi)]
        delta = float(boot_a["ap"][s] - boot_b["ap"][s])
        out[s] = {"delta": 0.0 if abs(delta) < ROUNDING else delta, "ci": ci,
                  "verdict": _verdict(ci, higher, lower)}
    return out


def paired_difference(pred_a, pred_b, gt, resamples=RESAMPLES, seed=SEED, level=LEVEL, **kwargs):
    """{setting: {'delta', 'ci', 'verdict'}} of AP(a) - AP(b), both groups on
    the same resampled images (see :func:`difference`); kwargs as for
    :func:`bootstrap` (settings, iou_thresh, impl, chunk)."""
    gt = wider._resolve_gt(gt, _check_settings(kwargs.get("settings", SETTINGS)))
    a = bootstrap(pred_a, gt, resamples, seed, level, **kwargs)
    b = bootstrap(pred_b, gt, resamples, seed, level, **kwargs)
    return difference(a, b)
