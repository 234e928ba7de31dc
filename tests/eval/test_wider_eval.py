"""WIDER FACE evaluation: C path vs the literal reference twin on the real val
ground truth, perfect predictions, a hand-computed case, the prediction file
format, missing and malformed files, the ground-truth reader, plots and CLI."""
import json
import math
import warnings

import numpy as np
import pytest

import tasklle
from tasklle import _C
from tasklle.data import wider_format
from tasklle.eval import wider
from wider_eval_testutil import TINY_EVENTS, generate_predictions, synthetic_gt, write_tiny_gt

SUBSET = ["19--Couple", "21--Festival", "34--Baseball", "39--Ice_Skating"]  # 184 images, both gt quirks


@pytest.fixture
def real_gt(wider_gt_dir):
    return wider_format.load_ground_truth(wider_gt_dir)  # read once per process (cached)


@pytest.fixture
def tiny_gt(tmp_path):
    return write_tiny_gt(tmp_path / "gt")


def assert_same_result(a, b, settings=wider.SETTINGS, tol=1e-9):
    for s in settings:
        assert abs(a[s] - b[s]) <= tol, (s, a[s], b[s])
        ca, cb = a["curves"][s], b["curves"][s]
        assert np.array_equal(ca["proposals"], cb["proposals"])
        assert np.array_equal(ca["true_positives"], cb["true_positives"])
        assert ca["n_faces"] == cb["n_faces"]
        np.testing.assert_allclose(ca["precision"], cb["precision"], rtol=0, atol=tol, equal_nan=True)
        np.testing.assert_allclose(ca["recall"], cb["recall"], rtol=0, atol=tol, equal_nan=True)


# ---- synthetic ground truth (runs without ../shared) ---------------------------

def test_c_matches_reference_and_is_thread_invariant_on_synthetic_gt():
    gt = synthetic_gt(n_images=150, n_events=5, seed=1)
    assert (np.diff(gt.offsets) == 0).any()  # images without boxes are skipped, not counted
    preds = generate_predictions(gt, n_fp=20, seed=7)
    ref = wider.evaluate(preds, gt, impl="reference")
    old = tasklle.get_num_threads()
    try:
        for threads in (1, 2, 3):
            tasklle.set_num_threads(threads, torch_too=False)
            assert_same_result(wider.evaluate(preds, gt), ref)
    finally:
        tasklle.set_num_threads(old, torch_too=False)
    assert 0.1 < ref["hard"] < 0.95


# ---- the real val ground truth -----------------------------------------------

def test_real_gt_is_read(real_gt, wider_gt_dir):
    assert real_gt.n_images == 3226 and len(real_gt.events) == 61 and len(real_gt.boxes) == 39708
    assert {s: real_gt.n_faces(s) for s in wider.SETTINGS} == {"easy": 7211, "medium": 13319, "hard": 31958}
    assert real_gt.keys()[0] == ("0--Parade", "0_Parade_marchingband_1_465")
    # the counted faces grow from easy to hard
    assert not (real_gt.counted["easy"] & ~real_gt.counted["hard"]).any()
    assert wider_format.load_ground_truth(wider_gt_dir) is real_gt  # cached


def test_c_matches_reference_on_real_gt_subset(real_gt):
    sub = real_gt.subset(SUBSET)
    assert sub.n_images == 184
    preds = generate_predictions(sub, n_fp=30, seed=1)
    c = wider.evaluate(preds, sub)
    r = wider.evaluate(preds, sub, impl="reference")
    assert_same_result(c, r)
    for s in wider.SETTINGS:
        assert 0.2 < c[s] < 0.95  # a real mix of hits, misses and false positives


@pytest.mark.slow
def test_c_matches_reference_on_full_real_gt(real_gt):
    preds = generate_predictions(real_gt, n_fp=40, seed=2)
    assert_same_result(wider.evaluate(preds, real_gt), wider.evaluate(preds, real_gt, impl="reference"))


