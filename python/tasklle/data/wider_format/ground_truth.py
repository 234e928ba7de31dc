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
import os
from pathlib import Path

import numpy as np

from ._mat import as_boxes, as_indices, box_array, cell, cells, index_array, loadmat, mat_strings, save_mat

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
    m = loadmat(path, ["event_list", "file_list", "face_bbx_list"])
    for v in ("event_list", "file_list", "face_bbx_list"):
        if v not in m:
            raise ValueError(f"{path}: variable {v!r} is missing")
    events = mat_strings(m["event_list"], "event_list", path)
    file_cells = cells(m["file_list"], "file_list", path)
    box_cells = cells(m["face_bbx_list"], "face_bbx_list", path)
    if not (len(events) == len(file_cells) == len(box_cells)):
        raise ValueError(f"{path}: event_list, file_list and face_bbx_list have different lengths "
                         f"({len(events)}, {len(file_cells)}, {len(box_cells)})")
    names, event_index, boxes, counts = [], [], [], []
    for e, (fc, bc) in enumerate(zip(file_cells, box_cells)):
        ev_names = mat_strings(fc, f"file_list{{{e + 1}}}", path)
        ev_boxes = cells(bc, f"face_bbx_list{{{e + 1}}}", path)
        if len(ev_names) != len(ev_boxes):
            raise ValueError(f"{path}: event {events[e]}: {len(ev_names)} file names but {len(ev_boxes)} box lists")
        for name, b in zip(ev_names, ev_boxes):
            b = as_boxes(b, f"{path}: {events[e]}/{name}")
            names.append(name)
            event_index.append(e)
            boxes.append(b)
            counts.append(len(b))
    offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)
    boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4))
    n_per_event = np.bincount(np.asarray(event_index, dtype=np.int64), minlength=len(events))

    keep = {}
    for s, spath in zip(settings, files[1:]):
        sm = loadmat(spath, ["gt_list", "event_list"])
        if "gt_list" not in sm:
            raise ValueError(f"{spath}: variable 'gt_list' is missing")
        if "event_list" in sm and mat_strings(sm["event_list"], "event_list", spath) != events:
            raise ValueError(f"{spath}: event_list differs from {path}")
        gcells = cells(sm["gt_list"], "gt_list", spath)
        if len(gcells) != len(events):
            raise ValueError(f"{spath}: gt_list has {len(gcells)} events, {path} has {len(events)}")
        vals, lens = [], []
        for e, gc in enumerate(gcells):
            per_image = cells(gc, f"gt_list{{{e + 1}}}", spath)
            if len(per_image) != n_per_event[e]:
                raise ValueError(f"{spath}: event {events[e]}: gt_list has {len(per_image)} images, "
                                 f"{path} has {n_per_event[e]}")
            for j, x in enumerate(per_image):
                k = as_indices(x, f"{spath}: gt_list{{{e + 1}}}{{{j + 1}}}")
                vals.append(k)
                lens.append(len(k))
        keep[s] = (np.concatenate(vals) if vals else np.zeros(0, dtype=np.int64),
                   np.concatenate([[0], np.cumsum(lens, dtype=np.int64)]).astype(np.int64))
    gt = GroundTruth(events, event_index, names, boxes, offsets, keep, source=str(gt_dir))
    if len(_GT_CACHE) >= 8:
        _GT_CACHE.clear()
    _GT_CACHE[key] = (stamp, gt)
    return gt


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
    if keep:
        check_settings(tuple(keep))
    for s, lists in keep.items():
        if len(lists) != len(images):
            raise ValueError(f"keep[{s!r}] has {len(lists)} entries for {len(images)} images")

    def group(values):
        out, k = [], 0
        for n in n_per_event:
            out.append(cell(values[k:k + n]))
            k += n
        return cell(out)

    boxes = [box_array(b, f"{e}/{n}") for e, n, b in images]
    base = {"event_list": cell(list(events)), "face_bbx_list": group(boxes),
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
    save_mat(gt_dir / GT_FILE, base, creator)
    for s, lists in keep.items():
        idx = [index_array(k, f"keep[{s!r}] of {e}/{n}") for (e, n, _), k in zip(images, lists)]
        save_mat(gt_dir / setting_file(s), {**base, "gt_list": group(idx)}, creator)
    return gt_dir
