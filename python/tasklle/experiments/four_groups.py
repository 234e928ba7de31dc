"""The method's Table 4.1: four image groups through the same frozen detector.

1. ``low-light``  -- the darkened val images (EC-Zero-DCE + noise),
2. ``zero-dce++`` -- those images enhanced by Zero-DCE++ trained with L_up only
   (W_up:W_down = 1:0),
3. ``joint``      -- enhanced by Zero-DCE++ trained jointly (default 2:1),
4. ``original``   -- the normal-light val images,

each detected by the same detector and scored with the WIDER FACE protocol
(AP easy / medium / hard). Both enhancers are trained by the same loop
(:func:`tasklle.train.joint`) on the same darkened train split, with the same
steps, batch, crops and seed; only W_down differs.

Outputs in ``out``: ``results.json``, ``results.md``, ``pr_curves.png``,
``ap_bars.png``, ``detections.png`` (the Fig. 4.1-style figure), per-group
prediction folders and the two trained enhancers (``models/*/final.pt``).
Every stage is resumable: a rerun with the same settings skips what is done.

Every AP comes with its 95% bootstrap interval over the val images and the
method's claims with paired intervals of the differences (:mod:`.claims`);
``seeds`` > 1 trains more seeds of each enhancer; ``judges`` scores every
group with other detectors too. The claims in ``results.json``:

- ``groups`` {group: {setting: AP}} (the frozen detector, first seed),
  ``intervals`` {group: {setting: [lo, hi]}}, ``differences`` {"a - b":
  {setting: {'delta', 'ci': [lo, hi], 'verdict'}}} for :data:`DIFFERENCES`,
  ``bootstrap`` {resamples, seed, level, unit: 'val images', n_images};
- ``detector_name`` and, per detector (the frozen one first, then each judge),
  ``groups_by_detector``, ``intervals_by_detector``, ``differences_by_detector``;
  ``judges`` {name: {sha256, detect_kwargs, parameters, name}};
- ``seeds_spread`` {enhancer group: {setting: {per_seed, mean, std, min, max}}}
  and ``seeds['train_seeds']``.
"""
import platform
import time
from pathlib import Path

import numpy as np

from ..detection import PRED_FORMATS
from ..eval.tables import ap_table
from . import claims, detect_eval, stages
from .detect_eval import GROUPS, SETTINGS

# the differences the method claims (Table 4.1's ordering), each with a paired interval
DIFFERENCES = (("joint", "zero-dce++"), ("zero-dce++", "low-light"), ("joint", "low-light"), ("original", "low-light"))

REFERENCE_TABLE_4_1 = {
    "low-light": {"easy": 0.9404, "medium": 0.9259, "hard": 0.8852},
    "zero-dce++": {"easy": 0.9437, "medium": 0.9312, "hard": 0.8904},
    "joint": {"easy": 0.9478, "medium": 0.9387, "hard": 0.8998},
    "original": {"easy": 0.9631, "medium": 0.9564, "hard": 0.9301},
}


def train_settings(steps=1000, batch_size=4, image_size=640, lr=1e-4, weight_decay=None, grad_clip="recipe",
                   crop="random", exposure=0.6, normalise="none", ema_decay=0.99, seed=0, checkpoint_every=100,
                   num_workers=0, show_progress=True, upstream=None, init_std=0.02, recipe="method"):
    """The keyword arguments both enhancers are trained with (see tasklle.train.joint).

    The optimiser is the method's by default (``recipe='method'``: Adam with
    default parameters, no weight decay, no clipping); ``recipe='zero-dce++'``
    is the official Zero-DCE++ script's (weight decay 1e-4, clip 0.1). The
    recipe is resolved here, so the settings (and the cache keys made from
    them) hold the numbers."""
    from ..train.recipes import resolve_recipe

    recipe, weight_decay, grad_clip = resolve_recipe(recipe, weight_decay, grad_clip)
    return dict(steps=steps, batch_size=batch_size, image_size=image_size, lr=lr, weight_decay=weight_decay,
                grad_clip=grad_clip, recipe=recipe, crop=crop, exposure=exposure, normalise=normalise,
                ema_decay=ema_decay, seed=seed, checkpoint_every=checkpoint_every, num_workers=num_workers,
                show_progress=show_progress, upstream=None if upstream is None else str(upstream),
                init_std=init_std)


