"""RetinaFace training loss (biubug6 MultiBoxLoss): equality with an independent
transcription of biubug6's match / encode / multibox loss, the matching through
the C assignment op, ignored boxes, gradients, bad targets, and the frozen model."""
import math

import pytest
import torch
import torch.nn.functional as F

from tasklle import ops
from tasklle.models.retinaface import loss as rloss
from tasklle.reference import assign as ref_assign

pytestmark = pytest.mark.usefixtures("one_thread")

MIN_SIZES = ((16, 32), (64, 128), (256, 512))
STEPS = (8, 16, 32)


def _priors(H, W, dtype=torch.float32):
    """biubug6 PriorBox: per level, row-major locations, two sizes a location,
    (cx, cy, w, h) normalised by the input width / height."""
    out = []
    for sizes, step in zip(MIN_SIZES, STEPS):
        for i in range(math.ceil(H / step)):
            for j in range(math.ceil(W / step)):
                for s in sizes:
                    out.append([(j + 0.5) * step / W, (i + 0.5) * step / H, s / W, s / H])
    return torch.tensor(out, dtype=dtype)


# ---------------------------------------------------------------- biubug6, transcribed with torch ops

def _point_form(p):
    return torch.cat((p[:, :2] - p[:, 2:] / 2, p[:, :2] + p[:, 2:] / 2), 1)


def _jaccard(a, b):
    """(G, P) IoU of truths a and point-form priors b, biubug6's operation order."""
    G, P = a.shape[0], b.shape[0]
    max_xy = torch.min(a[:, None, 2:].expand(G, P, 2), b[None, :, 2:].expand(G, P, 2))
    min_xy = torch.max(a[:, None, :2].expand(G, P, 2), b[None, :, :2].expand(G, P, 2))
    inter = torch.clamp(max_xy - min_xy, min=0)
    inter = inter[:, :, 0] * inter[:, :, 1]
    area_a = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None].expand_as(inter)
    area_b = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[None, :].expand_as(inter)
    return inter / (area_a + area_b - inter)


def _b6_match(threshold, truths, priors):
    """biubug6 ``match`` up to the label lookup: (best_truth_idx (P,), positive (P,) bool).
    No truth at all is biubug6's early return (every prior background)."""
    P = priors.shape[0]
    if truths.shape[0] == 0:
        return torch.zeros(P, dtype=torch.int64), torch.zeros(P, dtype=torch.bool)
    overlaps = _jaccard(truths, _point_form(priors))
    best_prior_overlap, best_prior_idx = overlaps.max(1, keepdim=True)
    valid = best_prior_overlap[:, 0] >= 0.2
    best_prior_idx_filter = best_prior_idx[valid, :]
    if best_prior_idx_filter.shape[0] <= 0:
        return torch.zeros(P, dtype=torch.int64), torch.zeros(P, dtype=torch.bool)
    best_truth_overlap, best_truth_idx = overlaps.max(0, keepdim=True)
    best_truth_idx = best_truth_idx[0].clone()
    best_truth_overlap = best_truth_overlap[0].clone()
    best_prior_idx = best_prior_idx[:, 0]
    best_truth_overlap.index_fill_(0, best_prior_idx_filter[:, 0], 2)
    for j in range(best_prior_idx.shape[0]):  # every truth, the filtered ones too
        best_truth_idx[best_prior_idx[j]] = j
    return best_truth_idx, ~(best_truth_overlap < threshold)


def _b6_encode(matched, priors, variances):
    g_cxcy = (matched[:, :2] + matched[:, 2:]) / 2 - priors[:, :2]
    g_cxcy = g_cxcy / (variances[0] * priors[:, 2:])
    g_wh = (matched[:, 2:] - matched[:, :2]) / priors[:, 2:]
    return torch.cat([g_cxcy, torch.log(g_wh) / variances[1]], 1)


def _b6_encode_landm(matched, priors, variances):
    m = matched.reshape(matched.shape[0], 5, 2)
    pr = priors[:, None, :].expand(matched.shape[0], 5, 4)
    g = (m - pr[:, :, :2]) / (variances[0] * pr[:, :, 2:])
    return g.reshape(g.shape[0], -1)


def _b6_log_sum_exp(x):
    x_max = x.detach().max()
    return torch.log(torch.sum(torch.exp(x - x_max), 1, keepdim=True)) + x_max


