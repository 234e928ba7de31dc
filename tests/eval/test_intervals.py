"""Bootstrap AP intervals (tasklle.eval.intervals): a resample's AP is exactly
wider.evaluate on the resampled image list, intervals hold the point AP, a
group paired with itself differs by exactly 0, the C and twin paths and every
chunking agree, and bad arguments raise."""
import numpy as np
import pytest

from tasklle.data.wider_format import GroundTruth
from tasklle.eval import bootstrap as bs
from tasklle.eval import intervals, wider
from wider_eval_testutil import generate_predictions, synthetic_gt


@pytest.fixture(scope="module")
def data():
    gt = synthetic_gt(n_images=48, n_events=3, seed=11)
    return gt, generate_predictions(gt, n_fp=12, seed=12)


def _resampled(gt, preds, row):
    """The resampled image list written out: image i appears row[i] times, each copy a distinct image."""
    events, event_index, names, boxes, counts = gt.events, [], [], [], []
    keep = {s: ([], []) for s in gt.settings}
    out_preds = {}
    for i, k in enumerate(row):
        event, name = gt.key(i)
        for c in range(int(k)):
            event_index.append(int(gt.event_index[i]))
            names.append(f"{name}#{c}")
            boxes.append(gt.image_boxes(i))
            counts.append(len(gt.image_boxes(i)))
            for s in gt.settings:
                keep[s][0].append(gt.keep_index(s, i))
                keep[s][1].append(len(gt.keep_index(s, i)))
            out_preds[(event, f"{name}#{c}")] = preds[(event, name)]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    keep = {s: (np.concatenate(v), np.concatenate([[0], np.cumsum(n)])) for s, (v, n) in keep.items()}
    return GroundTruth(events, event_index, names, np.concatenate(boxes), offsets, keep, "resampled"), out_preds


def test_a_resample_is_evaluate_on_the_resampled_images(data):
    gt, preds = data
    b = intervals.bootstrap(preds, gt, resamples=40, seed=3)
    w = bs.resample_weights(gt.n_images, 40, 3)
    keys = gt.keys()
    lo = min(preds[k][:, 4].min() for k in keys if len(preds[k]))
    hi = max(preds[k][:, 4].max() for k in keys if len(preds[k]))
    checked = 0
    for r, row in enumerate(w):
        drawn = [preds[keys[i]][:, 4] for i in np.nonzero(row)[0] if len(preds[keys[i]])]
        # the normalisation is fixed from all predictions (see the module doc): compare where the resample
        # draws the images that hold the extreme scores, so evaluate's own normalisation is the same
        if min(d.min() for d in drawn) != lo or max(d.max() for d in drawn) != hi:
            continue
        rgt, rpreds = _resampled(gt, preds, row)
        ref = wider.evaluate(rpreds, rgt)
        for s in wider.SETTINGS:
            assert b["samples"][s][r] == ref[s]  # exactly: the same integer sums through the same formula
        checked += 1
        if checked == 4:
            break
    assert checked == 4
    full = wider.evaluate(preds, gt)
    for s in wider.SETTINGS:
        assert b["ap"][s] == full[s]
        lo_s, hi_s = b[s]
        assert lo_s <= full[s] <= hi_s and lo_s < hi_s
        assert b["samples"][s].shape == (40,)
    assert b["resampling"] == {"unit": "val images", "n_images": 48, "resamples": 40, "seed": 3}


def test_paired_difference_of_a_group_with_itself_is_zero(data):
    gt, preds = data
    d = intervals.paired_difference(preds, preds, gt, resamples=50, seed=1)
    for s in wider.SETTINGS:
        assert d[s] == {"delta": 0.0, "ci": [0.0, 0.0], "verdict": "not distinguishable"}


def test_paired_difference_is_the_interval_of_the_paired_samples(data):
    gt, preds = data
    worse = {k: v[::2] for k, v in preds.items()}  # half the detections dropped
    a = intervals.bootstrap(preds, gt, resamples=200, seed=5)
    b = intervals.bootstrap(worse, gt, resamples=200, seed=5)
    d = intervals.difference(a, b)
    assert d == intervals.paired_difference(preds, worse, gt, resamples=200, seed=5)
    for s in wider.SETTINGS:
        diff = a["samples"][s] - b["samples"][s]
        assert d[s]["ci"] == pytest.approx(list(np.quantile(diff, [0.025, 0.975])), abs=1e-15)
        assert d[s]["delta"] == a["ap"][s] - b["ap"][s]
        assert d[s]["ci"][0] <= d[s]["delta"] <= d[s]["ci"][1]
        assert d[s]["verdict"] == bs.verdict(d[s]["ci"])
    assert d["hard"]["verdict"] == "better (interval excludes 0)"  # half the detections is clearly worse


