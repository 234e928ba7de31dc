"""The shipped models by name and the detector resolver (one layer above the classes).

The names and files are in :mod:`tasklle.models.shipped_files` (``SHIPPED``,
``shipped_path``, re-exported here); each class loads its own file
(``TinaFace.shipped()``, ``ECZeroDCE.shipped()``); this module picks the class
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

    Example:
        >>> detector = tasklle.models.load_shipped("tinaface-lite-demo")
        >>> dets = detector.detect(torch.rand(3, 128, 160))[0]   # (K, 5) x1 y1 x2 y2 score
    """
    shipped_path(name)  # ValueError for an unknown name, FileNotFoundError for a missing file
    if name == "ec-zero-dce":
        from .ec_zero_dce import ECZeroDCE

        return ECZeroDCE.shipped()
    from .tinaface import TinaFace

    return TinaFace.shipped()


def load_detector(detector=None, vedadet=None):
    """The detector to use, frozen: ``vedadet`` (a vedadet TinaFace state_dict,
    full model) when given, else ``detector`` (a module, used as it is; or a
    path: a tasklle TinaFace checkpoint or, failing that, a vedadet
    state_dict), else the shipped 'tinaface-lite-demo'.

    Example:
        >>> det = tasklle.models.load_detector()            # the shipped lite detector
        >>> det = tasklle.models.load_detector("runs/detector/detector.pt")  # doctest: +SKIP
    """
    import torch

    from .tinaface import TinaFace

    if vedadet is not None:
        det = TinaFace.from_vedadet(vedadet)
    elif detector is None:
        return TinaFace.shipped()
    elif isinstance(detector, torch.nn.Module):
        det = detector
    else:
        path = Path(detector)
        if not path.is_file():
            raise FileNotFoundError(f"detector checkpoint not found: {path}")
        try:
            det = TinaFace.load(path)
        except (ValueError, KeyError, RuntimeError) as first:
            try:
                det = TinaFace.from_vedadet(path)
            except Exception:
                raise ValueError(f"detector {path}: neither a tasklle TinaFace checkpoint nor a vedadet "
                                 f"state_dict ({first})") from first
    det.freeze()
    return det
