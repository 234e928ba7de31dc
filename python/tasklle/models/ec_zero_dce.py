"""EC-Zero-DCE: an exposure-conditioned Zero-DCE++-style darkener.

LEDNet (Zhou et al., ECCV 2022) synthesises low-light images with a Zero-DCE
curve network conditioned on a target exposure E. LEDNet releases that
network and its weights (``ce_zerodce.pth``; see
``tasklle.models.lednet_darkener``), but it is a 7-million-parameter
full-resolution net (minutes per image on a CPU) whose weights are not
shipped here; this is the project's own small design, trained and shipped
with tasklle, the offline default. Given x (B, 3, H, W)
and one E per image, it darkens x so that its local mean exposure (channel
mean over 16x16 patches, as Zero-DCE's L_exp) approaches E.

- **Curve.** Zero-DCE++'s: one 3-channel map A in (-1, 1) used in every
  iteration of ``x <- x + A (x^2 - x)`` (``tasklle.ops.curve``, C core on
  CPU), 8 iterations. A > 0 darkens (A = 1 squares the image at each step),
  A < 0 brightens. 0 and 1 are fixed points of the curve, so the input is
  first multiplied by ``gain`` (0.9): white can then be darkened too (with
  ``keep_saturated`` it is restored where wanted).
- **Exposure prior.** For each point of a grid ``context`` (4) times coarser
  than the image, the local mean m of the channel-mean image over about
  ``window`` (16) pixels is solved for the A0 that the curve maps exactly to
  E, ``curve^8(m; A0) = E`` (the curve decreases in A for every x in (0, 1):
  bisection on [-1, 1]). A flat image is darkened exactly to E by A0 alone;
  a textured patch is not (the curve is nonlinear), which the network
  corrects.
- **Estimator.** DCE-Net++ (seven depthwise-separable 3x3 convs, 32
  channels, DCE-Net's skip concatenations, ReLU) on the coarse grid, input
  ``cat(x, E map, A0)`` (5 channels), output a residual r (3 channels):
  ``A = tanh(atanh(A0) + r)``, bilinearly upsampled (align_corners=True, as
  Zero-DCE++) to full resolution. E also enters through its own small branch,
  an MLP ``[E, log E] -> 16 -> 6 x 2 x 32`` giving a FiLM scale and shift for
  each hidden layer (``h <- h (1 + g(E)) + b(E)`` before the ReLU), so every
  layer can change its operating point with E. Running on the coarse grid
  gives a 60x60-pixel receptive field (16x16 patches need more than the
  15x15 of seven 3x3 convs) and a smooth A. ``scale_factor`` (Zero-DCE++'s
  option for speed on large images) makes the grid coarser still.
- **Colour.** By default (``preserve_color``) the curve's output sets only
  the brightness: the (gained) input's RGB is scaled per pixel by the ratio
  of the output's channel mean to the input's, as LEDNet scales RGB by its
  darkened Lab lightness; hue and saturation stay, and the exposure (a
  channel mean) is exactly the curve's. ``preserve_color=False`` returns
  the per-channel curve output (Zero-DCE's way), which saturates colours as
  it darkens.
- **Saturation.** ``keep_saturated=True`` follows LEDNet: pixels whose CIE
  L*/100 exceeds 0.97 keep their input value (``lightness()``: sRGB transfer
  function, D65 luminance, CIE L*; LEDNet takes L from OpenCV's Lab
  conversion).

``forward`` returns ``(darkened, A)`` like ``ZeroDCEPP``; A is the
full-resolution map. 17,221 parameters. Training: ``tasklle.train.darkener``;
shipped weights and their fidelity: ``weights/ec_zero_dce.md``.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..ops._common import check_impl
from .._checks import check_images
from ._dce_common import add_dce_layers
from .shipped_files import SHIPPED, WEIGHTS_DIR
from .zero_dce_pp import _SeparableConv  # the same depthwise-separable block as Zero-DCE++

WEIGHTS = WEIGHTS_DIR / SHIPPED["ec-zero-dce"]  # the shipped weights (ECZeroDCE.shipped())
SATURATION_THRESHOLD = 0.97
_BISECTION_STEPS = 20  # prior A0 to 2 / 2**20
_A0_LIMIT = 0.999  # keeps atanh(A0) finite


def lightness(x):
    """CIE Lab lightness L/100 in [0, 1] of sRGB images x (B, 3, H, W) in [0, 1] -> (B, 1, H, W).

    sRGB is linearised with the standard transfer function, Y uses the D65
    luminance weights (0.2126, 0.7152, 0.0722), and L = 116 f(Y) - 16 with the
    CIE f (cube root above (6/29)^3, linear below).
    """
    x = x.clamp(0.0, 1.0)
    lin = torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    y = 0.2126 * lin[:, 0:1] + 0.7152 * lin[:, 1:2] + 0.0722 * lin[:, 2:3]
    d = 6.0 / 29.0
    f = torch.where(y > d ** 3, y.clamp_min(d ** 3) ** (1.0 / 3.0), y / (3 * d * d) + 4.0 / 29.0)
    return (116.0 * f - 16.0) / 100.0


def _as_exposure(exposure, batch, ref):
    """A float or a (B,) / (B,1) tensor or sequence -> (B,) tensor on ref's device/dtype, validated."""
    if isinstance(exposure, bool):
        raise TypeError("exposure must be a float or a (B,) tensor, got bool")
    if isinstance(exposure, (int, float)):
        e = torch.full((batch,), float(exposure), dtype=ref.dtype, device=ref.device)
    else:
        e = torch.as_tensor(exposure, dtype=ref.dtype, device=ref.device).reshape(-1)
        if e.numel() == 1:
            e = e.expand(batch)
        if e.numel() != batch:
            raise ValueError(f"exposure must have one value per image ({batch}), got {e.numel()}")
    if not torch.isfinite(e).all() or (e <= 0).any() or (e >= 1).any():
        raise ValueError(f"exposure must lie in (0, 1), got {e.tolist()}")
    return e


