"""Zero-reference training of the exposure-conditioned darkener (EC-Zero-DCE).

Each training image gets its own target exposure E ~ U(exposure_range)
(LEDNet: U(0.05, 0.3)); the loss is Zero-DCE's non-reference objective with
the per-image E in the exposure term (``tasklle.losses.zero_dce_loss``, fused
C on CPU):

    L = w_spa L_spa + w_exp L_exp(E) + w_col L_col + w_tv L_tvA

Default weights ``{'spa': 1, 'exp': 10, 'col': 0.5, 'tv': 10}``: L_spa and
L_exp as in Zero-DCE++, but L_col and L_tvA much lower than its enhancement
weights (5 and 1600), because the darkener's job is exposure fidelity (16x16
patch means close to E):

- L_tvA at 1600 dominates every other term for a map that must differ
  between bright and dark regions (in our runs it pulled the held-out patch
  error from about 0.02 to 0.08); ECZeroDCE's map is smooth by construction
  (estimated on a 4x reduced grid, bilinearly upsampled), so a small weight
  suffices;
- L_col at 5 pushes every darkened crop towards grey-world colours, a colour
  change a darkener should not make (and it outweighed L_exp on colourful crops).
An exposure weight of 50 instead of 10 gave the same held-out fidelity.

The model trains with ``preserve_color=False``: the loss sees each channel's
own curve, as in Zero-DCE. At inference ``ECZeroDCE`` keeps only the
brightness of that output (``preserve_color=True``, LEDNet's way), which
leaves the exposure, and so the fidelity, unchanged. Training with
``preserve_color=True`` instead gave a worse held-out patch error (0.013 /
0.017 / 0.020 / 0.025 against 0.011 / 0.014 / 0.018 / 0.024 for E = 0.05 /
0.1 / 0.2 / 0.3): the colour term then pulls the brightness map around.

Data: ``data='builtin'`` uses photographs shipped inside scikit-image and
scikit-learn (available on every install; ``BUILTIN_TRAIN``); the images in
``BUILTIN_HELDOUT`` are never used for training and serve to measure
fidelity. Any other value is a folder searched recursively for images (a
WIDER tree, the demo dataset, ...). Training crops: a random square of side
``image_size * U(1, zoom)`` (area-resized to ``image_size``), random
horizontal flip, random channel order and a random gamma ``exp(U(-0.5, 0.5))``
so the network sees varied colours and input exposures.

Long-job conventions (those of every trainer, ``tasklle.train.run``): progress
bar, atomic checkpoints every ``checkpoint_every`` steps, on Ctrl-C or SIGTERM
and at the end (``OUT/checkpoint.pt``: model, optimiser, data RNG, step),
``resume=True`` continues from it with the same result as an uninterrupted
run, the log ``OUT/log.csv`` (a row every ``log_every`` steps) and
``OUT/log.json``, the final model ``OUT/ec_zero_dce.pt`` (``ECZeroDCE.load``)
and, for the builtin data, ``OUT/fidelity.json`` measured on the held-out images.
"""
import functools
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .._alloc import with_fast_alloc
from ..progress import progress
from .run import (FIXED, FREE, RunFolder, TrainResult, check_float, check_grad_clip, check_int, loop, restore_rows,
                  run_length, stop_step, write_log)

DEFAULT_WEIGHTS = {"spa": 1.0, "exp": 10.0, "col": 0.5, "tv": 10.0}
FIDELITY_EXPOSURES = (0.05, 0.1, 0.2, 0.3)
DEFAULT_EPOCHS = 6  # the run length (of steps_per_epoch steps each) when neither steps nor epochs is given
LOG_FIELDS = ["step", "epoch", "loss", "spa", "exp", "col", "tv", "lr", "seconds"]
# Every setting a darkener run stores, and whether a resumed run must match it (the run length may grow).
SETTINGS = {"data": FIXED, "steps": FREE, "batch_size": FIXED, "image_size": FIXED, "exposure_range": FIXED,
            "lr": FIXED, "seed": FIXED, "steps_per_epoch": FIXED, "weights": FIXED, "zoom": FIXED,
            "grad_clip": FIXED}

# (source, name): images shipped inside scikit-image / scikit-learn
BUILTIN_TRAIN = (
    ("skimage", "astronaut"), ("skimage", "chelsea"), ("skimage", "rocket"),
    ("skimage", "motorcycle_left"), ("skimage", "immunohistochemistry"),
    ("skimage", "brick"), ("skimage", "grass"), ("skimage", "gravel"),
    ("skimage", "coins"), ("skimage", "moon"), ("sklearn", "china.jpg"),
)
BUILTIN_HELDOUT = (("skimage", "coffee"), ("sklearn", "flower.jpg"), ("skimage", "camera"))


