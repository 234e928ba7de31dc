"""The WIDER PR accumulation as an op (tasklle.ops.wider_pr_counts): C path vs
its literal twin, the same argument errors on both paths, and evaluate's AP
formula vs the twin's VOCap transcription."""
import numpy as np
import pytest

import tasklle.ops as ops
from tasklle.eval import wider
from tasklle.reference import wider_eval as ref
from wider_eval_testutil import generate_predictions, synthetic_gt


def _flat(gt, preds):
    keys = gt.keys()
    arrays = [np.asarray(preds[k], dtype=float).reshape(-1, 5) for k in keys]
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int64)
    counted = np.stack([gt.counted[s] for s in wider.SETTINGS])
    return np.concatenate(arrays), offsets, np.asarray(gt.boxes), np.asarray(gt.offsets), counted


@pytest.mark.parametrize("iou, thresh_num", [(0.5, 1000), (0.3, 17), (1.0, 1)])
def test_c_matches_the_twin(iou, thresh_num):
    gt = synthetic_gt(n_images=60, n_events=4, seed=3)
    args = _flat(gt, generate_predictions(gt, n_fp=10, seed=4))
    c = ops.wider_pr_counts(*args, iou_thresh=iou, thresh_num=thresh_num, impl="c")
    r = ops.wider_pr_counts(*args, iou_thresh=iou, thresh_num=thresh_num, impl="reference")
    assert c.shape == (3, thresh_num, 2) and c.dtype == np.int64
    np.testing.assert_array_equal(c, r)
    np.testing.assert_array_equal(r, ref.wider_pr_counts(*args, iou_thresh=iou, thresh_num=thresh_num))
    assert c[:, -1, 1].max() > 0  # something is recalled at the last threshold


def _ok():
    return dict(pred=np.array([[0, 0, 10, 10, 0.9], [50, 50, 5, 5, 0.1]]), pred_offsets=np.array([0, 2]),
                gt=np.array([[0, 0, 10, 10.0]]), gt_offsets=np.array([0, 1]), counted=np.ones((1, 1), bool))


BAD = [
    ({"pred": [[0, 0, 1, 1, 1.0]]}, TypeError, "pred must be a NumPy array"),
    ({"pred": np.zeros((2, 4))}, ValueError, r"pred must have shape \(n, 5\)"),
    ({"pred": np.ones((2, 5), complex)}, TypeError, "pred must hold real numbers"),
    ({"pred": np.array([[0, 0, 10, np.nan, 0.9], [50, 50, 5, 5, 0.1]])}, ValueError, "pred must be finite"),
    ({"gt": np.array([[0, 0, np.inf, 10.0]])}, ValueError, "gt must be finite"),
    ({"pred_offsets": np.array([0, 1])}, ValueError, "pred_offsets must start at 0"),
    ({"pred_offsets": np.array([0.0, 2.0])}, TypeError, "pred_offsets must hold integers"),
    ({"gt_offsets": np.array([0, 0, 1])}, ValueError, "same length"),
    ({"counted": np.ones((1, 2), bool)}, ValueError, r"counted must have shape \(settings, 1\)"),
    ({"counted": np.full((1, 1), 2)}, ValueError, "0/1"),
    ({"iou_thresh": 0.0}, ValueError, "iou_thresh"),
    ({"iou_thresh": "0.5"}, TypeError, "iou_thresh"),
    ({"thresh_num": 0}, ValueError, "thresh_num"),
    ({"thresh_num": 2.0}, TypeError, "thresh_num"),
]


@pytest.mark.parametrize("impl", ["c", "reference"])
@pytest.mark.parametrize("change, exc, match", BAD)
def test_bad_arguments_raise_the_same_on_both_paths(change, exc, match, impl):
    kw = _ok()
    kw.update(change)
    with pytest.raises(exc, match=match):
        ops.wider_pr_counts(**kw, impl=impl)


def test_hand_case_and_empty():
    kw = _ok()
    out = ops.wider_pr_counts(**kw, thresh_num=10)
    # scores normalise to 1 and 0: the hit enters at t = 1, the miss at t = 10
    assert out[0].tolist() == [[1, 1]] * 9 + [[2, 1]]
    kw.update(pred=np.zeros((0, 5)), pred_offsets=np.array([0, 0]))
    assert not ops.wider_pr_counts(**kw, thresh_num=10).any()


def test_ap_formula_matches_the_literal_vocap():
    rng = np.random.default_rng(0)
    for _ in range(50):
        t = 40
        proposals = np.sort(rng.integers(0, 30, t))
        tp = np.minimum(proposals, np.sort(rng.integers(0, 20, t)))
        n_faces = int(tp.max()) + int(rng.integers(0, 5))
        with np.errstate(divide="ignore", invalid="ignore"):
            precision, recall = tp / proposals, tp / n_faces
        lit_p, lit_r = ref.wider_dataset_pr(np.stack([proposals, tp], 1), n_faces)
        np.testing.assert_array_equal(precision, lit_p)
        np.testing.assert_array_equal(recall, lit_r)
        assert wider._voc_ap(recall, precision) == pytest.approx(ref.wider_voc_ap(lit_r, lit_p), abs=1e-12)
