"""The image-quality stage of the experiments: every group's images against the originals.

For the four-group experiment (low-light, Zero-DCE++, joint) and the ratio sweep
(low-light and each W_up:W_down), each val image is read as the detection reads it
(``tasklle.io.read_image`` of the dark copy, then the group's enhancer through
``tasklle.enhance``, in float, not re-quantised) and compared with its original
(``read_image`` of the normal-light image) by :func:`tasklle.eval.quality.image_quality`:
PSNR, SSIM, mean CIEDE2000 and the mean exposure, beside the originals' own
exposure and L_exp's E = 0.6.

Each group's per-image values are a resumable stage (``<out>/quality/<group>/stage.json``,
keyed on the images, the dark copy and the enhancer). The results hold, per group and
measure, ``{'mean', 'ci', 'per_image'}`` (:func:`tasklle.eval.quality.summarise`, the
bootstrap over images of :mod:`tasklle.eval.bootstrap`; one weight matrix for every group,
the same ``(n, resamples, seed)`` the AP intervals use).

Real dark images (DARK FACE) have no original: :func:`no_reference_group` computes the
no-reference statistics instead (:func:`tasklle.eval.quality.no_reference_stats`).
"""
import math
from pathlib import Path

from ..eval import bootstrap, quality
from .stages import mark_stage, stage_done

__all__ = ["add_quality", "full_reference_group", "no_reference_group", "quality_table", "experiment_quality",
           "markdown_section", "ap_vs_psnr", "stats_markdown"]


def _wider_path(root, event, name):
    return Path(root) / "WIDER_val" / "images" / event / f"{name}.jpg"


def full_reference_group(folder, settings, root, dark, entries, enhancer=None, show_progress=True, desc=None):
    """Per-image full-reference measures of one group: {measure: [n values]} in ``entries`` order,
    plus 'original_exposure'. ``enhancer`` None: the dark images themselves. Resumable."""
    from ..enhancement import enhance
    from ..io import read_image
    from ..progress import progress

    done = stage_done(folder, settings)
    if done:
        return done["result"]
    values = {k: [] for k in quality.FULL_REFERENCE}
    values["original_exposure"] = []
    for _, event, name in progress(entries, desc=desc or "quality", leave=False, disable=not show_progress):
        img = read_image(_wider_path(dark, event, name))
        if enhancer is not None:
            img = enhance(img, model=enhancer)
        ref = read_image(_wider_path(root, event, name))
        q = quality.image_quality(img, ref)
        for k in quality.FULL_REFERENCE:
            values[k].append(q[k])
        values["original_exposure"].append(quality.exposure(ref))
    mark_stage(folder, settings, values)
    return values


def no_reference_group(folder, settings, image_paths, enhancer=None, show_progress=True, desc=None):
    """Per-image no-reference statistics of one group: {statistic: [n values]} in ``image_paths``
    order. ``enhancer`` None: the images as they are. Resumable."""
    from ..enhancement import enhance
    from ..io import read_image
    from ..progress import progress

    done = stage_done(folder, settings)
    if done:
        return done["result"]
    values = {k: [] for k in quality.NO_REFERENCE}
    for path in progress(list(image_paths), desc=desc or "statistics", leave=False, disable=not show_progress):
        img = read_image(path)
        if enhancer is not None:
            img = enhance(img, model=enhancer)
        for k, v in quality.no_reference_stats(img).items():
            values[k].append(v)
    mark_stage(folder, settings, values)
    return values


def quality_table(per_group, measures, weights):
    """{group: {measure: summarise(...)}} of {group: {measure: [values]}} with one weight matrix."""
    return {g: {m: quality.summarise(v[m], weights=weights) for m in measures} for g, v in per_group.items()}


def experiment_quality(out, base, root, dark, entries, enhancers, resamples=bootstrap.RESAMPLES,
                       seed=bootstrap.SEED, show_progress=True):
    """The quality results of an experiment on WIDER-format data.

    enhancers: {group: model or None}: None for the low-light group. Returns
    ``(quality, original_exposure)``: ``{group: {'psnr', 'ssim', 'ciede2000', 'exposure': {'mean',
    'ci', 'per_image'}}}`` and ``{'mean', 'ci', 'per_image', 'target'}`` (target: L_exp's E)."""
    from ..train.joint import state_dict_sha256

    weights = bootstrap.resample_weights(len(entries), resamples, seed)
    per_group, original = {}, None
    for g, model in enhancers.items():
        key = None if model is None else state_dict_sha256(model)
        tag = g.replace(":", "-").replace("/", "_")
        settings = dict(base, stage="quality", group=g, root=str(Path(root).resolve()),
                        dark=str(Path(dark).resolve()), model=key, images=[f"{e}/{n}" for _, e, n in entries])
        v = full_reference_group(Path(out) / "quality" / tag, settings, root, dark, entries, model,
                                 show_progress=show_progress, desc=f"quality {g}")
        per_group[g] = v
        original = v["original_exposure"]
    table = quality_table(per_group, quality.FULL_REFERENCE, weights)
    orig = dict(quality.summarise(original, weights=weights), target=quality.EXPOSURE_TARGET)
    return table, orig


