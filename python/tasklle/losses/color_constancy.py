"""Colour constancy loss L_col of Zero-DCE.

Reference: C. Guo et al., "Zero-Reference Deep Curve Estimation for Low-Light
Image Enhancement", CVPR 2020, eq. (5); C. Li, C. Guo, C. C. Loy, TPAMI 2021.
Computed as the official code does.
"""
import torch
from torch import nn

from ..ops.zerodce_loss import zero_dce_losses


def color_constancy(enhanced, impl="auto"):
    r"""Grey-world colour constancy.

    Per image the channel means ``mr, mg, mb`` over H x W give
    ``k = sqrt((mr-mg)^4 + (mr-mb)^4 + (mb-mg)^4)``; the loss is the batch
    mean of k. Where the three means are equal the square root has no
    derivative: we use gradient 0 there, the continuous extension
    (``|dk/dm| <= 2 max|m_i - m_j|`` tends to 0); the official code would give NaN.

    Args:
        enhanced: (B, 3, H, W) image.
        impl: 'auto' (C on CPU), 'c' or 'reference'.

    Returns:
        A scalar tensor.

    Example:
        >>> color_constancy(torch.full((2, 3, 8, 8), 0.3)).item()
        0.0
    """
    return zero_dce_losses(enhanced, None, None, terms=("col",), impl=impl)[1]["col"]


class ColorConstancyLoss(nn.Module):
    """Module form of :func:`color_constancy`.

    Shape:
        - enhanced: (B, 3, H, W)
        - output: scalar
    """

    def __init__(self, impl="auto"):
        super().__init__()
        self.impl = impl

    def forward(self, enhanced: torch.Tensor) -> torch.Tensor:
        return color_constancy(enhanced, self.impl)