def _b6_loss(loc_data, conf_data, landm_data, priors, targets, threshold=0.35, negpos=7, variances=(0.1, 0.2)):
    """biubug6 MultiBoxLoss.forward; targets: per image (N, 15) normalised
    [x1 y1 x2 y2, 10 landmark coordinates, label 1 / -1]. Returns (loss_l, loss_c, loss_landm)."""
    num, P = loc_data.shape[:2]
    loc_t = torch.zeros(num, P, 4, dtype=loc_data.dtype)
    landm_t = torch.zeros(num, P, 10, dtype=loc_data.dtype)
    conf_t = torch.zeros(num, P, dtype=torch.int64)
    for idx in range(num):
        truths, labels, landms = targets[idx][:, :4], targets[idx][:, -1], targets[idx][:, 4:14]
        bti, positive = _b6_match(threshold, truths, priors)
        if not positive.any():
            continue
        conf = labels[bti].clone()
        conf[~positive] = 0
        loc_t[idx] = _b6_encode(truths[bti], priors, variances)
        conf_t[idx] = conf.long()
        landm_t[idx] = _b6_encode_landm(landms[bti], priors, variances)
    zeros = torch.tensor(0)
    pos1 = conf_t > zeros
    N1 = max(pos1.long().sum().float(), 1)
    landm_p = landm_data[pos1.unsqueeze(2).expand_as(landm_data)].view(-1, 10)
    landm_tt = landm_t[pos1.unsqueeze(2).expand_as(landm_data)].view(-1, 10)
    loss_landm = F.smooth_l1_loss(landm_p, landm_tt, reduction="sum")
    pos = conf_t != zeros
    conf_t[pos] = 1
    pos_idx = pos.unsqueeze(2).expand_as(loc_data)
    loss_l = F.smooth_l1_loss(loc_data[pos_idx].view(-1, 4), loc_t[pos_idx].view(-1, 4), reduction="sum")
    batch_conf = conf_data.reshape(-1, 2)
    loss_c = _b6_log_sum_exp(batch_conf) - batch_conf.gather(1, conf_t.view(-1, 1))
    loss_c = loss_c.detach().clone()
    loss_c[pos.view(-1, 1)] = 0
    loss_c = loss_c.view(num, -1)
    _, loss_idx = loss_c.sort(1, descending=True)
    _, idx_rank = loss_idx.sort(1)
    num_pos = pos.long().sum(1, keepdim=True)
    num_neg = torch.clamp(negpos * num_pos, max=pos.shape[1] - 1)
    neg = idx_rank < num_neg.expand_as(idx_rank)
    sel = (pos.unsqueeze(2).expand_as(conf_data).long() + neg.unsqueeze(2).expand_as(conf_data).long()).gt(0)
    conf_p = conf_data[sel].view(-1, 2)
    loss_c = F.cross_entropy(conf_p, conf_t[(pos.long() + neg.long()).gt(0)], reduction="sum")
    N = max(num_pos.sum().float(), 1)
    return loss_l / N, loss_c / N, loss_landm / N1


def _b6_targets(targets, H, W, dtype):
    """The project's pixel targets as biubug6's data loader hands them to the loss."""
    scale = torch.tensor([W, H], dtype=dtype)
    out = []
    for t in targets:
        boxes = torch.as_tensor(t["boxes"], dtype=dtype).reshape(-1, 4)
        lm = t.get("landmarks")
        lm = torch.full((boxes.shape[0], 10), -1.0, dtype=dtype) if lm is None else torch.as_tensor(lm, dtype=dtype)
        label = torch.where(lm[:, 0] < 0, -1.0, 1.0).to(dtype)
        out.append(torch.cat([boxes / scale.repeat(2), lm / scale.repeat(5), label[:, None]], 1))
    return out


# ---------------------------------------------------------------- random cases

def _random_boxes(g, n, H, W, grid):
    """n boxes of sizes from 2 px to the image size; on a 4-px grid when ``grid``
    (exact IoU ties between priors), some tiny ones inside or beside larger faces."""
    boxes = []
    for _ in range(n):
        kind = torch.rand((), generator=g).item()
        if kind < 0.3:
            size = 2 + 6 * torch.rand(2, generator=g)  # under ~7 px: fails the 0.2 filter
        elif kind < 0.8:
            size = 8 + 40 * torch.rand(2, generator=g)
        else:
            size = 40 + torch.tensor([W, H]) * 0.8 * torch.rand(2, generator=g)
        x1 = (W - 4) * torch.rand((), generator=g)
        y1 = (H - 4) * torch.rand((), generator=g)
        b = torch.stack([x1, y1, x1 + size[0], y1 + size[1]])
        if grid:
            b = torch.round(b / 4) * 4
            b[2:] = torch.maximum(b[2:], b[:2] + 4)
        boxes.append(b)
        if kind > 0.5 and torch.rand((), generator=g).item() < 0.5:  # a tiny face near this one
            c = b[:2] + (b[2:] - b[:2]) * torch.rand(2, generator=g)
            s = 2 + 5 * torch.rand(2, generator=g)
            boxes.append(torch.cat([c, c + s]))
    return torch.stack(boxes) if boxes else torch.zeros(0, 4)


