"""MobileNetV1 x0.25 body of RetinaFace (biubug6 ``models/net.py: MobileNetV1``).

Three stages, LeakyReLU(0.1) after every conv (the first conv_bn included):
stage1: conv_bn 3->8 /2, dw 8->16, dw 16->32 /2, dw 32->32, dw 32->64 /2, dw 64->64 (stride 8, 64 ch);
stage2: dw 64->128 /2, 5 x dw 128->128 (stride 16, 128 ch);
stage3: dw 128->256 /2, dw 256->256 (stride 32, 256 ch).
biubug6's classifier (``avg``, ``fc``) is not part of RetinaFace: torchvision's
IntermediateLayerGetter keeps only the modules up to the last returned stage,
so its checkpoints have no ``body.fc.*`` keys, and neither does this module.
Keys: ``stage{1,2,3}.{i}.{j}.*`` (``stage1.0`` is a conv_bn, the rest conv_dw).
"""
import torch.nn as nn

from .layers import conv_bn, conv_dw

LEAKY = 0.1


class MobileNetV1(nn.Module):
    """x (B, 3, H, W) -> (stage1 (B, 64, H/8, W/8), stage2 (B, 128, H/16, W/16),
    stage3 (B, 256, H/32, W/32)), sizes rounded up."""

    out_channels = (64, 128, 256)

    def __init__(self, folded=False):
        super().__init__()
        f = folded
        self.stage1 = nn.Sequential(
            conv_bn(3, 8, 2, leaky=LEAKY, folded=f), conv_dw(8, 16, 1, LEAKY, f), conv_dw(16, 32, 2, LEAKY, f),
            conv_dw(32, 32, 1, LEAKY, f), conv_dw(32, 64, 2, LEAKY, f), conv_dw(64, 64, 1, LEAKY, f))
        self.stage2 = nn.Sequential(conv_dw(64, 128, 2, LEAKY, f),
                                    *[conv_dw(128, 128, 1, LEAKY, f) for _ in range(5)])
        self.stage3 = nn.Sequential(conv_dw(128, 256, 2, LEAKY, f), conv_dw(256, 256, 1, LEAKY, f))

    def forward(self, x):
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        return c1, c2, self.stage3(c2)
