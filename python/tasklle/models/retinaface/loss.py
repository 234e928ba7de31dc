"""Training loss of RetinaFace as biubug6/Pytorch_Retinaface releases it
(``layers/modules/multibox_loss.py`` ``MultiBoxLoss`` with ``utils/box_utils.py``
``match``/``encode``/``encode_landm``, constructed by ``train.py`` as
``MultiBoxLoss(2, 0.35, True, 0, True, 7, 0.35, False)`` and weighted by
``cfg['loc_weight'] = 2``), for use as a frozen downstream loss.

Everything is computed, as in biubug6, in coordinates normalised by the network
input: target boxes and landmarks are divided by (W, H) like biubug6's data
loader, the priors are biubug6's ``PriorBox`` (cx, cy, w, h in [0, 1]).

Matching, per image (biubug6 ``match``; IoU with the priors in point form):

- every truth's best prior (first on ties) is forced onto it, except that a
  truth whose best IoU is < 0.2 does not make its prior positive;
- every other prior takes its best truth and is positive iff that IoU >= 0.35;
- biubug6's forcing loop sets the truth *index* of the best prior of every
  truth, the < 0.2 ones included (only the "positive" mark is filtered). So a
  prior that is positive through another face but is the best prior of a
  skipped tiny face regresses to that tiny face. This is reproduced exactly.

Both are done by the C ``tasklle.ops.assign_max_iou`` (pos = neg = 0.35,
first anchor only, low-quality matching): once with min_pos = 0.2, which
gives the positive set, and once with min_pos = 0, whose forcing runs over
every truth as biubug6's loop does, which gives the indices. IoU is taken on
the normalised boxes because that is what biubug6 computes (the same float
operations in the same order, so ties and the 0.35 / 0.2 comparisons come out
the same); the op's union floor 1e-6 never acts there, since a union is at
least the area of a prior, (16 / W) * (16 / H) > 1e-6 below 16,000 x 16,000 px.

Then, with N = max(number of positives in the batch, 1):

- loc: smooth-L1 (beta 1, summed) between the positives' box offsets and their
  truths encoded with the variances (0.1, 0.2), divided by N;
- conf: cross-entropy (summed) over the positives (class 1) and the hard
  negatives (class 0), divided by N. Hard negatives, per image: rank every
  prior by its cross-entropy against its target with the positives' set to 0
  (biubug6's double sort), keep the first ``min(neg_pos * num_pos, A - 1)``;
  an image without a positive thus contributes nothing. The ranking is made
  under no_grad with ``torch.logsumexp`` (biubug6 subtracts one global maximum,
  which underflows to -inf for very spread logits; the values are otherwise
  equal);
- landm: smooth-L1 (summed) over the positives matched to a face that has
  landmarks (biubug6's label 1: first landmark x >= 0; the WIDER labels use -1
  where a face has none), divided by their number (floor 1); 0 when no target
  has landmarks or ``landm`` is None.

``total = loc_weight * loc + conf + landm``; ``parts`` holds the three terms
(loc already weighted), which sum to ``total``.

Where this differs from the text of the issue / the paper: biubug6's released
``train.py`` mines **7** negatives per positive (``neg_pos=7``), not the 3:1 of
SSD and of the MultiBoxLoss docstring; 7 is the default here. Some copies of
the file add 200 to the negative count; the released one does not.

Beyond biubug6 (whose data loader never produces these cases):

- ignored boxes (``'ignore'`` True) take no part in the matching, as in the
  project's TinaFace loss: the loss equals the loss without them;
- boxes with zero width or height are dropped too: their IoU with every prior
  is 0, so in biubug6 they can only act through the forcing loop above, where
  they would give an infinite box target;
- an image with no (kept) box has every prior background and, having no
  positive, mines no negative: it contributes 0, as an image whose faces all
  fail the 0.2 filter does in biubug6.
"""
import torch
import torch.nn.functional as F

from ... import ops
from ...reference.boxes import check_scalar
from ..tinaface.loss import check_targets

OVERLAP = 0.35        # train.py overlap_thresh
MIN_BEST_IOU = 0.2    # match(): truths whose best prior IoU is lower are skipped
NEG_POS = 7           # train.py neg_pos
VARIANCES = (0.1, 0.2)
LOC_WEIGHT = 2.0      # data/config.py loc_weight


def point_form(priors):
    """(A, 4) cx, cy, w, h -> (A, 4) x1, y1, x2, y2."""
    return torch.cat((priors[:, :2] - priors[:, 2:] / 2, priors[:, :2] + priors[:, 2:] / 2), 1)


