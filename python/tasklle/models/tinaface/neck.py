"""Inception neck of TinaFace (vedadet ``Inception`` with ``share=True``):
one set of weights applied to every pyramid level, all convs
3x3 with GN and no bias:

    a = GN(conv C -> C/2)(x)
    t = ReLU(GN(conv C -> C/4)(x))
    b = GN(conv C/4 -> C/4)(t)
    u = ReLU(GN(conv C/4 -> C/4)(t))
    c = GN(conv C/4 -> C/4)(u)
    out = ReLU(cat[a, b, c])          (C channels)

Keys: ``level_convs.0.{0-4}.{conv.weight,gn.*}`` in the order a, t, b, u, c.
"""
import torch
import torch.nn as nn

from .layers import ConvGN


class Inception(nn.Module):
    """inputs: tuple of maps (B, C, h_l, w_l) -> tuple of maps of the same shapes."""

    def __init__(self, channels=256, gn_groups=32):
        super().__init__()
        if channels % 4:
            raise ValueError(f"Inception: channels must be a multiple of 4, got {channels}")
        c2, c4 = channels // 2, channels // 4
        convs = nn.ModuleList([
            ConvGN(channels, c2, 3, padding=1, gn_groups=gn_groups),
            ConvGN(channels, c4, 3, padding=1, gn_groups=gn_groups, relu=True),
            ConvGN(c4, c4, 3, padding=1, gn_groups=gn_groups),
            ConvGN(c4, c4, 3, padding=1, gn_groups=gn_groups, relu=True),
            ConvGN(c4, c4, 3, padding=1, gn_groups=gn_groups),
        ])
        self.level_convs = nn.ModuleList([convs])
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)

    def forward_single(self, x):
        a_conv, t_conv, b_conv, u_conv, c_conv = self.level_convs[0]
        t = t_conv(x)
        return torch.cat([a_conv(x), b_conv(t), c_conv(u_conv(t))], dim=1).relu()

    def forward(self, inputs):
        return tuple(self.forward_single(x) for x in inputs)
