"""tasklle: task-oriented low-light enhancement.

Darken a detection dataset (EC-Zero-DCE + sensor noise), enhance it with
Zero-DCE / Zero-DCE++, train the enhancer jointly with a frozen face
detector's loss (TinaFace), and evaluate every image group on WIDER FACE.
Hot paths run in a C core (tasklle._C); every C kernel has a pure-PyTorch
twin in tasklle.reference.
"""
from ._lazy import lazy_module
from ._threads import get_num_threads, set_num_threads, show_config

__version__ = "0.1.0"

_LAZY = {
    "enhance": ".enhance",
    "darken": ".darken",
    "darken_dataset": ".darken",
    "ops": ".ops",
    "reference": ".reference",
    "losses": ".losses",
    "models": ".models",
    "data": ".data",
    "eval": ".eval",
    "train": ".train",
    "experiments": ".experiments",
    "io": ".io",
    "noise": ".noise",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        target = _LAZY[name]
        module = importlib.import_module(target, __name__)
        # a subpackage is returned as itself, a function by its name
        return module if target.endswith("." + name) else getattr(module, name)
    raise AttributeError(f"module 'tasklle' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))


__all__ = ["get_num_threads", "set_num_threads", "show_config", *sorted(_LAZY)]
del lazy_module