def optimizer_description(train):
    from ..train.recipes import describe

    return describe(train.get("recipe", "method"), float(train["lr"]), float(train.get("weight_decay", 0.0)),
                    train.get("grad_clip"))


def resolve_train(train, show_progress):
    """The training keyword arguments (defaults: ``train_settings()``) and whether to show progress."""
    train = dict(train or train_settings())
    show = train.get("show_progress", show_progress)
    train["show_progress"] = show
    return train, show


def prepare(root=None, dark=None, detector=None, vedadet=None, dark_seed=0, max_val=None, out=None,
            n_train=None, n_val=None, darken_workers=None, verbose=True, detect_kwargs=None, darkening=None,
            gt=None, pred_format="exact", show_progress=True, biubug6=None, input_scale=None):
    """Data root, dark copy, detector, val entries and gt folder shared by the experiments, and
    ``base``: the settings every group's cached result is keyed on (the darkening included, so a
    dark copy made another way is never taken for this one). ``gt``: the evaluation ground-truth
    folder (default: found under the root, see ``tasklle.eval.find_ground_truth``)."""
    from ..data.splits import list_split
    from ..eval.ground_truth import find_ground_truth
    import torch

    from ..models.protocol import detector_key
    from ..models.shipped import load_detector, shipped_path
    from .detectors import set_input_scale

    if pred_format not in PRED_FORMATS:
        raise ValueError(f"pred_format must be one of {PRED_FORMATS}, got {pred_format!r}")
    if root is not None:
        find_ground_truth(root, gt)  # fail before darkening when the evaluation files are missing

    darkening = stages.darkening_settings(darkening)
    t0 = time.perf_counter()
    root = stages.resolve_root(root, n_train=n_train, n_val=n_val, verbose=verbose)
    t_data = time.perf_counter() - t0
    t0 = time.perf_counter()
    dark = stages.ensure_dark(root, dark, seed=dark_seed, workers=darken_workers, verbose=verbose,
                              darkening=darkening, show_progress=show_progress)
    t_dark = time.perf_counter() - t0
    det = set_input_scale(load_detector(detector, vedadet, biubug6), input_scale)
    source = vedadet or biubug6 or detector or shipped_path("tinaface-lite-demo")
    det_info = {"source": type(source).__name__ if isinstance(source, torch.nn.Module) else str(source),
                "kind": "vedadet" if vedadet else "biubug6" if biubug6 else "tasklle",
                "class": type(det).__name__, "sha256": detector_key(det),
                "input_scale": float(getattr(det, "input_scale", 1.0)),
                "parameters": int(sum(p.numel() for p in det.parameters()))}
    entries = list_split(root, "val", max_val)
    gt = detect_eval.restrict_gt(root, entries, Path(out) / "gt" if out else Path(dark) / "gt-subset", gt=gt)
    dark_info = dict(darkening, seed=dark_seed, description=stages.describe_darkening(darkening),
                     weights=None if darkening["weights"] is None else str(darkening["weights"]))
    base = {"detector": det_info["sha256"], "entries": len(entries), "gt": str(gt), "detect": detect_kwargs or {},
            "darkening": {k: v for k, v in dark_info.items() if k != "description"}}
    if pred_format != "exact":  # keeps the keys of runs made before the option existed
        base["pred_format"] = pred_format
    return {"root": root, "dark": dark, "detector": det, "detector_info": det_info, "entries": entries,
            "gt": gt, "base": base, "darkening": dark_info, "pred_format": pred_format,
            "timings": {"data_s": t_data, "darken_s": t_dark}}


