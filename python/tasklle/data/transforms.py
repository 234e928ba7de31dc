"""Training and test transforms on Dataset item dicts (TinaFace's WIDER FACE pipeline).

Every transform takes an item dict as ``tasklle.data.WiderFace`` gives it
({'image': (3, H, W) float32 in [0, 1], 'boxes': (N, 4) x1 y1 x2 y2,
'ignore': (N,) bool, 'attributes': (N, 6), ...}) and returns a new dict
(the input is not modified); keys it does not know pass through.

The training pipeline (vedadet's ``tinaface_r50_fpn_gn_dcn``):

1. ``RandomSquareCrop``: a square of side ``int(c * short side)`` with c drawn
   from ``crop_choices`` (0.3, 0.45, 0.6, 0.8, 1.0) at a random position;
   boxes whose centre lies strictly inside are kept and clipped to it, the
   others dropped (with their ignore flags and attributes); positions are
   redrawn (up to 250 per drawn c, then a new c) until at least one box
   centre is inside.
2. ``PhotoMetricDistortion`` (vedadet's: applied with probability 0.5, then
   each step with probability 0.5, in 0..255 scale): brightness delta
   U(-32, 32); contrast U(0.5, 1.5) before or after the colour steps;
   saturation U(0.5, 1.5) and hue shift U(-18, 18) degrees in HSV (OpenCV's
   float convention: H in degrees, S in [0, 1], V in 0..255); random channel
   permutation; clipped to 0..255 after each step as the reference does.
3. ``RandomFlip``: horizontal with probability 0.5 (x1' = W - x2, x2' = W - x1).
4. ``Resize`` to size x size without keeping the aspect ratio (bilinear,
   antialiased when shrinking); boxes scaled and clipped to the image.

Joint training's fixed-size transforms (``make_transform``: this pipeline
without its photometric step, or ``ResizeSquare``) are here too, with the
pipeline they reuse; that puts the module a little over 400 lines.

Randomness comes from one ``torch.Generator`` (``seed=`` or ``generator=``),
so a pipeline is reproducible; with neither, torch's global generator is used
(what DataLoader workers seed differently per worker -- a transform holding
its own generator gives every worker the same stream).
"""
import torch
import torch.nn.functional as F

from .._checks import check_images

DEFAULT_CROP_CHOICES = (0.3, 0.45, 0.6, 0.8, 1.0)


# ----------------------------------------------------------------------------------------------
# Helpers


def _rand(generator):
    """One float in [0, 1)."""
    return float(torch.rand((), generator=generator))


def _uniform(generator, lo, hi):
    return lo + (hi - lo) * _rand(generator)


def _randint(generator, n):
    """One int in [0, n)."""
    return int(torch.randint(n, (), generator=generator))


def _check_item(item, name="item"):
    if not isinstance(item, dict) or "image" not in item:
        raise TypeError(f"{name} must be a dict with an 'image' key")
    check_images(item["image"], f"{name}['image']", batched=False)


def _boxes(item):
    """(N, 4) float32 boxes of an item (empty when absent)."""
    boxes = item.get("boxes")
    if boxes is None:
        return torch.zeros((0, 4), dtype=torch.float32)
    boxes = torch.as_tensor(boxes, dtype=torch.float32)
    if boxes.numel() == 0:
        return boxes.reshape(0, 4)
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"item['boxes'] must be (N, 4), got {tuple(boxes.shape)}")
    return boxes


def _select(item, out, keep):
    """Filter the per-box fields of ``item`` into ``out`` with the (N,) bool mask ``keep``."""
    for key in ("ignore", "attributes", "labels"):
        v = item.get(key)
        if v is not None:
            v = torch.as_tensor(v)
            if v.shape[0] != keep.shape[0]:
                raise ValueError(f"item[{key!r}] has {v.shape[0]} rows but item['boxes'] has {keep.shape[0]}")
            out[key] = v[keep]


# ----------------------------------------------------------------------------------------------
# Colour space (OpenCV float convention)


