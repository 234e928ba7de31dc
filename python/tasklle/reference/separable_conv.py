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
    twin, so both raise the same exceptions). Returns ``(parts, cin, cout)``:
    the input as a tuple of one or two tensors, and the channel counts.

    Raises TypeError for a wrong type or dtype, ValueError for a wrong shape,
    device or a non-finite weight/bias; every message names the argument.
    """
    if isinstance(x, (tuple, list)):
        if len(x) != 2:
            raise ValueError(f"x must be a tensor or a pair of tensors (the halves of a channel "
                             f"concatenation), got a sequence of {len(x)}")
        parts = tuple(x)
        xnamed = (("x[0]", parts[0]), ("x[1]", parts[1]))
    else:
        parts = (x,)
        xnamed = (("x", x),)
    named = xnamed + (("dw_weight", dw_weight), ("dw_bias", dw_bias), ("pw_weight", pw_weight),
                      ("pw_bias", pw_bias))
    x = parts[0]
    for name, t in named:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in _DTYPES:
            raise TypeError(f"{name} must have dtype float32 or float64, got {t.dtype}")
    for name, t in named[1:]:
        if t.dtype != x.dtype:
            raise TypeError(f"{name} and {named[0][0]} must have the same dtype ({t.dtype} vs {x.dtype})")
        if t.device != x.device:
            raise ValueError(f"{name} and {named[0][0]} must be on the same device ({t.device} vs {x.device})")
    if not isinstance(relu, bool):
        raise TypeError(f"relu must be a bool, got {type(relu).__name__}")
    for name, t in xnamed:
        if t.ndim != 4:
            raise ValueError(f"{name} must have 4 dimensions (B, C, H, W), got shape {tuple(t.shape)}")
        if t.shape[1] < 1 or t.shape[2] < 1 or t.shape[3] < 1:
            raise ValueError(f"{name} must have at least one channel, row and column, got shape {tuple(t.shape)}")
    if len(parts) == 2 and (parts[1].shape[0], *parts[1].shape[2:]) != (x.shape[0], *x.shape[2:]):
        raise ValueError(f"x[1] must have the batch size, height and width of x[0]: {tuple(parts[1].shape)} "
                         f"vs {tuple(x.shape)}")
    cin = sum(t.shape[1] for t in parts)
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
    # Non-finite weights are refused, not propagated: with an inf tap, the
    # zero padding turns into inf*0 = NaN at the border in the twin while the C
    # kernel never multiplies padding, so the two paths could only agree by
    # making the kernel slower; a NaN weight also means training has diverged,
    # which deserves an error rather than a NaN image. Weights are small: one
    # pass over all four (x * 0 is 0 for every finite x, NaN otherwise) costs 3
    # small torch ops per call instead of 28 for four isfinite().all(), which
    # was 5% of Zero-DCE++ inference at scale 12; the argument is named only
    # when there is something to report. (Meta tensors have no values to check.)
    weights = named[len(xnamed):]
    if x.device.type != "meta":
        flat = torch.cat([t.detach().reshape(-1) for _, t in weights])
        if not bool((flat * 0).sum() == 0):
            for name, t in weights:
                if not bool(torch.isfinite(t).all()):
                    raise ValueError(f"{name} must be finite (no NaN or inf)")
    return parts, cin, cout


def separable_conv(x, dw_weight, dw_bias, pw_weight, pw_bias, relu=False):
    """Depthwise 3x3 then pointwise 1x1, optionally ReLU (twin of ``tasklle.ops.separable_conv``).

    Args:
        x: (B, Cin, H, W) float32/float64, H, W >= 1; or a pair ``(a, b)`` of
            (B, Ca, H, W) and (B, Cb, H, W) tensors standing for
            ``torch.cat([a, b], 1)`` (Cin = Ca + Cb).
        dw_weight: (Cin, 1, 3, 3) depthwise kernel (groups = Cin, stride 1, zero padding 1).
        dw_bias: (Cin,).
        pw_weight: (Cout, Cin, 1, 1) pointwise kernel.
        pw_bias: (Cout,).
        relu: apply ReLU to the output.

    Returns:
        (B, Cout, H, W). NaN/inf in x propagate (nothing is clamped or
        masked); NaN/inf in a weight or bias raise ValueError.
        Differentiable w.r.t. every tensor argument by torch autograd.
    """
    parts, cin, _ = check_separable_conv_args(x, dw_weight, dw_bias, pw_weight, pw_bias, relu)
    x = torch.cat(parts, 1) if len(parts) == 2 else parts[0]
    y = F.conv2d(F.conv2d(x, dw_weight, dw_bias, padding=1, groups=cin), pw_weight, pw_bias)
    return F.relu(y) if relu else y
