"""Figures of the experiments (matplotlib, Agg, written atomically).

- :func:`detection_grid`: like the method's Fig. 4.1/4.2 -- the same images as
  columns of image groups (low-light / Zero-DCE++ / joint / original) with the
  detector's boxes and scores drawn (ground truth dashed).
- :func:`image_grid`: the same images under several enhancers (Fig. 4.3).
- :func:`ap_bars`: AP easy/medium/hard per group or per ratio.
"""
from pathlib import Path

import numpy as np


def _subplots(nrows, ncols, figsize, **kwargs):
    """A Figure and its axes without pyplot: no global backend or figure state
    is touched (safe in notebooks and headless runs)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _save(fig, path, dpi=100):
    from ..io import atomic_write

    path = Path(path)
    with atomic_write(path) as f:
        fig.savefig(f, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    return path


def _hwc(img):
    from ..io import to_uint8_hwc

    return to_uint8_hwc(img)


def detection_grid(rows, columns, path, score_threshold=0.5, max_boxes=60, cell_inches=3.2, title=None):
    """Draw a grid: one row per image, one column per group.

    rows: list of dicts {'name': str, 'gt': (N, 4) x1y1x2y2 or None,
    'images': {column: (3, H, W) tensor/array}, 'dets': {column: (K, 5) x1,y1,x2,y2,score}}.
    Detections with score >= ``score_threshold`` are drawn with their score;
    the column title gives how many boxes passed and the mean score of the
    boxes that match a ground-truth face (IoU >= 0.5).
    """
    from matplotlib.patches import Rectangle

    n, m = len(rows), len(columns)
    if n == 0:
        raise ValueError("rows: nothing to draw")
    first = rows[0]["images"][columns[0]]
    h, w = first.shape[-2:]
    aspect = h / max(w, 1)
    fig, axes = _subplots(n, m, (cell_inches * m, cell_inches * aspect * n + 0.4), squeeze=False)
    for i, row in enumerate(rows):
        gt = None if row.get("gt") is None else np.asarray(row["gt"], dtype=np.float64).reshape(-1, 4)
        for j, col in enumerate(columns):
            ax = axes[i][j]
            ax.imshow(_hwc(row["images"][col]))
            ax.set_xticks([])
            ax.set_yticks([])
            if gt is not None:
                for b in gt:
                    ax.add_patch(Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, ec="white",
                                           lw=0.7, ls="--", alpha=0.8))
            dets = np.asarray(row["dets"].get(col, np.zeros((0, 5))), dtype=np.float64).reshape(-1, 5)
            dets = dets[dets[:, 4] >= score_threshold]
            dets = dets[np.argsort(-dets[:, 4], kind="stable")][:max_boxes]
            for d in dets:
                ax.add_patch(Rectangle((d[0], d[1]), d[2] - d[0], d[3] - d[1], fill=False, ec="lime", lw=1.2))
                ax.text(d[0], d[1] - 1, f"{d[4]:.2f}", color="black", fontsize=6,
                        bbox=dict(facecolor="lime", alpha=0.8, pad=0.3, lw=0))
            matched = _matched_scores(dets, gt)
            label = f"{len(dets)} boxes"
            if matched:
                label += f", mean score on faces {np.mean(matched):.2f}"
            ax.set_xlabel(label, fontsize=7)
            if i == 0:
                ax.set_title(col, fontsize=10)
        axes[i][0].set_ylabel(row.get("name", ""), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _matched_scores(dets, gt, thr=0.5):
    if gt is None or len(gt) == 0 or len(dets) == 0:
        return []
    scores = []
    for d in dets:
        ix1 = np.maximum(d[0], gt[:, 0])
        iy1 = np.maximum(d[1], gt[:, 1])
        ix2 = np.minimum(d[2], gt[:, 2])
        iy2 = np.minimum(d[3], gt[:, 3])
        inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
        union = (d[2] - d[0]) * (d[3] - d[1]) + (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1]) - inter
        if np.max(inter / np.maximum(union, 1e-6)) >= thr:
            scores.append(float(d[4]))
    return scores


def image_grid(rows, columns, path, cell_inches=2.6, title=None):
    """rows: list of {'name', 'images': {column: (3, H, W)}}; one column per enhancer."""
    n, m = len(rows), len(columns)
    h, w = rows[0]["images"][columns[0]].shape[-2:]
    fig, axes = _subplots(n, m, (cell_inches * m, cell_inches * h / max(w, 1) * n + 0.4), squeeze=False)
    for i, row in enumerate(rows):
        for j, col in enumerate(columns):
            ax = axes[i][j]
            img = row["images"][col]
            ax.imshow(_hwc(img))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"mean {float(np.asarray(img).mean()):.2f}", fontsize=7)
            if i == 0:
                ax.set_title(col, fontsize=9)
        axes[i][0].set_ylabel(row.get("name", ""), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def ap_bars(table, path, title=None, xlabel=None, intervals=None):
    """Grouped bars of AP: table is [(label, {'easy','medium','hard'})].

    intervals: optional {label: {setting: (lo, hi)}} drawn as error bars (the
    bootstrap intervals of the experiments' tables); labels without one get none."""
    labels = [t[0] for t in table]
    x = np.arange(len(labels))
    fig, ax = _subplots(1, 1, (max(5.0, 0.9 * len(labels) + 2), 3.6))
    for k, (setting, color) in enumerate((("easy", "tab:green"), ("medium", "tab:orange"), ("hard", "tab:red"))):
        vals = [t[1].get(setting) or 0.0 for t in table]
        yerr = None
        if intervals:
            # asymmetric bars from the interval; a bar without an interval (or NaN) gets none
            yerr = np.zeros((2, len(table)))
            for i, (label, _) in enumerate(table):
                ci = (intervals.get(label) or {}).get(setting)
                if ci is not None and ci[0] is not None and ci[1] is not None and np.isfinite(ci).all():
                    yerr[0, i] = max(0.0, vals[i] - float(ci[0]))
                    yerr[1, i] = max(0.0, float(ci[1]) - vals[i])
        ax.bar(x + (k - 1) * 0.27, vals, width=0.27, label=setting, color=color, yerr=yerr,
               error_kw=dict(elinewidth=0.8, capsize=2, ecolor="black"))
    ax.set_xticks(x)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylabel("AP")
    lo = min([v for t in table for v in (t[1].get("easy"), t[1].get("medium"), t[1].get("hard"))
              if v is not None] or [0.0])
    if intervals:  # keep the error bars in view
        lo = min([lo] + [ci[0] for iv in intervals.values() for ci in iv.values()
                         if ci is not None and ci[0] is not None and np.isfinite(ci[0])])
    ax.set_ylim(max(0.0, lo - 0.1), 1.0)
    ax.legend(fontsize=8, ncol=3)
    ax.grid(axis="y", alpha=0.3)
    if xlabel:
        ax.set_xlabel(xlabel)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
