"""The built-in demo dataset: deterministic, atomic, readable by the Dataset and as official .mat files."""
import hashlib
import json

import numpy as np
import pytest

from tasklle.data import WiderFace, demo, read_wider_annotations

SMALL = dict(seed=5, n_train=8, n_val=10)


def _hashes(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("demo")
    a = demo.build(base / "a", **SMALL)
    b = demo.build(base / "b", **SMALL)
    return a, b


def test_same_seed_same_bytes(built):
    a, b = built
    ha, hb = _hashes(a), _hashes(b)
    assert len(ha) == 8 + 10 + 2 + 4 + 1  # images, two txt, four .mat, manifest
    assert ha == hb
    assert not list(a.parent.glob(".*building*"))  # no temporary folder left behind


def test_image_is_independent_of_the_set_size():
    img_a, ev_a, faces_a = demo.render_image(5, "val", 3)
    img_b, ev_b, faces_b = demo.render_image(5, "val", 3)
    assert np.array_equal(img_a, img_b) and ev_a == ev_b and faces_a == faces_b
    img_c, _, _ = demo.render_image(6, "val", 3)
    assert img_c.shape != img_a.shape or not np.array_equal(img_c, img_a)


def test_idempotent_and_guarded(built, tmp_path):
    a, _ = built
    before = {p: p.stat().st_mtime_ns for p in a.rglob("*") if p.is_file()}
    assert demo.build(a, **SMALL) == a
    assert {p: p.stat().st_mtime_ns for p in a.rglob("*") if p.is_file()} == before
    with pytest.raises(ValueError, match="other parameters"):
        demo.build(a, seed=5, n_train=8, n_val=11)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "keep.txt").write_text("user data")
    with pytest.raises(ValueError, match="not a tasklle demo dataset"):
        demo.build(other, n_train=1, n_val=1, force=True)
    assert (other / "keep.txt").read_text() == "user data"
    with pytest.raises(ValueError, match="image_size"):
        demo.build(tmp_path / "x", image_size=(8, 16))
    with pytest.raises(TypeError, match="n_train"):
        demo.build(tmp_path / "x", n_train=2.5)


def test_force_rebuilds_and_cache_dir(tmp_path, monkeypatch):
    root = tmp_path / "t"
    demo.build(root, seed=1, n_train=1, n_val=1)
    demo.build(root, seed=2, n_train=1, n_val=2, force=True)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["params"]["seed"] == 2 and manifest["counts"]["val"]["images"] == 2
    assert len(list((root / "WIDER_val" / "images").rglob("*.jpg"))) == 2
    monkeypatch.setenv("TASKLLE_CACHE", str(tmp_path / "cache"))
    cached = demo.build(seed=3, n_train=1, n_val=1)
    assert cached.parent == tmp_path / "cache" / "demo"
    assert cached.name.startswith(f"v{demo.DEMO_VERSION}-seed3-")
    assert demo.build(seed=3, n_train=1, n_val=1) == cached


def test_dataset_reads_both_splits(built):
    a, _ = built
    for split, n in (("train", 8), ("val", 10)):
        ds = WiderFace(a, split)
        assert len(ds) == n
        for i in range(n):
            item = ds[i]
            _, h, w = item["image"].shape
            assert demo.DEFAULT_IMAGE_SIZE[0] <= h <= demo.DEFAULT_IMAGE_SIZE[1]
            boxes = item["boxes"]
            if len(boxes):
                assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= w).all()
                assert (boxes[:, 1] >= 0).all() and (boxes[:, 3] <= h).all()
                heights = boxes[:, 3] - boxes[:, 1]
                assert heights.min() >= demo.DEFAULT_FACE_SIZE[0] and heights.max() <= demo.DEFAULT_FACE_SIZE[1]
            assert item["event"] in demo.EVENTS


def test_zero_face_spellings():
    assert demo._txt_block("e/a.jpg", [], "train") == "e/a.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n"
    assert demo._txt_block("e/a.jpg", [], "val") == "e/a.jpg\n1\n0 0 0 0 0 0 0 0 0 0 \n"
    face = {"box": (1, 2, 3, 4), "attributes": (1, 0, 0, 0, 0, 0)}
    assert demo._txt_block("e/a.jpg", [face], "val") == "e/a.jpg\n1\n1 2 3 4 1 0 0 0 0 0 \n"


def _signatures(arr):
    """Set of nesting signatures of a loadmat value: cell levels, then leaf dtype kind, ndim, columns."""
    if arr.dtype == object:
        inner = set()
        for x in arr.flat:
            inner |= _signatures(x)
        return {("cell", arr.ndim, arr.shape[1]) + s for s in inner}
    return {(arr.dtype.kind, arr.ndim, arr.shape[1] if arr.ndim > 1 else None)}


EXPECTED_NESTING = {
    "event_list": {("cell", 2, 1, "U", 1, None)},
    "file_list": {("cell", 2, 1, "cell", 2, 1, "U", 1, None)},
    "face_bbx_list": {("cell", 2, 1, "cell", 2, 1, "i", 2, 4)},
    "gt_list": {("cell", 2, 1, "cell", 2, 1, "u", 2, 1), ("cell", 2, 1, "cell", 2, 1, "u", 2, 0)},
    "invalid_label_list": {("cell", 2, 1, "cell", 2, 1, "u", 2, 1)},
}


