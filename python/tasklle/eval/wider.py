"""The WIDER FACE evaluation (easy / medium / hard AP), as the official tools compute it.

Usage::

    from tasklle.eval import wider
    result = wider.evaluate(pred_dir_or_mapping, "data/wider_face_split")
    result["easy"], result["medium"], result["hard"]    # float AP
    result["curves"]["hard"]["recall"], ...["precision"]  # (1000,) PR curves
    wider.plot_pr_curves({"ours": result}, "pr.png")

Predictions are a folder in the official format (one folder per event, one
``<image>.txt`` per image: the image name, the box count, then ``x y w h score``
lines) or a mapping ``{(event, image_name): (K, 5) array x, y, w, h, score}``
(image names without ``.jpg``, exactly as in ``file_list``).

The ground-truth folder holds ``wider_face_val.mat`` (event_list, file_list,
face_bbx_list as x y w h) and ``wider_{easy,medium,hard}_val.mat`` whose
``gt_list`` holds, per image, the 1-based indices of the faces that count in
that setting; every other face is "ignore". Reading and writing these files
and prediction folders is ``tasklle.data.wider_format`` (``read_predictions``
and ``write_predictions`` are reachable here too, where the notebooks use them).

The protocol (official MATLAB eval_tools ``wider_eval.m``; the common Python
port "WiderFace-Evaluation" agrees except where noted):

1. Each image's predictions are sorted by descending score (stable, like
   MATLAB's ``sort(..., 'descend')``); scores are normalised once over all
   predictions of all ground-truth images, (s - min) / (max - min).
2. Per setting and image, the number of counted faces (``len(gt_list)``) is
   added to the total even when the image is then skipped; images with no gt
   box or no prediction are skipped.
3. x2 = x + w, y2 = y + h; IoU with the +1 pixel convention
   (iw = min(x2) - max(x1) + 1).
4. Each prediction in order takes the gt of largest IoU (ignored faces
   included, first index on ties). At IoU >= 0.5 an ignored gt makes the
   prediction "not counted"; an unmatched counted gt becomes recalled; an
   already recalled gt leaves the prediction a false positive.
5. For t = 1..1000, thresh = 1 - t/1000, r = the last prediction with
   normalised score >= thresh; (counted proposals in 0..r, recalled faces
   after r) is added to the dataset sums.
6. precision = TP / proposals, recall = TP / counted faces; AP is VOC-style:
   sentinels, monotone precision envelope, sum of delta-recall x precision.

Details where implementations differ, and what this one does:

- Min and max of the normalisation are the plain min and max over all
  predictions. MATLAB starts them at realmax/realmin('single') (which makes
  its arithmetic single precision); the Python port starts them at 1 and 0.
  All three agree for scores in [0, 1] up to MATLAB's float32 rounding; we
  compute in float64 like the port. When every score is equal the official
  tools divide by zero (NaN scores, AP 0); here every normalised score is 1.
- Precision where no counted proposal is kept (0 / 0) is NaN in the returned
  curves. It only occurs at recall 0, where it cannot change the AP (MATLAB's
  ``max`` skips NaN in the envelope; NumPy's would spread it into the unused
  first sentinel), so both tools give the same AP as this one.
- Predictions are sorted by score per image as MATLAB's read_pred does; the
  Python port keeps the file order (it assumes sorted files). The order of
  tied scores never changes the result (tied predictions enter together).
- A missing prediction file (or mapping entry) means "no detections" for that
  image, as in MATLAB's ``read_pred`` (the Python port raises instead); one
  ``MissingPredictionsWarning`` says how many. Files of images that are not in
  the ground truth are never read, as in MATLAB.
- A malformed prediction file raises ValueError naming the file and line
  (MATLAB prints "Invalid format" and drops the image).
- AP is NaN (with a warning) for a setting that counts no face at all.

The per-image matching and PR accumulation is the op
``tasklle.ops.wider_pr_counts`` (C core, OpenMP over images, float64, integer
sums: results do not depend on the thread count; ``impl='reference'`` runs its
literal NumPy twin in ``tasklle.reference.wider_eval``). This module turns
its sums into precision, recall and AP, and plots the curves.
"""
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..data.wider_format import SETTINGS, GroundTruth, load_ground_truth, prediction_array, read_prediction_file
from ..data.wider_format import check_settings as _check_settings
# documented here for the notebooks; the format module is their home
from ..data.wider_format import read_predictions, write_predictions  # noqa: F401

