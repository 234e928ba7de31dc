"""The torch Dataset over a WIDER-format tree, and the per-face helpers it uses.

Tree layout read by ``WiderFace`` (the real data and ``tasklle.data.demo`` alike)::

    ROOT/WIDER_{train,val}/images/<event>/<name>.jpg
    ROOT/wider_face_split/wider_face_{train,val}_bbx_gt.txt

The annotation txt format itself (reading, its quirks, writing) is
``tasklle.data.wider_format.annotations``.
"""
import os
from pathlib import Path

import numpy as np
import torch

from .wider_format.annotations import INVALID_COLUMN, read_wider_annotations

SPLITS = ("train", "val")


def xywh_to_xyxy(boxes):
    """(N, 4) x, y, w, h -> (N, 4) x1, y1, x2, y2 with x2 = x + w, y2 = y + h (float32)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = boxes.copy()
    out[:, 2:] += boxes[:, :2]
    return out.astype(np.float32)


def ignore_mask(boxes_xywh, attributes):
    """(N,) bool: faces the detector must neither learn nor be penalised for.

    A face is ignored when its ``invalid`` flag is 1 (unrecognisable, WIDER's
    own definition) or when ``w < 1`` or ``h < 1`` (degenerate boxes, as the
    TinaFace data loader's ``min_size=1`` does).
    """
    boxes_xywh = np.asarray(boxes_xywh).reshape(-1, 4)
    attributes = np.asarray(attributes).reshape(-1, 6)
    return (attributes[:, INVALID_COLUMN] == 1) | (boxes_xywh[:, 2] < 1) | (boxes_xywh[:, 3] < 1)


def split_paths(root, split):
    """(annotation txt, image folder) of ``split`` in a WIDER-format tree."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    return (root / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt",
            root / f"WIDER_{split}" / "images")


class WiderFace(torch.utils.data.Dataset):
    """A WIDER-format tree as a torch Dataset.

    Args:
        root: folder holding ``WIDER_{split}/images`` and ``wider_face_split``.
        split: ``'train'`` or ``'val'``.
        transform: optional callable applied to each item dict (e.g.
            ``tasklle.data.transforms.TrainTransform``); it receives and returns
            an item dict.

    Each item is a dict:
        'image': (3, H, W) float32 in [0, 1] (RGB);
        'boxes': (N, 4) float32 x1, y1, x2, y2 in pixels (x2 = x + w, y2 = y + h);
        'ignore': (N,) bool, see ``ignore_mask`` (invalid flag or w < 1 or h < 1);
        'attributes': (N, 6) int64 in ``ATTRIBUTE_NAMES`` order;
        'event': str, 'name': str (without .jpg), 'path': str (the image file).

    ``self.records`` holds the parsed annotation records and ``self.report``
    the quirks report of the annotation file.
    """

    def __init__(self, root, split="train", transform=None):
        ann, image_dir = split_paths(root, split)
        if not ann.is_file():
            raise FileNotFoundError(f"root: annotation file not found: {ann}")
        if not image_dir.is_dir():
            raise FileNotFoundError(f"root: image folder not found: {image_dir}")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable, got {type(transform).__name__}")
        self.root = Path(root)
        self.split = split
        self.image_dir = image_dir
        self.transform = transform
        self.records, self.report = read_wider_annotations(ann, return_report=True)

    def __len__(self):
        return len(self.records)

    def target(self, index):
        """The annotation part of item ``index`` (no image read): boxes, ignore, attributes."""
        rec = self.records[index]
        return {
            "boxes": torch.from_numpy(xywh_to_xyxy(rec["boxes"])),
            "ignore": torch.from_numpy(ignore_mask(rec["boxes"], rec["attributes"])),
            "attributes": torch.from_numpy(rec["attributes"].copy()),
        }

    def __getitem__(self, index):
        from ..io import read_image

        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"index must be an integer, got {type(index).__name__}")
        n = len(self.records)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} images")
        rec = self.records[int(index)]
        path = self.image_dir / rec["path"]
        if os.path.commonpath([os.path.normpath(path), os.path.normpath(self.image_dir)]) != \
                os.path.normpath(self.image_dir):
            raise ValueError(f"{rec['path']!r}: image path leaves the image folder {self.image_dir}")
        item = {"image": read_image(path)}
        item.update(self.target(int(index)))
        item.update({"event": rec["event"], "name": rec["name"], "path": str(path)})
        if self.transform is not None:
            item = self.transform(item)
        return item

    def __repr__(self):
        return f"WiderFace(root={str(self.root)!r}, split={self.split!r}, images={len(self)})"


def collate(batch):
    """Collate Dataset items into one dict of lists (image sizes differ).

    Returns ``{'images': [ (3,H,W) ... ], 'boxes': [...], 'ignore': [...],
    'attributes': [...], 'event': [...], 'name': [...], 'path': [...],
    'targets': [{'boxes', 'ignore'} ...]}`` -- ``targets`` is the list the
    detector's ``loss(images, targets)`` takes. Stack ``images`` with
    ``torch.stack`` when a transform made them the same size.
    """
    if not isinstance(batch, (list, tuple)) or not batch:
        raise ValueError("batch must be a non-empty list of item dicts")
    for k, item in enumerate(batch):
        if not isinstance(item, dict) or "image" not in item:
            raise TypeError(f"batch[{k}] must be an item dict with an 'image' key")
    keys = list(batch[0].keys())
    out = {"images": [item["image"] for item in batch]}
    for key in keys:
        if key == "image":
            continue
        out[key] = [item.get(key) for item in batch]
    if "boxes" in batch[0] and "ignore" in batch[0]:
        out["targets"] = [{"boxes": item["boxes"], "ignore": item["ignore"]} for item in batch]
    return out
