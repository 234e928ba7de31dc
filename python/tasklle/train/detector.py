"""Train TinaFace (full or lite) on a WIDER-format tree: the vedadet
train pipeline (``tasklle.data.transforms.TrainTransform``: random square
crop, photometric distortion, flip, resize to ``image_size``), SGD (momentum
0.9, weight decay 5e-4, as vedadet) or Adam, linear warmup and a cosine
(optionally restarting, as vedadet's CosineRestart) or step schedule.

Single process, or data-parallel under ``torchrun`` (``WORLD_SIZE`` set):
``gloo`` on CPU, ``nccl`` on GPU, a ``DistributedSampler`` per process,
``batch_size`` images per process, gradients averaged by
DistributedDataParallel and the loss normaliser (number of positives)
averaged over processes as vedadet does -- so N processes make the same update
as one process on the N-times larger batch. Only rank 0 writes files.

Run length (the vocabulary of every trainer, ``tasklle.train.run``): ``epochs``
(default ``DEFAULT_EPOCHS``) or ``steps`` (iterations; the schedule then spans
ceil(steps / iterations per epoch) epochs and the last one stops at ``steps``);
``max_steps`` stops early with a checkpoint and no ``detector.pt``. An epoch
stopped early (``steps``, ``max_steps``, Ctrl-C or SIGTERM) counts as finished
in the checkpoint: the augmentation and sampling are drawn per epoch, so a
resumed run continues with the next one.

Files in ``out``:
- ``checkpoint.pt``: the training state after the last finished epoch
  (model config and weights, optimizer, epoch, iteration, per-epoch means); it
  is also a valid ``TinaFace.load`` file. Written atomically every
  ``checkpoint_every`` epochs, on Ctrl-C / SIGTERM and at the end;
  ``resume=True`` continues from it.
- ``detector.pt``: the final detector (``TinaFace.load``).
- ``log.csv`` (a row every ``log_every`` iterations: loss parts and learning
  rate) and ``log.json`` (settings, summary with the per-epoch means, rows).
"""
import math
import time

import torch

from .._alloc import with_fast_alloc
from ..progress import progress
from .run import (FIXED, FREE, RunFolder, TrainResult, check_float, check_grad_clip, check_int, finish_distributed,
                  loop, positive_count_reduce, renamed_args, restore_rows, run_length, setup_distributed, stop_step,
                  write_log)

CONFIGS = ("lite", "full")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "step", "constant")
# vedadet: lr 3.75e-3 for 3 GPUs x 4 images; scaled linearly with the total batch
SGD_LR_PER_IMAGE = 3.75e-3 / 12
ADAM_LR = 1e-3
DEFAULT_EPOCHS = 12  # the run length when neither steps nor epochs is given
LOG_FIELDS = ["step", "epoch", "lr", "total", "cls", "reg", "iou"]
PARTS = ("total", "cls", "reg", "iou")
# Every setting a detector run stores, and whether a resumed run must match it (the run length may grow).
SETTINGS = {"lr": FIXED, "optimizer": FIXED, "momentum": FIXED, "weight_decay": FIXED, "schedule": FIXED,
            "warmup_iters": FIXED, "warmup_ratio": FIXED, "min_lr_ratio": FIXED, "restart_period": FIXED,
            "step_epochs": FIXED, "epochs": FREE, "steps": FREE, "batch_size": FIXED, "world_size": FIXED,
            "image_size": FIXED, "seed": FIXED, "grad_clip": FIXED, "model": FIXED}


def lr_at(base_lr, epoch, iteration, epochs, schedule="cosine", warmup_iters=500, warmup_ratio=0.1,
          min_lr_ratio=0.01, restart_period=None, step_epochs=None, step_gamma=0.1):
    """Learning rate for (0-based) ``epoch`` and global ``iteration``.

    The regular rate changes once per epoch (mmcv's by-epoch hooks):
    cosine from base_lr to base_lr * min_lr_ratio over ``restart_period``
    epochs (None: the whole run; vedadet restarts every 30 epochs), 'step'
    multiplies by step_gamma at each epoch in ``step_epochs`` (default: 2/3
    and 8/9 of the run), 'constant' keeps it. During the first
    ``warmup_iters`` iterations it is scaled linearly from warmup_ratio to 1
    (mmcv 'linear' warmup)."""
    if schedule == "cosine":
        period = restart_period or epochs
        t = (epoch % period) / period
        target = base_lr * min_lr_ratio
        lr = target + 0.5 * (base_lr - target) * (1 + math.cos(math.pi * t))
    elif schedule == "step":
        steps = step_epochs if step_epochs is not None else [max(1, int(epochs * 2 / 3)), max(1, int(epochs * 8 / 9))]
        lr = base_lr * step_gamma ** sum(epoch >= s for s in steps)
    elif schedule == "constant":
        lr = base_lr
    else:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if warmup_iters and iteration < warmup_iters:
        lr *= 1 - (1 - iteration / warmup_iters) * (1 - warmup_ratio)
    return lr


