"""The WIDER FACE evaluation ground truth: ``wider_face_val.mat`` and
``wider_{easy,medium,hard}_val.mat``, read into a ``GroundTruth`` and written
in the official structure.

``wider_face_val.mat`` holds event_list (E,1) cell of char, file_list (E,1)
cell of (M,1) cells of char (image names without .jpg), face_bbx_list (E,1)
cell of (M,1) cells of (K,4) x y w h and, in the official files, the six
``*_label_list`` attribute cells; ``wider_{setting}_val.mat`` adds gt_list,
per image the 1-based indices of the faces that count in that setting (every
other face is "ignore" for the evaluation).

The reader checks every level of the structure and names the file, variable
and image of anything malformed; indices outside an image's boxes are refused.
"""
import io
import os
from pathlib import Path

import numpy as np

__all__ = ["SETTINGS", "GT_FILE", "setting_file", "check_settings", "GroundTruth", "load_ground_truth",
           "write_ground_truth"]

SETTINGS = ("easy", "medium", "hard")
GT_FILE = "wider_face_val.mat"
#: Column order of the six ``*_label_list`` variables (as in the annotation txt).
LABELS = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")
_DEFAULT_CREATOR = "tasklle"


def setting_file(setting):
    return f"wider_{setting}_val.mat"


def check_settings(settings):
    """settings as a tuple of distinct names out of SETTINGS (one name is accepted too)."""
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
    settings = check_settings(settings)
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


def _cell(items):
    """A MATLAB cell column (len, 1) from a list of arrays/strings."""
    c = np.empty((len(items), 1), dtype=object)
    for k, it in enumerate(items):
        c[k, 0] = it
    return c


def _box_array(b, where):
    """(K, 4) x y w h as the official files store it: int32 when every value is
    an integer in range (as they are), float64 otherwise, so values round-trip."""
    b = np.asarray(b)
    if b.dtype == object or b.dtype.kind not in "biuf":
        raise TypeError(f"{where}: boxes must be a numeric (K, 4) array, got dtype {b.dtype}")
    b = b.reshape(-1, 4) if b.size else np.zeros((0, 4), dtype=b.dtype)
    f = b.astype(np.float64)
    if not np.isfinite(f).all():
        raise ValueError(f"{where}: boxes must be finite")
    if (f == np.round(f)).all() and (np.abs(f) < 2**31).all():
        return f.astype(np.int32)
    return f


def _index_array(indices, where):
    """gt_list entry like the official files: (k, 1) uint8 (wider types beyond 255); (0, 0) when empty."""
    k = np.asarray(indices).reshape(-1)
    if k.size == 0:
        return np.zeros((0, 0), dtype=np.uint8)
    if k.dtype.kind not in "iuf" or not (np.isfinite(k).all() and (k == np.round(k)).all() and (k >= 1).all()):
        raise ValueError(f"{where}: gt_list indices must be integers >= 1")
    top = int(k.max())
    dtype = np.uint8 if top <= 0xFF else np.uint16 if top <= 0xFFFF else np.uint32
    return k.astype(dtype).reshape(-1, 1)


def _save_mat(path, variables, creator):
    """scipy.io.savemat, compressed, with a fixed header text (scipy writes the
    current time there), so the same content gives the same bytes; atomic."""
    import scipy.io

    from ...io import atomic_write

    buf = io.BytesIO()
    scipy.io.savemat(buf, variables, format="5", do_compression=True, oned_as="column")
    data = bytearray(buf.getvalue())
    data[:116] = f"MATLAB 5.0 MAT-file, Platform: posix, Created by: {creator}".encode().ljust(116, b" ")
    with atomic_write(path) as f:
        f.write(bytes(data))


def write_ground_truth(gt_dir, images, keep, attributes=None, creator=_DEFAULT_CREATOR):
    """Write ``wider_face_val.mat`` and ``wider_{setting}_val.mat`` in the
    official structure (what ``load_ground_truth`` and the official tools read).

    images: list of (event, name, boxes (K, 4) x y w h), grouped by event in
        the order they should appear (boxes are written as given: the official
        files give an image without faces one all-zero row).
    keep: {setting: list (one per image) of 1-based indices of the faces that
        count}, one ``wider_{setting}_val.mat`` each.
    attributes: optional list (one per image) of (K, 6) attributes in
        ``LABELS`` order, written as the six ``*_label_list`` (K, 1) uint8
        cells of the official files.
    creator: the text after "Created by:" in the file header.

    Boxes are int32 when integral (as in the official files), float64
    otherwise; indices uint8 (k, 1), (0, 0) when none count. The same content
    gives the same bytes. Each file is written atomically. Returns gt_dir as a Path."""
    gt_dir = Path(gt_dir)
    images = list(images)
    events, n_per_event = [], []
    for event, _, _ in images:
        if not events or events[-1] != event:
            if event in events:
                raise ValueError(f"images of event {event!r} must be contiguous")
            events.append(event)
            n_per_event.append(0)
        n_per_event[-1] += 1
    if not isinstance(keep, dict):
        raise TypeError(f"keep must be a dict {{setting: index lists}}, got {type(keep).__name__}")
    check_settings(tuple(keep))
    for s, lists in keep.items():
        if len(lists) != len(images):
            raise ValueError(f"keep[{s!r}] has {len(lists)} entries for {len(images)} images")

    def group(values):
        out, k = [], 0
        for n in n_per_event:
            out.append(_cell(values[k:k + n]))
            k += n
        return _cell(out)

    boxes = [_box_array(b, f"{e}/{n}") for e, n, b in images]
    base = {"event_list": _cell(list(events)), "face_bbx_list": group(boxes),
            "file_list": group([n for _, n, _ in images])}
    if attributes is not None:
        attributes = list(attributes)
        if len(attributes) != len(images):
            raise ValueError(f"attributes has {len(attributes)} entries for {len(images)} images")
        attrs = []
        for (e, n, _), b, a in zip(images, boxes, attributes):
            a = np.asarray(a, dtype=np.uint8).reshape(-1, 6)
            if len(a) != len(b):
                raise ValueError(f"{e}/{n}: {len(b)} boxes but {len(a)} attribute rows")
            attrs.append(a)
        for col, label in enumerate(LABELS):
            base[f"{label}_label_list"] = group([np.ascontiguousarray(a[:, col:col + 1]) for a in attrs])
    base = dict(sorted(base.items()))
    _save_mat(gt_dir / GT_FILE, base, creator)
    for s, lists in keep.items():
        idx = [_index_array(k, f"keep[{s!r}] of {e}/{n}") for (e, n, _), k in zip(images, lists)]
        _save_mat(gt_dir / setting_file(s), {**base, "gt_list": group(idx)}, creator)
    return gt_dir
