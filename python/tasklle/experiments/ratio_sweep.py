"""The method's Table 4.2: joint training over W_up:W_down ratios.

For each ratio ``a:b`` the enhancer is trained with ``W_up = a / max(a, b)``
and ``W_down = b / max(a, b)`` (so 2:1 is the method's W_up 1, W_down 0.5;
1:0 is Zero-DCE++ with L_up only, 0:1 the detector's loss alone), on the same
dark train split with the same steps, crops and seed; the dark val images are
enhanced by it and detected by the same frozen detector. Low-light and
original are evaluated once as the bounds.

Outputs in ``out``: ``results.json`` (``{"ratios": {"2:1": {"easy", "medium",
"hard", "w_up", "w_down"}, ...}, "bounds": {"low-light", "original"}, ...}``),
``results.md``, ``ap_vs_ratio.png``, ``pr_curves_<setting>.png``,
``enhanced.png`` (the same images under every ratio, like Fig. 4.3). Resumable
ratio by ratio.

Every AP has its bootstrap interval (``intervals``: each ratio and bound), and
each ratio is compared with 1:0 (Zero-DCE++ alone) and with low-light by
paired intervals (``differences``); ``seeds``, ``judges`` and the
``*_by_detector`` keys as in :mod:`.four_groups` (see :mod:`.claims`).
"""
import time
from fractions import Fraction
from pathlib import Path

from ..eval.tables import ap_table
from . import claims, detect_eval, stages
from .detect_eval import SETTINGS
from .four_groups import optimizer_description, prepare, resolve_train

DEFAULT_RATIOS = ("1:0", "1:1", "3:2", "2:1", "3:1", "2:3", "1:3", "0:1")
REFERENCE_TABLE_4_2 = {
    "1:0": (0.9437, 0.9312, 0.8904), "1:1": (0.9464, 0.9362, 0.8974), "3:2": (0.9465, 0.9363, 0.9380),
    "2:1": (0.9478, 0.9387, 0.8998), "3:1": (0.9480, 0.9375, 0.8987), "2:3": (0.9454, 0.9351, 0.8967),
    "1:3": (0.9457, 0.9352, 0.8962), "0:1": (0.9418, 0.9294, 0.8889),
}


def parse_ratio(text):
    """'2:1' -> (1.0, 0.5): the two weights divided by the larger one."""
    if isinstance(text, (tuple, list)) and len(text) == 2:
        a, b = text
    else:
        parts = str(text).replace("/", ":").split(":")
        if len(parts) != 2:
            raise ValueError(f"ratio must look like 'W_up:W_down' (e.g. 2:1), got {text!r}")
        try:
            a, b = (Fraction(p.strip()) for p in parts)
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"ratio must look like 'W_up:W_down' (e.g. 2:1), got {text!r}") from None
    a, b = float(a), float(b)
    if a < 0 or b < 0 or (a == 0 and b == 0):
        raise ValueError(f"ratio {text!r}: weights must be >= 0 and not both 0")
    m = max(a, b)
    return a / m, b / m


