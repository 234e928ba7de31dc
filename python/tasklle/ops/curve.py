"""The iterated enhancement curve of Zero-DCE / Zero-DCE++ as a torch op with
autograd: CPU float32/float64 tensors run the C core (``csrc/core/curve.c``),
tensors on any other device run the pure-PyTorch twin
``tasklle.reference.curve`` with the same semantics and the same errors.

The C backward recomputes the forward chain per pixel tile from x and A (the
only tensors saved for backward), so training memory does not grow with the
number of iterations, unlike the autograd graph of the twin, which keeps about
three (B,3,H,W) temporaries per iteration.
"""

import torch
from torch.autograd.function import once_differentiable

from .. import _C
from ..reference.curve import check_curve_args
from ..reference.curve import curve as _reference
from ._common import c_array as _np
from ._common import resolved, use_c

__all__ = ["curve", "curve_upsampled"]


class _Curve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, A, iterations, return_half):
        x = resolved(x)
        A = resolved(A)
        half_after = iterations // 2
        out = torch.empty_like(x, memory_format=torch.contiguous_format)
        half = torch.empty_like(x, memory_format=torch.contiguous_format) if return_half else None
        _C.curve_forward(_np(out), None if half is None else _np(half), _np(x), _np(A), iterations, half_after)
        ctx.save_for_backward(x, A)
        ctx.iterations = iterations
        ctx.half_after = half_after
        # unused output gradients arrive as None, which the kernel treats as zero
        ctx.set_materialize_grads(False)
        return (out, half) if return_half else out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_half=None):
        x, A = ctx.saved_tensors
        want_x, want_A = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_x = torch.empty_like(x) if want_x else None
        grad_A = torch.empty_like(A) if want_A else None
        if want_x or want_A:
            _C.curve_backward(
                None if grad_x is None else _np(grad_x),
                None if grad_A is None else _np(grad_A),
                None if grad_out is None else _np(grad_out.to(x.dtype)),
                None if grad_half is None else _np(grad_half.to(x.dtype)),
                _np(x), _np(A), ctx.iterations, ctx.half_after)
        return grad_x, grad_A, None, None


def curve(x, A, iterations=8, return_half=False, impl="auto"):
    """Apply the iterated enhancement curve ``x <- x + A_k * (x*x - x)``.

    Args:
        x: (B, 3, H, W) float32/float64 image, nominally in [0, 1] (not clamped).
        A: (B, 3, H, W) one curve map shared by every iteration (Zero-DCE++), or
            (B, 3*iterations, H, W) one map per iteration, map k = channels
            3k..3k+2 used in iteration k (Zero-DCE). The layout follows from the
            channel count; for iterations == 1 the two coincide.
        iterations: number of curve steps, 1 <= n <= 64
            (``tasklle.reference.curve.MAX_ITERATIONS``; default 8).
        return_half: also return the image after n // 2 steps (Zero-DCE returns
            the image after 4 of 8). Defined for both layouts.
        impl: 'auto' (C on CPU, the twin elsewhere), 'c' or 'reference'
            (``tasklle.ops._common.use_c``; 'c' on a non-CPU tensor is a ValueError).

    Returns:
        (B, 3, H, W) enhanced image (a new tensor, inputs are not modified), or
        ``(final, half)`` with ``return_half``.

    Differentiable w.r.t. x and A (first order; the C backward is not itself
    differentiable). Non-contiguous inputs are accepted (copied to contiguous).
    NaN/inf in x or A propagate to the outputs and gradients: nothing is
    clamped or masked. Raises TypeError/ValueError naming the argument for a
    wrong type, dtype (float32/float64 only, same for x and A), shape or device.
    """
    iterations, _ = check_curve_args(x, A, iterations, return_half)
    if not use_c("curve", impl, x=x, A=A):
        return _reference(x, A, iterations, return_half)
    return _Curve.apply(x, A, iterations, return_half)


def curve_upsampled(x, a, iterations=8, return_maps=True, impl="auto"):
    """Zero-DCE++ at a scale factor > 1, after the network: upsample the small
    curve map to the image's size (bilinear, ``align_corners=True``, as
    ``F.interpolate``) and apply the curve with it, in one pass over the image.

    Args:
        x: (B, 3, H, W) float32/float64 image.
        a: (B, 3, h, w) curve map at the network's size (h, w >= 1), same dtype.
        iterations: curve steps (1..64, default 8).
        return_maps: also return the full-resolution (B, 3, H, W) map.
        impl: 'auto', 'c' or 'reference' (``tasklle.ops._common.use_c``).

    Returns:
        ``(enhanced, maps)``, or ``enhanced`` alone without ``return_maps``.

    On CPU, when no gradient is wanted (grad mode off, or neither x nor a
    requires one), the C core does both in one pass
    (``tll_curve_upsample_forward``): each output row's map is interpolated
    into scratch and the curve applied at once, so the full map is never read
    back (and not even written without ``return_maps``). When a gradient is
    wanted: ``F.interpolate`` then :func:`curve` (the C curve and its C
    backward), under 'auto' and 'c' alike. With ``impl='reference'`` and on other devices: the twin
    ``tasklle.reference.curve.curve_upsampled`` (plain torch). Same errors on
    every path.
    """
    from ..reference.curve import check_curve_upsampled_args
    from ..reference.curve import curve_upsampled as _ref_upsampled

    iterations = check_curve_upsampled_args(x, a, iterations)
    if not isinstance(return_maps, bool):
        raise TypeError(f"return_maps must be a bool, got {type(return_maps).__name__}")
    if not use_c("curve_upsampled", impl, x=x, a=a):
        return _ref_upsampled(x, a, iterations, return_maps)
    if torch.is_grad_enabled() and (x.requires_grad or a.requires_grad):
        # a gradient is wanted: torch's upsampling, then the C curve op with its C backward
        import torch.nn.functional as F

        maps = F.interpolate(a, size=tuple(x.shape[2:]), mode="bilinear", align_corners=True)
        out = curve(x, maps, iterations, impl="c")
        return (out, maps) if return_maps else out
    x, a = resolved(x), resolved(a)
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    maps = torch.empty_like(x, memory_format=torch.contiguous_format) if return_maps else None
    _C.curve_upsample_forward(_np(out), None if maps is None else _np(maps), _np(x), _np(a), iterations)
    return (out, maps) if return_maps else out
