"""RetinaFace priors (biubug6 ``layers/functions/prior_box.py: PriorBox``, clip
False) and the decoding of box / landmark offsets (``utils/box_utils.py``).

Priors are (A, 4) cx, cy, w, h normalised by the image (W, H). Order: level
(steps 8, 16, 32), then row i, column j of that level's ceil(H / step) x
ceil(W / step) grid, then the level's min sizes; centre ((j + 0.5) * step / W,
(i + 0.5) * step / H), size (min_size / W, min_size / H). Computed in float64
(PriorBox computes in Python floats) and cast.
"""
import math

import torch


def prior_boxes(height, width, min_sizes, steps, dtype=torch.float32, device=None):
    """(A, 4) priors for an image of (height, width) pixels (see module docstring)."""
    for name, v in (("height", height), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    out = []
    for sizes, step in zip(min_sizes, steps):
        fh, fw = math.ceil(height / step), math.ceil(width / step)
        cx = (torch.arange(fw, dtype=torch.float64) + 0.5) * step / width
        cy = (torch.arange(fh, dtype=torch.float64) + 0.5) * step / height
        cy, cx = torch.meshgrid(cy, cx, indexing="ij")  # (fh, fw): row i, column j
        n = len(sizes)
        cx = cx.reshape(-1, 1).expand(-1, n)
        cy = cy.reshape(-1, 1).expand(-1, n)
        sw = torch.tensor([s / width for s in sizes], dtype=torch.float64).expand_as(cx)
        sh = torch.tensor([s / height for s in sizes], dtype=torch.float64).expand_as(cx)
        out.append(torch.stack([cx, cy, sw, sh], dim=-1).reshape(-1, 4))
    return torch.cat(out).to(dtype=dtype, device=device)


def decode_boxes(loc, priors, variance):
    """loc (..., A, 4) offsets -> (..., A, 4) x1 y1 x2 y2 normalised boxes:
    centre = prior centre + loc[:2] * v0 * prior size, size = prior size *
    exp(loc[2:] * v1)."""
    v0, v1 = variance
    c = priors[..., :2] + loc[..., :2] * v0 * priors[..., 2:]
    wh = priors[..., 2:] * torch.exp(loc[..., 2:] * v1)
    x1y1 = c - wh / 2
    return torch.cat([x1y1, x1y1 + wh], dim=-1)


def decode_landmarks(landm, priors, variance):
    """landm (..., A, 10) offsets -> (..., A, 10) normalised (x, y) x 5: prior
    centre + offset * v0 * prior size."""
    v0 = variance[0]
    pts = landm.reshape(*landm.shape[:-1], 5, 2)
    out = priors[..., None, :2] + pts * v0 * priors[..., None, 2:]
    return out.reshape(landm.shape)
