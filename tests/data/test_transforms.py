"""Training/test transforms on item dicts: boxes stay consistent with the pixels."""
import numpy as np
import pytest
import torch

from tasklle.data.transforms import (PhotoMetricDistortion, RandomFlip, RandomSquareCrop, Resize, TestTransform,
                                     TrainTransform, hsv_to_rgb, rgb_to_hsv)


def _painted_item(seed=0, h=90, w=130, n=5):
    """An image whose box regions are painted in distinct flat colours on a dark background;
    attributes carry the box id so filtering can be checked."""
    rng = np.random.default_rng(seed)
    img = torch.full((3, h, w), 0.05)
    boxes, colours = [], []
    while len(boxes) < n:  # non-overlapping boxes (with a 2 px gap)
        bw, bh = int(rng.integers(10, 30)), int(rng.integers(10, 30))
        x, y = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
        if any(x < bx2 + 2 and bx1 < x + bw + 2 and y < by2 + 2 and by1 < y + bh + 2
               for bx1, by1, bx2, by2 in boxes):
            continue
        colour = torch.tensor(rng.uniform(0.3, 1.0, size=3), dtype=torch.float32)
        img[:, y:y + bh, x:x + bw] = colour[:, None, None]
        boxes.append([x, y, x + bw, y + bh])
        colours.append(colour)
    attrs = torch.zeros((n, 6), dtype=torch.int64)
    attrs[:, 0] = torch.arange(n)
    item = {"image": img, "boxes": torch.tensor(boxes, dtype=torch.float32),
            "ignore": torch.tensor([k % 2 == 1 for k in range(n)]), "attributes": attrs,
            "event": "e", "name": "n", "path": "p"}
    return item, colours


# ------------------------------------------------------------------------------------------ colour space


def test_hsv_matches_skimage_and_roundtrips():
    from skimage.color import rgb2hsv

    torch.manual_seed(1)
    x = torch.rand(3, 17, 23) * 255
    x[:, 0, 0] = 0  # black
    x[:, 0, 1] = 128  # grey (no hue)
    hsv = rgb_to_hsv(x)
    ref = rgb2hsv((x / 255).permute(1, 2, 0).double().numpy())
    np.testing.assert_allclose(hsv[0].numpy() / 360, ref[..., 0], atol=1e-5)
    np.testing.assert_allclose(hsv[1].numpy(), ref[..., 1], atol=1e-5)
    np.testing.assert_allclose(hsv[2].numpy() / 255, ref[..., 2], atol=1e-6)
    torch.testing.assert_close(hsv_to_rgb(hsv), x, atol=1e-3, rtol=0)
    shifted = hsv.clone()
    shifted[0] = shifted[0] + 360
    torch.testing.assert_close(hsv_to_rgb(shifted), x, atol=1e-3, rtol=0)


def _reference_distortion(img255, g, t):
    """Independent formulation of vedadet's PhotoMetricDistortion (numpy + skimage HSV),
    drawing the same random numbers in the same order."""
    from skimage.color import rgb2hsv

    def rand():
        return float(torch.rand((), generator=g))

    def randint2():
        return int(torch.randint(2, (), generator=g))

    x = img255.permute(1, 2, 0).double().numpy().copy()
    if rand() > t.p:
        return x
    if randint2():
        x = np.clip(x + (-t.brightness_delta + 2 * t.brightness_delta * rand()), 0, 255)
    mode = randint2()
    lo, hi = t.contrast_range
    if mode == 1 and randint2():
        x = np.clip(x * (lo + (hi - lo) * rand()), 0, 255)
    hsv = rgb2hsv(x / 255.0)
    if randint2():
        slo, shi = t.saturation_range
        hsv[..., 1] *= slo + (shi - slo) * rand()
    if randint2():
        hue = hsv[..., 0] * 360 + (-t.hue_delta + 2 * t.hue_delta * rand())
        hue[hue > 360] -= 360
        hue[hue < 0] += 360
        hsv[..., 0] = hue / 360
    # The standard HSV -> RGB formula, valid for S > 1 too (skimage's hsv2rgb assumes S <= 1).
    h6 = np.mod(hsv[..., 0] * 6, 6)
    i = np.floor(h6)
    f = h6 - i
    v, s = hsv[..., 2], hsv[..., 1]
    p, q, tt = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    i = i.astype(int) % 6
    r = np.choose(i, [v, q, p, p, tt, v])
    gg = np.choose(i, [tt, v, v, q, p, p])
    b = np.choose(i, [p, p, tt, v, v, q])
    x = np.clip(np.stack([r, gg, b], -1) * 255, 0, 255)
    if mode == 0 and randint2():
        x = np.clip(x * (lo + (hi - lo) * rand()), 0, 255)
    if randint2():
        x = x[..., torch.randperm(3, generator=g).numpy()]
    return x


