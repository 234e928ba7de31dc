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
  reported once, skipped, and listed in ``summary.json``.
- A progress bar with the running loss terms.
- Atomic checkpoints (``out/checkpoint.pt``) every ``checkpoint_every`` steps,
  on Ctrl-C, and at the end. ``resume=True`` continues exactly where the
  checkpoint left off: the batch order of every epoch is a function of
  ``(seed, epoch)`` only, and the model, the optimizer state, the step and the
  loss history are restored, so an interrupted and resumed run ends with the
  same weights as an uninterrupted one (same thread count).
- A loss log ``out/log.csv`` (one row per step), ``out/loss_curve.png`` and
  ``out/summary.json``; the final model ``out/final.pt``
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
from ..io import ImageReadError, atomic_write, list_images, read_image, save_checkpoint, write_json
from ..progress import progress as _progress
from .run import RunFolder, check_float as _check_float, check_int as _check_int, write_csv

MODELS = ("zero-dce++", "zero-dce")
TERMS = ("spa", "exp", "col", "tv")
FORMAT = "tasklle.upstream/1"  # the model payload's format (ZeroDCEPP.load / DCENet.load read it)
# settings that must not change when resuming (epochs may grow)
_FIXED = ("data", "model", "batch_size", "image_size", "lr", "weight_decay", "grad_clip", "seed", "scale_factor",
          "exposure", "weights", "init_std", "n_images")


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


def _outputs(model, x):
    """(enhanced, curve_maps) for either model (DCENet returns (half, enhanced, maps))."""
    out = model(x)
    return (out[1], out[2]) if len(out) == 3 else out


