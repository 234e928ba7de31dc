"""Joint training with the shipped RetinaFace as the frozen downstream (the detector protocol
in use): the detector's weights stay bit-identical, L_down's parts are RetinaFace's."""
import math

import torch

from tasklle.models import RetinaFace, load_detector
from tasklle.train import joint
from tasklle.train.joint import state_dict_sha256

from test_joint import COMMON, ListData  # tests/train is on sys.path (pytest prepend mode)


def test_joint_with_retinaface_keeps_it_frozen(tmp_path):
    det = RetinaFace.shipped()
    det.input_scale = 2.0  # the loss upsamples the small crops inside, differentiably
    before = state_dict_sha256(det)
    res = joint(ListData(), det, tmp_path, steps=2, **dict(COMMON, image_size=48))
    assert state_dict_sha256(det) == before == res["detector_sha256"]
    assert not any(p.grad is not None for p in det.parameters())
    rows = res["rows"]
    assert len(rows) == 2
    for r in rows:
        assert math.isfinite(r["l_down"]) and r["l_down"] > 0
        # RetinaFace's parts, summing to L_down; TinaFace's columns stay empty
        assert abs(r["loc"] + r["conf"] + r["landm"] - r["l_down"]) < 1e-4 * max(1.0, r["l_down"])
        assert all(math.isnan(r[k]) for k in ("cls", "reg", "iou"))


def test_the_enhancer_gets_retinaface_gradient():
    det = load_detector("retinaface-mobilenet0.25")
    x = (torch.rand(1, 3, 64, 64) * 0.3).requires_grad_(True)
    total, parts = det.loss(x, [{"boxes": torch.tensor([[10.0, 12.0, 40.0, 50.0]]),
                                 "ignore": torch.zeros(1, dtype=torch.bool)}])
    total.backward()
    assert set(parts) == {"loc", "conf", "landm"}
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
