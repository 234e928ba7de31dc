"""The real-WIDER-FACE path as a user runs it, on a tiny tree in the official
layout: ``WIDER_{train,val}/images/<event>/<name>.jpg``, ``wider_face_split/``
(annotation txt and wider_face_val.mat, as wider_face_split.zip has them) and
the evaluation ground truth in a separate folder (as eval_tools.zip's
``ground_truth/``), a randomly initialised full TinaFace saved as a vedadet
checkpoint: darken -> four groups -> ratio sweep -> results, from the command
line. The val ground truth is the real one restricted to two images when
../shared has it, generated otherwise."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tasklle.cli import main
from tasklle.data import wider_format
from tasklle.io import write_image

# the real ground truth, when this checkout sits beside the project's shared data (as conftest.py finds it)
_SHARED = Path(os.environ.get("TASKLLE_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
WIDER_GT = _SHARED / "data" / "wider_face_gt"

# two real val images with small face extents (so the generated images stay small)
REAL_VAL = [("41--Swimming", "41_Swimming_Swimmer_41_56"),
            ("47--Matador_Bullfighter", "47_Matador_Bullfighter_Matador_Bullfighter_47_636")]


def _image(h, w, boxes, seed):
    """A grey noisy picture with brighter blobs where the faces are."""
    g = torch.Generator().manual_seed(seed)
    img = 0.35 + 0.1 * torch.rand(3, h, w, generator=g)
    for x, y, bw, bh in boxes:
        x, y = int(x), int(y)
        img[:, y:y + max(1, int(bh)), x:x + max(1, int(bw))] = 0.8
    return img


def _annotation(entries):
    """wider_face_*_bbx_gt.txt text: path, count, one 'x y w h' + six attributes line per face."""
    lines = []
    for event, name, boxes in entries:
        lines.append(f"{event}/{name}.jpg")
        lines.append(str(len(boxes)))
        for b in boxes:
            lines.append(" ".join(str(int(v)) for v in b) + " 0 0 0 0 0 0 ")
    return "\n".join(lines) + "\n"


def _val_ground_truth():
    """[(event, name, boxes xywh)] and {setting: [1-based kept indices]}: the real files' content
    for REAL_VAL when ../shared has them, else made up."""
    if (WIDER_GT / "wider_face_val.mat").is_file():
        gt = wider_format.load_ground_truth(WIDER_GT)
        index = {gt.key(i): i for i in range(gt.n_images)}
        picks = sorted(index[k] for k in REAL_VAL)
        images = [(*gt.key(i), np.asarray(gt.image_boxes(i))) for i in picks]
        keep = {s: [np.asarray(gt.keep_index(s, i)) for i in picks] for s in gt.settings}
        return images, keep, "real"
    images = [("0--Parade", "0_Parade_marchingband_1_5", np.array([[20.0, 30, 40, 48], [100, 40, 12, 14]])),
              ("1--Handshaking", "1_Handshaking_Handshaking_1_7", np.array([[60.0, 50, 50, 60]]))]
    keep = {"easy": [np.array([1]), np.array([1])], "medium": [np.array([1, 2]), np.array([1])],
            "hard": [np.array([1, 2]), np.array([1])]}
    return images, keep, "generated"


@pytest.fixture(scope="module")
def wider_tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("real-wider")
    root = base / "WIDER"
    val, keep, kind = _val_ground_truth()
    val_entries = []
    for k, (event, name, boxes) in enumerate(val):
        b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        h = int(max(64, (b[:, 1] + b[:, 3]).max() + 16)) if len(b) else 64
        w = int(max(64, (b[:, 0] + b[:, 2]).max() + 16)) if len(b) else 64
        write_image(root / "WIDER_val" / "images" / event / f"{name}.jpg", _image(h, w, b, k))
        val_entries.append((event, name, b))
    train_entries = []
    for k in range(2):
        event = "0--Parade"
        name = f"0_Parade_marchingband_1_{100 + k}"
        b = np.array([[10.0 + 8 * k, 12, 30, 36], [60, 20, 24, 28]])
        write_image(root / "WIDER_train" / "images" / event / f"{name}.jpg", _image(80, 96, b, 10 + k))
        train_entries.append((event, name, b))
    split = root / "wider_face_split"
    split.mkdir(parents=True)
    (split / "wider_face_train_bbx_gt.txt").write_text(_annotation(train_entries))
    (split / "wider_face_val_bbx_gt.txt").write_text(_annotation(val_entries))
    # wider_face_split.zip holds wider_face_val.mat but not the easy/medium/hard lists
    full_gt = wider_format.write_ground_truth(base / "eval_tools" / "ground_truth", val, keep)
    (split / "wider_face_val.mat").write_bytes((full_gt / "wider_face_val.mat").read_bytes())
    # a full TinaFace, randomly initialised, saved the way vedadet saves its checkpoints
    from tasklle.models import TinaFace

    torch.manual_seed(0)
    det = TinaFace.full()
    torch.save({"meta": {"epoch": 1}, "state_dict": {"module." + k: v for k, v in det.state_dict().items()}},
               base / "tinaface_r50.pth")
    # a RetinaFace (ResNet-50 body), randomly initialised, saved as biubug6's train.py saves it
    # (DataParallel's module. prefix, a plain state_dict)
    from tasklle.models import RetinaFace

    torch.manual_seed(1)
    retina = RetinaFace("resnet50")
    torch.save({"module." + k: v for k, v in retina.state_dict().items()}, base / "Resnet50_Final.pth")
    return {"base": base, "root": root, "gt": base / "eval_tools" / "ground_truth", "kind": kind,
            "vedadet": base / "tinaface_r50.pth", "biubug6": base / "Resnet50_Final.pth", "val": val}


def test_missing_evaluation_files_are_explained(wider_tree, tmp_path, capsys):
    rc = main(["experiment", "four-groups", "--root", str(wider_tree["root"]), "--vedadet",
               str(wider_tree["vedadet"]), "--out", str(tmp_path / "x"), "--steps", "1", "--no-progress"])
    assert rc == 1
    err = capsys.readouterr().err
    for word in ("wider_easy_val.mat", "wider_medium_val.mat", "wider_hard_val.mat", "eval_tools.zip",
                 "ground_truth", "--gt"):
        assert word in err, word
    # failed before darkening anything
    assert not [p for p in wider_tree["root"].parent.iterdir() if p.name.startswith("WIDER-dark")]


def test_walk_through(wider_tree, tmp_path, one_thread, capsys):
    root, gt, ved = str(wider_tree["root"]), str(wider_tree["gt"]), str(wider_tree["vedadet"])
    dark = tmp_path / "WIDER-dark"
    # 1. darken, as a user would first (the method's default: no noise, saturated pixels kept)
    assert main(["darken", root, str(dark), "--workers", "1"]) == 0
    man = json.loads((dark / "darken_manifest.json").read_text())
    assert man["settings"]["noise"] is None and man["settings"]["keep_saturated"] is True
    assert (dark / "wider_face_split" / "wider_face_val.mat").is_file()
    common_args = ["--root", root, "--dark", str(dark), "--vedadet", ved, "--gt", gt, "--batch-size", "2",
                   "--image-size", "64", "--detect-scale", "0.25", "--score-thr", "0.001", "--max-val", "2",
                   "--figure-images", "1", "--no-progress"]
    # 2. four groups, training length in epochs (2 train images, batch 2: 1 step per epoch)
    out = tmp_path / "fg"
    assert main(["experiment", "four-groups", *common_args, "--epochs", "1", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["config"]["train"]["steps"] == 1
    if wider_tree["kind"] == "real":  # the real files' faces, restricted to the two images
        assert wider_format.load_ground_truth(gt).n_faces("hard") >= 2
    assert res["detector"]["kind"] == "vedadet" and res["detector"]["parameters"] > 30_000_000
    assert res["darkening"]["noise"] is None and "no gradient clipping" in res["optimizer"]
    assert Path(res["config"]["gt_dir"]) == Path(gt)  # every val image used: the given folder itself
    for g in ("low-light", "zero-dce++", "joint", "original"):
        for s in ("easy", "medium", "hard"):
            v = res["groups"][g][s]
            assert v is None or 0.0 <= v <= 1.0
    assert "Table 4.1" in (out / "results.md").read_text()
    # the dark copy made in step 1 was reused, not remade
    man_after = json.loads((dark / "darken_manifest.json").read_text())
    assert man_after["images"] == man["images"]
    # 3. ratio sweep, vedadet-style integer prediction files
    out2 = tmp_path / "rs"
    assert main(["experiment", "ratio-sweep", *common_args, "--steps", "1", "--ratios", "1:0,2:1",
                 "--predictions", "vedadet-int", "--out", str(out2)]) == 0
    res2 = json.loads((out2 / "results.json").read_text())
    assert list(res2["ratios"]) == ["1:0", "2:1"] and res2["config"]["pred_format"] == "vedadet-int"
    files = sorted((out2 / "groups" / "2-1" / "predictions").rglob("*.txt"))
    assert len(files) == len(wider_tree["val"])
    rows = [line.split() for f in files for line in f.read_text().splitlines()[2:]]
    assert rows, "the random detector left no box above 0.001"
    for x, y, w, h, _ in rows:
        assert all(float(v) == int(float(v)) for v in (x, y, w, h))
    # 4. the results are readable where the user looks
    out_text = capsys.readouterr().out
    assert "results:" in out_text and str(out2 / "results.json") in out_text


def test_walk_through_with_retinaface(wider_tree, tmp_path, one_thread):
    """The same path with a biubug6 RetinaFace as the frozen detector (``--biubug6``), judged by
    the shipped one."""
    root, gt = str(wider_tree["root"]), str(wider_tree["gt"])
    out = tmp_path / "fg-retina"
    assert main(["experiment", "four-groups", "--root", root, "--dark", str(tmp_path / "WIDER-dark"),
                 "--biubug6", str(wider_tree["biubug6"]), "--judge", "retinaface-mobilenet0.25", "--gt", gt,
                 "--batch-size", "2", "--image-size", "64", "--steps", "1", "--max-val", "2",
                 "--figure-images", "0", "--resamples", "50", "--no-progress", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["detector"]["kind"] == "biubug6" and res["detector"]["class"] == "RetinaFace"
    assert res["detector"]["parameters"] > 27_000_000 and res["detector_name"] == "Resnet50_Final"
    assert list(res["groups_by_detector"]) == ["Resnet50_Final", "retinaface-mobilenet0.25"]
    # joint training ran against the RetinaFace: its L_down parts are RetinaFace's
    last = res["training"]["joint"]["summary"]["last"]
    assert last["loc"] is not None and last["conf"] is not None and last["cls"] is None
