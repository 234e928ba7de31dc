"""The four trainers share one shape (tasklle.train.run): short functions, one
result type, one run-length vocabulary, TypeError / ValueError by the rule,
positive learning rates, grad_clip None = no clipping, the renamed arguments
still accepted with a DeprecationWarning, and Ctrl-C / SIGTERM save the run."""
import ast
import os
import signal
from pathlib import Path

import pytest
import torch

import tasklle.train
from tasklle.train import run as R

TRAIN_DIR = Path(tasklle.train.__file__).resolve().parent


def test_no_function_under_train_is_longer_than_80_lines():
    long = []
    for path in sorted(TRAIN_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 80:
                    long.append(f"{path.name}:{node.name} ({n} lines)")
    assert not long, long


def test_check_int_and_check_float_raise_by_the_rule():
    for bad in ("3", 2.0, True, None):
        with pytest.raises(TypeError, match="steps"):
            R.check_int(bad, "steps")
    with pytest.raises(ValueError, match="steps"):
        R.check_int(0, "steps")
    assert R.check_int(None, "x", none_ok=True) is None
    for bad in ("1e-3", True, None, [1.0]):
        with pytest.raises(TypeError, match="lr"):
            R.check_float(bad, "lr", positive=True)
    for bad in (0.0, -1e-3, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="lr"):
            R.check_float(bad, "lr", positive=True)
    assert R.check_grad_clip(None) is None and R.check_grad_clip(1) == 1.0
    with pytest.raises(ValueError, match="grad_clip"):
        R.check_grad_clip(0)


def test_run_length_vocabulary():
    assert R.run_length(None, 3, 7) == 21 and R.run_length(5, None, 7) == 5
    assert R.run_length(None, None, 7, default_epochs=2) == 14
    assert R.run_length(None, None, 7, default_steps=1000) == 1000
    with pytest.raises(ValueError, match="not both"):
        R.run_length(5, 3, 7)
    assert R.stop_step(10, None) == 10 and R.stop_step(10, 4) == 4 and R.stop_step(10, 40) == 10


def test_train_result_reads_like_the_old_dicts():
    m = torch.nn.Linear(1, 1)
    res = R.TrainResult(Path("o"), m, {"a": 1}, Path("o/final.pt"), [{"step": 1}], {"skipped": []})
    assert res["model"] is m and res["out"] == res.run_dir == Path("o") and res["history"] == res.rows
    assert res["final"] == Path("o/final.pt") and res["skipped"] == [] and "skipped" in res
    with pytest.raises(KeyError):
        res["nothing"]


def test_settings_must_match_their_declaration(tmp_path):
    run = R.RunFolder(tmp_path, "x")
    with pytest.raises(RuntimeError, match="declaration"):
        run.open({"lr": 1.0, "extra": 2}, {"lr": R.FIXED}, resume=False)


@pytest.fixture
def images(tmp_path):
    from tasklle.io import write_image

    g = torch.Generator().manual_seed(0)
    for k in range(4):
        write_image(tmp_path / "imgs" / f"{k}.png", torch.rand(3, 24, 24, generator=g) * 0.3)
    return tmp_path / "imgs"


def _calls(images, tmp_path):
    """One tiny call of each trainer, by name (keyword arguments over)."""
    from tasklle.train.darkener import train_darkener
    from tasklle.train.detector import train_detector
    from tasklle.train.joint import joint
    from tasklle.train.upstream import train_upstream

    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return {"image": torch.rand(3, 32, 32), "boxes": torch.tensor([[4.0, 4.0, 20.0, 20.0]]),
                    "ignore": torch.zeros(1, dtype=torch.bool)}

    return {
        "upstream": lambda out, **kw: train_upstream(images, out, **{**dict(batch_size=2, image_size=16,
                                                                               show_progress=False), **kw}),
        "darkener": lambda out, **kw: train_darkener("builtin", out, **{**dict(
            batch_size=1, image_size=16, steps_per_epoch=1, evaluate=False, show_progress=False), **kw}),
        "detector": lambda out, **kw: train_detector(dataset=Items(), out=out, **{**dict(
            batch_size=2, warmup_iters=0, show_progress=False), **kw}),
        "joint": lambda out, **kw: joint(Items(), None, out, **{**dict(
            w_down=0.0, batch_size=2, image_size=16, crop="resize", show_progress=False, verbose=False,
            plot=False), **kw}),
    }


@pytest.mark.parametrize("name", ["upstream", "darkener", "detector", "joint"])
def test_every_trainer_speaks_the_same_vocabulary(name, images, tmp_path, one_thread):
    call = _calls(images, tmp_path)[name]
    for lr in (0.0, -1e-3):
        with pytest.raises(ValueError, match="lr"):
            call(tmp_path / f"lr{lr}", lr=lr, steps=1)
    with pytest.raises(TypeError, match="lr"):
        call(tmp_path / "lrs", lr="1e-3", steps=1)
    with pytest.raises(TypeError, match="batch_size"):
        call(tmp_path / "bs", batch_size=2.0, steps=1)
    with pytest.raises(ValueError, match="grad_clip"):
        call(tmp_path / "gc", grad_clip=0, steps=1)
    with pytest.raises(ValueError, match="not both"):
        call(tmp_path / "both", steps=1, epochs=1)
    res = call(tmp_path / "run", steps=2, grad_clip=None)
    assert isinstance(res, R.TrainResult) and res.run_dir == tmp_path / "run" and not res.model.training
    assert res.final is not None and res.final.is_file() and res["model"] is res.model
    assert (tmp_path / "run" / "log.csv").is_file() and (tmp_path / "run" / "log.json").is_file()
    # max_steps: a checkpoint, no final model; resuming finishes the run
    part = call(tmp_path / "part", steps=2, max_steps=1)
    assert part.final is None and (tmp_path / "part" / "checkpoint.pt").is_file()
    assert call(tmp_path / "part", steps=2, resume=True).final is not None


def test_renamed_arguments_still_work(images, tmp_path, one_thread):
    calls = _calls(images, tmp_path)
    with pytest.warns(DeprecationWarning) as seen:
        res = calls["detector"](tmp_path / "d", epochs=2, max_iters=1, workers=0)
    assert {"'max_iters'", "'workers'"} <= {w for r in seen for w in str(r.message).split() if w.startswith("'")}
    assert res.final is None and res.summary["steps"] == 1
    with pytest.warns(DeprecationWarning, match="'log'"):
        calls["upstream"](tmp_path / "u", steps=1, log=False)
    assert not (tmp_path / "u" / "loss_curve.png").exists()
    with pytest.raises(TypeError, match="unexpected keyword"):
        calls["upstream"](tmp_path / "v", steps=1, lg=False)


def test_sigterm_saves_and_stops(images, tmp_path, one_thread, monkeypatch):
    """SIGTERM inside the loop: the last finished step is saved, KeyboardInterrupt propagates."""
    import tasklle.train.joint_step as js

    real = js.Step.__call__
    seen = []

    def term_at_step_2(self, images, targets, step):
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        seen.append(step)
        return real(self, images, targets, step)

    monkeypatch.setattr(js.Step, "__call__", term_at_step_2)
    with pytest.raises(KeyboardInterrupt):
        _calls(images, tmp_path)["joint"](tmp_path / "j", steps=5, checkpoint_every=100)
    from tasklle.io import load_checkpoint

    assert load_checkpoint(tmp_path / "j" / "checkpoint.pt")["step"] == 2
    assert signal.getsignal(signal.SIGTERM) is not None  # the old handler is back
