"""Detection and evaluation of an image group for the experiments: the
groups and difficulty settings, ``detect.detect`` keyword arguments, the
ground truth restricted to the images used, and ``run_group`` (detect +
evaluate, resumable through the stage cache of :mod:`.stages`)."""
import time
from pathlib import Path

from .stages import mark_stage, stage_done

GROUPS = ("low-light", "zero-dce++", "joint", "original")
SETTINGS = ("easy", "medium", "hard")


def detect_kwargs(scale=None, score_thr=None):
    """Keyword arguments for ``detector.detect``.

    scale: None keeps the detector's own test scale (keep-ratio resize to its
    config's test_scale); a number resizes every image by that factor.
    score_thr: None keeps TinaFace's 0.01. The built-in budgets use 0.05: the
    lite detector leaves ~9,000 boxes per image above 0.01 and NMS over them
    dominates detection time, while the AP of the shipped detector on the
    built-in val split is the same to 1e-4 (measured: 0.5169 / 0.7520 / 0.8192
    at 0.05 vs 0.5169 / 0.7521 / 0.8192 at 0.01, 10x fewer boxes).
    """
    kw = {}
    if scale is not None:
        kw["scale"] = float(scale)
    if score_thr is not None:
        kw["score_thr"] = float(score_thr)
    return kw


def restrict_gt(root, entries, out_dir, gt=None):
    """When only some val images are detected, a gt folder listing only those
    images (so the others do not count as missed faces), written once per
    settings. Returns the gt dir to evaluate against: the full one
    (``find_ground_truth(root, gt)``) itself when every image is used."""
    from ..eval.ground_truth import find_ground_truth, subset_ground_truth

    full = find_ground_truth(root, gt)
    keep = {(e, n) for _, e, n in entries}
    settings = {"root": str(Path(root).resolve()), "gt": str(Path(full).resolve()), "keep": sorted(map(list, keep))}
    if stage_done(out_dir, settings):
        return Path(out_dir)
    res = subset_ground_truth(full, keep, out_dir)
    if res != Path(full):
        mark_stage(out_dir, settings, {"images": len(keep)})
    return res


def evaluate(preds, gt):
    """AP easy/medium/hard (+ the full result with curves) with tasklle.eval.wider."""
    from ..eval import wider

    res = wider.evaluate(preds, gt)
    return {k: float(res[k]) for k in SETTINGS}, res


def run_group(folder, settings, detector, root, entries, gt, enhancer=None, detect_kwargs=None,
              show_progress=True, desc=None, verbose=True, pred_format="exact"):
    """Detect + evaluate one image group, resumable. Returns (ap dict, full eval result or None, seconds)."""
    from ..data import wider_format as wider
    from ..detection import detect_split

    folder = Path(folder)
    done = stage_done(folder, settings)
    pred_dir = folder / "predictions"
    if done and pred_dir.is_dir():
        preds = wider.read_predictions(pred_dir)
        ap, full = evaluate(preds, gt)
        return ap, full, done["result"].get("seconds", 0.0), preds
    t0 = time.perf_counter()
    preds = detect_split(detector, root, "val", images=entries, enhancer=enhancer, detect_kwargs=detect_kwargs,
                         desc=desc or folder.name, show_progress=show_progress, pred_format=pred_format)
    t_det = time.perf_counter() - t0
    wider.write_predictions(pred_dir, preds)
    ap, full = evaluate(preds, gt)
    seconds = time.perf_counter() - t0
    mark_stage(folder, settings, {"ap": ap, "seconds": seconds, "detect_seconds": t_det, "images": len(entries)})
    if verbose:
        print(f"  {folder.name:<12} easy {ap['easy']:.4f}  medium {ap['medium']:.4f}  hard {ap['hard']:.4f}"
              f"  ({len(entries)} images, {seconds:.0f} s)")
    return ap, full, seconds, preds
