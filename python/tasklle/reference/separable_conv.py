"""Pure-PyTorch twin of the C depthwise-separable convolution kernel
(``csrc/core/separable_conv.c``): the specification the tests hold
``tasklle.ops.separable_conv`` to, and the path used on non-CPU devices.

The block of DCE-Net++ (Zero-DCE++'s ``CSDN_Tem``, reused by the EC-Zero-DCE
darkener)::

    y = [relu]( conv1x1( depthwise3x3(x; dw_weight, dw_bias, padding 1); pw_weight, pw_bias ) )
"""
import torch
import torch.nn.functional as F

__all__ = ["separable_conv", "check_separable_conv_args"]

_DTYPES = (torch.float32, torch.float64)


def check_separable_conv_args(x, dw_weight, dw_bias, pw_weight, pw_bias, relu):
    """Validate the arguments of ``separable_conv`` (shared by the C op and this
    twin, so both raise the same exceptions). Returns ``(cin, cout)``.

    Raises TypeError for a wrong type or dtype, ValueError for a wrong shape or
    device; every message names the argument.
    """
    named = (("x", x), ("dw_weight", dw_weight), ("dw_bias", dw_bias), ("pw_weight", pw_weight),
             ("pw_bias", pw_bias))
    for name, t in named:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in _DTYPES:
            raise TypeError(f"{name} must have dtype float32 or float64, got {t.dtype}")
    for name, t in named[1:]:
        if t.dtype != x.dtype:
            raise TypeError(f"{name} and x must have the same dtype ({t.dtype} vs {x.dtype})")
        if t.device != x.device:
            raise ValueError(f"{name} and x must be on the same device ({t.device} vs {x.device})")
    if not isinstance(relu, bool):
        raise TypeError(f"relu must be a bool, got {type(relu).__name__}")
    if x.ndim != 4:
        raise ValueError(f"x must have 4 dimensions (B, C, H, W), got shape {tuple(x.shape)}")
    cin = x.shape[1]
    if cin < 1 or x.shape[2] < 1 or x.shape[3] < 1:
        raise ValueError(f"x must have at least one channel, row and column, got shape {tuple(x.shape)}")
    if tuple(dw_weight.shape) != (cin, 1, 3, 3):
        raise ValueError(f"dw_weight must have shape ({cin}, 1, 3, 3) for x with {cin} channels, "
                         f"got {tuple(dw_weight.shape)}")
    if tuple(dw_bias.shape) != (cin,):
        raise ValueError(f"dw_bias must have shape ({cin},), got {tuple(dw_bias.shape)}")
    if pw_weight.ndim != 4 or pw_weight.shape[0] < 1 or tuple(pw_weight.shape[1:]) != (cin, 1, 1):
        raise ValueError(f"pw_weight must have shape (Cout >= 1, {cin}, 1, 1), got {tuple(pw_weight.shape)}")
    cout = pw_weight.shape[0]
    if tuple(pw_bias.shape) != (cout,):
        raise ValueError(f"pw_bias must have shape ({cout},), got {tuple(pw_bias.shape)}")
    return cin, cout


def separable_conv(x, dw_weight, dw_bias, pw_weight, pw_bias, relu=False):
    """Depthwise 3x3 then pointwise 1x1, optionally ReLU (twin of ``tasklle.ops.separable_conv``).

    Args:
        x: (B, Cin, H, W) float32/float64, H, W >= 1.
        dw_weight: (Cin, 1, 3, 3) depthwise kernel (groups = Cin, stride 1, zero padding 1).
        dw_bias: (Cin,).
        pw_weight: (Cout, Cin, 1, 1) pointwise kernel.
        pw_bias: (Cout,).
        relu: apply ReLU to the output.

    Returns:
        (B, Cout, H, W). NaN/inf propagate (nothing is clamped or masked).
        Differentiable w.r.t. every tensor argument by torch autograd.
    """
    cin, _ = check_separable_conv_args(x, dw_weight, dw_bias, pw_weight, pw_bias, relu)
    y = F.conv2d(F.conv2d(x, dw_weight, dw_bias, padding=1, groups=cin), pw_weight, pw_bias)
    return F.relu(y) if relu else y
