"""The experiments' stages that are made once and reused: the stage cache,
the data root, the dark copy and the trained enhancers.

Every stage writes its result atomically into the experiment folder together
with the settings that made it (``stage.json``); a rerun with the same
settings skips the stage, a rerun with different settings redoes it.
Detection and evaluation of an image group is in :mod:`.detect_eval`.
"""
import hashlib
import json
import os
import time
from pathlib import Path

from ..io import json_safe


# --------------------------------------------------------------------------- the stage cache

def settings_key(settings):
    """Short stable hash of a settings dict (decides whether a stage is redone)."""
    blob = json.dumps(json_safe(settings), sort_keys=True).encode()
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

    payload = {"key": settings_key(settings), "settings": json_safe(settings), "result": json_safe(result)}
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
                darkening=None, show_progress=True):
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
    from ..dataset_darkening import darken_dataset

    t0 = time.perf_counter()
    if verbose:
        print(f"darkening {root} -> {dark} ({describe_darkening(d)}, seed {seed})")
    exp = tuple(d["exposure"]) if isinstance(d["exposure"], list) else d["exposure"]
    kwargs = dict(exposure=exp, noise=d["noise"], seed=seed, darkener=d["darkener"], model=d["weights"],
                  keep_saturated=d["keep_saturated"], show_progress=show_progress)
    if workers is not None:
        kwargs["workers"] = workers
    report = darken_dataset(root, dark, **kwargs)
    mark_stage(dark, settings, {"seconds": time.perf_counter() - t0,
                                "report": report if isinstance(report, (dict, list, str, int, float)) else None})
    return dark


# --------------------------------------------------------------------------- models

def train_enhancer(dark_root, detector, out, w_up, w_down, train_kwargs, verbose=True):
    """Train (or reuse) a Zero-DCE++ with :func:`tasklle.train.joint`; returns (model, info)."""
    from ..models.protocol import detector_key
    from ..train.joint import joint, load_upstream
    from ..train.run import ResumeMismatch

    out = Path(out)
    det_hash = detector_key(detector) if (w_down > 0 and detector is not None) else None
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
