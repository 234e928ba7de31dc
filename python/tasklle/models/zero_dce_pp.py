"""DCE-Net++, the curve estimator of Zero-DCE++.

Reference: C. Li, C. Guo, C. C. Loy, "Learning to Enhance Low-Light Image via
Zero-Reference Deep Curve Estimation", TPAMI 2021. Layout, key names and
interpolation as in the official code.
"""
import numbers

import torch
import torch.nn.functional as F
from torch import nn

from ..ops._common import check_impl
from ..ops.curve import curve, curve_upsampled
from ..ops.separable_conv import separable_conv
from .._checks import check_images
from ._dce_common import add_dce_layers, init_conv_weights, load_state_strict, read_checkpoint, save_model

FORMAT = "tasklle.zero_dce_pp/1"  # the checkpoint written by ZeroDCEPP.save


class _SeparableConv(nn.Module):
    """Depthwise 3x3 (groups = in channels, bias, padding 1) then pointwise 1x1
    (bias), no activation between (the official ``CSDN_Tem``), optionally
    followed by ReLU.

    The block is :func:`tasklle.ops.separable_conv` on the two modules'
    parameters; ``impl`` ('auto', 'c' or 'reference') is passed to it and
    picks the path by the ops' one rule (``tasklle.ops._common.use_c``):
    'reference' runs the op's plain-PyTorch twin (two ``F.conv2d``). The
    parameters are those modules' either way, so state_dict keys and
    checkpoints do not depend on the implementation.
    """

    def __init__(self, cin, cout):
        super().__init__()
        self.depth_conv = nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=True)
        self.point_conv = nn.Conv2d(cin, cout, 1, 1, 0, bias=True)

    def forward(self, x, relu=False, impl="auto"):
        """x: a (B, cin, H, W) tensor, or a pair (a, b) standing for ``torch.cat([a, b], 1)``
        (the fused op reads the two halves in place)."""
        return separable_conv(x, self.depth_conv.weight, self.depth_conv.bias, self.point_conv.weight,
                              self.point_conv.bias, relu, impl=impl)


