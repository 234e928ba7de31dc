"""LEDNet's released darkener: ``ConditionZeroDCE`` and its generation pipeline.

LEDNet (Zhou et al., ECCV 2022) synthesises its low-light training data with
an exposure-conditioned Zero-DCE ("EC-Zero-DCE"). It publishes the network
(``ConditionZeroDCE`` in ``basicsr/archs/zerodce_arch.py``), its weights
(``ce_zerodce.pth``, a release asset of LEDNet, not shipped with tasklle) and
the generation script (``scripts/generate_low_light_imgs.py``). This module
is an independent implementation of both; :meth:`ConditionZeroDCE.from_lednet`
loads the released weights by LEDNet's own key names.

**Network** (all convs 3x3, stride 1, zero padding 1, with bias, ``channels``
= 256):

- input ``l``: the Lab lightness L/100 (B, 1, H, W) and an exposure map
  ``e`` (B, 1, H, W);
- exposure branch: ``E1..E4 = ReLU(e_conv_e1..e_conv_e4)`` applied in a chain
  to ``e`` (1 -> 256 -> 256 -> 256 -> 256 channels);
- main branch: ``x1..x4 = ReLU(e_conv1..e_conv4)`` in a chain on ``l``;
  ``x5 = ReLU(e_conv5(cat[E4, x3, x4]))``, ``x6 = ReLU(e_conv6(cat[E3, x2, x5]))``,
  ``r = tanh(e_conv7(cat[E2, x1, x6]))`` with 10 output maps (768 input
  channels for e_conv5..7, the exposure features first);
- curve: 10 steps ``x <- x + r_k (x^2 - x)`` starting from ``l``, map k in
  step k (LEDNet writes the 10 steps out; its intermediate results are not
  returned). Here the step runs in the C curve op (``tasklle.ops.curve``,
  per-iteration layout, ``iterations=10``): the one-channel image and each
  map are repeated over the op's three channels, a cost that is nothing next
  to the convolutions.

Parameter count: 7,154,186 (about 7.15 G multiply-adds per pixel), all at
full resolution: a 1024x768 image needs ~0.8 GB per 256-channel feature map.
``forward`` therefore runs the convolutions on tiles of at most ``tile`` x
``tile`` output pixels with a halo of 7 pixels (the receptive-field radius of
the seven chained 3x3 convs: a tile's outer ring that zero padding inside
the tile corrupts grows by one pixel per conv, and the longest chain to the
output is 7 convs). Tiles at the image border use the border's own zero
padding, so tiled and untiled results agree to float rounding (tested).

Cost: 7.15 M multiply-adds per pixel, 14.3 TFLOP per megapixel. On this
project's 2-core CPU (AVX-512, oneDNN convolutions at ~90 GFLOP/s on one
thread), one thread, 256x384 image, load average 1.3: 126 s per megapixel
with 128-pixel tiles, 166 s with 256-pixel tiles, 197 s untiled (smaller
tiles stay in cache); peak resident memory of the process 0.6 GB at tile 128
against 1.7 GB untiled. A 512x512 image under a load average of 5 (other
jobs on both cores): 305 s/MP at tile 128 (0.66 GB peak), 337 s/MP at tile
64 (0.40 GB). A WIDER-sized image (~0.7 MP) thus takes about 1.5 min per
free core: darkening all of WIDER FACE with LEDNet's net is a GPU job (the
tensors follow the module's device), or a long CPU job over many workers.

**Generation pipeline** (:func:`lednet_darken`, following the script):

1. L = the Lab lightness (0..100) of the float image (values in [0, 1]), from
   OpenCV's float ``cvtColor(..., COLOR_RGB2LAB)`` (:func:`opencv_lightness`,
   OpenCV's interpolated table);
2. E ~ U(0.05, 0.3) per image (the caller draws it);
3. exposure map = E, except where L/100 > 0.97 (saturated regions), which
   keep their own L/100;
4. L_low = 100 * net(L/100, exposure map);
5. output RGB = input RGB * L_low / (L + 1e-8) (the same factor on all three
   channels), clipped to [0, 1]. No noise is added.

The script's quirk: it reads the image with OpenCV (BGR channel order) and
converts it with ``COLOR_RGB2LAB``, i.e. treats blue as red: the lightness it
computes weights blue by the luminance weight of red and vice versa
(``Y = 0.212671 B + 0.715160 G + 0.072169 R`` in linear light). The scale
factor then multiplies the (correct) BGR image. ``channel_order="bgr-as-rgb"``
(the default) reproduces this; ``"rgb"`` computes the true lightness.

OpenCV evaluates the float Lab conversion through a 33^3 table with
trilinear interpolation on a 2^-14 input grid; :func:`opencv_lightness`
does the same (``method='table'``, the default), matching OpenCV 4.14
exactly at all but ~0.05% of pixels (one step of 100/2^14 there); the
closed formula (``'formula'``) differs from OpenCV by up to 0.19 (mean 0.09).
Differences from the script that remain: the script writes ``uint8`` by
truncation (``astype``), tasklle rounds when it writes images. The script draws E with Python's ``random``;
tasklle draws it from a per-image seeded generator.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .._checks import check_images
from .ec_zero_dce import _as_exposure  # the same exposure argument rules as the project's darkener

__all__ = ["ConditionZeroDCE", "opencv_lightness", "lednet_darken", "exposure_map", "SATURATION_THRESHOLD",
           "EXPOSURE_RANGE", "HALO", "CHANNEL_ORDERS", "LIGHTNESS_METHODS"]

SATURATION_THRESHOLD = 0.97  # the script's threshold on L/100 for saturated regions
EXPOSURE_RANGE = (0.05, 0.3)  # the script's exp_range
HALO = 7  # receptive-field radius of the seven chained 3x3 convs
CHANNEL_ORDERS = ("bgr-as-rgb", "rgb")
LIGHTNESS_METHODS = ("table", "formula")

# OpenCV's sRGB -> XYZ (D65) Y row, the luminance weights of linear R, G, B
_Y_WEIGHTS = (0.212671, 0.715160, 0.072169)
_LAB_T = 0.008856  # (6/29)^3 as OpenCV writes it
_LAB_K = 903.3  # (29/3)^3 as OpenCV writes it


_LAB_BASE = 1 << 14  # OpenCV's fixed-point scale of the table's inputs and outputs
_LUT_DIM = 33  # OpenCV's table has 33 points per axis (lab_lut_shift = 5)
_TABLE = {}


def _lightness_table():
    """OpenCV's table of L * 2^14 / 100 (int64, 33^3, indexed [red, green, blue] of the
    channels the conversion believes in). OpenCV builds it in single precision (softfloat)
    after a double-precision gamma, with (6/29)^3 and (29/3)^3 as exact fractions; rounding
    half to even."""
    if "L" not in _TABLE:
        g = torch.arange(_LUT_DIM, dtype=torch.float64) / (_LUT_DIM - 1)
        lin = torch.where(g <= 0.04045, g / 12.92, ((g + 0.055) / 1.055) ** 2.4).float()
        wr, wg, wb = (torch.tensor(v, dtype=torch.float32) for v in _Y_WEIGHTS)
        # the same association as OpenCV: (blue * w_b + green * w_g) + red * w_r
        y = (lin[None, None, :] * wb + lin[None, :, None] * wg) + lin[:, None, None] * wr
        t = torch.tensor(216.0 / 24389.0, dtype=torch.float32)
        k = torch.tensor(24389.0 / 27.0, dtype=torch.float32)
        L = torch.where(y > t, 116.0 * y.clamp_min(t).pow(1.0 / 3.0) - 16.0, k * y)
        _TABLE["L"] = torch.round(torch.tensor(float(_LAB_BASE)) * L / 100.0).to(torch.int64)
    return _TABLE["L"]


def _table_lightness(red, green, blue):
    """OpenCV's interpolated float RGB -> L: inputs rounded to multiples of 2^-14, the
    enclosing cell of the 33^3 table found from the top 5 bits, trilinear weights from the
    next 4 bits (each of 16 steps), the weighted sum descaled by 2^12 with rounding."""
    table = _lightness_table().to(red.device)
    q = [torch.round(c.clamp(0.0, 1.0).float() * _LAB_BASE).to(torch.int64) for c in (red, green, blue)]
    cell = [c >> 9 for c in q]
    frac = [(c >> 5) & 15 for c in q]
    last = _LUT_DIM - 1
    acc = torch.zeros_like(q[0])
    for dr in (0, 1):
        wr = frac[0] if dr else 16 - frac[0]
        ir = (cell[0] + dr).clamp_max(last)
        for dg in (0, 1):
            wg = frac[1] if dg else 16 - frac[1]
            ig = (cell[1] + dg).clamp_max(last)
            for db in (0, 1):
                wb = frac[2] if db else 16 - frac[2]
                acc += table[ir, ig, (cell[2] + db).clamp_max(last)] * (wr * wg * wb)
    il = (acc + (1 << 11)) >> 12
    return (il.float() / _LAB_BASE) * 100.0


def opencv_lightness(rgb, channel_order="bgr-as-rgb", method="table"):
    """Lab lightness L in [0, 100] (B, 1, H, W) of RGB images (B, 3, H, W) in [0, 1], as
    OpenCV's float ``cvtColor(..., COLOR_RGB2LAB)`` computes it.

    The conversion: each channel clipped to [0, 1], sRGB gamma removed (``x / 12.92``
    for x <= 0.04045, else ``((x + 0.055) / 1.055) ** 2.4``),
    ``Y = 0.212671 R + 0.715160 G + 0.072169 B``, ``L = 116 Y^(1/3) - 16`` above
    (6/29)^3, else (29/3)^3 Y.

    method: ``'table'`` (default) evaluates it the way OpenCV's float path does, by
    trilinear interpolation in a 33^3 table of L on a 2^-14 input grid (result in steps
    of 100/2^14); against OpenCV 4.14 it agrees exactly at all but ~0.05% of pixels,
    which differ by one step (14 of the 35,937 table entries round the other way in
    OpenCV's software floating point). ``'formula'`` evaluates the formula directly
    in the input's dtype (differs from OpenCV by up to ~0.19, mean ~0.09).

    channel_order: ``'bgr-as-rgb'`` (LEDNet's script: the BGR array is
    converted as if it were RGB, so R and B swap their weights) or ``'rgb'``.
    Returned in the input's dtype.
    """
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
    if method not in LIGHTNESS_METHODS:
        raise ValueError(f"method must be one of {LIGHTNESS_METHODS}, got {method!r}")
    if not isinstance(rgb, torch.Tensor) or rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"rgb must be a (B, 3, H, W) tensor, got {getattr(rgb, 'shape', type(rgb).__name__)}")
    red, green, blue = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    if channel_order == "bgr-as-rgb":
        red, blue = blue, red  # what the conversion believes is red is the image's blue
    if method == "table":
        return _table_lightness(red, green, blue).to(rgb.dtype)
    x = torch.cat([red, green, blue], 1).clamp(0.0, 1.0)
    lin = torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    wr, wg, wb = _Y_WEIGHTS
    y = wr * lin[:, 0:1] + wg * lin[:, 1:2] + wb * lin[:, 2:3]
    return torch.where(y > _LAB_T, 116.0 * y.clamp_min(_LAB_T) ** (1.0 / 3.0) - 16.0, _LAB_K * y)


def exposure_map(l_frac, exposure):
    """The script's exposure map: E per image, except pixels with L/100 > 0.97 keep L/100.

    l_frac (B, 1, H, W) lightness / 100; exposure (B,) tensor.
    """
    e = exposure.to(l_frac).reshape(-1, 1, 1, 1).expand_as(l_frac)
    return torch.where(l_frac > SATURATION_THRESHOLD, l_frac, e)


class ConditionZeroDCE(nn.Module):
    """LEDNet's exposure-conditioned curve network (see the module docstring).

    Args:
        channels: hidden width (LEDNet: 256; other values only for tests).
        iterations: curve steps = output maps of e_conv7 (LEDNet: 10).
        tile: largest tile side (output pixels) the convolutions run on at a
            time (default 128); None or 0 runs untiled. Memory grows with
            ``(tile + 14)^2 * channels``: about ten feature maps and
            concatenations of that size are alive at once (~0.3 GB at 128).
        channel_order: how :meth:`darken` computes L (see
            :func:`opencv_lightness`); default the script's ``'bgr-as-rgb'``.

    ``forward(l, e)``: l, e (B, 1, H, W) -> darkened lightness (B, 1, H, W) /
    100, as LEDNet's ``forward`` (which takes one exposure map for the batch).
    """

    def __init__(self, channels=256, iterations=10, tile=128, channel_order="bgr-as-rgb"):
        super().__init__()
        for name, v in (("channels", channels), ("iterations", iterations)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        self.channels = channels
        self.iterations = iterations
        self.tile = tile
        self.channel_order = channel_order
        c = channels
        # attribute names are LEDNet's: they are the checkpoint's keys
        self.e_conv1 = nn.Conv2d(1, c, 3, 1, 1, bias=True)
        self.e_conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=True)
        self.e_conv3 = nn.Conv2d(c, c, 3, 1, 1, bias=True)
        self.e_conv4 = nn.Conv2d(c, c, 3, 1, 1, bias=True)
        self.e_conv5 = nn.Conv2d(3 * c, c, 3, 1, 1, bias=True)
        self.e_conv6 = nn.Conv2d(3 * c, c, 3, 1, 1, bias=True)
        self.e_conv7 = nn.Conv2d(3 * c, iterations, 3, 1, 1, bias=True)
        self.e_conv_e1 = nn.Conv2d(1, c, 3, 1, 1, bias=True)
        self.e_conv_e2 = nn.Conv2d(c, c, 3, 1, 1, bias=True)
        self.e_conv_e3 = nn.Conv2d(c, c, 3, 1, 1, bias=True)
        self.e_conv_e4 = nn.Conv2d(c, c, 3, 1, 1, bias=True)

    # options checked on assignment so that a bad value fails where it is set
    @property
    def tile(self):
        return self._tile

    @tile.setter
    def tile(self, t):
        if t is not None and (isinstance(t, bool) or not isinstance(t, int) or t < 0):
            raise ValueError(f"tile must be None or an int >= 0, got {t!r}")
        self._tile = t or None

    @property
    def channel_order(self):
        return self._channel_order

    @channel_order.setter
    def channel_order(self, order):
        if order not in CHANNEL_ORDERS:
            raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {order!r}")
        self._channel_order = order

    # -- the network -------------------------------------------------------------
    def _maps(self, l, e):
        """tanh curve maps (B, iterations, h, w) of one tile (or the whole image)."""
        relu = F.relu
        e1 = relu(self.e_conv_e1(e))
        e2 = relu(self.e_conv_e2(e1))
        e3 = relu(self.e_conv_e3(e2))
        e4 = relu(self.e_conv_e4(e3))
        del e1
        x1 = relu(self.e_conv1(l))
        x2 = relu(self.e_conv2(x1))
        x3 = relu(self.e_conv3(x2))
        x4 = relu(self.e_conv4(x3))
        x5 = relu(self.e_conv5(torch.cat([e4, x3, x4], 1)))
        del e4, x3, x4
        x6 = relu(self.e_conv6(torch.cat([e3, x2, x5], 1)))
        del e3, x2, x5
        return torch.tanh(self.e_conv7(torch.cat([e2, x1, x6], 1)))

    def curve_maps(self, l, e):
        """The maps r (B, iterations, H, W), computed tile by tile with a HALO-pixel margin."""
        B, _, H, W = l.shape
        t = self.tile
        if t is None or (H <= t and W <= t):
            return self._maps(l, e)
        out = l.new_empty((B, self.iterations, H, W))
        for y0 in range(0, H, t):
            y1 = min(H, y0 + t)
            ya, yb = max(0, y0 - HALO), min(H, y1 + HALO)
            for x0 in range(0, W, t):
                x1 = min(W, x0 + t)
                xa, xb = max(0, x0 - HALO), min(W, x1 + HALO)
                r = self._maps(l[:, :, ya:yb, xa:xb], e[:, :, ya:yb, xa:xb])
                out[:, :, y0:y1, x0:x1] = r[:, :, y0 - ya:y1 - ya, x0 - xa:x1 - xa]
        return out

    def apply_curve(self, l, r):
        """``x <- x + r_k (x^2 - x)`` for k = 1..iterations, from x = l (B, 1, H, W)."""
        from ..ops.curve import curve

        B, _, H, W = l.shape
        # the op's per-iteration layout is 3 channels per map: repeat the single channel
        x3 = l.expand(B, 3, H, W).contiguous()
        a = r.repeat_interleave(3, dim=1).contiguous()
        return curve(x3, a, iterations=self.iterations)[:, :1]

    def forward(self, l, e):
        check_images(l, "l", channels=1)
        check_images(e, "e", channels=1)
        if e.shape != l.shape:
            if e.shape[0] == 1 and e.shape[2:] == l.shape[2:]:
                e = e.expand_as(l)  # LEDNet repeats one map over the batch
            else:
                raise ValueError(f"e must have the shape of l {tuple(l.shape)}, got {tuple(e.shape)}")
        l, e = l.contiguous(), e.to(l.dtype).contiguous()
        return self.apply_curve(l, self.curve_maps(l, e))

    # -- the generation pipeline -------------------------------------------------------------
    @torch.no_grad()
    def darken(self, x, exposure):
        """LEDNet's generation pipeline on RGB images x (B, 3, H, W) in [0, 1] with exposure E (a number
        or one per image, in (0, 1)) -> darkened RGB (B, 3, H, W) in [0, 1]."""
        return lednet_darken(self, x, exposure)

    # -- checkpoints -------------------------------------------------------
    def config(self):
        return {"channels": self.channels, "iterations": self.iterations, "kind": "lednet"}

    @classmethod
    def from_lednet(cls, path, tile=128, channel_order="bgr-as-rgb"):
        """Load LEDNet's ``ce_zerodce.pth`` (a plain state_dict with LEDNet's key names, loaded with
        ``weights_only=True``; a ``module.`` prefix or a ``params`` / ``state_dict`` wrapper is
        accepted). Strict: every missing or unexpected key and every shape mismatch is reported."""
        from ..io import load_checkpoint
        from ._dce_common import load_state_strict

        ckpt = load_checkpoint(path)
        if isinstance(ckpt, dict):
            for key in ("params_ema", "params", "state_dict"):
                if isinstance(ckpt.get(key), dict):
                    ckpt = ckpt[key]
                    break
        model = cls(tile=tile, channel_order=channel_order)
        load_state_strict(model, ckpt, str(path))
        return model.eval()


def lednet_darken(net, x, exposure):
    """Darken RGB images x (B, 3, H, W) in [0, 1] to exposure E with LEDNet's pipeline (module docstring)."""
    check_images(x, "x")
    e = _as_exposure(exposure, x.shape[0], x)
    with torch.no_grad():
        L = opencv_lightness(x, net.channel_order)
        lf = L / 100.0
        low = net(lf, exposure_map(lf, e)) * 100.0
        return (x * (low / (L + 1e-8))).clamp(0.0, 1.0)


def parameter_count(channels=256, iterations=10):
    """Parameters of ConditionZeroDCE (7,154,186 for LEDNet's 256 channels, 10 maps)."""
    c = channels
    conv = lambda i, o: o * i * 9 + o  # noqa: E731
    return 2 * conv(1, c) + 6 * conv(c, c) + 2 * conv(3 * c, c) + conv(3 * c, iterations)