def _to_tensor_rgb(arr):
    arr = np.array(arr)  # a writable copy
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, -1)
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        arr = (np.clip(arr.astype(np.float64), 0, 1) * 255 + 0.5).astype(np.uint8)
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float().div_(255.0)


def builtin_images(split="train"):
    """The builtin photographs as a list of (3, H, W) float32 tensors in [0, 1].

    split 'train' (``BUILTIN_TRAIN``) or 'heldout' (``BUILTIN_HELDOUT``);
    grey images are repeated on three channels. Decoded once per process
    (the tensors are shared: do not modify them in place).
    """
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', got {split!r}")
    return list(_builtin_images(split))


@functools.lru_cache(maxsize=2)
def _builtin_images(split):
    out = []
    for source, name in (BUILTIN_TRAIN if split == "train" else BUILTIN_HELDOUT):
        if source == "sklearn":
            from sklearn.datasets import load_sample_image

            arr = load_sample_image(name)
        else:
            import skimage.data

            if name == "motorcycle_left":
                arr = skimage.data.stereo_motorcycle()[0]
            else:
                arr = getattr(skimage.data, name)()
        out.append(_to_tensor_rgb(arr))
    return tuple(out)


class _ImageSource:
    """Training images: the builtin list (in memory) or the files of a folder (read on demand)."""

    def __init__(self, data):
        if isinstance(data, str) and data == "builtin":
            self.images = builtin_images("train")
            self.paths = None
        else:
            from ..io import list_images

            root = Path(data)
            if not root.exists():
                raise FileNotFoundError(f"data folder not found: {root}")
            self.paths = list_images(root)
            self.images = None
            if not self.paths:
                raise ValueError(f"data: no images found under {root}")

    def __len__(self):
        return len(self.images) if self.images is not None else len(self.paths)

    def get(self, i):
        if self.images is not None:
            return self.images[i]
        from ..io import ImageReadError, read_image

        try:
            return read_image(self.paths[i])
        except ImageReadError:
            return None


def _random_crop(img, size, zoom, g):
    """A random square crop resized to (3, size, size), flipped / channel-shuffled / gamma-adjusted."""
    _, H, W = img.shape
    short = min(H, W)
    if short < size:  # upscale small images so a crop fits
        s = size / short
        img = F.interpolate(img[None], size=(max(size, round(H * s)), max(size, round(W * s))),
                            mode="bilinear", align_corners=False)[0]
        _, H, W = img.shape
        short = min(H, W)
    hi = max(size, min(short, int(size * zoom)))
    cs = int(torch.randint(size, hi + 1, (1,), generator=g))
    y = int(torch.randint(0, H - cs + 1, (1,), generator=g))
    x = int(torch.randint(0, W - cs + 1, (1,), generator=g))
    c = img[:, y:y + cs, x:x + cs]
    if cs != size:
        c = F.interpolate(c[None], size=(size, size), mode="area")[0]
    if torch.rand((), generator=g) < 0.5:
        c = c.flip(-1)
    c = c[torch.randperm(3, generator=g)]
    gamma = math.exp(torch.rand((), generator=g, dtype=torch.float64).item() - 0.5)
    return c.clamp(1e-6, 1.0) ** gamma


def exposure_fidelity(model, images, exposures=FIDELITY_EXPOSURES, patch=16):
    """Exposure fidelity of a darkener on ``images`` (list of (3, H, W)).

    For each E: the output's channel mean is average-pooled over
    ``patch`` x ``patch`` cells (as L_exp); returns per E
    ``{'patch_mae': mean over images of mean |cell - E|, 'patch_mae_max':
    worst image, 'image_mae': mean |mean of cells - E|, 'means': per-image
    output means}`` and ``'monotone'``: True when every image's mean output
    brightness strictly increases with E.
    """
    model.eval()
    res = {}
    means = []
    with torch.no_grad():
        for e in exposures:
            maes, imaes, m = [], [], []
            for img in images:
                y, _ = model(img[None].float(), float(e))
                cells = F.avg_pool2d(y.mean(1, keepdim=True), patch)
                maes.append((cells - e).abs().mean().item())
                imaes.append(abs(cells.mean().item() - e))
                m.append(y.mean().item())
            res[str(e)] = {"patch_mae": float(np.mean(maes)), "patch_mae_max": float(np.max(maes)),
                           "image_mae": float(np.mean(imaes)), "means": m}
            means.append(m)
    order = np.argsort(exposures)
    arr = np.asarray(means)[order]
    res["monotone"] = bool(np.all(np.diff(arr, axis=0) > 0))
    return res


def _lr_at(step, total, lr):
    """Cosine decay from lr to lr/10 over the run (a pure function of step: nothing to checkpoint)."""
    t = min(1.0, step / max(1, total))
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


