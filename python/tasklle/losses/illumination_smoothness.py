"""Illumination smoothness loss L_tvA of Zero-DCE (total variation of the curve maps).

Reference: C. Guo et al., "Zero-Reference Deep Curve Estimation for Low-Light
Image Enhancement", CVPR 2020, eq. (6); C. Li, C. Guo, C. C. Loy, TPAMI 2021.
Computed as the official code's ``L_TV`` does.
"""
import torch
from torch import nn

from ..ops.zerodce_loss import zero_dce_losses


def illumination_smoothness(curve_maps, impl="auto"):
    r"""Total variation of the curve parameter maps, official normalisation.

    ``2 * (sum dA_h^2 / ((H-1)*W) + sum dA_w^2 / (H*(W-1))) / B``, sums over
    batch, channels and positions (channels are not counted in the divisors).
    A direction with a single row (column) contributes 0 (the official code
    would divide 0 by 0). Zero-DCE++ applies it to the full-resolution map.

    Args:
        curve_maps: (B, C, H, W) maps A (C = 3 for Zero-DCE++, 24 for Zero-DCE).
        impl: 'auto' (C on CPU), 'c' or 'reference'.

    Returns:
        A scalar tensor.

    Example:
        >>> illumination_smoothness(torch.zeros(1, 3, 4, 4)).item()
        0.0
    """
    return zero_dce_losses(None, None, curve_maps, terms=("tv",), impl=impl)[1]["tv"]


class IlluminationSmoothnessLoss(nn.Module):
    """Module form of :func:`illumination_smoothness`.

    Shape:
        - curve_maps: (B, C, H, W)
        - output: scalar
    """

    def __init__(self, impl="auto"):
        super().__init__()
        self.impl = impl

    def forward(self, curve_maps: torch.Tensor) -> torch.Tensor:
        return illumination_smoothness(curve_maps, self.impl)
