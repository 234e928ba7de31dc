"""Sensor noise for synthetic low-light images.

Two models, both seeded per image (every random draw comes from one
``torch.Generator``) and both returning ``(noisy, params)`` where params is a
JSON-ready dict of what was drawn, so a dataset manifest can record it.

``lednet`` (default; LEDNet, Zhou et al. ECCV 2022, REFERENCE §3). The facts
follow LEDNet's released data pipeline (``AddGaussianNoise`` in its dataset
code calling BasicSR's NumPy ``random_add_gaussian_noise`` /
``random_add_poisson_noise``):

- with probability 0.5 Gaussian noise, otherwise Poisson noise;
- 30% of the time the noise is grey (one noise field on all three channels);
- Gaussian: sigma ~ U(0, 8) (in 8-bit units), ``noise = N(0, 1) * sigma / 255``;
- Poisson: scale ~ U(0.1, 1.2). The image (or, for grey noise, its grey
  version ``0.299 R + 0.587 G + 0.114 B``) is rounded to 8-bit levels ``q``;
  ``vals = 2 ** ceil(log2(number of distinct levels))``;
  ``noise = (Poisson(q * vals) / vals - q) * scale``. A dark image has few
  distinct levels, hence a small ``vals`` and relatively strong noise;
- ``out = clip(image + noise, 0, 1)`` (the noise is added to the unrounded image).

Draw order (fixed, so a seed reproduces an image): u (Gaussian if u < 0.5),
the parameter (sigma or scale), g (grey if g < 0.3), then the noise field.

``physical`` (ours): the sRGB image is linearised (sRGB transfer function),
expressed in electrons with a per-image white level W (electrons at full
scale), given shot noise ``Poisson(W * x_lin) / W`` (independent per channel)
and Gaussian read noise of ``r`` electrons, ``/ W``; then re-encoded with the
sRGB transfer function and clipped to [0, 1]. Per image
``W ~ logU(200, 5000)`` electrons (a small-pixel sensor from high to moderate
ISO) and ``r ~ logU(0.5, 5)`` electrons; both can be fixed by the caller.
Draw order: W, r, shot noise, read noise.
"""
import math

import torch

from ._checks import check_images

__all__ = ["add_noise", "lednet_noise", "physical_noise", "generator_for", "NOISE_KINDS"]

NOISE_KINDS = ("lednet", "physical", None)

# LEDNet's parameters (REFERENCE §3)
GAUSSIAN_PROB = 0.5
GAUSSIAN_SIGMA_RANGE = (0.0, 8.0)  # in 8-bit units: noise std = sigma / 255
POISSON_SCALE_RANGE = (0.1, 1.2)
GRAY_PROB = 0.3
# physical model defaults (ours)
WHITE_LEVEL_RANGE = (200.0, 5000.0)  # electrons at full scale, log-uniform
READ_NOISE_RANGE = (0.5, 5.0)  # electrons (std), log-uniform


def generator_for(seed):
    """A CPU ``torch.Generator`` seeded with ``seed`` (an int >= 0)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def _uniform(g, lo, hi):
    return lo + (hi - lo) * torch.rand((), generator=g, dtype=torch.float64).item()


def _log_uniform(g, lo, hi):
    return math.exp(_uniform(g, math.log(lo), math.log(hi)))


def _poisson_counts_noise(q, g, scale):
    """BasicSR's Poisson noise on an image ``q`` already rounded to 8-bit levels."""
    # distinct 8-bit levels by counting (q holds multiples of 1/255): O(n), unlike a sort
    levels = int((torch.bincount((q * 255.0).round().to(torch.int64).flatten(), minlength=256) > 0).sum())
    vals = 2.0 ** math.ceil(math.log2(levels)) if levels > 1 else 1.0
    out = torch.poisson(q * vals, generator=g) / vals
    return (out - q) * scale, int(vals)