class ECZeroDCE(nn.Module):
    """Exposure-conditioned curve estimator (darkener).

    Args:
        channels: hidden width (32 as Zero-DCE++).
        iterations: curve iterations (8).
        context: reduction of the input before the estimator (4).
        window: side in pixels of the local mean used by the exposure prior (16).
        gain: the input is multiplied by it before the curve (0.9; headroom
            to darken white). channels..gain define the trained model and are
            stored in checkpoints.
        scale_factor: extra reduction for speed on large images (1 = none),
            Zero-DCE++'s option; a coarser map (held-out patch error 0.016-0.040
            at 3 instead of 0.011-0.024 at 1).
        keep_saturated: keep pixels with lightness L/100 > 0.97 unchanged.
        preserve_color: scale the (gained) input's RGB by the ratio of the
            curve output's channel mean to the input's, as LEDNet scales RGB
            by its darkened lightness (default); False: each channel goes
            through its own curve, which raises colour saturation when darkening.
        impl: passed to the ops the model calls (:func:`tasklle.ops.separable_conv`,
            :func:`tasklle.ops.curve`): 'auto' (C on CPU), 'c' or 'reference'
            (their pure-PyTorch twins), by the ops' one rule
            (``tasklle.ops._common.use_c``); the same parameters either way.

    ``forward(x, exposure)``: x (B, 3, H, W) in [0, 1], any H, W >= 1;
    exposure a float or (B,) tensor in (0, 1). Returns ``(y, A)``:
    y (B, 3, H, W) darkened image in [0, 1], A (B, 3, H, W) curve map.
    """

    def __init__(self, channels=32, iterations=8, context=4, window=16, gain=0.9, scale_factor=1,
                 keep_saturated=False, preserve_color=True, impl="auto"):
        super().__init__()
        self.impl = check_impl(impl)  # the ops resolve it per call, so `model.impl` can be switched
        for name, v in (("channels", channels), ("iterations", iterations), ("context", context),
                        ("window", window)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not 0 < gain <= 1:
            raise ValueError(f"gain must be a number in (0, 1], got {gain!r}")
        self.channels = channels
        self.iterations = iterations
        self.context = context
        self.window = window
        self.gain = float(gain)
        self.scale_factor = scale_factor
        self.keep_saturated = bool(keep_saturated)
        self.preserve_color = bool(preserve_color)
        c = channels
        add_dce_layers(self, _SeparableConv, 5, c, 3)
        # condition branch: [E, log E] -> FiLM (scale, shift) for the six hidden layers
        self.cond = nn.Sequential(nn.Linear(2, 16), nn.ReLU(inplace=True), nn.Linear(16, 6 * 2 * c))

    @property
    def scale_factor(self):
        return self._scale_factor

    @scale_factor.setter
    def scale_factor(self, s):
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or s < 1:
            raise ValueError(f"scale_factor must be a number >= 1, got {s!r}")
        self._scale_factor = s

    def init_weights(self, std=0.02):
        """Conv weights ~ N(0, std), biases 0 (as the method's training); the
        condition branch keeps PyTorch's default init except a zero last layer
        (FiLM starts as the identity)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, std)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.cond[2].weight)
        nn.init.zeros_(self.cond[2].bias)
        return self

    def prior(self, small, exposure):
        """Exposure-matched initial map A0 (B, 1, h, w) on the reduced grid.

        The local mean m of the channel-mean image (a box of about
        ``window`` input pixels around each grid point) is solved for the A
        that the curve maps exactly to E: ``curve^n(m; A0) = E`` (the curve is
        decreasing in A for every x in (0, 1), so bisection on [-1, 1] finds
        it; m = 0 or 1 are fixed points and give A0 = -1 or 1). Computed
        without gradient: it depends on the input only.
        """
        with torch.no_grad():
            r = self.context * self.scale_factor
            k = 2 * max(0, round(self.window / (2 * r))) + 1
            m = small.mean(1, keepdim=True)
            if k > 1:
                m = F.avg_pool2d(m, k, stride=1, padding=k // 2, count_include_pad=False)
            e = exposure.reshape(-1, 1, 1, 1)
            lo = torch.full_like(m, -1.0)
            hi = torch.full_like(m, 1.0)
            for _ in range(_BISECTION_STEPS):
                mid = 0.5 * (lo + hi)
                y = m
                for _ in range(self.iterations):
                    y = y + mid * (y * y - y)
                too_bright = y > e  # needs a larger A (darker)
                lo = torch.where(too_bright, mid, lo)
                hi = torch.where(too_bright, hi, mid)
            return 0.5 * (lo + hi)

    def curve_map(self, x, exposure):
        """The curve map A (B, 3, H, W) in (-1, 1) for the gained input x (B, 3, H, W) and exposure (B,)."""
        B, _, H, W = x.shape
        r = self.context * self.scale_factor
        h, w = max(1, round(H / r)), max(1, round(W / r))
        small = F.adaptive_avg_pool2d(x, (h, w)) if (h, w) != (H, W) else x
        a0 = self.prior(small, exposure)
        e = exposure.reshape(B, 1, 1, 1)
        film = self.cond(torch.stack([exposure, exposure.log()], 1)).reshape(B, 6, 2, self.channels, 1, 1)

        impl = self.impl

        def act(layer, t, i):
            t = layer(t, impl=impl)  # ReLU comes after FiLM, so it is not fused into the block
            return F.relu(t * (1 + film[:, i, 0]) + film[:, i, 1])

        x1 = act(self.e_conv1, torch.cat([small, e.expand(B, 1, h, w), a0], 1), 0)
        x2 = act(self.e_conv2, x1, 1)
        x3 = act(self.e_conv3, x2, 2)
        x4 = act(self.e_conv4, x3, 3)
        x5 = act(self.e_conv5, (x3, x4), 4)  # pairs: the channel concatenations, read in place on CPU
        x6 = act(self.e_conv6, (x2, x5), 5)
        # the network predicts a residual in tanh's argument around the prior
        a = torch.tanh(torch.atanh(a0.clamp(-_A0_LIMIT, _A0_LIMIT)) + self.e_conv7((x1, x6), impl=impl))
        if (h, w) != (H, W):
            a = F.interpolate(a, size=(H, W), mode="bilinear", align_corners=True)
        return a

    def forward(self, x, exposure):
        check_images(x, "x")
        e = _as_exposure(exposure, x.shape[0], x)
        from ..ops.curve import curve

        xg = x * self.gain if self.gain != 1.0 else x
        a = self.curve_map(xg, e)
        y = curve(xg.contiguous(), a.contiguous(), iterations=self.iterations, impl=self.impl)
        if self.preserve_color:
            # LEDNet scales RGB by the ratio of darkened to original lightness: hue and
            # saturation stay; the channel mean (what L_exp and the fidelity see) is the curve's
            ratio = y.mean(1, keepdim=True) / xg.mean(1, keepdim=True).clamp_min(1e-6)
            y = (xg * ratio).clamp(0.0, 1.0)
        if self.keep_saturated:
            y = torch.where(lightness(x) > SATURATION_THRESHOLD, x, y)
        return y, a

    @torch.no_grad()
    def darken(self, x, exposure):
        """Inference helper: the darkened image only, no autograd."""
        return self.forward(x, exposure)[0]

    # -- checkpoints -------------------------------------------------------
    def config(self):
        return {"channels": self.channels, "iterations": self.iterations, "context": self.context,
                "window": self.window, "gain": self.gain}

    def save(self, path, extra=None):
        """Save {'config', 'state_dict', 'extra'} atomically (loadable with weights_only=True)."""
        from ..io import save_checkpoint

        save_checkpoint(path, {"model": "ECZeroDCE", "config": self.config(), "state_dict": self.state_dict(),
                               "extra": dict(extra or {})})

    @classmethod
    def load(cls, path, scale_factor=1, keep_saturated=False, preserve_color=True):
        """Load a checkpoint written by ``save`` (or a training checkpoint
        holding the same 'config' and 'state_dict')."""
        from ..io import load_checkpoint

        ckpt = load_checkpoint(path)
        if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "config" not in ckpt:
            raise ValueError(f"{path} is not an ECZeroDCE checkpoint (no 'config'/'state_dict')")
        model = cls(**ckpt["config"], scale_factor=scale_factor, keep_saturated=keep_saturated,
                    preserve_color=preserve_color)
        try:
            model.load_state_dict(ckpt["state_dict"])
        except RuntimeError as e:
            raise ValueError(f"{path}: weights do not match ECZeroDCE: {e}") from e
        return model.eval()

    @classmethod
    def shipped(cls, scale_factor=1, keep_saturated=False, preserve_color=True):
        """The shipped weights (``tasklle/weights/ec_zero_dce.pt``; see ``ec_zero_dce.md``), eval mode."""
        if not WEIGHTS.is_file():
            raise FileNotFoundError(f"shipped darkener weights not found: {WEIGHTS}")
        return cls.load(WEIGHTS, scale_factor=scale_factor, keep_saturated=keep_saturated,
                        preserve_color=preserve_color)

    @classmethod
    def pretrained(cls, scale_factor=1, keep_saturated=False, preserve_color=True):
        """Deprecated name of :meth:`shipped` (the name every model uses for its shipped weights)."""
        import warnings

        warnings.warn("ECZeroDCE.pretrained() is deprecated; use ECZeroDCE.shipped()", DeprecationWarning,
                      stacklevel=2)
        return cls.shipped(scale_factor=scale_factor, keep_saturated=keep_saturated, preserve_color=preserve_color)
