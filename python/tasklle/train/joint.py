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
import math
import os
import time

import torch

from .._alloc import with_fast_alloc
from ..models import ZeroDCEPP
from ..io import state_dict_sha256  # noqa: F401  (public here too: tasklle.train.joint.state_dict_sha256)
from ..models.protocol import detector_key
from ..models.shipped import load_detector
from ..progress import progress
from ..data.sampling import JointBatches, open_dataset
from ..data.transforms import make_transform  # noqa: F401  (public here: tasklle.train.make_transform)
from .joint_log import LOG_FIELDS, plot_losses, read_log, summary as _summary  # noqa: F401  (public here too)
from .joint_step import RunningRatio, Step, joint_losses  # noqa: F401  (public here too)
from .recipes import describe, resolve_recipe
from .run import (FIXED, FREE, ResumeMismatch, RunFolder, TrainResult, check_float, check_int, dist_env,
                  finish_distributed, loop, restore_rows, run_length, setup_distributed, stop_step, write_csv,
                  write_log)

CHECKPOINT_FORMAT = "tasklle.joint/1"
DEFAULT_STEPS = 1000  # the run length when neither steps nor epochs is given
NORMALISATIONS = ("none", "running-ratio")


# --------------------------------------------------------------------------- helpers

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


# --------------------------------------------------------------------------- the trainer

@with_fast_alloc  # large buffers stay in the heap for the run (tasklle._alloc)
def joint(data, detector=None, out="runs/joint", *, w_up=1.0, w_down=0.5, steps=None, batch_size=4, lr=1e-4,
          weight_decay=None, grad_clip="recipe", recipe="method", image_size=640, crop="random", exposure=0.6,
          normalise="none",
          ema_decay=0.99, upstream=None, init_std=0.02, scale_factor=1, seed=0, split="train",
          checkpoint_every=100, resume=False, num_workers=0, show_progress=True, device=None, plot=True,
          verbose=True, epochs=None, max_steps=None):
    """Train Zero-DCE++ with ``L_total = w_up*L_up + w_down*L_down`` (see the module docstring).

    Args:
        data: WIDER-format root (the darkened copy) or a map-style dataset of item dicts.
        detector: a TinaFace (or any module with ``loss(images, targets)`` and
            ``freeze()``) or a checkpoint path; may be None only when ``w_down == 0``.
        out: output folder (checkpoints, logs, plot, ``final.pt``).
        w_up, w_down: loss weights (the method: 1 and 0.5, i.e. 2:1).
        steps: optimiser steps in total (default ``DEFAULT_STEPS``, 1000; a resumed
            run continues up to it); or ``epochs``: passes over the data instead.
        max_steps: stop at this step (a checkpoint, no final model).
        batch_size: images per step per process (the method: 4).
        lr: Adam learning rate (> 0; the method: 1e-4).
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
        checkpoint_every: steps between atomic checkpoints (also on Ctrl-C / SIGTERM).
        resume: continue from ``out/checkpoint.pt`` when it exists.
        num_workers: threads loading and cropping images.
        device: torch device (default: CUDA under NCCL torchrun, else CPU).

    Returns:
        :class:`tasklle.train.run.TrainResult`: ``model`` (the trained ZeroDCEPP,
        eval mode), ``run_dir``, ``final``, ``rows`` (the per-step log),
        ``summary``; ``extra``: 'steps', 'detector_sha256', 'seconds', 'config'
        (``result['model']``, ``result['out']`` ... read them as before).
    """
    _check_args(w_up, w_down, normalise, batch_size, image_size, checkpoint_every, lr)
    recipe, weight_decay, grad_clip = resolve_recipe(recipe, weight_decay, grad_clip)
    # ---- set up: processes, the frozen detector, the data, the enhancer, the run folder
    device, rank, world, own_group = _device_and_group(device)
    run = RunFolder(out, "joint", main=rank == 0)
    det, det_hash, det_key = _frozen_detector(detector, w_down, device)
    dataset, data_name = open_dataset(data, split)
    loader = JointBatches(dataset, make_transform(crop, image_size), batch_size, seed, rank, world, num_workers)
    steps = run_length(steps, epochs, math.ceil(len(dataset) / (batch_size * world)), default_steps=DEFAULT_STEPS)
    stop = stop_step(steps, max_steps)
    torch.manual_seed(seed)
    model = _enhancer(upstream, scale_factor, init_std).to(device).train()
    scale_factor = getattr(model, "scale_factor", scale_factor) if upstream is not None else scale_factor
    config = _settings(data_name, split, w_up, w_down, steps, batch_size, lr, weight_decay, grad_clip, image_size,
                       crop, exposure, normalise, ema_decay, upstream, init_std, scale_factor, seed, world, det_key,
                       recipe)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    normaliser = RunningRatio(ema_decay) if normalise == "running-ratio" else None
    # ---- resume
    start, rows = _resume(run, config, resume, det_key, model, opt, normaliser, steps, device, verbose)
    step_fn = Step(model, det, opt, world, device, w_up, w_down, exposure, grad_clip, normaliser)
    save = _saver(run, config, model, opt, normaliser, rows)
    # ---- the loop: one step per batch, a checkpoint every checkpoint_every steps
    t_start = time.perf_counter()
    _loop(loader, step_fn, save, start, stop, checkpoint_every, rows, run.main and show_progress, lr, w_up, w_down)
    # ---- outputs: the detector must be exactly as it was; then the final model and the logs
    _check_unchanged(det, det_hash)
    model.eval()
    save(stop)
    final = _outputs(run, model, scale_factor, config, rows, det_hash, plot, verbose, w_up, w_down, stop, steps)
    seconds = time.perf_counter() - t_start
    if own_group:
        finish_distributed(world, own_group)
    return TrainResult(run.out, model, _summary(rows), final, rows,
                       {"steps": steps, "detector_sha256": det_hash, "seconds": seconds, "config": config})


