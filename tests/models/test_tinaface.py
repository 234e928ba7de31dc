"""TinaFace structure: the full configuration against REFERENCE §4 (key
names, shapes, parameter count), anchors, box coder, checkpoints."""
import math
import re

import numpy as np
import pytest
import torch

from tasklle.models import TinaFace
from tasklle.models.tinaface import LITE_CONFIG, count_parameters
from tasklle.models.tinaface import coder
from tasklle.models.tinaface.anchors import AnchorGenerator, base_anchors


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def full():
    torch.manual_seed(0)
    return TinaFace()


# Key families listed in REFERENCE §4 (vedadet checkpoint names).
KEY_PATTERNS = [
    r"backbone\.conv1\.weight",
    r"backbone\.gn1\.(weight|bias)",
    r"backbone\.layer[1-4]\.\d+\.conv[123]\.weight",
    r"backbone\.layer[1-4]\.\d+\.gn[123]\.(weight|bias)",
    r"backbone\.layer[1-4]\.0\.downsample\.(0\.weight|1\.weight|1\.bias)",
    r"backbone\.layer[34]\.\d+\.conv2\.conv_offset\.(weight|bias)",
    r"neck\.0\.lateral_convs\.[0-3]\.(conv\.weight|gn\.weight|gn\.bias)",
    r"neck\.0\.fpn_convs\.[0-5]\.(conv\.weight|gn\.weight|gn\.bias)",
    r"neck\.1\.level_convs\.0\.[0-4]\.(conv\.weight|gn\.weight|gn\.bias)",
    r"bbox_head\.(cls|reg)_convs\.[0-3]\.(conv\.weight|gn\.weight|gn\.bias)",
    r"bbox_head\.retina_(cls|reg|iou)\.(weight|bias)",
]

SHAPES = {
    "backbone.conv1.weight": (64, 3, 7, 7),
    "backbone.gn1.weight": (64,),
    "backbone.layer1.0.conv1.weight": (64, 64, 1, 1),
    "backbone.layer1.0.conv2.weight": (64, 64, 3, 3),
    "backbone.layer1.2.conv3.weight": (256, 64, 1, 1),
    "backbone.layer1.0.downsample.0.weight": (256, 64, 1, 1),
    "backbone.layer1.0.downsample.1.bias": (256,),
    "backbone.layer2.3.conv2.weight": (128, 128, 3, 3),
    "backbone.layer2.0.downsample.0.weight": (512, 256, 1, 1),
    "backbone.layer3.0.conv2.weight": (256, 256, 3, 3),
    "backbone.layer3.0.conv2.conv_offset.weight": (18, 256, 3, 3),
    "backbone.layer3.5.conv2.conv_offset.bias": (18,),
    "backbone.layer3.5.gn3.weight": (1024,),
    "backbone.layer4.2.conv2.conv_offset.weight": (18, 512, 3, 3),
    "backbone.layer4.0.downsample.0.weight": (2048, 1024, 1, 1),
    "neck.0.lateral_convs.0.conv.weight": (256, 256, 1, 1),
    "neck.0.lateral_convs.3.conv.weight": (256, 2048, 1, 1),
    "neck.0.lateral_convs.3.gn.weight": (256,),
    "neck.0.fpn_convs.3.conv.weight": (256, 256, 3, 3),
    "neck.0.fpn_convs.4.conv.weight": (256, 2048, 3, 3),
    "neck.0.fpn_convs.5.conv.weight": (256, 256, 3, 3),
    "neck.1.level_convs.0.0.conv.weight": (128, 256, 3, 3),
    "neck.1.level_convs.0.1.conv.weight": (64, 256, 3, 3),
    "neck.1.level_convs.0.2.conv.weight": (64, 64, 3, 3),
    "neck.1.level_convs.0.4.gn.bias": (64,),
    "bbox_head.cls_convs.0.conv.weight": (256, 256, 3, 3),
    "bbox_head.reg_convs.3.gn.weight": (256,),
    "bbox_head.retina_cls.weight": (3, 256, 3, 3),
    "bbox_head.retina_cls.bias": (3,),
    "bbox_head.retina_reg.weight": (12, 256, 3, 3),
    "bbox_head.retina_iou.weight": (3, 256, 3, 3),
}


