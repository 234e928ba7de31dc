"""The loss log of joint training: its columns, the plot, the summary and the reader.

``log.csv`` (one row per step, written with every checkpoint) and
``log.json`` (config, summary and rows, strict JSON: NaN marks a value not
computed, e.g. L_down at W_down 0, and is written as null).
"""
import json
import math
from pathlib import Path

from ..io import atomic_write
from ..reference.zerodce_loss import DEFAULT_WEIGHTS
from .run import read_csv

# The parts of L_down the log has columns for: TinaFace's (cls, reg, iou) and RetinaFace's
# (loc, conf, landm); a detector fills its own and the others stay NaN (null in log.json).
DOWN_PARTS = ("cls", "reg", "iou", "loc", "conf", "landm")
LOG_FIELDS = ["step", "epoch", "l_total", "l_up", "spa", "exp", "col", "tv", "l_down", *DOWN_PARTS,
              "ratio", "grad_norm", "lr", "seconds"]


def plot_losses(rows, path, title=None):
    """Loss curves (L_total, L_up with its weighted terms, L_down with its
    parts) from log rows, written atomically to ``path`` (PNG)."""
    from matplotlib.figure import Figure  # no pyplot: the global backend is left alone

    steps = [r["step"] for r in rows]

    def series(k):
        return [r.get(k, float("nan")) for r in rows]

    fig = Figure(figsize=(13, 3.6))
    axes = fig.subplots(1, 3)
    axes[0].plot(steps, series("l_total"), color="k", lw=1)
    axes[0].set_title("L_total")
    axes[1].plot(steps, series("l_up"), color="k", lw=1.2, label="L_up")
    for k, w in DEFAULT_WEIGHTS.items():  # the weights L_up uses in joint training
        axes[1].plot(steps, [w * v for v in series(k)], lw=0.8, label=f"{w:g}*L_{k}" if w != 1 else f"L_{k}")
    axes[1].set_title("L_up and its weighted terms")
    axes[1].legend(fontsize=7)
    if any(math.isfinite(v) for v in series("l_down")):
        axes[2].plot(steps, series("l_down"), color="k", lw=1.2, label="L_down")
        for k in DOWN_PARTS:
            if any(math.isfinite(v) for v in series(k)):
                axes[2].plot(steps, series(k), lw=0.8, label=k)
        axes[2].legend(fontsize=7)
    else:
        axes[2].text(0.5, 0.5, "W_down = 0:\ndetector not used", ha="center", va="center",
                     transform=axes[2].transAxes)
    axes[2].set_title("L_down and its parts")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=90)
    return path


def summary(rows, window=20):
    """Mean of the first and last ``window`` steps for each logged value."""
    if not rows:
        return {}

    def mean(rs, k):
        v = [r[k] for r in rs if k in r and math.isfinite(r[k])]
        return sum(v) / len(v) if v else float("nan")

    keys = ["l_total", "l_up", "spa", "exp", "col", "tv", "l_down", *DOWN_PARTS, "ratio", "seconds"]
    return {"first": {k: mean(rows[:window], k) for k in keys}, "last": {k: mean(rows[-window:], k) for k in keys},
            "steps": rows[-1]["step"]}


def read_log(out):
    """The per-step rows of a joint run (from ``out/log.json`` or ``out/log.csv``)."""
    out = Path(out)
    if (out / "log.json").is_file():
        rows = json.loads((out / "log.json").read_text())["rows"]
        return [{k: float("nan") if v is None else v for k, v in r.items()} for r in rows]
    return read_csv(out / "log.csv", LOG_FIELDS)
