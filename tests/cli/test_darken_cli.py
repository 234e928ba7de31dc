"""``tasklle darken`` and ``tasklle train-darkener`` from the command line."""
import json

import torch

from tasklle.cli import main
from tasklle.dataset_darkening import MANIFEST, REPORT
from tasklle.io import read_image, write_image


def _tree(root):
    for i, ev in enumerate(("0--Parade", "1--Handshaking")):
        img = torch.rand(3, 40, 56) * 0.5 + 0.4
        write_image(root / f"WIDER_val/images/{ev}/{ev}_{i}.jpg", img)
    (root / "wider_face_split").mkdir(parents=True)
    (root / "wider_face_split/wider_face_val_bbx_gt.txt").write_text(
        "0--Parade/0--Parade_0.jpg\n0\n0 0 0 0 0 0 0 0 0 0 \n")
    return root


def test_darken_tree(tmp_path, capsys):
    src = _tree(tmp_path / "src")
    rc = main(["darken", str(src), str(tmp_path / "dst"), "--exposure", "0.1", "--noise", "none", "--workers", "1"])
    assert rc == 0
    dst = tmp_path / "dst"
    assert (dst / "wider_face_split/wider_face_val_bbx_gt.txt").read_bytes() == \
        (src / "wider_face_split/wider_face_val_bbx_gt.txt").read_bytes()
    man = json.loads((dst / MANIFEST).read_text())
    assert man["settings"]["exposure"] == [0.1, 0.1] and man["settings"]["noise"] is None
    assert len(man["images"]) == 2
    out = read_image(dst / "WIDER_val/images/0--Parade/0--Parade_0.jpg")
    assert abs(out.mean().item() - 0.1) < 0.03
    assert "2 images darkened" in capsys.readouterr().err


def test_darken_reports_bad_files_with_status_1(tmp_path, capsys):
    src = _tree(tmp_path / "src")
    (src / "WIDER_val/images/0--Parade/bad.jpg").write_bytes(b"garbage")
    rc = main(["darken", str(src), str(tmp_path / "dst"), "--workers", "1", "--seed", "5"])
    assert rc == 1
    err = capsys.readouterr().err
    assert "1 failed" in err and "bad.jpg" in err
    rep = json.loads((tmp_path / "dst" / REPORT).read_text())
    assert rep["darkened"] == 2 and rep["failed"][0]["path"].endswith("bad.jpg")


def test_darken_single_image_and_errors(tmp_path, capsys):
    src = _tree(tmp_path / "src")
    img = src / "WIDER_val/images/0--Parade/0--Parade_0.jpg"
    assert main(["darken", str(img), str(tmp_path / "one.png"), "--exposure", "0.05", "0.3", "--seed", "1"]) == 0
    assert read_image(tmp_path / "one.png").shape == read_image(img).shape
    assert "E = " in capsys.readouterr().out
    assert main(["darken", str(src), str(tmp_path / "x"), "--exposure", "0.1", "0.2", "0.3"]) == 1
    assert main(["darken", str(tmp_path / "missing"), str(tmp_path / "x")]) == 1
    assert "error" in capsys.readouterr().err


def test_train_darkener_cli(tmp_path, capsys):
    data = tmp_path / "imgs"
    write_image(data / "a.png", torch.rand(3, 48, 48))
    args = ["train-darkener", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1",
            "--steps-per-epoch", "2", "--batch-size", "2", "--image-size", "32", "--w-tv", "5"]
    assert main(args) == 0
    assert (tmp_path / "run" / "ec_zero_dce.pt").is_file()
    assert "ec_zero_dce.pt" in capsys.readouterr().out
    assert main(args) == 1  # the checkpoint exists: --resume is required
    assert main(args + ["--resume"]) == 0


def test_darken_with_lednet_weights(tmp_path, capsys):
    from tasklle.models import ConditionZeroDCE

    src = _tree(tmp_path / "src")
    torch.manual_seed(0)
    torch.save(ConditionZeroDCE().state_dict(), tmp_path / "ce_zerodce.pth")
    # LEDNet's darkener without its weights: a clear error
    assert main(["darken", str(src), str(tmp_path / "x"), "--darkener", "lednet"]) == 1
    assert "ce_zerodce.pth" in capsys.readouterr().err
    rc = main(["darken", str(src), str(tmp_path / "dst"), "--darkener", "lednet", "--weights",
               str(tmp_path / "ce_zerodce.pth"), "--workers", "1", "--exposure", "0.1"])
    assert rc == 0
    man = json.loads((tmp_path / "dst" / MANIFEST).read_text())
    assert man["settings"]["darkener"] == "lednet" and man["settings"]["model_options"]["channel_order"] == "bgr-as-rgb"
    assert len(man["images"]) == 2
