"""WIDER FACE formats (``wider_format``), datasets, transforms, the built-in demo dataset;
``darkface``: the DARK FACE release tree (real dark images, ``DarkFace(root)``).

``builtin()`` the built-in dataset's root (built once), ``builtin_split(split)``
one of its splits as a dataset, ``WiderFace(root, split)`` any WIDER-format
split, ``list_split(root, split, max_images)`` its images in a fixed order;
``sampling`` the deterministic epoch orders and batches the trainers draw."""
from .._lazy import lazy_module

# submodules are returned as modules (the map gives names defined inside modules)
_SUBMODULES = ("darkface", "demo", "sampling", "transforms", "wider", "wider_format")
__getattr__, __dir__ = lazy_module(__name__, {
    "WiderFace": ".wider",
    "read_wider_annotations": ".wider_format",
    "collate": ".wider",
    "demo": ".demo",
    "builtin": ".demo",
    "builtin_split": ".demo",
    "list_split": ".splits",
    "transforms": ".transforms",
    "wider": ".wider",
    "wider_format": ".wider_format",
    "TrainTransform": ".transforms",
    "TestTransform": ".transforms",
    "JointBatches": ".sampling",
    "epoch_order": ".sampling",
}, submodules=_SUBMODULES)
