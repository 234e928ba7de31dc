"""The method's experiments, one module each: ``four_groups`` (Table 4.1: the
four image groups), ``ratio_sweep`` (Table 4.2: the W_up:W_down sweep) and
``real_dark`` (the enhancers on real dark DARK FACE images; import it as
``tasklle.experiments.real_dark``). ``quality_stage`` adds the image quality of
every group to the first two.
Each module's ``run(root, out, ...)`` runs it; ``markdown(results)`` renders
its table. The report's own numbers are ``four_groups.REFERENCE_TABLE_4_1``
and ``ratio_sweep.REFERENCE_TABLE_4_2``; :func:`reference_tables` renders both
(the README shows that text). :func:`budget` gives the run sizes of the
built-in runs ('tiny', 'small', 'default', 'long')."""
from . import four_groups, ratio_sweep
from .budgets import BUDGETS, budget

__all__ = ["four_groups", "ratio_sweep", "reference_tables", "budget", "BUDGETS"]


def reference_tables():
    """Markdown of the method's Tables 4.1 and 4.2 (AP on darkened WIDER FACE val, full TinaFace)."""
    from ..eval.tables import ap_table

    t1 = four_groups.REFERENCE_TABLE_4_1
    names = {"low-light": "low-light", "zero-dce++": "Zero-DCE++ (L_up only)", "joint": "joint training (2:1)",
             "original": "original"}
    t2 = ratio_sweep.REFERENCE_TABLE_4_2
    return "\n".join([
        "Table 4.1, the four image groups:", "",
        ap_table([(names[k], v) for k, v in t1.items()], "group"), "",
        "Table 4.2, joint training with W_up:W_down (1:0 is Zero-DCE++ with L_up only; the report prints "
        "0.9380 for 3:2 hard, out of line with every other row):", "",
        ap_table([(k, dict(zip(("easy", "medium", "hard"), v))) for k, v in t2.items()], "W_up:W_down"), ""])
