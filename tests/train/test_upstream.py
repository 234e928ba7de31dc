"""Zero-DCE++ upstream training on a folder of tiny generated images: runs,
lowers the loss, skips unreadable files, and resumes after an interruption to
the same final weights as an uninterrupted run."""
import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from tasklle.train import train_upstream


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for k in range(24):
        sub = root / ("a" if k % 2 else "b")
        sub.mkdir(exist_ok=True)
        h, w = rng.integers(40, 90, size=2)
        base = rng.uniform(0.03, 0.25, size=3)  # dark, slightly coloured
        img = base + 0.08 * rng.random((h, w, 3))
        Image.fromarray((img.clip(0, 1) * 255).astype(np.uint8)).save(sub / f"im{k:02d}.png")
    (root / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return root


def _kw(**over):
    kw = dict(batch_size=4, image_size=32, epochs=2, seed=3, lr=1e-3, show_progress=False, checkpoint_every=5)
    kw.update(over)
    return kw


def test_trains_lowers_loss_and_writes_outputs(image_dir, tmp_path):
    res = train_upstream(image_dir, tmp_path / "run", **_kw(epochs=3))
    hist = [r for r in res["history"] if r["images"]]
    assert len(res["history"]) == 3 * 7  # 25 files -> 7 batches per epoch
    first = np.mean([r["total"] for r in hist[:3]])
    last = np.mean([r["total"] for r in hist[-3:]])
    assert last < first
    assert res["skipped"] == [str(image_dir / "b" / "broken.jpg")]
    out = tmp_path / "run"
    for name in ("checkpoint.pt", "final.pt", "log.csv", "loss_curve.png", "log.json"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader(open(out / "log.csv")))
    assert len(rows) == 21 and set(rows[0]) >= {"step", "total", "spa", "exp", "col", "tv"}
    summary = json.loads((out / "log.json").read_text())["summary"]
    assert summary["finished"] and summary["skipped"] == res["skipped"]
    from tasklle.models import ZeroDCEPP

    loaded = ZeroDCEPP.load(out / "final.pt")
    for k, v in res["model"].state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    assert (out / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_after_interruption_matches_uninterrupted(image_dir, tmp_path):
    full = train_upstream(image_dir, tmp_path / "full", **_kw())
    part = train_upstream(image_dir, tmp_path / "part", **_kw(max_steps=9))  # "interrupted" mid-epoch 2
    assert part["final"] is None and len(part["history"]) == 9
    with pytest.raises(ValueError, match="resume"):
        train_upstream(image_dir, tmp_path / "part", **_kw())
    with pytest.raises(ValueError, match="batch_size"):
        train_upstream(image_dir, tmp_path / "part", **_kw(batch_size=5, resume=True))
    resumed = train_upstream(image_dir, tmp_path / "part", **_kw(resume=True))
    assert resumed["final"] is not None
    assert [r["step"] for r in resumed["history"]] == list(range(1, 15))
    for a, b in zip(full["history"], resumed["history"]):
        assert a["total"] == b["total"] or (np.isnan(a["total"]) and np.isnan(b["total"]))
    for k, v in full["model"].state_dict().items():
        assert torch.equal(resumed["model"].state_dict()[k], v), k


def test_bad_arguments(image_dir, tmp_path):
    with pytest.raises(FileNotFoundError):
        train_upstream(tmp_path / "nothing", tmp_path / "o", show_progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image"):
        train_upstream(tmp_path / "empty", tmp_path / "o", show_progress=False)
    with pytest.raises(ValueError, match="model"):
        train_upstream(image_dir, tmp_path / "o", model="unet", show_progress=False)
    with pytest.raises(ValueError, match="image_size"):
        train_upstream(image_dir, tmp_path / "o", image_size=8, show_progress=False)


def test_zero_dce_variant_runs(image_dir, tmp_path):
    res = train_upstream(image_dir, tmp_path / "dce", **_kw(model="zero-dce", epochs=1, max_steps=2))
    assert len(res["history"]) == 2 and np.isfinite(res["history"][0]["total"])


def test_recipes(image_dir, tmp_path):
    """Default: the report's plain Adam; 'zero-dce++': the official weight decay 1e-4 and clip 0.1."""
    res = train_upstream(image_dir, tmp_path / "m", **_kw(epochs=1, max_steps=1))
    cfg = json.loads((tmp_path / "m" / "log.json").read_text())["config"]
    assert cfg["recipe"] == "method" and cfg["weight_decay"] == 0.0 and cfg["grad_clip"] is None
    assert "no gradient clipping" in cfg["optimizer"]
    train_upstream(image_dir, tmp_path / "z", **_kw(epochs=1, max_steps=1, recipe="zero-dce++"))
    cfg = json.loads((tmp_path / "z" / "log.json").read_text())["config"]
    assert cfg["weight_decay"] == 1e-4 and cfg["grad_clip"] == 0.1
    # an explicit value overrides the recipe's (None: no clipping, as in every trainer)
    train_upstream(image_dir, tmp_path / "o", **_kw(epochs=1, max_steps=1, recipe="zero-dce++", grad_clip=None))
    assert json.loads((tmp_path / "o" / "log.json").read_text())["config"]["grad_clip"] is None
    assert len(res["history"]) == 1


def test_resume_policy(image_dir, tmp_path):
    """The shared policy (tasklle.train.run): an existing checkpoint without resume is refused and left
    as it was; resuming with a changed fixed setting is a ResumeMismatch."""
    from tasklle.train.run import CheckpointExists, ResumeMismatch

    train_upstream(image_dir, tmp_path, **_kw(epochs=1, max_steps=2))
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(CheckpointExists, match="resume"):
        train_upstream(image_dir, tmp_path, **_kw(epochs=1))
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    with pytest.raises(ResumeMismatch, match="lr differs"):
        train_upstream(image_dir, tmp_path, **_kw(epochs=1, lr=2e-3, resume=True))