def test_c_matches_reference_other_iou_thresholds(real_gt):
    sub = real_gt.subset(["34--Baseball", "39--Ice_Skating"])
    preds = generate_predictions(sub, n_fp=10, seed=3)
    for iou in (0.3, 0.7):
        assert_same_result(wider.evaluate(preds, sub, iou_thresh=iou),
                           wider.evaluate(preds, sub, iou_thresh=iou, impl="reference"))


def test_full_real_gt_thread_count_invariant(real_gt):
    preds = generate_predictions(real_gt, n_fp=20, seed=4)
    old = tasklle.get_num_threads()
    try:
        tasklle.set_num_threads(1, torch_too=False)
        one = wider.evaluate(preds, real_gt)
        tasklle.set_num_threads(2, torch_too=False)
        two = wider.evaluate(preds, real_gt)
    finally:
        tasklle.set_num_threads(old, torch_too=False)
    assert_same_result(one, two, tol=0)


def test_perfect_predictions_give_ap_one(real_gt):
    rng = np.random.default_rng(0)
    for s in wider.SETTINGS:
        preds, quirks = {}, 0
        for i, key in enumerate(real_gt.keys()):
            boxes = real_gt.image_boxes(i)
            keep = real_gt.keep_index(s, i) - 1
            scores = rng.uniform(0.5, 1.0, len(keep))
            for n, j in enumerate(keep):
                # Two faces of hard cannot be recalled by anyone: a box with w = -2 (IoU 0 with
                # everything under the +1 convention) and the second of two identical boxes (a
                # prediction on it picks the first, already matched). Their predictions get the
                # lowest score so that they only enter at the last threshold.
                b = boxes[j]
                dup_before = (boxes[:j] == b).all(axis=1).any()
                if b[2] + 1 <= 0 or b[3] + 1 <= 0 or dup_before:
                    scores[n] = 0.0
                    quirks += 1
            preds[key] = np.concatenate([boxes[keep], scores[:, None]], axis=1)
        res = wider.evaluate(preds, real_gt, settings=(s,))
        n = real_gt.n_faces(s)
        assert quirks == (2 if s == "hard" else 0)
        # precision 1 up to recall (n - quirks) / n, reached before the quirk predictions enter
        assert res[s] == pytest.approx((n - quirks) / n, abs=1e-12)
        if not quirks:
            assert res[s] == pytest.approx(1.0, abs=1e-12)


def test_scale_of_scores_does_not_matter(real_gt):
    sub = real_gt.subset(["34--Baseball"])
    preds = generate_predictions(sub, seed=5)
    scaled = {k: v * np.array([1, 1, 1, 1, 64.0]) for k, v in preds.items()}  # exact in binary
    assert_same_result(wider.evaluate(preds, sub), wider.evaluate(scaled, sub), tol=0)


# ---- an independent hand-computed case --------------------------------------

def tiny_predictions():
    return {
        # rows deliberately not sorted by score
        ("0--A", "a1"): np.array([[300, 300, 10, 10, 0.5055],   # P3: nothing
                                  [10, 10, 20, 20, 1.0],        # P1: face 1 (counted everywhere)
                                  [11, 10, 20, 20, 0.3031],     # P4: face 1 again (IoU 420/462)
                                  [100, 100, 20, 20, 0.7077]]),  # P2: face 2 (ignored in easy)
        ("0--A", "a2"): np.array([[0, 0, 10, 10, 0.8123]]),      # P5: the all-zero row (IoU 1/121)
        ("1--B", "b1"): np.array([[0, 0, 10, 10, 0.0]]),         # P6: face 2 of b1 (hard only)
        ("1--B", "b2"): np.zeros((0, 5)),                        # its face is missed
    }


# (proposals, true positives) after each prediction enters, in score order
# P1 (t >= 1), P5 (t >= 188), P2 (t >= 293), P3 (t >= 495), P4 (t >= 697), P6 (t = 1000)
TINY_STEPS = [1, 188, 293, 495, 697, 1000]
TINY_COUNTS = {
    "easy": [(1, 1), (2, 1), (2, 1), (3, 1), (4, 1), (4, 1)],
    "medium": [(1, 1), (2, 1), (3, 2), (4, 2), (5, 2), (5, 2)],
    "hard": [(1, 1), (2, 1), (3, 2), (4, 2), (5, 2), (6, 3)],
}
TINY_FACES = {"easy": 3, "medium": 4, "hard": 6}
# VOC AP by hand: sum over recall steps of delta-recall x the best precision to the right
TINY_AP = {
    "easy": 1 / 3 * 1.0,                                  # recall 1/3 at precision 1
    "medium": 1 / 4 * 1.0 + 1 / 4 * (2 / 3),              # 5/12
    "hard": 1 / 6 * 1.0 + 1 / 6 * (2 / 3) + 1 / 6 * 0.5,  # 13/36
}