def test_chunks_paths_and_precision_agree(data):
    gt, preds = data
    base = intervals.bootstrap(preds, gt, resamples=30, seed=2)
    for kw in (dict(chunk=5), dict(chunk=1000), dict(impl="reference", chunk=17)):
        other = intervals.bootstrap(preds, gt, resamples=30, seed=2, **kw)
        for s in wider.SETTINGS:
            np.testing.assert_array_equal(other["samples"][s], base["samples"][s])
    # AP is invariant to scaling every weight: 10**6 x the counts takes the float64 product
    # (past float32's exact integers), 1 x the float32 one; both are exact, so the APs are equal
    w = bs.resample_weights(gt.n_images, 30, 2)
    assert intervals._exact_dtype(w, 100) == np.float32 and intervals._exact_dtype(w * 10**6, 100) == np.float64
    big = intervals.bootstrap(preds, gt, weights=w * 10**6)
    for s in wider.SETTINGS:
        np.testing.assert_array_equal(big["samples"][s], base["samples"][s])
    assert big["resampling"]["seed"] is None and len(big["resampling"]["weights_sha256"]) == 16


def test_a_resample_without_counted_faces_is_nan_and_left_out():
    gt = synthetic_gt(n_images=6, n_events=1, seed=0)  # images 3 and 5 have no easy face
    preds = generate_predictions(gt, n_fp=3, seed=1)
    faces_easy = np.diff(gt.keep["easy"][1])
    w = np.zeros((3, 6), np.int64)
    w[:, int(np.argmax(faces_easy))] = 6  # resamples made of the one image with easy faces ...
    w[2] = 0
    w[2, int(np.argmin(faces_easy))] = 6  # ... and one without any
    assert faces_easy.min() == 0
    b = intervals.bootstrap(preds, gt, weights=w)
    assert np.isnan(b["samples"]["easy"][2]) and not np.isnan(b["samples"]["easy"][:2]).any()
    assert b["easy"][0] == b["easy"][1] == b["samples"]["easy"][0]


def test_bad_arguments(data):
    gt, preds = data
    with pytest.raises(ValueError, match="weights must be"):
        intervals.bootstrap(preds, gt, weights=np.ones((3, 5), np.int64))
    with pytest.raises(ValueError, match="non-negative integer"):
        intervals.bootstrap(preds, gt, weights=np.full((3, gt.n_images), 0.5))
    with pytest.raises(ValueError, match="non-negative integer"):
        intervals.bootstrap(preds, gt, weights=-np.ones((3, gt.n_images), np.int64))
    with pytest.raises(ValueError, match="resamples"):
        intervals.bootstrap(preds, gt, resamples=0)
    with pytest.raises(ValueError, match="level"):
        intervals.bootstrap(preds, gt, level=1.0)
    with pytest.raises(TypeError, match="chunk"):
        intervals.bootstrap(preds, gt, chunk=2.5)
    with pytest.raises(ValueError, match="settings"):
        intervals.bootstrap(preds, gt, settings=("easiest",))
    with pytest.raises(ValueError, match="impl"):
        intervals.bootstrap(preds, gt, impl="fast")
    a = intervals.bootstrap(preds, gt, resamples=20, seed=0)
    b = intervals.bootstrap(preds, gt, resamples=20, seed=1)
    with pytest.raises(ValueError, match="same resampling"):
        intervals.difference(a, b)
    with pytest.raises(TypeError, match="bootstrap"):
        intervals.difference(a, {"easy": 0.5})


def test_ap_table_shows_the_intervals(data):
    from tasklle.eval import ap_table

    gt, preds = data
    b = intervals.bootstrap(preds, gt, resamples=100, seed=0)
    t = ap_table({"dark": b["ap"], "no interval": b["ap"]}, intervals={"dark": {s: b[s] for s in wider.SETTINGS}})
    row = t.splitlines()[2]
    assert row == "| dark | " + " | ".join(f"{b['ap'][s]:.4f} [{b[s][0]:.3f}, {b[s][1]:.3f}]"
                                           for s in wider.SETTINGS) + " |"
    assert t.splitlines()[3] == "| no interval | " + " | ".join(f"{b['ap'][s]:.4f}" for s in wider.SETTINGS) + " |"
    assert t.rows[0]["hard_ci"] == [b["hard"][0], b["hard"][1]] and t.rows[1]["hard_ci"] is None
    with pytest.raises(ValueError, match="intervals"):
        ap_table({"dark": b["ap"]}, intervals={"dark": (0.1, 0.2)})


def test_rounding_sized_differences_are_no_evidence():
    rs = {"unit": "val images", "n_images": 5, "resamples": 4, "seed": 0}
    a = {"ap": {"hard": 0.5}, "samples": {"hard": np.array([0.5, 0.4, 0.6, 0.3])}, "level": 0.95, "resampling": rs}
    b = {"ap": {"hard": 0.5}, "samples": {"hard": a["samples"]["hard"] - 3e-17}, "level": 0.95, "resampling": rs}
    assert intervals.difference(a, b)["hard"] == {"delta": 0.0, "ci": [0.0, 0.0], "verdict": "not distinguishable"}
    c = dict(b, samples={"hard": a["samples"]["hard"] - 1e-6})
    assert intervals.difference(a, c)["hard"]["verdict"] == "better (interval excludes 0)"
