"""Rendering of the built-in demo dataset's images (see :mod:`tasklle.data.demo`
for what the images are made of and how they are annotated).

``render_image(seed, split, index)`` draws one image and its faces from its
own seed; nothing here writes files (the tree, the annotations and the cache
are :mod:`tasklle.data.demo`).
"""
from pathlib import Path

import numpy as np

DEFAULT_IMAGE_SIZE = (256, 384)  # range of image height and width
DEFAULT_FACE_SIZE = (8, 120)  # range of face box heights
INVALID_MAX_HEIGHT = 12
EVENTS = ("0--Crowd", "1--Group", "2--Portrait", "3--Mixed")
_EVENT_PROBS = (0.25, 0.25, 0.2, 0.3)
# (number of faces low, high inclusive), (face height low, high) before capping by image size.
_REGIMES = {
    "0--Crowd": ((12, 40), (8, 28)),
    "1--Group": ((4, 10), (14, 60)),
    "2--Portrait": ((1, 3), (45, 120)),
    "3--Mixed": ((2, 12), (8, 120)),
}
_ZERO_FACE_PROB = 0.12  # within Mixed images: about 4 % of all images
# Skin tones (sRGB 0..255), light to dark.
_SKIN_TONES = np.array([
    (255, 224, 196), (241, 194, 167), (234, 192, 134), (224, 172, 105),
    (198, 134, 66), (161, 102, 70), (141, 85, 36), (92, 58, 40)], dtype=np.float64)
# Photographs: (loader name, regions allowed for background crops as (y0, y1, x0, x1) or None).
# astronaut and camera show a real person's face: crops come only from regions without it.
_PHOTOS = (
    ("skimage", "astronaut", [(190, 512, 0, 512), (0, 512, 310, 512)]),
    ("skimage", "camera", [(215, 512, 0, 512), (0, 512, 290, 512)]),
    ("skimage", "coffee", None),
    ("skimage", "chelsea", None),
    ("skimage", "cat", None),
    ("skimage", "rocket", None),
    ("skimage", "immunohistochemistry", None),
    ("skimage", "hubble_deep_field", None),
    ("skimage", "retina", None),
    ("skimage", "brick", None),
    ("skimage", "grass", None),
    ("skimage", "gravel", None),
    ("skimage", "colorwheel", None),
    ("sklearn", "china.jpg", None),
    ("sklearn", "flower.jpg", None),
)
_SPLIT_CODE = {"train": 1, "val": 2}
_cache = {}


# ----------------------------------------------------------------------------------------------
# Sources


def _sklearn_sample_image(name):
    """One of scikit-learn's sample photographs, read from its package folder
    (what ``sklearn.datasets.load_sample_images`` reads, without importing sklearn)."""
    import importlib.util

    from PIL import Image

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the demo dataset needs scikit-learn's sample images: pip install scikit-learn")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "images" / name
    if not path.is_file():
        raise RuntimeError(f"scikit-learn sample image not found: {path}")
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _sources():
    """Face crops, non-face crops and background photographs (loaded once)."""
    if "sources" in _cache:
        return _cache["sources"]
    import skimage.data

    lfw = np.asarray(skimage.data.lfw_subset(), dtype=np.float64)
    if lfw.shape != (200, 25, 25):
        raise RuntimeError(f"unexpected skimage.data.lfw_subset() shape {lfw.shape}; expected (200, 25, 25)")
    photos = []
    for origin, name, regions in _PHOTOS:
        if origin == "skimage":
            arr = np.asarray(getattr(skimage.data, name)())
        else:
            arr = _sklearn_sample_image(name)
        grey = arr.ndim == 2
        if grey:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        arr = arr[:, :, :3].astype(np.uint8)
        h, w = arr.shape[:2]
        regions = [(0, h, 0, w)] if regions is None else [(y0, min(y1, h), x0, min(x1, w))
                                                        for y0, y1, x0, x1 in regions]
        photos.append({"name": name, "image": arr, "grey": grey, "regions": regions})
    faces = lfw[:100]
    out = {
        "faces": {"train": [i for i in range(100) if i % 5 != 4], "val": [i for i in range(100) if i % 5 == 4]},
        "face_crops": faces,
        "nonface_crops": lfw[100:],
        "photos": photos,
    }
    _cache["sources"] = out
    return out


# ----------------------------------------------------------------------------------------------
# Rendering


