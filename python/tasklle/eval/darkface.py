"""The DARK FACE evaluation (one AP), as the challenge's public tools compute it.

Usage::

    from tasklle.eval import darkface
    result = darkface.evaluate("preds/", "DarkFace_Train/")   # or a mapping {name: (K, 5)}
    result["ap"], result["curve"]["recall"], result["curve"]["precision"]

The tools are ``DARKFACE_eval_tools`` (UG2+ 2019 track 2; "based on the eval
tools of WIDER FACE"): ``df_eval.m`` reads the file list, ``read_pred.m`` the
predictions, ``read_gt.m`` the ground truth, normalises the scores with
``norm_score.m``, accumulates the PR curve in ``evaluation.m`` and
``utils/df_plot.m`` reports ``utils/VOCap.m`` of it. What they do, step by step:

1. Files. One prediction file per ground-truth file, found by replacing the
   ground-truth folder in the file list's path by the submission folder
   (``<name>.txt``); every line of it is one ``x y w h score`` box (no image
   name line and no count line, unlike WIDER FACE's files; MATLAB's
   ``str2num`` takes each line's first five numbers). A missing prediction
   file means no detections for that image. Each image's predictions are
   sorted by descending score (``sort(..., 'descend')``).
2. Ground truth. ``read_gt.m`` reads the count line and then the first four
   numbers of each box line *without converting them*; an image with count 0
   has no box. (A missing ground-truth file stops the reading there: MATLAB's
   ``break``; this module raises instead.)
3. Box convention. ``evaluation.m`` turns both predictions and ground truth
   from ``x y w h`` into corners (x2 = x + w, y2 = y + h). The released
   label files hold ``x1 y1 x2 y2`` (see :mod:`tasklle.data.darkface`), so
   the tools' ground-truth files are ``x y w h`` and the release labels must
   be converted, ``w = x2 - x1``, ``h = y2 - y1`` (:func:`tool_boxes`), to be
   scored as the tools score; predictions are written the same way
   (``w = x2 - x1`` from the detector's corners). Read unconverted, a label
   box (x1, y1, x2, y2) would become (x1, y1, x1 + x2, y1 + y2).
4. Scores are normalised once over every prediction of every listed image,
   (s - min) / (max - min) (``norm_score.m``, min and max starting at
   realmax / realmin('single') as in WIDER FACE's tools).
5. Per image with at least one face and one prediction, in score order: the
   IoU of the prediction with every face, ``boxoverlap`` of WIDER FACE's tools
   (+1 pixel convention: iw = min(x2) - max(x1) + 1; the DARK FACE repository
   does not ship that file, its WIDER origin does); the face of largest IoU
   (first on ties) becomes recalled when IoU >= 0.5. Every prediction is a
   proposal (there are no ignored faces); one on an already recalled face is
   a false positive.
6. For t = 1..1000, thresh = 1 - t/1000, r = the last prediction with
   normalised score >= thresh: (r proposals, faces recalled by 0..r) is added
   to the dataset sums. Every face of every listed image counts towards the
   total (``size(keep_index, 1)``: the box count; an earlier version used
   ``length()``, which is 4 for an image with 1-3 faces, fixed in the
   repository's later ``evaluation.m``; ``evaluation2.m`` is an unused variant
   with 1001 thresholds from 1.0).
7. precision = TP / proposals, recall = TP / faces (``dataset_pr_info``), and
   the AP is ``VOCap``: sentinels (0, 1) on recall and (0, 0) on precision,
   the monotone precision envelope from the right (MATLAB's ``max`` skips the
   NaN of 0 / 0), the sum of recall steps times precision.

Against the WIDER FACE protocol (``tasklle.eval.wider``) this is: one setting,
every face counted (no "ignore" faces, so no prediction is "not counted"),
the same IoU threshold 0.5, the same 1000 thresholds on the same normalised
score, the same per-image sort (not one global sort of all detections as in
PASCAL VOC), the same VOC AP. It is therefore computed by the same C op,
``tasklle.ops.wider_pr_counts``, with one setting whose ``counted`` mask is
all ones; what differs is only the file formats and the box conversion above.
Where the tools misbehave this module does what ``tasklle.eval.wider`` does:
when all scores are equal (the tools divide by zero: NaN) every normalised
score is 1; a malformed prediction file raises ValueError naming file and line
(MATLAB prints "Invalid format" and drops the image).

Intervals: :func:`per_image_counts` gives each image's own (T, 2) sums (one
call of the op's per-image mode, as :mod:`tasklle.eval.intervals` does for
WIDER FACE); the sums over images equal the dataset sums, so a bootstrap
resample's AP is the AP of ``weights @ per_image`` (:func:`ap_samples`, with
the shared weights of :func:`tasklle.eval.bootstrap.resample_weights`).
"""
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..data.wider_format.predictions import MAX_PREDICTION_FILE_BYTES, _read_bounded_text, prediction_array
from .wider import THRESH_NUM, MissingPredictionsWarning, _ap_from_sums, _voc_ap