def encode(matched, priors, variances=VARIANCES):
    """Box targets: (P, 4) x1 y1 x2 y2 truths, (P, 4) cx cy w h priors -> (P, 4) offsets."""
    cxcy = ((matched[:, :2] + matched[:, 2:]) / 2 - priors[:, :2]) / (variances[0] * priors[:, 2:])
    wh = torch.log((matched[:, 2:] - matched[:, :2]) / priors[:, 2:]) / variances[1]
    return torch.cat((cxcy, wh), 1)


def encode_landm(matched, priors, variances=VARIANCES):
    """Landmark targets: (P, 10) x y pairs, (P, 4) priors -> (P, 10) offsets."""
    pts = matched.reshape(-1, 5, 2)
    return ((pts - priors[:, None, :2]) / (variances[0] * priors[:, None, 2:])).reshape(-1, 10)


def match(priors_pf, truths, overlap=OVERLAP):
    """biubug6 ``match`` on one image (see the module docstring).

    priors_pf: (A, 4) priors in point form; truths: (G, 4) x1 y1 x2 y2, same
    dtype and coordinates. Returns int64 (A,): the truth index of each positive
    prior, ``ops.NEGATIVE`` for background."""
    if truths.shape[0] == 0:
        return torch.full((priors_pf.shape[0],), ops.NEGATIVE, dtype=torch.int64, device=priors_pf.device)
    positive, _ = ops.assign_max_iou(priors_pf, truths, overlap, overlap, MIN_BEST_IOU, gt_max_assign_all=False,
                                     match_low_quality=True)
    # min_pos 0 forces every truth onto its best prior, like biubug6's index loop
    index, _ = ops.assign_max_iou(priors_pf, truths, overlap, overlap, 0.0, gt_max_assign_all=False,
                                  match_low_quality=True)
    # a prior positive in the first call is positive in the second (a superset)
    return torch.where(positive >= 0, index, positive)


def _check_output(t, name, shape, dtype=None):
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if not t.is_floating_point() or t.is_complex():
        raise TypeError(f"{name} must be a real floating-point tensor, got {t.dtype}")
    if dtype is not None and t.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} like loc, got {t.dtype}")
    if t.dim() != len(shape) or any(s is not None and t.shape[i] != s for i, s in enumerate(shape)):
        want = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {tuple(t.shape)}")
    return t


def _check_landmarks(targets, boxes, dtype, device):
    """Per image (N, 10) landmarks in pixels (-1 where absent), or None when the
    target has no 'landmarks' entry."""
    out = []
    for i, (t, b) in enumerate(zip(targets, boxes)):
        lm = t.get("landmarks")
        if lm is None:
            out.append(None)
            continue
        lm = torch.as_tensor(lm)
        if lm.numel() == 0:
            lm = lm.reshape(0, 10)
        if not (lm.is_floating_point() or lm.dtype in (torch.int32, torch.int64)) or lm.is_complex():
            raise TypeError(f"targets[{i}]['landmarks'] must be numeric, got {lm.dtype}")
        if lm.shape != (b.shape[0], 10):
            raise ValueError(f"targets[{i}]['landmarks'] must have shape ({b.shape[0]}, 10), got {tuple(lm.shape)}")
        lm = lm.to(device=device, dtype=dtype)
        if not bool(torch.isfinite(lm).all()):
            raise ValueError(f"targets[{i}]['landmarks'] contains NaN or infinite values")
        out.append(lm)
    return out


