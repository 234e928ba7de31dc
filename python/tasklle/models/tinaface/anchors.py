"""Anchors of TinaFace (vedadet ``BBoxAnchorMeshGrid`` + ``BBoxBaseAnchor``).

Per level with stride s (4, 8, ..., 128) the base size is s and the A = 3
base anchors, centred at (0, 0), have

    scale_i = octave_base_scale * 2^(i / scales_per_octave)   (2^(4/3) * {1, 2^(1/3), 2^(2/3)})
    h = s * scale_i * sqrt(ratio),  w = s * scale_i / sqrt(ratio)   (ratio 1.3 = h / w)
    box = (-w/2, -h/2, w/2, h/2)

(ratio-major, scale-minor order when several ratios are given). The anchor of
grid cell (x, y) is the base anchor shifted by (x * s, y * s) -- no half-cell
offset -- and the anchors of one level are ordered (y * W + x) * A + a.
Levels are concatenated from stride 4 upwards.
"""
import math

import torch


def base_anchors(stride, octave_base_scale=2 ** (4 / 3), scales_per_octave=3, ratios=(1.3,)):
    """(A, 4) float64 base anchors of one level, centred at the origin."""
    scales = torch.tensor([octave_base_scale * 2 ** (i / scales_per_octave) for i in range(scales_per_octave)],
                          dtype=torch.float64)
    h_ratios = torch.tensor([math.sqrt(r) for r in ratios], dtype=torch.float64)
    w_ratios = 1.0 / h_ratios
    ws = (stride * w_ratios[:, None] * scales[None, :]).reshape(-1)
    hs = (stride * h_ratios[:, None] * scales[None, :]).reshape(-1)
    return torch.stack([-0.5 * ws, -0.5 * hs, 0.5 * ws, 0.5 * hs], dim=-1)


class AnchorGenerator:
    """Anchors for a list of feature-map sizes.

    ``gen(sizes, dtype, device)`` with sizes [(h_l, w_l), ...] returns a list
    of (h_l * w_l * A, 4) tensors, one per level; results are cached per
    (sizes, dtype, device)."""

    def __init__(self, strides=(4, 8, 16, 32, 64, 128), octave_base_scale=2 ** (4 / 3), scales_per_octave=3,
                 ratios=(1.3,)):
        self.strides = tuple(int(s) for s in strides)
        self.base = [base_anchors(s, octave_base_scale, scales_per_octave, tuple(ratios)) for s in self.strides]
        self.num_anchors = scales_per_octave * len(ratios)
        self._cache = {}

    def single_level(self, level, size, dtype=torch.float32, device="cpu"):
        """(h * w * A, 4) anchors of one level."""
        h, w = int(size[0]), int(size[1])
        s = self.strides[level]
        sx = torch.arange(w, dtype=torch.float64) * s
        sy = torch.arange(h, dtype=torch.float64) * s
        yy, xx = torch.meshgrid(sy, sx, indexing="ij")
        shifts = torch.stack([xx, yy, xx, yy], dim=-1).reshape(-1, 1, 4)
        return (self.base[level][None] + shifts).reshape(-1, 4).to(dtype=dtype, device=device)

    def gen(self, sizes, dtype=torch.float32, device="cpu"):
        sizes = tuple((int(h), int(w)) for h, w in sizes)
        if len(sizes) != len(self.strides):
            raise ValueError(f"expected {len(self.strides)} feature-map sizes, got {len(sizes)}")
        key = (sizes, dtype, str(device))
        if key not in self._cache:
            if len(self._cache) > 16:
                self._cache.clear()
            self._cache[key] = [self.single_level(i, sz, dtype, device) for i, sz in enumerate(sizes)]
        return self._cache[key]
