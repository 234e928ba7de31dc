"""Diagnostics of a finished four-group run (``tasklle demo`` or
``tasklle experiment four-groups``): why a group scores what it scores.

``diagnose(out)`` reads the run folder (``results.json``, the groups'
prediction files, the two trained enhancers ``models/*/final.pt``) and
measures, for each of the four groups on the same val images:

- **exposure**: the mean pixel value (channel mean) of the images the
  detector saw -- the dark copy, the two enhanced versions of it, the
  originals -- and, per image, its difference from the original's; and the
  enhancer's own target, L_exp's squared distance of 16x16 patch means from
  E = 0.6 (lower = closer to what L_exp asks for);
- **AP per face size**: the WIDER protocol on the 'hard' setting's faces
  split by height in the original image (every other face ignored, as the
  protocol ignores faces outside a setting), bins ``SIZE_BINS``;
- **the detector's score on the same faces**: for each counted face, the
  score of the detection with the largest IoU with it if that IoU >= 0.5,
  else 0 (a miss); the mean over faces and the fraction found, overall and
  per size bin. The same faces in every group, so low-light vs enhanced vs
  original compare face by face.

Results go to ``out/diagnostics.json`` and ``out/diagnostics.md`` (and are
returned). Command line: ``python -m tasklle.experiments.diagnose OUT``.
"""
import json
import sys
from pathlib import Path

import numpy as np

from . import detect_eval
from .detect_eval import GROUPS

SIZE_BINS = ((0, 16), (16, 32), (32, 64), (64, float("inf")))
TARGET_EXPOSURE = 0.6
SETTING = "hard"


def _bin_label(lo, hi):
    return f"{lo:g}-{hi:g}px" if np.isfinite(hi) else f">={lo:g}px"


def _patch_exposure_mse(img, e=TARGET_EXPOSURE, patch=16):
    """L_exp without its weight: mean over 16x16 patches of (patch channel-mean - e)^2 (floor pooling)."""
    import torch.nn.functional as F

    m = img.mean(0, keepdim=True)[None]
    if min(m.shape[-2:]) < patch:
        return float(((m.mean() - e) ** 2).item())
    return float(((F.avg_pool2d(m, patch) - e) ** 2).mean().item())


