"""Zero-DCE / Zero-DCE++ training with the non-reference losses only (L_up)
on any folder of images.

Official Zero-DCE++ recipe (Li et al., TPAMI 2021): images squashed to
512x512, no augmentation, Adam (lr 1e-4, weight decay 1e-4), gradient-norm
clip 0.1, PyTorch's default init, scale factor 1, loss
``L_spa + 10 L_exp + 5 L_col + 1600 L_tvA`` with E = 0.6 (Zero-DCE: 200 L_tvA),
batch 8, 100 epochs. The method's report trains with "Adam using default
parameters" (no weight decay, no clipping) and conv weights from N(0, 0.02):
that is the default here (``recipe='method'``); ``recipe='zero-dce++'``
restores the official weight decay and clipping (``tasklle.train.recipes``).

What this adds for long jobs:

- Any folder tree of images (``tasklle.io.list_images``); unreadable files are
  reported once, skipped, and listed in ``log.json``.
- A progress bar with the running loss terms.
- Atomic checkpoints (``out/checkpoint.pt``) every ``checkpoint_every`` steps,
  on Ctrl-C or SIGTERM, and at the end. ``resume=True`` continues exactly where the
  checkpoint left off: the batch order of every epoch is a function of
  ``(seed, epoch)`` only, and the model, the optimizer state, the step and the
  loss history are restored, so an interrupted and resumed run ends with the
  same weights as an uninterrupted one (same thread count).
- The loss log of every trainer (``tasklle.train.run``): ``out/log.csv`` (one
  row per step) and ``out/log.json`` (settings, summary with the skipped files,
  rows); ``out/loss_curve.png``; the final model ``out/final.pt``
  (``ZeroDCEPP.load`` / ``DCENet.load`` read it, and so do ``tasklle enhance``
  and the joint trainer).
"""
import io as _io
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from .._alloc import with_fast_alloc
from ..data.sampling import epoch_order
from ..io import ImageReadError, atomic_write, list_images, read_image
from ..progress import progress as _progress
from .recipes import describe, resolve_recipe
from .run import (FIXED, FREE, RunFolder, TrainResult, check_float, check_int, loop, renamed_args, restore_rows,
                  run_length, stop_step, write_log)

MODELS = ("zero-dce++", "zero-dce")
TERMS = ("spa", "exp", "col", "tv")
FORMAT = "tasklle.upstream/1"  # the model payload's format (ZeroDCEPP.load / DCENet.load read it)
DEFAULT_EPOCHS = 1  # the run length when neither steps nor epochs is given
LOG_FIELDS = ["step", "epoch", "total", *TERMS, "images", "seconds"]
# Every setting an upstream run stores, and whether a resumed run must match it (the run length may grow).
SETTINGS = {"data": FIXED, "model": FIXED, "batch_size": FIXED, "image_size": FIXED, "lr": FIXED,
            "weight_decay": FIXED, "grad_clip": FIXED, "seed": FIXED, "scale_factor": FIXED, "exposure": FIXED,
            "weights": FIXED, "init_std": FIXED, "n_images": FIXED, "steps": FREE, "recipe": FREE, "optimizer": FREE}


class _Images(torch.utils.data.Dataset):
    """Images squashed to (size, size); an unreadable file gives (None, index)."""

    def __init__(self, paths, size):
        self.paths = paths
        self.size = size

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, k):
        try:
            img = read_image(self.paths[k])
        except (ImageReadError, FileNotFoundError, OSError):
            return None, k
        # squash to a square as the official loader does (it uses PIL's Lanczos; antialiased bicubic here)
        if img.shape[-2:] != (self.size, self.size):
            img = F.interpolate(img[None], size=(self.size, self.size), mode="bicubic", align_corners=False,
                                antialias=True)[0].clamp_(0.0, 1.0)
        return img, k


def _collate(items):
    imgs = [im for im, _ in items if im is not None]
    bad = [k for im, k in items if im is None]
    return (torch.stack(imgs) if imgs else None), bad


def _make_model(name, scale_factor):
    from ..models import DCENet, ZeroDCEPP

    return ZeroDCEPP(scale_factor=scale_factor) if name == "zero-dce++" else DCENet()


