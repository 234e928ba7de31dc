"""Plumbing shared by the experiments: data roots, the dark copy, training an
enhancer through :func:`tasklle.train.joint`, detection on a split (optionally
through an enhancer), WIDER evaluation, resumable result files.

Every stage writes its result atomically into the experiment folder together
with the settings that made it (``stage.json``); a rerun with the same
settings skips the stage, a rerun with different settings redoes it.
"""
import hashlib
import json
import os
import time
from pathlib import Path


from ..io import json_safe


GROUPS = ("low-light", "zero-dce++", "joint", "original")
SETTINGS = ("easy", "medium", "hard")


# one converter for every JSON file (the stage keys hash its output)
clean_json = json_safe


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
    from ..data.demo import builtin

    return builtin(n_train=n_train, n_val=n_val, seed=seed, verbose=verbose)


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


DARKENING_DEFAULTS = {"darkener": "ec-zero-dce", "weights": None, "noise": None, "exposure": (0.05, 0.3),
                      "keep_saturated": True}


def darkening_settings(darkening=None):
    """The dark copy's settings: the method's by default (EC-Zero-DCE with the shipped
    weights, E ~ U(0.05, 0.3) per image, saturated pixels kept, no noise) updated with
    ``darkening`` (keys of DARKENING_DEFAULTS; noise 'none' means None)."""
    d = dict(DARKENING_DEFAULTS)
    unknown = set(darkening or {}) - set(d)
    if unknown:
        raise ValueError(f"darkening: unknown keys {sorted(unknown)}; known: {sorted(d)}")
    d.update({k: v for k, v in (darkening or {}).items() if v is not None or k in ("noise", "weights")})
    if d["noise"] == "none":
        d["noise"] = None
    if d["darkener"] == "lednet" and d["weights"] is None:
        raise ValueError("darkener 'lednet' needs LEDNet's weights (ce_zerodce.pth, a release asset of LEDNet): "
                         "pass --darkener-weights PATH")
    d["exposure"] = list(d["exposure"]) if isinstance(d["exposure"], (list, tuple)) else d["exposure"]
    return d


def describe_darkening(d):
    name = {"ec-zero-dce": "EC-Zero-DCE", "lednet": "LEDNet's ConditionZeroDCE"}.get(d["darkener"], d["darkener"])
    e = d["exposure"]
    exp = f"E ~ U({e[0]:g}, {e[1]:g})" if isinstance(e, list) else f"E = {e:g}"
    return (f"{name}, {exp}, {'saturated pixels kept' if d['keep_saturated'] else 'saturated pixels darkened'}, "
            f"{'no noise' if d['noise'] is None else d['noise'] + ' noise'}")


def _file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ensure_dark(root, dark=None, seed=0, exposure=None, noise="default", workers=None, verbose=True,
                darkening=None):
    """The darkened copy of ``root`` (made with :func:`tasklle.darken_dataset`
    when missing or incomplete; the darkener skips images already done).

    ``darkening``: see :func:`darkening_settings` (default: the method's
    generation, no noise). ``exposure`` and ``noise`` override its entries.
    The default folder (beside ``root``) is named after a hash of the
    settings, so a change of darkener, weights, noise, exposure or seed makes
    a new copy instead of reusing a stale one; every cached stage downstream
    is keyed on the dark folder and so is redone too.
    """
    root = Path(root)
    d = dict(darkening or {})
    if exposure is not None:
        d["exposure"] = exposure
    if noise != "default":
        d["noise"] = noise
    d = darkening_settings(d)
    weights_hash = _file_sha256(d["weights"]) if d["weights"] is not None else None
    settings = {"src": str(root.resolve()), "exposure": d["exposure"], "noise": d["noise"], "seed": seed,
                "darkener": d["darkener"], "weights_sha256": weights_hash, "keep_saturated": d["keep_saturated"]}
    if dark is None:
        key = settings_key({k: v for k, v in settings.items() if k != "src"})[:8]
        dark = root.with_name(root.name + f"-dark-s{seed}-{key}")
    dark = Path(dark)
    if stage_done(dark, settings):
        return dark
    from ..darkening import darken_dataset

    t0 = time.perf_counter()
    if verbose:
        print(f"darkening {root} -> {dark} ({describe_darkening(d)}, seed {seed})")
    exp = tuple(d["exposure"]) if isinstance(d["exposure"], list) else d["exposure"]
    kwargs = dict(exposure=exp, noise=d["noise"], seed=seed, darkener=d["darkener"], model=d["weights"],
                  keep_saturated=d["keep_saturated"])
    if workers is not None:
        kwargs["workers"] = workers
    report = darken_dataset(root, dark, **kwargs)
    mark_stage(dark, settings, {"seconds": time.perf_counter() - t0,
                                "report": report if isinstance(report, (dict, list, str, int, float)) else None})
    return dark


# --------------------------------------------------------------------------- models

def train_enhancer(dark_root, detector, out, w_up, w_down, train_kwargs, verbose=True):
    """Train (or reuse) a Zero-DCE++ with :func:`tasklle.train.joint`; returns (model, info)."""
    from ..train.joint import joint, load_upstream, state_dict_sha256
    from ..train.run import ResumeMismatch

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
    except ResumeMismatch as e:
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
