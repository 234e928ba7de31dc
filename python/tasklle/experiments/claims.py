"""What the experiments' tables may claim: bootstrap intervals of every AP,
paired intervals of the differences, the spread over training seeds, and the
same groups scored by independent judges.

Shared by :mod:`.four_groups` and :mod:`.ratio_sweep` (and so the demo):

- :func:`bootstrap_groups`: each group's AP interval (``tasklle.eval.intervals``:
  the val images resampled 1,000 times by default, the same resamples for every
  group and every detector, so differences are paired);
- :func:`differences`: ``"a - b"`` -> per setting ``{'delta', 'ci', 'verdict'}``
  with :func:`tasklle.eval.bootstrap.verdict`'s wording;
- :func:`seed_spread`: per-seed APs, mean, std, min, max;
- :func:`judge_groups`: every group's images detected by other detectors (the
  judges, which the enhancers never trained against), cached like the groups;
- Markdown helpers for the tables.
"""
import math
import re
from pathlib import Path

import numpy as np

from ..eval.bootstrap import LEVEL, RESAMPLES, SEED
from .detect_eval import SETTINGS

CLAIM_RESAMPLES = 1000  # the fewest resamples a table's claims are made with


def start(out, resamples, bootstrap_seed, level, seeds, judges, detector, vedadet, biubug6):
    """The checks and the output folder every claims experiment starts with:
    returns ``(out (created), boot, seeds, frozen_name, judges)``, see
    :func:`bootstrap_settings`, :func:`check_seeds`, :func:`detector_name`,
    :func:`check_judges`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    boot = bootstrap_settings(resamples, bootstrap_seed, level)
    seeds = check_seeds(seeds)
    frozen_name = detector_name(detector, vedadet, biubug6)
    return out, boot, seeds, frozen_name, check_judges(judges, frozen_name)


def bootstrap_settings(resamples=RESAMPLES, seed=SEED, level=LEVEL):
    """The ``bootstrap`` record of results.json (checked: resamples an int >= 1)."""
    from ..eval.bootstrap import _check_int, _check_level

    return {"resamples": _check_int("resamples", resamples, 1), "seed": _check_int("bootstrap seed", seed, 0),
            "level": _check_level(level), "unit": "val images"}


def bootstrap_groups(preds, gt, boot):
    """({group: {setting: [lo, hi]}}, {group: bootstrap result}) for ``preds``
    {group: predictions mapping} on the gt folder, with the ``boot`` settings."""
    from ..eval import intervals
    from ..eval.wider import _resolve_gt

    gt = _resolve_gt(gt, SETTINGS)  # read once for every group
    boots = {g: intervals.bootstrap(p, gt, boot["resamples"], boot["seed"], boot["level"]) for g, p in preds.items()}
    return {g: {s: [float(b[s][0]), float(b[s][1])] for s in SETTINGS} for g, b in boots.items()}, boots


def differences(boots, pairs):
    """{"a - b": {setting: {'delta', 'ci', 'verdict'}}} for each (a, b) in pairs."""
    from ..eval import intervals

    return {f"{a} - {b}": intervals.difference(boots[a], boots[b]) for a, b in pairs}


def seed_spread(aps_by_seed):
    """{setting: {'per_seed': [AP of seed 0, 1, ...], 'mean', 'std' (sample, ddof 1;
    0 for one seed), 'min', 'max'}} from a list of {setting: AP} (one per seed)."""
    out = {}
    for s in SETTINGS:
        v = np.array([float(a[s]) for a in aps_by_seed], dtype=np.float64)
        out[s] = {"per_seed": v.tolist(), "mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                  "min": float(v.min()), "max": float(v.max())}
    return out


def check_seeds(seeds):
    """``seeds`` as an int >= 1 (TypeError / ValueError naming it)."""
    from ..eval.bootstrap import _check_int

    return _check_int("seeds", seeds, 1)


def train_more_seeds(out, seeds, enhancers, aps, train, dark, detector, base, entries, gt, detect_kwargs,
                     show_progress=True, verbose=True, pred_format="exact"):
    """Train and score seeds 1..seeds-1 of each enhancer (seed 0 is the run's own).

    enhancers: {name: (w_up, w_down, folder tag, group name in the cache key)};
    aps: {name: seed 0's {setting: AP}}. Seed k trains with ``train['seed'] + k``
    into ``out/models/<tag>/seed<k>`` and is detected into
    ``out/groups/<tag>/seed<k>`` (both resumable). Returns {name: [AP dict per seed]}."""
    from . import detect_eval, stages

    out = Path(out)
    per_seed = {n: [aps[n]] for n in enhancers}
    for k in range(1, seeds):
        train_k = dict(train, seed=int(train.get("seed", 0)) + k)
        for name, (wu, wd, tag, group) in enhancers.items():
            if verbose:
                print(f"seed {k} of {name} (training seed {train_k['seed']})")
            model, info = stages.train_enhancer(dark, detector, seed_folder(out / "models" / tag, k), wu, wd,
                                                train_k, verbose=verbose)
            settings = dict(base, group=group, root=str(Path(dark).resolve()), model=info.get("key"))
            ap, _, _, _ = detect_eval.run_group(seed_folder(out / "groups" / tag, k), settings, detector, dark,
                                                entries, gt, model, detect_kwargs, show_progress=show_progress,
                                                desc=f"{name} seed {k}", verbose=verbose, pred_format=pred_format)
            per_seed[name].append(ap)
    return per_seed


def claims_by_detector(frozen_name, frozen, judged, gt, boot, pairs):
    """The per-detector claims of results.json: {'groups_by_detector': {detector:
    {group: {setting: AP}}}, 'intervals_by_detector': {detector: {group: {setting:
    [lo, hi]}}}, 'differences_by_detector': {detector: {"a - b": ...}}}, the
    frozen detector first (frozen: {group: (AP dict, predictions)}), then every
    judge (:func:`judge_groups`' result). pairs: the (a, b) differences to give."""
    table = {frozen_name: ({g: ap for g, (ap, _) in frozen.items()}, {g: p for g, (_, p) in frozen.items()})}
    for name, j in judged.items():
        table[name] = (j["groups"], j["preds"])
    out = {"groups_by_detector": {}, "intervals_by_detector": {}, "differences_by_detector": {}}
    for name, (aps, preds) in table.items():
        iv, boots = bootstrap_groups(preds, gt, boot)
        out["groups_by_detector"][name] = aps
        out["intervals_by_detector"][name] = iv
        out["differences_by_detector"][name] = differences(boots, [(a, b) for a, b in pairs
                                                                   if a in boots and b in boots])
    return out


def results_claims(claim, frozen_name, boot, n_images, judged, seed_aps):
    """The claims block of an experiment's results.json (the same keys, in the
    same order, for four_groups and ratio_sweep): the frozen detector's
    intervals and differences, the bootstrap settings, the detector's name,
    the per-detector claims (:func:`claims_by_detector`), the judges and each
    group's spread over seeds."""
    return {
        # the claims (each AP's interval, the paired differences with their verdicts, per detector)
        "intervals": claim["intervals_by_detector"][frozen_name],
        "differences": claim["differences_by_detector"][frozen_name],
        "bootstrap": dict(boot, n_images=n_images),
        "detector_name": frozen_name,
        **claim,
        "judges": {n: dict(j["info"], name=n) for n, j in judged.items()},
        "seeds_spread": {g: seed_spread(v) for g, v in seed_aps.items()},
    }


def seed_folder(folder, k):
    """Seed k's folder: ``folder`` itself for k = 0 (so a run with one seed keeps its
    folders and cache keys), ``folder/seed<k>`` otherwise."""
    return Path(folder) if k == 0 else Path(folder) / f"seed{k}"


def detector_name(detector=None, vedadet=None, biubug6=None):
    """The name a detector is listed under in ``groups_by_detector``: the shipped
    'tinaface-lite-demo' by default, a shipped name as it is, else the
    checkpoint's file name (without suffix), else the module's class name."""
    import os

    from ..models.shipped import DETECTORS

    if vedadet is not None or biubug6 is not None:
        return Path(vedadet if vedadet is not None else biubug6).stem
    if detector is None:
        return "tinaface-lite-demo"
    if isinstance(detector, str) and detector in DETECTORS:
        return detector
    if isinstance(detector, (str, os.PathLike)):
        return Path(detector).stem
    return type(detector).__name__


def check_judges(judges, frozen_name):
    """{name: (frozen detector module, detect kwargs dict)} from the ``judges``
    argument ({name: (detector, detect_kwargs)}; a detector as
    :func:`tasklle.models.load_detector` takes it: a module or a checkpoint path)."""
    from ..models.shipped import load_detector

    if judges is None:
        return {}
    if not isinstance(judges, dict):
        raise TypeError(f"judges must be a dict {{name: (detector, detect_kwargs)}}, got {type(judges).__name__}")
    out = {}
    for name, spec in judges.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"judges: names must be non-empty strings, got {name!r}")
        if name == frozen_name:
            raise ValueError(f"judges: {name!r} is the frozen detector's own name")
        if not (isinstance(spec, (tuple, list)) and len(spec) == 2):
            raise TypeError(f"judges[{name!r}] must be (detector, detect_kwargs), got {spec!r}")
        det, kw = spec
        if kw is not None and not isinstance(kw, dict):
            raise TypeError(f"judges[{name!r}]: detect_kwargs must be a dict or None, got {type(kw).__name__}")
        out[name] = (load_detector(det), dict(kw or {}))
    tags = [_tag(n) for n in out]
    if len(set(tags)) != len(tags):
        raise ValueError(f"judges: names {sorted(out)} would share a cache folder; make them differ in letters or "
                         "digits")
    return out


def _tag(name):
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name)


def judge_groups(out, judges, sources, base, entries, gt, show_progress=True, verbose=True, pred_format="exact"):
    """Detect and score every group with every judge, resumable.

    judges: :func:`check_judges`' result; sources: {group: (image root,
    enhancer or None, model cache key or None)}; base: the experiment's cache
    settings (``four_groups.prepare``), whose detector and detect kwargs are
    replaced by the judge's in the key. Cached in ``out/judges/<name>/<group>``.
    Returns {judge: {'groups': {group: {setting: AP}}, 'preds': {group: predictions}}}."""
    from ..models.protocol import detector_key
    from . import detect_eval

    res = {}
    for name, (det, kw) in judges.items():
        sha = detector_key(det)
        aps, preds = {}, {}
        for g, (image_root, enhancer, key) in sources.items():
            settings = dict(base, group=g, root=str(Path(image_root).resolve()), model=key, detector=sha, detect=kw,
                            judge=name)
            ap, _, _, p = detect_eval.run_group(Path(out) / "judges" / _tag(name) / _tag(g), settings, det, image_root,
                                                entries, gt, enhancer, kw, show_progress=show_progress,
                                                desc=f"{name}: {g}", verbose=verbose, pred_format=pred_format)
            aps[g], preds[g] = ap, p
        info = {"sha256": sha, "detect_kwargs": kw, "parameters": int(sum(t.numel() for t in det.parameters())),
                "input_scale": float(getattr(det, "input_scale", 1.0))}
        res[name] = {"groups": aps, "preds": preds, "info": info}
    return res


# --------------------------------------------------------------------------- Markdown

def _num(x, fmt):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def _signed(x):
    """A difference as +0.0123; one too small for 4 decimals in exponent form
    (+1.4e-05), so a 'better' interval never reads as [+0.0000, +0.0000]."""
    if x is not None and not math.isnan(x) and x != 0 and abs(x) < 5e-5:
        return f"{x:+.1e}"
    return _num(x, "+.4f")


def verdict_line(diff, settings=SETTINGS):
    """'easy <verdict> (+0.0123 [-0.0100, +0.0300]), medium ...' of one difference."""
    return ", ".join(f"{s} {diff[s]['verdict']} ({_signed(diff[s]['delta'])} "
                     f"[{_signed(diff[s]['ci'][0])}, {_signed(diff[s]['ci'][1])}])" for s in settings)


def differences_table(diffs, first_col="difference"):
    """Markdown: one row per difference, per setting the delta, its interval and the verdict."""
    lines = [f"| {first_col} | " + " | ".join(SETTINGS) + " |", "|---|" + "---|" * len(SETTINGS)]
    for label, d in diffs.items():
        cells = [f"{_signed(d[s]['delta'])} [{_signed(d[s]['ci'][0])}, {_signed(d[s]['ci'][1])}]: "
                 f"{d[s]['verdict']}" for s in SETTINGS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def spread_table(spread, first_col="group"):
    """Markdown: per group and setting, mean ± std [min, max] over the seeds."""
    lines = [f"| {first_col} | seeds | " + " | ".join(SETTINGS) + " |", "|---|---|" + "---|" * len(SETTINGS)]
    for label, sp in spread.items():
        n = len(sp[SETTINGS[0]]["per_seed"])
        cells = [f"{sp[s]['mean']:.4f} ± {sp[s]['std']:.4f} [{sp[s]['min']:.4f}, {sp[s]['max']:.4f}]"
                 for s in SETTINGS]
        lines.append(f"| {label} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bootstrap_note(boot, n_images):
    """One sentence saying how the intervals were made (and when too few resamples back a claim)."""
    text = (f"Intervals: {boot['level']:.0%} percentile bootstrap over the {n_images} val images "
            f"({boot['resamples']} seeded resamples, seed {boot['seed']}, the same resamples for every group and "
            "detector, so differences are paired); a difference is called better or worse only when its interval "
            "excludes 0.")
    if boot["resamples"] < CLAIM_RESAMPLES:
        text += (f" Only {boot['resamples']} resamples (a quick run): the tables' claims need at least "
                 f"{CLAIM_RESAMPLES}.")
    return text


def claims_markdown(results, order, label_of, first_col="group"):
    """The Markdown lines of the claims: per detector (the frozen one first) the
    AP table with intervals and the differences with their verdicts, the
    bootstrap note, and the seed spread when several seeds were trained.
    order: the group keys in table order; label_of: {group key: row label}."""
    from ..eval.tables import ap_table

    lines = []
    frozen = results["detector_name"]
    seeds = results["seeds"].get("train_seeds", [results["seeds"].get("train", 0)])
    for k, (name, groups) in enumerate(results["groups_by_detector"].items()):
        ivs = results["intervals_by_detector"][name]
        role = "the frozen detector (the enhancers trained against it)" if name == frozen else \
            "a judge (the enhancers never trained against it)"
        lines += [f"## Scored by `{name}`: {role}", "",
                  ap_table([(label_of[g], groups[g]) for g in order if g in groups], first_col,
                           intervals={label_of[g]: ivs[g] for g in order if g in ivs}), ""]
        if k == 0 and len(seeds) > 1:
            lines += [f"The table is the first training seed ({seeds[0]}) with its bootstrap interval; the spread "
                      f"over all {len(seeds)} seeds is below.", ""]
        lines += ["Differences (paired over the same resampled images; AP delta [interval]: verdict):", "",
                  differences_table(results["differences_by_detector"][name]), ""]
    lines += [bootstrap_note(results["bootstrap"], results["bootstrap"]["n_images"]), ""]
    if len(seeds) > 1:
        lines += [f"Spread over the training seeds {seeds} (mean ± std [min, max] of AP; the val images are fixed, "
                  "so this is the training's variation, not the images'):", "",
                  spread_table({label_of.get(g, g): v for g, v in results["seeds_spread"].items()}, first_col), ""]
    return lines
