"""Evaluation: the WIDER FACE protocol (easy / medium / hard AP)."""
from .._lazy import lazy_module

__getattr__, __dir__ = lazy_module(__name__, {"wider": ".wider", "evaluate": ".wider", "plot_pr_curves": ".wider"})
