"""Exposure control loss L_exp of Zero-DCE.

Reference: C. Guo et al., "Zero-Reference Deep Curve Estimation for Low-Light
Image Enhancement", CVPR 2020, eq. (4); C. Li, C. Guo, C. C. Loy, TPAMI 2021.
The official code squares the distance (the paper writes an absolute value):
we follow the code.
"""
import torch
from torch import nn

from ..ops.zerodce_loss import zero_dce_losses


def exposure_control(enhanced, exposure=0.6, patch_size=16, impl="auto"):
    r"""Mean squared distance of local exposure to a target level.

    The channel mean of ``enhanced`` is average-pooled in ``patch_size`` x
    ``patch_size`` patches (floor, like ``AvgPool2d``) and the loss is
    ``mean over (B, H/p, W/p) of (pooled - E)^2``.

    Args:
        enhanced: (B, 3, H, W) image, H, W >= patch_size.
        exposure: target E: a number (official: 0.6) or a (B,) tensor of
            per-image targets (a gradient flows to it if it requires one).
        patch_size: patch size (official: 16).
        impl: 'auto' (C on CPU), 'c' or 'reference'.

    Returns:
        A scalar tensor.

    Example:
        >>> exposure_control(torch.full((1, 3, 16, 16), 0.5)).item()  # (0.5 - 0.6)^2
        0.01...
    """
    return zero_dce_losses(enhanced, None, None, exposure=exposure, exp_pool=patch_size, terms=("exp",),
                           impl=impl)[1]["exp"]


class ExposureControlLoss(nn.Module):
    """Module form of :func:`exposure_control`; ``forward(enhanced, exposure=None)``
    uses the constructor's target unless one is given.

    Shape:
        - enhanced: (B, 3, H, W); exposure: number or (B,)
        - output: scalar
    """

    def __init__(self, exposure=0.6, patch_size=16, impl="auto"):
        super().__init__()
        self.exposure = exposure
        self.patch_size = patch_size
        self.impl = impl

    def forward(self, enhanced: torch.Tensor, exposure=None) -> torch.Tensor:
        e = self.exposure if exposure is None else exposure
        return exposure_control(enhanced, e, self.patch_size, self.impl)

    def extra_repr(self):
        e = self.exposure if not isinstance(self.exposure, torch.Tensor) else "tensor"
        return f"exposure={e}, patch_size={self.patch_size}"