def test_full_model_keys_follow_reference(full):
    sd = full.state_dict()
    for k in sd:
        assert any(re.fullmatch(p, k) for p in KEY_PATTERNS), f"unexpected key {k}"
    for p in KEY_PATTERNS:
        assert any(re.fullmatch(p, k) for k in sd), f"no key for {p}"
    for k, shape in SHAPES.items():
        assert tuple(sd[k].shape) == shape, k
    # ResNet-50 depths (3, 4, 6, 3); DCN (offset convs) exactly in layer3 and layer4
    for layer, n in zip(range(1, 5), (3, 4, 6, 3)):
        blocks = {int(k.split(".")[2]) for k in sd if k.startswith(f"backbone.layer{layer}.")}
        assert blocks == set(range(n))
        offsets = [k for k in sd if k.startswith(f"backbone.layer{layer}.") and "conv_offset" in k]
        assert len(offsets) == (2 * n if layer >= 3 else 0)
    # 3 stem + 16 blocks x 9 + 4 downsamples x 3 + 9 DCN x 2; FPN 30; Inception 15; head 30
    assert len(sd) == 177 + 30 + 15 + 30
    # no bias on any conv followed by GN
    assert not any(k.endswith("conv.bias") for k in sd)
    assert not any(re.fullmatch(r"backbone\..*conv[123]\.bias", k) for k in sd)


def test_full_model_parameter_count(full):
    # ResNet-50 without fc 23,508,032 + DCN offset convs 497,826 + FPN 8,655,872
    # + Inception 553,728 + head 4,764,178
    assert count_parameters(full) == 37_979_636


def test_full_model_initialisation(full):
    sd = full.state_dict()
    assert torch.all(sd["backbone.layer3.0.conv2.conv_offset.weight"] == 0)
    assert torch.all(sd["backbone.layer4.1.conv2.conv_offset.bias"] == 0)
    assert torch.allclose(sd["bbox_head.retina_cls.bias"], torch.full((3,), -math.log(99.0)))
    assert abs(float(sd["bbox_head.retina_reg.weight"].std()) - 0.01) < 0.002


def test_full_model_forward_shapes(full):
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        cls, reg, iou = full(x)
    assert [tuple(c.shape) for c in cls] == [(1, 3, s, s) for s in (16, 8, 4, 2, 1, 1)]
    assert [tuple(r.shape) for r in reg] == [(1, 12, s, s) for s in (16, 8, 4, 2, 1, 1)]
    assert [tuple(i.shape) for i in iou] == [(1, 3, s, s) for s in (16, 8, 4, 2, 1, 1)]
    assert all(torch.isfinite(t).all() for t in cls + reg + iou)


def test_lite_has_the_same_parts():
    lite = TinaFace.lite()
    keys = set(lite.state_dict())
    assert any("layer3.0.conv2.conv_offset" in k for k in keys)
    assert any("layer4.0.conv2.conv_offset" in k for k in keys)
    assert "neck.1.level_convs.0.4.conv.weight" in keys and "bbox_head.retina_iou.weight" in keys
    assert count_parameters(lite) < 400_000
    with pytest.raises(ValueError, match="unknown"):
        TinaFace.lite(no_such_key=1)
    with pytest.raises(ValueError, match="GroupNorm"):
        TinaFace.lite(fpn_channels=30)


# ------------------------------------------------------------------ anchors
def test_base_anchors_values():
    b = base_anchors(4)
    s = 2 ** (4 / 3) * torch.tensor([1, 2 ** (1 / 3), 2 ** (2 / 3)], dtype=torch.float64)
    w, h = 4 * s / math.sqrt(1.3), 4 * s * math.sqrt(1.3)
    expect = torch.stack([-w / 2, -h / 2, w / 2, h / 2], dim=1)
    torch.testing.assert_close(b, expect)
    assert abs(float(b[0, 2] - b[0, 0]) - 8.8397) < 1e-3  # 4 * 2^(4/3) / sqrt(1.3)


def test_anchor_grid_order_and_centres():
    gen = AnchorGenerator()
    sizes = [(5, 7), (3, 4), (2, 2), (1, 1), (1, 1), (1, 1)]
    levels = gen.gen(sizes)
    assert [a.shape[0] for a in levels] == [h * w * 3 for h, w in sizes]
    for lvl, stride in ((0, 4), (1, 8)):
        H, W = sizes[lvl]
        base = base_anchors(stride).float()
        for y, x, s in ((0, 0, 0), (2, 3, 1), (H - 1, W - 1, 2)):
            a = levels[lvl][(y * W + x) * 3 + s]
            torch.testing.assert_close(a, base[s] + torch.tensor([x * stride, y * stride] * 2, dtype=torch.float32))
    # centres at (x * stride, y * stride): no half-cell offset
    c = (levels[1][:, :2] + levels[1][:, 2:]) / 2
    torch.testing.assert_close(c[(1 * 4 + 2) * 3], torch.tensor([16.0, 8.0]))


