"""AP of several image groups side by side: :func:`ap_table`."""
import math
from collections.abc import Mapping

SETTINGS = ("easy", "medium", "hard")


class APTable(str):
    """The Markdown text of an AP table (a ``str``: print it, join it, write it)
    that also carries ``rows``, one dict per group (``pandas.DataFrame(t.rows)``),
    and renders as a table in Jupyter."""

    rows = ()

    def _repr_markdown_(self):
        return str(self)


def _ap(value):
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _cell(row, k):
    if row[k] is None:
        return "n/a"
    ci = row.get(f"{k}_ci")
    if ci is None:
        return f"{row[k]:.4f}"
    lo, hi = ("n/a" if v is None else f"{v:.3f}" for v in ci)
    return f"{row[k]:.4f} [{lo}, {hi}]"


def ap_table(results, first_col="group", intervals=None):
    """Several groups' AP side by side.

    Args:
        results: ``{label: ap}`` or ``[(label, ap)]`` where ``ap`` is a
            ``tasklle.eval.wider.evaluate`` result or any mapping with 'easy',
            'medium', 'hard' (a missing, None or NaN value shows as n/a).
        first_col: the heading of the label column.
        intervals: optional ``{label: {setting: (lo, hi)}}`` (e.g. from
            ``tasklle.eval.intervals.bootstrap``): each AP is shown with its
            interval, ``0.4001 [0.371, 0.430]``; labels without one show the AP alone.

    Returns:
        :class:`APTable`: the Markdown table (a str), with ``.rows`` =
        ``[{first_col: label, 'easy': float or None, 'medium': ..., 'hard': ...}]``
        (with ``intervals``, also ``'easy_ci': [lo, hi] or None``, ...).

    Example:
        >>> t = ap_table({"dark": {"easy": 0.41, "medium": 0.54, "hard": 0.57}})
        >>> print(t)
        | group | easy | medium | hard |
        |---|---|---|---|
        | dark | 0.4100 | 0.5400 | 0.5700 |
        >>> t.rows
        [{'group': 'dark', 'easy': 0.41, 'medium': 0.54, 'hard': 0.57}]
    """
    items = list(results.items()) if isinstance(results, Mapping) else list(results)
    rows = []
    for i, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) != 2 or not isinstance(item[1], Mapping):
            raise ValueError(f"results[{i}] must be (label, mapping with easy/medium/hard), got {item!r}")
        label, ap = item
        row = {first_col: str(label), **{k: _ap(ap.get(k)) for k in SETTINGS}}
        if intervals is not None:
            ci = intervals.get(label) if isinstance(intervals, Mapping) else None
            if ci is not None and not isinstance(ci, Mapping):
                raise ValueError(f"intervals[{label!r}] must map settings to (lo, hi), got {ci!r}")
            for k in SETTINGS:
                pair = None if ci is None else ci.get(k)
                row[f"{k}_ci"] = None if pair is None else [_ap(pair[0]), _ap(pair[1])]
        rows.append(row)
    lines = [f"| {first_col} | easy | medium | hard |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r[first_col]} | " + " | ".join(_cell(r, k) for k in SETTINGS) + " |")
    table = APTable("\n".join(lines))
    table.rows = rows
    return table