def run(root=None, out="runs/four-groups", *, detector=None, vedadet=None, dark=None, w_up=1.0, w_down=0.5,
        train=None, dark_seed=0, max_val=None, detect_kwargs=None, figure_images=4, score_threshold=0.5,
        n_train=None, n_val=None, darken_workers=None, show_progress=True, verbose=True, darkening=None,
        gt=None, pred_format="exact", resamples=claims.CLAIM_RESAMPLES, bootstrap_seed=0, level=0.95, seeds=1,
        judges=None, biubug6=None, input_scale=None):
    """Run the four-group experiment; returns the results dict (also in ``out/results.json``).

    Args:
        root: WIDER-format root (None: the built-in dataset).
        out: experiment folder.
        detector / vedadet / biubug6: the frozen detector, as
            :func:`tasklle.models.load_detector` takes it: a module following the
            detector protocol, a shipped name ('retinaface-mobilenet0.25',
            'tinaface-lite-demo'), a tasklle checkpoint; or a vedadet TinaFace /
            biubug6 RetinaFace state_dict (None: the shipped lite TinaFace).
        input_scale: the frozen detector's input scale (RetinaFace: its loss and
            ``detect`` resize images by it inside; None: the detector's own).
        dark: where the dark copy is (made if missing; default beside root).
        w_up, w_down: joint training's weights (the method: 1, 0.5).
        train: keyword arguments for both trainings (see ``train_settings``).
        dark_seed: seed of the darkening.
        max_val: evaluate on this many val images (a fixed seeded subset) instead of all.
        detect_kwargs: passed to ``detector.detect`` (e.g. test scale).
        figure_images: how many images the Fig. 4.1-style figure shows.
        darkening: how the dark copy is made (``stages.darkening_settings``;
            default the method's: EC-Zero-DCE, E ~ U(0.05, 0.3), saturated
            pixels kept, no noise; e.g. ``{'noise': 'lednet'}`` or
            ``{'darkener': 'lednet', 'weights': 'ce_zerodce.pth'}``).
        gt: the folder with wider_face_val.mat and wider_{easy,medium,hard}_val.mat
            (default: searched under root; the last three come with WIDER
            FACE's evaluation tools, not with wider_face_split.zip).
        pred_format: 'exact' (float boxes) or 'vedadet-int' (integer-truncated
            boxes, as vedadet's WIDER test script writes them).
        resamples, bootstrap_seed, level: the bootstrap over val images behind
            every interval (at least 1,000 resamples for the tables' claims;
            results.md says so when fewer).
        seeds: enhancers trained per group (training seeds ``train['seed'] + k``,
            k = 0..seeds-1; seed k > 0 in ``models/<name>/seed<k>``); the main
            table is the first seed, ``seeds_spread`` the spread over all.
        judges: {name: (detector, detect_kwargs)}: detectors the enhancers never
            trained against, scoring every group too (None: none).
    """
    t_all = time.perf_counter()
    out, boot, seeds, frozen_name, judges = claims.start(out, resamples, bootstrap_seed, level, seeds, judges,
                                                         detector, vedadet, biubug6)
    train, show = resolve_train(train, show_progress)
    prep = prepare(root, dark, detector, vedadet, dark_seed, max_val, out, n_train, n_val, darken_workers, verbose,
                   detect_kwargs, darkening, gt, pred_format, show_progress=show, biubug6=biubug6,
                   input_scale=input_scale)
    root, dark, det, entries, gt = prep["root"], prep["dark"], prep["detector"], prep["entries"], prep["gt"]
    timings, base = dict(prep["timings"]), prep["base"]
    if verbose:
        print(f"four groups on {len(entries)} val images of {root} (dark copy {dark}: "
              f"{prep['darkening']['description']})")

    aps, fulls, preds = {}, {}, {}

    def group(name, image_root, enhancer=None, model_key=None):
        settings = dict(base, group=name, root=str(Path(image_root).resolve()), model=model_key)
        ap, full, secs, p = detect_eval.run_group(out / "groups" / name, settings, det, image_root, entries, gt,
                                             enhancer, detect_kwargs, show_progress=show, desc=name,
                                             verbose=verbose, pred_format=pred_format)
        aps[name], fulls[name], preds[name] = ap, full, p
        timings[f"detect_{name}_s"] = secs

    group("original", root)
    group("low-light", dark)
    models = {}
    infos = {}
    for name, wu, wd in (("zero-dce++", w_up if w_up > 0 else 1.0, 0.0), ("joint", w_up, w_down)):
        t0 = time.perf_counter()
        if verbose:
            print(f"training {name} (W_up:W_down = {wu:g}:{wd:g}, {train['steps']} steps)")
        models[name], infos[name] = stages.train_enhancer(dark, det, out / "models" / name, wu, wd, train,
                                                          verbose=verbose)
        timings[f"train_{name}_s"] = infos[name].get("seconds", time.perf_counter() - t0)
    for name in ("zero-dce++", "joint"):
        group(name, dark, models[name], model_key=infos[name].get("key"))

    # ---- the claims: more seeds, intervals, paired differences, judges (see .claims)
    t0 = time.perf_counter()
    enhancers = {"zero-dce++": (w_up if w_up > 0 else 1.0, 0.0, "zero-dce++", "zero-dce++"),
                 "joint": (w_up, w_down, "joint", "joint")}
    seed_aps = claims.train_more_seeds(out, seeds, enhancers, aps, train, dark, det, base, entries, gt,
                                       detect_kwargs, show, verbose, pred_format)
    timings["seeds_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sources = {"original": (root, None, None), "low-light": (dark, None, None),
               **{n: (dark, models[n], infos[n].get("key")) for n in ("zero-dce++", "joint")}}
    judged = claims.judge_groups(out, judges, sources, base, entries, gt, show, verbose, pred_format)
    timings["judges_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    claim = claims.claims_by_detector(frozen_name, {g: (aps[g], preds[g]) for g in GROUPS}, judged, gt, boot,
                                      DIFFERENCES)
    timings["bootstrap_s"] = time.perf_counter() - t0

    # the figures
    t0 = time.perf_counter()
    figures = write_figures(out, fulls, aps, preds, root, dark, models, entries, figure_images, score_threshold,
                            claim["intervals_by_detector"][frozen_name])
    timings["figures_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_all

    groups = {g: aps[g] for g in GROUPS}
    delta = {k: groups["joint"][k] - groups["zero-dce++"][k] for k in SETTINGS}
    results = {
        "experiment": "four-groups",
        "groups": groups,
        "joint_minus_zero_dce++": delta,
        **claims.results_claims(claim, frozen_name, boot, len(entries), judged, seed_aps),
        "config": {"root": str(root), "dark": str(dark), "w_up": w_up, "w_down": w_down, "train": train,
                   "val_images": len(entries), "max_val": max_val, "detect_kwargs": detect_kwargs or {},
                   "score_threshold_figure": score_threshold, "gt_dir": str(gt), "pred_format": pred_format},
        "darkening": prep["darkening"],
        "optimizer": optimizer_description(train),
        "seeds": {"darken": dark_seed, "train": train.get("seed", 0), "demo_data": 0, "n_train_seeds": seeds,
                  "train_seeds": [train.get("seed", 0) + k for k in range(seeds)]},
        "detector": prep["detector_info"],
        "training": infos,
        "timings": timings,
        "figures": {k: str(v) for k, v in figures.items()},
        "reference_table_4_1": REFERENCE_TABLE_4_1,
        "machine": {"python": platform.python_version(), "threads": _threads()},
    }
    from .quality_stage import add_quality  # image quality beside the AP (quality_stage.py)

    add_quality(results, out, base, root, dark, entries,
                {"low-light": None, "zero-dce++": models["zero-dce++"], "joint": models["joint"]}, groups,
                show_progress=show)
    _write_results(out, results)
    return results


def _threads():
    try:
        import tasklle

        return tasklle.get_num_threads()
    except Exception:  # pragma: no cover - the extension is always there in an install
        return None


GROUP_LABELS = {"low-light": "low-light", "zero-dce++": "Zero-DCE++ (L_up only)", "joint": "joint training",
                "original": "original"}


def markdown(results):
    lines = ["# Four image groups (the method's Table 4.1)", "",
             f"Detector: `{results['detector']['source']}`; val images: {results['config']['val_images']}; "
             f"joint training W_up:W_down = {results['config']['w_up']:g}:{results['config']['w_down']:g}, "
             f"{results['config']['train'].get('steps')} steps.", "",
             f"Dark copy: {results['darkening']['description']}. Optimiser: {results['optimizer']}.", ""]
    lines += claims.claims_markdown(results, GROUPS, GROUP_LABELS, "group")
    lines += ["Reference (the report, real WIDER FACE, full TinaFace):", "",
              ap_table([(k, v) for k, v in results["reference_table_4_1"].items()], "group"), ""]
    if "quality" in results:
        from .quality_stage import markdown_section

        lines += markdown_section(results, {g: results["groups"][g] for g in GROUPS})
    t = results["timings"]
    lines += ["Timings (s; a stage reused from an earlier run keeps the time it took then, total is this run): "
              + ", ".join(f"{k[:-2]} {v:.0f}" for k, v in t.items()), ""]
    return "\n".join(lines)


def _write_results(out, results):
    from ..io import atomic_write, write_json

    write_json(Path(out) / "results.json", results)  # strict JSON: write_json converts
    with atomic_write(Path(out) / "results.md", "w") as f:
        f.write(markdown(results))


def pick_figure_images(root, entries, k):
    """k val images for the figure: the ones with the most faces of at least
    16 px among a fixed seeded subset (deterministic)."""
    from ..data import WiderFace
    from ..data.splits import entries_of

    if k <= 0:
        return []
    ds = WiderFace(root, split="val")
    index = {(e, n): i for i, e, n in entries_of(ds)}
    rng = np.random.default_rng(7)
    cand = [entries[i] for i in sorted(rng.permutation(len(entries))[: min(len(entries), 40)])]
    scored = []
    for _, e, n in cand:
        item = ds[index[(e, n)]]
        b = np.asarray(item["boxes"], dtype=np.float64).reshape(-1, 4)
        ok = ((b[:, 2] - b[:, 0]) >= 16).sum() if len(b) else 0
        scored.append((-int(ok), e, n, item))
    scored.sort(key=lambda t: (t[0], t[1], t[2]))
    return [(e, n, item) for _, e, n, item in scored[:k]]


def _pr_plot(results, path):
    from ..eval import wider

    wider.plot_pr_curves(results, path)  # draws on its own Figure, no pyplot state
    return path


def write_figures(out, fulls, aps, preds, root, dark, models, entries, k, score_threshold, intervals=None):
    from ..enhancement import enhance
    from ..eval import wider
    from ..io import read_image
    from . import figures

    out = Path(out)
    paths = {}
    try:
        paths["pr_curves"] = _pr_plot({g: fulls[g] for g in GROUPS if fulls.get(g) is not None},
                                                  out / "pr_curves.png")
    except Exception as e:  # a plotting problem must not lose the computed table
        print(f"warning: PR-curve plot failed: {e}")
    paths["ap_bars"] = figures.ap_bars([(g, aps[g]) for g in GROUPS], out / "ap_bars.png",
                                       title="AP of the four image groups (error bars: bootstrap intervals)",
                                       intervals=intervals)
    rows = []
    for event, name, item in pick_figure_images(root, entries, k):
        low = read_image(Path(dark) / "WIDER_val" / "images" / event / f"{name}.jpg")
        imgs = {"low-light": low, "original": item["image"]}
        for g in ("zero-dce++", "joint"):
            imgs[g] = enhance(low, model=models[g])
        dets = {}
        for g in GROUPS:
            d = np.asarray(preds[g].get((event, name), np.zeros((0, 5))), dtype=np.float64).reshape(-1, 5).copy()
            d[:, 2] += d[:, 0]
            d[:, 3] += d[:, 1]
            dets[g] = d
        rows.append({"name": f"{event}/{name}", "gt": item["boxes"], "images": imgs, "dets": dets})
    if rows:
        paths["detections"] = figures.detection_grid(
            rows, list(GROUPS), out / "detections.png", score_threshold=score_threshold,
            title=f"detections (score >= {score_threshold}); dashed: ground truth")
    return {k: v for k, v in paths.items() if v is not None}
