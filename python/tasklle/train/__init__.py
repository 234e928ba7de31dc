"""Training loops: Zero-DCE/Zero-DCE++ (upstream), the darkener, the detector and joint training."""
from .._lazy import lazy_module

__getattr__, __dir__ = lazy_module(__name__, {
    "train_upstream": ".upstream",
    "train_darkener": ".darkener",
    "train_detector": ".detector",
    "joint": ".joint",
})
