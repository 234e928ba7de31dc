"""train_darkener: outputs, exact resume, folder data, argument checks; the
shipped weights reproduce from the documented command (slow)."""
import json
import os
import subprocess
import sys

import pytest
import torch

import tasklle
import tasklle.train.darkener as td
from tasklle.io import load_checkpoint, write_image
from tasklle.train.run import TrainResult, read_csv
from tasklle.models.ec_zero_dce import WEIGHTS, ECZeroDCE

TINY = dict(epochs=2, steps_per_epoch=3, batch_size=2, image_size=32, checkpoint_every=2, log_every=1,
            evaluate=False)


def test_outputs_and_log(tmp_path, one_thread):
    res = td.train_darkener("builtin", tmp_path / "run", **TINY)
    assert isinstance(res, TrainResult) and res.final == tmp_path / "run" / "ec_zero_dce.pt"
    model = res.model
    assert isinstance(model, ECZeroDCE) and not model.training
    for name in ("checkpoint.pt", "log.csv", "log.json", "ec_zero_dce.pt"):
        assert (tmp_path / "run" / name).is_file()
    log = read_csv(tmp_path / "run" / "log.csv", td.LOG_FIELDS)
    assert log == json.loads((tmp_path / "run" / "log.json").read_text())["rows"] == res.rows
    assert [r["step"] for r in log] == list(range(1, 7))
    assert {"loss", "spa", "exp", "col", "tv", "lr", "epoch"} <= set(log[0])
    assert log[0]["lr"] > log[-1]["lr"]  # cosine decay
    loaded = ECZeroDCE.load(tmp_path / "run" / "ec_zero_dce.pt")
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 6


def test_resume_gives_the_uninterrupted_result(tmp_path, one_thread, monkeypatch):
    full = td.train_darkener("builtin", tmp_path / "full", **TINY).model
    real = td._random_crop
    calls = []

    def interrupt_in_step_4(*args):
        calls.append(1)
        if len(calls) == 3 * TINY["batch_size"] + 1:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(td, "_random_crop", interrupt_in_step_4)
    with pytest.raises(KeyboardInterrupt):
        td.train_darkener("builtin", tmp_path / "cut", **TINY)
    # Ctrl-C saves the state after the last finished step (3), as in every trainer
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["step"] == 3
    monkeypatch.setattr(td, "_random_crop", real)
    with pytest.raises(ValueError, match="resume"):
        td.train_darkener("builtin", tmp_path / "cut", **TINY)
    resumed = td.train_darkener("builtin", tmp_path / "cut", resume=True, **TINY).model
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
    assert [r["step"] for r in read_csv(tmp_path / "cut" / "log.csv", td.LOG_FIELDS)] == list(range(1, 7))


def test_folder_data_skips_corrupt_files(tmp_path, one_thread):
    data = tmp_path / "imgs"
    write_image(data / "a.png", torch.rand(3, 40, 50))
    write_image(data / "sub" / "b.jpg", torch.rand(3, 20, 20))  # smaller than a crop: upscaled
    (data / "broken.jpg").write_bytes(b"nope")
    td.train_darkener(data, tmp_path / "run", **TINY)
    assert (tmp_path / "run" / "ec_zero_dce.pt").is_file()


def test_argument_checks(tmp_path):
    with pytest.raises(FileNotFoundError):
        td.train_darkener(tmp_path / "missing", tmp_path / "o", **TINY)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        td.train_darkener(tmp_path / "empty", tmp_path / "o", **TINY)
    with pytest.raises(ValueError, match="exposure_range"):
        td.train_darkener("builtin", tmp_path / "o", exposure_range=(0.3, 0.1), **TINY)
    with pytest.raises(ValueError, match="weights"):
        td.train_darkener("builtin", tmp_path / "o", weights={"ssim": 1.0}, **TINY)
    with pytest.raises(ValueError, match="image_size"):
        td.train_darkener("builtin", tmp_path / "o", **dict(TINY, image_size=8))


def test_fidelity_helper_reports_every_exposure():
    torch.manual_seed(0)
    m = ECZeroDCE().init_weights()
    res = td.exposure_fidelity(m, [torch.rand(3, 48, 64)], exposures=(0.1, 0.2))
    assert set(res) == {"0.1", "0.2", "monotone"}
    assert set(res["0.1"]) == {"patch_mae", "patch_mae_max", "image_mae", "means"}
    assert res["monotone"] is True


@pytest.mark.slow
def test_shipped_weights_reproduce(tmp_path):
    """Rerun the documented command (weights/ec_zero_dce.md, about 3 minutes) and
    compare with the shipped file."""
    env = dict(os.environ, PYTHONPATH=str(WEIGHTS.parents[2]), TASKLLE_PROGRESS="0")
    subprocess.run([sys.executable, "-m", "tasklle", "--threads", "1", "train-darkener", "--data", "builtin",
                    "--out", str(tmp_path / "run"), "--epochs", "6", "--steps-per-epoch", "100", "--seed", "0"],
                   check=True, env=env)
    new = load_checkpoint(tmp_path / "run" / "ec_zero_dce.pt")
    shipped = load_checkpoint(WEIGHTS)
    assert new["config"] == shipped["config"]
    for k, v in shipped["state_dict"].items():
        torch.testing.assert_close(new["state_dict"][k], v, rtol=0, atol=5e-3)
    for e, r in shipped["extra"]["fidelity_heldout"].items():
        if e != "monotone":
            assert new["extra"]["fidelity_heldout"][e]["patch_mae"] == pytest.approx(r["patch_mae"], abs=2e-3)


def test_resume_policy(tmp_path, one_thread):
    """The shared policy (tasklle.train.run): an existing checkpoint without resume is refused and left
    as it was; resuming with a changed fixed setting is a ResumeMismatch."""
    from tasklle.train.run import CheckpointExists, ResumeMismatch

    kw = dict(TINY, epochs=1, steps_per_epoch=2)
    td.train_darkener("builtin", tmp_path, **kw)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(CheckpointExists, match="resume"):
        td.train_darkener("builtin", tmp_path, **kw)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    with pytest.raises(ResumeMismatch, match="zoom differs"):
        td.train_darkener("builtin", tmp_path, resume=True, **dict(kw, zoom=3.0))