@pytest.mark.parametrize("seed", range(12))
def test_photometric_matches_independent_formulation(seed):
    torch.manual_seed(100 + seed)
    img = torch.rand(3, 11, 13) * 255
    t = PhotoMetricDistortion(p=1.0)
    ours = t.distort(img, torch.Generator().manual_seed(seed))
    ref = _reference_distortion(img, torch.Generator().manual_seed(seed), t)
    np.testing.assert_allclose(ours.permute(1, 2, 0).numpy(), ref, atol=2e-2)


def test_photometric_item_level():
    item, _ = _painted_item(h=40, w=50, n=2)
    t = PhotoMetricDistortion(p=0.0)
    torch.testing.assert_close(t(item)["image"], item["image"], atol=1e-5, rtol=0)
    changed = 0
    for seed in range(8):
        out = PhotoMetricDistortion(p=1.0)(item, torch.Generator().manual_seed(seed))
        assert out["image"].shape == item["image"].shape
        assert 0 <= out["image"].min() and out["image"].max() <= 1
        assert out["boxes"] is item["boxes"]
        changed += not torch.allclose(out["image"], item["image"], atol=1e-3)
    assert changed >= 6
    with pytest.raises(ValueError):
        PhotoMetricDistortion(p=2)


# ------------------------------------------------------------------------------------------ geometry


def test_square_crop_keeps_boxes_with_centre_inside():
    item, _ = _painted_item(n=8)
    crop = RandomSquareCrop()
    short = min(item["image"].shape[1:])
    sides = set()
    for seed in range(30):
        g = torch.Generator().manual_seed(seed)
        out = crop(item, g)
        _, h, w = out["image"].shape
        assert h == w
        sides.add(h)
        assert any(h == int(c * short) for c in crop.crop_choices)
        # Recover the patch: find the offset that reproduces the crop.
        g = torch.Generator().manual_seed(seed)
        left, top, right, bottom = crop.patch(item["image"].shape[1], item["image"].shape[2], item["boxes"], g)
        torch.testing.assert_close(out["image"], item["image"][:, top:bottom, left:right])
        c = (item["boxes"][:, :2] + item["boxes"][:, 2:]) / 2
        keep = (c[:, 0] > left) & (c[:, 0] < right) & (c[:, 1] > top) & (c[:, 1] < bottom)
        assert keep.any()
        expect = item["boxes"][keep].clone()
        expect[:, 0::2] = expect[:, 0::2].clamp(left, right) - left
        expect[:, 1::2] = expect[:, 1::2].clamp(top, bottom) - top
        torch.testing.assert_close(out["boxes"], expect)
        assert out["attributes"][:, 0].tolist() == torch.nonzero(keep).flatten().tolist()
        assert out["ignore"].tolist() == item["ignore"][keep].tolist()
        assert (out["boxes"] >= 0).all() and (out["boxes"] <= h).all()
    assert len(sides) >= 3


