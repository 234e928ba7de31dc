"""Max-IoU anchor assignment: C core against the twin, and the twin against a
literal transcription of mmdet's MaxIoUAssigner.assign_wrt_overlaps."""
import math

import pytest
import torch

import tasklle.ops as ops
import tasklle.reference as ref
import tasklle.reference.assign as ref_assign
from boxes_testutil import rand_boxes, threads, torch_one_thread  # noqa: F401 (autouse fixture)

NEG, IGN = ops.NEGATIVE, ops.IGNORED
PATHS = [ops, ref]


def _mmdet_assign(anchors, gts, pos, neg, min_pos, gt_max_assign_all, match_low_quality, gt_ignore):
    """mmdet assign_wrt_overlaps on the full (G, A) matrix, mapped to our encoding."""
    keep = torch.arange(gts.shape[0]) if gt_ignore is None else torch.nonzero(~gt_ignore).flatten()
    overlaps = ref.box_iou(gts[keep], anchors)
    num_gts, num_bboxes = overlaps.shape
    assigned = torch.full((num_bboxes,), -1, dtype=torch.long)
    if num_gts == 0 or num_bboxes == 0:
        if num_gts == 0:
            assigned[:] = 0
        max_overlaps = overlaps.new_zeros((num_bboxes,))
    else:
        max_overlaps, argmax_overlaps = overlaps.max(dim=0)
        gt_max_overlaps, gt_argmax_overlaps = overlaps.max(dim=1)
        assigned[(max_overlaps >= 0) & (max_overlaps < neg)] = 0
        pos_inds = max_overlaps >= pos
        assigned[pos_inds] = argmax_overlaps[pos_inds] + 1
        if match_low_quality:
            for i in range(num_gts):
                if gt_max_overlaps[i] >= min_pos:
                    if gt_max_assign_all:
                        assigned[overlaps[i, :] == gt_max_overlaps[i]] = i + 1
                    else:
                        assigned[gt_argmax_overlaps[i]] = i + 1
    out = torch.full_like(assigned, IGN)
    out[assigned == 0] = NEG
    out[assigned > 0] = keep[assigned[assigned > 0] - 1]
    return out, max_overlaps


def tinaface_anchors(height, width, strides=(4, 8, 16, 32, 64, 128), dtype=torch.float32):
    """TinaFace anchors (REFERENCE §4): base size = stride, 3 scales, ratio h/w 1.3,
    centres (x * stride, y * stride), order (y * W + x) * 3 + scale, levels concatenated."""
    scales = torch.tensor([2 ** (4 / 3) * 2 ** (i / 3) for i in range(3)], dtype=torch.float64)
    out = []
    for s in strides:
        fh, fw = math.ceil(height / s), math.ceil(width / s)
        ws = s * scales / math.sqrt(1.3)
        hs = s * scales * math.sqrt(1.3)
        base = torch.stack([-ws / 2, -hs / 2, ws / 2, hs / 2], 1)  # (3, 4)
        ys, xs = torch.meshgrid(torch.arange(fh, dtype=torch.float64) * s, torch.arange(fw, dtype=torch.float64) * s,
                                indexing="ij")
        shift = torch.stack([xs, ys, xs, ys], -1).reshape(-1, 1, 4)
        out.append((shift + base).reshape(-1, 4))
    return torch.cat(out).to(dtype)


def _cases():
    g = torch.Generator().manual_seed(1)
    yield "random", rand_boxes(500, gen=g), rand_boxes(30, gen=g), None
    # integer grid: many exact IoU ties between anchors and between gts
    a = rand_boxes(400, size=60.0, grid=4.0, gen=g)
    gts = rand_boxes(25, size=60.0, grid=4.0, gen=g)
    gts[3] = a[10]
    gts[7] = gts[3]                                   # duplicate gts: the later one wins low-quality ties
    a[200:210] = a[10]                                # duplicate anchors: all claimed (gt_max_assign_all)
    yield "ties", a, gts, torch.rand(25, generator=g) < 0.2
    a = rand_boxes(300, gen=g)
    a[:20, 2:] = a[:20, :2]                           # zero-area anchors
    gts = rand_boxes(12, gen=g)
    gts[0, 2] = gts[0, 0]                             # zero-width gt
    yield "degenerate", a, gts, None
    yield "anchors", tinaface_anchors(96, 80), rand_boxes(15, size=90.0, gen=g) + 3.0, None
    gts = rand_boxes(6, gen=g)
    yield "all ignored", rand_boxes(50, gen=g), gts, torch.ones(6, dtype=torch.bool)
    yield "no gts", rand_boxes(50, gen=g), torch.zeros(0, 4), None
    yield "no anchors", torch.zeros(0, 4), rand_boxes(5, gen=g), None
    yield "far gts", rand_boxes(40, gen=g), rand_boxes(4, gen=g) + 1000.0, None