__all__ = ["THRESH_NUM", "GroundTruth", "load_ground_truth", "tool_boxes", "read_prediction_file",
           "read_predictions", "write_predictions", "evaluate", "per_image_counts", "ap_from_sums", "ap_samples",
           "result_to_json", "plot_pr_curves"]


def tool_boxes(boxes_x1y1x2y2):
    """(N, 4) x1 y1 x2 y2 (the release labels, the detector's corners) -> (N, 4) float64 x y w h as
    the tools' files hold them: w = x2 - x1, h = y2 - y1 (their x2 = x + w gives the corner back)."""
    b = np.asarray(boxes_x1y1x2y2, dtype=np.float64).reshape(-1, 4)
    return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1)


class GroundTruth:
    """The faces of a list of DARK FACE images in the tools' form: ``names`` (I,), ``boxes`` (G, 4)
    float64 x y w h image after image, ``offsets`` (I+1,) int64, ``faces`` (I,) int64."""

    def __init__(self, names, boxes_x1y1x2y2, source=""):
        self.names = [str(n) for n in names]
        if len(set(self.names)) != len(self.names):
            raise ValueError("names: duplicate image names")
        if len(boxes_x1y1x2y2) != len(self.names):
            raise ValueError(f"{len(boxes_x1y1x2y2)} box arrays for {len(self.names)} names")
        per = [tool_boxes(b) for b in boxes_x1y1x2y2]
        self.faces = np.array([len(b) for b in per], dtype=np.int64)
        self.offsets = np.zeros(len(per) + 1, dtype=np.int64)
        np.cumsum(self.faces, out=self.offsets[1:])
        self.boxes = np.ascontiguousarray(np.concatenate(per)) if per else np.zeros((0, 4))
        self.source = str(source)

    @property
    def n_images(self):
        return len(self.names)

    @property
    def n_faces(self):
        return int(self.faces.sum())

    def subset(self, names):
        """The ground truth of some of the images (in the given order)."""
        index = {n: i for i, n in enumerate(self.names)}
        missing = [n for n in names if str(n) not in index]
        if missing:
            raise ValueError(f"names: {missing[0]!r} is not in the ground truth ({self.source})")
        pick = [index[str(n)] for n in names]
        corners = [self.boxes[self.offsets[i]:self.offsets[i + 1]] for i in pick]
        corners = [np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1) for b in corners]
        return GroundTruth([self.names[i] for i in pick], corners, self.source)


def load_ground_truth(root, names=None):
    """The :class:`GroundTruth` of a DARK FACE root (``image/`` + ``label/``; default every image)."""
    from ..data.darkface import DarkFace

    if isinstance(root, GroundTruth):
        return root if names is None else root.subset(names)
    ds = DarkFace(root, names)
    return GroundTruth(ds.names, [ds.boxes(n) for n in ds.names], source=root)


def read_prediction_file(path):
    """One prediction file in the tools' format: every non-blank line ``x y w h score``.
    Returns (K, 5) float64 (K = 0 for an empty file). ValueError naming the file and line
    for a line without exactly five finite numbers, or a path that is not a regular file
    of at most MAX_PREDICTION_FILE_BYTES."""
    path = Path(path)
    text = _read_bounded_text(path, MAX_PREDICTION_FILE_BYTES, "prediction file")
    rows = []
    for k, line in enumerate(text.splitlines()):
        if not line.strip():
            continue
        try:
            row = [float(p) for p in line.split()]
        except ValueError:
            row = None
        if row is None or len(row) != 5 or not all(math.isfinite(v) for v in row):
            raise ValueError(f"{path}: line {k + 1}: expected 5 finite numbers 'x y w h score', got {line.strip()!r}")
        rows.append(row)
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


