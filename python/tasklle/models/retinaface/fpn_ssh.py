"""FPN and SSH context modules of RetinaFace (biubug6 ``models/net.py``).

Both use LeakyReLU(0.1) when out_channels <= 64 (mobilenet0.25) and ReLU
otherwise (ResNet-50, 256 channels), as biubug6 chooses.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import conv_bn, conv_bn1x1, conv_bn_no_relu


def leaky_for(out_channels):
    return 0.1 if out_channels <= 64 else 0.0


class FPN(nn.Module):
    """Three 1x1 laterals (``output1..3``: conv, BN, act); top-down: level 3
    upsampled (nearest, to level 2's size) and added to lateral 2, then the
    3x3 ``merge2``; that upsampled and added to lateral 1, then ``merge1``.
    Level 3 gets no merge conv. Returns [P1, P2, P3] (strides 8, 16, 32)."""

    def __init__(self, in_channels_list, out_channels, folded=False):
        super().__init__()
        leaky = leaky_for(out_channels)
        self.output1 = conv_bn1x1(in_channels_list[0], out_channels, 1, leaky, folded)
        self.output2 = conv_bn1x1(in_channels_list[1], out_channels, 1, leaky, folded)
        self.output3 = conv_bn1x1(in_channels_list[2], out_channels, 1, leaky, folded)
        self.merge1 = conv_bn(out_channels, out_channels, 1, leaky, folded)
        self.merge2 = conv_bn(out_channels, out_channels, 1, leaky, folded)

    def forward(self, feats):
        o1, o2, o3 = self.output1(feats[0]), self.output2(feats[1]), self.output3(feats[2])
        o2 = self.merge2(o2 + F.interpolate(o3, size=o2.shape[-2:], mode="nearest"))
        o1 = self.merge1(o1 + F.interpolate(o2, size=o1.shape[-2:], mode="nearest"))
        return [o1, o2, o3]


class SSH(nn.Module):
    """SSH context module: concat of a 3x3 branch (C/2), a "5x5" (two 3x3,
    C/4) and a "7x7" (three 3x3 sharing the first with the 5x5, C/4), ReLU
    after the concat; no activation on the branches' last convs.
    (B, C_in, h, w) -> (B, C, h, w)."""

    def __init__(self, in_channel, out_channel, folded=False):
        super().__init__()
        if out_channel % 4:
            raise ValueError(f"SSH: out_channel must be a multiple of 4, got {out_channel}")
        leaky = leaky_for(out_channel)
        self.conv3X3 = conv_bn_no_relu(in_channel, out_channel // 2, 1, folded)
        self.conv5X5_1 = conv_bn(in_channel, out_channel // 4, 1, leaky, folded)
        self.conv5X5_2 = conv_bn_no_relu(out_channel // 4, out_channel // 4, 1, folded)
        self.conv7X7_2 = conv_bn(out_channel // 4, out_channel // 4, 1, leaky, folded)
        self.conv7x7_3 = conv_bn_no_relu(out_channel // 4, out_channel // 4, 1, folded)  # lower-case x: biubug6's key

    def forward(self, x):
        c5_1 = self.conv5X5_1(x)
        out = torch.cat([self.conv3X3(x), self.conv5X5_2(c5_1), self.conv7x7_3(self.conv7X7_2(c5_1))], dim=1)
        return out.relu()


class Head(nn.Module):
    """1x1 conv (with bias) predicting ``k`` values for each of ``anchors``
    anchors a location: (B, C, h, w) -> (B, h * w * anchors, k), locations
    row-major, the anchors of a location consecutive (biubug6's
    ClassHead / BboxHead / LandmarkHead; key ``conv1x1``)."""

    def __init__(self, in_channels, k, anchors=2):
        super().__init__()
        self.k = k
        self.conv1x1 = nn.Conv2d(in_channels, anchors * k, 1)

    def forward(self, x):
        out = self.conv1x1(x).permute(0, 2, 3, 1)
        return out.reshape(out.shape[0], -1, self.k)
