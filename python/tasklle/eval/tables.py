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


def ap_table(results, first_col="group"):
    """Several groups' AP side by side.

    Args:
        results: ``{label: ap}`` or ``[(label, ap)]`` where ``ap`` is a
            ``tasklle.eval.wider.evaluate`` result or any mapping with 'easy',
            'medium', 'hard' (a missing, None or NaN value shows as n/a).
        first_col: the heading of the label column.

    Returns:
        :class:`APTable`: the Markdown table (a str), with ``.rows`` =
        ``[{first_col: label, 'easy': float or None, 'medium': ..., 'hard': ...}]``.

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
        rows.append({first_col: str(label), **{k: _ap(ap.get(k)) for k in SETTINGS}})
    lines = [f"| {first_col} | easy | medium | hard |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r[first_col]} | " + " | ".join(
            "n/a" if r[k] is None else f"{r[k]:.4f}" for k in SETTINGS) + " |")
    table = APTable("\n".join(lines))
    table.rows = rows
    return table
