"""Joint training: the Zero-DCE++ enhancer trained with a frozen detector's loss.

The method (the report's eq. 3.14)::

    L_total = W_up * L_up + W_down * L_down

- ``L_up`` is Zero-DCE++'s non-reference loss on (enhanced, low-light input,
  curve maps): ``L_spa + 10 L_exp + 5 L_col + 1600 L_tvA``
  (:func:`tasklle.losses.zero_dce_loss`).
- ``L_down`` is the frozen detector's own training loss
  (``detector.loss(enhanced, targets)``: focal + 2 DIoU + IoU-branch BCE for
  TinaFace) on the *enhanced* images against the ground-truth boxes. Its
  gradient flows through the detector into the enhancer; the detector's
  weights are never updated, and this module checks that they are
  bit-identical after training (a SHA-256 of the state_dict before and after;
  a change raises ``RuntimeError``).

``W_down = 0`` is Zero-DCE++ trained with L_up only (the method's "1:0" row
and group 2 of Table 4.1). It runs through the same loop, on the same data
in the same order with the same seed, so the comparison with joint training
is fair; the detector is then not evaluated at all (the gradient of
``0 * L_down`` is exactly zero, so skipping it changes nothing).

L_down normalisation
--------------------
The report says L_down is "transformed to conform to the format and size of"
L_up without saying how. Two documented options:

- ``'none'``: ``L_total = W_up L_up + W_down L_down`` as is. With the lite
  detector on dark images L_down is of order 1-3 while L_up is of order
  0.1-1, so the detector term dominates unless W_down is small.
- ``'running-ratio'``: ``L_total = W_up L_up + W_down * r * L_down`` with
  ``r = EMA(L_up) / EMA(L_down)``, exponential moving averages of the
  *detached* loss values (decay ``ema_decay``, Adam-style bias correction,
  updated with the current step's values before use, so the first step uses
  ``r = L_up / L_down``). ``r`` is a number, not part of the graph: it
  rescales L_down to L_up's running magnitude without changing the direction
  of its gradient, so ``W_up : W_down`` then reads as the ratio of the two
  losses' contributions. Under DDP the values entering the EMA are averaged
  over processes first, so every process uses the same ``r``.

Optimiser: the report's "Adam using default parameters", lr 1e-4: betas
(0.9, 0.999), no weight decay, no gradient clipping (``recipe='method'``, the
default). The official Zero-DCE++ training script's recipe, weight decay 1e-4
and a gradient-norm clip of 0.1, is ``recipe='zero-dce++'``
(``tasklle.train.recipes``); explicit ``weight_decay`` / ``grad_clip`` override
the recipe's. Conv weights are drawn from N(0, 0.02), the report's init (the
official Zero-DCE++ script keeps PyTorch's default init), unless training
starts from an upstream checkpoint.

Data
----
``data`` is a WIDER-format root (its ``split`` is read with
:class:`tasklle.data.WiderFace`; pass the *darkened* copy, so images are dark
and boxes come from the annotations) or any map-style dataset giving item
dicts with ``'image'`` (3, H, W), ``'boxes'`` (N, 4) x1y1x2y2 and
``'ignore'`` (N,). Items are brought to one size so they stack:
``crop='random'`` uses the detector's training crop
(:class:`tasklle.data.transforms.TrainTransform`: random square crop keeping
boxes whose centre is inside, flip, resize to ``image_size``) *without* its
photometric distortion (the low-light statistics are what the enhancer must
learn); ``crop='resize'`` squashes the whole image to ``image_size`` square
(Zero-DCE's own recipe) and scales the boxes.

Determinism (:mod:`tasklle.data.sampling`): the sample order is a permutation per epoch drawn from
``seed``; the random crop of sample position ``p`` is drawn from its own seed
``(seed, p)``. So a run is reproducible, a resumed run continues exactly as an
uninterrupted one, and the samples seen do not depend on the number of data
workers. Under ``torchrun`` with W processes of batch B, the processes
together see exactly the samples a single process with batch W*B sees.

Layout: this module is the method (set up, loop, save); the step is
:mod:`.joint_step`, the log and plot :mod:`.joint_log`, the run folder and
resume policy :mod:`.run`, the batches :mod:`tasklle.data.sampling`.

Outputs in ``out``: ``checkpoint.pt`` (atomic, every ``checkpoint_every``
steps and at the end: model, optimiser, step, normaliser state), ``final.pt``
(the trained enhancer, loadable with :func:`load_upstream`), ``log.csv``
(one row per step), ``log.json`` (config, summary and rows), ``loss.png``.
"""
import copy
import hashlib
import math
import os
import time
from pathlib import Path