@pytest.mark.parametrize("impl", ["c", "reference"])
def test_hand_computed_tiny_case(tiny_gt, impl):
    res = wider.evaluate(tiny_predictions(), tiny_gt, impl=impl)
    bounds = TINY_STEPS + [1001]
    for s in wider.SETTINGS:
        c = res["curves"][s]
        assert c["n_faces"] == TINY_FACES[s]
        for (lo, hi), (p, tp) in zip(zip(bounds[:-1], bounds[1:]), TINY_COUNTS[s]):
            assert (c["proposals"][lo - 1:hi - 1] == p).all(), (s, lo)
            assert (c["true_positives"][lo - 1:hi - 1] == tp).all(), (s, lo)
            np.testing.assert_allclose(c["precision"][lo - 1:hi - 1], tp / p)
            np.testing.assert_allclose(c["recall"][lo - 1:hi - 1], tp / TINY_FACES[s])
        assert res[s] == pytest.approx(TINY_AP[s], abs=1e-12)
        assert c["thresholds"][0] == pytest.approx(0.999) and c["thresholds"][-1] == 0.0
    assert res["n_images"] == 4 and res["n_missing"] == 0


def test_tiny_gt_written_by_savemat_is_read(tiny_gt):
    gt = wider_format.load_ground_truth(tiny_gt)
    assert gt.events == ("0--A", "1--B")
    assert gt.keys() == [("0--A", "a1"), ("0--A", "a2"), ("1--B", "b1"), ("1--B", "b2")]
    np.testing.assert_array_equal(gt.image_boxes(0), np.asarray(TINY_EVENTS[0][1][0][1], dtype=float))
    np.testing.assert_array_equal(gt.image_boxes(1), np.zeros((1, 4)))
    assert list(gt.keep_index("medium", 0)) == [1, 2] and list(gt.keep_index("hard", 1)) == []
    assert gt.counted["hard"].tolist() == [True, True, True, False, True, True, True]


def test_write_ground_truth_round_trip(tmp_path, tiny_gt):
    gt = wider_format.load_ground_truth(tiny_gt)
    images = [(e, n, gt.image_boxes(i)) for i, (e, n) in enumerate(gt.keys())]
    keep = {s: [gt.keep_index(s, i) for i in range(gt.n_images)] for s in wider.SETTINGS}
    out = wider_format.write_ground_truth(tmp_path / "gt2", images, keep)
    back = wider_format.load_ground_truth(out)
    assert back.keys() == gt.keys()
    np.testing.assert_array_equal(back.boxes, gt.boxes)
    for s in wider.SETTINGS:
        np.testing.assert_array_equal(back.counted[s], gt.counted[s])
    assert_same_result(wider.evaluate(tiny_predictions(), back), wider.evaluate(tiny_predictions(), gt), tol=0)


def test_subset_of_events(tiny_gt):
    gt = wider_format.load_ground_truth(tiny_gt)
    sub = gt.subset(["1--B"])
    assert sub.keys() == [("1--B", "b1"), ("1--B", "b2")]
    np.testing.assert_array_equal(sub.image_boxes(0), gt.image_boxes(2))
    assert sub.n_faces("hard") == 3
    with pytest.raises(ValueError, match="not in the ground truth"):
        gt.subset(["9--Nope"])


def test_all_equal_scores_normalise_to_one(tiny_gt):
    # the official tools divide by zero here; a single perfect box must not give AP 0
    with pytest.warns(wider.MissingPredictionsWarning):
        res = wider.evaluate({("1--B", "b2"): np.array([[5, 5, 40, 40, 0.3]])}, tiny_gt, settings="easy")
    assert res["easy"] == pytest.approx(1 / 3)