@with_fast_alloc  # large buffers stay in the heap for the run (tasklle._alloc)
def train_darkener(data="builtin", out="runs/darkener", epochs=None, batch_size=8, image_size=128,
                   exposure_range=(0.05, 0.3), lr=1e-3, seed=0, checkpoint_every=100, resume=False,
                   steps_per_epoch=100, weights=None, zoom=2.0, grad_clip=1.0, log_every=10, model=None,
                   evaluate=True, steps=None, max_steps=None, show_progress=True):
    """Train an ECZeroDCE darkener.

    Args:
        data: 'builtin' or a folder of images (searched recursively).
        out: output folder (checkpoint.pt, log.csv, log.json, ec_zero_dce.pt, fidelity.json).
        epochs, steps_per_epoch: training length (default ``DEFAULT_EPOCHS``, 6, of
            100 steps; steps_per_epoch None: one pass over the images,
            ceil(n / batch_size)); or ``steps``: optimiser steps in total instead.
        max_steps: stop at this step (a checkpoint, no final model); the lr
            schedule is still that of the whole run.
        batch_size, image_size: crops per step and their side in pixels (>= 16).
        exposure_range: (lo, hi), E ~ U(lo, hi) per crop, 0 < lo <= hi < 1.
        lr: Adam learning rate (> 0; cosine decay to lr/10), grad_clip:
            gradient-norm clip (None: no clipping).
        seed: seeds the model init and the data RNG.
        checkpoint_every: steps between atomic checkpoints (also on Ctrl-C / SIGTERM and at the end).
        resume: continue from out/checkpoint.pt (without it an existing checkpoint is
            an error; the policy of ``tasklle.train.run``).
        weights: loss weights overriding ``DEFAULT_WEIGHTS``.
        zoom: crops span image_size to image_size * zoom source pixels.
        log_every: steps between log rows.
        model: an ECZeroDCE to train (default: a fresh one, init_weights(0.02),
            with preserve_color=False: see below).
        evaluate: with the builtin data, measure held-out fidelity at the end
            (``exposure_fidelity``; OUT/fidelity.json, also stored in the model file).
        show_progress: progress bar.

    Returns:
        :class:`tasklle.train.run.TrainResult`: ``model`` (the trained ECZeroDCE,
        eval mode), ``final`` (``ec_zero_dce.pt``; None when stopped by
        ``max_steps``), ``rows``, ``summary``; ``extra['fidelity']`` (or None).
    """
    from ..models.ec_zero_dce import ECZeroDCE

    # ---- set up
    lo, hi = _check_range(exposure_range)
    for name, v, least in (("batch_size", batch_size, 1), ("image_size", image_size, 16),
                           ("checkpoint_every", checkpoint_every, 1), ("log_every", log_every, 1)):
        check_int(v, name, least)
    lr, grad_clip = check_float(lr, "lr", positive=True), check_grad_clip(grad_clip)
    w = _loss_weights(weights)
    source = _ImageSource(data)
    if steps_per_epoch is None:
        steps_per_epoch = math.ceil(len(source) / batch_size)
    check_int(steps_per_epoch, "steps_per_epoch")
    total = run_length(steps, epochs, steps_per_epoch, default_epochs=DEFAULT_EPOCHS)
    stop = stop_step(total, max_steps)
    run = RunFolder(out, "darkener")
    settings = {"data": str(data), "steps": total, "batch_size": batch_size, "image_size": image_size,
                "exposure_range": [lo, hi], "lr": lr, "seed": seed, "steps_per_epoch": steps_per_epoch,
                "weights": w, "zoom": zoom, "grad_clip": grad_clip}
    torch.manual_seed(seed)
    if model is None:
        # trained on the per-channel curve output, which the colour term constrains;
        # preserve_color (the inference default) then keeps only its brightness
        model = ECZeroDCE(preserve_color=False).init_weights(0.02)
    step_fn = _Step(model, torch.optim.Adam(model.parameters(), lr=lr), source, settings, total, log_every)
    start = step_fn.restore(run.open(settings, SETTINGS, resume))  # ---- resume
    rows = restore_rows(run, LOG_FIELDS, start)

    def save(step):
        run.save(step_fn.state(step, "periodic" if step < total else "final"))
        write_log(run.out, rows, LOG_FIELDS, settings, _summary(rows, step, total))

    # ---- the loop
    model.train()
    bar = progress(total=stop, initial=start, desc="train-darkener", unit="step", disable=not show_progress)
    try:
        done = loop(((k, None) for k in range(start, stop)), step_fn, save, start, stop, checkpoint_every, bar,
                    lambda row: _log(row, rows, bar))
    finally:
        bar.close()
    # ---- outputs
    save(done)
    return _outputs(run.out, model, data, evaluate, settings, rows, done, total)


