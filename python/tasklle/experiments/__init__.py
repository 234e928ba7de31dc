"""The method's experiments, one module each: ``four_groups`` (Table 4.1: the
four image groups) and ``ratio_sweep`` (Table 4.2: the W_up:W_down sweep).
Each module's ``run(root, out, ...)`` runs it; ``markdown(results)`` renders
its table."""
from . import four_groups, ratio_sweep

__all__ = ["four_groups", "ratio_sweep"]
