"""The WIDER FACE evaluation (easy / medium / hard AP), as the official tools compute it.

Usage::

    from tasklle.eval import wider
    result = wider.evaluate(pred_dir_or_mapping, "data/wider_face_split")
    result["easy"], result["medium"], result["hard"]    # float AP
    result["curves"]["hard"]["recall"], ...["precision"]  # (1000,) PR curves
    wider.plot_pr_curves({"ours": result}, "pr.png")

Predictions are a folder in the official format (one folder per event, one
``<image>.txt`` per image: the image name, the box count, then ``x y w h score``
lines) or a mapping ``{(event, image_name): (K, 5) array x, y, w, h, score}``
(image names without ``.jpg``, exactly as in ``file_list``).

The ground-truth folder holds ``wider_face_val.mat`` (event_list, file_list,
face_bbx_list as x y w h) and ``wider_{easy,medium,hard}_val.mat`` whose
``gt_list`` holds, per image, the 1-based indices of the faces that count in
that setting; every other face is "ignore".

The protocol (official MATLAB eval_tools ``wider_eval.m``; the common Python
port "WiderFace-Evaluation" agrees except where noted):

1. Each image's predictions are sorted by descending score (stable, like
   MATLAB's ``sort(..., 'descend')``); scores are normalised once over all
   predictions of all ground-truth images, (s - min) / (max - min).
2. Per setting and image, the number of counted faces (``len(gt_list)``) is
   added to the total even when the image is then skipped; images with no gt
   box or no prediction are skipped.
3. x2 = x + w, y2 = y + h; IoU with the +1 pixel convention
   (iw = min(x2) - max(x1) + 1).
4. Each prediction in order takes the gt of largest IoU (ignored faces
   included, first index on ties). At IoU >= 0.5 an ignored gt makes the
   prediction "not counted"; an unmatched counted gt becomes recalled; an
   already recalled gt leaves the prediction a false positive.
5. For t = 1..1000, thresh = 1 - t/1000, r = the last prediction with
   normalised score >= thresh; (counted proposals in 0..r, recalled faces
   after r) is added to the dataset sums.
6. precision = TP / proposals, recall = TP / counted faces; AP is VOC-style:
   sentinels, monotone precision envelope, sum of delta-recall x precision.

Details where implementations differ, and what this one does:

- Min and max of the normalisation are the plain min and max over all
  predictions. MATLAB starts them at realmax/realmin('single') (which makes
  its arithmetic single precision); the Python port starts them at 1 and 0.
  All three agree for scores in [0, 1] up to MATLAB's float32 rounding; we
  compute in float64 like the port. When every score is equal the official
  tools divide by zero (NaN scores, AP 0); here every normalised score is 1.
- Precision where no counted proposal is kept (0 / 0) is NaN in the returned
  curves. It only occurs at recall 0, where it cannot change the AP (MATLAB's
  ``max`` skips NaN in the envelope; NumPy's would spread it into the unused
  first sentinel), so both tools give the same AP as this one.
- Predictions are sorted by score per image as MATLAB's read_pred does; the
  Python port keeps the file order (it assumes sorted files). The order of
  tied scores never changes the result (tied predictions enter together).
- A missing prediction file (or mapping entry) means "no detections" for that
  image, as in MATLAB's ``read_pred`` (the Python port raises instead); one
  ``MissingPredictionsWarning`` says how many. Files of images that are not in
  the ground truth are never read, as in MATLAB.
- A malformed prediction file raises ValueError naming the file and line
  (MATLAB prints "Invalid format" and drops the image).
- AP is NaN (with a warning) for a setting that counts no face at all.

The per-image matching and PR accumulation run in C (``tasklle._C``, OpenMP
over images, float64, integer sums: results do not depend on the thread
count); ``impl='reference'`` runs the literal NumPy transcription of the
MATLAB code in ``tasklle.reference.wider_eval`` instead.
"""
import math
import os
import stat
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = [
    "SETTINGS",
    "THRESH_NUM",
    "GroundTruth",
    "MissingPredictionsWarning",
    "load_ground_truth",
    "write_ground_truth",
    "evaluate",
    "read_predictions",
    "read_prediction_file",
    "write_predictions",
    "plot_pr_curves",
    "result_to_json",
]

