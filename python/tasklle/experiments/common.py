"""Plumbing shared by the experiments: data roots, the dark copy, training an
enhancer through :func:`tasklle.train.joint`, detection on a split (optionally
through an enhancer), WIDER evaluation, resumable result files, budgets.

Every stage writes its result atomically into the experiment folder together
with the settings that made it (``stage.json``); a rerun with the same
settings skips the stage, a rerun with different settings redoes it.
"""
import hashlib
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from .._alloc import with_fast_alloc

GROUPS = ("low-light", "zero-dce++", "joint", "original")
SETTINGS = ("easy", "medium", "hard")

# Run sizes for the built-in data (the demo and the notebooks). Step counts are
# fixed, never derived from measured speed, so the same seed gives the same
# table on any machine. Wall time of `tasklle demo` on 2 CPU cores, fresh
# cache: tiny < 1 min (smoke test), small ~2 min, default ~7 min (measured
# 6.6 min; the limit is 15), long ~45 min.
# They train for a few hundred steps only, so they use lr 1e-3 (the method's
# 1e-4 barely moves a Zero-DCE++ from N(0, 0.02) in that many steps); a run
# on a given --root uses the method's settings (1e-4, 640 crops, 1000 steps).
BUDGETS = {
    "tiny": dict(steps=3, image_size=96, batch_size=2, lr=1e-3, max_val=6, figure_images=2, n_train=8, n_val=6,
                 detect_scale=1.0, score_thr=0.05, darken_workers=1),
    "small": dict(steps=60, image_size=160, batch_size=4, lr=1e-3, max_val=40, figure_images=3, n_train=None,
                  n_val=None, detect_scale=None, score_thr=0.05, darken_workers=None),
    "default": dict(steps=200, image_size=192, batch_size=4, lr=1e-3, max_val=None, figure_images=4, n_train=None,
                    n_val=None, detect_scale=None, score_thr=0.05, darken_workers=None),
    "long": dict(steps=1000, image_size=256, batch_size=4, lr=5e-4, max_val=None, figure_images=4, n_train=None,
                 n_val=None, detect_scale=None, score_thr=0.05, darken_workers=None),
}


def budget(name):
    if name not in BUDGETS:
        raise ValueError(f"budget must be one of {sorted(BUDGETS)}, got {name!r}")
    return dict(BUDGETS[name])


def clean_json(obj):
    """NaN/inf -> None, numpy scalars -> Python, tuples -> lists, paths -> str (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return clean_json(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def settings_key(settings):
    """Short stable hash of a settings dict (decides whether a stage is redone)."""
    blob = json.dumps(clean_json(settings), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def stage_done(folder, settings):
    """The stage's saved result when ``folder/stage.json`` was made with these settings, else None."""
    p = Path(folder) / "stage.json"
    if not p.is_file():
        return None
    try:
        saved = json.loads(p.read_text())
    except (OSError, ValueError):
        return None
    return saved if saved.get("key") == settings_key(settings) else None


def mark_stage(folder, settings, result):
    from ..io import write_json

    payload = {"key": settings_key(settings), "settings": clean_json(settings), "result": clean_json(result)}
    write_json(Path(folder) / "stage.json", payload)
    return payload


# --------------------------------------------------------------------------- data

def default_cache():
    return Path(os.environ.get("TASKLLE_CACHE") or Path.home() / ".cache" / "tasklle")


def resolve_root(root=None, n_train=None, n_val=None, seed=0, verbose=True):
    """A WIDER-format root: the given one, or the built-in demo dataset
    (built on first use; custom sizes go to their own cache folder)."""
    if root is not None:
        root = Path(root)
        if not (root / "wider_face_split").is_dir():
            raise FileNotFoundError(f"root: {root} is not a WIDER-format tree (no wider_face_split/ folder)")
        return root
    from ..data import demo as demo_data

    kwargs = {"seed": seed}
    kwargs.update({k: v for k, v in (("n_train", n_train), ("n_val", n_val)) if v is not None})
    t0 = time.perf_counter()
    path = Path(demo_data.build(**kwargs))  # cached by its parameters: built once
    if verbose and time.perf_counter() - t0 > 1:
        print(f"built-in dataset ready at {path} ({time.perf_counter() - t0:.0f} s)")
    return path


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


def gt_dir(root):
    return Path(root) / "wider_face_split"


