"""What every trainer shares: the run folder, its checkpoint, one resume policy,
the loss log, argument checks and the data-parallel helpers.

A trainer is its model and its step; this module is the rest.

Resume policy (the same for ``train_upstream``, ``train_darkener``,
``train_detector`` and ``joint``):

- ``OUT/checkpoint.pt`` exists and ``resume`` is off: :class:`CheckpointExists`
  (a ``ValueError``); nothing is overwritten by accident. Pass ``resume=True``
  (``--resume``) or choose another folder.
- ``resume`` is on and the checkpoint was written by another trainer, or with
  settings that must not change (each trainer names them; the run length may
  grow): :class:`ResumeMismatch` (a ``ValueError``) naming every difference.
  Callers that want to start again on a mismatch (the experiments) catch that
  type, never a message.
- ``resume`` is on and there is no checkpoint: a fresh run.

Checkpoint layout: the trainer's own payload (kept loadable by the model
loaders: ``ZeroDCEPP.load``, ``TinaFace.load``) plus ``'run': {'trainer':
name, 'settings': {...}}``, the block the resume policy reads.
"""
import csv
import math
import numbers
import os
from pathlib import Path

import torch

from ..io import atomic_write, load_checkpoint, save_checkpoint


class ResumeMismatch(ValueError):
    """``resume=True`` but the checkpoint belongs to another trainer or other settings."""


class CheckpointExists(ValueError):
    """The run folder holds a checkpoint and ``resume`` is off."""


# --------------------------------------------------------------------------- run folder

class RunFolder:
    """``OUT`` of one training run: the checkpoint and the resume policy (module docstring).

    Args:
        out: the folder (created by :meth:`open` on the main process).
        trainer: the trainer's name, stored in and checked against the checkpoint.
        main: this process writes files (rank 0 under torchrun).
    """

    def __init__(self, out, trainer, main=True):
        self.out = Path(out)
        self.trainer = trainer
        self.main = main
        self.checkpoint = self.out / "checkpoint.pt"
        self.settings = None

    def open(self, settings, fixed, resume, map_location="cpu"):
        """Apply the resume policy; returns the checkpoint to continue from, or None.

        ``settings``: this run's settings (stored with every checkpoint);
        ``fixed``: the names among them that must equal the checkpoint's.
        """
        self.settings = settings
        state = None
        if self.checkpoint.is_file():
            if not resume:
                raise CheckpointExists(f"out: {self.out} already holds a checkpoint; pass resume=True (--resume) "
                                       "to continue it or choose another folder")
            state = load_checkpoint(self.checkpoint, map_location=map_location)
            run = state.get("run") if isinstance(state, dict) else None
            if not isinstance(run, dict) or run.get("trainer") != self.trainer:
                raise ResumeMismatch(f"resume: {self.checkpoint} is not a checkpoint of the {self.trainer} trainer")
            old = run.get("settings") or {}
            diff = [f"{k} differs from the checkpoint (now {settings.get(k)!r}, checkpoint {old.get(k)!r})"
                    for k in fixed if old.get(k) != settings.get(k)]
            if diff:
                raise ResumeMismatch("resume: " + "; ".join(diff) + "; use another out folder or the same settings")
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
        return state

    def payload(self):
        """The block every checkpoint carries for the resume policy."""
        return {"run": {"trainer": self.trainer, "settings": self.settings}}

    def save(self, state):
        """Write ``state`` plus the run block to ``OUT/checkpoint.pt`` atomically (main process only)."""
        if self.main:
            save_checkpoint(self.checkpoint, {**state, **self.payload()})


# --------------------------------------------------------------------------- loss logs

def write_csv(path, rows, fields):
    """Rows (dicts) as a CSV with a header, written atomically; keys outside ``fields`` are left out."""
    with atomic_write(path, "w") as f:
        w = csv.DictWriter(f, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow(r)


def read_csv(path, fields, upto=None, ints=("step", "epoch")):
    """The rows of a :func:`write_csv` log with ``step <= upto`` (all when None); [] when absent."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            try:
                step = int(r["step"])
            except (KeyError, ValueError):
                continue
            if upto is None or step <= upto:
                rows.append({k: (int(v) if k in ints else float(v)) for k, v in r.items()
                             if k in fields and v != ""})
    return rows


# --------------------------------------------------------------------------- argument checks

def check_int(v, name, lo=1, none_ok=False):
    """``v`` as an int >= ``lo`` (bools refused); None passes when ``none_ok``."""
    if v is None and none_ok:
        return None
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    return int(v)


def check_float(v, name, lo=0.0, positive=False):
    """``v`` as a finite float >= ``lo`` (> 0 when ``positive``)."""
    if (isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < lo
            or (positive and v <= 0)):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else f'>= {lo}'}, got {v!r}")
    return float(v)


# --------------------------------------------------------------------------- data parallel

def dist_env():
    """(rank, world_size, local_rank) from torchrun's environment (0, 1, 0 otherwise)."""
    return (int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
            int(os.environ.get("LOCAL_RANK", "0")))


def setup_distributed(device=None):
    """Join torchrun's process group when ``WORLD_SIZE > 1``.

    Returns ``(rank, world_size, local_rank, owns_group)``; ``owns_group`` is
    True when this call created the group (the caller then destroys it).
    Backend: ``TASKLLE_DIST_BACKEND``, else nccl for a CUDA device (or, with
    no device given, when CUDA is present), else gloo.
    """
    import torch.distributed as dist

    rank, world, local = dist_env()
    if world <= 1:
        return rank, world, local, False
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), local, False
    cuda = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
    backend = os.environ.get("TASKLLE_DIST_BACKEND") or ("nccl" if cuda else "gloo")
    if backend == "nccl" and device is None:
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return dist.get_rank(), dist.get_world_size(), local, True


def all_mean(values, device, world):
    """A list of floats averaged over processes (NaN stays NaN); unchanged for one process."""
    if world <= 1:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return (t / world).tolist()


def positive_count_reduce(device, world):
    """The ``num_pos_reduce`` TinaFace's loss takes under DDP (None for one process).

    TinaFace divides its loss by the number of positive anchors; averaging that
    count over processes makes N processes on N shards give the gradient of one
    process on the whole batch (as vedadet does)."""
    if world <= 1:
        return None
    device = torch.device(device)

    def num_pos_reduce(n):
        return all_mean([float(n)], device if device.type == "cuda" else "cpu", world)[0]

    return num_pos_reduce


def finish_distributed(world, owns_group):
    """Wait for every process and leave the group this run created."""
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
        if owns_group:
            dist.destroy_process_group()