SETTINGS = ("easy", "medium", "hard")
THRESH_NUM = 1000
GT_FILE = "wider_face_val.mat"


def setting_file(setting):
    return f"wider_{setting}_val.mat"


class MissingPredictionsWarning(UserWarning):
    """Some ground-truth images have no prediction file / mapping entry."""


# ----------------------------------------------------------------------------
# ground truth
# ----------------------------------------------------------------------------

class GroundTruth:
    """The evaluation ground truth, flattened for the C kernel.

    Attributes (arrays are read-only):
      events        tuple of E event names, in file order
      event_index   (I,) int64 event of each image
      names         tuple of I image names (no .jpg), in file order
      boxes         (G, 4) float64 x, y, w, h of every face, image after image
      offsets       (I+1,) int64: image i owns boxes[offsets[i]:offsets[i+1]]
      keep          {setting: (values (K,) int64 1-based, offsets (I+1,) int64)}:
                    gt_list of each image, as in the files
      counted       {setting: (G,) bool}: the face counts in that setting
      source        where it was read from (a path, or a description)
    """

    def __init__(self, events, event_index, names, boxes, offsets, keep, source=""):
        self.events = tuple(events)
        self.event_index = _readonly(np.asarray(event_index, dtype=np.int64))
        self.names = tuple(names)
        self.boxes = _readonly(np.ascontiguousarray(boxes, dtype=np.float64).reshape(-1, 4))
        self.offsets = _readonly(np.asarray(offsets, dtype=np.int64))
        self.source = str(source)
        n = len(self.names)
        if len(self.event_index) != n or len(self.offsets) != n + 1 or self.offsets[-1] != len(self.boxes):
            raise ValueError("GroundTruth: inconsistent image / box counts")
        self.keep, self.counted = {}, {}
        for s, (vals, offs) in keep.items():
            vals = _readonly(np.asarray(vals, dtype=np.int64).reshape(-1))
            offs = _readonly(np.asarray(offs, dtype=np.int64).reshape(-1))
            if len(offs) != n + 1 or offs[-1] != len(vals):
                raise ValueError(f"GroundTruth: gt_list of setting {s!r} does not match the images")
            img = np.repeat(np.arange(n), np.diff(offs))
            n_boxes = np.diff(self.offsets)[img]
            bad = (vals < 1) | (vals > n_boxes)
            if bad.any():
                i = int(img[np.argmax(bad)])
                raise ValueError(f"{self.source}: gt_list of setting {s!r}, image {self.key(i)}: index "
                                 f"{int(vals[np.argmax(bad)])} is outside 1..{int(n_boxes[np.argmax(bad)])}")
            mask = np.zeros(len(self.boxes), dtype=bool)
            mask[self.offsets[img] + vals - 1] = True
            self.keep[s] = (vals, offs)
            self.counted[s] = _readonly(mask)
        self._index = None

    @property
    def n_images(self):
        return len(self.names)

    @property
    def settings(self):
        return tuple(self.keep)

    def key(self, i):
        """(event, name) of image i."""
        return (self.events[self.event_index[i]], self.names[i])

    def keys(self):
        """[(event, name)] of every image, in evaluation order."""
        return [(self.events[e], n) for e, n in zip(self.event_index.tolist(), self.names)]

    @property
    def index(self):
        """{(event, name): image index}."""
        if self._index is None:
            self._index = {k: i for i, k in enumerate(self.keys())}
        return self._index

    def image_boxes(self, i):
        """(N, 4) float64 x y w h of image i."""
        return self.boxes[self.offsets[i]:self.offsets[i + 1]]

    def keep_index(self, setting, i):
        """(k,) int64 1-based indices of the faces of image i that count in ``setting``."""
        vals, offs = self.keep[setting]
        return vals[offs[i]:offs[i + 1]]

    def n_faces(self, setting):
        """Counted faces of a setting: the sum of len(gt_list) over all images."""
        return int(len(self.keep[setting][0]))

    def subset(self, events):
        """A GroundTruth restricted to the given events (names), in file order."""
        wanted = set(events)
        unknown = wanted - set(self.events)
        if unknown:
            raise ValueError(f"events not in the ground truth: {sorted(unknown)}")
        ev_ids = [k for k, e in enumerate(self.events) if e in wanted]
        sel = np.nonzero(np.isin(self.event_index, ev_ids))[0]
        remap = {old: new for new, old in enumerate(ev_ids)}

        def gather(values, offsets):
            counts = np.diff(offsets)[sel]
            new_off = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
            idx = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in sel]) if len(sel) else \
                np.zeros(0, dtype=np.int64)
            return values[idx.astype(np.int64)], new_off

        boxes, offs = gather(self.boxes, self.offsets)
        keep = {s: gather(v, o) for s, (v, o) in self.keep.items()}
        return GroundTruth([self.events[k] for k in ev_ids], [remap[int(self.event_index[i])] for i in sel],
                           [self.names[i] for i in sel], boxes, offs, keep,
                           source=f"{self.source} (events: {', '.join(self.events[k] for k in ev_ids)})")

    def __repr__(self):
        faces = ", ".join(f"{s} {self.n_faces(s)}" for s in self.keep)
        return (f"GroundTruth({len(self.events)} events, {self.n_images} images, {len(self.boxes)} boxes; "
                f"counted faces: {faces})")


