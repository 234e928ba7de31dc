"""The WIDER FACE annotation txt format: reading (strict, with a quirks report) and writing.

Annotation txt format (``wider_face_{train,val}_bbx_gt.txt``, REFERENCE §5)::

    0--Parade/0_Parade_marchingband_1_465.jpg      <- image path (event/name.jpg)
    2                                              <- number of faces
    345 211 4 4 2 0 0 0 2 0                        <- x1 y1 w h blur expression
    331 126 3 3 0 0 0 1 0 0                           illumination invalid occlusion pose

Quirks of the real files, all accepted and counted in the quirks report:

- an image without faces is written either as count ``0`` followed by one
  all-zero row (train file) or as count ``1`` with an all-zero row (val
  file); both become an image with zero faces. A count ``0`` *without* the
  all-zero row is accepted too.
- lines end with a space (and may end with CR LF);
- some boxes have ``w <= 0`` or ``h <= 0`` (kept, and marked ignore by the
  Dataset);
- the ``invalid`` attribute marks faces that cannot be recognised.

Anything else that does not fit the format (a count that is not a
non-negative integer, a row without exactly ten numbers, a file ending in
the middle of an image) raises ``ValueError`` naming the file and the line.
"""
import math
import re
from pathlib import Path

import numpy as np

__all__ = ["ATTRIBUTE_NAMES", "ATTRIBUTE_MAX", "INVALID_COLUMN", "read_wider_annotations", "format_report",
           "format_annotation_record", "write_wider_annotations"]

#: Column order of the six attributes after x1 y1 w h in the txt files (and of
#: the ``attributes`` array of records and Dataset items).
ATTRIBUTE_NAMES = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")
#: Largest legal value of each attribute (readme.txt of the official release).
ATTRIBUTE_MAX = (2, 1, 1, 1, 2, 1)
INVALID_COLUMN = ATTRIBUTE_NAMES.index("invalid")


def _empty_report():
    return {
        "images": 0,               # image records read
        "rows": 0,                 # box rows read (the all-zero placeholder rows included)
        "faces": 0,                # face boxes kept (placeholders excluded)
        "zero_face_count0": 0,     # count 0 followed by one all-zero row
        "zero_face_count0_no_row": 0,  # count 0 with no placeholder row
        "zero_face_count1": 0,     # count 1 whose only row is all zero
        "nonpositive_size": 0,     # faces with w <= 0 or h <= 0
        "small_size": 0,           # faces with w < 1 or h < 1 (ignored by the Dataset)
        "invalid": 0,              # faces with invalid == 1
        "attribute_out_of_range": 0,  # rows with an attribute above its documented maximum
        "trailing_space_lines": 0,  # lines ending with spaces or tabs
        "crlf_lines": 0,           # lines ending with CR LF
        "blank_lines": 0,          # empty lines skipped
        "duplicate_images": 0,     # image paths listed more than once
    }


# nan/inf parse (and are then refused as "not finite", a clearer message)
_FLOAT_TOKEN = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?(?i:nan|inf|infinity)")
_INT_TOKEN = re.compile(r"-?[0-9]+")
_INT64_MAX = (1 << 63) - 1


def _number(token):
    """int when the token is an integer literal, else float (some copies write 12.0).
    ASCII digits only: int()/float() alone would also take '1_0', '+1', other
    scripts' digits. ValueError for anything else."""
    if _INT_TOKEN.fullmatch(token):
        return int(token)
    if _FLOAT_TOKEN.fullmatch(token):
        return float(token)
    raise ValueError(token)


def _integer(token):
    if not _INT_TOKEN.fullmatch(token):
        raise ValueError(token)
    return int(token)


