"""Zero-DCE's non-reference losses (Guo et al., CVPR 2020; Li et al., TPAMI 2021),
one per module, each a function and an nn.Module."""
from .._lazy import lazy_module

__getattr__, __dir__ = lazy_module(__name__, {
    "spatial_consistency": ".spatial_consistency",
    "SpatialConsistencyLoss": ".spatial_consistency",
    "exposure_control": ".exposure_control",
    "ExposureControlLoss": ".exposure_control",
    "color_constancy": ".color_constancy",
    "ColorConstancyLoss": ".color_constancy",
    "illumination_smoothness": ".illumination_smoothness",
    "IlluminationSmoothnessLoss": ".illumination_smoothness",
    "zero_dce_loss": ".zero_dce_loss",
    "ZeroDCELoss": ".zero_dce_loss",
})