def collate_train(batch):
    """Items of equal size -> (images (B, 3, S, S), targets list of {'boxes', 'ignore'})."""
    images = torch.stack([item["image"] for item in batch])
    targets = []
    for item in batch:
        boxes = torch.as_tensor(item["boxes"], dtype=torch.float32).reshape(-1, 4)
        ign = item.get("ignore")
        ign = torch.zeros(boxes.shape[0], dtype=torch.bool) if ign is None else torch.as_tensor(ign, dtype=torch.bool)
        targets.append({"boxes": boxes, "ignore": ign})
    return images, targets


def build_optimizer(params, name, lr, momentum=0.9, weight_decay=5e-4):
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


@with_fast_alloc  # large buffers stay in the heap for the run (tasklle._alloc)
def train_detector(root=None, out="runs/detector", config="lite", epochs=None, batch_size=4, lr=None,
                   optimizer="sgd", momentum=0.9, weight_decay=None, schedule="cosine", warmup_iters=500,
                   warmup_ratio=0.1, min_lr_ratio=0.01, restart_period=None, step_epochs=None, image_size=640,
                   num_workers=0, seed=0, checkpoint_every=1, resume=False, init=None, dataset=None, grad_clip=None,
                   max_steps=None, device=None, threads=None, show_progress=True, log_every=1, steps=None,
                   **deprecated):
    """Train a TinaFace detector.

    Args:
        root: WIDER-format tree (``WIDER_train/images``, ``wider_face_split``);
            the train split is read with ``TrainTransform(size=image_size)``.
        out: output folder (see the module docstring for its files).
        config: 'lite' (``TinaFace.lite()``) or 'full', or a config dict.
        epochs (default ``DEFAULT_EPOCHS``, 12) or steps: the run length (module docstring).
        batch_size (images per process), lr (> 0; default: SGD 3.75e-3 per
            12 images, scaled by the total batch; Adam 1e-3), optimizer
            ('sgd' momentum 0.9 | 'adam'), weight_decay (default 5e-4 for SGD,
            0 for Adam), schedule ('cosine' | 'step' | 'constant'),
            warmup_iters / warmup_ratio (linear), min_lr_ratio,
            restart_period (cosine restarts every that many epochs),
            step_epochs (for 'step').
        image_size: training side (vedadet 640).
        num_workers: DataLoader workers (``workers``, its old name, is deprecated).
        seed: seeds init, sampling and augmentation (epoch-wise, so a resumed
            run draws the same as an uninterrupted one).
        checkpoint_every: epochs between checkpoints. resume: continue from
            ``out/checkpoint.pt`` (without it an existing checkpoint is an
            error; the policy of ``tasklle.train.run``). init: start from these detector
            weights (a ``TinaFace.load`` file).
        dataset: use this Dataset (items {'image', 'boxes', 'ignore'} of equal
            size) instead of ``root`` (tests, custom data).
        grad_clip: max gradient norm (None: no clipping, as vedadet).
        max_steps: stop after this many iterations in total (smoke runs; no
            ``detector.pt``; ``max_iters``, its old name, is deprecated).
        log_every: record every n-th iteration in the loss log (epoch means use all).
        device: torch device (default: CUDA when available); threads: torch threads.

    Returns:
        :class:`tasklle.train.run.TrainResult`: ``model`` (eval mode), ``final``
        (``detector.pt`` on rank 0; None elsewhere or when stopped by
        ``max_steps``), ``rows``, ``summary`` (with the per-epoch means).
    """
    kw = {"num_workers": num_workers, "max_steps": max_steps,
          **renamed_args("train_detector", deprecated, {"workers": "num_workers", "max_iters": "max_steps"})}
    num_workers, max_steps = kw["num_workers"], kw["max_steps"]
    grad_clip = _check_args(config, batch_size, image_size, checkpoint_every, num_workers, warmup_iters, max_steps,
                            optimizer, schedule, lr, dataset, root, log_every, threads, grad_clip)
    # ---- set up
    rank, world, local_rank, owns_group = setup_distributed()
    device = torch.device(device if device is not None else
                          f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    run = RunFolder(out, "detector", main=rank == 0)
    dataset = _dataset(dataset, root, image_size)
    model = _model(config, init, seed).to(device).train()
    per_epoch = math.ceil(math.ceil(len(dataset) / world) / batch_size)  # DistributedSampler pads to equal shards
    total = run_length(steps, epochs, per_epoch, default_epochs=DEFAULT_EPOCHS)
    stop, epochs = stop_step(total, max_steps), math.ceil(total / per_epoch)
    lr = lr if lr is not None else SGD_LR_PER_IMAGE * batch_size * world if optimizer == "sgd" else ADAM_LR
    weight_decay = weight_decay if weight_decay is not None else 5e-4 if optimizer == "sgd" else 0.0
    opt = build_optimizer(model.parameters(), optimizer, lr, momentum, weight_decay)
    settings = {"lr": lr, "optimizer": optimizer, "momentum": momentum, "weight_decay": weight_decay,
                "schedule": schedule, "warmup_iters": warmup_iters, "warmup_ratio": warmup_ratio,
                "min_lr_ratio": min_lr_ratio, "restart_period": restart_period, "step_epochs": step_epochs,
                "epochs": epochs, "steps": total, "batch_size": batch_size, "world_size": world,
                "image_size": image_size, "seed": seed, "grad_clip": grad_clip, "model": model.config}
    step_fn = _Step(model, opt, settings, device, world, local_rank)
    start = step_fn.restore(run.open(settings, SETTINGS, resume))  # ---- resume
    rows = restore_rows(run, LOG_FIELDS, start)
    save, save_interrupted = _savers(run, model, opt, step_fn, settings, rows)
    # ---- the loop: epochs of the sampler; checkpoints at the end of every checkpoint_every-th epoch
    batches = _batches(dataset, step_fn, settings, rank, num_workers, device, stop, save, checkpoint_every)
    bar = progress(total=stop, initial=start, desc="train-detector", disable=(rank != 0 or not show_progress),
                   leave=False)
    try:
        loop(batches, step_fn, save_interrupted, start, stop, 0, bar, lambda row: _log(row, rows, log_every, bar))
    finally:
        bar.close()
    # ---- outputs
    return _outputs(run, model, save, step_fn, rows, stop >= total, world, owns_group)


# --------------------------------------------------------------------------- the pieces of train_detector()

def _check_args(config, batch_size, image_size, checkpoint_every, num_workers, warmup_iters, max_steps, optimizer,
                schedule, lr, dataset, root, log_every, threads, grad_clip):
    """Check the arguments (and set the thread count); returns the checked grad_clip."""
    if config not in CONFIGS and not isinstance(config, dict):
        raise ValueError(f"config must be one of {CONFIGS} or a dict, got {config!r}")
    for name, v, lo in (("batch_size", batch_size, 1), ("image_size", image_size, 1),
                        ("checkpoint_every", checkpoint_every, 1), ("num_workers", num_workers, 0),
                        ("warmup_iters", warmup_iters, 0), ("log_every", log_every, 1)):
        check_int(v, name, lo=lo)
    check_int(max_steps, "max_steps", lo=1, none_ok=True)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if lr is not None:
        check_float(lr, "lr", positive=True)
    if dataset is None and root is None:
        raise ValueError("give root (a WIDER-format tree) or dataset")
    if threads is not None:
        from .. import set_num_threads

        set_num_threads(check_int(threads, "threads"))
    return check_grad_clip(grad_clip)


def _outputs(run, model, save, step_fn, rows, finished, world, owns_group):
    """The last checkpoint, detector.pt (rank 0, when the run reached its length), the result."""
    save()
    final = run.out / "detector.pt" if finished and run.main else None
    if final is not None:
        model.save(final)
    finish_distributed(world, owns_group)
    model.eval()
    return TrainResult(run.out, model, {"epochs": step_fn.epoch_means, "steps": step_fn.step}, final, rows)


def _savers(run, model, opt, step_fn, settings, rows):
    """``save()``: the checkpoint (a TinaFace.load file plus the training state and the
    run block) and the log; ``save_interrupted(step)``: the same after Ctrl-C / SIGTERM."""
    def save(_=None):
        if run.main:
            model.save(run.checkpoint, optimizer=opt.state_dict(), epoch=step_fn.epochs_done, iteration=step_fn.step,
                       epoch_means=step_fn.epoch_means, **run.payload())
            write_log(run.out, rows, LOG_FIELDS, settings, {"epochs": step_fn.epoch_means, "steps": step_fn.step})

    def save_interrupted(_):
        if step_fn.count:  # the epoch stopped counts as finished (module docstring)
            step_fn.end_epoch(step_fn.epoch)
        save()

    return save, save_interrupted


def _dataset(dataset, root, image_size):
    if dataset is None:
        from ..data import WiderFace
        from ..data.transforms import TrainTransform

        dataset = WiderFace(root, "train", transform=TrainTransform(size=image_size))
    if len(dataset) == 0:
        raise ValueError("the training set is empty")
    return dataset


def _model(config, init, seed):
    """The detector to train: same seed on every rank (DDP also broadcasts rank 0's weights)."""
    from ..models import TinaFace

    torch.manual_seed(seed)
    if init is not None:
        return TinaFace.load(init)
    if isinstance(config, dict):
        return TinaFace(config)
    return TinaFace.lite() if config == "lite" else TinaFace()


class _Step:
    """One iteration of detector training (lr of the schedule, forward, loss, update);
    keeps the running epoch sums and the per-epoch means."""

    def __init__(self, model, opt, settings, device, world, local_rank):
        self.model, self.opt, self.settings, self.device = model, opt, settings, device
        self.ddp_model = model
        if world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.ddp_model = DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None)
        self.num_pos_reduce = positive_count_reduce(device, world)
        self.step, self.epochs_done, self.epoch_means = 0, 0, []
        self.start_epoch()

    def restore(self, state):
        """Load a checkpoint's model, optimiser, epoch and iteration; returns the iteration (0 without one)."""
        if state is not None:
            self.model.load_state_dict(state["state_dict"])
            self.opt.load_state_dict(state["optimizer"])
            self.epochs_done, self.step = int(state["epoch"]), int(state["iteration"])
            self.epoch_means = list(state.get("epoch_means", []))
        return self.step

    def start_epoch(self, epoch=0):
        self.epoch, self.sums, self.count, self.t0 = epoch, dict.fromkeys(PARTS, 0.0), 0, time.time()

    def end_epoch(self, epoch):
        """The epoch's means into the log; it counts as finished."""
        self.epoch_means.append({"epoch": epoch + 1, "iterations": self.count, "seconds": time.time() - self.t0,
                                 **{k: v / max(self.count, 1) for k, v in self.sums.items()}})
        self.epochs_done = epoch + 1

    def __call__(self, step, batch):
        s = self.settings
        epoch, images, targets = batch
        cur_lr = lr_at(s["lr"], epoch, step, s["epochs"], s["schedule"], s["warmup_iters"], s["warmup_ratio"],
                       s["min_lr_ratio"], s["restart_period"], s["step_epochs"])
        for g in self.opt.param_groups:
            g["lr"] = cur_lr
        images = images.to(self.device, non_blocking=True)
        targets = [{k: v.to(self.device) for k, v in t.items()} for t in targets]
        total, parts, _ = self.model.loss_from_outputs(self.ddp_model(images), targets, self.num_pos_reduce)
        if not torch.isfinite(total):
            raise FloatingPointError(f"non-finite loss at epoch {epoch + 1}, iteration {step}: "
                                     f"{ {k: float(v) for k, v in parts.items()} }")
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        if s["grad_clip"] is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), s["grad_clip"])
        self.opt.step()
        self.step = step + 1
        vals = {"total": float(total.detach()), **{k: float(v.detach()) for k, v in parts.items()}}
        for k in self.sums:
            self.sums[k] += vals[k]
        self.count += 1
        return {"step": step + 1, "epoch": epoch + 1, "lr": cur_lr, **vals}