class ZeroDCEPP(nn.Module):
    r"""Zero-DCE++: DCE-Net with depthwise-separable convolutions and one
    3-channel curve map used in all ``iterations`` (8) steps of
    ``x <- x + A (x^2 - x)`` (:func:`tasklle.ops.curve`, the C core on CPU).
    10,561 parameters; state_dict keys are the official ones
    (``e_conv{1..7}.depth_conv/point_conv.{weight,bias}``).

    Scale factor s: the network runs on a reduced copy of the input and its map
    is brought back to full resolution, where the curve is applied:

    - s == 1: no resampling (the official training setting);
    - s > 1: the input is resized to ``(max(1, H // s), max(1, W // s))`` with
      bilinear interpolation, ``align_corners=False``, no antialias; the tanh
      output is resized to exactly (H, W) with bilinear, ``align_corners=True``.
      When H and W are multiples of s this is the official computation
      (``interpolate(scale_factor=1/s)`` then ``UpsamplingBilinear2d(s)``). For
      other sizes the official test script crops the image to multiples of s;
      we never crop: the whole image is mapped onto the floor-sized grid and the
      map is stretched back over the whole image, so every pixel is enhanced.

    ``forward(x)`` returns ``(enhanced, curve_maps)``, both (B, 3, H, W); the
    maps are the full-resolution ones (what L_tvA is applied to). For s > 1
    the upsampling and the curve run as one op,
    :func:`tasklle.ops.curve_upsampled` (one C pass over the image when no
    gradient is wanted; the same values up to float rounding).

    Args:
        scale_factor: s >= 1 (int or float; official test: 12, training: 1).
        iterations: curve steps (8).
        channels: hidden width (32).
        impl: passed to every op the model calls ('auto': the C curve and C
            depthwise-separable layers on CPU, the twins elsewhere; 'c'; or
            'reference': the pure-PyTorch twins), the ops' one rule
            (``tasklle.ops._common.use_c``). May be switched on the instance.

    Shape:
        - x: (B, 3, H, W) in [0, 1], any H, W >= 1
        - outputs: (B, 3, H, W), (B, 3, H, W)
    """

    def __init__(self, scale_factor=1, iterations=8, channels=32, impl="auto"):
        super().__init__()
        if isinstance(scale_factor, bool) or not isinstance(scale_factor, numbers.Real) or not scale_factor >= 1:
            raise ValueError(f"scale_factor must be a number >= 1, got {scale_factor!r}")
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"iterations must be an int >= 1, got {iterations!r}")
        self.scale_factor = int(scale_factor) if float(scale_factor).is_integer() else float(scale_factor)
        self.iterations = iterations
        self.impl = check_impl(impl)  # the ops resolve it per call, so `model.impl` can be switched
        add_dce_layers(self, _SeparableConv, 3, channels, 3)

    def curve_maps(self, x):
        """The full-resolution (B, 3, H, W) curve map in [-1, 1] for (B, 3, H, W) x."""
        a = self._small_maps(x)
        if self.scale_factor != 1:
            a = F.interpolate(a, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=True)
        return a

    def _small_maps(self, x):
        """The tanh map at the network's size: (B, 3, H // s, W // s) (x's size for s == 1)."""
        s = self.scale_factor
        h, w = x.shape[-2:]
        if s == 1:
            x_down = x
        else:
            size = (max(1, int(h // s)), max(1, int(w // s)))
            x_down = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=False)
        impl = self.impl
        # conv1..6 with the ReLU fused into the block (the C kernel applies it in place of a separate pass)
        x1 = self.e_conv1(x_down, relu=True, impl=impl)
        x2 = self.e_conv2(x1, relu=True, impl=impl)
        x3 = self.e_conv3(x2, relu=True, impl=impl)
        x4 = self.e_conv4(x3, relu=True, impl=impl)
        # the skip concatenations go in as pairs: cat([x3, x4], 1) etc., never built on the C path
        x5 = self.e_conv5((x3, x4), relu=True, impl=impl)
        x6 = self.e_conv6((x2, x5), relu=True, impl=impl)
        return torch.tanh(self.e_conv7((x1, x6), impl=impl))

    def forward(self, x):
        check_images(x, "x")
        if self.scale_factor != 1:
            # upsampling and curve in one pass over the image (the C core when no gradient is
            # wanted, e.g. inference under no_grad; torch upsampling + the C curve otherwise)
            return curve_upsampled(x, self._small_maps(x), self.iterations, impl=self.impl)
        a = self.curve_maps(x)
        return curve(x, a, self.iterations, impl=self.impl), a

    def init_weights(self, std=0.02):
        """Conv weights ~ N(0, std) as in the method's report (biases keep their default init);
        the official Zero-DCE++ training keeps PyTorch's default init instead."""
        return init_conv_weights(self, std)

    @classmethod
    def from_official(cls, path, scale_factor=1, **kwargs):
        """Load the official Zero-DCE++ weights (e.g. ``Epoch99.pth``, a plain
        state_dict with keys ``e_conv{1..7}.depth_conv/point_conv.{weight,bias}``)
        by key name, with ``torch.load(weights_only=True)``. Strict: a mismatch
        raises ValueError listing the missing and unexpected keys. Returns the
        model in eval mode."""
        state, _ = read_checkpoint(path)
        return load_state_strict(cls(scale_factor=scale_factor, **kwargs), state, str(path)).eval()

    def save(self, path, **extra):
        """Save a tasklle checkpoint atomically:
        ``{'format': 'tasklle.zero_dce_pp/1', 'kind': 'ZeroDCEPP', 'scale_factor': s, **extra, 'model': state_dict}``
        (what the trainers write as ``final.pt``; :meth:`load` reads it back).
        ``extra``: more entries, e.g. ``config=`` (a ``scale_factor`` given here
        replaces the model's own in place). Returns ``path``."""
        return save_model(self, path, FORMAT, **{"scale_factor": self.scale_factor, **extra})

    @classmethod
    def load(cls, path, scale_factor=None, **kwargs):
        """Load a tasklle checkpoint (``{'model': state_dict, 'scale_factor': s, ...}``
        as written by ``train_upstream``) or an official state_dict. The scale
        factor is, in order: the argument, the checkpoint's, 1."""
        state, meta = read_checkpoint(path)
        if scale_factor is None:
            scale_factor = meta.get("scale_factor", (meta.get("config") or {}).get("scale_factor", 1))
        return load_state_strict(cls(scale_factor=scale_factor, **kwargs), state, str(path)).eval()

    def extra_repr(self):
        return f"scale_factor={self.scale_factor}, iterations={self.iterations}, impl={self.impl!r}"
