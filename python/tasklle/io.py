"""Image and checkpoint input/output shared by every part of tasklle.

- Images: files are read with Pillow into float32 tensors (3, H, W) in [0, 1];
  a corrupt or unreadable file raises ``ImageReadError`` naming the path.
- Every file tasklle writes goes through ``atomic_write`` (a temporary file in
  the same folder, fsync, then ``os.replace``), so an interrupted job never
  leaves a half-written image, checkpoint or log behind.
- Checkpoints are loaded with ``torch.load(..., weights_only=True)``: files
  from users are untrusted.
"""
import contextlib
import hashlib
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
# Bound what the decoder allocates for one untrusted image (pixels).
MAX_IMAGE_PIXELS = 16384 * 16384


class ImageReadError(ValueError):
    """An image file is missing, corrupt or not an image."""


# The name atomic_write gives its temporary file: "." + name + "." + mkstemp's
# 8 random characters + ".tmp". A process killed mid-write (SIGKILL) leaves one.
_ATOMIC_TEMP = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")


def is_atomic_temp(name):
    """True for a file name atomic_write uses for its temporary file (a partial
    write if one is left behind)."""
    return _ATOMIC_TEMP.fullmatch(name) is not None


@contextlib.contextmanager
def atomic_write(path, mode="wb", fsync=True):
    """Open a temporary file beside ``path``; on success it replaces ``path``
    atomically, on error it is removed and ``path`` is untouched.

    ``fsync=False`` keeps the atomic rename but skips flushing to disk: right
    for many small files that can be regenerated (prediction folders), where
    the per-file fsync dominates the time."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; give the file the permissions a plain open() would
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read_umask():
    # os.umask can only be read by setting it; do it once, at import, before
    # any worker thread could create a file in between
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def list_images(root):
    """All image files below ``root`` (sorted, relative order stable)."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"folder not found: {root}")
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def read_image(path):
    """Read an image file as a float32 torch tensor (3, H, W) in [0, 1] (RGB)."""
    import torch
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with Image.open(path) as im:
            im.load()
            im = im.convert("RGB")
            arr = np.asarray(im, dtype=np.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageReadError(f"cannot read image {path}: {e}") from e
    # float(u) / 255 in float32 in NumPy, the same IEEE operations torch's
    # .float().div_(255.0) does (the test checks all 256 values), but without
    # starting an OpenMP team when enhance_folder decodes on its I/O threads;
    # (3, H, W) view of the (H, W, 3) array, the strides read_image always had
    x = arr.astype(np.float32)
    x /= np.float32(255.0)
    return torch.from_numpy(x).permute(2, 0, 1)


def to_uint8_hwc(image):
    """(3, H, W) float tensor/array in [0, 1] -> (H, W, 3) uint8 array (rounded, clipped)."""
    import torch

    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().float().numpy()
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"image must have shape (3, H, W), got {tuple(image.shape)}")
    # the same float32 operations as (clip * 255 + 0.5).astype(uint8), done in
    # place and cast straight into a contiguous (H, W, 3) array (two passes
    # and two temporaries fewer; identical over every float32 in [0, 1], checked
    # once in full; tests/test_enhance_pipeline.py checks around each rounding edge)
    x = np.clip(image, 0.0, 1.0)
    x *= np.float32(255.0)
    x += np.float32(0.5)
    out = np.empty(image.shape[1:] + (3,), dtype=np.uint8)
    out.transpose(2, 0, 1)[...] = x
    return out


def write_image(path, image, quality=95):
    """Write a (3, H, W) float image in [0, 1] atomically; format from the suffix."""
    from PIL import Image

    path = Path(path)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
           ".webp": "WEBP"}.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"path: unsupported image suffix {path.suffix!r}")
    im = Image.fromarray(to_uint8_hwc(image))
    with atomic_write(path) as f:
        if fmt == "JPEG":
            im.save(f, format=fmt, quality=quality)
        else:
            im.save(f, format=fmt)


