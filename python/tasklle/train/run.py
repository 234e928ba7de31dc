"""What every trainer shares: the run folder, its checkpoint, one resume policy,
the run length, the loop with its save on Ctrl-C / SIGTERM, the loss log, the
result, argument checks and the data-parallel helpers.

A trainer is its model and its step; this module is the rest. Every trainer
(``train_upstream``, ``train_darkener``, ``train_detector``, ``joint``) reads
the same way: set up (check the arguments, build the settings it declares),
resume (:meth:`RunFolder.open`), loop (:func:`loop` over its step function),
outputs (the final model, :func:`write_log`, a :class:`TrainResult`).

Vocabulary (the same in the four):

- run length: ``steps`` (optimiser steps in total) or, instead, ``epochs``
  (passes over the data; :func:`run_length`); a resumed run continues up to
  it, and it may grow. ``max_steps`` stops the run early at that step with a
  checkpoint and no final model (smoke runs, a simulated interruption).
- ``num_workers`` (data loading), ``show_progress`` (the bar), ``grad_clip``
  (None: no clipping; ``'recipe'`` where a trainer has recipes).
- Ctrl-C or SIGTERM inside the loop: the state after the last finished step is
  saved, then ``KeyboardInterrupt`` propagates (``resume=True`` continues).
- the log: ``OUT/log.csv`` (one row per logged step, :func:`write_csv`) and
  ``OUT/log.json`` (settings, summary and rows), both rewritten with every
  checkpoint and at the end.
- the result: :class:`TrainResult` (``run_dir``, ``model``, ``summary``, ...;
  ``result['model']`` works as the older dict results did).

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
import contextlib
import csv
import dataclasses
import math
import numbers
import os
import signal
import threading
import warnings
from pathlib import Path

import torch

from ..io import atomic_write, load_checkpoint, save_checkpoint, write_json

# How a setting is treated on resume (each trainer declares every setting it stores as one of them).
FIXED = "fixed"  # must equal the checkpoint's
FREE = "free"    # may change (the run length, which may grow; bookkeeping)


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

    def open(self, settings, declared, resume, map_location="cpu"):
        """Apply the resume policy; returns the checkpoint to continue from, or None.

        ``settings``: this run's settings (stored with every checkpoint);
        ``declared``: the trainer's one declaration ``{name: FIXED | FREE}`` of
        them (FIXED: must equal the checkpoint's). A setting left out of the
        declaration, or declared and not given, is a bug of the trainer
        (RuntimeError), so the two cannot drift apart.
        """
        undeclared = sorted(set(settings) ^ set(declared))
        if undeclared:
            raise RuntimeError(f"{self.trainer} trainer: settings and their declaration differ: {undeclared}")
        fixed = [k for k, how in declared.items() if how == FIXED]
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


def read_csv(path, fields, upto=None, ints=("step", "epoch", "images")):
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


def write_log(out, rows, fields, settings, summary, **extra):
    """The one log of every trainer: ``out/log.csv`` (the rows) and ``out/log.json``
    (settings under 'config', the summary, the fields and the rows; NaN as null)."""
    out = Path(out)
    write_csv(out / "log.csv", rows, fields)
    write_json(out / "log.json", {"config": settings, "summary": summary, **extra, "fields": list(fields),
                                  "rows": rows})


def restore_rows(run, fields, step):
    """The log rows up to ``step`` from a resumed run's ``log.csv`` (main process; [] elsewhere)."""
    return read_csv(run.out / "log.csv", fields, upto=step) if run.main else []


# --------------------------------------------------------------------------- the result

@dataclasses.dataclass
class TrainResult:
    """What every trainer returns.

    Attributes:
        run_dir: the run folder (``out``).
        model: the trained model, eval mode.
        summary: the run's summary (also in ``run_dir/log.json``).
        final: the final model file (None when stopped early by ``max_steps``).
        rows: the per-step log rows (as in ``log.csv``).
        extra: what only this trainer reports (e.g. joint's ``detector_sha256``).

    ``result[key]`` reads an attribute (``'out'`` is ``run_dir``, ``'history'``
    ``rows``) or an ``extra`` entry, as the dicts trainers returned before.
    """
    run_dir: Path
    model: torch.nn.Module
    summary: dict
    final: Path = None
    rows: list = dataclasses.field(default_factory=list)
    extra: dict = dataclasses.field(default_factory=dict)

    _ALIASES = {"out": "run_dir", "history": "rows"}

    def __getitem__(self, key):
        name = self._ALIASES.get(key, key)
        if name in ("run_dir", "model", "summary", "final", "rows"):
            return getattr(self, name)
        return self.extra[key]

    def __contains__(self, key):
        return key in self.keys()

    def keys(self):
        return ["run_dir", "model", "summary", "final", "rows", *self._ALIASES, *self.extra]


# --------------------------------------------------------------------------- run length and the loop

def run_length(steps, epochs, steps_per_epoch, default_epochs=None, default_steps=None):
    """Optimiser steps of a run: ``steps``, or ``epochs`` x ``steps_per_epoch``
    (one of the two; neither: the trainer's default, in epochs or in steps)."""
    if steps is not None and epochs is not None:
        raise ValueError(f"give steps or epochs, not both (got steps={steps!r}, epochs={epochs!r})")
    if steps is None and epochs is None:
        steps, epochs = default_steps, default_epochs
    if steps is not None:
        return check_int(steps, "steps", lo=0)
    return check_int(epochs, "epochs") * steps_per_epoch


def stop_step(total, max_steps):
    """Where the loop stops: the run's length, or ``max_steps`` when that is sooner."""
    max_steps = check_int(max_steps, "max_steps", lo=0, none_ok=True)
    return total if max_steps is None else min(total, max_steps)


@contextlib.contextmanager
def save_on_interrupt(save):
    """Inside: Ctrl-C or SIGTERM calls ``save()`` (the state after the last
    finished step) and propagates as ``KeyboardInterrupt``. SIGTERM is caught
    only on the main thread (signals go there); the old handler comes back."""
    old = None
    if threading.current_thread() is threading.main_thread():
        def on_sigterm(signum, frame):
            raise KeyboardInterrupt(f"signal {signum}")

        old = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    except KeyboardInterrupt:
        save()
        raise
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def loop(batches, step_fn, save, start, stop, checkpoint_every, bar, on_row=None):
    """The loop of every trainer: for each ``(step, batch)`` of ``batches`` (steps
    ``start..stop-1`` in order) ``row = step_fn(step, batch)``; ``on_row(row)``
    (log, bar); the bar moves; ``save(step + 1)`` every ``checkpoint_every``
    finished steps before the stop (0: never). Ctrl-C / SIGTERM: ``save`` of the
    last finished step, then ``KeyboardInterrupt``. Returns the steps done in all."""
    done = start
    with save_on_interrupt(lambda: save(done)):
        for step, batch in batches:
            row = step_fn(step, batch)
            done = step + 1
            if on_row is not None:
                on_row(row)
            bar.update(1)
            if checkpoint_every and done % checkpoint_every == 0 and done < stop:
                save(done)
    return done


# --------------------------------------------------------------------------- argument checks

def check_int(v, name, lo=1, none_ok=False):
    """``v`` as an int >= ``lo``; None passes when ``none_ok``.
    TypeError for a non-int (bools too), ValueError for one below ``lo``."""
    if v is None and none_ok:
        return None
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(v).__name__} {v!r}")
    if v < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    return int(v)


def check_float(v, name, lo=0.0, positive=False):
    """``v`` as a finite float >= ``lo`` (> 0 when ``positive``).
    TypeError for a non-number (bools too), ValueError for a bad value."""
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(v).__name__} {v!r}")
    if not math.isfinite(v) or v < lo or (positive and v <= 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else f'>= {lo}'}, got {v!r}")
    return float(v)


def check_grad_clip(v, name="grad_clip"):
    """A gradient-norm clip: None (no clipping) or a finite number > 0."""
    return None if v is None else check_float(v, name, positive=True)


def renamed_args(trainer, old, renamed):
    """A trainer's ``**old`` keyword arguments under their new names (``renamed``: old -> new),
    each with a DeprecationWarning; TypeError for a name that never existed."""
    new = {}
    for k, v in old.items():
        if k not in renamed:
            raise TypeError(f"{trainer}() got an unexpected keyword argument {k!r}")
        warnings.warn(f"{trainer}: the argument {k!r} is deprecated; use {renamed[k]!r}", DeprecationWarning,
                      stacklevel=4)  # the caller of the trainer (under its with_fast_alloc wrapper)
        new[renamed[k]] = v
    return new


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
