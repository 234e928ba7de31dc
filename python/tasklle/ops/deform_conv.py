"""Deformable convolution v1 (Dai et al. 2017, "Deformable Convolutional
Networks"), the DCN that TinaFace's ResNet-50 uses in layer3 and layer4.

Semantics follow mmcv's ``DeformConv2d`` / ``DeformConv2dPack`` (the op the
vedadet checkpoints were trained with):

- offset (B, 2 * deform_groups * kh * kw, Ho, Wo); for kernel tap
  k = i * kw + j of deformable group g, channel ``2 * (g*K + k)`` is the
  vertical (y) offset and ``2 * (g*K + k) + 1`` the horizontal (x) offset;
- the tap samples the input at
  ``(ho * stride_h - pad_h + i * dil_h + dy, wo * stride_w - pad_w + j * dil_w + dx)``
  with bilinear interpolation; pixels outside the image count as zero
  (a sample at or beyond -1 / H is zero, and so is a sample at a NaN or
  infinite position, since mmcv's "inside" test fails for it);
- the sampled columns are multiplied by the weight exactly like a
  convolution (groups supported), no modulation (v1).

Implementation: the op is composed of differentiable torch ops, so autograd
provides the backward. All taps of all output positions are sampled in one
``F.grid_sample`` call (bilinear, zero padding, ``align_corners=False`` with
pixel ``x`` mapped to ``(2x + 1) / W - 1``, which is exactly the bilinear
formula above for every image size, including W = 1), then one batched matmul
applies the weight. Profiling a TinaFace forward+backward on CPU (torch
profiler, one thread) put grid_sample forward+backward at 1.1 % of the full
model (one 192x192 image) and 3.9 % of the lite model (4 x 320x320), against
63-70 % for the ordinary convolutions, so there is no C kernel. The slow, loop-based twin in ``tasklle.reference.deform_conv2d``
is the specification the tests compare against.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# the argument checks live with the reference twin (the specification), as for every op
from ..reference.deform_conv import _pair, check_deform_conv_args


def deform_conv2d(input, offset, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, deform_groups=1):
    """Deformable convolution v1.

    Args:
        input: (B, C, H, W) float tensor.
        offset: (B, 2 * deform_groups * kh * kw, Ho, Wo), (dy, dx) pairs per tap.
        weight: (C_out, C / groups, kh, kw).
        bias: (C_out,) or None.
        stride, padding, dilation: int or (h, w) pair, as in ``F.conv2d``.
        groups: convolution groups; deform_groups: groups of input channels
            that share one offset field.

    Returns:
        (B, C_out, Ho, Wo). With all offsets zero it equals ``F.conv2d``.
    Differentiable in input, offset, weight and bias.
    """
    stride, padding, dilation, (Ho, Wo) = check_deform_conv_args(
        input, offset, weight, bias, stride, padding, dilation, groups, deform_groups)
    B, C, H, W = input.shape
    Cout, Cg, kh, kw = weight.shape
    K = kh * kw
    dg = deform_groups
    dev, dt = input.device, input.dtype
    if B == 0:
        return input.new_zeros((0, Cout, Ho, Wo))

    # Regular sampling grid of every tap (K, Ho, Wo) in input pixel coordinates.
    ys = torch.arange(Ho, device=dev, dtype=dt) * stride[0] - padding[0]
    xs = torch.arange(Wo, device=dev, dtype=dt) * stride[1] - padding[1]
    ky = (torch.arange(kh, device=dev, dtype=dt) * dilation[0]).repeat_interleave(kw)
    kx = (torch.arange(kw, device=dev, dtype=dt) * dilation[1]).repeat(kh)
    base_y = ky[:, None, None] + ys[None, :, None]  # (K, Ho, 1)
    base_x = kx[:, None, None] + xs[None, None, :]  # (K, 1, Wo)

    off = offset.reshape(B * dg, K, 2, Ho, Wo)
    py = base_y + off[:, :, 0]  # (B*dg, K, Ho, Wo)
    px = base_x + off[:, :, 1]
    # a non-finite position samples zero (mmcv: outside the image); grid_sample would give NaN
    bad = ~(torch.isfinite(py) & torch.isfinite(px))
    if bool(bad.any()):
        py = py.masked_fill(bad, -2.0)
        px = px.masked_fill(bad, -2.0)
    # pixel -> grid_sample coordinates (align_corners=False): x -> (2x+1)/W - 1
    grid = torch.stack(((2.0 * px + 1.0) / W - 1.0, (2.0 * py + 1.0) / H - 1.0), dim=-1)
    grid = grid.reshape(B * dg, K * Ho, Wo, 2)
    cols = F.grid_sample(input.reshape(B * dg, C // dg, H, W), grid, mode="bilinear",
                         padding_mode="zeros", align_corners=False)  # (B*dg, C/dg, K*Ho, Wo)
    # channel c of deformable group g is input channel g*(C/dg) + c: the view below restores (B, C, K, L)
    L = Ho * Wo
    cols = cols.reshape(B, groups, Cg * K, L)
    w = weight.reshape(groups, Cout // groups, Cg * K)
    out = torch.matmul(w, cols).reshape(B, Cout, Ho, Wo)
    if bias is not None:
        out = out + bias.view(1, Cout, 1, 1)
    return out


class DeformConv2d(nn.Module):
    """Deformable convolution v1 that predicts its own offsets (mmcv's
    ``DeformConv2dPack``): ``conv_offset`` is a plain convolution with the
    same kernel, stride, padding and dilation producing
    2 * deform_groups * kh * kw channels with bias, initialised to zero (so a
    fresh layer starts as an ordinary convolution).

    State-dict keys: ``weight`` (and ``bias`` if enabled),
    ``conv_offset.weight``, ``conv_offset.bias``.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1, dilation=1, groups=1,
                 deform_groups=1, bias=False):
        super().__init__()
        kh, kw = _pair(kernel_size, "kernel_size")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = (kh, kw)
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        self.dilation = _pair(dilation, "dilation")
        self.groups, self.deform_groups = groups, deform_groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, kh, kw))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.conv_offset = nn.Conv2d(in_channels, deform_groups * 2 * kh * kw, (kh, kw), stride=self.stride,
                                     padding=self.padding, dilation=self.dilation, bias=True)
        self.reset_parameters()

    def reset_parameters(self):
        n = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        stdv = 1.0 / math.sqrt(n)
        nn.init.uniform_(self.weight, -stdv, stdv)
        if self.bias is not None:
            nn.init.zeros_(self.bias)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x):
        """x (B, C_in, H, W) -> (B, C_out, Ho, Wo)."""
        offset = self.conv_offset(x)
        return deform_conv2d(x, offset, self.weight, self.bias, self.stride, self.padding, self.dilation,
                             self.groups, self.deform_groups)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"deform_groups={self.deform_groups}, bias={self.bias is not None}")