def rgb_to_hsv(img):
    """(3, H, W) RGB in 0..255 -> (3, H, W) H in degrees [0, 360), S in [0, 1], V in 0..255."""
    r, g, b = img[0], img[1], img[2]
    v, _ = img.max(dim=0)
    mn, _ = img.min(dim=0)
    c = v - mn
    safe_c = torch.where(c > 0, c, torch.ones_like(c))
    s = torch.where(v > 0, c / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    h = torch.where(v == r, 60.0 * (g - b) / safe_c,
                    torch.where(v == g, 120.0 + 60.0 * (b - r) / safe_c, 240.0 + 60.0 * (r - g) / safe_c))
    h = torch.where(c > 0, h, torch.zeros_like(h))
    h = torch.where(h < 0, h + 360.0, h)
    return torch.stack([h, s, v])


def hsv_to_rgb(hsv):
    """Inverse of ``rgb_to_hsv``; S may exceed 1 (saturation boost), giving values
    outside 0..255 that the caller clips, as OpenCV's conversion does."""
    h, s, v = hsv[0], hsv[1], hsv[2]
    h6 = torch.remainder(h / 60.0, 6.0)
    sector = torch.floor(h6)
    f = h6 - sector
    p = v * (1 - s)
    q = v * (1 - s * f)
    t = v * (1 - s * (1 - f))
    sector = sector.long().clamp_(0, 5)
    # rows: sector 0..5 -> (r, g, b)
    r = torch.stack([v, q, p, p, t, v]).gather(0, sector[None])[0]
    g = torch.stack([t, v, v, q, p, p]).gather(0, sector[None])[0]
    b = torch.stack([p, p, t, v, v, q]).gather(0, sector[None])[0]
    return torch.stack([r, g, b])


# ----------------------------------------------------------------------------------------------
# Transforms


class RandomSquareCrop:
    """Random square crop keeping the boxes whose centre is inside (vedadet semantics).

    Args:
        crop_choices: side of the square as fractions of the short image side.
        max_tries: positions tried per drawn fraction (vedadet: 250).
        max_rounds: fractions drawn before giving up (vedadet loops forever);
            when no position keeps a box centre the item is returned uncropped.
    """

    def __init__(self, crop_choices=DEFAULT_CROP_CHOICES, max_tries=250, max_rounds=20):
        crop_choices = tuple(float(c) for c in crop_choices)
        if not crop_choices or any(not (0 < c <= 1) for c in crop_choices):
            raise ValueError(f"crop_choices must be fractions in (0, 1], got {crop_choices}")
        if max_tries < 1 or max_rounds < 1:
            raise ValueError("max_tries and max_rounds must be >= 1")
        self.crop_choices = crop_choices
        self.max_tries = int(max_tries)
        self.max_rounds = int(max_rounds)

    def patch(self, height, width, boxes, generator=None):
        """(left, top, right, bottom) of the crop, or None when none keeps a box centre."""
        short = min(height, width)
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2 if len(boxes) else None
        for _ in range(self.max_rounds):
            c = self.crop_choices[_randint(generator, len(self.crop_choices))]
            side = max(1, int(c * short))
            for _ in range(self.max_tries):
                left = int(_uniform(generator, 0, width - side))
                top = int(_uniform(generator, 0, height - side))
                patch = (left, top, left + side, top + side)
                if centres is None:
                    return patch
                inside = ((centres[:, 0] > patch[0]) & (centres[:, 1] > patch[1])
                          & (centres[:, 0] < patch[2]) & (centres[:, 1] < patch[3]))
                if bool(inside.any()):
                    return patch
        return None

    def __call__(self, item, generator=None):
        _check_item(item)
        img = item["image"]
        _, h, w = img.shape
        boxes = _boxes(item)
        patch = self.patch(h, w, boxes, generator)
        out = dict(item)
        if patch is None:
            return out
        left, top, right, bottom = patch
        out["image"] = img[:, top:bottom, left:right]
        if len(boxes):
            centres = (boxes[:, :2] + boxes[:, 2:]) / 2
            keep = ((centres[:, 0] > left) & (centres[:, 1] > top) & (centres[:, 0] < right)
                    & (centres[:, 1] < bottom))
            kept = boxes[keep].clone()
            kept[:, 2] = kept[:, 2].clamp(max=right)
            kept[:, 3] = kept[:, 3].clamp(max=bottom)
            kept[:, 0] = kept[:, 0].clamp(min=left)
            kept[:, 1] = kept[:, 1].clamp(min=top)
            kept -= torch.tensor([left, top, left, top], dtype=kept.dtype)
            out["boxes"] = kept
            _select(item, out, keep)
        elif "boxes" in item:
            out["boxes"] = boxes
        return out


class PhotoMetricDistortion:
    """vedadet's photometric distortion on a (3, H, W) image in [0, 1] (worked in 0..255).

    Args:
        brightness_delta: brightness shift range in 0..255 units.
        contrast_range, saturation_range: multiplier ranges.
        hue_delta: hue shift range in degrees.
        p: probability of applying the whole distortion (vedadet default 0.5);
            each step then applies with probability 0.5.
    """

    def __init__(self, brightness_delta=32, contrast_range=(0.5, 1.5), saturation_range=(0.5, 1.5),
                 hue_delta=18, p=0.5):
        if brightness_delta < 0 or hue_delta < 0:
            raise ValueError("brightness_delta and hue_delta must be >= 0")
        if not (0 <= contrast_range[0] <= contrast_range[1]) or not (0 <= saturation_range[0] <= saturation_range[1]):
            raise ValueError("contrast_range and saturation_range must be (low, high) with 0 <= low <= high")
        if not 0 <= p <= 1:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.brightness_delta = float(brightness_delta)
        self.contrast_range = (float(contrast_range[0]), float(contrast_range[1]))
        self.saturation_range = (float(saturation_range[0]), float(saturation_range[1]))
        self.hue_delta = float(hue_delta)
        self.p = float(p)

    def distort(self, img255, generator=None):
        """The distortion on a (3, H, W) image in 0..255 (the reference's scale)."""
        x = img255.clone()
        if _rand(generator) > self.p:
            return x
        if _randint(generator, 2):
            x = (x + _uniform(generator, -self.brightness_delta, self.brightness_delta)).clamp_(0, 255)
        mode = _randint(generator, 2)
        if mode == 1 and _randint(generator, 2):
            x = (x * _uniform(generator, *self.contrast_range)).clamp_(0, 255)
        # Saturation and hue in HSV. Scaling S by a keeps H and V and maps each channel c to
        # V - a (V - c) exactly, so that step needs no colour-space round trip.
        if _randint(generator, 2):
            a = _uniform(generator, *self.saturation_range)
            v = x.amax(dim=0, keepdim=True)
            x = v - a * (v - x)
        if _randint(generator, 2):
            hsv = rgb_to_hsv(x)
            hue = hsv[0] + _uniform(generator, -self.hue_delta, self.hue_delta)
            hue = torch.where(hue > 360, hue - 360, hue)
            hsv[0] = torch.where(hue < 0, hue + 360, hue)
            x = hsv_to_rgb(hsv)
        x = x.clamp_(0, 255)
        if mode == 0 and _randint(generator, 2):
            x = (x * _uniform(generator, *self.contrast_range)).clamp_(0, 255)
        if _randint(generator, 2):
            x = x[torch.randperm(3, generator=generator)]
        return x

    def __call__(self, item, generator=None):
        _check_item(item)
        out = dict(item)
        img = item["image"]
        out["image"] = (self.distort(img.float() * 255.0, generator) / 255.0).to(img.dtype)
        return out


class RandomFlip:
    """Horizontal flip with probability ``p``; boxes follow (x1' = W - x2, x2' = W - x1)."""

    def __init__(self, p=0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"p must be in [0, 1], got {p}")
        self.p = float(p)

    def __call__(self, item, generator=None):
        _check_item(item)
        out = dict(item)
        if _rand(generator) >= self.p:
            return out
        img = item["image"]
        w = img.shape[2]
        out["image"] = img.flip(-1)
        if "boxes" in item:
            boxes = _boxes(item)
            flipped = boxes.clone()
            flipped[:, 0] = w - boxes[:, 2]
            flipped[:, 2] = w - boxes[:, 0]
            out["boxes"] = flipped
        return out


def resize_image(img, size_hw):
    """(3, H, W) -> (3, h, w) bilinear, antialiased when shrinking, clipped to [0, 1]."""
    h, w = int(size_hw[0]), int(size_hw[1])
    if (h, w) == tuple(img.shape[1:]):
        return img
    shrink = h < img.shape[1] or w < img.shape[2]
    return F.interpolate(img[None].float(), size=(h, w), mode="bilinear", align_corners=False,
                         antialias=shrink)[0].clamp_(0, 1).to(img.dtype)


class Resize:
    """Resize to a fixed (height, width) (an int means square), aspect ratio not kept;
    boxes scaled and clipped to the new image (as mmdet does)."""

    def __init__(self, size):
        size = (size, size) if isinstance(size, int) else tuple(size)
        if len(size) != 2 or any(not isinstance(s, int) or s < 1 for s in size):
            raise ValueError(f"size must be a positive int or (height, width), got {size}")
        self.size = size

    def __call__(self, item, generator=None):
        _check_item(item)
        out = dict(item)
        img = item["image"]
        _, h, w = img.shape
        nh, nw = self.size
        out["image"] = resize_image(img, (nh, nw))
        if "boxes" in item:
            boxes = _boxes(item) * torch.tensor([nw / w, nh / h, nw / w, nh / h], dtype=torch.float32)
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, nw)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, nh)
            out["boxes"] = boxes
        return out