import torch

from .._alloc import with_fast_alloc
from ..io import save_checkpoint, write_json
from ..models import ZeroDCEPP
from ..models.shipped import load_detector
from ..progress import progress
from ..data.sampling import JointBatches, open_dataset
from ..data.transforms import make_transform  # noqa: F401  (public here: tasklle.train.make_transform)
from .joint_log import LOG_FIELDS, plot_losses, read_log, summary as _summary  # noqa: F401  (public here too)
from .joint_step import RunningRatio, Step, joint_losses  # noqa: F401  (public here too)
from .recipes import describe, resolve_recipe
from .run import (ResumeMismatch, RunFolder, check_float, check_int, dist_env, finish_distributed, read_csv,
                  setup_distributed, write_csv)

CHECKPOINT_FORMAT = "tasklle.joint/1"
# Config entries that must match when resuming (others, e.g. steps, may change).
_RESUME_KEYS = ("w_up", "w_down", "batch_size", "lr", "weight_decay", "grad_clip", "image_size", "exposure",
                "normalise", "ema_decay", "seed", "crop", "scale_factor", "world_size")
NORMALISATIONS = ("none", "running-ratio")


# --------------------------------------------------------------------------- helpers

def state_dict_sha256(module):
    """SHA-256 over a module's state_dict (parameters and buffers, sorted by
    name; names, dtypes, shapes and raw bytes all enter). Equal hashes mean
    bit-identical weights."""
    h = hashlib.sha256()
    state = module.state_dict()
    for name in sorted(state):
        t = state[name]
        h.update(name.encode())
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().contiguous()
            h.update(str(t.dtype).encode())
            h.update(str(tuple(t.shape)).encode())
            # reshape(-1): a channels-last (O, I, 1, 1) weight counts as contiguous with stride(-1) != 1
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(repr(t).encode())
    return h.hexdigest()


def _check_weights(w_up, w_down):
    for name, w in (("w_up", w_up), ("w_down", w_down)):
        if isinstance(w, bool) or not isinstance(w, (int, float)):
            raise TypeError(f"{name} must be a number, got {type(w).__name__}")
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"{name} must be finite and >= 0, got {w}")
    if w_up == 0 and w_down == 0:
        raise ValueError("w_up and w_down are both 0: nothing to train")


def load_upstream(path_or_model=None, scale_factor=None):
    """A :class:`tasklle.models.ZeroDCEPP` from a module, a tasklle checkpoint
    (``final.pt`` / ``checkpoint.pt`` of this module or ``train_upstream``'s)
    or an official Zero-DCE++ state_dict (``Epoch99.pth``). Eval mode."""
    from ..models import ZeroDCEPP

    if path_or_model is None:
        raise ValueError("upstream: give a model or a checkpoint path")
    if isinstance(path_or_model, torch.nn.Module):
        return path_or_model
    return ZeroDCEPP.load(path_or_model, scale_factor=scale_factor)


# --------------------------------------------------------------------------- the loop

