"""Image quality of enhanced images: what people see, beside what the detector needs.

The method's claim is that a better-looking image is not necessarily a better
input for a detector; these measures give the "looking" side of that
trade-off for every image group.

Full-reference measures (the synthetic darkening gives exact pairs: every dark
or enhanced val image has its original), per image, on (3, H, W) float RGB in
[0, 1] against the original of the same shape:

- ``psnr``: peak signal-to-noise ratio in dB, 10 log10(1 / MSE) over every
  pixel and channel (data range 1). The MSE is floored at 1e-10 (PSNR at most
  100 dB), so an image identical to its original gives a finite number.
- ``ssim``: ``skimage.metrics.structural_similarity(image, original,
  channel_axis=-1, data_range=1.0)`` on the (H, W, 3) float64 images with
  scikit-image's defaults otherwise: a 7x7 uniform window
  (``gaussian_weights=False``), K1 = 0.01, K2 = 0.03, sample covariance, the
  mean SSIM over the three channels. Images need both sides >= 7.
- ``ciede2000``: the mean over pixels of the CIEDE2000 colour difference
  (``skimage.color.deltaE_ciede2000`` with kL = kC = kH = 1) between the CIE
  L*a*b* images of ``skimage.color.rgb2lab`` (sRGB, D65 illuminant, 2 degree
  observer). Lower is closer; about 2.3 is a just noticeable difference.
- ``exposure``: the mean pixel value over pixels and channels, reported
  beside the originals' mean exposure and the target E = 0.6 of Zero-DCE's
  exposure-control loss L_exp (which drives 16x16 patch means towards E).

No-reference statistics (real dark images such as DARK FACE have no
original), per image: ``exposure`` (as above), ``dark_fraction`` (the
fraction of pixels whose luma Y = 0.299 R + 0.587 G + 0.114 B is at most
``DARK_LEVEL`` = 0.05, i.e. about 13/255: near black), ``clipped_fraction``
(the fraction of pixels with any channel at least ``CLIP_LEVEL`` = 0.98, i.e.
about 250/255: saturated), and ``blur``:
``skimage.measure.blur_effect(image, channel_axis=-1)`` (Crete et al. 2007,
"The blur effect: perception and estimation with a new no-reference
perceptual blur metric"; 0 sharp .. 1 fully blurred; scikit-image converts
the RGB image to grey first, h_size 11, the maximum over both axes).

No-reference *quality scores* were looked for in libraries that install from
PyPI: ``piq`` 0.8.0 (its BRISQUE downloads its SVM weights from GitHub at run
time through ``torch.utils.model_zoo.load_url``), ``pyiqa`` 0.1.16 (NIQE,
BRISQUE and the learned metrics download their parameter files or weights on
first use), ``brisque`` 0.2.0 (ships its SVM model but needs OpenCV and
libsvm, a single-author package patching libsvm for current SciPy). None
qualifies (no weights at run time, well kept, small dependencies), so no
BRISQUE / NIQE number is reported; scikit-image's blur metric is the one
no-reference perceptual measure used.

Bootstrap intervals of the means: :func:`summarise` with the shared image
resampling of :mod:`tasklle.eval.bootstrap` (pass the table's ``weights`` so
every group and the AP use the same resamples).
"""
import math

import numpy as np

from . import bootstrap

__all__ = ["EXPOSURE_TARGET", "PSNR_MAX_DB", "DARK_LEVEL", "CLIP_LEVEL", "FULL_REFERENCE", "NO_REFERENCE",
           "check_image", "psnr", "ssim", "ciede2000", "exposure", "image_quality", "no_reference_stats",
           "summarise"]

#: L_exp's target exposure E (Zero-DCE).
EXPOSURE_TARGET = 0.6
#: PSNR of an image equal to its original (the MSE floor 1e-10).
PSNR_MAX_DB = 100.0
#: Luma at or below which a pixel counts as near black.
DARK_LEVEL = 0.05
#: Channel value at or above which a pixel counts as clipped.
CLIP_LEVEL = 0.98
#: The full-reference measures, in table order.
FULL_REFERENCE = ("psnr", "ssim", "ciede2000", "exposure")
#: The no-reference statistics, in table order.
NO_REFERENCE = ("exposure", "dark_fraction", "clipped_fraction", "blur")