# ---- prediction files ---------------------------------------------------------

def test_write_read_round_trip(tmp_path, tiny_gt):
    rng = np.random.default_rng(0)
    mapping = {("0--A", "a1"): rng.uniform(0, 300, (7, 5)), ("0--A", "a2"): np.zeros((0, 5)),
               ("1--B", "b1"): np.array([[1e-7, 2.5, 3, 4, 0.123456789012345678]])}
    folder = wider.write_predictions(tmp_path / "pred", mapping)
    lines = (folder / "0--A" / "a1.txt").read_text().splitlines()
    assert lines[0] == "a1" and lines[1] == "7" and len(lines) == 9
    assert len(lines[2].split()) == 5
    assert (folder / "0--A" / "a2.txt").read_text().splitlines() == ["a2", "0"]
    back = wider.read_predictions(folder)
    assert set(back) == set(mapping)
    for k in mapping:
        np.testing.assert_array_equal(back[k], mapping[k])  # exact: shortest round-trip text
    # the folder evaluates like the mapping
    with pytest.warns(wider.MissingPredictionsWarning):
        a = wider.evaluate(folder, tiny_gt)
    with pytest.warns(wider.MissingPredictionsWarning):
        b = wider.evaluate(mapping, tiny_gt)
    assert_same_result(a, b, tol=0)


def test_folder_and_mapping_agree_on_real_subset(tmp_path, real_gt):
    sub = real_gt.subset(["27--Spa"])
    preds = generate_predictions(sub, seed=6)
    folder = wider.write_predictions(tmp_path / "pred", preds)
    assert_same_result(wider.evaluate(folder, sub), wider.evaluate(preds, sub), tol=0)


