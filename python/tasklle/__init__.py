"""tasklle: task-oriented low-light enhancement.

Darken a detection dataset (EC-Zero-DCE + sensor noise), enhance it with
Zero-DCE / Zero-DCE++, train the enhancer jointly with a frozen face
detector's loss (TinaFace), and evaluate every image group on WIDER FACE.
Hot paths run in a C core (tasklle._C); every C kernel has a pure-PyTorch
twin in tasklle.reference.
"""
from ._alloc import set_fast_alloc
from ._threads import get_num_threads, set_num_threads, show_config

__version__ = "0.1.0"

# Loaded on first use so that `import tasklle` stays fast in a notebook.
_SUBPACKAGES = ("ops", "reference", "losses", "models", "data", "eval", "train", "experiments", "io", "noise")
_FUNCTIONS = {"enhance": ".enhancement", "darken": ".darkening", "darken_dataset": ".darkening"}


def __getattr__(name):
    import importlib

    if name in _SUBPACKAGES:
        return importlib.import_module("." + name, __name__)
    if name in _FUNCTIONS:
        value = getattr(importlib.import_module(_FUNCTIONS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tasklle' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBPACKAGES) + list(_FUNCTIONS))


__all__ = ["get_num_threads", "set_num_threads", "set_fast_alloc", "show_config", *_SUBPACKAGES, *_FUNCTIONS]