class TrainTransform:
    """TinaFace's training pipeline: square crop, photometric distortion, flip, resize.

    Args:
        size: output side (images come out (3, size, size)); vedadet uses 640.
        crop_choices: square side fractions of the short side (None: no crop).
        photometric: apply ``PhotoMetricDistortion`` (vedadet's defaults).
        flip: random horizontal flip with probability 0.5.
        seed: seed of the transform's own generator (reproducible stream).
        generator: a ``torch.Generator`` to draw from instead (``seed`` ignored).
        photometric_p: probability of the whole photometric distortion (vedadet: 0.5).

    ``transform(item)`` returns the transformed item dict; ``transform(item,
    generator=g)`` draws from ``g`` for this call.
    """

    def __init__(self, size=640, crop_choices=DEFAULT_CROP_CHOICES, photometric=True, flip=True, seed=None,
                 generator=None, photometric_p=0.5):
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        self.crop = RandomSquareCrop(crop_choices) if crop_choices else None
        self.photometric = PhotoMetricDistortion(p=photometric_p) if photometric else None
        self.flip = RandomFlip(0.5) if flip else None
        self.resize = Resize(size)
        self.size = self.resize.size
        if generator is None and seed is not None:
            generator = torch.Generator().manual_seed(int(seed))
        self.generator = generator

    def __call__(self, item, generator=None):
        g = generator if generator is not None else self.generator
        _check_item(item)
        if self.crop is not None:
            item = self.crop(item, g)
        if self.photometric is not None:
            item = self.photometric(item, g)
        if self.flip is not None:
            item = self.flip(item, g)
        return self.resize(item, g)

    def __repr__(self):
        return (f"TrainTransform(size={self.size}, crop_choices={self.crop.crop_choices if self.crop else None}, "
                f"photometric={self.photometric is not None}, flip={self.flip is not None})")