def test_missing_predictions_warn_once_and_count_as_empty(tmp_path, tiny_gt):
    preds = tiny_predictions()
    folder = wider.write_predictions(tmp_path / "pred", {k: v for k, v in preds.items() if k[0] == "0--A"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = wider.evaluate(folder, tiny_gt)
    missing = [w for w in caught if issubclass(w.category, wider.MissingPredictionsWarning)]
    assert len(missing) == 1 and "2 of 4" in str(missing[0].message)
    assert res["n_missing"] == 2
    as_empty = {k: (v if k[0] == "0--A" else np.zeros((0, 5))) for k, v in preds.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        full = wider.evaluate(as_empty, tiny_gt)
    assert_same_result(res, full, tol=0)
    # the same through a mapping with absent keys
    with pytest.warns(wider.MissingPredictionsWarning, match="2 of 4"):
        wider.evaluate({k: v for k, v in preds.items() if k[0] == "0--A"}, tiny_gt)


def test_no_predictions_at_all(tiny_gt):
    with pytest.warns(wider.MissingPredictionsWarning, match="4 of 4"):
        res = wider.evaluate({}, tiny_gt)
    for s in wider.SETTINGS:
        assert res[s] == 0.0
        assert np.isnan(res["curves"][s]["precision"]).all()


def test_extra_prediction_keys_warn(tiny_gt):
    preds = tiny_predictions()
    preds[("0--A", "a1.jpg")] = np.zeros((0, 5))
    with pytest.warns(UserWarning, match="1 prediction entries name images that are not in the ground truth"):
        wider.evaluate(preds, tiny_gt)


@pytest.mark.parametrize("text, line", [
    ("a1\n", 2),                                     # no count line
    ("a1\nthree\n1 2 3 4 0.5\n", 2),                 # count not an integer
    ("a1\n-1\n", 2),
    ("a1\n2\n1 2 3 4 0.5\n", 4),                     # fewer rows than the count
    ("a1\n1\n1 2 3 4 0.5\n5 6 7 8 0.1\n", 4),        # more rows than the count
    ("a1\n2\n1 2 3 4 0.5\n1 2 3 0.1\n", 4),          # 4 numbers
    ("a1\n2\n1 2 3 4 0.5 7\n1 2 3 4 0.1\n", 3),      # 6 numbers
    ("a1\n2\n1 2 3 4 0.5\n1 2 x 4 0.1\n", 4),        # not a number
    ("a1\n2\n1 2 3 4 nan\n1 2 3 4 0.1\n", 3),        # not finite
    ("a1\n2\n1 2 3 4\n0.5 1 2 3 4 0.1\n", 3),        # 4 then 6 numbers: not merged into two rows
    ("a1\n1\n1 2 3 4 1e400\n", 3),                  # overflows to inf
    ("a1\n+1\n1 2 3 4 0.5\n", 2),                   # counts: ASCII digits only
    ("a1\n1_0\n1 2 3 4 0.5\n", 2),
    ("a1\n\u0661\n1 2 3 4 0.5\n", 2),                # ARABIC-INDIC DIGIT ONE
])
def test_malformed_prediction_file(tmp_path, tiny_gt, text, line):
    f = tmp_path / "pred" / "0--A" / "a1.txt"
    f.parent.mkdir(parents=True)
    f.write_text(text)
    with pytest.raises(ValueError, match=rf"a1\.txt: line {line}:"):
        wider_format.read_prediction_file(f)
    with pytest.raises(ValueError, match=rf"a1\.txt: line {line}:"):
        wider.evaluate(tmp_path / "pred", tiny_gt)


def test_scores_spanning_more_than_a_double(tiny_gt):
    # max - min overflows to inf: both paths halve first and agree (AP of one good box)
    preds = tiny_predictions()
    preds[("0--A", "a1")] = np.array([[10, 10, 50, 50, 1e308], [300, 300, 5, 5, -1e308]])
    c = wider.evaluate(preds, tiny_gt, impl="c")
    r = wider.evaluate(preds, tiny_gt, impl="reference")
    assert_same_result(c, r)
    assert all(math.isfinite(c[s]) for s in wider.SETTINGS)
    from tasklle.reference.wider_eval import normalise
    np.testing.assert_array_equal(normalise(np.array([1e308, 0.0, -1e308]), -1e308, 1e308), [1.0, 0.5, 0.0])


def test_complex_predictions_are_refused(tiny_gt):
    with pytest.raises(TypeError, match="complex"):
        wider.evaluate({("0--A", "a1"): np.array([[10, 10, 50, 50, 0.5 + 1j]])}, tiny_gt)


def test_special_files_are_rejected_or_skipped(tmp_path, tiny_gt):
    import os
    ev = tmp_path / "pred" / "0--A"
    ev.mkdir(parents=True)
    (ev / "a1.txt").mkdir()                           # a directory named like a prediction file
    with pytest.raises(ValueError, match=r"a1\.txt: .*directory"):
        wider_format.read_prediction_file(ev / "a1.txt")
    with pytest.raises(ValueError, match=r"a1\.txt: .*directory"):
        wider.evaluate(tmp_path / "pred", tiny_gt)
    with pytest.warns(UserWarning, match=r"skipped .*a1\.txt: not a regular file"):
        assert wider.read_predictions(tmp_path / "pred") == {}
    (ev / "a1.txt").rmdir()
    os.symlink("/dev/zero", ev / "a1.txt")            # unbounded: never read
    with pytest.raises(ValueError, match=r"a1\.txt: not a regular file \(a character device\)"):
        wider.evaluate(tmp_path / "pred", tiny_gt)
    (ev / "a1.txt").unlink()
    os.mkfifo(ev / "a1.txt")                          # would block forever on a plain open()
    with pytest.raises(ValueError, match=r"a1\.txt: not a regular file \(a FIFO\)"):
        wider_format.read_prediction_file(ev / "a1.txt")
    (ev / "a1.txt").unlink()
    big = ev / "a1.txt"
    with open(big, "wb") as f:
        f.truncate(wider_format.MAX_PREDICTION_FILE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(ValueError, match=r"a1\.txt: .*limit"):
        wider_format.read_prediction_file(big)


def test_prediction_file_tolerates_official_variants(tmp_path):
    f = tmp_path / "x.txt"
    f.write_text("0--A/a1.jpg\r\n 2 \r\n1 2 3 4 0.5 \r\n5.5 6 7 8 1e-3\r\n\r\n")
    np.testing.assert_array_equal(wider_format.read_prediction_file(f), [[1, 2, 3, 4, 0.5], [5.5, 6, 7, 8, 1e-3]])


# ---- argument checks ------------------------------------------------------------

def test_bad_arguments(tiny_gt, tmp_path):
    preds = tiny_predictions()
    with pytest.raises(ValueError, match="iou_thresh"):
        wider.evaluate(preds, tiny_gt, iou_thresh=0)
    with pytest.raises(TypeError, match="iou_thresh"):
        wider.evaluate(preds, tiny_gt, iou_thresh="0.5")
    with pytest.raises(ValueError, match="unknown setting"):
        wider.evaluate(preds, tiny_gt, settings=("easy", "extreme"))
    with pytest.raises(ValueError, match="impl"):
        wider.evaluate(preds, tiny_gt, impl="cuda")
    with pytest.raises(TypeError, match="predictions must be"):
        wider.evaluate([1, 2], tiny_gt)
    with pytest.raises(ValueError, match=r"\('0--A', 'a1'\).*\(K, 5\)"):
        wider.evaluate({("0--A", "a1"): np.zeros((3, 4))}, tiny_gt)
    with pytest.raises(ValueError, match=r"\('1--B', 'b1'\).*NaN"):
        wider.evaluate({("1--B", "b1"): np.array([[0, 0, 1, 1, np.nan]])}, tiny_gt)
    with pytest.raises(TypeError, match="tuples"):
        wider.evaluate({"0--A/a1": np.zeros((0, 5))}, tiny_gt)
    with pytest.raises(FileNotFoundError, match="prediction folder"):
        wider.evaluate(tmp_path / "nope", tiny_gt)
    with pytest.raises(FileNotFoundError, match="ground-truth folder"):
        wider.evaluate(preds, tmp_path / "nope")
    with pytest.raises(ValueError, match="name"):
        wider.write_predictions(tmp_path / "p", {("0--A", "../evil"): np.zeros((0, 5))})
    with pytest.raises(ValueError, match="finite"):
        wider.write_predictions(tmp_path / "p", {("0--A", "a1"): np.full((1, 5), np.inf)})


def test_ground_truth_errors(tmp_path, tiny_gt):
    import shutil

    import scipy.io

    bad = tmp_path / "bad"
    shutil.copytree(tiny_gt, bad)
    (bad / "wider_hard_val.mat").unlink()
    with pytest.raises(FileNotFoundError, match="wider_hard_val.mat"):
        wider_format.load_ground_truth(bad)
    assert wider_format.load_ground_truth(bad, settings=("easy",)).settings == ("easy",)
    # an index beyond the image's boxes
    events = [(e, [(n, b, dict(k, hard=[1, 9]) if n == "b2" else k) for n, b, k in imgs])
              for e, imgs in TINY_EVENTS]
    write_tiny_gt(tmp_path / "oob", events)
    with pytest.raises(ValueError, match=r"1--B', 'b2'.*index 9 is outside 1\.\.1"):
        wider_format.load_ground_truth(tmp_path / "oob")
    # a file that is not a .mat
    garbage = tmp_path / "garbage"
    shutil.copytree(tiny_gt, garbage)
    (garbage / "wider_face_val.mat").write_bytes(b"not a mat file" * 20)
    with pytest.raises(ValueError, match="cannot read"):
        wider_format.load_ground_truth(garbage)
    # a structure that is not cells
    odd = tmp_path / "odd"
    shutil.copytree(tiny_gt, odd)
    scipy.io.savemat(str(odd / "wider_face_val.mat"), {"event_list": np.zeros((2, 1)), "file_list": np.zeros(1),
                                                      "face_bbx_list": np.zeros(1)})
    with pytest.raises(ValueError, match="event_list"):
        wider_format.load_ground_truth(odd)


def test_binding_rejects_bad_input():
    out = np.zeros((1, 10, 2), dtype=np.int64)
    gt = np.array([[0, 0, 10, 10.0]])
    cnt = np.ones((1, 1), dtype=np.uint8)
    ok = dict(pred=np.array([[0, 0, 10, 10, 1.0]]), poff=np.array([0, 1]), goff=np.array([0, 1]))

    def call(pred=ok["pred"], poff=ok["poff"], goff=ok["goff"], iou=0.5, counted=cnt, o=out):
        _C.wider_eval_forward(o, pred, poff, gt, goff, counted, 0.0, 1.0, iou)

    call()
    assert out[0, 0].tolist() == [1, 1]
    with pytest.raises(ValueError, match="pred_offsets"):
        call(poff=np.array([0, 2]))
    with pytest.raises(ValueError, match="gt_offsets"):
        call(goff=np.array([1, 1]))
    with pytest.raises(ValueError, match="pred must be finite"):
        call(pred=np.array([[0, 0, 10, np.nan, 1.0]]))
    with pytest.raises(ValueError, match="iou_thresh"):
        call(iou=1.5)
    with pytest.raises(TypeError, match="pred must have dtype float64"):
        call(pred=ok["pred"].astype(np.float32))
    with pytest.raises(ValueError, match="counted"):
        call(counted=np.ones((1, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="pr_counts must be writeable"):
        ro = np.zeros((1, 10, 2), dtype=np.int64)
        ro.setflags(write=False)
        call(o=ro)


# ---- plots and the CLI ---------------------------------------------------------------

def test_plot_pr_curves(tmp_path, tiny_gt):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    a = wider.evaluate(tiny_predictions(), tiny_gt)
    b = wider.evaluate({k: v[:1] for k, v in tiny_predictions().items()}, tiny_gt)
    path = tmp_path / "pr.png"
    fig = wider.plot_pr_curves({"full": a, "top1": b}, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(fig.axes) == 3
    labels = [t.get_text() for t in fig.axes[2].get_legend().get_texts()]
    assert labels == [f"{a['hard']:.3f} full", f"{b['hard']:.3f} top1"] or \
        labels == [f"{b['hard']:.3f} top1", f"{a['hard']:.3f} full"]
    ax = Figure().subplots()
    assert wider.plot_pr_curves(a, ax, settings=["easy"]) is ax.figure
    with pytest.raises(ValueError, match="one Axes"):
        wider.plot_pr_curves(a, ax)
    with pytest.raises(ValueError, match="not an evaluate"):
        wider.plot_pr_curves({"x": {"easy": 1.0}}, tmp_path / "x.png")


def test_cli_evaluate(tmp_path, tiny_gt, capsys):
    from tasklle.cli import main

    folder = wider.write_predictions(tmp_path / "pred", tiny_predictions())
    rc = main(["evaluate", str(folder), str(tiny_gt), "--json", str(tmp_path / "r.json"),
               "--plot", str(tmp_path / "r.png"), "--name", "mine"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "easy    AP 0.3333" in out and "hard    AP 0.3611" in out
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["method"] == "mine" and data["hard"] == pytest.approx(13 / 36)
    assert len(data["curves"]["easy"]["precision"]) == 1000
    assert (tmp_path / "r.png").stat().st_size > 1000
    rc = main(["evaluate", str(tmp_path / "nope"), str(tiny_gt)])
    assert rc == 1 and "prediction folder not found" in capsys.readouterr().err


def test_reference_twin_single_image_literal():
    from tasklle.reference import wider_evaluate_image

    # gt: counted A, ignored B; predictions sorted, normalised
    pred = np.array([[0, 0, 10, 10, 1.0], [0, 0, 10, 10, 0.95], [100, 100, 10, 10, 0.5], [50, 50, 5, 5, 0.0]])
    gt = np.array([[0, 0, 10, 10], [100, 100, 10, 10]])
    info = wider_evaluate_image(pred, gt, [1], thresh_num=10)
    assert info.tolist() == [[2, 1]] * 9 + [[3, 1]]
    assert not wider_evaluate_image(pred, np.zeros((0, 4)), [], thresh_num=10).any()
    assert math.isclose(tasklle.reference.wider_voc_ap([0.5, 1.0], [1.0, 0.5]), 0.75)
