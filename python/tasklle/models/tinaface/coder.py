"""Delta box coder of TinaFace (mmdet ``DeltaXYWHBBoxCoder`` with means 0 and
stds (0.1, 0.1, 0.2, 0.2)). Widths are x2 - x1 (no +1).

encode: dx = (gx - px) / pw, dy = (gy - py) / ph, dw = log(gw / pw),
        dh = log(gh / ph); then (d - mean) / std.
decode: d = delta * std + mean; |dw|, |dh| clamped at log(1000 / 16);
        gx = px + pw * dx, gw = pw * exp(dw) (same for y, h);
        box = (gx - gw/2, gy - gh/2, gx + gw/2, gy + gh/2), optionally
        clamped to [0, W] x [0, H] (``max_shape=(H, W)``).
"""
import math

import torch

MEANS = (0.0, 0.0, 0.0, 0.0)
STDS = (0.1, 0.1, 0.2, 0.2)
MAX_RATIO = abs(math.log(16 / 1000))


def encode(boxes, gts, means=MEANS, stds=STDS):
    """boxes, gts (N, 4) x1 y1 x2 y2 -> deltas (N, 4)."""
    px = (boxes[:, 0] + boxes[:, 2]) * 0.5
    py = (boxes[:, 1] + boxes[:, 3]) * 0.5
    pw = boxes[:, 2] - boxes[:, 0]
    ph = boxes[:, 3] - boxes[:, 1]
    gx = (gts[:, 0] + gts[:, 2]) * 0.5
    gy = (gts[:, 1] + gts[:, 3]) * 0.5
    gw = gts[:, 2] - gts[:, 0]
    gh = gts[:, 3] - gts[:, 1]
    d = torch.stack([(gx - px) / pw, (gy - py) / ph, torch.log(gw / pw), torch.log(gh / ph)], dim=-1)
    return (d - d.new_tensor(means)) / d.new_tensor(stds)


def decode(boxes, deltas, means=MEANS, stds=STDS, max_shape=None, max_ratio=MAX_RATIO):
    """boxes (N, 4) anchors, deltas (N, 4) -> decoded boxes (N, 4), differentiable in deltas.
    ``max_shape=(H, W)`` clamps x to [0, W] and y to [0, H]."""
    d = deltas * deltas.new_tensor(stds) + deltas.new_tensor(means)
    dx, dy = d[:, 0], d[:, 1]
    dw = d[:, 2].clamp(-max_ratio, max_ratio)
    dh = d[:, 3].clamp(-max_ratio, max_ratio)
    px = (boxes[:, 0] + boxes[:, 2]) * 0.5
    py = (boxes[:, 1] + boxes[:, 3]) * 0.5
    pw = boxes[:, 2] - boxes[:, 0]
    ph = boxes[:, 3] - boxes[:, 1]
    gw = pw * dw.exp()
    gh = ph * dh.exp()
    gx = px + pw * dx
    gy = py + ph * dy
    x1, y1, x2, y2 = gx - gw * 0.5, gy - gh * 0.5, gx + gw * 0.5, gy + gh * 0.5
    if max_shape is not None:
        H, W = max_shape
        x1, x2 = x1.clamp(0, W), x2.clamp(0, W)
        y1, y2 = y1.clamp(0, H), y2.clamp(0, H)
    return torch.stack([x1, y1, x2, y2], dim=-1)
