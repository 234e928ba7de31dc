"""DARK FACE: the release reader and the evaluation against a literal NumPy
transcription, written here, of the challenge tools (read_pred.m's sort,
norm_score.m, evaluation.m's image_evaluation / image_pr_info /
dataset_pr_info with WIDER FACE's boxoverlap, and utils/VOCap.m)."""
import math
import os
import warnings

import numpy as np
import pytest

from tasklle.data import darkface as data
from tasklle.eval import bootstrap, darkface
from tasklle.eval.wider import MissingPredictionsWarning

from darkface_testutil import make_tree


# --------------------------------------------------------------------------- the tools, transcribed

def tool_boxoverlap(a, b):
    x1 = np.maximum(a[:, 0], b[0])
    y1 = np.maximum(a[:, 1], b[1])
    x2 = np.minimum(a[:, 2], b[2])
    y2 = np.minimum(a[:, 3], b[3])
    w = x2 - x1 + 1
    h = y2 - y1 + 1
    inter = w * h
    aarea = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    barea = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    o = inter / (aarea + barea - inter)
    o[w <= 0] = 0
    o[h <= 0] = 0
    return o


def tool_ap(pred_list, gt_list, iou_thresh=0.5, thresh_num=1000):
    """pred_list: per image a (K, 5) x y w h score array or None (no file); gt_list: per image the
    tools' ground truth, (N, 4) x y w h (N may be 0). float64 throughout (MATLAB mixes in single)."""
    # read_pred.m: sort each image descending (a stable sort, as MATLAB's)
    preds = []
    for p in pred_list:
        if p is None or len(p) == 0:
            preds.append(None)
            continue
        idx = np.argsort(-p[:, 4], kind="stable")
        preds.append(p[idx].copy())
    # norm_score.m
    max_score, min_score = np.finfo(np.float32).tiny, np.finfo(np.float32).max
    for p in preds:
        if p is None:
            continue
        max_score = max(max_score, p[:, 4].max())
        min_score = min(min_score, p[:, 4].min())
    for p in preds:
        if p is not None:
            p[:, 4] = (p[:, 4] - min_score) / (max_score - min_score)
    # evaluation.m
    org_pr_curve = np.zeros((thresh_num, 2))
    count_face = 0
    for gt_bbx, pred_info in zip(gt_list, preds):
        count_face += gt_bbx.shape[0]  # size(keep_index, 1)
        if gt_bbx.shape[0] == 0 or pred_info is None:
            continue
        pred_info = pred_info.copy()
        gt_bbx = gt_bbx.astype(np.float64).copy()
        pred_recall = np.zeros(len(pred_info))
        recall_list = np.zeros(len(gt_bbx))
        proposal_list = np.ones(len(pred_info))
        pred_info[:, 2] = pred_info[:, 0] + pred_info[:, 2]
        pred_info[:, 3] = pred_info[:, 1] + pred_info[:, 3]
        gt_bbx[:, 2] = gt_bbx[:, 0] + gt_bbx[:, 2]
        gt_bbx[:, 3] = gt_bbx[:, 1] + gt_bbx[:, 3]
        for h in range(len(pred_info)):
            overlap_list = tool_boxoverlap(gt_bbx, pred_info[h, :4])
            idx = int(np.argmax(overlap_list))
            if overlap_list[idx] >= iou_thresh:
                recall_list[idx] = 1
            pred_recall[h] = np.count_nonzero(recall_list == 1)
        img_pr_info = np.zeros((thresh_num, 2))
        for t in range(1, thresh_num + 1):
            thresh = 1 - t / thresh_num
            found = np.nonzero(pred_info[:, 4] >= thresh)[0]
            if len(found):
                r_index = found[-1]
                img_pr_info[t - 1, 0] = np.count_nonzero(proposal_list[:r_index + 1] == 1)
                img_pr_info[t - 1, 1] = pred_recall[r_index]
        org_pr_curve += img_pr_info
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = org_pr_curve[:, 1] / org_pr_curve[:, 0]
        rec = org_pr_curve[:, 1] / count_face
    # VOCap.m (MATLAB's max skips NaN)
    mrec = np.concatenate([[0.0], rec, [1.0]])
    mpre = np.concatenate([[0.0], prec, [0.0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = np.fmax(mpre[i], mpre[i + 1])
    i = np.nonzero(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[i] - mrec[i - 1]) * mpre[i])), org_pr_curve


def random_case(seed, n_images=40):
    """Release-style labels (x1 y1 x2 y2 integers) and predictions x y w h score: jittered faces,
    exact copies, duplicates, false positives, tied scores, images without faces or predictions."""
    rng = np.random.default_rng(seed)
    labels, preds = [], []
    for i in range(n_images):
        n = 0 if i % 7 == 3 else int(rng.integers(1, 9))
        xy = rng.integers(0, 900, (n, 2))
        wh = rng.integers(4, 120, (n, 2))
        lab = np.concatenate([xy, xy + wh], 1).astype(np.float64)
        labels.append(lab)
        if i % 11 == 5:
            preds.append(None)  # no prediction file
            continue
        rows = []
        for b in lab:
            if rng.random() < 0.8:
                w, h = b[2] - b[0], b[3] - b[1]
                j = np.round(rng.normal(0, 0.15, 4) * [w, h, w, h])
                rows.append([b[0] + j[0], b[1] + j[1], max(0.0, w + j[2]), max(0.0, h + j[3]), rng.beta(5, 2)])
                if rng.random() < 0.2:  # a duplicate on the same face: a false positive
                    rows.append([b[0], b[1], w, h, rng.beta(5, 2)])
        for _ in range(int(rng.integers(0, 6))):
            rows.append([*rng.integers(0, 900, 2), *rng.integers(2, 120, 2), rng.beta(2, 5)])
        p = np.array(rows, dtype=np.float64).reshape(-1, 5)
        tie = rng.random(len(p)) < 0.3
        p[tie, 4] = np.round(p[tie, 4], 2)
        preds.append(p[rng.permutation(len(p))])
    return labels, preds


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_evaluate_equals_the_tools_transcribed(seed):
    labels, preds = random_case(seed)
    names = [str(i + 1) for i in range(len(labels))]
    gt = darkface.GroundTruth(names, labels)
    mapping = {n: p for n, p in zip(names, preds) if p is not None}
    tool_gt = [np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], 1) for b in labels]
    want, want_curve = tool_ap(preds, tool_gt)
    with pytest.warns(MissingPredictionsWarning):
        res = darkface.evaluate(mapping, gt)
    assert abs(res["ap"] - want) < 1e-9
    assert 0.05 < want < 0.99  # a case with misses and false positives, not a trivial one
    np.testing.assert_array_equal(res["curve"]["proposals"], want_curve[:, 0])
    np.testing.assert_array_equal(res["curve"]["true_positives"], want_curve[:, 1])
    assert res["n_faces"] == sum(len(b) for b in labels)
    with pytest.warns(MissingPredictionsWarning):
        ref = darkface.evaluate(mapping, gt, impl="reference")
    assert ref["ap"] == res["ap"]


