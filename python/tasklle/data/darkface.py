"""DARK FACE, as released for the UG2+ Prize Challenge (track "face detection
in low light conditions"): real night-time street images with face boxes.

Layout of the release (``DarkFace_Train``; users download it themselves)::

    ROOT/image/<name>.png     the dark images (1080x720 in the release), names 1 .. 6000
    ROOT/label/<name>.txt     line 1: the face count N; then N lines "x1 y1 x2 y2"

Box convention of the label files: ``x1 y1 x2 y2`` corners in pixels
(integers in the release; loaders of the released data read them as xmin
ymin xmax ymax), *not* ``x y w h``. The tools' own ground-truth files (of the
challenge's held-out images, not public) cannot be inspected, but the tools'
reader (``read_gt.m``) keeps the four numbers as they are, and ``evaluation.m`` then
treats columns 3-4 as width and height (it adds them to x1, y1), so the
tools' own ground-truth folder must hold ``x y w h``. Scoring the release labels
therefore needs ``w = x2 - x1``, ``h = y2 - y1`` first
(:func:`tasklle.eval.darkface.tool_boxes`); the tools' IoU then uses the +1
pixel convention, so x2 is read as an inclusive pixel column. This module
keeps the labels as they are in the files (x1 y1 x2 y2, the package's box
form) and returns them as (N, 4) float64.

Files are untrusted input: only regular files of at most
``MAX_LABEL_FILE_BYTES`` are read, the count line must be a non-negative
integer, each box line exactly four finite numbers, the number of box lines
must equal the count, and every error names the file and line. An image
without faces has a label file with count 0.
"""
import math
from pathlib import Path

import numpy as np

from .wider_format.predictions import _read_bounded_text, counted_lines

__all__ = ["MAX_LABEL_FILE_BYTES", "IMAGE_DIR", "LABEL_DIR", "read_label_file", "write_label_file", "list_names",
           "DarkFace"]

#: Largest label file read (bytes): a real one holds at most a few hundred boxes.
MAX_LABEL_FILE_BYTES = 1 << 20
IMAGE_DIR = "image"
LABEL_DIR = "label"


def read_label_file(path):
    """One DARK FACE label file -> (N, 4) float64 x1 y1 x2 y2 (see the module doc).

    ValueError naming the file and line for a missing or non-integer count, a
    box line without exactly four finite numbers, or fewer / more box lines
    than the count; for a path that is not a regular file of at most
    MAX_LABEL_FILE_BYTES. FileNotFoundError when it does not exist."""
    path = Path(path)
    text = _read_bounded_text(path, MAX_LABEL_FILE_BYTES, "label file")
    n, body = counted_lines(path, text.splitlines(), 0, "face", "faces")
    boxes = np.zeros((n, 4), dtype=np.float64)
    for k, line in enumerate(body):
        parts = line.split()
        try:
            row = [float(p) for p in parts]
        except ValueError:
            row = None
        if row is None or len(row) != 4 or not all(math.isfinite(v) for v in row):
            raise ValueError(f"{path}: line {2 + k}: expected 4 finite numbers 'x1 y1 x2 y2', got {line.strip()!r}")
        boxes[k] = row
    return boxes


def write_label_file(path, boxes):
    """Write (N, 4) x1 y1 x2 y2 boxes as the release does: the count, then one
    space-separated box a line (integers printed without a decimal point).
    Atomic. Returns the path."""
    from ..io import atomic_write

    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) if np.size(boxes) else np.zeros((0, 4))
    if not np.isfinite(b).all():
        raise ValueError(f"boxes for {path} must be finite")
    rows = [" ".join(str(int(v)) if float(v).is_integer() else repr(float(v)) for v in r) for r in b.tolist()]
    with atomic_write(Path(path), "w", fsync=False) as f:
        f.write("\n".join([str(len(b))] + rows) + "\n")
    return Path(path)


def _name_key(name):
    # the release numbers its images 1..6000: sort numerically where names are numbers
    return (0, int(name), name) if name.isdigit() else (1, 0, name)


def list_names(root):
    """The image names of a DARK FACE root (``image/<name>.png`` with a ``label/<name>.txt``), in
    numeric order. FileNotFoundError when a folder is missing; ValueError naming the first image
    without a label file (a label without an image is not an image of the set and is ignored)."""
    root = Path(root)
    images, labels = root / IMAGE_DIR, root / LABEL_DIR
    for d in (images, labels):
        if not d.is_dir():
            raise FileNotFoundError(f"root: {root} is not a DARK FACE tree (no {d.name}/ folder)")
    names = sorted((p.stem for p in images.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith(".")),
                   key=_name_key)
    if not names:
        raise ValueError(f"root: {images} holds no .png image")
    for n in names:
        if not (labels / f"{n}.txt").exists():
            raise ValueError(f"root: image {images / (n + '.png')} has no label file {labels / (n + '.txt')}")
    return names


class DarkFace:
    """A DARK FACE root: ``len(ds)`` images, ``ds[i]`` -> {'name', 'image' (3, H, W) float32
    tensor in [0, 1], 'boxes' (N, 4) float64 x1 y1 x2 y2}; ``ds.names``, ``ds.image_path(name)``,
    ``ds.boxes(name)``. ``names``: a subset (default every image with a label)."""

    def __init__(self, root, names=None):
        self.root = Path(root)
        every = list_names(self.root)
        if names is None:
            self.names = every
        else:
            known = set(every)
            self.names = [str(n) for n in names]
            bad = [n for n in self.names if n not in known]
            if bad:
                raise ValueError(f"names: {bad[0]!r} is not an image of {self.root}")
        self._boxes = {}

    def __len__(self):
        return len(self.names)

    def image_path(self, name):
        return self.root / IMAGE_DIR / f"{name}.png"

    def label_path(self, name):
        return self.root / LABEL_DIR / f"{name}.txt"

    def boxes(self, name):
        if name not in self._boxes:
            self._boxes[name] = read_label_file(self.label_path(name))
        return self._boxes[name]

    def __getitem__(self, i):
        from ..io import read_image

        name = self.names[i]
        return {"name": name, "image": read_image(self.image_path(name)), "boxes": self.boxes(name)}
