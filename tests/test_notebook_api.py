"""The public notebook API (help(tasklle)): every name it lists resolves, and each
function does what its docstring says on a tiny built-in dataset."""
import re

import numpy as np
import pytest
import torch

import tasklle


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("TASKLLE_CACHE", str(tmp_path_factory.getbasetemp() / "tasklle-cache"))
    try:
        yield tasklle.data.builtin(n_train=4, n_val=5, verbose=False)
    finally:
        mp.undo()


def test_help_lists_the_api_in_one_screen():
    doc = tasklle.__doc__
    api = doc.split("The notebook API", 1)[1].strip().splitlines()[1:]
    api = [line for line in api if line.strip()]
    assert len(doc.splitlines()) <= 40
    assert len(api) >= 15
    for line in api:
        for dotted in re.findall(r"(?:^|,\s*)([a-zA-Z_][\w.]*)\(", line):
            obj = tasklle
            for part in dotted.split("."):
                obj = getattr(obj, part)  # AttributeError: the docstring names something that is not there
            assert callable(obj), dotted
            assert obj.__doc__, f"{dotted} has no docstring"


def test_builtin_and_list_split(root):
    assert (root / "wider_face_split" / "wider_face_val.mat").is_file()
    assert tasklle.data.builtin(n_train=4, n_val=5, verbose=False) == root  # cached, same folder
    val = tasklle.data.builtin_split("val", n_train=4, n_val=5)
    assert len(val) == 5 and val[0]["image"].shape[0] == 3
    every = tasklle.data.list_split(root, "val")
    assert [(e, n) for _, e, n in every] == [(val[i]["event"], val[i]["name"]) for i in range(5)]
    some = tasklle.data.list_split(root, "val", max_images=3)
    assert len(some) == 3 and some == tasklle.data.list_split(root, "val", max_images=3)
    assert set(some) <= set(every)


def test_load_shipped_by_name():
    det = tasklle.models.load_shipped("tinaface-lite-demo")
    assert not det.training and not any(p.requires_grad for p in det.parameters())
    assert isinstance(tasklle.models.TinaFace.shipped(), tasklle.models.TinaFace)
    dark = tasklle.models.load_shipped("ec-zero-dce")
    assert isinstance(dark, tasklle.models.ECZeroDCE)
    with pytest.raises(ValueError, match="name must be one of"):
        tasklle.models.load_shipped("zero-dce++")
    with pytest.raises(FileNotFoundError, match="detector checkpoint not found"):
        tasklle.models.load_detector("/nonexistent/detector.pt")


def test_detect_split_evaluate_and_table(root, tmp_path):
    from tasklle.eval import wider
    from tasklle.models import ZeroDCEPP

    det = tasklle.models.load_shipped("tinaface-lite-demo")
    images = tasklle.data.list_split(root, "val", max_images=3)
    preds = tasklle.detect_split(det, root, "val", images=images, score_thr=0.05, show_progress=False,
                                 out=tmp_path / "pred")
    assert set(preds) == {(e, n) for _, e, n in images}
    for p in preds.values():
        assert p.dtype == np.float64 and p.ndim == 2 and p.shape[1] == 5
        assert (p[:, 2:4] >= 0).all()  # x, y, w, h
    again = wider.read_predictions(tmp_path / "pred")
    assert set(again) == set(preds)
    # the same images given as (event, name), and through an enhancer (any module tasklle.enhance takes)
    same = tasklle.detect_split(det, root, "val", images=[(e, n) for _, e, n in images], score_thr=0.05,
                                show_progress=False)
    assert all(np.array_equal(same[k], preds[k]) for k in preds)
    enh = tasklle.detect_split(det, root, "val", images=images[:1], score_thr=0.05, show_progress=False,
                               enhancer=ZeroDCEPP().init_weights())
    assert len(enh) == 1
    with pytest.raises(ValueError, match="images or max_images"):
        tasklle.detect_split(det, root, images=images, max_images=2)
    with pytest.raises(ValueError, match="pred_format"):
        tasklle.detect_split(det, root, pred_format="int")

    full = tasklle.eval.find_ground_truth(root)
    assert full == root / "wider_face_split"
    assert tasklle.eval.subset_ground_truth(full, tasklle.data.list_split(root, "val"), tmp_path / "x") == full
    gt = tasklle.eval.subset_ground_truth(full, images, tmp_path / "gt")
    assert gt == tmp_path / "gt"
    assert set(wider.load_ground_truth(gt).keys()) == set(preds)
    with pytest.raises(ValueError, match="not in the ground truth"):
        tasklle.eval.subset_ground_truth(full, [("0--Crowd", "no_such_image")], tmp_path / "bad")
    res = wider.evaluate(preds, gt)
    table = tasklle.eval.ap_table({"plain": res, "missing": {"easy": None, "medium": float("nan"), "hard": 0.5}})
    assert isinstance(table, str) and table.splitlines()[0] == "| group | easy | medium | hard |"
    assert table.splitlines()[3] == "| missing | n/a | n/a | 0.5000 |"
    assert table.rows[0] == {"group": "plain", "easy": res["easy"], "medium": res["medium"], "hard": res["hard"]}
    assert table._repr_markdown_() == str(table)
    with pytest.raises(ValueError, match="results"):
        tasklle.eval.ap_table([("a", 0.5)])


def test_joint_batches_are_what_joint_trains_on(root, tmp_path):
    from tasklle.train import JointBatches

    b = JointBatches.from_data(root, image_size=64, batch_size=2, seed=3)
    images, targets = b.batch(1)
    assert images.shape == (2, 3, 64, 64) and images.dtype == torch.float32
    assert all(t["boxes"].shape[1] == 4 and t["ignore"].dtype == torch.bool for t in targets)
    again, _ = JointBatches.from_data(root, image_size=64, batch_size=2, seed=3).batch(1)
    assert torch.equal(images, again)  # a step's batch depends only on (seed, step)
    other, _ = JointBatches.from_data(root, image_size=64, batch_size=2, seed=4).batch(1)
    assert not torch.equal(images, other)


def test_budget():
    b = tasklle.experiments.budget("tiny")
    b["steps"] = -1  # a copy
    assert tasklle.experiments.budget("tiny")["steps"] == 3
    with pytest.raises(ValueError, match="budget must be one of"):
        tasklle.experiments.budget("huge")
