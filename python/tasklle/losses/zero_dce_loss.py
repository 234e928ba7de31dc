"""The full non-reference objective of Zero-DCE / Zero-DCE++ (L_up in the method).

Reference: C. Guo et al., "Zero-Reference Deep Curve Estimation for Low-Light
Image Enhancement", CVPR 2020; C. Li, C. Guo, C. C. Loy, "Learning to Enhance
Low-Light Image via Zero-Reference Deep Curve Estimation", TPAMI 2021.
Weights of the official Zero-DCE++ training: spa 1, exp 10, col 5, tv 1600
(Zero-DCE used tv 200).
"""
import torch
from torch import nn

from ..ops.zerodce_loss import zero_dce_losses
from ..reference.zerodce_loss import DEFAULT_WEIGHTS


def zero_dce_loss(enhanced, original, curve_maps, exposure=0.6, weights=None, spa_pool=4, exp_pool=16,
                  impl="auto"):
    r"""``total = w_spa L_spa + w_exp L_exp + w_col L_col + w_tv L_tvA`` and its terms.

    All four terms come from one fused C call on CPU (forward and the gradient
    pieces in one read of each input, see :mod:`tasklle.ops.zerodce_loss`).

    Args:
        enhanced: (B, 3, H, W) enhanced image Y, H, W >= max(spa_pool, exp_pool).
        original: (B, 3, H, W) input image I (a constant for the official
            training; a gradient flows to it if it requires one).
        curve_maps: (B, C, Ha, Wa) curve maps A (any C, Ha, Wa; batch B).
        exposure: target E of L_exp: a number (0.6 for enhancement) or a (B,)
            tensor of per-image targets (the darkener's training).
        weights: dict overriding ``{'spa': 1, 'exp': 10, 'col': 5, 'tv': 1600}``.
        spa_pool, exp_pool: pool sizes of L_spa and L_exp.
        impl: 'auto' (C on CPU, reference elsewhere), 'c' or 'reference'.

    Returns:
        ``(total, terms)``: scalar tensor and dict ``{'spa', 'exp', 'col', 'tv'}``
        of unweighted scalar tensors.

    Example:
        >>> y = torch.rand(2, 3, 32, 32, requires_grad=True)
        >>> total, terms = zero_dce_loss(y, torch.rand(2, 3, 32, 32), torch.zeros(2, 3, 32, 32))
        >>> sorted(terms)
        ['col', 'exp', 'spa', 'tv']
    """
    return zero_dce_losses(enhanced, original, curve_maps, exposure=exposure, weights=weights, spa_pool=spa_pool,
                           exp_pool=exp_pool, impl=impl)


class ZeroDCELoss(nn.Module):
    """Module form of :func:`zero_dce_loss`; ``forward(enhanced, original,
    curve_maps, exposure=None)`` uses the constructor's exposure unless given.

    Shape:
        - enhanced, original: (B, 3, H, W); curve_maps: (B, C, Ha, Wa)
        - output: (scalar, dict of 4 scalars)
    """

    def __init__(self, exposure=0.6, weights=None, spa_pool=4, exp_pool=16, impl="auto"):
        super().__init__()
        self.exposure = exposure
        self.weights = dict(DEFAULT_WEIGHTS, **(weights or {}))
        self.spa_pool = spa_pool
        self.exp_pool = exp_pool
        self.impl = impl

    def forward(self, enhanced: torch.Tensor, original: torch.Tensor, curve_maps: torch.Tensor, exposure=None):
        e = self.exposure if exposure is None else exposure
        return zero_dce_loss(enhanced, original, curve_maps, e, self.weights, self.spa_pool, self.exp_pool,
                             self.impl)

    def extra_repr(self):
        return f"weights={self.weights}, spa_pool={self.spa_pool}, exp_pool={self.exp_pool}"