def test_unconverted_labels_would_score_differently():
    # the box-convention finding: feeding the x1 y1 x2 y2 labels to the tools as they are is wrong
    labels, preds = random_case(5)
    mapping = {str(i + 1): p for i, p in enumerate(preds) if p is not None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingPredictionsWarning)
        ours = darkface.evaluate(mapping, darkface.GroundTruth([str(i + 1) for i in range(len(labels))], labels))["ap"]
    raw, _ = tool_ap(preds, labels)
    assert abs(ours - raw) > 0.05


def test_per_image_counts_sum_to_the_dataset_and_resample_like_duplicated_images():
    labels, preds = random_case(7, n_images=20)
    names = [str(i + 1) for i in range(len(labels))]
    mapping = {n: p for n, p in zip(names, preds) if p is not None}
    gt = darkface.GroundTruth(names, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingPredictionsWarning)
        full = darkface.evaluate(mapping, gt)
        per, faces = darkface.per_image_counts(mapping, gt)
    np.testing.assert_array_equal(per.sum(0)[:, 0], full["curve"]["proposals"])
    np.testing.assert_array_equal(per.sum(0)[:, 1], full["curve"]["true_positives"])
    np.testing.assert_array_equal(faces, [len(b) for b in labels])
    # a resample is the evaluation of a set where drawn images appear as often as drawn
    w = bootstrap.resample_weights(len(names), 3, seed=4)
    samples = darkface.ap_samples(per, faces, w)
    for r in range(3):
        dup_names, dup_labels, dup_preds = [], [], {}
        for i, n in enumerate(names):
            for c in range(int(w[r, i])):
                dup_names.append(f"{n}_{c}")
                dup_labels.append(labels[i])
                if n in mapping:
                    dup_preds[f"{n}_{c}"] = mapping[n]
        # the resampled set's own score range is narrower; keep the dataset's as the tools' whole-set run
        lo_hi = np.concatenate([p[:, 4] for p in mapping.values()])
        dup_names.append("range")
        dup_labels.append(np.zeros((0, 4)))
        dup_preds["range"] = np.array([[0, 0, 1, 1, lo_hi.min()], [0, 0, 1, 1, lo_hi.max()]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MissingPredictionsWarning)
            direct = darkface.evaluate(dup_preds, darkface.GroundTruth(dup_names, dup_labels))["ap"]
        assert abs(samples[r] - direct) < 1e-12
    np.testing.assert_allclose(darkface.ap_samples(per, faces, np.ones((1, len(names)), dtype=np.int64)),
                               [full["ap"]], atol=1e-12)


# --------------------------------------------------------------------------- files

def test_release_tree_reader(tmp_path):
    labels = make_tree(tmp_path / "df", n_images=4)
    ds = data.DarkFace(tmp_path / "df")
    assert ds.names == ["1", "2", "3", "4"]
    assert ds.boxes("2").shape == (0, 4)  # the image without faces: count 0
    item = ds[0]
    assert item["image"].shape == (3, 96, 128) and item["name"] == "1"
    np.testing.assert_array_equal(item["boxes"], labels["1"])
    gt = darkface.load_ground_truth(tmp_path / "df")
    assert gt.n_faces == sum(len(b) for b in labels.values())
    np.testing.assert_array_equal(gt.boxes[:, 2:], np.concatenate(list(labels.values()))[:, 2:]
                                  - np.concatenate(list(labels.values()))[:, :2])
    # write_label_file writes what the release has
    data.write_label_file(tmp_path / "x.txt", labels["1"])
    assert (tmp_path / "x.txt").read_text() == (tmp_path / "df" / "label" / "1.txt").read_text()


@pytest.mark.parametrize("text, line, what", [
    ("2\n1 2 3 4\n5 6 7\n", 3, "4 finite numbers"),
    ("2\n1 2 3 4\n", 3, "says 2 faces"),
    ("1\n1 2 3 4\n5 6 7 8\n", 3, "more box lines"),
    ("x\n", 1, "non-negative integer"),
    ("", 1, "missing the face count"),
    ("1\n1 2 nan 4\n", 2, "4 finite numbers"),
])
def test_malformed_label_names_file_and_line(tmp_path, text, line, what):
    p = tmp_path / "7.txt"
    p.write_text(text)
    with pytest.raises(ValueError, match=f"7.txt: line {line}: .*{what}"):
        data.read_label_file(p)


def test_label_reader_refuses_non_regular_files_and_missing_labels(tmp_path):
    make_tree(tmp_path / "df", n_images=3)
    (tmp_path / "df" / "label" / "3.txt").unlink()
    with pytest.raises(ValueError, match="has no label file"):
        data.DarkFace(tmp_path / "df")
    with pytest.raises(FileNotFoundError, match="not a DARK FACE tree"):
        data.DarkFace(tmp_path)
    os.mkfifo(tmp_path / "f.txt")
    with pytest.raises(ValueError, match="not a regular file"):
        data.read_label_file(tmp_path / "f.txt")


def test_prediction_folder_round_trip_and_errors(tmp_path):
    labels = make_tree(tmp_path / "df", n_images=4)
    rng = np.random.default_rng(0)
    preds = {}
    for n, b in labels.items():
        if n == "4":
            continue  # no file: no detections
        xywh = darkface.tool_boxes(b)
        preds[n] = np.concatenate([xywh + rng.integers(-2, 3, xywh.shape), rng.random((len(b), 1))], 1)
    preds["2"] = np.array([[3.0, 4.0, 20.0, 20.0, 0.9]])  # a false positive on the image without faces
    darkface.write_predictions(tmp_path / "p", preds)
    back = darkface.read_predictions(tmp_path / "p")
    assert set(back) == {"1", "2", "3"}
    for n in back:
        np.testing.assert_array_equal(back[n], preds[n])
    with pytest.warns(MissingPredictionsWarning, match="1 of 4"):
        a = darkface.evaluate(tmp_path / "p", tmp_path / "df")
    with pytest.warns(MissingPredictionsWarning):
        b = darkface.evaluate(preds, tmp_path / "df")
    assert a["ap"] == b["ap"] and a["n_missing"] == 1
    (tmp_path / "p" / "1.txt").write_text("1 2 3 4 0.5\n1 2 3 4\n")
    with pytest.raises(ValueError, match=r"1.txt: line 2: expected 5 finite numbers"):
        darkface.evaluate(tmp_path / "p", tmp_path / "df")
    with pytest.raises(ValueError, match="plain image name"):
        darkface.write_predictions(tmp_path / "q", {"../x": np.zeros((0, 5))})
    with pytest.raises(TypeError, match="prediction folder or a mapping"):
        darkface.evaluate(3, tmp_path / "df")


def test_no_face_at_all_gives_nan_with_a_warning():
    gt = darkface.GroundTruth(["1"], [np.zeros((0, 4))])
    with pytest.warns(UserWarning, match="no face"):
        res = darkface.evaluate({"1": np.array([[0, 0, 5, 5, 0.5]])}, gt)
    assert math.isnan(res["ap"])