@with_fast_alloc  # large buffers stay in the heap for the run (tasklle._alloc)
def joint(data, detector=None, out="runs/joint", *, w_up=1.0, w_down=0.5, steps=1000, batch_size=4, lr=1e-4,
          weight_decay=None, grad_clip="recipe", recipe="method", image_size=640, crop="random", exposure=0.6,
          normalise="none",
          ema_decay=0.99, upstream=None, init_std=0.02, scale_factor=1, seed=0, split="train",
          checkpoint_every=100, resume=False, num_workers=0, show_progress=True, device=None, plot=True,
          verbose=True):
    """Train Zero-DCE++ with ``L_total = w_up*L_up + w_down*L_down`` (see the module docstring).

    Args:
        data: WIDER-format root (the darkened copy) or a map-style dataset of item dicts.
        detector: a TinaFace (or any module with ``loss(images, targets)`` and
            ``freeze()``) or a checkpoint path; may be None only when ``w_down == 0``.
        out: output folder (checkpoints, logs, plot, ``final.pt``).
        w_up, w_down: loss weights (the method: 1 and 0.5, i.e. 2:1).
        steps: optimiser steps in total (a resumed run continues up to it).
        batch_size: images per step per process (the method: 4).
        lr: Adam learning rate (the method: 1e-4).
        recipe: 'method' (Adam with default parameters: no weight decay, no
            clipping; default) or 'zero-dce++' (weight decay 1e-4, gradient-norm
            clip 0.1, the official Zero-DCE++ script).
        weight_decay, grad_clip: override the recipe's (weight_decay None and
            grad_clip 'recipe': the recipe's; grad_clip None: no clip).
        image_size: side of the square training crops.
        crop: 'random' (detector's crop, no photometric distortion) or 'resize'.
        exposure: L_exp's target E (0.6).
        normalise: 'none' or 'running-ratio' (L_down scaled by EMA(L_up)/EMA(L_down)).
        ema_decay: decay of those running averages.
        upstream: start from this enhancer (module or checkpoint); None: from
            scratch with conv weights ~ N(0, init_std).
        scale_factor: Zero-DCE++ scale factor of a model made from scratch.
        seed: seeds the initial weights, sample order and crops.
        checkpoint_every: steps between atomic checkpoints.
        resume: continue from ``out/checkpoint.pt`` when it exists.
        num_workers: threads loading and cropping images.
        device: torch device (default: CUDA under NCCL torchrun, else CPU).

    Returns:
        dict with 'model' (the trained ZeroDCEPP, eval mode), 'out', 'final',
        'rows' (the per-step log), 'steps', 'detector_sha256', 'seconds'.
    """
    _check_weights(w_up, w_down)
    if normalise not in NORMALISATIONS:
        raise ValueError(f"normalise must be one of {NORMALISATIONS}, got {normalise!r}")
    check_int(steps, "steps", lo=0)
    for name, v in (("batch_size", batch_size), ("image_size", image_size), ("checkpoint_every", checkpoint_every)):
        check_int(v, name)
    check_float(lr, "lr", positive=True)
    recipe, weight_decay, grad_clip = resolve_recipe(recipe, weight_decay, grad_clip)

    # ---- set up: processes, the frozen detector, the data, the enhancer, the run folder
    device, rank, world, own_group = _device_and_group(device)
    main = rank == 0
    out = Path(out)
    run = RunFolder(out, "joint", main=main)
    det, det_hash = _frozen_detector(detector, w_down, device)
    dataset, data_name = open_dataset(data, split)
    loader = JointBatches(dataset, make_transform(crop, image_size), batch_size, seed, rank, world, num_workers)
    config = dict(data=data_name, split=split, w_up=float(w_up), w_down=float(w_down), steps=steps,
                  batch_size=batch_size, lr=float(lr), weight_decay=float(weight_decay),
                  grad_clip=None if grad_clip is None else float(grad_clip), image_size=image_size, crop=crop,
                  exposure=float(exposure), normalise=normalise, ema_decay=float(ema_decay),
                  upstream=None if upstream is None else (str(upstream) if not isinstance(upstream, torch.nn.Module)
                                                          else "module"),
                  init_std=float(init_std), scale_factor=scale_factor, seed=seed, world_size=world,
                  detector_sha256=det_hash, recipe=recipe,
                  optimizer=describe(recipe, float(lr), float(weight_decay), grad_clip))
    torch.manual_seed(seed)
    model = _enhancer(upstream, scale_factor, init_std)
    if upstream is not None:
        config["scale_factor"] = scale_factor = getattr(model, "scale_factor", scale_factor)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    normaliser = RunningRatio(ema_decay) if normalise == "running-ratio" else None
    start, rows = _resume(run, config, resume, det_hash, model, opt, normaliser, steps, device, verbose)
    step_fn = Step(model, det, opt, world, device, w_up, w_down, exposure, grad_clip, normaliser)

    def save(step):
        if main:
            run.save({"format": CHECKPOINT_FORMAT, "step": step, "config": config,
                      "model": model.state_dict(), "optimizer": opt.state_dict(),
                      "normaliser": normaliser.state_dict() if normaliser is not None else None})
            write_csv(out / "log.csv", rows, LOG_FIELDS)

    # ---- the loop: one step per batch, a checkpoint every checkpoint_every steps
    t_start = time.perf_counter()
    bar = progress(total=steps, initial=start, desc=f"joint {w_up:g}:{w_down:g}", leave=False,
                   disable=(not show_progress) or not main)
    try:
        for step in range(start, steps):
            t0 = time.perf_counter()
            row = step_fn(*loader.batch(step), step)
            row.update(step=step + 1, epoch=loader.epoch_of(step), lr=float(lr), seconds=time.perf_counter() - t0)
            if main:
                rows.append(row)
                bar.update(1)
                bar.set_postfix({"L": f"{row['l_total']:.3f}", "up": f"{row['l_up']:.3f}",
                                 **({"down": f"{row['l_down']:.3f}"} if w_down > 0 else {})}, refresh=False)
            if (step + 1) % checkpoint_every == 0 and step + 1 < steps:
                save(step + 1)
    finally:
        bar.close()
        loader.close()

    # ---- save: the detector must be exactly as it was; then the final model and the logs
    if det is not None and state_dict_sha256(det) != det_hash:
        raise RuntimeError("the detector's weights changed during joint training "
                           f"(sha256 {det_hash[:12]} -> {state_dict_sha256(det)[:12]}); it must stay frozen")
    final = out / "final.pt"
    model.eval()
    if main:
        save(steps)
        save_checkpoint(final, {"format": "tasklle.zero_dce_pp/1", "kind": "ZeroDCEPP",
                                "scale_factor": scale_factor, "config": config, "model": model.state_dict()})
        _write_logs(out, rows, config, det_hash, plot, verbose, w_up, w_down, steps, final)
    seconds = time.perf_counter() - t_start
    if own_group:
        finish_distributed(world, own_group)
    return {"model": model, "out": out, "final": final, "rows": rows, "steps": steps,
            "detector_sha256": det_hash, "seconds": seconds, "config": config}


