"""WIDER FACE prediction folders: ``<folder>/<event>/<image name>.txt``, each
file holding the image name, the box count, then one ``x y w h score`` line
per box (the format of the official evaluation tools).

Files are untrusted input: only regular files of at most
``MAX_PREDICTION_FILE_BYTES`` are read (a FIFO, device or directory named
``*.txt`` is refused, never opened blocking), every row must hold exactly five
finite numbers, the count must match, and errors name the file and line.
Written names must be plain names, so nothing is written outside the folder.
"""
import math
import os
import stat
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["MAX_PREDICTION_FILE_BYTES", "read_prediction_file", "read_predictions", "prediction_array",
           "write_predictions"]

#: Largest prediction file read (bytes). A real file holds at most a few
#: thousand ``x y w h score`` lines (well under 1 MiB); the bound stops a link to
#: /dev/zero or a runaway file from exhausting memory.
MAX_PREDICTION_FILE_BYTES = 64 << 20


def _read_bounded_text(path, limit, what):
    """The text of a regular file of at most ``limit`` bytes. Anything else -- a
    directory, FIFO, device, socket, a larger file -- raises ValueError naming the
    file (a FIFO is opened non-blocking, so it never hangs)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, not a {what}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{path}: not a regular file (a {_file_kind(st.st_mode)}), not a {what}")
        if st.st_size > limit:
            raise ValueError(f"{path}: {st.st_size} bytes, larger than the {limit}-byte limit of a {what}")
        with os.fdopen(fd, "rb", closefd=True) as f:
            fd = None
            data = f.read(limit + 1)
    finally:
        if fd is not None:
            os.close(fd)
    if len(data) > limit:
        raise ValueError(f"{path}: larger than the {limit}-byte limit of a {what}")
    try:
        return data.decode()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a text file ({e})") from None


def _file_kind(mode):
    for test, name in ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def _is_count(text):
    """A box count: ASCII digits only (int() would also take '+1', '1_0', ' 1 ' or other scripts' digits)."""
    return bool(text) and text.isascii() and text.isdigit()


def counted_lines(path, lines, at, what, plural):
    """The box lines of a counted text file (a WIDER prediction file, a DARK
    FACE label file): line ``at + 1`` holds the count n of ``what`` (a noun:
    'box', 'face'; ``plural`` its plural), the next n lines are the boxes, anything after them must be
    blank. Returns (n, those n lines). ValueError naming the file and line for
    a missing or non-integer count and for fewer or more box lines."""
    count = lines[at].strip() if len(lines) > at else ""
    if not count:
        raise ValueError(f"{path}: line {at + 1}: missing the {what} count")
    if not _is_count(count):
        raise ValueError(f"{path}: line {at + 1}: the {what} count must be a non-negative integer, got {count!r}")
    n = int(count)
    body = lines[at + 1:at + 1 + n]
    if len(body) < n:
        raise ValueError(f"{path}: line {len(lines) + 1}: the count on line {at + 1} says {n} {plural}, "
                         f"the file has {len(body)} box lines")
    for k, extra in enumerate(lines[at + 1 + n:]):
        if extra.strip():
            raise ValueError(f"{path}: line {at + 2 + n + k}: more box lines than the count {n} on line {at + 1}")
    return n, body


def read_prediction_file(path):
    """One prediction file: image name line, box count line, ``x y w h score``
    lines. Returns (K, 5) float64. Raises ValueError naming the file and line
    for anything malformed (missing or non-integer count, a row without
    exactly 5 finite numbers, fewer or more rows than the count), and for a
    path that is not a regular file of at most MAX_PREDICTION_FILE_BYTES."""
    path = Path(path)
    text = _read_bounded_text(path, MAX_PREDICTION_FILE_BYTES, "prediction file")
    n, body = counted_lines(path, text.splitlines(), 1, "box", "boxes")
    if n == 0:
        return np.zeros((0, 5))
    # every row on its own: 5 numbers per line (joining all tokens first would
    # merge a 4-number row with a 6-number row into two valid-looking ones)
    rows = [line.split() for line in body]
    vals = None
    if all(len(r) == 5 for r in rows):
        try:
            vals = np.array(rows, dtype=np.float64)
        except ValueError:
            vals = None
    if vals is None or not np.isfinite(vals).all():
        # slow path, only to name the bad line
        for k, (line, parts) in enumerate(zip(body, rows)):
            try:
                row = [float(p) for p in parts]
            except ValueError:
                row = None
            if row is None or len(row) != 5 or not all(math.isfinite(v) for v in row):
                raise ValueError(f"{path}: line {3 + k}: expected 5 finite numbers 'x y w h score', "
                                 f"got {line.strip()!r}")
        raise ValueError(f"{path}: malformed box lines")  # not reached
    return vals


def read_predictions(folder):
    """All prediction files below folder: ``{(event, name): (K, 5) float64}``
    (x y w h score), name = the file name without ``.txt``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"prediction folder not found: {folder}")
    out = {}
    for ev in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(ev.iterdir()):
            if f.suffix == ".txt" and not f.name.startswith("."):
                if not f.is_file():
                    # a directory, FIFO, device or dangling link named *.txt: not a prediction
                    warnings.warn(f"skipped {f}: not a regular file", UserWarning, stacklevel=2)
                    continue
                out[(ev.name, f.stem)] = read_prediction_file(f)
    return out


def _check_part(s, what):
    if not isinstance(s, str) or not s or s in (".", "..") or "/" in s or "\\" in s or "\0" in s:
        raise ValueError(f"prediction key: {what} must be a plain non-empty name, got {s!r}")
    return s


def prediction_array(arr, key):
    """One image's predictions as (K, 5) float64 (TypeError / ValueError naming ``key``)."""
    if hasattr(arr, "resolve_neg"):  # a torch tensor: NumPy cannot see negative/conjugate views
        arr = arr.detach().resolve_conj().resolve_neg().cpu()
    if np.iscomplexobj(arr) or getattr(arr, "is_complex", lambda: False)():
        # converting would silently drop the imaginary part
        raise TypeError(f"predictions[{key!r}] must be real numbers, got a complex array")
    try:
        a = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"predictions[{key!r}] must be a (K, 5) numeric array: {e}") from None
    if a.size == 0:
        return np.zeros((0, 5))
    if a.ndim != 2 or a.shape[1] != 5:
        raise ValueError(f"predictions[{key!r}] must be (K, 5) x y w h score, got shape {a.shape}")
    return a


