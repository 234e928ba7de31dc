"""TinaFace test pipeline (REFERENCE §4): resize rule, score formula,
filters, NMS, mapping back to the image, batching."""
import math

import numpy as np
import pytest
import torch

from tasklle.models import TinaFace
from tasklle.models.tinaface import postprocess as pp


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lite():
    torch.manual_seed(0)
    return TinaFace.lite()


def test_rescale_size_follows_mmcv():
    # WIDER-like 1024 x 768 (w x h): scale = min(1650 / 1024, 1100 / 768) = 1.4323
    assert pp.rescale_size(768, 1024) == (1100, 1467)
    # portrait: min(1650 / 1000, 1100 / 400) = 1.65
    assert pp.rescale_size(1000, 400) == (1650, 660)
    assert pp.rescale_size(100, 200, (300, 400)) == (200, 400)
    assert pp.rescale_size(1100, 1650, (1650, 1100)) == (1100, 1650)  # order of the pair does not matter
    with pytest.raises(ValueError):
        pp.rescale_size(10, 10, (0, 5))


def test_postprocess_single_scores_filters_nms_and_mapping():
    # anchors in resized pixels; deltas zero so the boxes are the anchors
    anchors = torch.tensor([
        [10.0, 10.0, 50.0, 60.0],   # 0: kept
        [12.0, 10.0, 52.0, 60.0],   # 1: overlaps 0 (IoU > 0.45), lower score -> suppressed
        [100.0, 60.0, 140.0, 76.0],  # 2: height 16 / 2 = 8 < 9 in the original -> dropped
        [60.0, 0.0, 100.0, 40.0],   # 3: low score -> dropped
        [150.0, 70.0, 260.0, 130.0],  # 4: clipped to the resized image (w 200, h 100)
        [300.0, 300.0, 340.0, 340.0],  # 5: outside the image: zero area after clipping -> dropped
    ])
    cls = torch.tensor([3.0, 2.0, 3.0, -8.0, 1.0, 3.0])
    iou = torch.tensor([2.0, 2.0, 2.0, 0.0, 0.5, 2.0])
    out = pp.postprocess_single(cls, torch.zeros(6, 4), iou, anchors, img_shape=(100, 200), scale_factor=(2.0, 2.0))
    assert out.dtype == np.float32 and out.shape == (2, 5)
    score = lambda c, i: (1 / (1 + math.exp(-c))) ** 0.8 * (1 / (1 + math.exp(-i))) ** 1.2  # noqa: E731
    np.testing.assert_allclose(out[0], [5, 5, 25, 30, score(3, 2)], rtol=1e-6)
    np.testing.assert_allclose(out[1], [75, 35, 100, 50, score(1, 0.5)], rtol=1e-6)
    # min_height and thresholds are configurable
    out = pp.postprocess_single(cls, torch.zeros(6, 4), iou, anchors, (100, 200), (2.0, 2.0), min_height=0,
                                nms_thr=0.99, score_thr=0.0)
    assert out.shape == (5, 5)
    assert np.all(np.diff(out[:, 4]) <= 0)


def test_detect_outputs(lite):
    torch.manual_seed(1)
    img = torch.rand(3, 70, 90)
    dets = lite.detect(img, test_scale=(140, 180))
    assert isinstance(dets, list) and len(dets) == 1
    d = dets[0]
    assert d.dtype == np.float32 and d.ndim == 2 and d.shape[1] == 5 and len(d) > 0
    assert np.all(d[:, 4] > 0.01) and np.all(np.diff(d[:, 4]) <= 0)
    assert np.all(d[:, 3] - d[:, 1] >= 9)
    assert np.all(d[:, 0] >= 0) and np.all(d[:, 2] <= 90) and np.all(d[:, 1] >= 0) and np.all(d[:, 3] <= 70)
    assert len(lite.detect(img, test_scale=(140, 180), score_thr=0.5)[0]) == 0  # untrained: scores ~0.011


def test_detect_batching_and_input_kinds(lite):
    torch.manual_seed(2)
    a, b, c = torch.rand(3, 40, 60), torch.rand(3, 40, 60), torch.rand(3, 30, 50)
    one = [lite.detect(x, resize=False)[0] for x in (a, b, c)]
    many = lite.detect([a, b, c], resize=False, batch_size=2)
    stacked = lite.detect(torch.stack([a, b]), resize=False, batch_size=2)
    for x, y in zip(one, many):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-3)
    for x, y in zip(one[:2], stacked):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-3)
    arr = (a.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert lite.detect(arr, resize=False)[0].shape[1] == 5


def test_detect_scale_maps_back_to_the_input(lite):
    """detect(scale=2) runs on the 2x image and returns boxes in input pixels:
    the same as detecting on the 2x image ourselves and halving."""
    torch.manual_seed(3)
    img = torch.rand(3, 40, 48)
    big = pp.resize(img, (80, 96))
    d2 = lite.detect(img, scale=2.0, min_height=0)[0]
    ref = lite.detect(big, resize=False, min_height=0)[0]
    ref[:, :4] /= 2
    np.testing.assert_allclose(d2, ref, rtol=1e-5, atol=1e-4)


def test_detect_validates(lite):
    with pytest.raises(ValueError):
        lite.detect(torch.rand(3, 20, 20), batch_size=0)
    with pytest.raises(ValueError):
        lite.detect(torch.rand(3, 20, 20), scale=-1)
    with pytest.raises(ValueError):
        lite.detect(torch.rand(4, 20, 20))
    with pytest.raises(TypeError):
        lite.detect(torch.zeros(3, 20, 20, dtype=torch.int64))
