"""Slow reference twin of ``tasklle.ops.deform_conv2d`` (deformable
convolution v1, mmcv semantics), written as the explicit per-tap bilinear
formula with Python loops so that it is easy to check by eye. Only for tiny
inputs (tests): it loops over batch x deformable group x tap x output pixel.

For one sampling point (h, w) of a channel map v (H x W):
    if not (-1 < h < H and -1 < w < W): value 0   (also for NaN / inf)
    else h0 = floor(h), w0 = floor(w), lh = h - h0, lw = w - w0,
         value = (1-lh)(1-lw) v[h0,w0] + (1-lh) lw v[h0,w0+1]
               + lh (1-lw) v[h0+1,w0] + lh lw v[h0+1,w0+1]
    where a corner outside the image contributes 0.
It is built from differentiable torch ops, so autograd gives gradients in
input, offset, weight and bias to compare with the op's.
"""
import math

import torch


def _pair(v, name):
    if isinstance(v, bool):
        raise TypeError(f"{name} must be an int or a pair of ints, got bool")
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool)
                                                          for x in v):
        return (int(v[0]), int(v[1]))
    raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")


def check_deform_conv_args(input, offset, weight, bias, stride, padding, dilation, groups, deform_groups):
    """Validate the arguments of a deformable convolution; return the
    normalised geometry ``(stride, padding, dilation, (Ho, Wo))``. Shared by
    the op and its reference twin so both raise the same errors."""
    for name, t in (("input", input), ("offset", offset), ("weight", weight)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be floating point, got {t.dtype}")
    if bias is not None and not isinstance(bias, torch.Tensor):
        raise TypeError(f"bias must be a torch.Tensor or None, got {type(bias).__name__}")
    if input.dim() != 4:
        raise ValueError(f"input must be (B, C, H, W), got shape {tuple(input.shape)}")
    if weight.dim() != 4:
        raise ValueError(f"weight must be (C_out, C_in / groups, kh, kw), got shape {tuple(weight.shape)}")
    if offset.dim() != 4:
        raise ValueError(f"offset must be (B, 2 * deform_groups * kh * kw, Ho, Wo), got shape {tuple(offset.shape)}")
    if offset.dtype != input.dtype or weight.dtype != input.dtype or (bias is not None and bias.dtype != input.dtype):
        raise TypeError("input, offset, weight and bias must share one dtype")
    stride = _pair(stride, "stride")
    padding = _pair(padding, "padding")
    dilation = _pair(dilation, "dilation")
    if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
        raise ValueError(f"stride and dilation must be >= 1 and padding >= 0, got {stride}, {dilation}, {padding}")
    for name, v in (("groups", groups), ("deform_groups", deform_groups)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    B, C, H, W = input.shape
    Cout, Cg, kh, kw = weight.shape
    if C % groups or Cout % groups or Cg * groups != C:
        raise ValueError(f"weight: C_in / groups = {Cg} with groups={groups} does not match input channels {C} "
                         f"(and C_out={Cout} must divide by groups)")
    if C % deform_groups:
        raise ValueError(f"deform_groups={deform_groups} must divide the input channels {C}")
    Ho = (H + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    Wo = (W + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if Ho < 1 or Wo < 1:
        raise ValueError(f"input {H}x{W} is too small for kernel {kh}x{kw} with padding {padding}, "
                         f"dilation {dilation}")
    expect = (B, 2 * deform_groups * kh * kw, Ho, Wo)
    if tuple(offset.shape) != expect:
        raise ValueError(f"offset must have shape {expect}, got {tuple(offset.shape)}")
    if bias is not None and tuple(bias.shape) != (Cout,):
        raise ValueError(f"bias must have shape ({Cout},), got {tuple(bias.shape)}")
    return stride, padding, dilation, (Ho, Wo)


def _bilinear(v, h, w):
    """v (Cd, H, W); h, w scalar tensors (0-dim) -> (Cd,) sampled values."""
    Cd, H, W = v.shape
    hf, wf = float(h.detach()), float(w.detach())
    if not (-1 < hf < H and -1 < wf < W):  # mmcv's inside test; False for NaN too
        return v.new_zeros(Cd)
    h0, w0 = math.floor(hf), math.floor(wf)
    lh, lw = h - h0, w - w0  # differentiable in the offsets
    out = v.new_zeros(Cd)
    for dy, wy in ((0, 1 - lh), (1, lh)):
        for dx, wx in ((0, 1 - lw), (1, lw)):
            y, x = h0 + dy, w0 + dx
            if 0 <= y < H and 0 <= x < W:
                out = out + wy * wx * v[:, y, x]
    return out


def deform_conv2d(input, offset, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, deform_groups=1):
    """Reference deformable convolution v1; same signature and result as
    ``tasklle.ops.deform_conv2d``. input (B, C, H, W), offset
    (B, 2*deform_groups*kh*kw, Ho, Wo) with (dy, dx) per tap, weight
    (C_out, C/groups, kh, kw) -> (B, C_out, Ho, Wo)."""
    (sh, sw), (ph, pw), (dh, dw), (Ho, Wo) = check_deform_conv_args(
        input, offset, weight, bias, stride, padding, dilation, groups, deform_groups)
    B, C, H, W = input.shape
    Cout, Cg, kh, kw = weight.shape
    K = kh * kw
    Cd = C // deform_groups
    out = []
    for b in range(B):
        # columns (C, K, Ho*Wo) for this image
        cols = []
        for g in range(deform_groups):
            v = input[b, g * Cd:(g + 1) * Cd]
            taps = []
            for i in range(kh):
                for j in range(kw):
                    k = i * kw + j
                    pix = []
                    for ho in range(Ho):
                        for wo in range(Wo):
                            h = ho * sh - ph + i * dh + offset[b, 2 * (g * K + k), ho, wo]
                            w = wo * sw - pw + j * dw + offset[b, 2 * (g * K + k) + 1, ho, wo]
                            pix.append(_bilinear(v, h, w))
                    taps.append(torch.stack(pix, dim=1) if pix else v.new_zeros(Cd, 0))  # (Cd, L)
            cols.append(torch.stack(taps, dim=1))  # (Cd, K, L)
        cols = torch.cat(cols, dim=0)  # (C, K, L)
        res = []
        for gi in range(groups):
            c = cols[gi * Cg:(gi + 1) * Cg].reshape(Cg * K, Ho * Wo)
            wgt = weight[gi * (Cout // groups):(gi + 1) * (Cout // groups)].reshape(Cout // groups, Cg * K)
            res.append(wgt @ c)
        o = torch.cat(res, dim=0).reshape(Cout, Ho, Wo)
        if bias is not None:
            o = o + bias.view(Cout, 1, 1)
        out.append(o)
    if not out:
        return input.new_zeros((0, Cout, Ho, Wo))
    return torch.stack(out)