def write_log_csv(path, history):
    write_csv(path, history, ["step", "epoch", "total", *TERMS, "images", "seconds"])


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
def train_upstream(data, out, model="zero-dce++", epochs=1, batch_size=8, image_size=512, lr=1e-4,
                   weight_decay=None, grad_clip=None, seed=0, checkpoint_every=100, resume=False, log=True,
                   scale_factor=1, exposure=0.6, weights=None, init_std=0.02, max_steps=None, num_workers=0,
                   show_progress=True, recipe="method"):
    """Train Zero-DCE++ (or Zero-DCE) with the non-reference losses on a folder of images.

    Args:
        data: folder (searched recursively) or a single image file.
        out: output folder (checkpoint.pt, final.pt, log.csv, loss_curve.png, summary.json).
        model: 'zero-dce++' (ZeroDCEPP) or 'zero-dce' (DCENet), or an nn.Module of either
            kind to fine-tune (then ``init_std`` is not applied).
        epochs: passes over the data.
        batch_size: images per step (official: 8); the last batch of an epoch may be smaller.
        image_size: every image is squashed to (image_size, image_size) (official 512; >= 16).
        lr: Adam learning rate (1e-4, the report's and the official).
        recipe: 'method' (default: Adam with default parameters, no weight decay,
            no clipping) or 'zero-dce++' (official: weight decay 1e-4, clip 0.1).
        weight_decay: overrides the recipe's (None: the recipe's).
        grad_clip: max gradient norm, overrides the recipe's (None: the recipe's; 0 disables).
        seed: model init and batch order.
        checkpoint_every: steps between checkpoints (0: only at the end / on Ctrl-C).
        resume: continue from ``out/checkpoint.pt`` (same settings; ``epochs`` may grow).
            Without it an existing checkpoint is an error (``tasklle.train.run``'s resume policy).
        log: write log.csv, loss_curve.png and summary.json.
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
        dict with 'model' (trained, eval mode), 'history' (list of per-step dicts:
        step, epoch, total, spa, exp, col, tv, images, seconds), 'checkpoint',
        'final' (None when stopped early by ``max_steps``), 'skipped' (unreadable
        files), 'out'.
    """
    from ..losses import zero_dce_loss
    from ..reference.zerodce_loss import DEFAULT_WEIGHTS, _check_weights

    out = Path(out)
    data = Path(data)
    if isinstance(model, str):
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS} or an nn.Module, got {model!r}")
        model_name, net = model, None
    elif isinstance(model, torch.nn.Module):
        from ..models import DCENet, ZeroDCEPP

        if not isinstance(model, (ZeroDCEPP, DCENet)):
            raise TypeError(f"model must be a ZeroDCEPP or DCENet, got {type(model).__name__}")
        model_name, net = ("zero-dce++" if isinstance(model, ZeroDCEPP) else "zero-dce"), model
        scale_factor = getattr(model, "scale_factor", 1)
    else:
        raise TypeError(f"model must be a name or an nn.Module, got {type(model).__name__}")
    epochs = _check_int(epochs, "epochs")
    batch_size = _check_int(batch_size, "batch_size")
    image_size = _check_int(image_size, "image_size", lo=16)
    checkpoint_every = _check_int(checkpoint_every, "checkpoint_every", lo=0)
    max_steps = _check_int(max_steps, "max_steps", lo=0, none_ok=True)
    num_workers = _check_int(num_workers, "num_workers", lo=0)
    seed = _check_int(seed, "seed", lo=0)
    lr = _check_float(lr, "lr")
    from .recipes import describe, resolve_recipe

    recipe, weight_decay, clip = resolve_recipe(recipe, weight_decay, "recipe" if grad_clip is None else
                                                (None if grad_clip == 0 else grad_clip))
    weight_decay = _check_float(weight_decay, "weight_decay")
    grad_clip = _check_float(0.0 if clip is None else clip, "grad_clip")
    init_std = _check_float(init_std, "init_std")
    exposure = _check_float(exposure, "exposure")
    default_w = dict(DEFAULT_WEIGHTS, tv=200.0) if model_name == "zero-dce" else dict(DEFAULT_WEIGHTS)
    weights = _check_weights(dict(default_w, **(weights or {})))

    paths = list_images(data)  # FileNotFoundError for a missing folder
    if not paths:
        raise ValueError(f"data: no image files found in {data}")
    config = {"data": str(data.resolve()), "model": model_name, "batch_size": batch_size, "image_size": image_size,
              "lr": lr, "weight_decay": weight_decay, "grad_clip": grad_clip, "seed": seed,
              "scale_factor": scale_factor, "exposure": exposure, "weights": weights, "init_std": init_std,
              "n_images": len(paths), "epochs": epochs, "recipe": recipe,
              "optimizer": describe(recipe, lr, weight_decay, grad_clip if grad_clip > 0 else None)}

    run = RunFolder(out, "upstream")
    ckpt_path = run.checkpoint
    state = run.open(config, _FIXED, resume)

    torch.manual_seed(seed)
    if net is None:
        net = _make_model(model_name, scale_factor)
        net.init_weights(init_std)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    history, skipped, step = [], {}, 0
    if state is not None:
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        history = list(state["history"])
        skipped = {int(k): v for k, v in state.get("skipped", {}).items()}
        step = int(state["step"])
    net.train()

    steps_per_epoch = math.ceil(len(paths) / batch_size)
    total_steps = epochs * steps_per_epoch
    stop_at = total_steps if max_steps is None else min(total_steps, max_steps)
    dataset = _Images(paths, image_size)

    def save(final=False):
        payload = {"format": FORMAT, "kind": type(net).__name__, "scale_factor": scale_factor, "config": config,
                   "step": step, "model": net.state_dict(), "optimizer": opt.state_dict(), "history": history,
                   "skipped": {str(k): v for k, v in skipped.items()}}
        run.save(payload)
        if log and history:
            write_log_csv(out / "log.csv", history)
        if final:
            save_checkpoint(out / "final.pt", {"format": "tasklle.zero_dce_pp/1" if model_name == "zero-dce++"
                                               else "tasklle.zero_dce/1", "kind": type(net).__name__,
                                               "scale_factor": scale_factor, "config": config,
                                               "model": net.state_dict()})

    out.mkdir(parents=True, exist_ok=True)
    bar = _progress(total=stop_at, initial=min(step, stop_at), desc=f"train {model_name}", unit="step",
                    disable=not show_progress)
    running = {}
    t_start = time.perf_counter()
    try:
        while step < stop_at:
            epoch, pos = divmod(step, steps_per_epoch)
            order = epoch_order(len(paths), seed, epoch)
            batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
            n_batches = min(len(batches), pos + (stop_at - step))
            loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches[pos:n_batches],
                                                 collate_fn=_collate, num_workers=num_workers)
            for images, bad in loader:
                for k in bad:
                    if k not in skipped:
                        skipped[k] = str(paths[k])
                        bar.write(f"skipping unreadable image: {paths[k]}")
                t0 = time.perf_counter()
                row = {"step": step + 1, "epoch": epoch + 1, "images": 0}
                if images is not None:
                    enhanced, maps = _outputs(net, images)
                    total, terms = zero_dce_loss(enhanced, images, maps, exposure=exposure, weights=weights)
                    opt.zero_grad(set_to_none=True)
                    total.backward()
                    if grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
                    opt.step()
                    row.update(total=float(total.detach()), **{t: float(v.detach()) for t, v in terms.items()},
                               images=int(images.shape[0]))
                    for key in ("total", *TERMS):
                        running[key] = row[key] if key not in running else 0.9 * running[key] + 0.1 * row[key]
                    bar.set_postfix({k: f"{v:.3g}" for k, v in running.items()}, refresh=False)
                else:
                    row.update(total=float("nan"), **{t: float("nan") for t in TERMS})
                row["seconds"] = round(time.perf_counter() - t0, 4)
                history.append(row)
                step += 1
                bar.update(1)
                if checkpoint_every and step % checkpoint_every == 0 and step < stop_at:
                    save()
    except KeyboardInterrupt:
        bar.close()
        save()  # a consistent state after the last completed step
        raise
    bar.close()
    finished = step >= total_steps
    save(final=finished)
    if log and history:
        plot_loss_curve([r for r in history if r["images"]], out / "loss_curve.png", weights)
        done = [r for r in history if r["images"]]
        write_json(out / "summary.json", {
            "config": config, "steps": step, "total_steps": total_steps, "finished": finished,
            "seconds_this_run": round(time.perf_counter() - t_start, 2),
            "first": done[0] if done else None, "last": done[-1] if done else None,
            "skipped": sorted(skipped.values())})
    if skipped:
        print(f"skipped {len(skipped)} unreadable image(s); listed in {out / 'summary.json'}")
    net.eval()
    return {"model": net, "history": history, "checkpoint": ckpt_path,
            "final": (out / "final.pt") if finished else None, "skipped": sorted(skipped.values()), "out": out}
