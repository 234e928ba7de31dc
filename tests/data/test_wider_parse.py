"""WIDER FACE annotation parsing, the WiderFace Dataset and collate."""
import functools

import numpy as np
import pytest
import torch
from PIL import Image

from tasklle.data import WiderFace, collate, read_wider_annotations
from tasklle.data.wider import ignore_mask, xywh_to_xyxy
from tasklle.data.wider_format import ATTRIBUTE_NAMES


# ------------------------------------------------------------------------------------------ real file


@functools.lru_cache(maxsize=1)
def _read_real(path):
    return read_wider_annotations(path, return_report=True)


def test_real_val_annotations(wider_gt_dir):
    records, report = _read_real(wider_gt_dir / "wider_face_val_bbx_gt.txt")
    assert len(records) == 3226
    assert report["images"] == 3226
    assert report["rows"] == 39708
    # The val file spells its 4 zero-face images as count 1 + an all-zero row.
    assert report["zero_face_count1"] == 4
    assert report["zero_face_count0"] == 0
    assert report["faces"] == 39708 - 4 == sum(len(r["boxes"]) for r in records)
    assert report["nonpositive_size"] == 7
    assert report["invalid"] == 585
    assert report["trailing_space_lines"] == 39708
    assert report["duplicate_images"] == 0
    assert len({r["event"] for r in records}) == 61
    first = records[0]
    assert first["path"] == "0--Parade/0_Parade_marchingband_1_465.jpg"
    assert first["event"] == "0--Parade" and first["name"] == "0_Parade_marchingband_1_465"
    np.testing.assert_array_equal(first["boxes"][0], [345, 211, 4, 4])
    np.testing.assert_array_equal(first["attributes"][0], [2, 0, 0, 0, 2, 0])
    assert first["boxes"].shape == (126, 4) and first["attributes"].shape == (126, 6)


def test_real_val_annotations_agree_with_mat(wider_gt_dir):
    """The txt and the official wider_face_val.mat hold the same boxes and invalid flags."""
    import scipy.io

    records = {(r["event"], r["name"]): r for r in _read_real(wider_gt_dir / "wider_face_val_bbx_gt.txt")[0]}
    mat = scipy.io.loadmat(str(wider_gt_dir / "wider_face_val.mat"))
    n = 0
    for e in range(mat["event_list"].shape[0]):
        event = str(mat["event_list"][e, 0][0])
        files = mat["file_list"][e, 0]
        for i in range(files.shape[0]):
            rec = records[(event, str(files[i, 0][0]))]
            boxes = mat["face_bbx_list"][e, 0][i, 0].astype(np.float64)
            invalid = mat["invalid_label_list"][e, 0][i, 0].ravel()
            if len(rec["boxes"]) == 0:  # the .mat keeps the all-zero placeholder row
                assert boxes.shape == (1, 4) and not boxes.any()
            else:
                np.testing.assert_array_equal(boxes, rec["boxes"])
                np.testing.assert_array_equal(invalid, rec["attributes"][:, 3])
            n += 1
    assert n == len(records) == 3226


# ------------------------------------------------------------------------------------------ synthetic quirks


QUIRKY = (
    "\ufeff0--A/0_a_1.jpg \r\n"          # BOM, trailing space, CRLF
    "2 \r\n"
    "10 20 30 40 0 0 0 0 0 0 \r\n"
    "5 6 0 8 2 1 1 1 2 1 \r\n"            # w = 0, every attribute set
    "0--A/0_a_2.jpg\n"
    "0\n"                                  # train spelling of a zero-face image
    "0 0 0 0 0 0 0 0 0 0 \n"
    "1--B/1_b_1.jpg\n"
    "1\n"                                  # val spelling of a zero-face image
    "0 0 0 0 0 0 0 0 0 0 \n"
    "1--B/1_b_2.jpg\n"
    "0\n"                                  # count 0 without the placeholder row
    "1--B/1_b_3.jpg\n"
    "3\n"
    "1 2 3 4 0 0 0 1 0 0\n"                # invalid
    "7 8 -2 9 0 0 0 0 0 0\n"               # negative width
    "1.5 2.5 3.5 0.5 0 0 0 0 0 0\n"        # float box, h < 1
    "\n"
)


