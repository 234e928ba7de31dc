"""Pure-PyTorch twins of the fused Zero-DCE losses (the specification the C core
is tested against, and the path used on non-CPU devices).

Each function computes exactly what the official Zero-DCE / Zero-DCE++ training
code computes (``Myloss.py`` + ``lowlight_train.py``; REFERENCE.md section 2),
reduced to the batch-mean scalar the training uses:

- ``spatial_consistency``: channel mean, ``pool_size`` average pooling (floor),
  4-neighbour differences with zero padding (the official 3x3 conv kernels),
  ``sum over directions (D_I - D_Y)^2``, mean over (B, H/4, W/4).
- ``exposure_control``: channel mean, ``patch_size`` average pooling,
  ``mean((pooled - E)^2)`` (squared, as the code does; the paper says absolute).
- ``color_constancy``: ``sqrt((mr-mg)^4 + (mr-mb)^4 + (mb-mg)^4)`` per image,
  batch mean. Where the three channel means are equal the square root has no
  derivative; we use 0 there, the continuous extension (|dk/dm| <= 2 max|d|).
  The official code would give NaN.
- ``illumination_smoothness``:
  ``2 * (sum dA_h^2 / ((H-1)*W) + sum dA_w^2 / (H*(W-1))) / B``; a direction with
  a single row (column) contributes 0 (the official code divides 0 by 0).

Non-finite values (the rule both paths follow): every formula above is
evaluated with IEEE arithmetic exactly as written -- differences of neighbours,
squares, means, the square root of L_col -- and nothing is clamped or masked.
So NaN in an input gives NaN in the terms that read it, and in the gradient
elements whose formula reads it; an infinity gives inf where the formula gives
inf and NaN where it meets ``inf - inf``, ``0 * inf`` or ``inf / inf`` (L_col's
gradient at an infinite channel mean is ``inf / inf``: NaN). The neighbour
differences of L_spa are subtractions, not a convolution whose zero taps would
multiply an infinity (see ``_neighbour_differences``). The C core follows the same
rule; tests compare which elements are NaN / inf on both paths.

Validation helpers here are shared with ``tasklle.ops.zero_dce_losses`` so both
paths raise the same exceptions for the same bad input.
"""
import math
import numbers

import torch
import torch.nn.functional as F

from .._checks import check_images

TERMS = ("spa", "exp", "col", "tv")
DEFAULT_WEIGHTS = {"spa": 1.0, "exp": 10.0, "col": 5.0, "tv": 1600.0}


# ---- validation (shared with the C path) ------------------------------------