def ensure_dark(root, dark=None, seed=0, exposure=(0.05, 0.3), noise="lednet", workers=None, verbose=True):
    """The darkened copy of ``root`` (made with :func:`tasklle.darken_dataset`
    when missing or incomplete; the darkener skips images already done)."""
    root = Path(root)
    dark = Path(dark) if dark is not None else root.with_name(root.name + f"-dark-s{seed}")
    settings = {"src": str(root.resolve()), "exposure": list(exposure), "noise": noise, "seed": seed}
    if stage_done(dark, settings):
        return dark
    from ..darkening import darken_dataset

    t0 = time.perf_counter()
    if verbose:
        print(f"darkening {root} -> {dark} (EC-Zero-DCE, E ~ U{tuple(exposure)}, {noise} noise, seed {seed})")
    kwargs = dict(exposure=tuple(exposure), noise=noise, seed=seed)
    if workers is not None:
        kwargs["workers"] = workers
    report = darken_dataset(root, dark, **kwargs)
    mark_stage(dark, settings, {"seconds": time.perf_counter() - t0,
                                "report": report if isinstance(report, (dict, list, str, int, float)) else None})
    return dark


def list_split(root, split="val", max_images=None):
    """(event, name, path) of a split's images in the annotation order; the
    first ``max_images`` of a fixed seeded shuffle when a cap is given."""
    from ..data import WiderFace

    ds = WiderFace(root, split=split)
    entries = _entries(ds)
    if max_images is not None and max_images < len(entries):
        rng = np.random.default_rng(12345)
        pick = sorted(rng.choice(len(entries), size=max_images, replace=False).tolist())
        entries = [entries[i] for i in pick]
    return entries


def _entries(ds):
    """[(index, event, name)] of a WiderFace dataset without decoding images when possible."""
    for attr in ("entries", "records", "annotations", "items"):
        recs = getattr(ds, attr, None)
        if isinstance(recs, (list, tuple)) and len(recs) == len(ds):
            out = []
            for i, r in enumerate(recs):
                ev = r.get("event") if isinstance(r, dict) else getattr(r, "event", None)
                nm = r.get("name") if isinstance(r, dict) else getattr(r, "name", None)
                if ev is None or nm is None:
                    break
                out.append((i, ev, nm))
            else:
                return out
    return [(i, ds[i]["event"], ds[i]["name"]) for i in range(len(ds))]


# --------------------------------------------------------------------------- models

def load_detector(detector=None, vedadet=None):
    """The detector for the experiments: ``vedadet`` (a vedadet TinaFace
    state_dict, full model), else ``detector`` (our checkpoint), else the
    shipped lite detector trained on the built-in data. Frozen."""
    from ..models import TinaFace
    from ..train.joint import load_detector as _load

    if vedadet is not None:
        det = TinaFace.from_vedadet(vedadet)
    elif detector is not None:
        det = _load(detector)
    else:
        det = TinaFace.load(shipped_detector_path())
    det.freeze()
    return det


def shipped_detector_path():
    p = Path(__file__).resolve().parents[1] / "weights" / "tinaface_lite_demo.pt"
    if not p.is_file():
        raise FileNotFoundError(f"the shipped demo detector is missing: {p}")
    return p


def train_enhancer(dark_root, detector, out, w_up, w_down, train_kwargs, verbose=True):
    """Train (or reuse) a Zero-DCE++ with :func:`tasklle.train.joint`; returns (model, info)."""
    from ..train.joint import joint, load_upstream, state_dict_sha256

    out = Path(out)
    det_hash = state_dict_sha256(detector) if (w_down > 0 and detector is not None) else None
    settings = {"data": str(Path(dark_root).resolve()), "w_up": w_up, "w_down": w_down, "detector": det_hash,
                **{k: v for k, v in train_kwargs.items()
                   if k not in ("show_progress", "num_workers", "checkpoint_every")}}
    done = stage_done(out, settings)
    if done and (out / "final.pt").is_file():
        model = load_upstream(out / "final.pt").eval()
        return model, done["result"]
    _drop_stale_checkpoint(out, verbose)
    t0 = time.perf_counter()
    try:
        res = joint(dark_root, detector if w_down > 0 else None, out, w_up=w_up, w_down=w_down, resume=True,
                    verbose=verbose, **train_kwargs)
    except ValueError as e:
        if not str(e).startswith("resume:"):
            raise
        # a checkpoint from other settings: this stage starts again
        if verbose:
            print(f"  {out}: {e}; starting this training again")
        _drop_stale_checkpoint(out, verbose, force=True)
        res = joint(dark_root, detector if w_down > 0 else None, out, w_up=w_up, w_down=w_down, resume=False,
                    verbose=verbose, **train_kwargs)
    from ..train.joint import _summary

    info = {"seconds": time.perf_counter() - t0, "steps": res["steps"], "summary": _summary(res["rows"]),
            "detector_sha256": res["detector_sha256"], "final": str(res["final"]), "key": settings_key(settings)}
    mark_stage(out, settings, info)
    return res["model"].eval(), info


def _drop_stale_checkpoint(out, verbose, force=False):
    """Remove a training folder's stage marker and, with ``force``, its
    checkpoint (files this module wrote) so the training starts afresh."""
    out = Path(out)
    for name in (("stage.json", "checkpoint.pt", "log.csv", "final.pt") if force else ("stage.json",)):
        p = out / name
        if p.is_file():
            p.unlink()