def to_tensor(image, name="images"):
    """Convert one image or a batch to a float32 tensor (B, 3, H, W) in [0, 1].

    Accepts a tensor (3,H,W) or (B,3,H,W) in [0, 1]; a NumPy array (H,W,3) or
    (B,H,W,3), uint8 (0..255) or float in [0, 1]; a PIL image; or a path.
    Returns ``(tensor, kind)`` where kind tells ``from_tensor`` how to give
    the result back in the caller's type.
    """
    import torch

    if isinstance(image, (str, os.PathLike)):
        return read_image(image).unsqueeze(0), ("path", None)
    try:
        from PIL import Image

        if isinstance(image, Image.Image):
            arr = np.asarray(image.convert("RGB"), dtype=np.uint8)
            return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0).unsqueeze(0), ("pil", None)
    except ImportError:  # pragma: no cover - pillow is a dependency
        pass
    if isinstance(image, np.ndarray):
        arr = image
        batched = arr.ndim == 4
        if arr.ndim not in (3, 4) or arr.shape[-1] != 3:
            raise ValueError(f"{name}: a NumPy image must be (H, W, 3) or (B, H, W, 3), got {arr.shape}")
        if arr.dtype == np.uint8:
            t = torch.from_numpy(np.ascontiguousarray(arr)).float().div_(255.0)
        elif np.issubdtype(arr.dtype, np.floating):
            t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        else:
            raise TypeError(f"{name}: NumPy images must be uint8 or float, got {arr.dtype}")
        t = t.unsqueeze(0) if not batched else t
        t = t.permute(0, 3, 1, 2).contiguous()
        _check_finite(t, name)
        return t, ("numpy", (batched, arr.dtype))
    if isinstance(image, torch.Tensor):
        if not image.is_floating_point():
            raise TypeError(f"{name}: tensor images must be floating point in [0, 1], got {image.dtype}")
        batched = image.dim() == 4
        if image.dim() not in (3, 4) or image.shape[-3] != 3:
            raise ValueError(f"{name}: a tensor image must be (3, H, W) or (B, 3, H, W), got {tuple(image.shape)}")
        t = image if batched else image.unsqueeze(0)
        _check_finite(t, name)
        return t, ("tensor", batched)
    raise TypeError(f"{name}: expected a tensor, NumPy array, PIL image or path, got {type(image).__name__}")


def from_tensor(t, kind):
    """Give a (B, 3, H, W) result back in the type ``to_tensor`` received."""
    tag, extra = kind
    if tag == "tensor":
        return t if extra else t[0]
    if tag == "pil":
        from PIL import Image

        return Image.fromarray(to_uint8_hwc(t[0]))
    if tag == "path":
        return t[0]
    batched, dtype = extra
    arr = t.detach().cpu().permute(0, 2, 3, 1).numpy()
    if dtype == np.uint8:
        arr = (np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8)
    else:
        arr = arr.astype(dtype)
    return arr if batched else arr[0]


def _check_finite(t, name):
    import torch

    if t.numel() == 0:
        raise ValueError(f"{name}: empty image")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: contains NaN or infinite values")


def save_checkpoint(path, state):
    """Save a checkpoint dict atomically (tensors, numbers, strings, lists, dicts)."""
    import torch

    with atomic_write(path) as f:
        torch.save(state, f)


def load_checkpoint(path, map_location="cpu"):
    """Load a checkpoint safely (``weights_only=True``); missing files raise
    FileNotFoundError naming the path."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for corrupt files
        msg = str(e)
        if "weights_only" in msg or "WeightsUnpickler" in msg:
            # torch's text advises retrying with weights_only=False, i.e. running the
            # file's code: never pass that on for a file from an unknown source
            detail = re.search(r"WeightsUnpickler error: ([^\n]*)", msg)
            reason = detail.group(1).strip() if detail else "it holds more than tensors and plain containers"
            raise ValueError(f"cannot load checkpoint {path}: not a plain weights file ({reason}); "
                             "tasklle only loads tensors and plain containers from checkpoint files") from None
        raise ValueError(f"cannot load checkpoint {path}: {msg}") from e


def json_safe(obj):
    """``obj`` as strict JSON values: NaN/inf -> None (NaN marks 'not computed'),
    numpy scalars and arrays -> Python, tuples -> lists, paths -> str, keys -> str."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path, obj):
    """Write strict JSON atomically (indented, UTF-8; values through :func:`json_safe`,
    so no file tasklle writes holds NaN or Infinity tokens)."""
    import json

    with atomic_write(path, "w") as f:
        json.dump(json_safe(obj), f, indent=2, sort_keys=False, allow_nan=False)
        f.write("\n")


def state_dict_sha256(module):
    """SHA-256 over a module's state_dict (parameters and buffers, sorted by
    name; names, dtypes, shapes and raw bytes all enter). Equal hashes mean
    bit-identical weights."""
    import torch

    h = hashlib.sha256()
    state = module.state_dict()
    for name in sorted(state):
        t = state[name]
        h.update(name.encode())
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().contiguous()
            h.update(str(t.dtype).encode())
            h.update(str(tuple(t.shape)).encode())
            # flattened first: a 0-dim buffer (BatchNorm's num_batches_tracked) has no byte view, and a
            # channels-last (O, I, 1, 1) weight counts as contiguous with stride(-1) != 1
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        else:
            h.update(repr(t).encode())
    return h.hexdigest()