def multibox_loss(loc, conf, priors, targets, image_size, landm=None, *, overlap=OVERLAP, neg_pos=NEG_POS,
                  variances=VARIANCES, loc_weight=LOC_WEIGHT):
    """biubug6's MultiBoxLoss (module docstring) from RetinaFace's raw outputs.

    Args:
        loc: (B, A, 4) box offsets; conf: (B, A, 2) class logits (background,
            face); landm: (B, A, 10) landmark offsets or None.
        priors: (A, 4) cx, cy, w, h normalised by the input width / height.
        targets: list of B dicts {'boxes': (N, 4) x1 y1 x2 y2 pixels,
            'ignore': optional (N,) bool, 'landmarks': optional (N, 10) pixels
            (five x, y pairs), -1 where a face has none}.
        image_size: (H, W) of the network input, in pixels.
        overlap, neg_pos, variances, loc_weight: biubug6's settings.

    Returns:
        (total, parts): scalar tensor, {'loc', 'conf', 'landm'} scalar tensors
        (loc weighted by loc_weight) summing to total. Differentiable in loc,
        conf and landm.
    """
    _check_output(loc, "loc", (None, None, 4))
    B, A = loc.shape[:2]
    _check_output(conf, "conf", (B, A, 2), loc.dtype)
    _check_output(priors, "priors", (A, 4), loc.dtype)
    if landm is not None:
        _check_output(landm, "landm", (B, A, 10), loc.dtype)
    for name, t in (("conf", conf), ("priors", priors), ("landm", landm)):
        if t is not None and t.device != loc.device:
            raise ValueError(f"{name} must be on {loc.device} like loc, got {t.device}")
    if not bool(torch.isfinite(priors).all()) or not bool((priors[:, 2:] > 0).all()):
        raise ValueError("priors must be finite with positive width and height")
    if not isinstance(image_size, (tuple, list, torch.Size)) or len(image_size) != 2:
        raise TypeError(f"image_size must be a (H, W) pair, got {image_size!r}")
    H, W = (check_scalar(s, f"image_size[{i}]") for i, s in enumerate(image_size))
    if H <= 0 or W <= 0:
        raise ValueError(f"image_size must be positive, got {tuple(image_size)}")
    overlap = check_scalar(overlap, "overlap", 0.0, 1.0)
    neg_pos = check_scalar(neg_pos, "neg_pos", 0.0)
    loc_weight = check_scalar(loc_weight, "loc_weight")
    if not isinstance(variances, (tuple, list)) or len(variances) != 2:
        raise TypeError(f"variances must be a pair of numbers, got {variances!r}")
    variances = tuple(check_scalar(v, f"variances[{i}]") for i, v in enumerate(variances))
    if min(variances) <= 0:
        raise ValueError(f"variances must be positive, got {variances}")

    dt, dev = loc.dtype, loc.device
    tg = check_targets(targets, B, dtype=dt, device=dev)
    landmarks = _check_landmarks(targets, [b for b, _ in tg], dt, dev)
    scale = torch.tensor([W, H], dtype=dt, device=dev)
    priors = priors.detach()
    priors_pf = point_form(priors)

    pos = torch.zeros(B, A, dtype=torch.bool, device=dev)
    loc_b, loc_a, loc_t = [], [], []
    lm_b, lm_a, lm_t = [], [], []
    for b, (boxes, ignore) in enumerate(tg):
        keep = ~ignore & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        truths = boxes[keep] / scale.repeat(2)
        assigned = match(priors_pf, truths, overlap)
        idx = torch.nonzero(assigned >= 0).flatten()
        gt = assigned[idx]
        pos[b, idx] = True
        loc_b.append(torch.full_like(idx, b))
        loc_a.append(idx)
        loc_t.append(encode(truths[gt], priors[idx], variances))
        if landmarks[b] is not None:
            lms = landmarks[b][keep]
            has = lms[gt, 0] >= 0  # biubug6's label: 1 with landmarks, -1 without
            li, lg = idx[has], gt[has]
            lm_b.append(torch.full_like(li, b))
            lm_a.append(li)
            lm_t.append(encode_landm(lms[lg] / scale.repeat(5), priors[li], variances))

    num_pos = pos.sum(1, keepdim=True)
    n = max(int(num_pos.sum()), 1)
    target = pos.long()
    with torch.no_grad():
        # hard-negative mining: per-prior cross-entropy, positives out of the ranking
        mine = torch.logsumexp(conf, 2) - conf.gather(2, target[..., None])[..., 0]
        mine[pos] = 0
        _, order = mine.sort(1, descending=True)
        _, rank = order.sort(1)
        num_neg = torch.clamp(neg_pos * num_pos, max=A - 1)
        selected = pos | (rank < num_neg)

    # zero terms keep every output in the graph when a term has nothing to sum
    pb, pa = torch.cat(loc_b), torch.cat(loc_a)
    if pa.numel() > 0:
        loss_l = F.smooth_l1_loss(loc[pb, pa], torch.cat(loc_t), reduction="sum")
    else:
        loss_l = loc.sum() * 0.0
    if bool(selected.any()):
        loss_c = F.cross_entropy(conf[selected], target[selected], reduction="sum")
    else:
        loss_c = conf.sum() * 0.0
    if landm is None:
        loss_landm = loc.new_zeros(())
    elif lm_a and sum(t.numel() for t in lm_a) > 0:
        la = torch.cat(lm_a)
        loss_landm = F.smooth_l1_loss(landm[torch.cat(lm_b), la], torch.cat(lm_t), reduction="sum") / la.numel()
    else:
        loss_landm = landm.sum() * 0.0
    parts = {"loc": loss_l * (loc_weight / n), "conf": loss_c / n, "landm": loss_landm}
    total = parts["loc"] + parts["conf"] + parts["landm"]
    return total, parts
