"""Training loops: Zero-DCE/Zero-DCE++ (upstream), the darkener, the detector and joint training."""
from .._lazy import lazy_module

# bound eagerly: the submodule of the same name must not shadow the function
from .joint import joint  # noqa: E402,F401

__getattr__, __dir__ = lazy_module(__name__, {
    "train_upstream": ".upstream",
    "train_darkener": ".darkener",
    "train_detector": ".detector",
})