def _resize_float(arr, size_hw):
    """Resize a (h, w) float image with Pillow's antialiased bicubic filter."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(arr, dtype=np.float32), mode="F")
    im = im.resize((int(size_hw[1]), int(size_hw[0])), Image.Resampling.BICUBIC)
    return np.asarray(im, dtype=np.float64)


def _background(rng, height, width, photos):
    """A random crop of a random photograph, rescaled to (height, width, 3) float in [0, 1]."""
    from PIL import Image

    photo = photos[rng.integers(len(photos))]
    y0, y1, x0, x1 = photo["regions"][rng.integers(len(photo["regions"]))]
    rh, rw = y1 - y0, x1 - x0
    aspect = width / height
    # Largest crop of the target aspect inside the region, then a random fraction of it.
    ch = min(rh, rw / aspect)
    frac = rng.uniform(0.35, 1.0)
    ch = max(16.0, ch * frac)
    cw = min(rw, ch * aspect)
    ch = min(rh, cw / aspect)
    top = y0 + rng.uniform(0, rh - ch)
    left = x0 + rng.uniform(0, rw - cw)
    im = Image.fromarray(photo["image"])
    im = im.resize((width, height), Image.Resampling.BILINEAR,
                   box=(float(left), float(top), float(left + cw), float(top + ch)),
                   reducing_gap=None)
    bg = np.asarray(im, dtype=np.float64) / 255.0
    if rng.random() < 0.5:
        bg = bg[:, ::-1]
    if photo["grey"]:
        bg = bg * rng.uniform(0.85, 1.15, size=3)  # tint grey photos
    gamma = np.exp(rng.uniform(-0.35, 0.35))
    bg = np.clip(bg, 0, 1) ** gamma * rng.uniform(0.85, 1.1)
    return np.clip(bg, 0.0, 1.0), photo["name"]


def _feather_mask(h, w, feather):
    """(h, w) alpha in [0, 1]: a soft-edged squircle filling the box."""
    v = (np.arange(h) + 0.5) / h * 2 - 1
    u = (np.arange(w) + 0.5) / w * 2 - 1
    d = (np.abs(u)[None, :] ** 4 + np.abs(v)[:, None] ** 4) ** 0.25
    return np.clip((1.0 - d) / feather, 0.0, 1.0)


def _render_patch(rng, crop, h, w, skin):
    """Turn a grey 25x25 crop into an (h, w, 3) colour patch; returns (patch, blur, illumination, sigma)."""
    from scipy.ndimage import gaussian_filter

    g = crop[:, ::-1] if rng.random() < 0.5 else crop
    mean = g.mean()
    contrast = rng.uniform(0.6, 1.15)
    brightness = rng.uniform(-0.12, 0.1)
    g = (g - mean) * contrast + mean + brightness
    g = _resize_float(g, (h, w))
    if skin:
        tone = _SKIN_TONES[rng.integers(len(_SKIN_TONES))]
        lum = 0.299 * tone[0] + 0.587 * tone[1] + 0.114 * tone[2]
        sat = rng.uniform(0.6, 1.0)
        mult = (1 + sat * (tone / lum - 1)) * np.clip(np.sqrt(lum / 200.0), 0.6, 1.15)
    else:
        mult = rng.uniform(0.6, 1.3, size=3)
    patch = g[:, :, None] * mult[None, None, :]
    r = rng.random()
    if r < 0.6:
        blur, sigma = 0, 0.0
    elif r < 0.88:
        blur, sigma = 1, max(0.5, rng.uniform(0.02, 0.04) * h)
    else:
        blur, sigma = 2, max(0.9, rng.uniform(0.05, 0.08) * h)
    if blur:
        patch = gaussian_filter(patch, sigma=(sigma, sigma, 0), mode="nearest")
    illumination = int(contrast < 0.65 or brightness < -0.1)
    return np.clip(patch, 0.0, 1.0), blur, illumination, sigma


def _place(rng, h, w, height, width, taken, max_overlap=0.05, tries=30):
    """Top-left corner of an (h, w) box inside the image overlapping ``taken`` boxes little; None if no room."""
    if h > height or w > width:
        return None
    for _ in range(tries):
        y = int(rng.integers(0, height - h + 1))
        x = int(rng.integers(0, width - w + 1))
        ok = True
        for (ty, tx, th, tw) in taken:
            iy = min(y + h, ty + th) - max(y, ty)
            ix = min(x + w, tx + tw) - max(x, tx)
            if iy > 0 and ix > 0 and iy * ix > max_overlap * min(h * w, th * tw):
                ok = False
                break
        if ok:
            return y, x
    return None


def _paste(canvas, patch, y, x, feather):
    h, w = patch.shape[:2]
    alpha = _feather_mask(h, w, feather)[:, :, None]
    region = canvas[y:y + h, x:x + w]
    canvas[y:y + h, x:x + w] = alpha * patch + (1 - alpha) * region


def _log_uniform(rng, lo, hi):
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def render_image(seed, split, index, image_size=DEFAULT_IMAGE_SIZE, face_size=DEFAULT_FACE_SIZE):
    """Render demo image ``index`` of ``split`` for ``seed``.

    Deterministic and independent of the other images (so a smaller build is a
    prefix of a larger one). Returns ``(image uint8 (H, W, 3), event, faces)``
    with faces a list of dicts {'box': (x, y, w, h) ints, 'attributes': 6 ints}.
    """
    src = _sources()
    ss = np.random.SeedSequence([int(seed), _SPLIT_CODE[split], int(index)])
    rng = np.random.Generator(np.random.PCG64(ss))
    height = int(rng.integers(image_size[0], image_size[1] + 1))
    width = int(rng.integers(image_size[0], image_size[1] + 1))
    event = EVENTS[rng.choice(len(EVENTS), p=_EVENT_PROBS)]
    (n_lo, n_hi), (s_lo, s_hi) = _REGIMES[event]
    n_faces = int(rng.integers(n_lo, n_hi + 1))
    if event == "3--Mixed" and rng.random() < _ZERO_FACE_PROB:
        n_faces = 0
    # Map the regime's face-height range into the requested face_size range (default 8..120).
    scale = (face_size[1] - face_size[0]) / 112.0
    s_lo = face_size[0] + (s_lo - 8) * scale
    s_hi = face_size[0] + (s_hi - 8) * scale
    s_cap = min(s_hi, 0.5 * min(height, width))
    s_lo = min(s_lo, s_cap)

    canvas, _ = _background(rng, height, width, src["photos"])
    face_ids = src["faces"][split]
    taken = []
    faces = []
    for _ in range(n_faces):
        fh = int(round(_log_uniform(rng, s_lo, s_cap))) if s_cap > s_lo else int(round(s_lo))
        fh = max(fh, 4)
        fw = max(3, int(round(fh * rng.uniform(0.75, 0.92))))
        pos = _place(rng, fh, fw, height, width, taken)
        crop = src["face_crops"][face_ids[rng.integers(len(face_ids))]]
        if pos is None:
            continue
        patch, blur, illumination, sigma = _render_patch(rng, crop, fh, fw, skin=True)
        invalid = 0
        if fh < INVALID_MAX_HEIGHT and rng.random() < 0.25:
            # Unrecognisable: extra heavy blur; the annotation keeps the box but marks it invalid.
            from scipy.ndimage import gaussian_filter

            patch = gaussian_filter(patch, sigma=(0.3 * fh, 0.3 * fh, 0), mode="nearest")
            blur, invalid = 2, 1
        y, x = pos
        _paste(canvas, patch, y, x, feather=rng.uniform(0.15, 0.3))
        taken.append((y, x, fh, fw))
        faces.append({"box": (x, y, fw, fh), "attributes": (blur, 0, illumination, invalid, 0, 0)})

    # Distractors: non-face crops pasted like faces, never annotated.
    n_distract = int(rng.integers(2, 9)) if event == "0--Crowd" else int(rng.integers(0, 5))
    d_lo = max(face_size[0], min(s_lo, s_cap))
    for _ in range(n_distract):
        dh = int(round(_log_uniform(rng, d_lo, max(d_lo + 1, s_cap))))
        dh = max(dh, 4)
        dw = max(3, int(round(dh * rng.uniform(0.7, 1.1))))
        pos = _place(rng, dh, dw, height, width, taken)
        crop = src["nonface_crops"][rng.integers(len(src["nonface_crops"]))]
        if pos is None:
            continue
        patch, _, _, _ = _render_patch(rng, crop, dh, dw, skin=rng.random() < 0.5)
        y, x = pos
        _paste(canvas, patch, y, x, feather=rng.uniform(0.15, 0.3))
        taken.append((y, x, dh, dw))

    noise = rng.uniform(0.0, 2.5) / 255.0
    canvas += noise * rng.standard_normal(size=canvas.shape, dtype=np.float32)
    image = (np.clip(canvas, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return image, event, faces