def _random_landmarks(g, boxes, frac):
    """Five points inside each box; -1 for the faces without landmarks."""
    n = boxes.shape[0]
    u = torch.rand(n, 5, 2, generator=g)
    pts = boxes[:, None, :2] + u * (boxes[:, None, 2:] - boxes[:, None, :2])
    pts = pts.reshape(n, 10)
    absent = torch.rand(n, generator=g) >= frac
    pts[absent] = -1.0
    return pts


def _batch(seed, H=64, W=96, dtype=torch.float32):
    """Five images: faces of varied size, one with only tiny faces (all fail the
    0.2 filter), one without a face, one without landmarks, one with all."""
    g = torch.Generator().manual_seed(seed)
    targets = []
    for b in range(5):
        if b == 3:
            boxes = torch.zeros(0, 4)
        elif b == 2:
            x = torch.rand(3, 2, generator=g) * torch.tensor([W - 10.0, H - 10.0])
            boxes = torch.cat([x, x + 3.0], 1)
        else:
            boxes = _random_boxes(g, 2 + b, H, W, grid=b % 2 == 0)
        t = {"boxes": boxes.to(dtype)}
        if b != 1:
            t["landmarks"] = _random_landmarks(g, boxes, 1.0 if b == 4 else 0.6).to(dtype)
        targets.append(t)
    A = _priors(H, W).shape[0]
    loc = torch.randn(5, A, 4, generator=g).to(dtype)
    conf = (2 * torch.randn(5, A, 2, generator=g)).to(dtype)
    landm = torch.randn(5, A, 10, generator=g).to(dtype)
    return loc, conf, landm, _priors(H, W, dtype), targets, (H, W)


# ---------------------------------------------------------------- tests

def _single_call(priors_pf, truths):
    """The plain mapping of biubug6's match onto the op (min_pos 0.2 only)."""
    a, _ = ops.assign_max_iou(priors_pf, truths, 0.35, 0.35, 0.2, gt_max_assign_all=False, match_low_quality=True)
    return a


@pytest.mark.parametrize("assign", ["c", "twin"])
def test_match_equals_biubug6(assign, monkeypatch):
    """rloss.match (two op calls) == biubug6 match on 600 random images with
    grid ties, tiny faces and the forcing loop over every truth; the
    single-call mapping differs exactly where that loop matters."""
    if assign == "twin":
        monkeypatch.setattr(ops, "assign_max_iou", ref_assign.assign_max_iou)
    g = torch.Generator().manual_seed(1)
    quirk = 0
    positives = 0
    for case in range(600):
        H, W = (64, 96) if case % 2 else (96, 64)
        priors = _priors(H, W)
        boxes = _random_boxes(g, 1 + case % 7, H, W, grid=case % 3 == 0)
        truths = boxes / torch.tensor([W, H, W, H], dtype=torch.float32)
        bti, positive = _b6_match(0.35, truths, priors)
        got = rloss.match(rloss.point_form(priors), truths)
        assert torch.equal(got >= 0, positive), case
        assert torch.equal(got[positive], bti[positive]), case
        positives += int(positive.sum())
        single = _single_call(rloss.point_form(priors), truths)
        quirk += int(not torch.equal(single, got))
    assert positives > 600
    assert quirk > 0  # the random cases do exercise biubug6's forcing of skipped truths


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_equals_biubug6(seed, dtype):
    loc, conf, landm, priors, targets, (H, W) = _batch(seed, dtype=dtype)
    total, parts = rloss.multibox_loss(loc, conf, priors, targets, (H, W), landm)
    l, c, lm = _b6_loss(loc, conf, landm, priors, _b6_targets(targets, H, W, dtype))
    want = {"loc": 2.0 * l, "conf": c, "landm": lm}
    for k in want:
        assert parts[k].dtype == dtype
        assert float(want[k]) > 0, k
        assert abs(float(parts[k]) - float(want[k])) <= 1e-4 * abs(float(want[k])), k
    assert abs(float(total) - float(sum(want.values()))) <= 1e-4 * float(sum(want.values()))
    assert torch.allclose(total, parts["loc"] + parts["conf"] + parts["landm"], rtol=1e-6, atol=0)


