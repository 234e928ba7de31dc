"""Detecting a whole WIDER-format split (or a DARK FACE tree), optionally through an enhancer:
:func:`detect_split` gives the predictions ``tasklle.eval.wider.evaluate`` (or
``tasklle.eval.darkface.evaluate``) scores."""
from pathlib import Path

import numpy as np

from ._alloc import with_fast_alloc

PRED_FORMATS = ("exact", "vedadet-int")
DATASETS = ("wider", "darkface")


def vedadet_int_boxes(dets):
    """(K, 5) x1 y1 x2 y2 score -> (K, 5) x y w h score as vedadet's WIDER FACE test script
    writes its prediction files: ``x = int(x1)``, ``y = int(y1)``, ``w = int(x2) - int(x1)``,
    ``h = int(y2) - int(y1)`` (truncation toward zero), score unchanged."""
    d = np.asarray(dets, dtype=np.float64).reshape(-1, 5)
    t = np.trunc(d[:, :4])
    return np.stack([t[:, 0], t[:, 1], t[:, 2] - t[:, 0], t[:, 3] - t[:, 1], d[:, 4]], 1)


@with_fast_alloc  # large buffers stay in the heap for the run (tasklle._alloc)
def detect_split(detector, root, split="val", *, images=None, max_images=None, enhancer=None, scale=None,
                 score_thr=None, detect_kwargs=None, pred_format="exact", out=None, show_progress=True,
                 desc="detect", dataset="wider"):
    """Detect every image of a WIDER-format split, each optionally enhanced first.

    Args:
        detector: a :class:`tasklle.models.TinaFace` (anything with
            ``detect(images, **kw)`` -> list of (K, 5) x1 y1 x2 y2 score).
        root: the WIDER-format root (e.g. ``tasklle.data.builtin()`` or its dark copy).
        split: 'val' (default) or 'train'.
        images: which images: ``[(index, event, name)]`` from
            :func:`tasklle.data.list_split` or ``[(event, name)]``; default: the
            whole split, or ``max_images`` of it (``list_split``'s fixed subset).
        enhancer: a Zero-DCE++ / Zero-DCE module run on each image first
            (through :func:`tasklle.enhance`, on the enhancer's device); None: none.
        scale: None keeps the detector's test scale; a number resizes every image by it.
        score_thr: None keeps the detector's (TinaFace: 0.01); the built-in
            budgets use 0.05 (same AP on the built-in data, 10x fewer boxes).
        detect_kwargs: any other keyword arguments of ``detector.detect``.
        pred_format: 'exact' keeps the float boxes; 'vedadet-int' truncates
            them as vedadet's WIDER test script writes them (:func:`vedadet_int_boxes`).
        out: when given, also write the predictions there in the official
            folder format (``tasklle.data.wider_format.write_predictions``;
            DARK FACE: ``tasklle.eval.darkface.write_predictions``, the
            challenge tools' ``<name>.txt`` with ``x y w h score`` lines).
        dataset: 'wider' (default) or 'darkface': ``root`` is then a DARK FACE
            release tree (``image/<name>.png``, ``label/<name>.txt``), ``split``
            is not used, ``images`` are image names (default every image, or
            the first ``max_images`` in numeric order) and the keys are names.

    Returns:
        ``{(event, name): (K, 5) float64 array of x, y, w, h, score}``, the form
        ``tasklle.eval.wider.evaluate`` and ``write_predictions`` take
        (DARK FACE: ``{name: (K, 5)}``, w = x2 - x1 as the tools expect).

    Example:
        >>> root = tasklle.data.builtin(n_train=8, n_val=6)
        >>> preds = tasklle.detect_split(tasklle.models.load_shipped("tinaface-lite-demo"), root, "val")
        >>> ap = tasklle.eval.wider.evaluate(preds, root / "wider_face_split")
    """
    if pred_format not in PRED_FORMATS:
        raise ValueError(f"pred_format must be one of {PRED_FORMATS}, got {pred_format!r}")
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    import torch

    from .io import read_image
    from .models.tinaface import detections_to_wider
    from .progress import progress

    if images is not None and max_images is not None:
        raise ValueError("give images or max_images, not both")
    if dataset == "darkface":
        from .data.darkface import DarkFace

        ds = DarkFace(root, images)
        keys = ds.names[:max_images] if max_images is not None else ds.names
        image_path = ds.image_path
    else:
        if images is None:
            from .data.splits import list_split

            images = list_split(root, split, max_images)
        keys = []
        for i, entry in enumerate(images):
            if not isinstance(entry, (tuple, list)) or len(entry) not in (2, 3):
                raise ValueError(f"images[{i}] must be (event, name) or (index, event, name), got {entry!r}")
            keys.append((str(entry[-2]), str(entry[-1])))

        def image_path(key):
            return Path(root) / f"WIDER_{split}" / "images" / key[0] / f"{key[1]}.jpg"
    kw = dict(detect_kwargs or {})
    if scale is not None:
        kw["scale"] = float(scale)
    if score_thr is not None:
        kw["score_thr"] = float(score_thr)
    if enhancer is not None:
        from .enhancement import enhance
    preds = {}
    with torch.no_grad():
        for key in progress(keys, desc=desc, leave=False, disable=not show_progress):
            img = read_image(image_path(key))
            if enhancer is not None:
                img = enhance(img, model=enhancer)
            dets = detector.detect(img[None], **kw)[0]
            preds[key] = vedadet_int_boxes(dets) if pred_format == "vedadet-int" else detections_to_wider(dets)
    if out is not None:
        if dataset == "darkface":
            from .eval.darkface import write_predictions
        else:
            from .data.wider_format import write_predictions

        write_predictions(out, preds)
    return preds
