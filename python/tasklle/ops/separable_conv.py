"""The depthwise-separable block of DCE-Net++ (depthwise 3x3 with bias, zero
padding 1, then pointwise 1x1 with bias, optionally ReLU) as a torch op with
autograd: CPU float32/float64 tensors run the fused C kernels
(``csrc/core/separable_conv.c``), tensors on any other device run the
pure-PyTorch twin ``tasklle.reference.separable_conv`` with the same semantics
and the same errors.

The depthwise output is never stored: the C forward computes it per tile in
per-thread scratch and the C backward recomputes it, so the op saves only its
inputs (and its output when ``relu``, for the ReLU mask). The input may be
given as the two halves of a channel concatenation, which the kernels read in
place: neither the concatenation nor the split of its gradient is built.
"""
import torch
from torch.autograd.function import once_differentiable

from .. import _C
from ..reference.separable_conv import check_separable_conv_args
from ..reference.separable_conv import separable_conv as _reference
from ._common import c_array as _np
from ._common import use_c

__all__ = ["separable_conv"]


class _SeparableConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, x2, dw_weight, dw_bias, pw_weight, pw_bias, relu):
        # channels-last and strided inputs become NCHW-contiguous, the kernel's layout
        x, dw_weight, dw_bias, pw_weight, pw_bias = (t.contiguous() for t in (x, dw_weight, dw_bias, pw_weight,
                                                                             pw_bias))
        x2 = None if x2 is None else x2.contiguous()
        B, _, H, W = x.shape
        y = torch.empty((B, pw_weight.shape[0], H, W), dtype=x.dtype)
        _C.separable_conv_forward(_np(y), _np(x), None if x2 is None else _np(x2), _np(dw_weight), _np(dw_bias),
                                  _np(pw_weight), _np(pw_bias), relu)
        ctx.save_for_backward(x, x2, dw_weight, dw_bias, pw_weight, y if relu else None)
        ctx.relu = relu
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_y):
        x, x2, dw_weight, dw_bias, pw_weight, y = ctx.saved_tensors
        wants = list(ctx.needs_input_grad[:6])
        wants[1] = wants[1] and x2 is not None
        if not any(wants):
            return None, None, None, None, None, None, None
        like = (x, x2, dw_weight, dw_bias, pw_weight, dw_bias.new_empty(pw_weight.shape[0]))
        grads = [torch.empty_like(t, memory_format=torch.contiguous_format) if w else None
                 for t, w in zip(like, wants)]
        _C.separable_conv_backward(*(None if g is None else _np(g) for g in grads),
                                   _np(grad_y.to(x.dtype)), None if y is None else _np(y), _np(x),
                                   None if x2 is None else _np(x2), _np(dw_weight), _np(dw_bias), _np(pw_weight),
                                   ctx.relu)
        return (*grads, None)


def separable_conv(x, dw_weight, dw_bias, pw_weight, pw_bias, relu=False, impl="auto"):
    """Depthwise 3x3 convolution then pointwise 1x1 convolution, optionally ReLU.

    ``y = [relu](conv2d(conv2d(x, dw_weight, dw_bias, padding=1, groups=Cin), pw_weight, pw_bias))``

    Args:
        x: (B, Cin, H, W) float32/float64, H, W >= 1; any strides (channels-last
            and non-contiguous inputs are copied to NCHW-contiguous on CPU). Or
            a pair ``(a, b)`` of (B, Ca, H, W) and (B, Cb, H, W) tensors standing
            for ``torch.cat([a, b], 1)`` (Cin = Ca + Cb), which the C kernels
            read in place, without building the concatenation.
        dw_weight: (Cin, 1, 3, 3) depthwise kernel (stride 1, zero padding 1).
        dw_bias: (Cin,).
        pw_weight: (Cout, Cin, 1, 1) pointwise kernel.
        pw_bias: (Cout,).
        relu: apply ReLU to the output (fused; the backward masks with y > 0).
        impl: 'auto' (C on CPU, the twin elsewhere), 'c' or 'reference'
            (``tasklle.ops._common.use_c``; 'c' on a non-CPU tensor is a ValueError).

    Returns:
        (B, Cout, H, W), a new NCHW-contiguous tensor on CPU.

    Differentiable w.r.t. x and all four weights (first order; the C backward
    is not itself differentiable). On CPU the results are bit-identical for any
    thread count (the weight gradients are summed per tile in a fixed order)
    and equal to the twin's up to float rounding. NaN/inf in x propagate; a
    non-finite weight or bias raises ValueError. Raises
    TypeError/ValueError naming the argument for a wrong type, dtype
    (float32/float64, the same for all), shape or device.
    """
    parts, _, _ = check_separable_conv_args(x, dw_weight, dw_bias, pw_weight, pw_bias, relu)
    x2 = parts[1] if len(parts) == 2 else None
    if not use_c("separable_conv", impl, x=parts[0], x2=x2, dw_weight=dw_weight, dw_bias=dw_bias,
                 pw_weight=pw_weight, pw_bias=pw_bias):
        return _reference(x, dw_weight, dw_bias, pw_weight, pw_bias, relu)
    return _SeparableConv.apply(parts[0], x2, dw_weight, dw_bias, pw_weight, pw_bias, relu)