def test_images_without_positive_contribute_nothing():
    """An image whose faces all fail the 0.2 filter, or that has none, mines no
    negative (num_pos 0): the loss of the batch equals the loss without it,
    rescaled by nothing (N counts positives only). All such: every part 0."""
    loc, conf, landm, priors, targets, size = _batch(3)
    total, parts = rloss.multibox_loss(loc, conf, priors, targets, size, landm)
    keep = [0, 1, 4]
    t2, p2 = rloss.multibox_loss(loc[keep], conf[keep], priors, [targets[i] for i in keep], size, landm[keep])
    assert torch.allclose(total, t2, rtol=1e-6, atol=0)
    none = [2, 3]
    t0, p0 = rloss.multibox_loss(loc[none], conf[none], priors, [targets[i] for i in none], size, landm[none])
    assert float(t0) == 0.0 and all(float(v) == 0.0 for v in p0.values())
    l, c, lm = _b6_loss(loc[none], conf[none], landm[none], priors, _b6_targets([targets[i] for i in none], *size,
                                                                              torch.float32))
    assert float(l) == float(c) == float(lm) == 0.0


def test_landmark_term_zero_without_landmarks():
    loc, conf, landm, priors, targets, size = _batch(4)
    bare = [{"boxes": t["boxes"]} for t in targets]
    total, parts = rloss.multibox_loss(loc, conf, priors, bare, size, landm)
    assert float(parts["landm"]) == 0.0
    t_none, p_none = rloss.multibox_loss(loc, conf, priors, targets, size, None)
    assert float(p_none["landm"]) == 0.0
    assert torch.allclose(total, t_none, rtol=1e-6, atol=0)
    with_lm, p_lm = rloss.multibox_loss(loc, conf, priors, targets, size, landm)
    assert float(p_lm["landm"]) > 0
    assert torch.allclose(p_lm["conf"], parts["conf"]) and torch.allclose(p_lm["loc"], parts["loc"])


def test_ignored_and_degenerate_boxes_take_no_part():
    loc, conf, landm, priors, targets, size = _batch(5)
    marked, removed = [], []
    g = torch.Generator().manual_seed(7)
    n_ignored = 0
    for t in targets:
        n = t["boxes"].shape[0]
        ign = torch.rand(n, generator=g) < 0.4
        n_ignored += int(ign.sum())
        lm = t.get("landmarks")
        # a zero-width box (dropped like an ignored one) in every image
        flat = torch.tensor([[20.0, 20.0, 20.0, 40.0]], dtype=t["boxes"].dtype)
        m = {"boxes": torch.cat([t["boxes"], flat]), "ignore": torch.cat([ign, torch.tensor([False])])}
        r = {"boxes": t["boxes"][~ign]}
        if lm is not None:
            m["landmarks"] = torch.cat([lm, torch.full((1, 10), 25.0)])
            r["landmarks"] = lm[~ign]
        marked.append(m)
        removed.append(r)
    assert n_ignored > 0
    total, parts = rloss.multibox_loss(loc, conf, priors, marked, size, landm)
    t2, p2 = rloss.multibox_loss(loc, conf, priors, removed, size, landm)
    assert torch.isfinite(total)
    assert torch.equal(total, t2)
    for k in parts:
        assert torch.equal(parts[k], p2[k])
    plain, _ = rloss.multibox_loss(loc, conf, priors, targets, size, landm)  # no 'ignore' entries
    assert not torch.equal(plain, total)  # the ignore marks did change the loss


def test_gradcheck():
    """float64 on a small input (24 x 24, 28 priors) where the mining keeps a
    strict subset of the negatives; the mining and the smooth-L1 kinks are
    piecewise, so the random values stay away from ties and kinks."""
    H, W = 24, 24
    priors = _priors(H, W, torch.float64)
    A = priors.shape[0]
    g = torch.Generator().manual_seed(11)
    faces = torch.tensor([[2.0, 3.0, 14.0, 16.0], [12.0, 6.0, 23.0, 20.0]], dtype=torch.float64)
    targets = [{"boxes": faces, "landmarks": _random_landmarks(g, faces, 1.0)},
               {"boxes": torch.tensor([[4.0, 5.0, 21.0, 22.0]], dtype=torch.float64)}]
    pf = rloss.point_form(priors)
    num_pos = [int((rloss.match(pf, t["boxes"] / W) >= 0).sum()) for t in targets]
    assert all(0 < 7 * n < A - n for n in num_pos)  # mining selects, it does not take all
    loc = torch.randn(2, A, 4, generator=g, dtype=torch.float64, requires_grad=True)
    conf = torch.randn(2, A, 2, generator=g, dtype=torch.float64, requires_grad=True)
    landm = torch.randn(2, A, 10, generator=g, dtype=torch.float64, requires_grad=True)

    def f(lo, co, la):
        _, parts = rloss.multibox_loss(lo, co, priors, targets, (H, W), la)
        return parts["loc"], parts["conf"], parts["landm"]

    assert torch.autograd.gradcheck(f, (loc, conf, landm), eps=1e-6, atol=1e-5)
    total, _ = rloss.multibox_loss(loc, conf, priors, targets, (H, W), landm)
    total.backward()
    for t in (loc, conf, landm):
        assert t.grad is not None and float(t.grad.abs().sum()) > 0