def read_predictions(folder, names=None):
    """``{name: (K, 5) x y w h score}`` of ``folder/<name>.txt``: the given names (missing files are
    left out), or every ``*.txt`` in the folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"prediction folder not found: {folder}")
    if names is None:
        names = sorted(p.stem for p in folder.iterdir() if p.suffix == ".txt" and not p.name.startswith("."))
    out = {}
    for n in names:
        f = folder / f"{n}.txt"
        if f.exists():
            out[str(n)] = read_prediction_file(f)
    return out


def _check_name(name):
    if not isinstance(name, str) or not name or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise ValueError(f"prediction key must be a plain image name, got {name!r}")
    return name


def write_predictions(folder, mapping):
    """Write ``{name: (K, 5) x y w h score}`` in the tools' format: ``folder/<name>.txt`` with one
    ``x y w h score`` line per box (shortest exact float text), atomically per file. Returns the folder."""
    from ..io import atomic_write

    if not isinstance(mapping, Mapping):
        raise TypeError(f"mapping must be a mapping {{name: (K, 5) array}}, got {type(mapping).__name__}")
    items = []
    for name, arr in mapping.items():
        a = prediction_array(arr, _check_name(name))
        if not np.isfinite(a).all():
            raise ValueError(f"predictions[{name!r}] must be finite")
        items.append((name, a))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, a in items:
        with atomic_write(folder / f"{name}.txt", "w", fsync=False) as f:
            f.write("".join(" ".join(map(repr, row)) + "\n" for row in a.tolist()))
    return folder


def _pack(predictions, gt):
    """(P, 5) predictions of the gt images in gt order, (I+1,) offsets, missing names."""
    if isinstance(predictions, (str, os.PathLike)):
        predictions = read_predictions(predictions, gt.names)
    elif not isinstance(predictions, Mapping):
        raise TypeError("predictions must be a prediction folder or a mapping {name: (K, 5) array x y w h score}, "
                        f"got {type(predictions).__name__}")
    arrays, counts, missing = [], np.zeros(gt.n_images, dtype=np.int64), []
    for i, name in enumerate(gt.names):
        arr = predictions.get(name)
        if arr is None:
            missing.append(name)
            continue
        a = prediction_array(arr, name)
        if not np.isfinite(a).all():
            raise ValueError(f"predictions for {name!r} contain NaN or infinity")
        counts[i] = len(a)
        if len(a):
            arrays.append(a)
    pred = np.ascontiguousarray(np.concatenate(arrays)) if arrays else np.zeros((0, 5))
    offsets = np.zeros(gt.n_images + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return pred, offsets, missing


def _prepare(predictions, gt, names):
    gt = load_ground_truth(gt, names)
    pred, offsets, missing = _pack(predictions, gt)
    if missing:
        warnings.warn(f"no predictions for {len(missing)} of {gt.n_images} images; they count as images without "
                      f"detections, as in the tools (e.g. {', '.join(missing[:3])})", MissingPredictionsWarning,
                      stacklevel=3)
    return gt, pred, offsets, missing


def ap_from_sums(sums, n_faces):
    """(AP, recall, precision) from (T, 2) [proposals, true positives] dataset sums and the face count
    (AP NaN when no face counts)."""
    sums = np.asarray(sums)
    proposals, tp = sums[:, 0], sums[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = tp / proposals  # 0 / 0 is NaN, as in MATLAB (only at recall 0)
        recall = tp / n_faces if n_faces else np.full(len(tp), np.nan)
    return (_voc_ap(recall, precision) if n_faces else math.nan), recall, precision


def evaluate(predictions, gt, iou_thresh=0.5, names=None, impl="auto"):
    """DARK FACE AP as the tools compute it (see the module doc).

    predictions: a folder in the tools' format (``<name>.txt`` with ``x y w h score`` lines) or a
        mapping ``{name: (K, 5) array x y w h score}``.
    gt: a DARK FACE root (``image/`` and ``label/``) or a :class:`GroundTruth`; names: score only
        these images (default every image of the root).
    iou_thresh: in (0, 1] (the tools: 0.5); impl: 'auto', 'c' or 'reference' (the op's literal
        NumPy twin), as for every op.

    Returns {'ap': float, 'curve': {'recall', 'precision', 'thresholds' (1000,) float64,
    'proposals', 'true_positives' (1000,) int64, 'n_faces'}, 'n_images', 'n_faces', 'n_missing',
    'iou_thresh'}."""
    from ..ops.wider_eval import wider_pr_counts

    gt, pred, offsets, missing = _prepare(predictions, gt, names)
    counted = np.ones((1, len(gt.boxes)), dtype=bool)  # one setting, no ignored face
    sums = wider_pr_counts(pred, offsets, gt.boxes, gt.offsets, counted, iou_thresh, THRESH_NUM, impl=impl)[0]
    ap, recall, precision = ap_from_sums(sums, gt.n_faces)
    if not gt.n_faces:
        warnings.warn(f"no face in the ground truth ({gt.source}): the AP is undefined (NaN)", UserWarning,
                      stacklevel=2)
    curve = {"recall": recall, "precision": precision, "thresholds": 1 - np.arange(1, THRESH_NUM + 1) / THRESH_NUM,
             "proposals": sums[:, 0], "true_positives": sums[:, 1], "n_faces": gt.n_faces}
    return {"ap": ap, "curve": curve, "n_images": gt.n_images, "n_faces": gt.n_faces, "n_missing": len(missing),
            "iou_thresh": float(iou_thresh)}


def per_image_counts(predictions, gt, iou_thresh=0.5, names=None, impl="auto"):
    """Each image's own PR sums: ((I, T, 2) int64 [proposals, true positives], (I,) int64 faces),
    in ground-truth order; summed over images they are :func:`evaluate`'s dataset sums.

    One call of the op in its per-image mode (``per_image=True``), as the WIDER FACE bootstrap
    (:mod:`tasklle.eval.intervals`) makes its rows: one setting counting every face, and the
    normalisation of the whole set, since the op is given every prediction at once."""
    from ..ops.wider_eval import wider_pr_counts

    gt, pred, offsets, _ = _prepare(predictions, gt, names)
    counted = np.ones((1, len(gt.boxes)), dtype=bool)  # one setting, no ignored face
    rows = wider_pr_counts(pred, offsets, gt.boxes, gt.offsets, counted, iou_thresh, THRESH_NUM, impl=impl,
                           per_image=True)
    return rows[:, 0], gt.faces.copy()


def ap_samples(per_image, faces, weights):
    """(R,) AP of each bootstrap resample: resample r's dataset sums are ``weights[r] @ per_image``
    (an image drawn twice counts twice) and its faces ``weights[r] @ faces``.

    per_image: (I, T, 2) from :func:`per_image_counts`; faces (I,); weights (R, I) counts from
    :func:`tasklle.eval.bootstrap.resample_weights` (the same matrix for every group of a table)."""
    per_image = np.asarray(per_image)
    w = np.asarray(weights)
    if w.ndim != 2 or w.shape[1] != per_image.shape[0]:
        raise ValueError(f"weights must be (R, {per_image.shape[0]}), got shape {w.shape}")
    flat = per_image.reshape(per_image.shape[0], -1).astype(np.float64)
    sums = (w.astype(np.float64) @ flat).reshape(len(w), *per_image.shape[1:])
    n_faces = w @ np.asarray(faces, dtype=np.int64)
    return _ap_from_sums(sums[..., 0], sums[..., 1], n_faces)[2]  # wider's formula, over all resamples at once


def result_to_json(result):
    """A JSON-ready copy of an :func:`evaluate` result (arrays as lists, NaN as None)."""
    from .wider import result_to_json as _to_json

    return _to_json(result)


def plot_pr_curves(results_by_method, path, title="DARK FACE"):
    """Precision-recall curves of {method: :func:`evaluate` result} in one panel (legend "AP method",
    sorted by AP), saved atomically to ``path`` (format from the suffix). No pyplot state is used."""
    from ..experiments.figures import _save, _subplots

    if not isinstance(results_by_method, Mapping) or not results_by_method:
        raise ValueError("results_by_method must be a non-empty mapping {method: evaluate() result}")
    fig, ax = _subplots(1, 1, (5.2, 4.8))
    order = sorted(results_by_method.items(), key=lambda kv: -(kv[1]["ap"] if kv[1]["ap"] == kv[1]["ap"] else -1))
    for name, r in order:
        c = r["curve"]
        ax.plot(np.asarray(c["recall"]), np.asarray(c["precision"]), linewidth=2, label=f"{r['ap']:.3f} {name}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_title(title)
    ax.grid(True, linestyle=":")
    ax.legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    return _save(fig, path)
