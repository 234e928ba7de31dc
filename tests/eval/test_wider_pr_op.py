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


# ---------------------------------------------------------------------------- the per-image mode

@pytest.mark.parametrize("iou, thresh_num", [(0.5, 1000), (0.3, 17)])
def test_per_image_c_matches_the_twin_and_sums_to_the_totals(iou, thresh_num):
    gt = synthetic_gt(n_images=40, n_events=3, seed=5)
    args = _flat(gt, generate_predictions(gt, n_fp=10, seed=6))
    c = ops.wider_pr_counts(*args, iou_thresh=iou, thresh_num=thresh_num, impl="c", per_image=True)
    r = ops.wider_pr_counts(*args, iou_thresh=iou, thresh_num=thresh_num, impl="reference", per_image=True)
    assert c.shape == (40, 3, thresh_num, 2) and c.dtype == np.int64
    np.testing.assert_array_equal(c, r)
    total = ops.wider_pr_counts(*args, iou_thresh=iou, thresh_num=thresh_num, impl="c")
    np.testing.assert_array_equal(c.sum(axis=0), total)
    # images without gt or without predictions have zero rows; the others are not all zero
    pred_off, gt_off = args[1], args[3]
    empty = (np.diff(pred_off) == 0) | (np.diff(gt_off) == 0)
    assert empty.any() and not c[empty].any()
    assert c[~empty].reshape((~empty).sum(), -1).any(axis=1).mean() > 0.5


def test_per_image_does_not_depend_on_the_thread_count():
    import tasklle

    gt = synthetic_gt(n_images=90, n_events=3, seed=7)
    args = _flat(gt, generate_predictions(gt, n_fp=20, seed=8))
    before = tasklle.get_num_threads()
    try:
        tasklle.set_num_threads(1)
        one = ops.wider_pr_counts(*args, impl="c", per_image=True)
        tasklle.set_num_threads(3)
        three = ops.wider_pr_counts(*args, impl="c", per_image=True)
    finally:
        tasklle.set_num_threads(before)
    np.testing.assert_array_equal(one, three)


@pytest.mark.parametrize("impl", ["c", "reference"])
def test_a_chunk_with_the_whole_sets_score_range_gives_its_rows(impl):
    gt = synthetic_gt(n_images=30, n_events=2, seed=9)
    pred, poff, boxes, goff, counted = _flat(gt, generate_predictions(gt, n_fp=8, seed=10))
    rows = ops.wider_pr_counts(pred, poff, boxes, goff, counted, thresh_num=50, impl=impl, per_image=True)
    rng = (float(pred[:, 4].min()), float(pred[:, 4].max()))
    i0, i1 = 7, 19
    chunk = ops.wider_pr_counts(pred[poff[i0]:poff[i1]], poff[i0:i1 + 1] - poff[i0], boxes[goff[i0]:goff[i1]],
                                goff[i0:i1 + 1] - goff[i0], counted[:, goff[i0]:goff[i1]], thresh_num=50,
                                impl=impl, per_image=True, score_range=rng)
    np.testing.assert_array_equal(chunk, rows[i0:i1])
    # without the whole set's range the chunk normalises over its own scores (a different grid)
    own = ops.wider_pr_counts(pred[poff[i0]:poff[i1]], poff[i0:i1 + 1] - poff[i0], boxes[goff[i0]:goff[i1]],
                              goff[i0:i1 + 1] - goff[i0], counted[:, goff[i0]:goff[i1]], thresh_num=50,
                              impl=impl, per_image=True)
    assert not np.array_equal(own, rows[i0:i1])


BAD_PER_IMAGE = [
    ({"per_image": 1}, TypeError, "per_image must be a bool"),
    ({"score_range": 0.5}, TypeError, "score_range must be None or a"),
    ({"score_range": (0.0, "1")}, TypeError, "score_range must hold two real numbers"),
    ({"score_range": (1.0, 0.0)}, ValueError, "score_range must be finite with min <= max"),
    ({"score_range": (0.0, np.inf)}, ValueError, "score_range must be finite"),
    ({"score_range": (0.0, 1.0, 2.0)}, TypeError, "score_range"),
]


@pytest.mark.parametrize("impl", ["c", "reference"])
@pytest.mark.parametrize("change, exc, match", BAD_PER_IMAGE + BAD[:4])
def test_bad_per_image_arguments_raise_the_same_on_both_paths(change, exc, match, impl):
    kw = _ok()
    kw.update(change)
    kw.setdefault("per_image", True)
    with pytest.raises(exc, match=match):
        ops.wider_pr_counts(**kw, impl=impl)


def test_per_image_binding_checks_its_output():
    from tasklle import _C

    kw = _ok()
    args = (kw["pred"], kw["pred_offsets"], kw["gt"], kw["gt_offsets"], kw["counted"].view(np.uint8), 0.1, 0.9, 0.5)
    out = np.zeros((1, 1, 10, 2), np.int64)
    _C.wider_eval_per_image(out, *args)
    np.testing.assert_array_equal(out[0], ops.wider_pr_counts(**kw, thresh_num=10))
    for bad, match in [(np.zeros((2, 1, 10, 2), np.int64), "counts"), (np.zeros((1, 2, 10, 2), np.int64), "counts"),
                       (np.zeros((1, 1, 10, 3), np.int64), "counts"), (np.zeros((1, 1, 0, 2), np.int64), "thresholds"),
                       (np.zeros((1, 10, 2), np.int64), "counts")]:
        with pytest.raises(ValueError, match=match):
            _C.wider_eval_per_image(bad, *args)
    with pytest.raises(TypeError):
        _C.wider_eval_per_image(np.zeros((1, 1, 10, 2), np.float64), *args)
