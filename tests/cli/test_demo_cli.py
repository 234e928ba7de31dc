"""`tasklle demo --budget tiny` runs the whole pipeline end to end and tells
the user where the results are; `tasklle experiment` and `tasklle train-joint`
parse and fail cleanly."""
import json

from tasklle.cli import main


def test_demo_tiny(tmp_path, tmp_path_factory, monkeypatch, capsys):
    # one cache per test session: the tiny dataset and its dark copy are made once
    monkeypatch.setenv("TASKLLE_CACHE", str(tmp_path_factory.getbasetemp() / "tasklle-cache"))
    monkeypatch.setenv("TASKLLE_PROGRESS", "0")
    out = tmp_path / "demo"
    assert main(["demo", "--budget", "tiny", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| low-light |" in text and "| original |" in text
    assert "results.json" in text
    assert "joint training vs Zero-DCE++ alone" in text
    res = json.loads((out / "results.json").read_text())
    assert set(res["groups"]) == {"low-light", "zero-dce++", "joint", "original"}


def test_train_joint_and_experiment_errors(tmp_path, capsys):
    assert main(["train-joint", "--data", str(tmp_path / "missing"), "--w-down", "0", "--steps", "1",
                 "--out", str(tmp_path / "o")]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["experiment", "ratio-sweep", "--root", str(tmp_path), "--ratios", "0:0"]) == 1
