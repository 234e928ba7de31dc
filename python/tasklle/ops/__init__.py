"""Torch-facing ops with autograd (and the NumPy-facing WIDER PR accumulation).
CPU float32/float64 tensors run in the C core; tensors on any other device run
the pure-PyTorch twin in ``tasklle.reference`` with the same semantics. One
rule picks the path for every op: ``tasklle.ops._common.use_c``."""
from .._lazy import lazy_module
# bound eagerly: the submodule of the same name must not shadow the function
from .curve import curve, curve_upsampled  # noqa: E402,F401
from .separable_conv import separable_conv  # noqa: E402,F401

__getattr__, __dir__ = lazy_module(__name__, {
    "zero_dce_losses": ".zerodce_loss",
    "box_iou": ".boxes",
    "diou_loss": ".boxes",
    "nms": ".boxes",
    "assign_max_iou": ".assign",
    "NEGATIVE": ".assign",
    "IGNORED": ".assign",
    "deform_conv2d": ".deform_conv",
    "DeformConv2d": ".deform_conv",
    "wider_pr_counts": ".wider_eval",
})