# --------------------------------------------------------------------------- the pieces of joint()

def _check_args(w_up, w_down, normalise, batch_size, image_size, checkpoint_every, lr):
    _check_weights(w_up, w_down)
    if normalise not in NORMALISATIONS:
        raise ValueError(f"normalise must be one of {NORMALISATIONS}, got {normalise!r}")
    for name, v in (("batch_size", batch_size), ("image_size", image_size), ("checkpoint_every", checkpoint_every)):
        check_int(v, name)
    check_float(lr, "lr", positive=True)


# Every setting a joint run stores, and whether a resumed run must match it (the run length may grow).
SETTINGS = {"data": FREE, "split": FREE, "w_up": FIXED, "w_down": FIXED, "steps": FREE, "batch_size": FIXED,
            "lr": FIXED, "weight_decay": FIXED, "grad_clip": FIXED, "image_size": FIXED, "crop": FIXED,
            "exposure": FIXED, "normalise": FIXED, "ema_decay": FIXED, "upstream": FREE, "init_std": FREE,
            "scale_factor": FIXED, "seed": FIXED, "world_size": FIXED, "detector_sha256": FREE, "recipe": FREE,
            "optimizer": FREE}


def _settings(data_name, split, w_up, w_down, steps, batch_size, lr, weight_decay, grad_clip, image_size, crop,
              exposure, normalise, ema_decay, upstream, init_std, scale_factor, seed, world, det_hash, recipe):
    """This run's settings (the keys of :data:`SETTINGS`), stored with every checkpoint and in log.json."""
    return dict(data=data_name, split=split, w_up=float(w_up), w_down=float(w_down), steps=steps,
                batch_size=batch_size, lr=float(lr), weight_decay=float(weight_decay),
                grad_clip=None if grad_clip is None else float(grad_clip), image_size=image_size, crop=crop,
                exposure=float(exposure), normalise=normalise, ema_decay=float(ema_decay),
                upstream=None if upstream is None else (str(upstream) if not isinstance(upstream, torch.nn.Module)
                                                        else "module"),
                init_std=float(init_std), scale_factor=scale_factor, seed=seed, world_size=world,
                detector_sha256=det_hash, recipe=recipe,
                optimizer=describe(recipe, float(lr), float(weight_decay), grad_clip))


def _saver(run, config, model, opt, normaliser, rows):
    """``save(step)``: the checkpoint (model, optimiser, normaliser, step) and log.csv."""
    def save(step):
        run.save({"format": CHECKPOINT_FORMAT, "step": step, "config": config, "model": model.state_dict(),
                  "optimizer": opt.state_dict(),
                  "normaliser": normaliser.state_dict() if normaliser is not None else None})
        if run.main:
            write_csv(run.out / "log.csv", rows, LOG_FIELDS)

    return save