def test_square_crop_without_boxes_and_impossible_case():
    img = torch.rand(3, 50, 80)
    out = RandomSquareCrop()({"image": img, "boxes": torch.zeros((0, 4))}, torch.Generator().manual_seed(0))
    assert out["image"].shape[1] == out["image"].shape[2] and out["boxes"].shape == (0, 4)
    # A box whose centre lies on the image border can never be strictly inside: bounded tries, no crop.
    item = {"image": img, "boxes": torch.tensor([[0.0, 0.0, 0.0, 10.0]]), "ignore": torch.tensor([True])}
    out = RandomSquareCrop(max_tries=5, max_rounds=2)(item, torch.Generator().manual_seed(0))
    assert out["image"] is img and torch.equal(out["boxes"], item["boxes"])
    with pytest.raises(ValueError):
        RandomSquareCrop(crop_choices=(0.0, 1.5))


def test_flip_and_resize_boxes():
    item, _ = _painted_item()
    w = item["image"].shape[2]
    out = RandomFlip(p=1.0)(item)
    torch.testing.assert_close(out["image"], item["image"].flip(-1))
    torch.testing.assert_close(out["boxes"][:, 0], w - item["boxes"][:, 2])
    torch.testing.assert_close(out["boxes"][:, 2], w - item["boxes"][:, 0])
    torch.testing.assert_close(RandomFlip(p=1.0)(out)["boxes"], item["boxes"])
    assert RandomFlip(p=0.0)(item)["image"] is item["image"]
    out = Resize((45, 260))(item)
    assert out["image"].shape == (3, 45, 260)
    torch.testing.assert_close(out["boxes"], item["boxes"] * torch.tensor([2.0, 0.5, 2.0, 0.5]))
    with pytest.raises(ValueError):
        Resize(0)


def test_train_transform_boxes_follow_pixels():
    """After crop + flip + resize the pixels inside every kept box still have its colour."""
    t = TrainTransform(size=160, photometric=False, seed=0)
    checked = 0
    for seed in range(10):
        item, colours = _painted_item(seed=seed)
        out = t(item)
        assert out["image"].shape == (3, 160, 160)
        assert out["boxes"].shape[0] == out["ignore"].shape[0] == out["attributes"].shape[0]
        for box, attr in zip(out["boxes"], out["attributes"]):
            x1, y1, x2, y2 = box.tolist()
            # Interior only (resampling blurs the edges); skip boxes clipped too thin.
            ix1, iy1, ix2, iy2 = int(x1) + 3, int(y1) + 3, int(np.ceil(x2)) - 3, int(np.ceil(y2)) - 3
            if ix2 - ix1 < 2 or iy2 - iy1 < 2:
                continue
            region = out["image"][:, iy1:iy2, ix1:ix2]
            colour = colours[int(attr[0])]
            torch.testing.assert_close(region.mean(dim=(1, 2)), colour, atol=0.03, rtol=0)
            checked += 1
    assert checked >= 15


def test_train_transform_deterministic_and_photometric_range():
    item, _ = _painted_item()
    a = TrainTransform(size=96, seed=7)
    b = TrainTransform(size=96, seed=7)
    for _ in range(3):
        oa, ob = a(item), b(item)
        assert torch.equal(oa["image"], ob["image"]) and torch.equal(oa["boxes"], ob["boxes"])
        assert 0 <= oa["image"].min() and oa["image"].max() <= 1
    oc = TrainTransform(size=96, seed=8)(item)
    od = TrainTransform(size=96)(item, generator=torch.Generator().manual_seed(7))
    assert torch.equal(od["image"], TrainTransform(size=96, seed=7)(item)["image"])
    assert not torch.equal(oc["image"], od["image"])
    assert item["image"].shape == (3, 90, 130)  # input untouched
    with pytest.raises(TypeError):
        TrainTransform(generator=3)
    with pytest.raises(TypeError):
        TrainTransform()({"boxes": torch.zeros(0, 4)})
    with pytest.raises(ValueError):
        TrainTransform()({"image": torch.rand(1, 5, 5)})


def test_test_transform_scale():
    item, _ = _painted_item()  # 90 x 130
    out = TestTransform()(item)
    scale = min(1650 / 130, 1100 / 90)
    assert out["image"].shape == (3, round(90 * scale), round(130 * scale))
    sx, sy = out["scale_factor"]
    torch.testing.assert_close(out["boxes"], item["boxes"] * torch.tensor([sx, sy, sx, sy]))