# -------------------------------------------------------------------- coder
def test_coder_roundtrip_and_stds():
    anchors = torch.tensor([[0.0, 0.0, 10.0, 20.0], [5.0, 5.0, 9.0, 7.0]], dtype=torch.float64)
    gts = torch.tensor([[1.0, 2.0, 12.0, 18.0], [4.0, 5.0, 10.0, 8.0]], dtype=torch.float64)
    d = coder.encode(anchors, gts)
    torch.testing.assert_close(coder.decode(anchors, d), gts)
    # dx = (6.5 - 5) / 10 / 0.1 ; dw = log(11 / 10) / 0.2
    torch.testing.assert_close(d[0, 0], torch.tensor(1.5, dtype=torch.float64))
    torch.testing.assert_close(d[0, 2], torch.tensor(math.log(1.1) / 0.2, dtype=torch.float64))
    torch.testing.assert_close(coder.decode(anchors, torch.zeros(2, 4, dtype=torch.float64)), anchors)


def test_coder_clamps_and_clips():
    anchors = torch.tensor([[10.0, 10.0, 26.0, 26.0]])
    big = torch.tensor([[0.0, 0.0, 100.0, -100.0]])
    out = coder.decode(anchors, big)
    w, h = out[0, 2] - out[0, 0], out[0, 3] - out[0, 1]
    torch.testing.assert_close(w, torch.tensor(16 * 1000 / 16.0))  # exp(log(1000/16)) * 16
    torch.testing.assert_close(h, torch.tensor(16 * 16 / 1000.0))
    clipped = coder.decode(anchors, big, max_shape=(30, 40))
    assert clipped[0, 0] == 0 and clipped[0, 2] == 40
    assert 0 <= clipped[0, 1] <= 30 and 0 <= clipped[0, 3] <= 30


# -------------------------------------------------------------- checkpoints
def test_save_load_roundtrip(tmp_path):
    m = TinaFace.lite(stacked_convs=1)
    p = tmp_path / "lite.pt"
    m.save(p)
    m2 = TinaFace.load(p)
    assert m2.config == m.config and m2.config["stacked_convs"] == 1
    for (k, a), (k2, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = torch.rand(1, 3, 40, 50)
    with torch.no_grad():
        for a, b in zip(m(x)[0], m2(x)[0]):
            assert torch.equal(a, b)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left nothing behind


def test_load_rejects_other_files(tmp_path):
    p = tmp_path / "plain.pt"
    torch.save(TinaFace.lite().state_dict(), p)
    with pytest.raises(ValueError, match="from_vedadet"):
        TinaFace.load(p)
    with pytest.raises(FileNotFoundError):
        TinaFace.load(tmp_path / "missing.pt")


def test_from_vedadet_strips_module_prefix_and_loads(tmp_path):
    src = TinaFace.lite()
    sd = {"module." + k: v.clone() for k, v in src.state_dict().items()}
    p = tmp_path / "vedadet.pth"
    torch.save({"meta": {"epoch": 3}, "state_dict": sd}, p)
    m = TinaFace.from_vedadet(p, config=LITE_CONFIG)
    for k, v in src.state_dict().items():
        assert torch.equal(m.state_dict()[k], v)
    torch.save({k[len("module."):]: v for k, v in sd.items()}, p)  # plain state_dict too
    TinaFace.from_vedadet(p, config=LITE_CONFIG)


def test_from_vedadet_is_strict(tmp_path):
    sd = {k: v.clone() for k, v in TinaFace.lite().state_dict().items()}
    del sd["bbox_head.retina_iou.bias"]
    sd["bbox_head.extra.weight"] = torch.zeros(1)
    sd["neck.1.level_convs.0.0.conv.weight"] = torch.zeros(3, 3, 3, 3)
    p = tmp_path / "bad.pth"
    torch.save(sd, p)
    with pytest.raises(ValueError) as e:
        TinaFace.from_vedadet(p, config=LITE_CONFIG)
    msg = str(e.value)
    assert "missing keys (1): bbox_head.retina_iou.bias" in msg
    assert "unexpected keys (1): bbox_head.extra.weight" in msg
    assert "neck.1.level_convs.0.0.conv.weight" in msg and "shape" in msg
    # a full-size checkpoint does not load into the lite model and vice versa
    torch.save(TinaFace.lite().state_dict(), p)
    with pytest.raises(ValueError, match="shape mismatches"):
        TinaFace.from_vedadet(p)


def test_detections_to_wider():
    from tasklle.models.tinaface import detections_to_wider

    d = np.array([[10, 20, 30, 60, 0.9]], dtype=np.float32)
    np.testing.assert_allclose(detections_to_wider(d), [[10, 20, 20, 40, 0.9]], rtol=1e-6)
    assert detections_to_wider(np.zeros((0, 5), np.float32)).shape == (0, 5)
    with pytest.raises(ValueError):
        detections_to_wider(np.zeros((3, 4)))