# --------------------------------------------------------------------------- the pieces of joint()

def _device_and_group(device):
    """The device (default: CUDA when present, one GPU per process under torchrun; else CPU) and
    the process group: (device, rank, world_size, owns_group)."""
    _, world, local_rank = dist_env()
    if device is None:
        use_cuda = torch.cuda.is_available() and os.environ.get("TASKLLE_DEVICE", "") != "cpu"
        device = f"cuda:{local_rank if world > 1 else 0}" if use_cuda else "cpu"
    device = torch.device(device)
    rank, world, _, own_group = setup_distributed(device)
    return device, rank, world, own_group


def _frozen_detector(detector, w_down, device):
    """(detector frozen on ``device``, SHA-256 of its weights), or (None, None) when W_down is 0."""
    if w_down == 0:
        return None, None
    if detector is None:
        raise ValueError("detector is required when w_down > 0")
    det = load_detector(detector)
    det.freeze()
    det.to(device)
    if any(p.requires_grad for p in det.parameters()):
        raise RuntimeError("detector.freeze() left parameters with requires_grad=True")
    return det, state_dict_sha256(det)


def _enhancer(upstream, scale_factor, init_std):
    """A new ZeroDCEPP with conv weights ~ N(0, init_std), or a copy of ``upstream``
    (never train the caller's module in place)."""
    if upstream is None:
        model = ZeroDCEPP(scale_factor=scale_factor)
        model.init_weights(std=init_std)
        return model
    return copy.deepcopy(load_upstream(upstream))


def _resume(run, config, resume, det_hash, model, opt, normaliser, steps, device, verbose):
    """Apply the run folder's resume policy; restore the state; returns (start step, log rows)."""
    ck = run.open(config, _RESUME_KEYS, resume, map_location=device)
    if ck is None:
        return 0, []
    if det_hash is not None and ck["run"]["settings"].get("detector_sha256") not in (None, det_hash):
        raise ResumeMismatch("resume: the detector differs from the one the checkpoint was trained with")
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    if normaliser is not None and ck.get("normaliser"):
        normaliser.load_state_dict(ck["normaliser"])
    start = int(ck["step"])
    if start > steps:
        raise ResumeMismatch(f"resume: {run.checkpoint} is at step {start}, beyond steps={steps}")
    rows = []
    if run.main:
        rows = read_csv(run.out / "log.csv", LOG_FIELDS, upto=start)
        if verbose:
            print(f"resuming {run.out} at step {start}/{steps}")
    return start, rows


def _write_logs(out, rows, config, det_hash, plot, verbose, w_up, w_down, steps, final):
    summary = _summary(rows)
    write_json(out / "log.json", {"config": config, "summary": summary, "detector_sha256_after": det_hash,
                                  "fields": LOG_FIELDS, "rows": rows})
    if plot and rows:
        plot_losses(rows, out / "loss.png", title=f"joint training W_up:W_down = {w_up:g}:{w_down:g}")
    if verbose:
        last = summary.get("last", {})
        print(f"joint {w_up:g}:{w_down:g}: {steps} steps, L_up {last.get('l_up', float('nan')):.4f}"
              + (f", L_down {last.get('l_down', float('nan')):.4f}" if w_down > 0 else "")
              + f" -> {final}")
