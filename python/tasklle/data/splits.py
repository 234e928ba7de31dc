"""The images of a split, as (index, event, name), without decoding them."""
import numpy as np


def list_split(root, split="val", max_images=None):
    """The images of a WIDER-format split as ``[(index, event, name)]`` in the
    annotation order (``index`` into ``WiderFace(root, split)``); with
    ``max_images``, that many of them drawn by a fixed seeded shuffle (the same
    subset on every call), still in annotation order.

    Example:
        >>> images = tasklle.data.list_split(tasklle.data.builtin(), "val", max_images=10)
        >>> images[0]            # doctest: +SKIP
        (3, '0--Crowd', '0_Crowd_demo_val_3')
    """
    from .wider import WiderFace

    ds = WiderFace(root, split=split)
    entries = entries_of(ds)
    if max_images is not None and max_images < len(entries):
        rng = np.random.default_rng(12345)
        pick = sorted(rng.choice(len(entries), size=max_images, replace=False).tolist())
        entries = [entries[i] for i in pick]
    return entries


def entries_of(ds):
    """[(index, event, name)] of a WiderFace dataset, without decoding images when possible."""
    for attr in ("entries", "records", "annotations", "items"):
        recs = getattr(ds, attr, None)
        if isinstance(recs, (list, tuple)) and len(recs) == len(ds):
            out = []
            for i, r in enumerate(recs):
                ev = r.get("event") if isinstance(r, dict) else getattr(r, "event", None)
                nm = r.get("name") if isinstance(r, dict) else getattr(r, "name", None)
                if ev is None or nm is None:
                    break
                out.append((i, ev, nm))
            else:
                return out
    return [(i, ds[i]["event"], ds[i]["name"]) for i in range(len(ds))]