def _check_pool(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _check_fits(x, pool, what, name):
    h, w = x.shape[-2:]
    if h < pool or w < pool:
        raise ValueError(f"{what}: {name} must be at least {pool}x{pool} (the pool size), got {h}x{w}")


def _check_same(a, na, b, nb):
    if a.shape != b.shape:
        raise ValueError(f"{na} and {nb} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.dtype != b.dtype:
        raise TypeError(f"{na} and {nb} must have the same dtype, got {a.dtype} and {b.dtype}")
    if a.device != b.device:
        raise ValueError(f"{na} and {nb} must be on the same device, got {a.device} and {b.device}")


def _exposure_vector(exposure, batch, like):
    """``exposure`` (a number, or a tensor/sequence of 1 or B values) -> (B,) tensor
    on ``like``'s device (float64 keeps the target exact; gradients flow if it
    requires them)."""
    if isinstance(exposure, bool):
        raise TypeError("exposure must be a number or a (B,) tensor, got bool")
    if isinstance(exposure, numbers.Real):
        if not math.isfinite(exposure):
            raise ValueError(f"exposure must be finite, got {exposure}")
        return torch.full((batch,), float(exposure), dtype=torch.float64, device=like.device)
    if not isinstance(exposure, torch.Tensor):
        try:
            exposure = torch.as_tensor(exposure, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"exposure must be a number or a (B,) tensor, got {type(exposure).__name__}") from None
    if exposure.is_complex() or exposure.dtype == torch.bool:
        raise TypeError(f"exposure must be real, got {exposure.dtype}")
    if exposure.numel() not in (1, batch) or exposure.dim() > 1:
        raise ValueError(f"exposure must be a number or have shape ({batch},), got shape {tuple(exposure.shape)}")
    if not torch.isfinite(exposure.detach()).all():
        raise ValueError("exposure must be finite")
    e = exposure.to(device=like.device, dtype=torch.float64).reshape(-1)
    return e.expand(batch) if e.numel() == 1 else e


def _check_weights(weights):
    out = dict(DEFAULT_WEIGHTS)
    if weights is None:
        return out
    if not hasattr(weights, "items"):
        raise TypeError(f"weights must be a dict like {DEFAULT_WEIGHTS}, got {type(weights).__name__}")
    for k, v in weights.items():
        if k not in DEFAULT_WEIGHTS:
            raise ValueError(f"weights: unknown term {k!r} (known: {', '.join(TERMS)})")
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ValueError(f"weights[{k!r}] must be a finite number, got {v!r}")
        out[k] = float(v)
    return out


def _check_terms(terms):
    if isinstance(terms, str):
        terms = (terms,)
    terms = tuple(terms)
    if not terms:
        raise ValueError("terms must name at least one of " + ", ".join(TERMS))
    for t in terms:
        if t not in TERMS:
            raise ValueError(f"terms: unknown term {t!r} (known: {', '.join(TERMS)})")
    return tuple(t for t in TERMS if t in terms)


def check_arguments(enhanced, original, curve_maps, exposure, weights, spa_pool, exp_pool, terms):
    """Validate the arguments of ``zero_dce_losses``; returns
    ``(terms, weights, spa_pool, exp_pool, exposure (B,) or None)``."""
    terms = _check_terms(terms)
    weights = _check_weights(weights)
    spa_pool = _check_pool(spa_pool, "spa_pool")
    exp_pool = _check_pool(exp_pool, "exp_pool")
    image_terms = [t for t in terms if t != "tv"]
    batch = None
    if image_terms:
        check_images(enhanced, "enhanced")
        batch = enhanced.shape[0]
    if "spa" in terms:
        if original is None:
            raise ValueError("original is required for the spatial consistency term")
        check_images(original, "original")
        _check_same(enhanced, "enhanced", original, "original")
        _check_fits(enhanced, spa_pool, "spatial consistency", "enhanced")
    if "exp" in terms:
        _check_fits(enhanced, exp_pool, "exposure control", "enhanced")
    if "tv" in terms:
        if curve_maps is None:
            raise ValueError("curve_maps is required for the illumination smoothness term")
        check_images(curve_maps, "curve_maps", channels=None)
        if batch is not None:
            if curve_maps.shape[0] != batch:
                raise ValueError(f"curve_maps must have the batch size of enhanced ({batch}), "
                                 f"got {curve_maps.shape[0]}")
            if curve_maps.dtype != enhanced.dtype:
                raise TypeError(f"curve_maps and enhanced must have the same dtype, got {curve_maps.dtype} "
                                f"and {enhanced.dtype}")
            if curve_maps.device != enhanced.device:
                raise ValueError("curve_maps and enhanced must be on the same device")
    e = _exposure_vector(exposure, batch, enhanced) if "exp" in terms else None
    return terms, weights, spa_pool, exp_pool, e


# ---- the four losses (official formulation) -----------------------------------

def _neighbour_differences(p):
    """(B, 4, h, w): centre minus its left / right / upper / lower neighbour, zero
    outside the grid -- what the official 3x3 kernels compute. Written as
    subtractions rather than a convolution: conv2d also multiplies the kernels'
    zero taps, and 0 * inf = NaN would turn one infinite cell into NaN across its
    3x3 neighbourhood (values and gradients), which the formula does not say."""
    q = F.pad(p, (1, 1, 1, 1))
    return torch.cat((p - q[..., 1:-1, :-2], p - q[..., 1:-1, 2:], p - q[..., :-2, 1:-1], p - q[..., 2:, 1:-1]), 1)


def _spa(enhanced, original, pool_size):
    y = F.avg_pool2d(enhanced.mean(1, keepdim=True), pool_size)
    i = F.avg_pool2d(original.mean(1, keepdim=True), pool_size)
    d_i = _neighbour_differences(i)  # (B, 4, h, w): one channel per direction
    d_y = _neighbour_differences(y)
    return (d_i - d_y).pow(2).sum(1).mean()


def _exp(enhanced, e, patch_size):
    pooled = F.avg_pool2d(enhanced.mean(1, keepdim=True), patch_size)
    return (pooled - e.to(pooled.dtype).view(-1, 1, 1, 1)).pow(2).mean()


def _col(enhanced):
    m = enhanced.mean((2, 3))
    mr, mg, mb = m[:, 0], m[:, 1], m[:, 2]
    k2 = (mr - mg).pow(4) + (mr - mb).pow(4) + (mb - mg).pow(4)
    # sqrt with gradient 0 at 0 (instead of inf * 0 = NaN); NaN still propagates.
    pos = k2 > 0
    k = torch.where(pos, torch.where(pos, k2, torch.ones_like(k2)).sqrt(), k2)
    return k.mean()


def _tv(curve_maps):
    b, _, h, w = curve_maps.shape
    count_h = (h - 1) * w
    count_w = h * (w - 1)
    h_tv = (curve_maps[:, :, 1:, :] - curve_maps[:, :, :-1, :]).pow(2).sum()
    w_tv = (curve_maps[:, :, :, 1:] - curve_maps[:, :, :, :-1]).pow(2).sum()
    # a single row / column: the (empty, zero) sum is not divided by 0
    th = h_tv / count_h if count_h > 0 else h_tv
    tw = w_tv / count_w if count_w > 0 else w_tv
    return 2 * (th + tw) / b


def spatial_consistency(enhanced, original, pool_size=4):
    """L_spa of (B, 3, H, W) ``enhanced`` and ``original``: a scalar (batch mean)."""
    check_images(enhanced, "enhanced")
    check_images(original, "original")
    _check_same(enhanced, "enhanced", original, "original")
    pool_size = _check_pool(pool_size, "pool_size")
    _check_fits(enhanced, pool_size, "spatial consistency", "enhanced")
    return _spa(enhanced, original, pool_size)


def exposure_control(enhanced, exposure=0.6, patch_size=16):
    """L_exp of (B, 3, H, W) ``enhanced`` with target ``exposure`` (a number or (B,))."""
    check_images(enhanced, "enhanced")
    patch_size = _check_pool(patch_size, "patch_size")
    _check_fits(enhanced, patch_size, "exposure control", "enhanced")
    return _exp(enhanced, _exposure_vector(exposure, enhanced.shape[0], enhanced), patch_size)


def color_constancy(enhanced):
    """L_col of (B, 3, H, W) ``enhanced``: a scalar (batch mean)."""
    check_images(enhanced, "enhanced")
    return _col(enhanced)


def illumination_smoothness(curve_maps):
    """L_tvA of (B, C, H, W) ``curve_maps``: a scalar."""
    check_images(curve_maps, "curve_maps", channels=None)
    return _tv(curve_maps)


def zero_dce_losses(enhanced, original, curve_maps, exposure=0.6, weights=None, spa_pool=4, exp_pool=16,
                    terms=TERMS):
    """Weighted total and unweighted terms: ``(total, {'spa','exp','col','tv'})``
    (only the requested ``terms``); ``total = sum weights[t] * term_t``."""
    terms, weights, spa_pool, exp_pool, e = check_arguments(enhanced, original, curve_maps, exposure, weights,
                                                            spa_pool, exp_pool, terms)
    out = {}
    if "spa" in terms:
        out["spa"] = _spa(enhanced, original, spa_pool)
    if "exp" in terms:
        out["exp"] = _exp(enhanced, e, exp_pool)
    if "col" in terms:
        out["col"] = _col(enhanced)
    if "tv" in terms:
        out["tv"] = _tv(curve_maps)
    total = sum(weights[t] * v for t, v in out.items())
    return total, out
