"""Small building blocks shared by the TinaFace parts."""
import torch.nn as nn


def group_norm(channels, groups):
    """GroupNorm with ``groups`` groups (eps 1e-5, affine), checked: groups must divide channels."""
    if channels % groups:
        raise ValueError(f"GroupNorm: {groups} groups do not divide {channels} channels")
    return nn.GroupNorm(groups, channels)


class ConvGN(nn.Module):
    """conv (no bias) -> GroupNorm -> optional ReLU: mmcv's ``ConvModule`` with
    a GN norm, whose state-dict keys are ``conv.weight``, ``gn.weight``,
    ``gn.bias``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, gn_groups=32, relu=False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.gn = group_norm(out_channels, gn_groups)
        self.relu = relu

    def forward(self, x):
        x = self.gn(self.conv(x))
        return x.relu() if self.relu else x