def _log(row, rows, log_every, bar):
    if row["step"] % log_every == 0:
        rows.append(row)
    bar.set_postfix({k: f"{row[k]:.3f}" for k in PARTS if k in row}, refresh=False)


def _batches(dataset, step_fn, s, rank, num_workers, device, stop, save, checkpoint_every):
    """``(iteration, (epoch, images, targets))`` up to ``stop``, epoch by epoch from the one after
    the last finished; at the end of an epoch its means, and a checkpoint every ``checkpoint_every``."""
    sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=s["world_size"], rank=rank, shuffle=True,
                                                  seed=s["seed"], drop_last=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size=s["batch_size"], sampler=sampler,
                                         num_workers=num_workers, collate_fn=collate_train, drop_last=False,
                                         persistent_workers=False, pin_memory=device.type == "cuda")
    for epoch in range(step_fn.epochs_done, s["epochs"]):
        if step_fn.step >= stop:
            return
        # epoch-wise seeds: augmentation and shuffling do not depend on resuming
        torch.manual_seed(s["seed"] + 1000003 * (epoch + 1) + rank)
        sampler.set_epoch(epoch)
        step_fn.start_epoch(epoch)
        for images, targets in loader:
            yield step_fn.step, (epoch, images, targets)
            if step_fn.step >= stop:
                break
        step_fn.end_epoch(epoch)
        step_fn.count = 0
        if (epoch + 1) % checkpoint_every == 0 and epoch + 1 < s["epochs"] and step_fn.step < stop:
            save()
