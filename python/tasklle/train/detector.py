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

Files in ``out``:
- ``checkpoint.pt``: the training state after the last finished epoch
  (model config and weights, optimizer, epoch, iteration, loss log); it is
  also a valid ``TinaFace.load`` file. Written atomically every
  ``checkpoint_every`` epochs and at the end; ``resume=True`` continues from it.
- ``detector.pt``: the final detector (``TinaFace.load``).
- ``loss_log.json``: per-iteration loss parts and learning rate, per-epoch means.
"""
import math
import time
from pathlib import Path

import torch

from .._alloc import with_fast_alloc
from ..io import write_json
from ..progress import progress
from .run import RunFolder, check_float, check_int, finish_distributed, positive_count_reduce, setup_distributed

CONFIGS = ("lite", "full")
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("cosine", "step", "constant")
# vedadet: lr 3.75e-3 for 3 GPUs x 4 images; scaled linearly with the total batch
SGD_LR_PER_IMAGE = 3.75e-3 / 12
ADAM_LR = 1e-3
# settings that must not change when resuming (the run length, epochs, may grow)
_FIXED = ("model", "lr", "optimizer", "momentum", "weight_decay", "schedule", "warmup_iters", "warmup_ratio",
          "min_lr_ratio", "restart_period", "step_epochs", "batch_size", "world_size", "image_size", "seed",
          "grad_clip")


def _check_positive_int(v, name, zero_ok=False):
    return check_int(v, name, lo=0 if zero_ok else 1)


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
def train_detector(root=None, out="runs/detector", config="lite", epochs=12, batch_size=4, lr=None, optimizer="sgd",
                   momentum=0.9, weight_decay=None, schedule="cosine", warmup_iters=500, warmup_ratio=0.1,
                   min_lr_ratio=0.01, restart_period=None, step_epochs=None, image_size=640, workers=0, seed=0,
                   checkpoint_every=1, resume=False, init=None, dataset=None, grad_clip=None, max_iters=None,
                   device=None, threads=None, show_progress=True, log_every=1):
    """Train a TinaFace detector; returns the path of the final detector (rank 0) or None.

    Args:
        root: WIDER-format tree (``WIDER_train/images``, ``wider_face_split``);
            the train split is read with ``TrainTransform(size=image_size)``.
        out: output folder (see the module docstring for its files).
        config: 'lite' (``TinaFace.lite()``) or 'full', or a config dict.
        epochs, batch_size (images per process), lr (default: SGD 3.75e-3 per
            12 images, scaled by the total batch; Adam 1e-3), optimizer
            ('sgd' momentum 0.9 | 'adam'), weight_decay (default 5e-4 for SGD,
            0 for Adam), schedule ('cosine' | 'step' | 'constant'),
            warmup_iters / warmup_ratio (linear), min_lr_ratio,
            restart_period (cosine restarts every that many epochs),
            step_epochs (for 'step').
        image_size: training side (vedadet 640).
        workers: DataLoader workers. seed: seeds init, sampling and augmentation
            (epoch-wise, so a resumed run draws the same as an uninterrupted one).
        checkpoint_every: epochs between checkpoints. resume: continue from
            ``out/checkpoint.pt`` (without it an existing checkpoint is an
            error; the policy of ``tasklle.train.run``). init: start from these detector
            weights (a ``TinaFace.load`` file).
        dataset: use this Dataset (items {'image', 'boxes', 'ignore'} of equal
            size) instead of ``root`` (tests, custom data).
        grad_clip: max gradient norm (None: no clipping, as vedadet).
        max_iters: stop after this many iterations in total (smoke runs; the
            interrupted epoch then counts as finished in the checkpoint).
        log_every: record every n-th iteration in the loss log (epoch means use all).
        device: torch device (default: CUDA when available); threads: torch threads.
    """
    from ..models import TinaFace

    if config not in CONFIGS and not isinstance(config, dict):
        raise ValueError(f"config must be one of {CONFIGS} or a dict, got {config!r}")
    for name, v in (("epochs", epochs), ("batch_size", batch_size), ("image_size", image_size),
                    ("checkpoint_every", checkpoint_every)):
        _check_positive_int(v, name)
    _check_positive_int(workers, "workers", zero_ok=True)
    _check_positive_int(warmup_iters, "warmup_iters", zero_ok=True)
    if max_iters is not None:
        _check_positive_int(max_iters, "max_iters")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if lr is not None:
        check_float(lr, "lr", positive=True)
    if dataset is None and root is None:
        raise ValueError("give root (a WIDER-format tree) or dataset")
    _check_positive_int(log_every, "log_every")
    if threads is not None:
        from .. import set_num_threads

        set_num_threads(_check_positive_int(threads, "threads"))

    rank, world, local_rank, owns_group = setup_distributed()
    if device is None:
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    out = Path(out)
    run = RunFolder(out, "detector", main=rank == 0)
    ckpt_path = run.checkpoint

    if dataset is None:
        from ..data import WiderFace
        from ..data.transforms import TrainTransform

        dataset = WiderFace(root, "train", transform=TrainTransform(size=image_size))
    if len(dataset) == 0:
        raise ValueError("the training set is empty")

    # model: same seed on every rank (DDP also broadcasts rank 0's weights)
    torch.manual_seed(seed)
    if init is not None:
        model = TinaFace.load(init)
    elif isinstance(config, dict):
        model = TinaFace(config)
    else:
        model = TinaFace.lite() if config == "lite" else TinaFace()
    model.to(device).train()

    total_batch = batch_size * world
    if lr is None:
        lr = SGD_LR_PER_IMAGE * total_batch if optimizer == "sgd" else ADAM_LR
    if weight_decay is None:
        weight_decay = 5e-4 if optimizer == "sgd" else 0.0
    opt = build_optimizer(model.parameters(), optimizer, lr, momentum, weight_decay)

    hyper = {"lr": lr, "optimizer": optimizer, "momentum": momentum, "weight_decay": weight_decay,
             "schedule": schedule, "warmup_iters": warmup_iters, "warmup_ratio": warmup_ratio,
             "min_lr_ratio": min_lr_ratio, "restart_period": restart_period, "step_epochs": step_epochs,
             "epochs": epochs, "batch_size": batch_size, "world_size": world, "image_size": image_size,
             "seed": seed, "grad_clip": grad_clip}
    settings = {**hyper, "model": model.config}
    start_epoch, iteration, log = 0, 0, {"iterations": [], "epochs": []}
    state = run.open(settings, _FIXED, resume)
    if state is not None:
        model.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, iteration = int(state["epoch"]), int(state["iteration"])
        log = state.get("log", log)

    ddp_model = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp_model = DistributedDataParallel(model, device_ids=[local_rank] if device.type == "cuda" else None)
    num_pos_reduce = positive_count_reduce(device, world)

    sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed,
                                                  drop_last=False)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                                         collate_fn=collate_train, drop_last=False,
                                         persistent_workers=False, pin_memory=device.type == "cuda")
    log["hyper"] = hyper

    def save(epoch):
        if rank != 0:
            return
        # a TinaFace.load file plus the training state and the run block
        model.save(ckpt_path, optimizer=opt.state_dict(), epoch=epoch, iteration=iteration, log=log, **run.payload())
        write_json(out / "loss_log.json", log)

    stop = False
    epoch = start_epoch
    for epoch in range(start_epoch, epochs):
        # epoch-wise seeds: augmentation and shuffling do not depend on resuming
        torch.manual_seed(seed + 1000003 * (epoch + 1) + rank)
        sampler.set_epoch(epoch)
        sums, count, t0 = {"total": 0.0, "cls": 0.0, "reg": 0.0, "iou": 0.0}, 0, time.time()
        bar = progress(loader, desc=f"epoch {epoch + 1}/{epochs}", disable=(rank != 0 or not show_progress),
                       leave=False)
        for images, targets in bar:
            cur_lr = lr_at(lr, epoch, iteration, epochs, schedule, warmup_iters, warmup_ratio, min_lr_ratio,
                           restart_period, step_epochs)
            for g in opt.param_groups:
                g["lr"] = cur_lr
            images = images.to(device, non_blocking=True)
            targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
            outputs = ddp_model(images)
            total, parts, _ = model.loss_from_outputs(outputs, targets, num_pos_reduce)
            if not torch.isfinite(total):
                raise FloatingPointError(f"non-finite loss at epoch {epoch + 1}, iteration {iteration}: "
                                         f"{ {k: float(v) for k, v in parts.items()} }")
            opt.zero_grad(set_to_none=True)
            total.backward()
            if grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
            opt.step()
            iteration += 1
            vals = {"total": float(total.detach()), **{k: float(v.detach()) for k, v in parts.items()}}
            for k in sums:
                sums[k] += vals[k]
            count += 1
            if iteration % log_every == 0:
                log["iterations"].append({"epoch": epoch + 1, "iteration": iteration, "lr": cur_lr, **vals})
            if rank == 0 and show_progress:
                bar.set_postfix({k: f"{v:.3f}" for k, v in vals.items()}, refresh=False)
            if max_iters is not None and iteration >= max_iters:
                stop = True
                break
        log["epochs"].append({"epoch": epoch + 1, "iterations": count, "seconds": time.time() - t0,
                              **{k: v / max(count, 1) for k, v in sums.items()}})
        if stop:
            break
        if (epoch + 1) % checkpoint_every == 0 or epoch + 1 == epochs:
            save(epoch + 1)
    if stop:
        save(epoch + 1)
    final = out / "detector.pt"
    if rank == 0:
        if not ckpt_path.is_file():
            save(epoch + 1 if epochs > start_epoch else start_epoch)
        model.save(final)
    finish_distributed(world, owns_group)
    return final if rank == 0 else None