class TestTransform:
    """TinaFace's test resize: keep the aspect ratio with scale = min(long_side / long edge,
    short_side / short edge) (vedadet: 1650, 1100). Adds ``'scale_factor'`` (x, y) so
    detections map back with ``boxes / scale_factor``; padding is the detector's job."""

    __test__ = False  # not a pytest test class

    def __init__(self, long_side=1650, short_side=1100):
        if long_side < 1 or short_side < 1:
            raise ValueError("long_side and short_side must be >= 1")
        self.long_side = int(long_side)
        self.short_side = int(short_side)

    def __call__(self, item, generator=None):
        _check_item(item)
        _, h, w = item["image"].shape
        scale = min(self.long_side / max(h, w), self.short_side / min(h, w))
        nh, nw = max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5))
        out = Resize((nh, nw))(item)
        out["scale_factor"] = (nw / w, nh / h)
        return out


class ResizeSquare:
    """Squash an item to (size, size) and scale its boxes (Zero-DCE's resize)."""

    def __init__(self, size):
        self.size = int(size)

    def __call__(self, item):
        img = item["image"]
        _, h, w = img.shape
        out = dict(item)
        out["image"] = F.interpolate(img[None], size=(self.size, self.size), mode="bilinear",
                                     align_corners=False, antialias=True)[0].clamp_(0, 1)
        boxes = torch.as_tensor(item["boxes"], dtype=torch.float32).reshape(-1, 4).clone()
        boxes[:, 0::2] *= self.size / w
        boxes[:, 1::2] *= self.size / h
        out["boxes"] = boxes
        return out


def make_transform(crop, image_size):
    """The fixed-size transform of joint training: 'random' (the detector's
    training crop and flip, no photometric distortion: the low-light
    statistics are what the enhancer must learn) or 'resize' (``ResizeSquare``)."""
    if crop == "resize":
        return ResizeSquare(image_size)
    if crop != "random":
        raise ValueError(f"crop must be 'random' or 'resize', got {crop!r}")
    # The detector's own training crop and flip, without its photometric distortion.
    return TrainTransform(size=image_size, photometric=False)
