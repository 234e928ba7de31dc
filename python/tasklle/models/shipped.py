"""The shipped models by name and the detector resolver (one layer above the classes).

The names and files are in :mod:`tasklle.models.shipped_files` (``SHIPPED``,
``shipped_path``, re-exported here; how each was trained, and how well it does,
is in the ``.md`` file beside it); each class loads its own file
(``TinaFace.shipped()``, ``RetinaFace.shipped()``, ``ECZeroDCE.shipped()``); this module picks the class
by name (:func:`load_shipped`) and resolves the detector argument of the
trainers and commands (:func:`load_detector`).
No Zero-DCE++ weights are shipped: ``ZeroDCEPP.from_official(path)`` reads the
official ones (from the Zero-DCE++ repository), ``tasklle.train.joint`` trains one.
"""
from pathlib import Path

from .shipped_files import SHIPPED, WEIGHTS_DIR, shipped_path  # noqa: F401  (public here too)


def load_shipped(name):
    """A shipped model by name, in eval mode on the CPU.

    'tinaface-lite-demo': a frozen :class:`tasklle.models.TinaFace` (lite
    configuration, 1 MB; ``detect`` takes (B, 3, H, W) or (3, H, W) in [0, 1]).
    'ec-zero-dce': a :class:`tasklle.models.ECZeroDCE` (what ``tasklle.darken``
    uses by default; ``model(x, exposure)`` -> (darkened, curve map)).
    'retinaface-mobilenet0.25': a frozen :class:`tasklle.models.RetinaFace`
    (WIDER FACE-trained, BatchNorm folded, 1.7 MB; ``detect`` as TinaFace's).

    Example:
        >>> detector = tasklle.models.load_shipped("tinaface-lite-demo")
        >>> dets = detector.detect(torch.rand(3, 128, 160))[0]   # (K, 5) x1 y1 x2 y2 score
    """
    shipped_path(name)  # ValueError for an unknown name, FileNotFoundError for a missing file
    if name == "ec-zero-dce":
        from .ec_zero_dce import ECZeroDCE

        return ECZeroDCE.shipped()
    if name == "retinaface-mobilenet0.25":
        from .retinaface import RetinaFace

        return RetinaFace.shipped()
    from .tinaface import TinaFace

    return TinaFace.shipped()


DETECTORS = ("tinaface-lite-demo", "retinaface-mobilenet0.25")  # the shipped names load_detector takes


def load_detector(detector=None, vedadet=None, biubug6=None):
    """The detector to use, frozen, checked against the detector protocol
    (:mod:`tasklle.models.protocol`).

    ``vedadet``: a vedadet TinaFace state_dict (the full model). ``biubug6``: a
    biubug6/Pytorch_Retinaface state_dict (``mobilenet0.25_Final.pth`` or
    ``Resnet50_Final.pth``). Otherwise ``detector``: a module following the
    protocol (used as it is), a shipped name (``DETECTORS``:
    'tinaface-lite-demo', 'retinaface-mobilenet0.25'), or a path: a tasklle
    TinaFace or RetinaFace checkpoint, or a vedadet / biubug6 state_dict
    (told apart by its keys). None: the shipped 'tinaface-lite-demo'.

    Example:
        >>> det = tasklle.models.load_detector()            # the shipped lite TinaFace
        >>> det = tasklle.models.load_detector("retinaface-mobilenet0.25")
        >>> det = tasklle.models.load_detector("runs/detector/detector.pt")  # doctest: +SKIP
    """
    import torch

    from .protocol import check_detector

    given = [n for n, v in (("detector", detector), ("vedadet", vedadet), ("biubug6", biubug6)) if v is not None]
    if len(given) > 1:
        raise ValueError(f"give one of detector, vedadet, biubug6, got {', '.join(given)}")
    if vedadet is not None:
        from .tinaface import TinaFace

        det = TinaFace.from_vedadet(vedadet)
    elif biubug6 is not None:
        from .retinaface import RetinaFace

        det = RetinaFace.from_biubug6(biubug6)
    elif detector is None:
        return load_shipped("tinaface-lite-demo")
    elif isinstance(detector, torch.nn.Module):
        det = check_detector(detector)
    elif isinstance(detector, str) and detector in DETECTORS:
        return load_shipped(detector)
    elif isinstance(detector, (str, Path)):
        det = _detector_from_file(Path(detector))
    else:
        raise TypeError(f"detector must be a module, a shipped name {DETECTORS} or a path, "
                        f"got {type(detector).__name__}")
    det.freeze()
    return det


def _detector_from_file(path):
    """A tasklle TinaFace / RetinaFace checkpoint or a vedadet / biubug6 state_dict, by its contents."""
    from ..io import load_checkpoint
    from .retinaface import RetinaFace
    from .retinaface.detector import CHECKPOINT_FORMAT as RETINAFACE_FORMAT
    from .tinaface import TinaFace
    from .tinaface.detector import CHECKPOINT_FORMAT as TINAFACE_FORMAT

    if not path.is_file():
        raise FileNotFoundError(f"detector checkpoint not found: {path}")
    ckpt = load_checkpoint(path)
    fmt = ckpt.get("format") if isinstance(ckpt, dict) else None
    if fmt == TINAFACE_FORMAT:
        return TinaFace.load(path)
    if fmt == RETINAFACE_FORMAT:
        return RetinaFace.load(path)
    sd = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    keys = [k[len("module."):] if isinstance(k, str) and k.startswith("module.") else k for k in (sd or {})]
    if any(isinstance(k, str) and k.startswith("body.") for k in keys):
        return RetinaFace.from_biubug6(path)
    if any(isinstance(k, str) and k.startswith("backbone.") for k in keys):
        return TinaFace.from_vedadet(path)
    raise ValueError(f"detector {path}: neither a tasklle TinaFace / RetinaFace checkpoint nor a vedadet "
                     f"(backbone.*) or biubug6 (body.*) state_dict")