# --------------------------------------------------------------------------- the pieces of train_darkener()

def _loss_weights(weights):
    w = dict(DEFAULT_WEIGHTS)
    if weights:
        unknown = set(weights) - set(w)
        if unknown:
            raise ValueError(f"weights: unknown terms {sorted(unknown)} (expected {sorted(w)})")
        w.update({k: float(v) for k, v in weights.items()})
    return w


class _Step:
    """One optimiser step of darkener training (its crops drawn from the data RNG);
    returns its log row every ``log_every`` steps (else None)."""

    def __init__(self, model, opt, source, settings, total, log_every):
        self.model, self.opt, self.source, self.total, self.log_every = model, opt, source, total, log_every
        s = settings
        self.batch_size, self.image_size, self.zoom = s["batch_size"], s["image_size"], s["zoom"]
        (self.lo, self.hi), self.lr, self.weights, self.grad_clip = s["exposure_range"], s["lr"], s["weights"], \
            s["grad_clip"]
        self.steps_per_epoch = s["steps_per_epoch"]
        self.g = torch.Generator()
        self.g.manual_seed(s["seed"])
        self.g_done = self.g.get_state()  # the data RNG after the last finished step (what a checkpoint keeps)
        self.t0 = time.time()

    def restore(self, ckpt):
        """Load a checkpoint's model, optimiser and data RNG; returns its step (0 without one)."""
        if ckpt is None:
            return 0
        self.model.load_state_dict(ckpt["model"]["state_dict"])
        self.opt.load_state_dict(ckpt["optimizer"])
        self.g.set_state(ckpt["generator"])
        self.g_done = self.g.get_state()
        return int(ckpt["step"])

    def state(self, step, kind):
        return {"model": {"config": self.model.config(), "state_dict": self.model.state_dict()},
                "optimizer": self.opt.state_dict(), "generator": self.g_done, "step": step, "kind": kind}

    def __call__(self, step, _):
        from ..losses.zero_dce_loss import zero_dce_loss

        g, crops = self.g, []
        while len(crops) < self.batch_size:
            img = self.source.get(int(torch.randint(len(self.source), (1,), generator=g)))
            if img is not None:
                crops.append(_random_crop(img, self.image_size, self.zoom, g))
        x = torch.stack(crops)
        e = self.lo + (self.hi - self.lo) * torch.rand(self.batch_size, generator=g)
        for group in self.opt.param_groups:
            group["lr"] = _lr_at(step, self.total, self.lr)
        y, a = self.model(x, e)
        loss, terms = zero_dce_loss(y, x, a, exposure=e, weights=self.weights)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.opt.step()
        self.g_done = g.get_state()
        n = step + 1
        if n % self.log_every and n != self.total:
            return None
        return {"step": n, "epoch": (n - 1) // self.steps_per_epoch + 1, "loss": loss.item(),
                **{k: v.item() for k, v in terms.items()}, "lr": self.opt.param_groups[0]["lr"],
                "seconds": round(time.time() - self.t0, 2)}


def _log(row, rows, bar):
    if row is not None:
        rows.append(row)
        bar.set_postfix(loss=f"{row['loss']:.4f}", exp=f"{row['exp']:.5f}")


def _summary(rows, step, total):
    return {"steps": step, "total_steps": total, "finished": step >= total, "last": rows[-1] if rows else None}


def _outputs(out, model, data, evaluate, settings, rows, done, total):
    """Held-out fidelity (builtin data), the model file (when the run reached its length), the result."""
    model.eval()
    fid = None
    extra = {"args": settings, "steps": done}
    if evaluate and isinstance(data, str) and data == "builtin":
        fid = exposure_fidelity(model, builtin_images("heldout"))
        from ..io import write_json

        write_json(out / "fidelity.json", fid)
        extra["fidelity_heldout"] = {k: (v if k == "monotone" else {kk: round(vv, 5) for kk, vv in v.items()
                                                                       if kk != "means"})
                                     for k, v in fid.items()}
    final = out / "ec_zero_dce.pt" if done >= total else None
    if final is not None:
        model.save(final, extra=extra)
    return TrainResult(out, model, _summary(rows, done, total), final, rows, {"fidelity": fid})


def _check_range(r):
    try:
        lo, hi = (float(v) for v in r)
    except (TypeError, ValueError):
        raise ValueError(f"exposure_range must be a pair (lo, hi), got {r!r}") from None
    if not (0 < lo <= hi < 1):
        raise ValueError(f"exposure_range must satisfy 0 < lo <= hi < 1, got {r!r}")
    return lo, hi
