"""The one image-argument checker of the package (models, losses, twins, noise).

A leaf module (it imports torch only), so the models and ``tasklle.reference``
can both use it without an import circle. Every caller checks in the same
order, so one bad input raises the same exception everywhere:

  1. type: not a ``torch.Tensor`` -> TypeError;
  2. layout: wrong number of dimensions or channels -> ValueError;
  3. dtype: not floating point -> TypeError;
  4. empty: any dimension 0 -> ValueError;
  5. non-finite values (NaN/inf) -> ValueError, only for callers that ask.
"""
import torch


def check_images(x, name="images", channels=3, batched=True, finite=False):
    """Check an image argument; returns it unchanged.

    Args:
        x: the argument: (B, C, H, W) when ``batched``, else (C, H, W).
        name: the argument's name, used in every message.
        channels: the required C (3 for RGB), or None for any C >= 1.
        batched: (B, C, H, W) rather than (C, H, W).
        finite: also refuse NaN/inf (one pass over the tensor).
    """
    c = "C" if channels is None else str(channels)
    layout = f"(B, {c}, H, W)" if batched else f"({c}, H, W)"
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {layout}, got {type(x).__name__}")
    if x.dim() != (4 if batched else 3) or (channels is not None and x.shape[-3] != channels):
        raise ValueError(f"{name} must be {layout}, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must have a floating point dtype, got {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"{name} must be non-empty, got shape {tuple(x.shape)}")
    if finite and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return x
