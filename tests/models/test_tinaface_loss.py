"""TinaFace loss semantics (REFERENCE §4), the frozen-loss API and a short
training run of the lite model."""
import math

import pytest
import torch

from tasklle import ops
from tasklle.models import TinaFace
from tasklle.models.tinaface.detector import MEAN


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lite():
    torch.manual_seed(0)
    return TinaFace.lite()


def _targets():
    return [
        {"boxes": torch.tensor([[10.0, 12.0, 40.0, 50.0], [44.0, 30.0, 60.0, 52.0]]),
         "ignore": torch.tensor([False, False])},
        {"boxes": torch.tensor([[5.0, 5.0, 25.0, 30.0], [30.0, 30.0, 30.5, 40.0]]),
         "ignore": torch.tensor([False, True])},
    ]


def _zero_outputs(model, B, H, W):
    """Head outputs of all zeros for a (B, 3, H, W) input, shaped like forward's."""
    x = torch.zeros(B, 3, H, W)
    with torch.no_grad():
        cls, reg, iou = model(x)
    return tuple([torch.zeros_like(t, requires_grad=True) for t in level] for level in (cls, reg, iou))


def _diou(a, b, eps=1e-6):
    """Independent DIoU loss of aligned pairs (REFERENCE §4 formula)."""
    lt = torch.max(a[:, :2], b[:, :2])
    rb = torch.min(a[:, 2:], b[:, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[:, 0] * wh[:, 1]
    area = lambda t: (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])  # noqa: E731
    iou = overlap / (area(a) + area(b) - overlap + eps)
    elt = torch.min(a[:, :2], b[:, :2])
    erb = torch.max(a[:, 2:], b[:, 2:])
    c2 = ((erb - elt) ** 2).sum(1) + eps
    rho2 = (((a[:, :2] + a[:, 2:]) - (b[:, :2] + b[:, 2:])) ** 2).sum(1) / 4
    return 1 - iou + rho2 / c2


def test_loss_closed_form_with_zero_outputs(lite):
    """All-zero logits and deltas: focal = alpha_t * 0.25 * ln 2 per anchor, the
    decoded boxes are the anchors themselves, BCE(0, t) = ln 2 for any target."""
    targets = _targets()
    outputs = _zero_outputs(lite, 2, 64, 64)
    total, parts, num_pos = lite.loss_from_outputs(outputs, targets)
    anchors = lite.anchors(outputs)
    cls_sum, reg_sum, npos_total, norm = 0.0, 0.0, 0, 0
    for t in targets:
        keep = ~t["ignore"]
        assigned, _ = ops.assign_max_iou(anchors, t["boxes"], gt_ignore=t["ignore"])
        pos = assigned >= 0
        assert bool(keep[assigned[pos]].all())  # ignored boxes are never assigned
        n_pos, n_neg = int(pos.sum()), int((assigned == ops.NEGATIVE).sum())
        cls_sum += (0.25 * n_pos + 0.75 * n_neg) * 0.25 * math.log(2)
        reg_sum += float(_diou(anchors[pos].double(), t["boxes"][assigned[pos]].double()).sum())
        npos_total += n_pos
        norm += max(n_pos, 1)
    assert npos_total > 0
    assert num_pos == norm
    torch.testing.assert_close(parts["cls"], torch.tensor(cls_sum / norm, dtype=torch.float32), rtol=1e-5, atol=0)
    torch.testing.assert_close(parts["reg"], torch.tensor(2 * reg_sum / norm, dtype=torch.float32), rtol=1e-5, atol=0)
    torch.testing.assert_close(parts["iou"], torch.tensor(npos_total * math.log(2) / norm, dtype=torch.float32),
                               rtol=1e-5, atol=0)
    torch.testing.assert_close(total, parts["cls"] + parts["reg"] + parts["iou"])


def test_num_pos_reduce_sets_the_normaliser(lite):
    targets = _targets()
    outputs = _zero_outputs(lite, 2, 64, 64)
    _, parts, n = lite.loss_from_outputs(outputs, targets)
    seen = []
    _, parts2, _ = lite.loss_from_outputs(outputs, targets, num_pos_reduce=lambda v: seen.append(v) or 2 * v)
    assert seen == [n]
    for k in parts:
        torch.testing.assert_close(parts2[k], parts[k] / 2)


def test_ignored_box_equals_absent_box(lite):
    x = torch.rand(2, 3, 64, 64)
    t_ign = _targets()
    t_abs = [t_ign[0], {"boxes": t_ign[1]["boxes"][:1], "ignore": torch.tensor([False])}]
    t_ign[1]["ignore"] = torch.tensor([False, True])
    t_ign[1]["boxes"] = torch.tensor([[5.0, 5.0, 25.0, 30.0], [30.0, 30.0, 50.0, 55.0]])  # a big ignored box
    a, pa = lite.loss(x, t_ign)
    b, pb = lite.loss(x, t_abs)
    assert torch.equal(a, b)


def test_no_boxes_gives_only_cls_loss_and_all_parameters_get_gradients():
    torch.manual_seed(0)
    m = TinaFace.lite()
    x = torch.rand(1, 3, 48, 40)
    total, parts = m.loss(x, [{"boxes": torch.zeros(0, 4)}])
    assert float(parts["reg"].detach()) == 0 and float(parts["iou"].detach()) == 0
    assert float(parts["cls"].detach()) > 0
    total.backward()
    assert all(p.grad is not None for p in m.parameters())


def test_padding_is_done_inside_after_normalisation(lite):
    """An image padded by hand with the mean colour (zero after normalisation)
    gives the same loss as the unpadded image."""
    x = torch.rand(1, 3, 50, 70)
    padded = torch.tensor(MEAN).div(255).view(1, 3, 1, 1).expand(1, 3, 64, 96).clone()
    padded[..., :50, :70] = x
    t = [{"boxes": torch.tensor([[8.0, 9.0, 30.0, 40.0]])}]
    a, _ = lite.loss(x, t)
    b, _ = lite.loss(padded, t)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_frozen_detector_passes_gradient_to_images_only():
    torch.manual_seed(0)
    m = TinaFace.lite().freeze()
    assert not m.training and not any(p.requires_grad for p in m.parameters())
    before = {k: v.clone() for k, v in m.state_dict().items()}
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    total, parts = m.loss(x, _targets())
    total.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in m.parameters())
    after = m.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_loss_validates_targets(lite):
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError, match="2 images"):
        lite.loss(x, _targets()[:1])
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        lite.loss(x, [{"boxes": torch.zeros(3, 5)}] * 2)
    with pytest.raises(TypeError, match="ignore"):
        lite.loss(x, [{"boxes": torch.zeros(1, 4), "ignore": torch.zeros(1)}] * 2)
    with pytest.raises(ValueError, match="NaN"):
        lite.loss(x, [{"boxes": torch.full((1, 4), float("nan"))}] * 2)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        lite.loss(x[0], _targets())
    with pytest.raises(TypeError, match="targets"):
        lite.loss(x, "boxes")


def test_lite_loss_falls_when_training():
    torch.manual_seed(0)
    m = TinaFace.lite()
    x = torch.rand(2, 3, 64, 64)
    targets = _targets()
    opt = torch.optim.Adam(m.parameters(), lr=2e-3)
    losses = []
    for _ in range(12):
        total, _ = m.loss(x, targets)
        opt.zero_grad()
        total.backward()
        opt.step()
        losses.append(float(total.detach()))
    assert losses[-1] < 0.7 * losses[0]