def _iou_xywh(box, dets):
    """IoU (no +1) of one gt box x y w h with (K, 4) boxes x y w h."""
    x1 = np.maximum(box[0], dets[:, 0])
    y1 = np.maximum(box[1], dets[:, 1])
    x2 = np.minimum(box[0] + box[2], dets[:, 0] + dets[:, 2])
    y2 = np.minimum(box[1] + box[3], dets[:, 1] + dets[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = box[2] * box[3] + dets[:, 2] * dets[:, 3] - inter
    return inter / np.maximum(union, 1e-6)


def _counted_faces(gt, keys):
    """[(key, face index 0-based, box xywh)] of the setting's counted faces of the given images."""
    out = []
    for key in keys:
        i = gt.index.get(key)
        if i is None:
            continue
        boxes = np.asarray(gt.image_boxes(i), dtype=np.float64).reshape(-1, 4)
        for k in np.asarray(gt.keep_index(SETTING, i), dtype=np.int64).reshape(-1):
            if 1 <= k <= len(boxes):
                out.append((key, int(k) - 1, boxes[k - 1]))
    return out


def _bin_ground_truth(gt, keys, lo, hi, folder):
    """A gt folder where only the setting's faces with lo <= height < hi count (all three settings)."""
    from ..data import wider_format

    images, lists = [], []
    for key in keys:
        i = gt.index[key]
        boxes = np.asarray(gt.image_boxes(i), dtype=np.float64).reshape(-1, 4)
        keep = [int(k) for k in np.asarray(gt.keep_index(SETTING, i)).reshape(-1)
                if 1 <= k <= len(boxes) and lo <= boxes[k - 1, 3] < hi]
        images.append((key[0], key[1], boxes))
        lists.append(np.asarray(keep, dtype=np.int64))
    order = sorted(range(len(images)), key=lambda j: (gt.index[keys[j]]))
    images = [images[j] for j in order]
    lists = [lists[j] for j in order]
    written = wider_format.write_ground_truth(folder, images, {s: lists for s in detect_eval.SETTINGS})
    return written, sum(len(x) for x in lists)


def diagnose(out, max_images=None, verbose=True):
    """Measure exposure, AP per face size and per-face detector scores of a finished four-group run."""
    import torch

    from ..data import wider_format
    from ..enhancement import enhance
    from ..eval import wider
    from ..io import read_image, write_json
    from ..train.joint import load_upstream

    out = Path(out)
    res_path = out / "results.json"
    if not res_path.is_file():
        raise FileNotFoundError(f"{res_path} not found: diagnose a finished four-group run (tasklle demo or "
                                "tasklle experiment four-groups)")
    results = json.loads(res_path.read_text())
    cfg = results["config"]
    root, dark, gt_dir = Path(cfg["root"]), Path(cfg["dark"]), Path(cfg["gt_dir"])
    gt = wider_format.load_ground_truth(gt_dir)
    preds = {g: wider_format.read_predictions(out / "groups" / g / "predictions") for g in GROUPS}
    keys = [k for k in gt.keys() if k in preds["original"]]
    if max_images is not None:
        keys = keys[:max_images]
    enhancers = {g: load_upstream(out / "models" / g / "final.pt").eval() for g in ("zero-dce++", "joint")}

    # exposure of what the detector saw
    expo = {g: [] for g in GROUPS}
    mse = {g: [] for g in GROUPS}
    with torch.no_grad():
        for event, name in keys:
            rel = Path("WIDER_val") / "images" / event / f"{name}.jpg"
            low = read_image(dark / rel)
            imgs = {"original": read_image(root / rel), "low-light": low}
            for g, m in enhancers.items():
                imgs[g] = enhance(low, model=m)
            for g in GROUPS:
                expo[g].append(float(imgs[g].mean()))
                mse[g].append(_patch_exposure_mse(imgs[g]))
    orig = np.asarray(expo["original"])
    exposure = {}
    for g in GROUPS:
        e = np.asarray(expo[g])
        exposure[g] = {"mean": float(e.mean()), "minus_original_mean": float((e - orig).mean()),
                       "abs_minus_original_mean": float(np.abs(e - orig).mean()),
                       "patch_mse_to_0.6": float(np.mean(mse[g]))}

    # AP per face-size bin
    bins = {}
    for lo, hi in SIZE_BINS:
        label = _bin_label(lo, hi)
        folder, n = _bin_ground_truth(gt, keys, lo, hi, out / "diagnostics" / f"gt-{label.replace('>=', 'ge')}")
        bins[label] = {"faces": n}
        for g in GROUPS:
            sub = {k: preds[g].get(k, np.zeros((0, 5))) for k in keys}
            bins[label][g] = float(wider.evaluate(sub, folder, settings=(SETTING,))[SETTING]) if n else None

    # the detector's score on the same faces
    faces = _counted_faces(gt, keys)
    scores = {}
    for g in GROUPS:
        vals, found, heights = [], [], []
        for key, _, box in faces:
            d = np.asarray(preds[g].get(key, np.zeros((0, 5))), dtype=np.float64).reshape(-1, 5)
            if len(d):
                iou = _iou_xywh(box, d[:, :4])
                j = int(np.argmax(iou))
                hit = iou[j] >= 0.5
                vals.append(float(d[j, 4]) if hit else 0.0)
                found.append(bool(hit))
            else:
                vals.append(0.0)
                found.append(False)
            heights.append(box[3])
        vals, found, heights = np.asarray(vals), np.asarray(found), np.asarray(heights)
        per_bin = {}
        for lo, hi in SIZE_BINS:
            sel = (heights >= lo) & (heights < hi)
            per_bin[_bin_label(lo, hi)] = (None if not sel.any() else
                                           {"mean_score": float(vals[sel].mean()), "found": float(found[sel].mean())})
        scores[g] = {"faces": int(len(vals)), "mean_score": float(vals.mean()) if len(vals) else None,
                     "found": float(found.mean()) if len(vals) else None, "per_size": per_bin}

    diag = {"run": str(out), "images": len(keys), "setting": SETTING, "target_exposure": TARGET_EXPOSURE,
            "exposure": exposure, "ap_per_size": bins, "score_on_gt_faces": scores,
            "training_steps": cfg.get("train", {}).get("steps"), "ap": results.get("groups")}
    write_json(out / "diagnostics.json", diag)  # strict JSON: write_json converts
    from ..io import atomic_write

    with atomic_write(out / "diagnostics.md", "w") as f:
        f.write(markdown(diag))
    if verbose:
        print(markdown(diag))
    return diag


def _f(v, fmt="{:.4f}"):
    return "n/a" if v is None else fmt.format(v)


def markdown(diag):
    lines = [f"# Diagnostics of {diag['run']}", "",
             f"{diag['images']} val images; faces of the '{diag['setting']}' setting; "
             f"{diag['training_steps']} training steps per enhancer.", "",
             "## Exposure (mean pixel value; L_exp's patch MSE to E = 0.6)", "",
             "| group | mean | minus original | abs minus original | patch MSE to 0.6 |", "|---|---|---|---|---|"]
    for g, e in diag["exposure"].items():
        lines.append(f"| {g} | {e['mean']:.4f} | {e['minus_original_mean']:+.4f} | "
                     f"{e['abs_minus_original_mean']:.4f} | {e['patch_mse_to_0.6']:.4f} |")
    labels = list(diag["ap_per_size"])
    lines += ["", "## AP per face height (hard-setting faces in the bin count, all others ignored)", "",
              "| group | " + " | ".join(f"{b} ({diag['ap_per_size'][b]['faces']})" for b in labels) + " |",
              "|---|" + "---|" * len(labels)]
    for g in GROUPS:
        lines.append(f"| {g} | " + " | ".join(_f(diag["ap_per_size"][b][g]) for b in labels) + " |")
    lines += ["", "## The detector on the same faces (score of the best-IoU detection if IoU >= 0.5, else 0)", "",
              "| group | mean score | found | " + " | ".join(f"{b} score / found" for b in labels) + " |",
              "|---|---|---|" + "---|" * len(labels)]
    for g, s in diag["score_on_gt_faces"].items():
        cells = []
        for b in labels:
            pb = s["per_size"].get(b)
            cells.append("n/a" if pb is None else f"{pb['mean_score']:.3f} / {pb['found']:.2f}")
        lines.append(f"| {g} | {_f(s['mean_score'], '{:.3f}')} | {_f(s['found'], '{:.2f}')} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    import argparse

    p = argparse.ArgumentParser(prog="python -m tasklle.experiments.diagnose",
                                description="Exposure, AP per face size and per-face detector scores of a "
                                            "finished four-group run (a tasklle demo folder).")
    p.add_argument("out", help="the run folder (holds results.json)")
    p.add_argument("--max-images", type=int, default=None)
    args = p.parse_args(argv)
    try:
        diagnose(args.out, max_images=args.max_images)
    except (FileNotFoundError, ValueError) as e:
        print(f"diagnose: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