def lednet_noise(image, generator):
    """LEDNet's noise on one image (3, H, W) in [0, 1] -> ``(noisy, params)``.

    params: {'kind': 'lednet', 'type': 'gaussian'|'poisson', 'gray': bool,
    'sigma': float (8-bit units) or 'scale': float and 'vals': int}.
    """
    check_images(image, "image", batched=False)
    g = generator
    x = image.float()
    _, H, W = x.shape
    gaussian = torch.rand((), generator=g, dtype=torch.float64).item() < GAUSSIAN_PROB
    if gaussian:
        sigma = _uniform(g, *GAUSSIAN_SIGMA_RANGE)
        gray = torch.rand((), generator=g, dtype=torch.float64).item() < GRAY_PROB
        if gray:
            noise = torch.randn((1, H, W), generator=g).expand(3, H, W) * (sigma / 255.0)
        else:
            noise = torch.randn((3, H, W), generator=g) * (sigma / 255.0)
        params = {"kind": "lednet", "type": "gaussian", "gray": gray, "sigma": sigma}
    else:
        scale = _uniform(g, *POISSON_SCALE_RANGE)
        gray = torch.rand((), generator=g, dtype=torch.float64).item() < GRAY_PROB
        if gray:
            grey = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).unsqueeze(0)
            q = (grey * 255.0).round().clamp(0, 255) / 255.0
            noise, vals = _poisson_counts_noise(q, g, scale)
            noise = noise.expand(3, H, W)
        else:
            q = (x * 255.0).round().clamp(0, 255) / 255.0
            noise, vals = _poisson_counts_noise(q, g, scale)
        params = {"kind": "lednet", "type": "poisson", "gray": gray, "scale": scale, "vals": vals}
    return (x + noise).clamp_(0.0, 1.0).to(image.dtype), params


def _srgb_to_linear(x):
    return torch.where(x <= 0.04045, x / 12.92, ((x.clamp_min(0) + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x):
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(1e-12) ** (1.0 / 2.4) - 0.055)


def physical_noise(image, generator, white_level=None, read_noise=None):
    """Shot + read noise in linear space, then sRGB gamma -> ``(noisy, params)``.

    image (3, H, W) sRGB in [0, 1]; white_level (electrons at full scale) and
    read_noise (electrons, std) are drawn log-uniformly from
    ``WHITE_LEVEL_RANGE`` / ``READ_NOISE_RANGE`` unless given.
    params: {'kind': 'physical', 'white_level': float, 'read_noise': float}.
    """
    check_images(image, "image", batched=False)
    g = generator
    wl = _log_uniform(g, *WHITE_LEVEL_RANGE)
    rn = _log_uniform(g, *READ_NOISE_RANGE)
    # the draws above always happen, so fixing one parameter leaves the others' draws unchanged
    if white_level is not None:
        if not (isinstance(white_level, (int, float)) and white_level > 0 and math.isfinite(white_level)):
            raise ValueError(f"white_level must be a positive number, got {white_level!r}")
        wl = float(white_level)
    if read_noise is not None:
        if not (isinstance(read_noise, (int, float)) and read_noise >= 0 and math.isfinite(read_noise)):
            raise ValueError(f"read_noise must be a non-negative number, got {read_noise!r}")
        rn = float(read_noise)
    lin = _srgb_to_linear(image.float().clamp(0.0, 1.0))
    electrons = torch.poisson(lin * wl, generator=g)
    electrons = electrons + torch.randn(lin.shape, generator=g) * rn
    out = _linear_to_srgb(electrons / wl)
    return out.to(image.dtype), {"kind": "physical", "white_level": wl, "read_noise": rn}


def add_noise(image, kind="lednet", generator=None, seed=None, **params):
    """Add noise of ``kind`` ('lednet', 'physical' or None) to one image (3, H, W).

    Randomness comes from ``generator`` or, if None, a generator seeded with
    ``seed`` (None: a random seed from torch's default generator).
    Returns ``(noisy, params)``; for kind None the image itself and {'kind': None}.
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"kind must be one of {NOISE_KINDS}, got {kind!r}")
    if kind is None:
        check_images(image, "image", batched=False)
        return image, {"kind": None}
    if generator is None:
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()).item())
        generator = generator_for(seed)
    elif not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if kind == "lednet":
        if params:
            raise TypeError(f"lednet noise takes no parameters, got {sorted(params)}")
        return lednet_noise(image, generator)
    return physical_noise(image, generator, **params)
