"""Zero-DCE's non-reference losses (Guo et al., CVPR 2020; Li et al., TPAMI 2021),
one per module, each a function and an nn.Module.

The functions are bound here eagerly: each module has the same name as its
function, and a lazily bound name would be shadowed by the submodule as soon
as anything imported it."""
from .color_constancy import ColorConstancyLoss, color_constancy
from .exposure_control import ExposureControlLoss, exposure_control
from .illumination_smoothness import IlluminationSmoothnessLoss, illumination_smoothness
from .spatial_consistency import SpatialConsistencyLoss, spatial_consistency
from .zero_dce_loss import ZeroDCELoss, zero_dce_loss

__all__ = [
    "spatial_consistency", "SpatialConsistencyLoss", "exposure_control", "ExposureControlLoss",
    "color_constancy", "ColorConstancyLoss", "illumination_smoothness", "IlluminationSmoothnessLoss",
    "zero_dce_loss", "ZeroDCELoss",
]
