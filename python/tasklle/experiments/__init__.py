"""The method's experiments: the four image groups (Table 4.1) and the loss-ratio sweep (Table 4.2)."""
from .._lazy import lazy_module

__getattr__, __dir__ = lazy_module(__name__, {"four_groups": ".four_groups", "ratio_sweep": ".ratio_sweep"})