def _readonly(a):
    a.setflags(write=False)
    return a


def _cells(arr, what, path):
    """Elements of a MATLAB cell array as loadmat returns it (an object ndarray), in MATLAB order."""
    if isinstance(arr, np.ndarray) and arr.dtype == object:
        return list(arr.ravel(order="F"))
    if isinstance(arr, np.ndarray) and arr.size == 0:
        return []  # savemat writes an empty cell as an empty matrix
    raise ValueError(f"{path}: {what} is not a cell array (got {type(arr).__name__} "
                     f"{getattr(arr, 'dtype', '')} {getattr(arr, 'shape', '')})")


def _unwrap(x):
    # loadmat wraps cell contents: array([[array(['name'])]], dtype=object) and the like
    while isinstance(x, np.ndarray) and x.dtype == object and x.size == 1:
        x = x.ravel()[0]
    return x


def _mat_strings(arr, what, path):
    """A cell of strings (or a char matrix) -> list of str."""
    if isinstance(arr, np.ndarray) and arr.dtype.kind == "U":
        return [str(s).rstrip() for s in arr.ravel(order="F")]
    out = []
    for k, x in enumerate(_cells(arr, what, path)):
        x = _unwrap(x)
        if isinstance(x, np.ndarray) and x.dtype.kind == "U" and x.size == 1:
            x = str(x.ravel()[0])
        if not isinstance(x, str) or not x:
            raise ValueError(f"{path}: {what}{{{k + 1}}} is not a non-empty string")
        out.append(x)
    return out


def _as_boxes(x, where):
    x = _unwrap(x)
    a = np.asarray(x)
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise ValueError(f"{where}: face boxes must be a numeric (K, 4) array, got dtype {a.dtype}")
    if a.size == 0:
        return np.zeros((0, 4))
    if a.ndim == 1 and a.size == 4:
        a = a.reshape(1, 4)
    if a.ndim != 2 or a.shape[1] != 4:
        raise ValueError(f"{where}: face boxes must be (K, 4) x y w h, got shape {a.shape}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{where}: face boxes must be finite")
    return a


def _as_indices(x, where):
    x = _unwrap(x)
    a = np.asarray(x)
    if a.dtype == object or a.dtype.kind not in "biuf":
        raise ValueError(f"{where}: gt_list entries must be numeric 1-based indices, got dtype {a.dtype}")
    a = a.ravel(order="F")
    if a.dtype.kind == "f":
        if not (np.isfinite(a).all() and (a == np.round(a)).all()):
            raise ValueError(f"{where}: gt_list entries must be integers")
    return a.astype(np.int64)