def check_image(image, name="image"):
    """(3, H, W) float tensor or array in [0, 1] -> (H, W, 3) float64 array.

    TypeError for something that is not an array or tensor, or for a
    non-float dtype (uint8 images are not in [0, 1]: convert with
    ``tasklle.io.read_image``); ValueError for a wrong shape, NaN or infinity,
    or values outside [0, 1]."""
    if hasattr(image, "detach"):  # a torch tensor
        image = image.detach().cpu()
        if image.is_floating_point():
            image = image.double()
        image = image.numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{name} must be a (3, H, W) float tensor or array in [0, 1], got {type(image).__name__}")
    if not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"{name} must have a float dtype with values in [0, 1], got {image.dtype}")
    if image.ndim != 3 or image.shape[0] != 3 or image.shape[1] < 1 or image.shape[2] < 1:
        raise ValueError(f"{name} must have shape (3, H, W), got {tuple(image.shape)}")
    a = np.asarray(image, dtype=np.float64)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or infinity")
    lo, hi = float(a.min()), float(a.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"{name} must have values in [0, 1], got [{lo:g}, {hi:g}]")
    return np.ascontiguousarray(a.transpose(1, 2, 0))


def _pair(image, reference):
    a = check_image(image, "image")
    b = check_image(reference, "reference")
    if a.shape != b.shape:
        raise ValueError(f"image and reference must have the same shape, got {(3,) + a.shape[:2]} "
                         f"and {(3,) + b.shape[:2]}")
    return a, b


def _psnr(a, b):
    mse = float(np.mean((a - b) ** 2))
    return min(PSNR_MAX_DB, 10.0 * math.log10(1.0 / max(mse, 1e-10)))


def _ssim(a, b):
    from skimage.metrics import structural_similarity

    if min(a.shape[:2]) < 7:
        raise ValueError(f"ssim needs images of at least 7x7 pixels (its 7x7 window), got {a.shape[:2]}")
    return float(structural_similarity(a, b, channel_axis=-1, data_range=1.0))


def _ciede2000(a, b):
    from skimage.color import deltaE_ciede2000, rgb2lab

    return float(np.mean(deltaE_ciede2000(rgb2lab(a), rgb2lab(b))))


def psnr(image, reference):
    """PSNR in dB of ``image`` against ``reference``, both (3, H, W) in [0, 1] (at most 100 dB)."""
    return _psnr(*_pair(image, reference))


def ssim(image, reference):
    """scikit-image's SSIM (options in the module doc) of (3, H, W) images in [0, 1]."""
    return _ssim(*_pair(image, reference))


def ciede2000(image, reference):
    """Mean CIEDE2000 difference of (3, H, W) sRGB images in [0, 1] (scikit-image's Lab conversion)."""
    return _ciede2000(*_pair(image, reference))


def exposure(image):
    """Mean pixel value of a (3, H, W) image in [0, 1]."""
    return float(np.mean(check_image(image)))


def image_quality(image, reference):
    """All full-reference measures of one image: {'psnr', 'ssim', 'ciede2000', 'exposure'} floats
    (``exposure`` is the image's own; the reference's is ``exposure(reference)``)."""
    a, b = _pair(image, reference)
    return {"psnr": _psnr(a, b), "ssim": _ssim(a, b), "ciede2000": _ciede2000(a, b), "exposure": float(a.mean())}


def no_reference_stats(image):
    """The no-reference statistics of one (3, H, W) image in [0, 1]:
    {'exposure', 'dark_fraction', 'clipped_fraction', 'blur'} floats (see the module doc)."""
    from skimage.measure import blur_effect

    a = check_image(image)
    luma = a @ np.array([0.299, 0.587, 0.114])
    if min(a.shape[:2]) < 2:
        raise ValueError(f"image must be at least 2x2 pixels for the blur measure, got {a.shape[:2]}")
    blur = float(blur_effect(a, channel_axis=-1))  # a constant image (no edge at all) gives 1
    return {"exposure": float(a.mean()), "dark_fraction": float(np.mean(luma <= DARK_LEVEL)),
            "clipped_fraction": float(np.mean((a >= CLIP_LEVEL).any(axis=-1))), "blur": blur}


def summarise(values, weights=None, resamples=bootstrap.RESAMPLES, seed=bootstrap.SEED, level=bootstrap.LEVEL):
    """{'mean', 'ci': [lo, hi], 'per_image': [...]} of per-image ``values`` (n,), the interval
    from :func:`tasklle.eval.bootstrap.mean_interval` (``weights``: the table's (R, n) resamples)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError(f"values must be a non-empty 1-D sequence of per-image values, got shape {v.shape}")
    lo, hi = bootstrap.mean_interval(v, resamples=resamples, seed=seed, level=level, weights=weights)
    return {"mean": float(v.mean()), "ci": [float(lo), float(hi)], "per_image": v.tolist()}
