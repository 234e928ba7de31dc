"""Spatial consistency loss L_spa of Zero-DCE.

Reference: C. Guo et al., "Zero-Reference Deep Curve Estimation for Low-Light
Image Enhancement", CVPR 2020, eq. (3); C. Li, C. Guo, C. C. Loy, "Learning to
Enhance Low-Light Image via Zero-Reference Deep Curve Estimation", TPAMI 2021.
Computed as the official code does.
"""
import torch
from torch import nn

from ..ops.zerodce_loss import zero_dce_losses


def spatial_consistency(enhanced, original, pool_size=4, impl="auto"):
    r"""Spatial consistency between the enhanced image and its input.

    Both images are averaged over channels and pooled in ``pool_size`` x
    ``pool_size`` cells (stride ``pool_size``, floor: trailing rows/columns
    that do not fill a cell are ignored, like ``AvgPool2d``). For every cell and
    each of its 4 neighbours (a neighbour outside the grid counts as 0) the
    difference ``D = cell - neighbour`` is taken in both images; the loss is the
    mean over (B, H/pool, W/pool) of ``sum over directions (D_I - D_Y)^2``.

    Args:
        enhanced: (B, 3, H, W) enhanced image Y.
        original: (B, 3, H, W) input image I, H, W >= pool_size. Gradients flow
            to it too if it requires them (the official training treats it as a
            constant).
        pool_size: cell size (official: 4).
        impl: 'auto' (C on CPU), 'c' or 'reference'.

    Returns:
        A scalar tensor.

    Example:
        >>> y, i = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
        >>> spatial_consistency(y, i).shape
        torch.Size([])
    """
    return zero_dce_losses(enhanced, original, None, spa_pool=pool_size, terms=("spa",), impl=impl)[1]["spa"]


class SpatialConsistencyLoss(nn.Module):
    """Module form of :func:`spatial_consistency`.

    Shape:
        - enhanced, original: (B, 3, H, W)
        - output: scalar
    """

    def __init__(self, pool_size=4, impl="auto"):
        super().__init__()
        self.pool_size = pool_size
        self.impl = impl

    def forward(self, enhanced: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        return spatial_consistency(enhanced, original, self.pool_size, self.impl)

    def extra_repr(self):
        return f"pool_size={self.pool_size}"
