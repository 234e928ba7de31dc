"""``tasklle enhance`` and ``tasklle train-upstream`` from the command line."""
import numpy as np
import pytest
import torch
from PIL import Image

from tasklle.cli import main
from tasklle.io import save_checkpoint
from tasklle.models import ZeroDCEPP


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "in"
    (src / "x").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(6):
        Image.fromarray((rng.random((32, 40, 3)) * 50).astype(np.uint8)).save(src / ("x" if k % 2 else ".") /
                                                                             f"{k}.png")
    return src


def test_enhance_cli_folder_with_corrupt_file(folder, tmp_path, capsys):
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "w.pt", {"model": ZeroDCEPP().init_weights().state_dict(), "scale_factor": 1})
    assert main(["enhance", str(folder), str(tmp_path / "out"), "--weights",
                 str(tmp_path / "w.pt"), "--no-progress"]) == 0
    assert len(list((tmp_path / "out").rglob("*.png"))) == 6
    assert "enhanced 6 image(s)" in capsys.readouterr().out
    (folder / "x" / "bad.png").write_bytes(b"garbage")
    assert main(["enhance", str(folder), str(tmp_path / "out"), "--weights", str(tmp_path / "w.pt"),
                 "--no-progress"]) == 1
    cap = capsys.readouterr()
    assert "6 already there" in cap.out and "1 failed" in cap.out and "bad.png" in cap.err


def test_enhance_cli_errors(folder, tmp_path, capsys):
    assert main(["enhance", str(folder), str(tmp_path / "out"), "--weights", str(tmp_path / "missing.pt"),
                 "--no-progress"]) == 1
    assert "missing.pt" in capsys.readouterr().err


def test_enhance_cli_official(folder, tmp_path, zero_dce_pp_weights):
    out = tmp_path / "one.png"
    assert main(["enhance", str(folder / "0.png"), str(out), "--weights", str(zero_dce_pp_weights), "--official",
                 "--no-progress"]) == 0
    assert np.asarray(Image.open(out)).shape == (32, 40, 3)


def test_train_upstream_cli_runs_and_resumes(folder, tmp_path, capsys):
    args = ["train-upstream", "--data", str(folder), "--out", str(tmp_path / "run"),
            "--epochs", "2", "--batch-size", "3", "--image-size", "16", "--no-progress"]
    assert main(args + ["--max-steps", "2"]) == 0
    assert "continue with --resume" in capsys.readouterr().out
    assert main(args) == 1  # refuses to overwrite the checkpoint without --resume
    assert main(args + ["--resume"]) == 0
    assert (tmp_path / "run" / "final.pt").is_file()
    assert "wrote" in capsys.readouterr().out
