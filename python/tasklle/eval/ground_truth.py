"""Where a WIDER-format root keeps its evaluation ground truth, and a copy of it
restricted to the images actually detected."""
from pathlib import Path

import numpy as np

GT_FILES = ("wider_face_val.mat", "wider_easy_val.mat", "wider_medium_val.mat", "wider_hard_val.mat")
# where the evaluation files usually are, relative to a WIDER FACE root, when --gt is not given
_GT_CANDIDATES = ("wider_face_split", "ground_truth", "eval_tools/ground_truth", "wider_face_split/ground_truth")


def find_ground_truth(root, gt=None):
    """The WIDER FACE evaluation ground-truth folder: ``gt`` when given, else the first of
    ``root/wider_face_split``, ``root/ground_truth``, ``root/eval_tools/ground_truth``,
    ``root/wider_face_split/ground_truth`` that holds all four files
    (``wider_face_val.mat``, ``wider_{easy,medium,hard}_val.mat``). Raises
    FileNotFoundError naming the missing files and where they come from.

    Example:
        >>> tasklle.eval.find_ground_truth(tasklle.data.builtin())   # doctest: +SKIP
        PosixPath('.../wider_face_split')
    """
    if gt is not None:
        folders = [Path(gt)]
    else:
        folders = [Path(root) / c for c in _GT_CANDIDATES]
        for f in folders:
            if all((f / name).is_file() for name in GT_FILES):
                return f
    f = folders[0]
    missing = [name for name in GT_FILES if not (f / name).is_file()]
    if not missing:
        return f
    where = f"in {f}" if gt is not None else "in " + ", ".join(str(c) for c in folders)
    raise FileNotFoundError(
        f"WIDER FACE evaluation ground truth missing {where}: {', '.join(missing)}. "
        "wider_easy_val.mat, wider_medium_val.mat and wider_hard_val.mat are not part of wider_face_split.zip: "
        "they come with the WIDER FACE evaluation tools (eval_tools.zip, folder ground_truth/, which also holds "
        "wider_face_val.mat). Unpack it and pass that folder with --gt DIR (gt= in Python).")


def subset_ground_truth(gt, images, out_dir):
    """The ground truth of only some images, written to ``out_dir`` (so that the
    val images not detected do not count as missed faces).

    Args:
        gt: the full ground-truth folder (e.g. :func:`find_ground_truth`).
        images: the images kept: ``[(event, name)]`` or ``[(index, event, name)]``
            (:func:`tasklle.data.list_split`).
        out_dir: where the four .mat files of the subset go (written atomically).

    Returns:
        ``Path`` of the folder to evaluate against: ``gt`` itself when every
        image is kept (nothing is written then), else ``out_dir``.

    Example:
        >>> images = tasklle.data.list_split(root, "val", max_images=20)      # doctest: +SKIP
        >>> gt = tasklle.eval.subset_ground_truth(root / "wider_face_split", images, "runs/gt")
    """
    from ..data import wider_format as wider

    keep = set()
    for i, entry in enumerate(images):
        if not isinstance(entry, (tuple, list)) or len(entry) not in (2, 3):
            raise ValueError(f"images[{i}] must be (event, name) or (index, event, name), got {entry!r}")
        keep.add((str(entry[-2]), str(entry[-1])))
    full = wider.load_ground_truth(gt)
    unknown = keep - set(full.keys())
    if unknown:
        raise ValueError(f"images: {len(unknown)} not in the ground truth {gt}, e.g. {sorted(unknown)[0]}")
    if keep >= set(full.keys()):
        return Path(gt)
    sel = [i for i, k in enumerate(full.keys()) if k in keep]
    kept = [(*full.key(i), np.asarray(full.image_boxes(i))) for i in sel]
    lists = {s: [np.asarray(full.keep_index(s, i)) for i in sel] for s in full.settings}
    return Path(wider.write_ground_truth(out_dir, kept, lists))