CASES = list(_cases())
SETTINGS = [  # pos, neg, min_pos, gt_max_assign_all, match_low_quality
    (0.35, 0.35, 0.35, True, True),                     # TinaFace
    (0.5, 0.4, 0.0, True, True),                         # IGNORED band, every gt eligible
    (0.5, 0.3, 0.2, False, True),                        # only the first best anchor
    (0.35, 0.35, 0.35, True, False),                     # no low-quality matching
]


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("name, anchors, gts, ignore", CASES, ids=[c[0] for c in CASES])
def test_twin_matches_mmdet(name, anchors, gts, ignore, setting):
    got = ref.assign_max_iou(anchors, gts, *setting, gt_ignore=ignore)
    want = _mmdet_assign(anchors, gts, *setting, ignore)
    assert torch.equal(got[0], want[0])
    assert torch.equal(got[1], want[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("name, anchors, gts, ignore", CASES, ids=[c[0] for c in CASES])
def test_c_matches_twin(name, anchors, gts, ignore, setting, dtype):
    anchors, gts = anchors.to(dtype), gts.to(dtype)
    got = ops.assign_max_iou(anchors, gts, *setting, gt_ignore=ignore)
    want = ref.assign_max_iou(anchors, gts, *setting, gt_ignore=ignore)
    assert got[0].dtype == torch.int64 and got[1].dtype == dtype
    assert torch.equal(got[0], want[0])
    assert torch.equal(got[1], want[1])


def test_semantics_by_hand():
    anchors = torch.tensor([[0.0, 0.0, 10.0, 10.0],     # IoU 1 with gt 0
                            [0.0, 0.0, 10.0, 5.0],      # IoU 0.5 with gt 0
                            [100.0, 100.0, 110.0, 110.0],
                            [0.0, 0.0, 10.0, 10.0],     # duplicate of anchor 0
                            [50.0, 50.0, 60.0, 60.0]])  # IoU 0.25 with gt 2 (gt 2's best)
    gts = torch.tensor([[0.0, 0.0, 10.0, 10.0],
                        [0.0, 0.0, 10.0, 10.0],          # ignored duplicate
                        [50.0, 50.0, 70.0, 70.0]])
    ignore = torch.tensor([False, True, False])
    for path in PATHS:
        assigned, max_iou = path.assign_max_iou(anchors, gts, gt_ignore=ignore)
        assert assigned.tolist() == [0, 0, NEG, 0, NEG]  # gt 2's best 0.25 < min_pos 0.35
        assert torch.equal(max_iou, torch.tensor([1.0, 0.5, 0.0, 1.0, 0.25]))  # exact in binary
        assigned, _ = path.assign_max_iou(anchors, gts, min_pos_thr=0.2, gt_ignore=ignore)
        assert assigned.tolist() == [0, 0, NEG, 0, 2]    # low-quality match
        assigned, _ = path.assign_max_iou(anchors, gts, min_pos_thr=0.2)
        assert assigned.tolist() == [1, 0, NEG, 1, 2]    # without ignore: the later duplicate gt claims ties


def test_twin_chunking_is_invisible(monkeypatch):
    anchors, gts, ignore = CASES[1][1:]
    full = ref.assign_max_iou(anchors, gts, gt_ignore=ignore)
    monkeypatch.setattr(ref_assign, "_CHUNK_ELEMS", 7 * 25)  # 7 anchors per chunk, ragged end
    chunked = ref.assign_max_iou(anchors, gts, gt_ignore=ignore)
    assert torch.equal(full[0], chunked[0]) and torch.equal(full[1], chunked[1])
    args = (0.5, 0.3, 0.2, False, True)
    assert torch.equal(ref.assign_max_iou(anchors, gts, *args)[0], _mmdet_assign(anchors, gts, *args, None)[0])


def test_thread_invariance():
    anchors = tinaface_anchors(160, 192)
    gts = rand_boxes(60, size=170.0, grid=2.0)
    res = []
    for n in (1, 2, 3):
        with threads(n):
            res.append(ops.assign_max_iou(anchors, gts))
    for r in res[1:]:
        assert torch.equal(r[0], res[0][0]) and torch.equal(r[1], res[0][1])
    assert int((res[0][0] >= 0).sum()) > 0


@pytest.mark.parametrize("path", PATHS)
def test_bad_arguments(path):
    a, g = rand_boxes(6), rand_boxes(3)
    with pytest.raises(ValueError, match="anchors must have shape"):
        path.assign_max_iou(a[:, :3], g)
    with pytest.raises(TypeError, match="gts must have dtype"):
        path.assign_max_iou(a, g.double())
    with pytest.raises(TypeError, match="gts must be a floating"):
        path.assign_max_iou(a, g.long())
    bad = g.clone()
    bad[2, 3] = float("nan")
    with pytest.raises(ValueError, match="gts must contain only finite"):
        path.assign_max_iou(a, bad)
    with pytest.raises(ValueError, match="gt_ignore must have shape"):
        path.assign_max_iou(a, g, gt_ignore=torch.zeros(2, dtype=torch.bool))
    with pytest.raises(TypeError, match="gt_ignore must be a bool"):
        path.assign_max_iou(a, g, gt_ignore=torch.zeros(3))
    with pytest.raises(ValueError, match="pos_thr must be finite"):
        path.assign_max_iou(a, g, pos_thr=float("nan"))