def _loadmat(path, names):
    import scipy.io

    if not path.is_file():
        raise FileNotFoundError(f"ground-truth file not found: {path}")
    try:
        m = scipy.io.loadmat(str(path), variable_names=names)
    except Exception as e:  # scipy raises several types for corrupt files
        raise ValueError(f"cannot read {path}: {e}") from e
    return m


_GT_CACHE = {}


def load_ground_truth(gt_dir, settings=SETTINGS):
    """Read ``wider_face_val.mat`` and ``wider_{setting}_val.mat`` from gt_dir.

    Works with the official files and with files written by scipy.io.savemat
    in the same structure (see ``write_ground_truth``). The result is cached
    per folder (keyed by the files' size and modification time) and
    read-only. Returns a ``GroundTruth``."""
    settings = _check_settings(settings)
    gt_dir = Path(gt_dir)
    if not gt_dir.is_dir():
        raise FileNotFoundError(f"ground-truth folder not found: {gt_dir}")
    files = [gt_dir / GT_FILE] + [gt_dir / setting_file(s) for s in settings]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"ground-truth file not found: {f}")
    stamp = tuple((os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files)
    key = (str(gt_dir.resolve()), settings)
    hit = _GT_CACHE.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]

    path = files[0]
    m = _loadmat(path, ["event_list", "file_list", "face_bbx_list"])
    for v in ("event_list", "file_list", "face_bbx_list"):
        if v not in m:
            raise ValueError(f"{path}: variable {v!r} is missing")
    events = _mat_strings(m["event_list"], "event_list", path)
    file_cells = _cells(m["file_list"], "file_list", path)
    box_cells = _cells(m["face_bbx_list"], "face_bbx_list", path)
    if not (len(events) == len(file_cells) == len(box_cells)):
        raise ValueError(f"{path}: event_list, file_list and face_bbx_list have different lengths "
                         f"({len(events)}, {len(file_cells)}, {len(box_cells)})")
    names, event_index, boxes, counts = [], [], [], []
    for e, (fc, bc) in enumerate(zip(file_cells, box_cells)):
        ev_names = _mat_strings(fc, f"file_list{{{e + 1}}}", path)
        ev_boxes = _cells(bc, f"face_bbx_list{{{e + 1}}}", path)
        if len(ev_names) != len(ev_boxes):
            raise ValueError(f"{path}: event {events[e]}: {len(ev_names)} file names but {len(ev_boxes)} box lists")
        for name, b in zip(ev_names, ev_boxes):
            b = _as_boxes(b, f"{path}: {events[e]}/{name}")
            names.append(name)
            event_index.append(e)
            boxes.append(b)
            counts.append(len(b))
    offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)
    boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4))
    n_per_event = np.bincount(np.asarray(event_index, dtype=np.int64), minlength=len(events))

    keep = {}
    for s, spath in zip(settings, files[1:]):
        sm = _loadmat(spath, ["gt_list", "event_list"])
        if "gt_list" not in sm:
            raise ValueError(f"{spath}: variable 'gt_list' is missing")
        if "event_list" in sm and _mat_strings(sm["event_list"], "event_list", spath) != events:
            raise ValueError(f"{spath}: event_list differs from {path}")
        gcells = _cells(sm["gt_list"], "gt_list", spath)
        if len(gcells) != len(events):
            raise ValueError(f"{spath}: gt_list has {len(gcells)} events, {path} has {len(events)}")
        vals, lens = [], []
        for e, gc in enumerate(gcells):
            per_image = _cells(gc, f"gt_list{{{e + 1}}}", spath)
            if len(per_image) != n_per_event[e]:
                raise ValueError(f"{spath}: event {events[e]}: gt_list has {len(per_image)} images, "
                                 f"{path} has {n_per_event[e]}")
            for j, x in enumerate(per_image):
                k = _as_indices(x, f"{spath}: gt_list{{{e + 1}}}{{{j + 1}}}")
                vals.append(k)
                lens.append(len(k))
        keep[s] = (np.concatenate(vals) if vals else np.zeros(0, dtype=np.int64),
                   np.concatenate([[0], np.cumsum(lens, dtype=np.int64)]).astype(np.int64))
    gt = GroundTruth(events, event_index, names, boxes, offsets, keep, source=str(gt_dir))
    if len(_GT_CACHE) >= 8:
        _GT_CACHE.clear()
    _GT_CACHE[key] = (stamp, gt)
    return gt