def add_quality(results, out, base, root, dark, entries, enhancers, aps, show_progress=True,
                label_kind="group"):
    """What an experiment adds to its results for the image quality: ``results['quality']``,
    ``results['original_exposure']`` and the AP-against-PSNR figure ``out/ap_vs_psnr.png``
    (``results['figures']['ap_vs_psnr']``). aps: {group: AP per setting} of the same groups.
    The intervals use the resamples of the AP intervals (``results['bootstrap']``), so AP and
    quality of a table are resampled together."""
    boot = results.get("bootstrap", {})
    q, orig = experiment_quality(out, base, root, dark, entries, enhancers,
                                 resamples=boot.get("resamples", bootstrap.RESAMPLES),
                                 seed=boot.get("seed", bootstrap.SEED), show_progress=show_progress)
    results["quality"], results["original_exposure"] = q, orig
    try:
        path = ap_vs_psnr([(g, _ap_values(aps[g]), q[g]["psnr"]) for g in q], Path(out) / "ap_vs_psnr.png",
                          label_kind=label_kind)
        results.setdefault("figures", {})["ap_vs_psnr"] = str(path)
    except Exception as e:  # a plotting problem must not lose the computed table
        print(f"warning: AP-vs-PSNR plot failed: {e}")
    return results


def _ap_values(ap):
    """{setting: float} from a table row that holds floats or {'ap': float, ...} per setting."""
    return {k: (v.get("ap") if isinstance(v, dict) else v) for k, v in ap.items() if k in ("easy", "medium", "hard")}


def _fmt(s, digits=2):
    m, (lo, hi) = s["mean"], s["ci"]
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def markdown_section(results, ap_of, label="group"):
    """Markdown lines: the AP and the image quality of each group side by side.

    ap_of: {row label: {'easy', 'medium', 'hard'} AP} in table order (the groups of
    ``results['quality']`` and, for the original, no quality but its exposure)."""
    q, orig = results.get("quality") or {}, results.get("original_exposure")
    lines = [f"Image quality against the original images (mean over images, 95% bootstrap interval; "
             f"PSNR in dB, SSIM: scikit-image, RGB, 7x7 window; CIEDE2000: mean per pixel, lower is closer; "
             f"exposure: mean pixel value, L_exp's target E = {quality.EXPOSURE_TARGET:g}):", "",
             f"| {label} | AP easy | AP medium | AP hard | PSNR | SSIM | CIEDE2000 | exposure |",
             "|---|---|---|---|---|---|---|---|"]
    for g, ap in ap_of.items():
        ap = _ap_values(ap)
        aps = " | ".join(f"{ap[k]:.4f}" if ap.get(k) is not None and not math.isnan(ap[k]) else "n/a"
                         for k in ("easy", "medium", "hard"))
        if g in q:
            r = q[g]
            cells = f"{_fmt(r['psnr'])} | {_fmt(r['ssim'], 3)} | {_fmt(r['ciede2000'])} | {_fmt(r['exposure'], 3)}"
        elif g == "original" and orig:
            cells = f"(reference) | 1 | 0 | {_fmt(orig, 3)}"
        else:
            cells = " | | | "
        lines.append(f"| {g} | {aps} | {cells} |")
    return lines + [""]


def ap_vs_psnr(points, path, title="AP against PSNR", label_kind="group"):
    """Scatter of AP (one panel per setting) against mean PSNR, one labelled point per group or
    ratio, with the PSNR interval as a horizontal bar. points: [(label, {'easy', 'medium', 'hard'},
    psnr summary {'mean', 'ci'})]. Saved atomically; returns the path."""
    from .figures import _save, _subplots

    if not points:
        raise ValueError("points: nothing to draw")
    settings = ("easy", "medium", "hard")
    fig, axes = _subplots(1, 3, (13.5, 4.0), squeeze=False)
    for ax, s in zip(axes[0], settings):
        for k, (lab, ap, ps) in enumerate(points):
            x, (lo, hi) = ps["mean"], ps["ci"]
            y = ap.get(s)
            if y is None or not math.isfinite(y):
                continue
            ax.errorbar([x], [y], xerr=[[x - lo], [hi - x]], fmt="o", color=f"C{k % 10}", capsize=3)
            ax.annotate(lab, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xlabel("PSNR against the original (dB)")
        ax.set_ylabel(f"AP {s}")
        ax.set_title(s, fontsize=10)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title} (one point per {label_kind}; bars: 95% bootstrap interval of the mean PSNR)",
                 fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def stats_markdown(no_reference, groups):
    """Markdown lines: the no-reference statistics of each group (mean [95% interval])."""
    lines = ["No-reference statistics (mean over images, 95% bootstrap interval; exposure: mean pixel value, "
             f"L_exp's E = {quality.EXPOSURE_TARGET:g}; dark: fraction of pixels with luma <= {quality.DARK_LEVEL:g}; "
             f"clipped: fraction with a channel >= {quality.CLIP_LEVEL:g}; blur: scikit-image's blur_effect, "
             "0 sharp .. 1 blurred):", "",
             "| group | exposure | dark fraction | clipped fraction | blur |", "|---|---|---|---|---|"]
    for g in groups:
        r = no_reference[g]
        lines.append(f"| {g} | " + " | ".join(_fmt(r[k], 3) for k in quality.NO_REFERENCE) + " |")
    return lines + [""]