def test_bad_input_raises():
    loc, conf, landm, priors, targets, size = _batch(6)

    def call(tg=targets, size=size, conf=conf, landm=landm, **kw):
        return rloss.multibox_loss(loc, conf, priors, tg, size, landm, **kw)

    with pytest.raises(ValueError, match="targets"):
        call(targets[:-1])
    with pytest.raises(TypeError, match="targets"):
        call(targets[0])
    with pytest.raises(ValueError, match="boxes"):
        call(targets[:-1] + [{"boxes": torch.zeros(3, 5)}])
    bad = dict(targets[0])
    bad["boxes"] = bad["boxes"].clone()
    bad["boxes"][0, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        call([bad] + targets[1:])
    bad = dict(targets[0])
    bad["landmarks"] = bad["landmarks"][:, :8]
    with pytest.raises(ValueError, match="landmarks"):
        call([bad] + targets[1:])
    bad = dict(targets[0])
    bad["landmarks"] = bad["landmarks"].clone()
    bad["landmarks"][0, 0] = float("inf")
    with pytest.raises(ValueError, match="landmarks"):
        call([bad] + targets[1:])
    with pytest.raises(TypeError, match="ignore"):
        call([dict(targets[0], ignore=torch.zeros(targets[0]["boxes"].shape[0]))] + targets[1:])
    with pytest.raises(ValueError, match="conf"):
        call(conf=conf[:, :, :1])
    with pytest.raises(TypeError, match="landm"):
        call(landm=landm.double())
    with pytest.raises(TypeError, match="image_size"):
        call(size=64)
    with pytest.raises(ValueError, match="image_size"):
        call(size=(0, 96))
    with pytest.raises(ValueError, match="neg_pos"):
        call(neg_pos=-1)


def test_state_dict_sha256_with_batchnorm():
    """The fingerprint takes 0-dim buffers (BatchNorm's num_batches_tracked, in
    RetinaFace's bodies) and sees them change."""
    from tasklle.train.joint import state_dict_sha256

    bn = torch.nn.BatchNorm2d(3)
    before = state_dict_sha256(bn)
    assert before == state_dict_sha256(bn)
    bn(torch.rand(2, 3, 4, 4))  # train mode: running stats and the 0-dim counter move
    assert state_dict_sha256(bn) != before
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0)
    assert state_dict_sha256(bn) != before  # only num_batches_tracked differs now
    bn.num_batches_tracked.zero_()
    assert state_dict_sha256(bn) == before


def test_model_loss_frozen():
    """A random-weight frozen RetinaFace: the loss sends gradient to the images
    and to no parameter, and the weights are bit-identical after backward."""
    mod = pytest.importorskip("tasklle.models.retinaface")
    if not hasattr(mod, "RetinaFace"):
        pytest.skip("tasklle.models.retinaface.RetinaFace is not written yet")
    from tasklle.train.joint import state_dict_sha256

    torch.manual_seed(0)
    model = mod.RetinaFace("mobilenet0.25").freeze()
    before = state_dict_sha256(model)
    H, W = 64, 96
    images = torch.rand(2, 3, H, W, requires_grad=True)
    targets = [{"boxes": torch.tensor([[10.0, 12.0, 40.0, 50.0], [50.0, 8.0, 70.0, 30.0]]),
                "ignore": torch.tensor([False, True])},
               {"boxes": torch.tensor([[30.0, 20.0, 62.0, 60.0]])}]
    total, parts = model.loss(images, targets)
    assert set(parts) == {"loc", "conf", "landm"}
    loc, conf, landm = model(images)
    want, _ = rloss.multibox_loss(loc, conf, model.priors(H, W, loc.dtype, loc.device), targets, (H, W), landm)
    assert torch.allclose(total, want, rtol=1e-5, atol=0)
    total.backward()
    assert images.grad is not None and float(images.grad.abs().sum()) > 0
    assert all(p.grad is None for p in model.parameters())
    assert state_dict_sha256(model) == before