def write_ground_truth(gt_dir, images, keep):
    """Write ``wider_face_val.mat`` and ``wider_{setting}_val.mat`` in the
    official structure with scipy.io.savemat (what ``load_ground_truth`` and
    the official tools read).

    images: list of (event, name, boxes (K, 4) x y w h), grouped by event in
    the order they should appear; keep: {setting: list (one per image) of
    1-based indices of the faces that count}. Returns gt_dir as a Path."""
    import io as _io

    import scipy.io

    from ..io import atomic_write

    gt_dir = Path(gt_dir)
    images = list(images)
    events = []
    for event, _, _ in images:
        if not events or events[-1] != event:
            if event in events:
                raise ValueError(f"images of event {event!r} must be contiguous")
            events.append(event)
    n_per_event = [sum(1 for e, _, _ in images if e == ev) for ev in events]

    def cell(items):
        c = np.empty((len(items), 1), dtype=object)
        for k, it in enumerate(items):
            c[k, 0] = it
        return c

    def group(values):
        out, k = [], 0
        for n in n_per_event:
            out.append(cell(values[k:k + n]))
            k += n
        return cell(out)

    names = [n for _, n, _ in images]
    boxes = []
    for _, _, b in images:
        b = np.asarray(b, dtype=np.float64)
        b = b.reshape(-1, 4) if b.size else np.zeros((0, 4))
        boxes.append(b)
    base = {"event_list": cell(list(events)), "file_list": group(names), "face_bbx_list": group(boxes)}

    def save(name, variables):
        buf = _io.BytesIO()
        scipy.io.savemat(buf, variables, format="5", oned_as="column")
        with atomic_write(gt_dir / name) as f:
            f.write(buf.getvalue())

    save(GT_FILE, base)
    for s, lists in keep.items():
        if len(lists) != len(images):
            raise ValueError(f"keep[{s!r}] has {len(lists)} entries for {len(images)} images")
        idx = []
        for k in lists:
            k = np.asarray(k, dtype=np.float64).reshape(-1, 1)
            idx.append(k if k.size else np.zeros((0, 0)))
        save(setting_file(s), {**base, "gt_list": group(idx)})
    return gt_dir


# ----------------------------------------------------------------------------
# prediction files
# ----------------------------------------------------------------------------

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


def read_prediction_file(path):
    """One prediction file: image name line, box count line, ``x y w h score``
    lines. Returns (K, 5) float64. Raises ValueError naming the file and line
    for anything malformed (missing or non-integer count, a row without
    exactly 5 finite numbers, fewer or more rows than the count), and for a
    path that is not a regular file of at most MAX_PREDICTION_FILE_BYTES."""
    path = Path(path)
    text = _read_bounded_text(path, MAX_PREDICTION_FILE_BYTES, "prediction file")
    lines = text.splitlines()
    if len(lines) < 2:
        raise ValueError(f"{path}: line {len(lines) + 1}: missing the box count line")
    count = lines[1].strip()
    if not _is_count(count):
        raise ValueError(f"{path}: line 2: box count must be a non-negative integer, got {count!r}")
    n = int(count)
    body = lines[2:2 + n]
    if len(body) < n:
        raise ValueError(f"{path}: line {len(lines) + 1}: the count on line 2 says {n} boxes, "
                         f"the file has {len(body)}")
    for k, extra in enumerate(lines[2 + n:]):
        if extra.strip():
            raise ValueError(f"{path}: line {3 + n + k}: more box lines than the count {n} on line 2")
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