def test_synthetic_quirks(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_bytes(QUIRKY.encode("utf-8"))
    records, report = read_wider_annotations(path, return_report=True)
    assert [r["path"] for r in records] == ["0--A/0_a_1.jpg", "0--A/0_a_2.jpg", "1--B/1_b_1.jpg",
                                            "1--B/1_b_2.jpg", "1--B/1_b_3.jpg"]
    assert [len(r["boxes"]) for r in records] == [2, 0, 0, 0, 3]
    assert records[0]["line"] == 1 and records[4]["line"] == 13
    np.testing.assert_array_equal(records[0]["attributes"][1], [2, 1, 1, 1, 2, 1])
    np.testing.assert_allclose(records[4]["boxes"][2], [1.5, 2.5, 3.5, 0.5])
    assert records[1]["boxes"].shape == (0, 4) and records[1]["attributes"].shape == (0, 6)
    assert report["images"] == 5
    assert report["rows"] == 2 + 1 + 1 + 3
    assert report["faces"] == 5
    assert report["zero_face_count0"] == 1
    assert report["zero_face_count1"] == 1
    assert report["zero_face_count0_no_row"] == 1
    assert report["nonpositive_size"] == 2
    assert report["small_size"] == 3
    assert report["invalid"] == 2
    assert report["crlf_lines"] == 4
    assert report["blank_lines"] == 1
    assert report["trailing_space_lines"] >= 5


@pytest.mark.parametrize("text, line, match", [
    ("a/b.jpg\nx\n", 2, "number of faces"),
    ("a/b.jpg\n-1\n", 2, "non-negative"),
    ("a/b.jpg\n1\n1 2 3 4 0 0 0 0 0\n", 3, "expected 10 numbers"),
    ("a/b.jpg\n1\n1 2 3 4 0 0 0 0 0 0 0\n", 3, "expected 10 numbers"),
    ("a/b.jpg\n1\n1 2 3 4 0 0 0 0.5 0 0\n", 3, "integer attributes"),
    ("a/b.jpg\n1\n1 2 3 4 0 0 0 -1 0 0\n", 3, "non-negative"),
    ("a/b.jpg\n1\nnan 2 3 4 0 0 0 0 0 0\n", 3, "finite"),
    ("a/b.jpg\n3\n1 2 3 4 0 0 0 0 0 0\n", 4, "file ends inside image"),
    ("a/b.jpg\n", 2, "file ends after image path"),
    ("a/b.jpg\n1\n1 2 3 4 0 0 0 0 0 0\n1 2 3 4 0 0 0 0 0 0\n", 4, "expected an image path"),
    ("12\n1\n", 1, "expected an image path"),
    ("a/b.jpg\n0\n1 2 3 4 0 0 0 0 0 0\n", 3, "0 faces but is followed by a non-zero row"),
    ("a b.jpg\n0\n", 1, "expected an image path"),
    # overflow: ValueError with the line, never OverflowError
    ("a/b.jpg\n1\n1" + "0" * 30 + " 2 3 4 0 0 0 0 0 0\n", 3, None),  # 10^30 is a valid float64
    ("a/b.jpg\n1\n1" + "0" * 400 + " 2 3 4 0 0 0 0 0 0\n", 3, "float64 range"),
    ("a/b.jpg\n1\n1e400 2 3 4 0 0 0 0 0 0\n", 3, "finite"),
    ("a/b.jpg\n1\n1 2 3 4 0 0 0 9223372036854775808 0 0\n", 3, "int64"),
    # counts and numbers: ASCII digits only
    ("a/b.jpg\n+1\n1 2 3 4 0 0 0 0 0 0\n", 2, "number of faces"),
    ("a/b.jpg\n1_0\n1 2 3 4 0 0 0 0 0 0\n", 2, "number of faces"),
    ("a/b.jpg\n\u0661\n1 2 3 4 0 0 0 0 0 0\n", 2, "number of faces"),
    ("a/b.jpg\n1\n1_0 2 3 4 0 0 0 0 0 0\n", 3, "expected numbers"),
    # image paths that would leave the image folder
    ("../../etc/passwd\n0\n", 1, "stay inside"),
    ("/etc/passwd\n0\n", 1, "stay inside"),
    ("a/../../x.jpg\n0\n", 1, "stay inside"),
])
def test_malformed_files_name_file_and_line(tmp_path, text, line, match):
    path = tmp_path / "bad_gt.txt"
    path.write_text(text)
    if match is None:
        assert read_wider_annotations(path)[0]["boxes"][0, 0] == 1e30
        return
    with pytest.raises(ValueError, match=match) as info:
        read_wider_annotations(path)
    assert f"{path}:{line}:" in str(info.value)


def test_not_utf8_and_missing(tmp_path):
    path = tmp_path / "bin.txt"
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValueError, match="bin.txt"):
        read_wider_annotations(path)
    with pytest.raises(FileNotFoundError, match="nothere"):
        read_wider_annotations(tmp_path / "nothere.txt")


