"""Models: DCE-Net (Zero-DCE), Zero-DCE++, the exposure-conditioned darkeners (ours and
LEDNet's), TinaFace and RetinaFace.

``load_shipped(name)`` loads the weights shipped in the package ('tinaface-lite-demo',
'ec-zero-dce', 'retinaface-mobilenet0.25'); ``load_detector(detector=None, vedadet=None,
biubug6=None)`` resolves a detector (a shipped name, a path, or a module following the
detector protocol of ``tasklle.models.protocol``; default: the shipped lite TinaFace);
``TinaFace.shipped()``, ``RetinaFace.shipped()`` and ``ECZeroDCE.shipped()`` are the same
by class (the names and files: ``shipped_files``, a leaf the classes and the resolver both
import)."""
from .._lazy import lazy_module

__getattr__, __dir__ = lazy_module(__name__, {
    "DCENet": ".zero_dce",
    "ZeroDCEPP": ".zero_dce_pp",
    "ECZeroDCE": ".ec_zero_dce",
    "ConditionZeroDCE": ".lednet_darkener",
    "TinaFace": ".tinaface",
    "RetinaFace": ".retinaface",
    "load_shipped": ".shipped",
    "shipped_path": ".shipped_files",
    "load_detector": ".shipped",
    "Detector": ".protocol",
    "check_detector": ".protocol",
})
