"""Pure-PyTorch twin of the C curve kernel (REFERENCE section 2): the
specification the tests hold ``tasklle.ops.curve`` to, and the path used on
non-CPU devices.

The iterated light-enhancement curve of Zero-DCE (Guo et al., CVPR 2020) and
Zero-DCE++ (Li et al., TPAMI 2021), written as the official code writes it::

    x <- x + A_k * (x*x - x)        k = 0 .. iterations-1, no clamping

(equivalently ``x - A_k*x*(1-x)``: the official A is the negative of the
paper's alpha).
"""
import numbers

import torch

__all__ = ["curve", "check_curve_args", "curve_upsampled", "check_curve_upsampled_args", "MAX_ITERATIONS"]

_DTYPES = (torch.float32, torch.float64)

#: The largest accepted number of curve steps. Zero-DCE / Zero-DCE++ use 8 and
#: LEDNet's darkener 10; the bound keeps one call's time and the twin's autograd
#: memory (about three images per step) a small multiple of the input, so a
#: mistyped count fails at once instead of running for minutes. The C binding
#: enforces the same bound (TLL_MAX_CURVE_ITERATIONS).
MAX_ITERATIONS = 64


def check_curve_args(x, A, iterations, return_half):
    """Validate the arguments of ``curve`` (shared by the C op and this twin, so
    both raise the same exceptions). Returns ``(iterations, per_iteration)``.

    Raises TypeError for a wrong type or dtype, ValueError for a wrong shape,
    device or value; every message names the argument.
    """
    for name, t in (("x", x), ("A", A)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in _DTYPES:
            raise TypeError(f"{name} must have dtype float32 or float64, got {t.dtype}")
    if A.dtype != x.dtype:
        raise TypeError(f"A and x must have the same dtype ({A.dtype} vs {x.dtype})")
    if A.device != x.device:
        raise ValueError(f"A and x must be on the same device ({A.device} vs {x.device})")
    if isinstance(iterations, bool) or not isinstance(iterations, numbers.Integral):
        raise TypeError(f"iterations must be an int, got {type(iterations).__name__}")
    iterations = int(iterations)
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if iterations > MAX_ITERATIONS:
        raise ValueError(f"iterations must be <= {MAX_ITERATIONS} (methods use 8 to 10), got {iterations}")
    if not isinstance(return_half, bool):
        raise TypeError(f"return_half must be a bool, got {type(return_half).__name__}")
    if x.ndim != 4:
        raise ValueError(f"x must have 4 dimensions (B, 3, H, W), got shape {tuple(x.shape)}")
    if A.ndim != 4:
        raise ValueError(f"A must have 4 dimensions (B, 3 or 3*iterations, H, W), got shape {tuple(A.shape)}")
    if x.shape[1] != 3:
        raise ValueError(f"x must have 3 channels, got shape {tuple(x.shape)}")
    if A.shape[1] not in (3, 3 * iterations):
        raise ValueError(f"A must have 3 channels (shared map) or 3*iterations = {3 * iterations} "
                         f"(one map per iteration), got shape {tuple(A.shape)}")
    if (A.shape[0], A.shape[2], A.shape[3]) != (x.shape[0], x.shape[2], x.shape[3]):
        raise ValueError(f"A must have the batch size, height and width of x: A {tuple(A.shape)} "
                         f"vs x {tuple(x.shape)}")
    return iterations, A.shape[1] != 3


def curve(x, A, iterations=8, return_half=False):
    """Apply the iterated enhancement curve (reference twin of ``tasklle.ops.curve``).

    Args:
        x: (B, 3, H, W) float32/float64 image, nominally in [0, 1] (not clamped).
        A: (B, 3, H, W) one curve map shared by every iteration (Zero-DCE++), or
            (B, 3*iterations, H, W) one map per iteration, map k = channels
            3k..3k+2 used in iteration k (Zero-DCE). For iterations == 1 the two
            layouts coincide.
        iterations: number of curve steps, 1 <= n <= MAX_ITERATIONS (64; default 8).
        return_half: also return the image after n // 2 steps (Zero-DCE
            returns the image after 4 of 8). Defined for both layouts.

    Returns:
        (B, 3, H, W) enhanced image, or ``(final, half)`` with ``return_half``.
        NaN/inf in x or A propagate to the outputs and gradients (no clamping,
        no masking). Differentiable w.r.t. x and A by torch autograd.
    """
    iterations, per_iteration = check_curve_args(x, A, iterations, return_half)
    half_after = iterations // 2
    half = x if half_after == 0 else None
    for k in range(iterations):
        a = A[:, 3 * k:3 * k + 3] if per_iteration else A
        x = x + a * (x * x - x)
        if k + 1 == half_after:
            half = x
    if return_half:
        # a fresh tensor even when half is the input itself (iterations == 1)
        return x, (half.clone() if half_after == 0 else half)
    return x


def check_curve_upsampled_args(x, a, iterations):
    """Validate the arguments of ``curve_upsampled`` (shared by the C op and
    this twin). Returns ``iterations``. TypeError / ValueError naming the argument."""
    iterations, _ = check_curve_args(x, x, iterations, False)  # x and iterations as for curve
    if not isinstance(a, torch.Tensor):
        raise TypeError(f"a must be a torch.Tensor, got {type(a).__name__}")
    if a.dtype != x.dtype:
        raise TypeError(f"a and x must have the same dtype ({a.dtype} vs {x.dtype})")
    if a.device != x.device:
        raise ValueError(f"a and x must be on the same device ({a.device} vs {x.device})")
    if a.ndim != 4 or a.shape[0] != x.shape[0] or a.shape[1] != 3 or a.shape[2] < 1 or a.shape[3] < 1:
        raise ValueError(f"a must have shape (B, 3, h, w) with x's batch size and h, w >= 1, got "
                         f"{tuple(a.shape)} (x {tuple(x.shape)})")
    return iterations


def curve_upsampled(x, a, iterations=8, return_maps=True):
    """Zero-DCE++'s last two stages at a scale factor > 1: the (B, 3, h, w) map
    ``a`` brought to x's (H, W) with bilinear interpolation,
    ``align_corners=True`` (``F.interpolate``), then the curve with that shared
    map. Returns ``(enhanced, maps)`` ((B, 3, H, W) each), or ``enhanced``
    alone without ``return_maps``. Differentiable (plain torch)."""
    iterations = check_curve_upsampled_args(x, a, iterations)
    if not isinstance(return_maps, bool):
        raise TypeError(f"return_maps must be a bool, got {type(return_maps).__name__}")
    import torch.nn.functional as F

    maps = F.interpolate(a, size=tuple(x.shape[2:]), mode="bilinear", align_corners=True)
    out = curve(x, maps, iterations)
    return (out, maps) if return_maps else out