def _check_unchanged(det, det_hash):
    if det is not None and state_dict_sha256(det) != det_hash:
        raise RuntimeError("the detector's weights changed during joint training "
                           f"(sha256 {det_hash[:12]} -> {state_dict_sha256(det)[:12]}); it must stay frozen")


def _loop(loader, step_fn, save, start, stop, checkpoint_every, rows, show, lr, w_up, w_down):
    """Steps ``start..stop-1`` through :func:`tasklle.train.run.loop`, the rows into ``rows``."""
    bar = progress(total=stop, initial=start, desc=f"joint {w_up:g}:{w_down:g}", leave=False, disable=not show)
    main = loader.rank == 0

    def batches():
        for step in range(start, stop):
            yield step, loader.batch(step)

    def one(step, batch):
        t0 = time.perf_counter()
        row = step_fn(*batch, step)
        row.update(step=step + 1, epoch=loader.epoch_of(step), lr=float(lr), seconds=time.perf_counter() - t0)
        return row

    def on_row(row):
        if main:
            rows.append(row)
            bar.set_postfix({"L": f"{row['l_total']:.3f}", "up": f"{row['l_up']:.3f}",
                             **({"down": f"{row['l_down']:.3f}"} if w_down > 0 else {})}, refresh=False)

    try:
        loop(batches(), one, save, start, stop, checkpoint_every, bar, on_row)
    finally:
        bar.close()
        loader.close()


def _outputs(run, model, scale_factor, config, rows, det_hash, plot, verbose, w_up, w_down, stop, steps):
    """final.pt (when the run reached its length), log.csv / log.json, loss.png; returns final.pt or None."""
    final = run.out / "final.pt" if stop >= steps else None
    if not run.main:
        return final
    if final is not None:
        model.save(final, scale_factor=scale_factor, config=config)
    summary = _summary(rows)
    write_log(run.out, rows, LOG_FIELDS, config, summary, detector_sha256_after=det_hash)
    if plot and rows:
        plot_losses(rows, run.out / "loss.png", title=f"joint training W_up:W_down = {w_up:g}:{w_down:g}")
    if verbose:
        last = summary.get("last", {})
        print(f"joint {w_up:g}:{w_down:g}: {stop} steps, L_up {last.get('l_up', float('nan')):.4f}"
              + (f", L_down {last.get('l_down', float('nan')):.4f}" if w_down > 0 else "")
              + f" -> {final or run.checkpoint}")
    return final


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
    """(detector frozen on ``device``, SHA-256 of its weights, its key for resume checks:
    ``tasklle.models.protocol.detector_key``, which adds a RetinaFace's input scale), or
    (None, None, None) when W_down is 0."""
    if w_down == 0:
        return None, None, None
    if detector is None:
        raise ValueError("detector is required when w_down > 0")
    det = load_detector(detector)
    det.freeze()
    det.to(device)
    if any(p.requires_grad for p in det.parameters()):
        raise RuntimeError("detector.freeze() left parameters with requires_grad=True")
    return det, state_dict_sha256(det), detector_key(det)


def _enhancer(upstream, scale_factor, init_std):
    """A new ZeroDCEPP with conv weights ~ N(0, init_std), or a copy of ``upstream``
    (never train the caller's module in place)."""
    if upstream is None:
        model = ZeroDCEPP(scale_factor=scale_factor)
        model.init_weights(std=init_std)
        return model
    return copy.deepcopy(load_upstream(upstream))


def _resume(run, config, resume, det_key, model, opt, normaliser, steps, device, verbose):
    """Apply the run folder's resume policy; restore the state; returns (start step, log rows)."""
    ck = run.open(config, SETTINGS, resume, map_location=device)
    if ck is None:
        return 0, []
    if det_key is not None and ck["run"]["settings"].get("detector_sha256") not in (None, det_key):
        raise ResumeMismatch("resume: the detector differs from the one the checkpoint was trained with")
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    if normaliser is not None and ck.get("normaliser"):
        normaliser.load_state_dict(ck["normaliser"])
    start = int(ck["step"])
    if start > steps:
        raise ResumeMismatch(f"resume: {run.checkpoint} is at step {start}, beyond steps={steps}")
    if run.main and verbose:
        print(f"resuming {run.out} at step {start}/{steps}")
    return start, restore_rows(run, LOG_FIELDS, start)