def test_empty_file_has_no_records(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("")
    assert read_wider_annotations(path) == []


def test_box_helpers():
    xyxy = xywh_to_xyxy(np.array([[10, 20, 5, 7], [1, 1, 0, 3]]))
    assert xyxy.dtype == np.float32
    np.testing.assert_array_equal(xyxy, [[10, 20, 15, 27], [1, 1, 1, 4]])
    attrs = np.zeros((4, 6), dtype=np.int64)
    attrs[1, ATTRIBUTE_NAMES.index("invalid")] = 1
    boxes = np.array([[0, 0, 5, 5], [0, 0, 5, 5], [0, 0, 0.5, 5], [0, 0, 5, -1]])
    np.testing.assert_array_equal(ignore_mask(boxes, attrs), [False, True, True, True])


# ------------------------------------------------------------------------------------------ Dataset


def _tree(root):
    """A two-image WIDER tree: one with three faces (one invalid, one degenerate), one without faces."""
    img_dir = root / "WIDER_val" / "images" / "0--A"
    img_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(img_dir / "0_a_1.png")
    Image.fromarray(rng.integers(0, 255, (30, 20, 3), dtype=np.uint8)).save(img_dir / "0_a_2.png")
    split = root / "wider_face_split"
    split.mkdir()
    (split / "wider_face_val_bbx_gt.txt").write_text(
        "0--A/0_a_1.png\n3\n"
        "1 2 10 12 1 0 0 0 0 0 \n"
        "20 5 8 9 0 0 0 1 0 0 \n"
        "30 6 0 4 0 0 1 0 0 1 \n"
        "0--A/0_a_2.png\n1\n0 0 0 0 0 0 0 0 0 0 \n")
    return root


def test_dataset_items(tmp_path):
    ds = WiderFace(_tree(tmp_path), "val")
    assert len(ds) == 2
    item = ds[0]
    assert set(item) == {"image", "boxes", "ignore", "attributes", "event", "name", "path"}
    assert item["image"].shape == (3, 40, 60) and item["image"].dtype == torch.float32
    assert 0 <= item["image"].min() and item["image"].max() <= 1
    assert item["boxes"].dtype == torch.float32
    torch.testing.assert_close(item["boxes"], torch.tensor([[1., 2., 11., 14.], [20., 5., 28., 14.],
                                                            [30., 6., 30., 10.]]))
    assert item["ignore"].dtype == torch.bool and item["ignore"].tolist() == [False, True, True]
    assert item["attributes"].dtype == torch.int64
    assert item["attributes"][2].tolist() == [0, 0, 1, 0, 0, 1]
    assert item["event"] == "0--A" and item["name"] == "0_a_1"
    assert item["path"].endswith("0--A/0_a_1.png")
    empty = ds[-1]
    assert empty["boxes"].shape == (0, 4) and empty["ignore"].shape == (0,)
    assert empty["attributes"].shape == (0, 6)
    assert ds.report["zero_face_count1"] == 1
    with pytest.raises(IndexError):
        ds[2]
    with pytest.raises(TypeError):
        ds["0"]


def test_dataset_transform_and_collate(tmp_path):
    calls = []

    def transform(item):
        calls.append(item["name"])
        out = dict(item)
        out["image"] = item["image"][:, :10, :10]
        return out

    ds = WiderFace(_tree(tmp_path), "val", transform=transform)
    batch = collate([ds[0], ds[1]])
    assert calls == ["0_a_1", "0_a_2"]
    assert [tuple(t.shape) for t in batch["images"]] == [(3, 10, 10), (3, 10, 10)]
    assert batch["name"] == ["0_a_1", "0_a_2"] and batch["event"] == ["0--A", "0--A"]
    assert [len(b) for b in batch["boxes"]] == [3, 0]
    assert [t["ignore"].tolist() for t in batch["targets"]] == [[False, True, True], []]
    assert "image" not in batch
    with pytest.raises(ValueError):
        collate([])
    with pytest.raises(TypeError):
        collate([{"boxes": 1}])


def test_dataset_errors(tmp_path):
    root = _tree(tmp_path)
    with pytest.raises(ValueError, match="split"):
        WiderFace(root, "test")
    with pytest.raises(FileNotFoundError, match="wider_face_train_bbx_gt.txt"):
        WiderFace(root, "train")
    with pytest.raises(TypeError, match="transform"):
        WiderFace(root, "val", transform=3)
    (root / "WIDER_val" / "images" / "0--A" / "0_a_2.png").unlink()
    ds = WiderFace(root, "val")
    with pytest.raises(FileNotFoundError, match="0_a_2.png"):
        ds[1]