# --------------------------------------------------------------------------- detection and evaluation

def _xyxy_to_xywh(dets):
    dets = np.asarray(dets, dtype=np.float64).reshape(-1, 5)
    out = dets.copy()
    out[:, 2] = dets[:, 2] - dets[:, 0]
    out[:, 3] = dets[:, 3] - dets[:, 1]
    return out


def enhance_image(model, image):
    """(3, H, W) -> enhanced (3, H, W) in [0, 1] with a Zero-DCE++ model (no grad)."""
    import torch

    with torch.no_grad():
        enhanced, _ = model(image[None])
    return enhanced[0].clamp_(0.0, 1.0)


@with_fast_alloc  # large buffers stay in the heap for the run (tasklle._alloc)
def detect_split(detector, root, entries, enhancer=None, detect_kwargs=None, desc="detect", show_progress=True):
    """Detections {(event, name): (K, 5) x, y, w, h, score} for the listed images
    of ``root``'s val split, each optionally enhanced first."""
    import torch

    from ..io import read_image
    from ..progress import progress

    detect_kwargs = dict(detect_kwargs or {})
    preds = {}
    with torch.no_grad():
        for _, event, name in progress(entries, desc=desc, leave=False, disable=not show_progress):
            path = Path(root) / "WIDER_val" / "images" / event / f"{name}.jpg"
            img = read_image(path)
            if enhancer is not None:
                img = enhance_image(enhancer, img)
            dets = detector.detect(img[None], **detect_kwargs)[0]
            preds[(event, name)] = _xyxy_to_xywh(dets)
    return preds


def restrict_gt(root, entries, out_dir):
    """When only some val images are detected, a gt folder listing only those
    images (so the others do not count as missed faces). Returns the gt dir to
    evaluate against: ``root/wider_face_split`` itself when every image is used."""
    from ..eval import wider

    full = gt_dir(root)
    keep = {(e, n) for _, e, n in entries}
    gt = wider.load_ground_truth(full)
    if keep >= set(gt.keys()):
        return full
    out_dir = Path(out_dir)
    settings = {"root": str(Path(root).resolve()), "keep": sorted(map(list, keep))}
    if stage_done(out_dir, settings):
        return out_dir
    sel = [i for i, k in enumerate(gt.keys()) if k in keep]
    images = [(*gt.key(i), np.asarray(gt.image_boxes(i))) for i in sel]
    lists = {s: [np.asarray(gt.keep_index(s, i)) for i in sel] for s in gt.settings}
    wider.write_ground_truth(out_dir, images, lists)
    mark_stage(out_dir, settings, {"images": len(sel)})
    return out_dir


def evaluate(preds, gt):
    """AP easy/medium/hard (+ the full result with curves) with tasklle.eval.wider."""
    from ..eval import wider

    res = wider.evaluate(preds, gt)
    return {k: float(res[k]) for k in SETTINGS}, res


def run_group(folder, settings, detector, root, entries, gt, enhancer=None, detect_kwargs=None,
              show_progress=True, desc=None, verbose=True):
    """Detect + evaluate one image group, resumable. Returns (ap dict, full eval result or None, seconds)."""
    from ..eval import wider

    folder = Path(folder)
    done = stage_done(folder, settings)
    pred_dir = folder / "predictions"
    if done and pred_dir.is_dir():
        preds = wider.read_predictions(pred_dir)
        ap, full = evaluate(preds, gt)
        return ap, full, done["result"].get("seconds", 0.0), preds
    t0 = time.perf_counter()
    preds = detect_split(detector, root, entries, enhancer, detect_kwargs, desc=desc or folder.name,
                         show_progress=show_progress)
    t_det = time.perf_counter() - t0
    wider.write_predictions(pred_dir, preds)
    ap, full = evaluate(preds, gt)
    seconds = time.perf_counter() - t0
    mark_stage(folder, settings, {"ap": ap, "seconds": seconds, "detect_seconds": t_det, "images": len(entries)})
    if verbose:
        print(f"  {folder.name:<12} easy {ap['easy']:.4f}  medium {ap['medium']:.4f}  hard {ap['hard']:.4f}"
              f"  ({len(entries)} images, {seconds:.0f} s)")
    return ap, full, seconds, preds


def ap_table(rows, first_col="group"):
    """Markdown table from [(label, {'easy','medium','hard'})]."""
    lines = [f"| {first_col} | easy | medium | hard |", "|---|---|---|---|"]
    for label, ap in rows:
        lines.append(f"| {label} | " + " | ".join(
            "n/a" if ap.get(k) is None else f"{ap[k]:.4f}" for k in SETTINGS) + " |")
    return "\n".join(lines)
