"""WIDER FACE parsing and datasets, the built-in demo dataset."""
from .._lazy import lazy_module

__getattr__, __dir__ = lazy_module(__name__, {
    "WiderFace": ".wider",
    "read_wider_annotations": ".wider",
    "collate": ".wider",
    "demo": ".demo",
})
