"""Feature pyramid of TinaFace (mmdet FPN as vedadet configures it):
start level 0, ``add_extra_convs='on_input'``, 6 outputs, GN,
no activation anywhere, bilinear top-down upsampling to the lateral's size.

- laterals: 1x1 conv + GN on each backbone output C2..C5;
- top-down: lateral[i-1] += bilinear(lateral[i], size of lateral[i-1])
  (``align_corners=False``, torch's and mmdet's default);
- outputs P2..P5: 3x3 conv + GN on each lateral;
- P6 = 3x3 stride-2 conv + GN on C5 (the *input*), P7 = the same on P6
  (no ReLU before them).

Keys: ``lateral_convs.{0-3}.{conv.weight,gn.*}``, ``fpn_convs.{0-5}.{conv.weight,gn.*}``.
"""
import torch.nn as nn
import torch.nn.functional as F

from .layers import ConvGN


class FPN(nn.Module):
    """inputs: tuple of 4 maps (B, in_channels[i], H/4*2^-i, ...) ->
    tuple of ``num_outs`` maps (B, out_channels, ...) at strides 4 .. 4*2^(num_outs-1)."""

    def __init__(self, in_channels=(256, 512, 1024, 2048), out_channels=256, num_outs=6, gn_groups=32):
        super().__init__()
        if num_outs < len(in_channels):
            raise ValueError(f"num_outs={num_outs} must be >= the number of inputs {len(in_channels)}")
        self.in_channels = tuple(in_channels)
        self.num_outs = num_outs
        self.lateral_convs = nn.ModuleList(ConvGN(c, out_channels, 1, gn_groups=gn_groups) for c in in_channels)
        convs = [ConvGN(out_channels, out_channels, 3, padding=1, gn_groups=gn_groups) for _ in in_channels]
        for i in range(num_outs - len(in_channels)):
            cin = in_channels[-1] if i == 0 else out_channels
            convs.append(ConvGN(cin, out_channels, 3, stride=2, padding=1, gn_groups=gn_groups))
        self.fpn_convs = nn.ModuleList(convs)
        self.init_weights()

    def init_weights(self):
        """Xavier-uniform convs (mmdet's FPN init); GN weight 1, bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)

    def forward(self, inputs):
        if len(inputs) != len(self.in_channels):
            raise ValueError(f"FPN expects {len(self.in_channels)} inputs, got {len(inputs)}")
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, inputs)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[-2:],
                                                              mode="bilinear", align_corners=False)
        n = len(laterals)
        outs = [self.fpn_convs[i](laterals[i]) for i in range(n)]
        if self.num_outs > n:
            outs.append(self.fpn_convs[n](inputs[-1]))
            for i in range(n + 1, self.num_outs):
                outs.append(self.fpn_convs[i](outs[-1]))
        return tuple(outs)