def run(root=None, out="runs/ratio-sweep", *, ratios=DEFAULT_RATIOS, detector=None, vedadet=None, dark=None,
        train=None, dark_seed=0, max_val=None, detect_kwargs=None, figure_images=2, n_train=None, n_val=None,
        darken_workers=None, show_progress=True, verbose=True, darkening=None, gt=None, pred_format="exact",
        resamples=claims.CLAIM_RESAMPLES, bootstrap_seed=0, level=0.95, seeds=1, judges=None, biubug6=None,
        input_scale=None):
    """Run the sweep; returns the results dict (also ``out/results.json``). Arguments as in
    :func:`tasklle.experiments.four_groups.run`; ``ratios`` are 'a:b' strings."""
    t_all = time.perf_counter()
    out, boot, seeds, frozen_name, judges = claims.start(out, resamples, bootstrap_seed, level, seeds, judges,
                                                         detector, vedadet, biubug6)
    ratios = [str(r) for r in ratios]
    weights = {r: parse_ratio(r) for r in ratios}
    if len(set(ratios)) != len(ratios):
        raise ValueError(f"ratios: duplicates in {ratios}")
    train, show = resolve_train(train, show_progress)
    prep = prepare(root, dark, detector, vedadet, dark_seed, max_val, out, n_train, n_val, darken_workers, verbose,
                   detect_kwargs, darkening, gt, pred_format, show_progress=show, biubug6=biubug6,
                   input_scale=input_scale)
    root, dark, det, entries, gt = prep["root"], prep["dark"], prep["detector"], prep["entries"], prep["gt"]
    timings, base = dict(prep["timings"]), prep["base"]
    fulls, table, models, preds, keys = {}, {}, {}, {}, {}
    bounds = {}
    for name, image_root in (("low-light", dark), ("original", root)):
        settings = dict(base, group=name, root=str(Path(image_root).resolve()), model=None)
        ap, full, secs, preds[name] = detect_eval.run_group(out / "groups" / name, settings, det, image_root, entries,
                                                        gt, None, detect_kwargs, show_progress=show,
                                                        verbose=verbose, pred_format=pred_format)
        bounds[name] = ap
        timings[f"detect_{name}_s"] = secs
    for r in ratios:
        wu, wd = weights[r]
        tag = r.replace(":", "-").replace("/", "_")
        if verbose:
            print(f"ratio {r}: W_up {wu:g}, W_down {wd:g}")
        model, info = stages.train_enhancer(dark, det, out / "models" / tag, wu, wd, train, verbose=verbose)
        settings = dict(base, group=f"ratio {r}", root=str(Path(dark).resolve()), model=info.get("key"))
        ap, full, secs, preds[r] = detect_eval.run_group(out / "groups" / tag, settings, det, dark, entries, gt,
                                                     model, detect_kwargs, show_progress=show, desc=r,
                                                     verbose=verbose, pred_format=pred_format)
        keys[r] = info.get("key")
        table[r] = dict(ap, w_up=wu, w_down=wd)
        fulls[r] = full
        models[r] = model
        timings[f"ratio_{tag}_s"] = info.get("seconds", 0.0) + secs

    # ---- the claims: more seeds, judges, intervals and paired differences (see .claims)
    t0 = time.perf_counter()
    enhancers = {r: (*weights[r], r.replace(":", "-").replace("/", "_"), f"ratio {r}") for r in ratios}
    seed_aps = claims.train_more_seeds(out, seeds, enhancers, {r: {k: table[r][k] for k in SETTINGS} for r in ratios},
                                       train, dark, det, base, entries, gt, detect_kwargs, show, verbose, pred_format)
    timings["seeds_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sources = {"low-light": (dark, None, None), **{r: (dark, models[r], keys[r]) for r in ratios},
               "original": (root, None, None)}
    judged = claims.judge_groups(out, judges, sources, base, entries, gt, show, verbose, pred_format)
    timings["judges_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    order = ["low-light", *ratios, "original"]
    frozen = {g: ({k: (bounds[g] if g in bounds else table[g])[k] for k in SETTINGS}, preds[g]) for g in order}
    pairs = [(r, "1:0") for r in ratios if r != "1:0" and "1:0" in ratios] + [(r, "low-light") for r in ratios]
    claim = claims.claims_by_detector(frozen_name, frozen, judged, gt, boot, pairs)
    timings["bootstrap_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    figs = _figures(out, table, fulls, bounds, models, entries, dark, figure_images, verbose,
                    claim["intervals_by_detector"][frozen_name], root=root)
    timings["figures_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - t_all
    best = {k: max(ratios, key=lambda r: table[r][k]) for k in SETTINGS}
    results = {
        "experiment": "ratio-sweep",
        "ratios": table,
        "bounds": bounds,
        "best": best,
        **claims.results_claims(claim, frozen_name, boot, len(entries), judged, seed_aps),
        "config": {"root": str(root), "dark": str(dark), "ratios": ratios, "train": train,
                   "val_images": len(entries), "max_val": max_val, "detect_kwargs": detect_kwargs or {},
                   "gt_dir": str(gt), "pred_format": pred_format},
        "darkening": prep["darkening"],
        "optimizer": optimizer_description(train),
        "seeds": {"darken": dark_seed, "train": train.get("seed", 0), "n_train_seeds": seeds,
                  "train_seeds": [train.get("seed", 0) + k for k in range(seeds)]},
        "detector": prep["detector_info"],
        "timings": timings,
        "figures": {k: str(v) for k, v in figs.items()},
        "reference_table_4_2": {k: dict(zip(SETTINGS, v)) for k, v in REFERENCE_TABLE_4_2.items()},
    }
    from ..io import atomic_write, write_json
    from .quality_stage import add_quality  # image quality beside the AP (quality_stage.py)

    add_quality(results, out, base, root, dark, entries, {"low-light": None, **models},
                {"low-light": bounds["low-light"], **table}, show_progress=show, label_kind="W_up:W_down")
    write_json(out / "results.json", results)  # strict JSON: write_json converts
    with atomic_write(out / "results.md", "w") as f:
        f.write(markdown(results))
    return results


def markdown(results):
    ratios = results["ratios"]
    label_of = {r: f"{r} (W_up {v['w_up']:.3g}, W_down {v['w_down']:.3g})" for r, v in ratios.items()}
    label_of.update({"low-light": "low-light (no enhancement)", "original": "original (no enhancement)"})
    lines = ["# W_up:W_down sweep (the method's Table 4.2)", "",
             f"Val images: {results['config']['val_images']}; {results['config']['train'].get('steps')} "
             "training steps per ratio, same data, crops and seed.", "",
             f"Dark copy: {results['darkening']['description']}. Optimiser: {results['optimizer']}.", ""]
    lines += claims.claims_markdown(results, ["low-light", *ratios, "original"], label_of, "W_up:W_down")
    lines += ["Highest point AP (the differences above say which gaps the intervals support): "
              + ", ".join(f"{k} {v}" for k, v in results["best"].items()) + ".", "",
              "Reference (the report, real WIDER FACE):", "",
              ap_table(list(results["reference_table_4_2"].items()), "W_up:W_down"), ""]
    if "quality" in results:
        from .quality_stage import markdown_section

        lines += markdown_section(results, {"low-light": results["bounds"]["low-light"], **results["ratios"],
                                            "original": results["bounds"]["original"]}, label="W_up:W_down")
    return "\n".join(lines)


def _pr_plot(results, path):
    from ..eval import wider

    wider.plot_pr_curves(results, path)  # draws on its own Figure, no pyplot state
    return path


def _figures(out, table, fulls, bounds, models, entries, dark, k, verbose, intervals=None, root=None):
    from ..enhancement import enhance
    from ..eval import wider
    from ..io import read_image
    from . import figures

    paths = {}
    labels = list(table)
    paths["ap_vs_ratio"] = figures.ap_bars(
        [("low-light", bounds["low-light"])] + [(r, table[r]) for r in labels] + [("original", bounds["original"])],
        out / "ap_vs_ratio.png", title="AP per W_up:W_down (error bars: bootstrap intervals)", xlabel="W_up:W_down",
        intervals=intervals)
    try:
        paths["pr_curves"] = _pr_plot({r: fulls[r] for r in labels if fulls.get(r) is not None},
                                                  out / "pr_curves.png")
    except Exception as e:  # keep the table even if a plot fails
        print(f"warning: PR-curve plot failed: {e}")
    rows = []
    for _, event, name in entries[:k]:
        low = read_image(Path(dark) / "WIDER_val" / "images" / event / f"{name}.jpg")
        imgs = {"low-light": low}
        for r in labels:
            imgs[r] = enhance(low, model=models[r])
        if root is not None:  # Fig. 4.3: the original beside the low-light input and every ratio
            imgs["original"] = read_image(Path(root) / "WIDER_val" / "images" / event / f"{name}.jpg")
        rows.append({"name": f"{event}/{name}", "images": imgs})
    if rows:
        paths["enhanced"] = figures.image_grid(rows, ["low-light"] + labels + (["original"] if root else []),
                                               out / "enhanced.png",
                                               title="the same images enhanced with each W_up:W_down")
    return paths
