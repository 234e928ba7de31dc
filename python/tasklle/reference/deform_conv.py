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

from ..ops.deform_conv import check_deform_conv_args


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