def _outputs_of(model, x):
    """(enhanced, curve_maps) for either model (DCENet returns (half, enhanced, maps))."""
    out = model(x)
    return (out[1], out[2]) if len(out) == 3 else out


def plot_loss_curve(history, path, weights=None):
    """Total and weighted terms per step (log scale), with a moving average; a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in history]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    weights = weights or {}
    series = [("total", "total", 1.0)] + [(t, f"{weights.get(t, 1):g} x {t}", weights.get(t, 1.0)) for t in TERMS]
    for key, label, w in series:
        ys = [max(r[key] * w, 1e-12) for r in history]
        k = max(1, len(ys) // 50)
        smooth = [sum(ys[max(0, i - k + 1):i + 1]) / len(ys[max(0, i - k + 1):i + 1]) for i in range(len(ys))]
        ax.plot(steps, smooth, label=label, lw=1.6 if key == "total" else 1.0)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (weighted, moving average)")
    ax.set_title("Zero-DCE upstream training")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = _io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    with atomic_write(path) as f:
        f.write(buf.getvalue())
    return Path(path)


@with_fast_alloc  # large buffers stay in the heap for the run (tasklle._alloc)
def train_upstream(data, out, model="zero-dce++", epochs=None, batch_size=8, image_size=512, lr=1e-4,
                   weight_decay=None, grad_clip="recipe", seed=0, checkpoint_every=100, resume=False, plot=True,
                   scale_factor=1, exposure=0.6, weights=None, init_std=0.02, max_steps=None, num_workers=0,
                   show_progress=True, recipe="method", steps=None, **deprecated):
    """Train Zero-DCE++ (or Zero-DCE) with the non-reference losses on a folder of images.

    Args:
        data: folder (searched recursively) or a single image file.
        out: output folder (checkpoint.pt, final.pt, log.csv, log.json, loss_curve.png).
        model: 'zero-dce++' (ZeroDCEPP) or 'zero-dce' (DCENet), or an nn.Module of either
            kind to fine-tune (then ``init_std`` is not applied).
        epochs: passes over the data (default ``DEFAULT_EPOCHS``, 1); or ``steps``:
            optimiser steps in total instead.
        batch_size: images per step (official: 8); the last batch of an epoch may be smaller.
        image_size: every image is squashed to (image_size, image_size) (official 512; >= 16).
        lr: Adam learning rate (> 0; 1e-4, the report's and the official).
        recipe: 'method' (default: Adam with default parameters, no weight decay,
            no clipping) or 'zero-dce++' (official: weight decay 1e-4, clip 0.1).
        weight_decay: overrides the recipe's (None: the recipe's).
        grad_clip: max gradient norm: 'recipe' (default) the recipe's, None no clipping.
        seed: model init and batch order.
        checkpoint_every: steps between checkpoints (0: only at the end / on Ctrl-C or SIGTERM).
        resume: continue from ``out/checkpoint.pt`` (same settings; the run length may grow).
            Without it an existing checkpoint is an error (``tasklle.train.run``'s resume policy).
        plot: write loss_curve.png (``log``, its old name, is deprecated).
        scale_factor: Zero-DCE++ scale factor (official training: 1).
        exposure: E of L_exp (0.6).
        weights: loss weights (default spa 1, exp 10, col 5, tv 1600; tv 200 for 'zero-dce').
        init_std: conv weights ~ N(0, init_std) for a new model (the report's 0.02;
            the official script keeps PyTorch's default init).
        max_steps: stop after this many steps in total (counting steps done before a resume),
            saving a checkpoint: for short runs and to simulate an interruption.
        num_workers: DataLoader worker processes for reading images.
        show_progress: progress bar.

    Returns:
        :class:`tasklle.train.run.TrainResult`: ``model`` (trained, eval mode),
        ``rows`` (also ``result['history']``: step, epoch, total, spa, exp, col,
        tv, images, seconds), ``final`` (None when stopped early by ``max_steps``),
        ``summary``; ``extra``: 'skipped' (unreadable files), 'checkpoint'.
    """
    plot = renamed_args("train_upstream", deprecated, {"log": "plot"}).get("plot", plot)
    # ---- set up
    model_name, net, scale_factor = _model_arg(model, scale_factor)
    a = _check_args(batch_size, image_size, checkpoint_every, num_workers, seed, lr, init_std, exposure)
    recipe, weight_decay, grad_clip = resolve_recipe(recipe, weight_decay, grad_clip)
    weights = _loss_weights(model_name, weights)
    paths = list_images(Path(data))  # FileNotFoundError for a missing folder
    if not paths:
        raise ValueError(f"data: no image files found in {data}")
    steps_per_epoch = math.ceil(len(paths) / a["batch_size"])
    total = run_length(steps, epochs, steps_per_epoch, default_epochs=DEFAULT_EPOCHS)
    stop = stop_step(total, max_steps)
    config = {"data": str(Path(data).resolve()), "model": model_name, **{k: a[k] for k in (
              "batch_size", "image_size", "lr", "seed", "exposure", "init_std")}, "weight_decay": weight_decay,
              "grad_clip": grad_clip, "scale_factor": scale_factor, "weights": weights, "n_images": len(paths),
              "steps": total, "recipe": recipe, "optimizer": describe(recipe, a["lr"], weight_decay, grad_clip)}
    run = RunFolder(out, "upstream")
    state = run.open(config, SETTINGS, resume)  # ---- resume
    torch.manual_seed(a["seed"])
    if net is None:
        net = _make_model(model_name, scale_factor)
        net.init_weights(a["init_std"])
    opt = torch.optim.Adam(net.parameters(), lr=a["lr"], weight_decay=weight_decay)
    step_fn = _Step(net, opt, a["exposure"], weights, grad_clip, paths)
    start = step_fn.restore(state)
    rows = restore_rows(run, LOG_FIELDS, start)
    net.train()
    save = _saver(run, net, opt, step_fn, config, rows, total)
    # ---- the loop
    batches = _batches(_Images(paths, a["image_size"]), len(paths), a, start, stop, steps_per_epoch)
    bar = _progress(total=stop, initial=min(start, stop), desc=f"train {model_name}", unit="step",
                    disable=not show_progress)
    step_fn.bar = bar
    try:
        done = loop(batches, step_fn, save, start, stop, checkpoint_every, bar, rows.append)
    finally:
        bar.close()
    # ---- outputs
    return _outputs(run, net, save, rows, done, total, weights, plot, step_fn.skipped)


# --------------------------------------------------------------------------- the pieces of train_upstream()

def _model_arg(model, scale_factor):
    """(name, module or None, scale factor) of the ``model`` argument."""
    if isinstance(model, str):
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS} or an nn.Module, got {model!r}")
        return model, None, scale_factor
    if isinstance(model, torch.nn.Module):
        from ..models import DCENet, ZeroDCEPP

        if not isinstance(model, (ZeroDCEPP, DCENet)):
            raise TypeError(f"model must be a ZeroDCEPP or DCENet, got {type(model).__name__}")
        return ("zero-dce++" if isinstance(model, ZeroDCEPP) else "zero-dce"), model, getattr(model, "scale_factor", 1)
    raise TypeError(f"model must be a name or an nn.Module, got {type(model).__name__}")


def _check_args(batch_size, image_size, checkpoint_every, num_workers, seed, lr, init_std, exposure):
    """The checked numeric arguments by name."""
    return {"batch_size": check_int(batch_size, "batch_size"), "image_size": check_int(image_size, "image_size", lo=16),
            "checkpoint_every": check_int(checkpoint_every, "checkpoint_every", lo=0),
            "num_workers": check_int(num_workers, "num_workers", lo=0), "seed": check_int(seed, "seed", lo=0),
            "lr": check_float(lr, "lr", positive=True), "init_std": check_float(init_std, "init_std"),
            "exposure": check_float(exposure, "exposure")}


def _loss_weights(model_name, weights):
    from ..reference.zerodce_loss import DEFAULT_WEIGHTS, _check_weights

    default_w = dict(DEFAULT_WEIGHTS, tv=200.0) if model_name == "zero-dce" else dict(DEFAULT_WEIGHTS)
    return _check_weights(dict(default_w, **(weights or {})))


def _saver(run, net, opt, step_fn, config, rows, total):
    """``save(step, final=False)``: the checkpoint and the log; final.pt too when ``final``."""
    def save(step, final=False):
        payload = {"kind": type(net).__name__, "scale_factor": config["scale_factor"], "config": config}
        run.save({"format": FORMAT, **payload, "step": step, "model": net.state_dict(),
                  "optimizer": opt.state_dict(), "skipped": {str(k): v for k, v in step_fn.skipped.items()}})
        write_log(run.out, rows, LOG_FIELDS, config, _summary(rows, step, total, step_fn.skipped))
        if final:
            net.save(run.out / "final.pt", scale_factor=config["scale_factor"], config=config)

    return save


def _batches(dataset, n, a, start, stop, steps_per_epoch):
    """``(step, (images or None, unreadable indices))`` for steps ``start..stop-1``: the batches of
    each epoch's order (a function of (seed, epoch) only), read by a DataLoader per epoch."""
    step = start
    while step < stop:
        epoch, pos = divmod(step, steps_per_epoch)
        order = epoch_order(n, a["seed"], epoch)
        batches = [order[i:i + a["batch_size"]] for i in range(0, len(order), a["batch_size"])]
        n_batches = min(len(batches), pos + (stop - step))
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches[pos:n_batches], collate_fn=_collate,
                                             num_workers=a["num_workers"])
        for batch in loader:
            yield step, (epoch, batch)
            step += 1


class _Step:
    """One optimiser step of upstream training on a batch; returns its log row."""

    def __init__(self, net, opt, exposure, weights, grad_clip, paths):
        self.net, self.opt, self.exposure, self.weights, self.grad_clip = net, opt, exposure, weights, grad_clip
        self.paths = paths
        self.skipped = {}  # index -> path of the unreadable files met
        self.running = {}
        self.bar = None

    def restore(self, state):
        """Load a checkpoint's model, optimiser and skipped files; returns its step (0 without one)."""
        if state is None:
            return 0
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.skipped = {int(k): v for k, v in state.get("skipped", {}).items()}
        return int(state["step"])

    def __call__(self, step, batch):
        from ..losses import zero_dce_loss

        epoch, (images, bad) = batch
        for k in bad:
            if k not in self.skipped:
                self.skipped[k] = str(self.paths[k])
                self.bar.write(f"skipping unreadable image: {self.paths[k]}")
        t0 = time.perf_counter()
        row = {"step": step + 1, "epoch": epoch + 1, "images": 0}
        if images is not None:
            enhanced, maps = _outputs_of(self.net, images)
            total, terms = zero_dce_loss(enhanced, images, maps, exposure=self.exposure, weights=self.weights)
            self.opt.zero_grad(set_to_none=True)
            total.backward()
            if self.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
            self.opt.step()
            row.update(total=float(total.detach()), **{t: float(v.detach()) for t, v in terms.items()},
                       images=int(images.shape[0]))
            for key in ("total", *TERMS):
                r = self.running
                r[key] = row[key] if key not in r else 0.9 * r[key] + 0.1 * row[key]
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in self.running.items()}, refresh=False)
        else:
            row.update(total=float("nan"), **{t: float("nan") for t in TERMS})
        row["seconds"] = round(time.perf_counter() - t0, 4)
        return row


def _summary(rows, step, total, skipped):
    done = [r for r in rows if r["images"]]
    return {"steps": step, "total_steps": total, "finished": step >= total,
            "first": done[0] if done else None, "last": done[-1] if done else None,
            "skipped": sorted(skipped.values())}


def _outputs(run, net, save, rows, done, total, weights, plot, skipped):
    """The last checkpoint, final.pt when the run reached its length, the log and the plot."""
    finished = done >= total
    save(done, final=finished)
    if plot and rows:
        plot_loss_curve([r for r in rows if r["images"]], run.out / "loss_curve.png", weights)
    if skipped:
        print(f"skipped {len(skipped)} unreadable image(s); listed in {run.out / 'log.json'}")
    net.eval()
    return TrainResult(run.out, net, _summary(rows, done, total, skipped), (run.out / "final.pt") if finished else None,
                       rows, {"skipped": sorted(skipped.values()), "checkpoint": run.checkpoint})
