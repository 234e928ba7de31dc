"""Joint training (tasklle.train.joint): the step runs and logs, the detector
stays bit-identical, L_down's gradient reaches the enhancer, W_down = 0 is
plain Zero-DCE++ training, and a resumed run equals an uninterrupted one."""
import csv
import json

import pytest
import torch
import torch.nn as nn

from tasklle.train.joint import (JointBatches, RunningRatio, joint, joint_losses, load_upstream, make_transform,
                                 state_dict_sha256)


class TinyDetector(nn.Module):
    """A stand-in following the detector protocol (tasklle.models.protocol): loss(images,
    targets) -> (total, parts), detect(images) (never called by joint training), freeze().

    The loss depends on the pixels inside the boxes, so its gradient w.r.t.
    the images is non-zero and box-dependent."""

    def __init__(self, cheat=False):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)
        self.cheat = cheat

    def freeze(self):
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def loss(self, images, targets):
        f = self.conv(images)
        cls = torch.sigmoid(f[:, 0]).mean()
        reg = images.new_zeros(())
        for b, t in enumerate(targets):
            for x1, y1, x2, y2 in t["boxes"].round().long().tolist():
                region = f[b, 1, max(y1, 0):max(y2, y1 + 1), max(x1, 0):max(x2, x1 + 1)]
                if region.numel():
                    reg = reg + (region.mean() - 1.0) ** 2
        if self.cheat:  # a detector that modifies itself must be caught
            with torch.no_grad():
                self.conv.bias.add_(1e-3)
        return cls + reg, {"cls": cls, "reg": reg, "iou": images.new_zeros(())}

    def detect(self, images, **test_settings):
        raise NotImplementedError("joint training never detects")


class ListData:
    """A map-style dataset of item dicts: dark 40x48 images with one or two boxes."""

    def __init__(self, n=6, seed=1):
        g = torch.Generator().manual_seed(seed)
        self.items = []
        for i in range(n):
            img = torch.rand(3, 40, 48, generator=g) * 0.25
            boxes = torch.tensor([[4.0, 5.0, 20.0, 25.0]] + ([[25.0, 8.0, 40.0, 30.0]] if i % 2 else []))
            self.items.append({"image": img, "boxes": boxes, "ignore": torch.zeros(len(boxes), dtype=torch.bool)})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return dict(self.items[i])


COMMON = dict(batch_size=2, image_size=32, crop="resize", show_progress=False, verbose=False, plot=False)


def _params(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_joint_runs_logs_and_checkpoints(tmp_path):
    det = TinyDetector()
    res = joint(ListData(), det, tmp_path, steps=3, checkpoint_every=2, plot=True,
                **{k: v for k, v in COMMON.items() if k != "plot"})
    for name in ("checkpoint.pt", "final.pt", "log.csv", "log.json", "loss.png"):
        assert (tmp_path / name).is_file(), name
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    for r in rows:
        for k in ("l_total", "l_up", "spa", "exp", "col", "tv", "l_down", "cls", "reg", "iou"):
            assert float(r[k]) == float(r[k]), k  # logged and finite
        # L_total = W_up L_up + W_down L_down with the defaults 1 and 0.5
        assert float(r["l_total"]) == pytest.approx(float(r["l_up"]) + 0.5 * float(r["l_down"]), rel=1e-5)
    log = json.loads((tmp_path / "log.json").read_text())
    assert log["config"]["w_up"] == 1.0 and log["config"]["w_down"] == 0.5
    model = load_upstream(tmp_path / "final.pt")
    assert torch.equal(model.state_dict()["e_conv1.depth_conv.weight"],
                       res["model"].state_dict()["e_conv1.depth_conv.weight"])


def test_detector_stays_bit_identical(tmp_path):
    det = TinyDetector()
    before = state_dict_sha256(det)
    ref = _params(det)
    res = joint(ListData(), det, tmp_path, steps=2, **COMMON)
    assert res["detector_sha256"] == before == state_dict_sha256(det)
    for k, v in det.state_dict().items():
        assert torch.equal(v, ref[k])
    assert all(p.grad is None for p in det.parameters())


def test_a_changing_detector_is_caught(tmp_path):
    with pytest.raises(RuntimeError, match="detector's weights changed"):
        joint(ListData(), TinyDetector(cheat=True), tmp_path, steps=1, **COMMON)


def test_gradient_reaches_the_upstream_from_l_down():
    from tasklle.models import ZeroDCEPP

    torch.manual_seed(0)
    model = ZeroDCEPP()
    model.init_weights(std=0.02)
    det = TinyDetector().freeze()
    loader = JointBatches(ListData(), make_transform("resize", 32), 2, seed=0)
    images, targets = loader.batch(0)
    # L_up weighted 0: every gradient on the enhancer comes through the detector.
    l_total, rec = joint_losses(model, det, images, targets, w_up=0.0, w_down=1.0)
    l_total.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    assert all(p.grad is None for p in det.parameters())
    assert rec["l_total"] == pytest.approx(rec["l_down"])


@pytest.mark.parametrize("recipe", ["method", "zero-dce++"])
def test_w_down_zero_is_plain_zero_dce_pp_training(tmp_path, recipe):
    """W_down = 0 through the joint loop == a plain L_up-only loop on the same
    batches, and needs no detector. The default recipe is the report's plain
    Adam (no weight decay, no clipping); 'zero-dce++' adds the official weight
    decay 1e-4 and clip 0.1."""
    from tasklle.losses.zero_dce_loss import zero_dce_loss
    from tasklle.models import ZeroDCEPP

    data = ListData()
    kw = {} if recipe == "method" else {"recipe": recipe}
    res = joint(data, None, tmp_path, w_down=0.0, steps=3, seed=5, **kw, **COMMON)
    rows = res["rows"]
    assert all(r["l_down"] != r["l_down"] for r in rows)  # NaN: detector not used
    cfg = json.loads((tmp_path / "log.json").read_text())["config"]
    official = recipe == "zero-dce++"
    assert cfg["recipe"] == recipe
    assert cfg["weight_decay"] == (1e-4 if official else 0.0) and cfg["grad_clip"] == (0.1 if official else None)

    torch.manual_seed(5)
    model = ZeroDCEPP()
    model.init_weights(std=0.02)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4 if official else 0.0)
    loader = JointBatches(data, make_transform("resize", 32), 2, seed=5)
    for step in range(3):
        images, _ = loader.batch(step)
        enhanced, maps = model(images)
        loss, _ = zero_dce_loss(enhanced, images, maps, exposure=0.6)
        opt.zero_grad()
        loss.backward()
        if official:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
        opt.step()
        assert float(loss.detach()) == pytest.approx(rows[step]["l_up"], rel=1e-6)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(res["model"].state_dict()[k], v, rtol=0, atol=0)


