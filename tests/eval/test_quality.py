"""Image-quality measures: each against its own formula or scikit-image called directly,
the bad-input errors, the no-reference statistics on images with known answers, and the
bootstrap summary against the shared resampling."""
import math

import numpy as np
import pytest
import torch

from tasklle.eval import bootstrap, quality


def _pair(seed=0, shape=(3, 24, 32)):
    rng = np.random.default_rng(seed)
    ref = rng.random(shape)
    img = np.clip(ref * 0.6 + rng.normal(0, 0.05, shape), 0, 1)
    return img, ref


def test_psnr_ssim_ciede2000_exposure_match_their_definitions():
    from skimage.color import deltaE_ciede2000, rgb2lab
    from skimage.metrics import structural_similarity

    img, ref = _pair()
    q = quality.image_quality(img, ref)
    mse = np.mean((img - ref) ** 2)
    assert q["psnr"] == pytest.approx(10 * math.log10(1 / mse), rel=1e-12)
    a, b = img.transpose(1, 2, 0), ref.transpose(1, 2, 0)
    assert q["ssim"] == pytest.approx(structural_similarity(a, b, channel_axis=2, data_range=1.0), rel=1e-12)
    assert q["ciede2000"] == pytest.approx(np.mean(deltaE_ciede2000(rgb2lab(a), rgb2lab(b))), rel=1e-12)
    assert q["exposure"] == pytest.approx(img.mean(), rel=1e-12)
    assert quality.psnr(img, ref) == q["psnr"] and quality.ssim(img, ref) == q["ssim"]
    assert quality.ciede2000(img, ref) == q["ciede2000"] and quality.exposure(img) == q["exposure"]
    # the same numbers from float32 tensors (as read_image gives), up to float32 rounding of the input
    qt = quality.image_quality(torch.from_numpy(img).float(), torch.from_numpy(ref).float())
    for k in q:
        assert qt[k] == pytest.approx(q[k], rel=1e-5)


def test_identical_images_and_darker_ones():
    _, ref = _pair(1)
    same = quality.image_quality(ref, ref)
    assert same["psnr"] == quality.PSNR_MAX_DB and same["ssim"] == pytest.approx(1.0)
    assert same["ciede2000"] == 0.0
    darker = quality.image_quality(ref * 0.2, ref)
    less_dark = quality.image_quality(ref * 0.8, ref)
    assert darker["psnr"] < less_dark["psnr"] and darker["ciede2000"] > less_dark["ciede2000"]
    assert darker["exposure"] == pytest.approx(0.2 * ref.mean())


@pytest.mark.parametrize("image, ref, exc, match", [
    (np.zeros((3, 8, 8)), np.zeros((3, 8, 9)), ValueError, "same shape"),
    (np.full((3, 8, 8), np.nan), np.zeros((3, 8, 8)), ValueError, "image contains NaN"),
    (np.zeros((3, 8, 8)), np.full((3, 8, 8), 1.5), ValueError, r"reference must have values in \[0, 1\]"),
    (np.zeros((3, 8, 8), dtype=np.uint8), np.zeros((3, 8, 8)), TypeError, "float dtype"),
    (np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), ValueError, r"shape \(3, H, W\)"),
    ([[0.0]], np.zeros((3, 8, 8)), TypeError, "tensor or array"),
    (np.zeros((3, 5, 8)), np.zeros((3, 5, 8)), ValueError, "7x7"),
])
def test_bad_input_raises_named_errors(image, ref, exc, match):
    with pytest.raises(exc, match=match):
        quality.image_quality(image, ref)


def test_no_reference_statistics_on_known_images():
    img = np.zeros((3, 10, 20))
    img[:, :, 10:] = 0.5  # half black
    img[:, :2, 10:] = 1.0  # 20 of 200 pixels saturated
    s = quality.no_reference_stats(img)
    assert s["dark_fraction"] == 0.5 and s["clipped_fraction"] == pytest.approx(0.1)
    assert s["exposure"] == pytest.approx(img.mean())
    assert quality.no_reference_stats(np.full((3, 12, 12), 0.3))["blur"] == 1.0  # no edge at all
    rng = np.random.default_rng(0)
    sharp = (rng.random((1, 64, 64)) > 0.5).astype(np.float64).repeat(3, 0)
    from scipy.ndimage import uniform_filter

    blurred = uniform_filter(sharp, size=(1, 7, 7))
    assert quality.no_reference_stats(sharp)["blur"] < quality.no_reference_stats(blurred)["blur"]
    with pytest.raises(ValueError, match="NaN"):
        quality.no_reference_stats(np.full((3, 8, 8), np.inf))


def test_summarise_uses_the_shared_resampling():
    v = np.random.default_rng(3).random(25)
    w = bootstrap.resample_weights(25, 200, seed=5)
    s = quality.summarise(v, weights=w)
    assert s["mean"] == pytest.approx(v.mean()) and s["per_image"] == v.tolist()
    assert tuple(s["ci"]) == bootstrap.mean_interval(v, weights=w)
    assert s["ci"][0] < s["mean"] < s["ci"][1]
    with pytest.raises(ValueError, match="non-empty"):
        quality.summarise([])