def write_predictions(folder, mapping):
    """Write ``{(event, name): (K, 5) x y w h score}`` in the official format:
    ``folder/<event>/<name>.txt`` holding the name, the count and one
    ``x y w h score`` line per box (shortest exact float text, so reading
    back gives the same numbers). Each file is written atomically.
    Returns the folder as a Path."""
    folder = Path(folder)
    if not isinstance(mapping, Mapping):
        raise TypeError(f"mapping must be a mapping {{(event, name): (K, 5) array}}, got {type(mapping).__name__}")
    from ...io import atomic_write

    items = []
    for key, arr in mapping.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise TypeError(f"prediction keys must be (event, name) tuples, got {key!r}")
        event, name = _check_part(key[0], "event"), _check_part(key[1], "name")
        a = prediction_array(arr, key)
        if not np.isfinite(a).all():
            raise ValueError(f"predictions[{key!r}] must be finite")
        items.append((event, name, a))
    folder.mkdir(parents=True, exist_ok=True)
    for event, name, a in items:
        lines = [name, str(len(a))]
        lines.extend(" ".join(map(repr, row)) for row in a.tolist())
        with atomic_write(folder / event / f"{name}.txt", "w", fsync=False) as f:
            f.write("\n".join(lines) + "\n")
    return folder