def test_resume_equals_uninterrupted(tmp_path):
    data = ListData()
    det = TinyDetector()
    full = joint(data, det, tmp_path / "a", steps=4, checkpoint_every=2, normalise="running-ratio", **COMMON)
    joint(data, det, tmp_path / "b", steps=2, checkpoint_every=2, normalise="running-ratio", **COMMON)
    resumed = joint(data, det, tmp_path / "b", steps=4, checkpoint_every=2, normalise="running-ratio",
                    resume=True, **COMMON)
    for k, v in full["model"].state_dict().items():
        torch.testing.assert_close(resumed["model"].state_dict()[k], v, rtol=0, atol=0)
    assert [r["step"] for r in resumed["rows"]] == [1, 2, 3, 4]
    assert [r["ratio"] for r in resumed["rows"]] == pytest.approx([r["ratio"] for r in full["rows"]])
    with pytest.raises(ValueError, match="w_down differs"):
        joint(data, det, tmp_path / "b", steps=5, w_down=1.0, normalise="running-ratio", resume=True, **COMMON)
    with pytest.raises(ValueError, match="detector differs"):
        other = TinyDetector()
        with torch.no_grad():
            other.conv.weight.add_(1.0)
        joint(data, other, tmp_path / "b", steps=5, normalise="running-ratio", resume=True, **COMMON)


def test_running_ratio_normalisation(tmp_path):
    res = joint(ListData(), TinyDetector(), tmp_path, steps=2, normalise="running-ratio", **COMMON)
    first = res["rows"][0]
    # the first step's ratio is this step's L_up / L_down, and it scales L_down in L_total
    assert first["ratio"] == pytest.approx(first["l_up"] / first["l_down"], rel=1e-6)
    assert first["l_total"] == pytest.approx(first["l_up"] + 0.5 * first["ratio"] * first["l_down"], rel=1e-5)
    r = RunningRatio(0.5)
    assert r.value() == 1.0
    assert r.update(2.0, 4.0) == pytest.approx(0.5)
    assert r.update(float("nan"), 1.0) == pytest.approx(0.5)  # non-finite values are skipped
    r2 = RunningRatio()
    r2.load_state_dict(r.state_dict())
    assert r2.value() == r.value()


def test_bad_arguments(tmp_path):
    data = ListData()
    with pytest.raises(ValueError, match="both 0"):
        joint(data, None, tmp_path, w_up=0.0, w_down=0.0, steps=1, **COMMON)
    with pytest.raises(ValueError, match="detector is required"):
        joint(data, None, tmp_path, w_down=0.5, steps=1, **COMMON)
    with pytest.raises(ValueError, match="normalise"):
        joint(data, TinyDetector(), tmp_path, normalise="max", steps=1, **COMMON)
    with pytest.raises(ValueError, match="w_down"):
        joint(data, TinyDetector(), tmp_path, w_down=-1.0, steps=1, **COMMON)
    with pytest.raises(TypeError, match="data"):
        joint(42, TinyDetector(), tmp_path, steps=1, **COMMON)
    with pytest.raises(FileNotFoundError):
        joint(tmp_path / "missing", TinyDetector(), tmp_path, steps=1, **COMMON)
    with pytest.raises(ValueError, match="recipe"):
        joint(data, None, tmp_path, w_down=0.0, recipe="sgd", steps=1, **COMMON)


def test_tinaface_lite_stays_bit_identical(tmp_path):
    """The real frozen detector: weights unchanged after joint steps, and L_down is finite."""
    from tasklle.models import TinaFace

    torch.manual_seed(0)
    det = TinaFace.lite()
    before = state_dict_sha256(det)
    res = joint(ListData(n=4), det, tmp_path, steps=2, batch_size=2, image_size=64, crop="resize",
                show_progress=False, verbose=False, plot=False)
    assert state_dict_sha256(det) == before
    assert all(r["l_down"] == r["l_down"] for r in res["rows"])


def test_resume_policy(tmp_path):
    """The shared policy (tasklle.train.run): an existing checkpoint without resume is refused and left
    as it was; resuming with a changed fixed setting is a ResumeMismatch."""
    from tasklle.train.run import CheckpointExists, ResumeMismatch

    joint(ListData(), None, tmp_path, w_down=0.0, steps=1, **COMMON)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(CheckpointExists, match="resume"):
        joint(ListData(), None, tmp_path, w_down=0.0, steps=1, **COMMON)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    with pytest.raises(ResumeMismatch, match="lr differs"):
        joint(ListData(), None, tmp_path, w_down=0.0, steps=2, lr=2e-4, resume=True, **COMMON)