def test_mat_files_have_the_official_nesting(built):
    import scipy.io

    a, _ = built
    gt = a / "wider_face_split"
    face = scipy.io.loadmat(str(gt / "wider_face_val.mat"))
    assert "gt_list" not in face
    for setting in ("easy", "medium", "hard"):
        m = scipy.io.loadmat(str(gt / f"wider_{setting}_val.mat"))
        for key, expected in EXPECTED_NESTING.items():
            assert _signatures(m[key]) <= expected, (setting, key)
        assert set(face) - {"__header__", "__version__", "__globals__"} == \
            set(m) - {"__header__", "__version__", "__globals__", "gt_list"}


def test_mat_nesting_matches_the_real_files(built, wider_gt_dir):
    import scipy.io

    a, _ = built
    for name in ("wider_face_val.mat", "wider_easy_val.mat", "wider_hard_val.mat"):
        real = scipy.io.loadmat(str(wider_gt_dir / name))
        ours = scipy.io.loadmat(str(a / "wider_face_split" / name))
        keys = {k for k in real if not k.startswith("__")}
        assert keys == {k for k in ours if not k.startswith("__")}
        for key in keys:
            assert _signatures(ours[key]) <= _signatures(real[key]), (name, key)


def test_difficulty_lists_consistent(built):
    import scipy.io

    a, _ = built
    gt = a / "wider_face_split"
    records = {(r["event"], r["name"]): r for r in read_wider_annotations(gt / "wider_face_val_bbx_gt.txt")}
    mats = {s: scipy.io.loadmat(str(gt / f"wider_{s}_val.mat")) for s in ("easy", "medium", "hard")}
    hard = mats["hard"]
    totals = {s: 0 for s in mats}
    n_images = 0
    for e in range(hard["event_list"].shape[0]):
        event = str(hard["event_list"][e, 0][0])
        for i in range(hard["file_list"][e, 0].shape[0]):
            name = str(hard["file_list"][e, 0][i, 0][0])
            rec = records[(event, name)]
            boxes = hard["face_bbx_list"][e, 0][i, 0]
            invalid = hard["invalid_label_list"][e, 0][i, 0].ravel()
            if len(rec["boxes"]):
                np.testing.assert_array_equal(boxes, rec["boxes"])
                np.testing.assert_array_equal(invalid, rec["attributes"][:, 3])
            sets = {}
            for s, m in mats.items():
                idx = m["gt_list"][e, 0][i, 0].ravel().astype(int)
                assert len(set(idx)) == len(idx)
                sets[s] = set(idx.tolist())
                totals[s] += len(idx)
            assert sets["easy"] <= sets["medium"] <= sets["hard"]
            for k in range(1, len(rec["boxes"]) + 1):
                h = rec["boxes"][k - 1, 3]
                valid = rec["attributes"][k - 1, 3] == 0
                assert (k in sets["hard"]) == valid
                assert (k in sets["medium"]) == (valid and h >= demo.MEDIUM_MIN_HEIGHT)
                assert (k in sets["easy"]) == (valid and h >= demo.EASY_MIN_HEIGHT)
            n_images += 1
    assert n_images == len(records) == 10
    manifest = json.loads((a / "manifest.json").read_text())
    assert manifest["counts"]["val"]["easy"] == totals["easy"]
    assert manifest["counts"]["val"]["hard"] == totals["hard"] > totals["medium"] > 0


def test_evaluator_reads_demo_ground_truth(built):
    wider_eval = pytest.importorskip("tasklle.eval.wider")
    a, _ = built
    ds = WiderFace(a, "val")
    predictions = {}
    for rec in ds.records:
        boxes = rec["boxes"]
        scores = np.linspace(1.0, 0.5, len(boxes)).reshape(-1, 1)
        predictions[(rec["event"], rec["name"])] = np.hstack([boxes, scores])
    result = wider_eval.evaluate(predictions, a / "wider_face_split")
    for setting in ("easy", "medium", "hard"):
        assert result[setting] == pytest.approx(1.0)


def test_preview_draws_png(built, tmp_path):
    from PIL import Image

    a, _ = built
    path = demo.preview(a, n=2, path=tmp_path / "p.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 200


def test_cli_build_demo_data(built, tmp_path, capsys):
    from tasklle.cli import main

    a, _ = built
    args = ["build-demo-data", "--root", str(a), "--seed", "5", "--n-train", "8", "--n-val", "10"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert str(a / "wider_face_split") in out and "val: 10 images" in out
    (tmp_path / "x.txt").write_text("not a dataset")
    assert main(["build-demo-data", "--root", str(tmp_path), "--n-train", "1", "--n-val", "1"]) == 1
    assert "not a tasklle demo dataset" in capsys.readouterr().err


def test_interrupted_build_leaves_nothing(tmp_path, monkeypatch):
    calls = []
    real = demo.render_image

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(demo, "render_image", failing)
    with pytest.raises(KeyboardInterrupt):
        demo.build(tmp_path / "t", n_train=3, n_val=1)
    assert list(tmp_path.iterdir()) == []
