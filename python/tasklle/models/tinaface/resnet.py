"""ResNet backbone of TinaFace: ResNet-50 ("pytorch" style: the stride sits
on the 3x3 conv), GroupNorm everywhere, deformable convolution v1 replacing
conv2 of every block in the stages marked ``dcn_stages``.

State-dict keys follow mmdet's ResNet so vedadet checkpoints load by name:
``conv1.weight``, ``gn1.*``, ``layer{s}.{i}.conv{1,2,3}.weight``,
``layer{s}.{i}.gn{1,2,3}.*``, ``layer{s}.0.downsample.{0.weight,1.weight,1.bias}``,
``layer{s}.{i}.conv2.conv_offset.{weight,bias}`` in DCN stages.
"""
import torch.nn as nn

from ...ops.deform_conv import DeformConv2d
from .layers import group_norm


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride here; deformable in DCN stages) -> 1x1 (x expansion),
    GN after each conv, ReLU after the first two and after the residual sum.

    x (B, inplanes, H, W) -> (B, planes * expansion, H / stride, W / stride).
    """

    def __init__(self, inplanes, planes, stride=1, expansion=4, gn_groups=32, dcn=False):
        super().__init__()
        out = planes * expansion
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.gn1 = group_norm(planes, gn_groups)
        if dcn:
            self.conv2 = DeformConv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        else:
            self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.gn2 = group_norm(planes, gn_groups)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.gn3 = group_norm(out, gn_groups)
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride=stride, bias=False),
                                            group_norm(out, gn_groups))
        else:
            self.downsample = None

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = self.gn1(self.conv1(x)).relu()
        y = self.gn2(self.conv2(y)).relu()
        y = self.gn3(self.conv3(y))
        return (y + identity).relu()


class ResNet(nn.Module):
    """Stem (7x7/2 conv, GN, ReLU, 3x3/2 max-pool) and four stages of
    bottlenecks. ResNet-50: stem 64, planes (64, 128, 256, 512), blocks
    (3, 4, 6, 3), expansion 4 -> outputs (256, 512, 1024, 2048) channels at
    strides (4, 8, 16, 32).

    forward(x (B, 3, H, W)) -> tuple of the 4 stage outputs.
    """

    def __init__(self, stem_channels=64, planes=(64, 128, 256, 512), blocks=(3, 4, 6, 3), expansion=4,
                 gn_groups=32, dcn_stages=(False, False, True, True)):
        super().__init__()
        if not (len(planes) == len(blocks) == len(dcn_stages) == 4):
            raise ValueError("planes, blocks and dcn_stages must each have 4 entries")
        self.conv1 = nn.Conv2d(3, stem_channels, 7, stride=2, padding=3, bias=False)
        self.gn1 = group_norm(stem_channels, gn_groups)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = stem_channels
        self.out_channels = []
        for s, (p, n, dcn) in enumerate(zip(planes, blocks, dcn_stages)):
            stride = 1 if s == 0 else 2
            layers = []
            for i in range(n):
                layers.append(Bottleneck(inplanes, p, stride if i == 0 else 1, expansion, gn_groups, bool(dcn)))
                inplanes = p * expansion
            self.add_module(f"layer{s + 1}", nn.Sequential(*layers))
            self.out_channels.append(inplanes)
        self.init_weights()

    def init_weights(self):
        """Kaiming-normal (fan_out) convs, GN weight 1 / bias 0, the last GN of
        each block zero (mmdet's zero_init_residual: every block starts as the
        identity), offset convs zero (DCN starts as a plain conv)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, DeformConv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.GroupNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.gn3.weight)
            if isinstance(m, DeformConv2d):
                nn.init.zeros_(m.conv_offset.weight)
                nn.init.zeros_(m.conv_offset.bias)

    def forward(self, x):
        x = self.maxpool(self.gn1(self.conv1(x)).relu())
        outs = []
        for s in range(4):
            x = getattr(self, f"layer{s + 1}")(x)
            outs.append(x)
        return tuple(outs)