def _as_pred_array(arr, key):
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
    from ..io import atomic_write

    items = []
    for key, arr in mapping.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise TypeError(f"prediction keys must be (event, name) tuples, got {key!r}")
        event, name = _check_part(key[0], "event"), _check_part(key[1], "name")
        a = _as_pred_array(arr, key)
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


# ----------------------------------------------------------------------------
# evaluation
# ----------------------------------------------------------------------------

def _check_settings(settings):
    if isinstance(settings, str):
        settings = (settings,)
    settings = tuple(settings)
    if not settings:
        raise ValueError("settings must name at least one of 'easy', 'medium', 'hard'")
    for s in settings:
        if s not in SETTINGS:
            raise ValueError(f"settings: unknown setting {s!r} (choose from {SETTINGS})")
    if len(set(settings)) != len(settings):
        raise ValueError(f"settings: duplicates in {settings}")
    return settings


def _pack(predictions, gt):
    """Predictions of every gt image, in gt order: (P, 5) float64 and (I+1,) offsets.
    Returns (pred, offsets, missing keys, n_extra)."""
    keys = gt.keys()
    arrays, counts, missing = [], np.zeros(gt.n_images, dtype=np.int64), []
    n_extra = 0
    if isinstance(predictions, (str, os.PathLike)):
        folder = Path(predictions)
        if not folder.is_dir():
            raise FileNotFoundError(f"prediction folder not found: {folder}")
        for i, (event, name) in enumerate(keys):
            f = folder / event / f"{name}.txt"
            try:
                a = read_prediction_file(f)
            except FileNotFoundError:
                missing.append((event, name))
                continue
            counts[i] = len(a)
            if len(a):
                arrays.append(a)
    elif isinstance(predictions, Mapping):
        get = predictions.get
        found = 0
        for i, key in enumerate(keys):
            arr = get(key)
            if arr is None:
                missing.append(key)
                continue
            found += 1
            a = _as_pred_array(arr, key)
            counts[i] = len(a)
            if len(a):
                arrays.append(a)
        if len(predictions) > found:
            bad = [k for k in predictions if not (isinstance(k, tuple) and len(k) == 2)]
            if bad:
                raise TypeError(f"prediction keys must be (event, name) tuples, got {bad[0]!r}")
            n_extra = len(predictions) - found
    else:
        raise TypeError("predictions must be a prediction folder or a mapping {(event, name): (K, 5) array}, "
                        f"got {type(predictions).__name__}")
    pred = np.ascontiguousarray(np.concatenate(arrays)) if arrays else np.zeros((0, 5))
    offsets = np.zeros(gt.n_images + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    finite = np.isfinite(pred)
    if not finite.all():
        row = int(np.nonzero(~finite.all(axis=1))[0][0])
        i = int(np.searchsorted(offsets, row, side="right") - 1)
        raise ValueError(f"predictions for {keys[i]} contain NaN or infinity")
    return pred, offsets, missing, n_extra


def _voc_ap(recall, precision):
    """VOC AP with sentinels and the monotone envelope (NaN precision skipped, as MATLAB's max does)."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.fmax.accumulate(mpre[::-1])[::-1]
    i = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def evaluate(predictions, gt_dir, iou_thresh=0.5, settings=SETTINGS, impl="c"):
    """WIDER FACE AP per setting, as the official tools compute it (see the module doc).

    predictions: a prediction folder (official format) or a mapping
        ``{(event, name): (K, 5) array x, y, w, h, score}``.
    gt_dir: the folder with wider_face_val.mat and wider_{setting}_val.mat, or a
        ``GroundTruth`` (``load_ground_truth``; ``.subset(events)`` for part of it).
    iou_thresh: in (0, 1]; settings: any of 'easy', 'medium', 'hard';
    impl: 'c' (default) or 'reference' (the slow literal NumPy twin).

    Returns {setting: AP float, ..., 'curves': {setting: {'recall', 'precision',
    'thresholds' (1000,) float64, 'proposals', 'true_positives' (1000,) int64,
    'n_faces' int}}, 'n_images', 'n_missing', 'iou_thresh'}. Curves are indexed
    by t = 1..1000, threshold 1 - t/1000 on the normalised score."""
    settings = _check_settings(settings)
    if impl not in ("c", "reference"):
        raise ValueError(f"impl must be 'c' or 'reference', got {impl!r}")
    if isinstance(iou_thresh, bool) or not isinstance(iou_thresh, (int, float, np.floating)):
        raise TypeError(f"iou_thresh must be a number, got {type(iou_thresh).__name__}")
    iou_thresh = float(iou_thresh)
    if not 0.0 < iou_thresh <= 1.0:
        raise ValueError(f"iou_thresh must be in (0, 1], got {iou_thresh}")
    if isinstance(gt_dir, GroundTruth):
        gt = gt_dir
        absent = [s for s in settings if s not in gt.keep]
        if absent:
            raise ValueError(f"the ground truth has no gt_list for {absent}")
    else:
        gt = load_ground_truth(gt_dir, settings)

    pred, offsets, missing, n_extra = _pack(predictions, gt)
    if missing:
        examples = ", ".join(f"{e}/{n}" for e, n in missing[:3])
        warnings.warn(f"no predictions for {len(missing)} of {gt.n_images} ground-truth images; they count "
                      f"as images without detections, as in the official tools (e.g. {examples})",
                      MissingPredictionsWarning, stacklevel=2)
    if n_extra:
        warnings.warn(f"{n_extra} prediction entries name images that are not in the ground truth "
                      f"({gt.source}); they were ignored", UserWarning, stacklevel=2)

    T = THRESH_NUM
    if impl == "c":
        from .. import _C

        counted = np.ascontiguousarray(np.stack([gt.counted[s] for s in settings]).astype(np.uint8))
        if len(pred):
            lo, hi = float(pred[:, 4].min()), float(pred[:, 4].max())
        else:
            lo, hi = 0.0, 1.0
        sums = np.zeros((len(settings), T, 2), dtype=np.int64)
        _C.wider_eval_forward(sums, pred, offsets, gt.boxes, gt.offsets, counted, lo, hi, iou_thresh)
        per_setting = {}
        for k, s in enumerate(settings):
            n_faces = gt.n_faces(s)
            proposals, tp = sums[k, :, 0], sums[k, :, 1]
            with np.errstate(divide="ignore", invalid="ignore"):
                precision = tp / proposals
                recall = tp / n_faces if n_faces else np.full(T, np.nan)
            per_setting[s] = (_voc_ap(recall, precision), proposals, tp, precision, recall, n_faces)
    else:
        from ..reference.wider_eval import wider_evaluate_reference

        preds = [pred[offsets[i]:offsets[i + 1]] for i in range(gt.n_images)]
        gts = [gt.image_boxes(i) for i in range(gt.n_images)]
        keeps = {s: [gt.keep_index(s, i) for i in range(gt.n_images)] for s in settings}
        ref = wider_evaluate_reference(preds, gts, keeps, iou_thresh, T)
        per_setting = {s: (r["ap"], r["pr_sums"][:, 0].copy(), r["pr_sums"][:, 1].copy(), r["precision"],
                           r["recall"], r["n_faces"]) for s, r in ref.items()}

    result = {}
    curves = {}
    thresholds = 1 - np.arange(1, T + 1) / T
    for s in settings:
        ap, proposals, tp, precision, recall, n_faces = per_setting[s]
        if n_faces == 0:
            warnings.warn(f"setting {s!r} counts no face in {gt.source}: its AP is undefined (NaN)",
                          UserWarning, stacklevel=2)
            ap = math.nan
        result[s] = float(ap)
        curves[s] = {"recall": recall, "precision": precision, "thresholds": thresholds,
                     "proposals": proposals, "true_positives": tp, "n_faces": int(n_faces)}
    result["curves"] = curves
    result["n_images"] = gt.n_images
    result["n_missing"] = len(missing)
    result["iou_thresh"] = iou_thresh
    return result


def result_to_json(result):
    """A JSON-ready copy of an ``evaluate`` result (arrays as lists, NaN as None)."""

    def clean(x):
        if isinstance(x, np.ndarray):
            return [clean(v) for v in x.tolist()]
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, (float, np.floating)):
            return None if math.isnan(x) else float(x)
        if isinstance(x, np.integer):
            return int(x)
        return x

    return clean(result)


# ----------------------------------------------------------------------------
# plots
# ----------------------------------------------------------------------------

def plot_pr_curves(results_by_method, path_or_ax, settings=None, title=None):
    """Precision-recall curves per setting, like the official WIDER FACE plots
    (one panel per setting, recall on x, precision on y, legend "AP method"
    sorted by AP).

    results_by_method: {method name: ``evaluate`` result} (a single result is
        accepted too). path_or_ax: a file path (the figure is saved, format from
        the suffix, atomically), one matplotlib Axes (one setting), or a
        sequence of Axes (one per setting). settings: default every setting
        all results have. Works without a display (no pyplot state is used).
    Returns the matplotlib Figure."""
    if isinstance(results_by_method, Mapping) and isinstance(results_by_method.get("curves"), Mapping):
        results_by_method = {"tasklle": results_by_method}
    if not isinstance(results_by_method, Mapping) or not results_by_method:
        raise ValueError("results_by_method must be a non-empty mapping {method: evaluate() result}")
    for name, r in results_by_method.items():
        if not (isinstance(r, Mapping) and isinstance(r.get("curves"), Mapping)):
            raise ValueError(f"results_by_method[{name!r}] is not an evaluate() result (no 'curves')")
    if settings is None:
        settings = [s for s in SETTINGS if all(s in r["curves"] for r in results_by_method.values())]
        if not settings:
            raise ValueError("the results share no setting")
    settings = _check_settings(settings)
    for name, r in results_by_method.items():
        for s in settings:
            if s not in r["curves"]:
                raise ValueError(f"results_by_method[{name!r}] has no {s!r} curve")

    from matplotlib.axes import Axes

    save_to = None
    if isinstance(path_or_ax, Axes):
        if len(settings) != 1:
            raise ValueError(f"one Axes given for {len(settings)} settings; pass settings=[one] or a list of Axes")
        axes = [path_or_ax]
        fig = path_or_ax.figure
    elif isinstance(path_or_ax, (list, tuple)) and all(isinstance(a, Axes) for a in path_or_ax):
        if len(path_or_ax) != len(settings):
            raise ValueError(f"{len(path_or_ax)} Axes given for {len(settings)} settings")
        axes = list(path_or_ax)
        fig = axes[0].figure
    elif isinstance(path_or_ax, (str, os.PathLike)):
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        save_to = Path(path_or_ax)
        fig = Figure(figsize=(5.2 * len(settings), 4.8))
        FigureCanvasAgg(fig)
        axes = list(np.atleast_1d(fig.subplots(1, len(settings))))
    else:
        raise TypeError(f"path_or_ax must be a file path, an Axes or a list of Axes, got {type(path_or_ax).__name__}")

    for ax, s in zip(axes, settings):
        order = sorted(results_by_method.items(), key=lambda kv: -_nan_to(kv[1].get(s, math.nan), -1.0))
        for name, r in order:
            c = r["curves"][s]
            ap = r.get(s, math.nan)
            ax.plot(np.asarray(c["recall"]), np.asarray(c["precision"]), linewidth=2,
                    label=f"{ap:.3f} {name}")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("Recall")
        ax.set_ylabel("Precision")
        ax.set_title(f"{s.capitalize()} set" if title is None else f"{title}: {s}")
        ax.grid(True, linestyle=":")
        ax.legend(loc="lower left", fontsize="small")
    if save_to is not None:
        from ..io import atomic_write

        fig.tight_layout()
        fmt = save_to.suffix.lstrip(".").lower() or "png"
        with atomic_write(save_to) as f:
            fig.savefig(f, format=fmt, dpi=120)
    return fig


def _nan_to(x, value):
    x = float(x)
    return value if math.isnan(x) else x
