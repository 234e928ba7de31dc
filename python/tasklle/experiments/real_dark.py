"""Real dark images: does an enhancer help the detector on DARK FACE?

Groups: ``dark`` (the DARK FACE images as they are), then the same images
through each given enhancer (``zero-dce++``: the upstream-only Zero-DCE++,
``joint``: the jointly trained one; any tasklle Zero-DCE++ checkpoint or
official state_dict, loaded with ``ZeroDCEPP.load``), each detected by the same
frozen detector and scored as the DARK FACE challenge tools score
(:mod:`tasklle.eval.darkface`: one AP, every face counted). There is no
"original" group (the images are really dark; nothing normal-light exists), so
the image measures are the no-reference statistics of
:func:`tasklle.eval.quality.no_reference_stats`.

Evidence: a 95% bootstrap interval over images for every AP and statistic, and
a paired interval for each difference ``enhancer - dark`` (the same resampled
images for both groups; one weight matrix, :func:`tasklle.eval.bootstrap.resample_weights`,
for the whole table), with the verdict it supports.

Outputs in ``out``: ``results.json``, ``results.md``, ``pr_curves.png``, per
group ``groups/<group>/predictions/`` in the tools' format (``<name>.txt``,
``x y w h score`` lines; ``tasklle evaluate --darkface ROOT DIR`` rescoring
it gives the same AP) and its statistics. Resumable: a rerun with the same
settings reuses each group's predictions and statistics.
"""
import time
from pathlib import Path

from ..eval import bootstrap
from .stages import mark_stage, stage_done

__all__ = ["run", "markdown"]


def _detect_group(folder, settings, det, root, names, enhancer, detect_kwargs, pred_format, show_progress, desc):
    from ..detection import detect_split
    from ..eval import darkface

    folder = Path(folder)
    pred_dir = folder / "predictions"
    done = stage_done(folder, settings)
    if done and pred_dir.is_dir():
        return darkface.read_predictions(pred_dir, names), done["result"].get("seconds", 0.0)
    t0 = time.perf_counter()
    preds = detect_split(det, root, images=names, enhancer=enhancer, detect_kwargs=detect_kwargs,
                         pred_format=pred_format, out=pred_dir, show_progress=show_progress, desc=desc,
                         dataset="darkface")
    seconds = time.perf_counter() - t0
    mark_stage(folder, settings, {"seconds": seconds, "images": len(names)})
    return preds, seconds


