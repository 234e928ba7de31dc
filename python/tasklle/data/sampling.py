"""Deterministic sampling for training: epoch orders, the sample stream and the
batches joint training sees (``JointBatches``).

The order of epoch ``e`` is a seeded permutation that depends on ``(seed, e)``
only (``epoch_order``), and a sample's random crop is drawn from its own
seed ``(seed, position)``. So a run is reproducible, a resumed run continues
exactly as an uninterrupted one, and the samples seen do not depend on the
number of data workers. Under ``torchrun`` with W processes of batch B, the
processes together see exactly the samples one process with batch W*B sees.
``train_upstream`` and ``joint`` draw their epoch orders here.
"""
import inspect
import os
import random
from pathlib import Path

import numpy as np
import torch

from .transforms import make_transform


def epoch_order(n, seed, epoch):
    """The shuffled order of ``range(n)`` in epoch ``epoch``: a function of (seed, epoch) only,
    so resuming needs no RNG state."""
    g = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(n, generator=g).tolist()


class SampleStream:
    """Deterministic infinite stream of (epoch, sample position, dataset index)."""

    def __init__(self, n, seed):
        if n <= 0:
            raise ValueError("data: the dataset is empty")
        self.n = n
        self.seed = seed
        self._perm_epoch = None
        self._perm = None

    def index(self, position):
        epoch, k = divmod(position, self.n)
        if self._perm_epoch != epoch:
            self._perm = epoch_order(self.n, self.seed, epoch)
            self._perm_epoch = epoch
        return epoch, self._perm[k]


def seeded_call(fn, item, seed):
    """Call fn(item) with python, numpy and torch global RNGs seeded by ``seed``,
    restoring the callers' RNG states afterwards (transforms draw from them)."""
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % (2 ** 32))
        try:
            return fn(item)
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def accepts_generator(fn):
    if fn is None:
        return False
    try:
        return "generator" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class JointBatches:
    """The batches joint training sees: ``batch(step)`` -> ``(images, targets)``.

    ``images`` is a (batch_size, 3, S, S) float32 tensor in [0, 1] (S: the
    transform's size); ``targets`` a list of ``{'boxes': (N, 4) x1 y1 x2 y2,
    'ignore': (N,) bool}``, the form ``TinaFace.loss`` takes. The batch of a
    step depends only on (seed, step, rank): samples in a per-epoch seeded
    permutation, each cropped with its own seed (see the module docstring), so
    a notebook sees exactly what :func:`tasklle.train.joint` trains on.

    Args:
        dataset: map-style dataset of item dicts (``'image'``, ``'boxes'``, ``'ignore'``).
        transform: makes items one size (:func:`tasklle.data.transforms.make_transform`); None: as they are.
        batch_size: images per step per process.
        seed: the sample order and crops.
        rank, world_size: this process among ``world_size`` (torchrun).
        num_workers: threads loading items (0: in the caller's thread).

    Example:
        >>> batches = JointBatches.from_data(tasklle.data.builtin(), image_size=96, batch_size=2)
        >>> images, targets = batches.batch(0)
        >>> images.shape
        torch.Size([2, 3, 96, 96])
    """

    def __init__(self, dataset, transform, batch_size, seed, rank=0, world_size=1, num_workers=0):
        self.dataset = dataset
        self.transform = transform
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.stream = SampleStream(len(dataset), seed)
        self.num_workers = num_workers
        self._pool = None
        self._takes_generator = accepts_generator(transform)

    @classmethod
    def from_data(cls, data, image_size=640, batch_size=4, crop="random", split="train", seed=0):
        """The batches :func:`tasklle.train.joint` makes from ``data`` (a WIDER-format root or a
        dataset) with the same ``image_size``, ``batch_size``, ``crop``, ``split``, ``seed``."""
        dataset, _ = open_dataset(data, split)
        return cls(dataset, make_transform(crop, image_size), batch_size, seed)

    def _item(self, position):
        _, idx = self.stream.index(position)
        item = self.dataset[idx]
        if self.transform is not None:
            s = (self.seed * 7_919 + position) % (2 ** 62)
            if self._takes_generator:
                item = self.transform(item, generator=torch.Generator().manual_seed(s))
            else:  # a transform drawing from the global RNGs
                item = seeded_call(self.transform, item, s)
        return item

    def epoch_of(self, step):
        return (step * self.batch_size * self.world_size) // self.stream.n

    def batch(self, step):
        first = (step * self.world_size + self.rank) * self.batch_size
        positions = list(range(first, first + self.batch_size))
        for p in positions:  # resolve permutations in order (cheap, keeps the cache simple)
            self.stream.index(p)
        if self.num_workers > 0:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(self.num_workers)
            items = list(self._pool.map(self._item, positions))
        else:
            items = [self._item(p) for p in positions]
        images = []
        targets = []
        for p, it in zip(positions, items):
            img = torch.as_tensor(it["image"], dtype=torch.float32)
            if images and img.shape != images[0].shape:
                raise ValueError(f"data: items have different sizes {tuple(img.shape)} vs {tuple(images[0].shape)} "
                                 "after the transform; use crop='random' or 'resize'")
            images.append(img)
            boxes = torch.as_tensor(it["boxes"], dtype=torch.float32).reshape(-1, 4)
            ignore = it.get("ignore")
            ignore = (torch.zeros(len(boxes), dtype=torch.bool) if ignore is None
                      else torch.as_tensor(ignore, dtype=torch.bool).reshape(-1))
            targets.append({"boxes": boxes, "ignore": ignore})
        return torch.stack(images), targets

    def close(self):
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def open_dataset(data, split):
    if isinstance(data, (str, os.PathLike)):
        from .wider import WiderFace

        root = Path(data)
        if not root.is_dir():
            raise FileNotFoundError(f"data: folder not found: {root}")
        return WiderFace(root, split=split, transform=None), str(root)
    if not hasattr(data, "__getitem__") or not hasattr(data, "__len__"):
        raise TypeError(f"data must be a WIDER-format root or a map-style dataset, got {type(data).__name__}")
    return data, type(data).__name__