__all__ = [
    "SETTINGS",
    "THRESH_NUM",
    "MissingPredictionsWarning",
    "evaluate",
    "read_predictions",
    "write_predictions",
    "plot_pr_curves",
    "result_to_json",
]

THRESH_NUM = 1000


class MissingPredictionsWarning(UserWarning):
    """Some ground-truth images have no prediction file / mapping entry."""


# ----------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------

def _pack(predictions, gt):
    """Predictions of every gt image, in gt order: (P, 5) float64 and (I+1,) offsets.
    Returns (pred, offsets, missing keys, n_extra)."""
    keys = gt.keys()
    arrays, counts, missing = [], np.zeros(gt.n_images, dtype=np.int64), []
    n_extra = 0
    if isinstance(predictions, (str, os.PathLike)):
        folder = Path(predictions)
        if not folder.is_dir():
            raise FileNotFoundError(f"prediction folder not found: {folder}")
        for i, (event, name) in enumerate(keys):
            f = folder / event / f"{name}.txt"
            try:
                a = read_prediction_file(f)
            except FileNotFoundError:
                missing.append((event, name))
                continue
            counts[i] = len(a)
            if len(a):
                arrays.append(a)
    elif isinstance(predictions, Mapping):
        get = predictions.get
        found = 0
        for i, key in enumerate(keys):
            arr = get(key)
            if arr is None:
                missing.append(key)
                continue
            found += 1
            a = prediction_array(arr, key)
            counts[i] = len(a)
            if len(a):
                arrays.append(a)
        if len(predictions) > found:
            bad = [k for k in predictions if not (isinstance(k, tuple) and len(k) == 2)]
            if bad:
                raise TypeError(f"prediction keys must be (event, name) tuples, got {bad[0]!r}")
            n_extra = len(predictions) - found
    else:
        raise TypeError("predictions must be a prediction folder or a mapping {(event, name): (K, 5) array}, "
                        f"got {type(predictions).__name__}")
    pred = np.ascontiguousarray(np.concatenate(arrays)) if arrays else np.zeros((0, 5))
    offsets = np.zeros(gt.n_images + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    finite = np.isfinite(pred)
    if not finite.all():
        row = int(np.nonzero(~finite.all(axis=1))[0][0])
        i = int(np.searchsorted(offsets, row, side="right") - 1)
        raise ValueError(f"predictions for {keys[i]} contain NaN or infinity")
    return pred, offsets, missing, n_extra


def _voc_ap(recall, precision):
    """VOC AP with sentinels and the monotone envelope (NaN precision skipped, as MATLAB's max does).

    recall, precision: (..., T) -> AP (...) float64 (a float for 1-D input);
    the bootstrap (``tasklle.eval.intervals``) runs it on (R, S, T) at once
    and ``evaluate`` on one curve, so both give the same AP for the same sums."""
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    edge = np.zeros(recall.shape[:-1] + (1,))
    mrec = np.concatenate([edge, recall, edge + 1.0], axis=-1)
    mpre = np.concatenate([edge, precision, edge], axis=-1)
    # the envelope from the right starts at the 0 sentinel, and fmax skips NaN: no NaN is left
    mpre = np.fmax.accumulate(mpre[..., ::-1], axis=-1)[..., ::-1]
    # the sum over the points where recall changes: elsewhere the step is 0 and adds exactly 0
    ap = np.sum((mrec[..., 1:] - mrec[..., :-1]) * mpre[..., 1:], axis=-1)
    return float(ap) if ap.ndim == 0 else ap


def _ap_from_sums(proposals, true_positives, n_faces):
    """(precision, recall, AP) from the PR sums, as ``evaluate`` turns them into AP.

    proposals, true_positives: (..., T) counts (ints, or floats holding
    integers); n_faces: (...) counted faces. AP is NaN where n_faces is 0.
    Precision at 0 proposals (0 / 0) is NaN, as in MATLAB (only at recall 0)."""
    n_faces = np.asarray(n_faces)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = true_positives / proposals
        recall = true_positives / n_faces[..., None]
    ap = _voc_ap(recall, precision)
    ap = np.where(n_faces > 0, ap, np.nan)
    return precision, recall, (float(ap) if ap.ndim == 0 else ap)


def _resolve_gt(gt_dir, settings):
    """A GroundTruth with every setting in ``settings``: the given one, or read from its folder."""
    if isinstance(gt_dir, GroundTruth):
        absent = [s for s in settings if s not in gt_dir.keep]
        if absent:
            raise ValueError(f"the ground truth has no gt_list for {absent}")
        return gt_dir
    return load_ground_truth(gt_dir, settings)


def _gather(predictions, gt, stacklevel=3):
    """``_pack`` with evaluate's warnings about missing and extra entries.
    Returns (pred (P, 5), offsets (I+1,), number of missing images)."""
    pred, offsets, missing, n_extra = _pack(predictions, gt)
    if missing:
        examples = ", ".join(f"{e}/{n}" for e, n in missing[:3])
        warnings.warn(f"no predictions for {len(missing)} of {gt.n_images} ground-truth images; they count "
                      f"as images without detections, as in the official tools (e.g. {examples})",
                      MissingPredictionsWarning, stacklevel=stacklevel)
    if n_extra:
        warnings.warn(f"{n_extra} prediction entries name images that are not in the ground truth "
                      f"({gt.source}); they were ignored", UserWarning, stacklevel=stacklevel)
    return pred, offsets, len(missing)


def evaluate(predictions, gt_dir, iou_thresh=0.5, settings=SETTINGS, impl="auto"):
    """WIDER FACE AP per setting, as the official tools compute it (see the module doc).

    predictions: a prediction folder (official format) or a mapping
        ``{(event, name): (K, 5) array x, y, w, h, score}``.
    gt_dir: the folder with wider_face_val.mat and wider_{setting}_val.mat, or a
        ``GroundTruth`` (``load_ground_truth``; ``.subset(events)`` for part of it).
    iou_thresh: in (0, 1]; settings: any of 'easy', 'medium', 'hard';
    impl: 'auto' (default: the C core), 'c' or 'reference' (the slow literal
        NumPy twin), as for every op (``tasklle.ops.wider_pr_counts``).

    Returns {setting: AP float, ..., 'curves': {setting: {'recall', 'precision',
    'thresholds' (1000,) float64, 'proposals', 'true_positives' (1000,) int64,
    'n_faces' int}}, 'n_images', 'n_missing', 'iou_thresh'}. Curves are indexed
    by t = 1..1000, threshold 1 - t/1000 on the normalised score."""
    from ..ops._common import check_impl
    from ..ops.wider_eval import wider_pr_counts
    from ..reference.wider_eval import check_iou_thresh

    # checked before any file is read (the op checks them again, cheaply)
    settings = _check_settings(settings)
    check_impl(impl)
    iou_thresh = check_iou_thresh(iou_thresh)
    gt = _resolve_gt(gt_dir, settings)
    pred, offsets, n_missing = _gather(predictions, gt)

    T = THRESH_NUM
    counted = np.stack([gt.counted[s] for s in settings])
    sums = wider_pr_counts(pred, offsets, gt.boxes, gt.offsets, counted, iou_thresh, T, impl=impl)
    result, curves = {}, {}
    thresholds = 1 - np.arange(1, T + 1) / T
    for k, s in enumerate(settings):
        n_faces = gt.n_faces(s)
        proposals, tp = sums[k, :, 0], sums[k, :, 1]
        precision, recall, result[s] = _ap_from_sums(proposals, tp, n_faces)
        if not n_faces:
            warnings.warn(f"setting {s!r} counts no face in {gt.source}: its AP is undefined (NaN)",
                          UserWarning, stacklevel=2)
        curves[s] = {"recall": recall, "precision": precision, "thresholds": thresholds,
                     "proposals": proposals, "true_positives": tp, "n_faces": int(n_faces)}
    result["curves"] = curves
    result["n_images"] = gt.n_images
    result["n_missing"] = n_missing
    result["iou_thresh"] = iou_thresh
    return result


def result_to_json(result):
    """A strict-JSON-ready copy of an ``evaluate`` result: arrays as lists, NaN and inf as
    None (the one sanitiser, ``tasklle.io.json_safe``)."""
    from ..io import json_safe

    return json_safe(result)


# ----------------------------------------------------------------------------
# plots
# ----------------------------------------------------------------------------

def plot_pr_curves(results_by_method, path_or_ax, settings=None, title=None):
    """Precision-recall curves per setting, like the official WIDER FACE plots
    (one panel per setting, recall on x, precision on y, legend "AP method"
    sorted by AP).

    results_by_method: {method name: ``evaluate`` result} (a single result is
        accepted too). path_or_ax: a file path (the figure is saved, format from
        the suffix, atomically), one matplotlib Axes (one setting), or a
        sequence of Axes (one per setting). settings: default every setting
        all results have. Works without a display (no pyplot state is used).
    Returns the matplotlib Figure."""
    if isinstance(results_by_method, Mapping) and isinstance(results_by_method.get("curves"), Mapping):
        results_by_method = {"tasklle": results_by_method}
    if not isinstance(results_by_method, Mapping) or not results_by_method:
        raise ValueError("results_by_method must be a non-empty mapping {method: evaluate() result}")
    for name, r in results_by_method.items():
        if not (isinstance(r, Mapping) and isinstance(r.get("curves"), Mapping)):
            raise ValueError(f"results_by_method[{name!r}] is not an evaluate() result (no 'curves')")
    if settings is None:
        settings = [s for s in SETTINGS if all(s in r["curves"] for r in results_by_method.values())]
        if not settings:
            raise ValueError("the results share no setting")
    settings = _check_settings(settings)
    for name, r in results_by_method.items():
        for s in settings:
            if s not in r["curves"]:
                raise ValueError(f"results_by_method[{name!r}] has no {s!r} curve")

    from matplotlib.axes import Axes

    save_to = None
    if isinstance(path_or_ax, Axes):
        if len(settings) != 1:
            raise ValueError(f"one Axes given for {len(settings)} settings; pass settings=[one] or a list of Axes")
        axes = [path_or_ax]
        fig = path_or_ax.figure
    elif isinstance(path_or_ax, (list, tuple)) and all(isinstance(a, Axes) for a in path_or_ax):
        if len(path_or_ax) != len(settings):
            raise ValueError(f"{len(path_or_ax)} Axes given for {len(settings)} settings")
        axes = list(path_or_ax)
        fig = axes[0].figure
    elif isinstance(path_or_ax, (str, os.PathLike)):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        save_to = Path(path_or_ax)
        fig = Figure(figsize=(5.2 * len(settings), 4.8))
        FigureCanvasAgg(fig)
        axes = list(np.atleast_1d(fig.subplots(1, len(settings))))
    else:
        raise TypeError(f"path_or_ax must be a file path, an Axes or a list of Axes, got {type(path_or_ax).__name__}")

    for ax, s in zip(axes, settings):
        order = sorted(results_by_method.items(), key=lambda kv: -_nan_to(kv[1].get(s, math.nan), -1.0))
        for name, r in order:
            c = r["curves"][s]
            ap = r.get(s, math.nan)
            ax.plot(np.asarray(c["recall"]), np.asarray(c["precision"]), linewidth=2,
                    label=f"{ap:.3f} {name}")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("Recall")
        ax.set_ylabel("Precision")
        ax.set_title(f"{s.capitalize()} set" if title is None else f"{title}: {s}")
        ax.grid(True, linestyle=":")
        ax.legend(loc="lower left", fontsize="small")
    if save_to is not None:
        from ..io import atomic_write

        fig.tight_layout()
        fmt = save_to.suffix.lstrip(".").lower() or "png"
        with atomic_write(save_to) as f:
            fig.savefig(f, format=fmt, dpi=120)
    return fig


def _nan_to(x, value):
    x = float(x)
    return value if math.isnan(x) else x