def run(root, out="runs/real-dark", *, upstream=None, joint=None, enhancers=None, detector=None, vedadet=None,
        max_images=None, detect_kwargs=None, pred_format="exact", resamples=bootstrap.RESAMPLES,
        seed=bootstrap.SEED, show_progress=True, verbose=True):
    """Run the real-dark comparison; returns the results dict (also ``out/results.json``).

    Args:
        root: a DARK FACE release tree (``image/*.png``, ``label/*.txt``).
        out: experiment folder.
        upstream / joint: Zero-DCE++ checkpoints (paths or modules) for the groups
            ``zero-dce++`` and ``joint``; either may be None.
        enhancers: more groups, ``{name: checkpoint or module}``.
        detector / vedadet: as in the other experiments (``tasklle.models.load_detector``;
            default the shipped lite TinaFace, which was trained on the built-in
            data, not on real WIDER FACE: give a real detector for real numbers).
        max_images: the first this many images in numeric order (default all).
        detect_kwargs: passed to ``detector.detect`` (e.g. ``{'score_thr': 0.05}``).
        pred_format: 'exact' or 'vedadet-int' (see ``tasklle.detect_split``).
        resamples, seed: the bootstrap (one weight matrix for every group).
    """
    from ..data.darkface import DarkFace
    from ..eval import darkface, quality
    from ..io import atomic_write, write_json
    from ..models.shipped import load_detector, shipped_path
    from ..train.joint import load_upstream, state_dict_sha256
    from . import quality_stage

    t_all = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if max_images is not None and (isinstance(max_images, bool) or not isinstance(max_images, int)
                                   or max_images < 1):
        raise ValueError(f"max_images must be an int >= 1, got {max_images!r}")
    ds = DarkFace(root)
    names = ds.names[:max_images] if max_images is not None else ds.names
    models = {"dark": None}
    sources = {"dark": None}
    for name, src in [("zero-dce++", upstream), ("joint", joint)] + list((enhancers or {}).items()):
        if src is None:
            continue
        if name in models:
            raise ValueError(f"enhancers: the group name {name!r} is taken")
        models[name] = load_upstream(src).eval()
        sources[name] = src if isinstance(src, (str, Path)) else type(src).__name__
    det = load_detector(detector, vedadet)
    det_info = {"source": str(vedadet or detector or shipped_path("tinaface-lite-demo")),
                "sha256": state_dict_sha256(det)}
    gt = darkface.load_ground_truth(root, names)
    base = {"root": str(Path(root).resolve()), "images": names, "detector": det_info["sha256"],
            "detect": detect_kwargs or {}, "pred_format": pred_format}
    if verbose:
        print(f"real dark: {len(names)} DARK FACE images ({gt.n_faces} faces) of {root}; groups "
              f"{', '.join(models)}")

    weights = bootstrap.resample_weights(len(names), resamples, seed)
    groups, per_image, stats, fulls, timings = {}, {}, {}, {}, {}
    for g, model in models.items():
        key = None if model is None else state_dict_sha256(model)
        tag = g.replace(":", "-").replace("/", "_")
        preds, secs = _detect_group(out / "groups" / tag, dict(base, group=g, model=key), det, root, names, model,
                                    detect_kwargs, pred_format, show_progress, g)
        timings[f"detect_{tag}_s"] = secs
        full = darkface.evaluate(preds, gt)
        counts, faces = darkface.per_image_counts(preds, gt)
        per_image[g] = counts
        samples = darkface.ap_samples(counts, faces, weights)
        lo, hi = bootstrap.percentile_interval(samples)
        groups[g] = {"ap": full["ap"], "ci": [lo, hi], "samples": samples}
        fulls[g] = full
        t0 = time.perf_counter()
        stats[g] = quality_stage.no_reference_group(
            out / "groups" / tag / "statistics", {"stage": "no-reference", "root": base["root"], "images": names,
                                                  "model": key},
            [ds.image_path(n) for n in names], model, show_progress=show_progress, desc=f"statistics {g}")
        timings[f"statistics_{tag}_s"] = time.perf_counter() - t0
        if verbose:
            print(f"  {g:<12} AP {full['ap']:.4f} [{lo:.4f}, {hi:.4f}]")
    differences = {}
    for g in models:
        if g == "dark":
            continue
        d = groups[g]["samples"] - groups["dark"]["samples"]
        ci = bootstrap.percentile_interval(d)
        differences[f"{g} - dark"] = {"ap": groups[g]["ap"] - groups["dark"]["ap"], "ci": list(ci),
                                      "verdict": bootstrap.verdict(ci, higher=f"{g} better", lower=f"{g} worse")}
    no_reference = quality_stage.quality_table(stats, quality.NO_REFERENCE, weights)
    figures = {}
    try:
        figures["pr_curves"] = str(darkface.plot_pr_curves(fulls, out / "pr_curves.png"))
    except Exception as e:  # a plotting problem must not lose the computed table
        print(f"warning: PR-curve plot failed: {e}")
    timings["total_s"] = time.perf_counter() - t_all
    results = {
        "experiment": "real-dark",
        "groups": {g: {"ap": v["ap"], "ci": v["ci"]} for g, v in groups.items()},
        "differences": differences,
        "no_reference": no_reference,
        "images": names,
        "n_images": len(names),
        "n_faces": gt.n_faces,
        "config": {"root": str(root), "max_images": max_images, "detect_kwargs": detect_kwargs or {},
                   "pred_format": pred_format, "resamples": resamples, "seed": seed, "iou_thresh": 0.5,
                   "enhancers": {g: None if s is None else str(s) for g, s in sources.items()}},
        "detector": det_info,
        "timings": timings,
        "figures": figures,
    }
    write_json(out / "results.json", results)
    with atomic_write(out / "results.md", "w") as f:
        f.write(markdown(results))
    return results


def markdown(results):
    """The results as a Markdown report."""
    from . import quality_stage

    lines = ["# Real dark images: DARK FACE", "",
             f"{results['n_images']} images, {results['n_faces']} faces; detector `{results['detector']['source']}`. "
             "AP as the DARK FACE challenge tools compute it (one setting, every face counted, IoU 0.5); "
             "95% bootstrap intervals over images "
             f"({results['config']['resamples']} resamples, seed {results['config']['seed']}).", "",
             "| group | AP | 95% interval |", "|---|---|---|"]
    for g, v in results["groups"].items():
        lines.append(f"| {g} | {v['ap']:.4f} | [{v['ci'][0]:.4f}, {v['ci'][1]:.4f}] |")
    lines.append("")
    if results["differences"]:
        lines += ["Paired differences (the same resampled images for both groups):", "",
                  "| difference | AP | 95% interval | verdict |", "|---|---|---|---|"]
        for k, v in results["differences"].items():
            lines.append(f"| {k} | {v['ap']:+.4f} | [{v['ci'][0]:+.4f}, {v['ci'][1]:+.4f}] | {v['verdict']} |")
        lines.append("")
    lines += quality_stage.stats_markdown(results["no_reference"], list(results["groups"]))
    lines += ["There is no original group: the images are really dark, so no full-reference measure "
              "(PSNR, SSIM, CIEDE2000) exists. Next to the WIDER FACE tables these numbers are one setting over "
              "every face (DARK FACE's faces are mostly small), on real night-time noise and darkness instead of "
              "the synthetic darkening.", ""]
    return "\n".join(lines)
