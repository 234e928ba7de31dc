"""``tasklle experiment real-dark`` end to end on a generated DARK FACE tree (release layout),
with two tiny untrained Zero-DCE++ checkpoints in the trainers' format and the shipped lite
detector: every group is detected and scored, the results carry intervals and paired
differences, the prediction folders rescore to the same AP through ``tasklle evaluate
--darkface``, and a rerun resumes."""
import json
import sys
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
from darkface_testutil import make_tree  # noqa: E402

from tasklle.cli import main  # noqa: E402
from tasklle.eval import darkface  # noqa: E402
from tasklle.io import save_checkpoint  # noqa: E402
from tasklle.models import ZeroDCEPP  # noqa: E402


def _checkpoint(path, seed):
    import torch

    torch.manual_seed(seed)
    model = ZeroDCEPP().init_weights()
    save_checkpoint(path, {"format": "tasklle.zero_dce_pp/1", "kind": "ZeroDCEPP", "scale_factor": 1,
                           "config": {}, "model": model.state_dict()})
    return path


def test_real_dark_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TASKLLE_PROGRESS", "0")
    labels = make_tree(tmp_path / "df", n_images=4)
    up, jt = _checkpoint(tmp_path / "up.pt", 0), _checkpoint(tmp_path / "joint.pt", 1)
    out = tmp_path / "rd"
    argv = ["experiment", "real-dark", "--root", str(tmp_path / "df"), "--upstream", str(up), "--joint", str(jt),
            "--out", str(out), "--score-thr", "0.05", "--no-progress"]
    assert main(argv) == 0
    res = json.loads((out / "results.json").read_text())
    assert list(res["groups"]) == ["dark", "zero-dce++", "joint"]
    assert res["n_faces"] == sum(len(b) for b in labels.values()) and res["n_images"] == 4
    for g, v in res["groups"].items():
        assert 0.0 <= v["ci"][0] <= v["ci"][1] <= 1.0
        # the prediction folder is in the tools' format (one file per image) and rescores to the same AP
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # every image has its prediction file
            again = darkface.evaluate(out / "groups" / g / "predictions", tmp_path / "df")
        assert again["ap"] == v["ap"]
        stats = res["no_reference"][g]
        assert set(stats) == {"exposure", "dark_fraction", "clipped_fraction", "blur"}
        assert len(stats["exposure"]["per_image"]) == 4
        assert stats["exposure"]["ci"][0] <= stats["exposure"]["mean"] <= stats["exposure"]["ci"][1]
    assert res["no_reference"]["dark"]["exposure"]["mean"] < 0.2
    assert set(res["differences"]) == {"zero-dce++ - dark", "joint - dark"}
    for k, d in res["differences"].items():
        g = k.split(" - ")[0]
        assert d["ap"] == pytest.approx(res["groups"][g]["ap"] - res["groups"]["dark"]["ap"])
        assert d["ci"][0] <= d["ci"][1]
        assert d["verdict"] in (f"{g} better (interval excludes 0)", f"{g} worse (interval excludes 0)",
                                "not distinguishable")
    text = (out / "results.md").read_text()
    assert "| joint - dark |" in text and "No-reference statistics" in text
    assert (out / "pr_curves.png").is_file()
    # tasklle evaluate --darkface on one group's folder prints the same AP
    capsys.readouterr()
    assert main(["evaluate", "--darkface", str(tmp_path / "df"), str(out / "groups" / "dark" / "predictions"),
                 "--json", str(tmp_path / "e.json"), "--plot", str(tmp_path / "e.png")]) == 0
    assert f"AP {res['groups']['dark']['ap']:.4f}" in capsys.readouterr().out
    assert json.loads((tmp_path / "e.json").read_text())["ap"] == pytest.approx(res["groups"]["dark"]["ap"])
    assert (tmp_path / "e.png").is_file()
    # a rerun reuses every stage and gives the same table
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("stage.json")}
    assert len(stamps) == 6  # detection + statistics of three groups
    assert main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("stage.json")} == stamps
    assert json.loads((out / "results.json").read_text())["groups"] == res["groups"]


def test_real_dark_and_evaluate_darkface_argument_errors(tmp_path, capsys):
    assert main(["experiment", "real-dark"]) == 1
    assert "real-dark needs --root" in capsys.readouterr().err
    make_tree(tmp_path / "df", n_images=2)
    assert main(["evaluate", "--darkface", str(tmp_path / "df"), str(tmp_path), "extra"]) == 1
    assert "give only PRED_DIR" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path)]) == 1
    assert "GT_DIR is missing" in capsys.readouterr().err