def read_wider_annotations(path, return_report=False):
    """Read a WIDER FACE ``*_bbx_gt.txt`` annotation file.

    Args:
        path: the txt file.
        return_report: also return the quirks report (a dict of counts, see
            ``_empty_report``: images, rows, faces, zero_face_count0,
            zero_face_count1, nonpositive_size, invalid, ...).

    Returns:
        A list of records in file order, each a dict
        ``{'path': 'event/name.jpg', 'event': str, 'name': str (no extension),
        'boxes': (N, 4) float64 x, y, w, h, 'attributes': (N, 6) int64 in
        ``ATTRIBUTE_NAMES`` order, 'line': 1-based line of the image path}``;
        zero-face images have N = 0. With ``return_report``: ``(records, report)``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file is malformed (the message names file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    report = _empty_report()
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a UTF-8 text file ({e})") from None

    # (line number, stripped text) of the non-blank lines.
    lines = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if line.endswith("\r"):
            report["crlf_lines"] += 1
            line = line[:-1]
        stripped = line.strip()
        if not stripped:
            report["blank_lines"] += 1
            continue
        if line != line.rstrip():
            report["trailing_space_lines"] += 1
        lines.append((lineno, stripped))
    # The final newline of a file is not a blank line.
    if text.endswith("\n"):
        report["blank_lines"] -= 1

    def fail(lineno, msg):
        raise ValueError(f"{path}:{lineno}: {msg}")

    def parse_row(lineno, s):
        tokens = s.split()
        if len(tokens) != 10:
            fail(lineno, f"expected 10 numbers (x1 y1 w h blur expression illumination invalid "
                         f"occlusion pose), got {len(tokens)}: {s[:80]!r}")
        try:
            box = [_number(t) for t in tokens[:4]]
            attrs = [_integer(t) for t in tokens[4:]]
        except ValueError:
            fail(lineno, f"expected numbers (integer attributes), got {s[:80]!r}")
        try:
            # the boxes become float64: an integer beyond its range must fail here,
            # with the line, not later as OverflowError
            box = [float(v) for v in box]
        except OverflowError:
            fail(lineno, f"box values out of the float64 range: {s[:80]!r}")
        if not all(math.isfinite(v) for v in box):
            fail(lineno, f"box values must be finite, got {s[:80]!r}")
        if min(attrs) < 0:
            fail(lineno, f"attributes must be non-negative, got {s[:80]!r}")
        if max(attrs) > _INT64_MAX:
            fail(lineno, f"attributes must fit in int64, got {s[:80]!r}")
        return box, attrs

    def is_row(s):
        tokens = s.split()
        if len(tokens) != 10:
            return False
        try:
            [_number(t) for t in tokens]
        except ValueError:
            return False
        return True

    records = []
    seen = set()
    i = 0
    n = len(lines)
    while i < n:
        path_lineno, image_path = lines[i]
        if is_row(image_path) or len(image_path.split()) != 1:
            fail(path_lineno, f"expected an image path (event/name.jpg), got {image_path[:80]!r}")
        try:
            float(image_path)
        except ValueError:
            pass
        else:
            fail(path_lineno, f"expected an image path (event/name.jpg), got the number {image_path!r}")
        i += 1
        if i >= n:
            fail(path_lineno + 1, f"file ends after image path {image_path!r}: expected the number of faces")
        if image_path.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", image_path):
            # images are read from root/WIDER_{split}/images/<path>: a path must stay inside
            fail(path_lineno, f"image path must be relative and stay inside the image folder, got {image_path[:80]!r}")
        count_lineno, count_text = lines[i]
        if not (count_text.isascii() and count_text.isdigit()):  # not int(): it takes '+1', '1_0', '١'
            fail(count_lineno, f"expected the number of faces of {image_path!r} (a non-negative integer), "
                               f"got {count_text[:80]!r}")
        count = int(count_text)
        i += 1
        boxes, attributes = [], []
        if count == 0:
            # Train-file spelling: count 0 then one all-zero row. Tolerate the row's absence.
            if i < n and is_row(lines[i][1]):
                box, attrs = parse_row(*lines[i])
                if any(box) or any(attrs):
                    fail(lines[i][0], f"image {image_path!r} has 0 faces but is followed by a non-zero row "
                                      f"{lines[i][1][:80]!r}")
                report["rows"] += 1
                report["zero_face_count0"] += 1
                i += 1
            else:
                report["zero_face_count0_no_row"] += 1
        else:
            if i + count > n:
                fail(lines[-1][0] + 1, f"file ends inside image {image_path!r} (line {path_lineno}): "
                                       f"expected {count} box rows, found {n - i}")
            for j in range(count):
                row_lineno, s = lines[i + j]
                box, attrs = parse_row(row_lineno, s)
                boxes.append(box)
                attributes.append(attrs)
            report["rows"] += count
            i += count
            if count == 1 and not any(boxes[0]) and not any(attributes[0]):
                # Val-file spelling of an image without faces.
                report["zero_face_count1"] += 1
                boxes, attributes = [], []
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        attributes = np.asarray(attributes, dtype=np.int64).reshape(-1, 6)
        if len(boxes):
            report["nonpositive_size"] += int(((boxes[:, 2] <= 0) | (boxes[:, 3] <= 0)).sum())
            report["small_size"] += int(((boxes[:, 2] < 1) | (boxes[:, 3] < 1)).sum())
            report["invalid"] += int((attributes[:, INVALID_COLUMN] == 1).sum())
            report["attribute_out_of_range"] += int((attributes > np.asarray(ATTRIBUTE_MAX)).any(axis=1).sum())
        report["faces"] += len(boxes)
        report["images"] += 1
        if image_path in seen:
            report["duplicate_images"] += 1
        seen.add(image_path)
        p = Path(image_path)
        event = p.parent.as_posix() if p.parent != Path(".") else ""
        records.append({"path": image_path, "event": event, "name": p.stem, "boxes": boxes,
                        "attributes": attributes, "line": path_lineno})
    return (records, report) if return_report else records


def format_report(report):
    """One line per non-zero quirk count (for logs and the CLI)."""
    return "\n".join(f"{k}: {v}" for k, v in report.items() if v)


def _number_text(v):
    """An annotation number as the official files write it: integers without a
    decimal point; other values as the shortest float text that reads back equal."""
    v = float(v)
    return str(int(v)) if v.is_integer() else repr(v)


def format_annotation_record(image_path, boxes, attributes, zero_face_count=1):
    """The txt block of one image: its path, the face count, one
    ``x y w h blur expression illumination invalid occlusion pose `` row per
    face (each row ends with a space, like the official files).

    boxes: (N, 4) x y w h; attributes: (N, 6) in ``ATTRIBUTE_NAMES`` order.
    An image without faces is written in one of the two official spellings:
    count ``zero_face_count`` (0 in the train file, 1 in the val file)
    followed by one all-zero row. ``read_wider_annotations`` reads either back
    as an image with no faces."""
    if not isinstance(image_path, str) or not image_path or any(c.isspace() for c in image_path):
        raise ValueError(f"image_path must be a non-empty path without whitespace, got {image_path!r}")
    if zero_face_count not in (0, 1):
        raise ValueError(f"zero_face_count must be 0 (train file spelling) or 1 (val file spelling), "
                         f"got {zero_face_count!r}")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    attributes = np.asarray(attributes).reshape(-1, 6)
    if len(attributes) != len(boxes):
        raise ValueError(f"{image_path}: {len(boxes)} boxes but {len(attributes)} attribute rows")
    if not np.isfinite(boxes).all():
        raise ValueError(f"{image_path}: boxes must be finite")
    lines = [image_path]
    if not len(boxes):
        lines += [str(zero_face_count), "0 0 0 0 0 0 0 0 0 0 "]
    else:
        lines.append(str(len(boxes)))
        for b, a in zip(boxes.tolist(), attributes.tolist()):
            lines.append(" ".join([*map(_number_text, b), *(str(int(v)) for v in a)]) + " ")
    return "\n".join(lines) + "\n"


def write_wider_annotations(path, records, zero_face_count=1):
    """Write records (dicts with 'path', 'boxes', 'attributes', as
    ``read_wider_annotations`` returns them) as a ``*_bbx_gt.txt`` file,
    atomically. Returns the path."""
    from ...io import atomic_write

    text = "".join(format_annotation_record(r["path"], r["boxes"], r["attributes"], zero_face_count)
                   for r in records)
    path = Path(path)
    with atomic_write(path, "w", fsync=False) as f:
        f.write(text)
    return path
