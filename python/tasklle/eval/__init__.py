"""Evaluation: the WIDER FACE protocol (easy / medium / hard AP)."""
import importlib

from .._lazy import lazy_module

_names = {
    "evaluate": ".wider",
    "plot_pr_curves": ".wider",
    "load_ground_truth": ".wider",
    "write_ground_truth": ".wider",
    "read_predictions": ".wider",
    "write_predictions": ".wider",
    "GroundTruth": ".wider",
}
_getattr, _dir = lazy_module(__name__, _names)


def __getattr__(name):
    # `tasklle.eval.wider` is the submodule itself (lazy_module returns attributes of modules)
    if name == "wider":
        return importlib.import_module(".wider", __name__)
    return _getattr(name)


def __dir__():
    return sorted([*_dir(), "wider"])
