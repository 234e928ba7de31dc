"""Pure-PyTorch twins of every C kernel: the specification the tests compare
the C core against, and the path used on non-CPU devices."""
from .._lazy import lazy_module
# bound eagerly: the submodule of the same name must not shadow the function
from .curve import curve  # noqa: E402,F401
from .separable_conv import separable_conv  # noqa: E402,F401

__getattr__, __dir__ = lazy_module(__name__, {
    "zero_dce_losses": ".zerodce_loss",
    "spatial_consistency": ".zerodce_loss",
    "exposure_control": ".zerodce_loss",
    "color_constancy": ".zerodce_loss",
    "illumination_smoothness": ".zerodce_loss",
    "box_iou": ".boxes",
    "diou_loss": ".boxes",
    "nms": ".boxes",
    "assign_max_iou": ".assign",
    "deform_conv2d": ".deform_conv",
    "wider_evaluate_image": ".wider_eval",
    "wider_voc_ap": ".wider_eval",
    "wider_pr_counts": ".wider_eval",
})
