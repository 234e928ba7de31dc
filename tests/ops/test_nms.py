"""Greedy NMS: C core against the twin, ties, thresholds, edge cases."""
import pytest
import torch

import tasklle.ops as ops
import tasklle.reference as ref
from boxes_testutil import rand_boxes, threads, torch_one_thread  # noqa: F401 (autouse fixture)

PATHS = [ops, ref]


def _brute_nms(boxes, scores, thr):
    """Textbook greedy NMS on the full IoU matrix (an independent statement of the rule)."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    iou = ref.box_iou(boxes, boxes)
    keep = []
    for i in order:
        if all(not bool(iou[k, i] > torch.tensor(thr, dtype=boxes.dtype)) for k in keep):
            keep.append(i)
    return torch.tensor(keep, dtype=torch.int64)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n, grid, thr", [(300, None, 0.3), (257, 10.0, 0.5), (400, 5.0, 0.0), (50, 5.0, 0.99)])
def test_nms_matches_twin(dtype, n, grid, thr):
    boxes = rand_boxes(n, dtype, size=200.0, grid=grid)
    boxes[n // 2: n // 2 + 10] = boxes[:10]                     # duplicate boxes
    scores = (torch.rand(n) * 10).round() / 10                  # many equal scores
    keep = ops.nms(boxes, scores, thr)
    assert keep.dtype == torch.int64
    assert torch.equal(keep, ref.nms(boxes, scores, thr))
    if n <= 300:
        assert torch.equal(keep, _brute_nms(boxes, scores, thr))
    # kept in descending score order
    assert bool((scores[keep][1:] <= scores[keep][:-1]).all())


@pytest.mark.parametrize("path", PATHS)
def test_nms_equal_scores_are_stable(path):
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 4)
    assert path.nms(boxes, torch.ones(4), 0.5).tolist() == [0]
    scores = torch.tensor([0.5, 0.9, 0.9, 0.1])
    assert path.nms(boxes, scores, 0.5).tolist() == [1]


@pytest.mark.parametrize("path", PATHS)
def test_nms_threshold_is_strict(path):
    # IoU exactly 0.5 (overlap 1, union 2, no +1)
    boxes = torch.tensor([[0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    scores = torch.tensor([0.9, 0.8])
    assert path.nms(boxes, scores, 0.5).tolist() == [0, 1]
    assert path.nms(boxes, scores, 0.49).tolist() == [0]


@pytest.mark.parametrize("path", PATHS)
def test_nms_edge_cases(path):
    assert path.nms(torch.zeros(0, 4), torch.zeros(0), 0.5).shape == (0,)
    assert path.nms(torch.tensor([[1.0, 1.0, 3.0, 3.0]]), torch.tensor([0.3]), 0.5).tolist() == [0]
    # zero-area boxes have IoU 0 with everything: never suppressed, never suppress
    boxes = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 4.0, 4.0]])
    assert path.nms(boxes, torch.tensor([0.1, 0.2, 0.3]), 0.1).tolist() == [2, 1, 0]
    # half-precision scores and float64 boxes are accepted
    b = rand_boxes(40, torch.float64)
    s = torch.rand(40).half()
    assert torch.equal(path.nms(b, s, 0.4), ref.nms(b, s.double(), 0.4))


def test_nms_thread_invariance():
    boxes, scores = rand_boxes(2000, size=300.0), torch.rand(2000)
    with threads(1):
        one = ops.nms(boxes, scores, 0.45)
    with threads(2):
        two = ops.nms(boxes, scores, 0.45)
    assert torch.equal(one, two)


@pytest.mark.parametrize("path", PATHS)
def test_nms_bad_arguments(path):
    b, s = rand_boxes(5), torch.rand(5)
    with pytest.raises(ValueError, match="scores must have shape"):
        path.nms(b, s[:4], 0.5)
    with pytest.raises(ValueError, match="boxes must have shape"):
        path.nms(b[:, :2], s, 0.5)
    with pytest.raises(TypeError, match="scores must be a floating"):
        path.nms(b, torch.arange(5), 0.5)
    s2 = s.clone()
    s2[3] = float("nan")
    with pytest.raises(ValueError, match="scores must contain only finite"):
        path.nms(b, s2, 0.5)
    b2 = b.clone()
    b2[0, 1] = float("nan")
    with pytest.raises(ValueError, match="boxes must contain only finite"):
        path.nms(b2, s, 0.5)
    with pytest.raises(ValueError, match="iou_threshold must be finite"):
        path.nms(b, s, float("nan"))
    with pytest.raises(TypeError, match="iou_threshold must be a real number"):
        path.nms(b, s, "0.5")
