"""ResNet-50 body of RetinaFace: torchvision's ``resnet50`` layout (the
stride on the 3x3 conv, BatchNorm after every conv), as biubug6 uses it
through IntermediateLayerGetter with ``layer2``-``layer4`` returned, so
``avgpool`` / ``fc`` are not part of it.

Keys (biubug6's ``body.`` prefix is added by RetinaFace): ``conv1.weight``,
``bn1.*``, ``layer{s}.{i}.conv{1,2,3}.weight``, ``layer{s}.{i}.bn{1,2,3}.*``,
``layer{s}.0.downsample.0.weight`` (1x1 conv, the block's stride),
``layer{s}.0.downsample.1.*`` (BN). TinaFace's ResNet (``models/tinaface/resnet.py``)
has GroupNorm, mmdet's key names and DCN, hence a separate, plain one here.
"""
import torch.nn as nn

from .layers import conv_norm


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (stride) -> 1x1 (x4), BN after each, ReLU after the first two
    and after the residual sum. (B, inplanes, H, W) -> (B, 4 planes, H/stride, W/stride)."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, folded=False):
        super().__init__()
        out = planes * self.expansion
        # registration order conv -> bn is what fold_module relies on
        self.conv1, self.bn1 = conv_norm(inplanes, planes, 1, folded=folded)
        self.conv2, self.bn2 = conv_norm(planes, planes, 3, stride, 1, folded=folded)
        self.conv3, self.bn3 = conv_norm(planes, out, 1, folded=folded)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = nn.Sequential(*conv_norm(inplanes, out, 1, stride, folded=folded))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = self.bn1(self.conv1(x)).relu()
        y = self.bn2(self.conv2(y)).relu()
        y = self.bn3(self.conv3(y))
        return (y + identity).relu()


class ResNet50(nn.Module):
    """Stem (7x7/2 conv 64, BN, ReLU, 3x3/2 max-pool) and four stages of
    (3, 4, 6, 3) bottlenecks. x (B, 3, H, W) -> (layer2 (B, 512, H/8, W/8),
    layer3 (B, 1024, H/16, W/16), layer4 (B, 2048, H/32, W/32)), sizes rounded up."""

    out_channels = (512, 1024, 2048)

    def __init__(self, folded=False, blocks=(3, 4, 6, 3)):
        super().__init__()
        self.conv1, self.bn1 = conv_norm(3, 64, 7, 2, 3, folded=folded)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = 64
        for s, (planes, n) in enumerate(zip((64, 128, 256, 512), blocks)):
            layers = []
            for i in range(n):
                layers.append(Bottleneck(inplanes, planes, (1 if s == 0 else 2) if i == 0 else 1, folded))
                inplanes = planes * Bottleneck.expansion
            self.add_module(f"layer{s + 1}", nn.Sequential(*layers))

    def forward(self, x):
        x = self.maxpool(self.bn1(self.conv1(x)).relu())
        c2 = self.layer2(self.layer1(x))
        c3 = self.layer3(c2)
        return c2, c3, self.layer4(c3)
