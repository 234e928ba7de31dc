"""The writers of tasklle.data.wider_format: annotation txt and ground-truth
.mat files read back by the strict readers, in the official structure."""
import numpy as np
import pytest

from tasklle.data import wider_format as wf


def _records():
    return [
        {"path": "0--A/a1.jpg", "boxes": np.array([[1, 2, 30, 40], [5.5, 6, 7.25, 8]]),
         "attributes": np.array([[2, 0, 1, 0, 2, 1], [0, 1, 0, 1, 0, 0]])},
        {"path": "0--A/a2.jpg", "boxes": np.zeros((0, 4)), "attributes": np.zeros((0, 6), int)},
        {"path": "1--B/b1.jpg", "boxes": np.array([[0, 0, -1, 3]]), "attributes": np.zeros((1, 6), int)},
    ]


@pytest.mark.parametrize("zero_face_count", [0, 1])
def test_annotations_round_trip(tmp_path, zero_face_count):
    path = wf.write_wider_annotations(tmp_path / "x_bbx_gt.txt", _records(), zero_face_count)
    back, report = wf.read_wider_annotations(path, return_report=True)
    assert [r["path"] for r in back] == [r["path"] for r in _records()]
    for got, want in zip(back, _records()):
        np.testing.assert_array_equal(got["boxes"], want["boxes"])
        np.testing.assert_array_equal(got["attributes"], want["attributes"])
    assert report[f"zero_face_count{zero_face_count}"] == 1 and report["faces"] == 3
    lines = path.read_text().splitlines()
    assert lines[2] == "1 2 30 40 2 0 1 0 2 1 "  # integers without a decimal point, trailing space
    assert lines[3] == "5.5 6 7.25 8 0 1 0 1 0 0 "


def test_annotation_writer_refuses_bad_records():
    with pytest.raises(ValueError, match="image_path"):
        wf.format_annotation_record("a b.jpg", np.zeros((0, 4)), np.zeros((0, 6)))
    with pytest.raises(ValueError, match="2 boxes but 1 attribute rows"):
        wf.format_annotation_record("e/a.jpg", np.zeros((2, 4)), np.zeros((1, 6)))
    with pytest.raises(ValueError, match="finite"):
        wf.format_annotation_record("e/a.jpg", np.full((1, 4), np.nan), np.zeros((1, 6)))
    with pytest.raises(ValueError, match="zero_face_count"):
        wf.format_annotation_record("e/a.jpg", np.zeros((0, 4)), np.zeros((0, 6)), zero_face_count=2)


def _images():
    return [("0--A", "a1", np.array([[1, 2, 30, 40], [5, 6, 7, 8]])), ("0--A", "a2", np.zeros((1, 4))),
            ("1--B", "b1", np.array([[0.5, 1, 2, 3.25]]))]


KEEP = {"easy": [[1], [], []], "hard": [[1, 2], [], [1]]}


def test_ground_truth_round_trip_and_fixed_bytes(tmp_path):
    a = wf.write_ground_truth(tmp_path / "a", _images(), KEEP)
    b = wf.write_ground_truth(tmp_path / "b", _images(), KEEP)
    for name in ("wider_face_val.mat", "wider_easy_val.mat", "wider_hard_val.mat"):
        assert (a / name).read_bytes() == (b / name).read_bytes()  # no time stamp in the header
    gt = wf.load_ground_truth(a, settings=("easy", "hard"))
    assert gt.keys() == [("0--A", "a1"), ("0--A", "a2"), ("1--B", "b1")]
    np.testing.assert_array_equal(gt.boxes, np.concatenate([b for _, _, b in _images()]))  # float boxes exact
    assert gt.counted["hard"].tolist() == [True, True, False, True]
    assert gt.n_faces("easy") == 1


def test_ground_truth_structure_and_attributes(tmp_path):
    import scipy.io

    attrs = [np.array([[1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0]]), np.zeros((1, 6)), np.zeros((1, 6))]
    images = _images()[:2]
    out = wf.write_ground_truth(tmp_path, images, {"hard": [[1], []]}, attributes=attrs[:2], creator="me")
    m = scipy.io.loadmat(str(out / "wider_hard_val.mat"))
    assert m["__header__"].startswith(b"MATLAB 5.0 MAT-file, Platform: posix, Created by: me")
    assert m["face_bbx_list"][0, 0][0, 0].dtype == np.int32  # integral boxes as in the official files
    assert m["invalid_label_list"][0, 0][0, 0].ravel().tolist() == [0, 1]
    assert m["gt_list"][0, 0][0, 0].dtype == np.uint8 and m["gt_list"][0, 0][1, 0].shape == (0, 0)


def test_ground_truth_writer_refuses_bad_input(tmp_path):
    with pytest.raises(ValueError, match="contiguous"):
        wf.write_ground_truth(tmp_path, [("A", "a", np.zeros((0, 4))), ("B", "b", np.zeros((0, 4))),
                                         ("A", "c", np.zeros((0, 4)))], {"hard": [[], [], []]})
    with pytest.raises(ValueError, match=r"keep\['hard'\] has 1 entries for 3 images"):
        wf.write_ground_truth(tmp_path, _images(), {"hard": [[]]})
    with pytest.raises(ValueError, match="unknown setting"):
        wf.write_ground_truth(tmp_path, _images(), {"extreme": [[], [], []]})
    with pytest.raises(ValueError, match="integers >= 1"):
        wf.write_ground_truth(tmp_path, _images(), {"hard": [[0], [], []]})
    with pytest.raises(ValueError, match="finite"):
        wf.write_ground_truth(tmp_path, [("A", "a", np.full((1, 4), np.inf))], {"hard": [[]]})
    with pytest.raises(ValueError, match="2 boxes but 1 attribute rows"):
        wf.write_ground_truth(tmp_path, _images(), KEEP, attributes=[np.zeros((1, 6))] * 3)
