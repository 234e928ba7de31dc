"""Detector training: files, resume, the learning-rate schedule, the CLI on the
built-in demo data, and data-parallel training (two gloo processes make the
same update as one process on the combined batch)."""
import json
import os
import socket

import pytest
import torch

from tasklle.models import TinaFace
from tasklle.train.detector import LOG_FIELDS, lr_at, train_detector
from tasklle.train.run import read_csv


@pytest.fixture(autouse=True)
def _single_process_one_thread(monkeypatch):
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


class Synthetic(torch.utils.data.Dataset):
    """Deterministic items {'image': (3, S, S), 'boxes', 'ignore'} (no augmentation)."""

    def __init__(self, n=8, size=64):
        self.n, self.size = n, size

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(1000 + i)
        image = torch.rand(3, self.size, self.size, generator=g)
        xy = torch.randint(0, self.size // 2, (2, 2), generator=g).float()
        wh = torch.randint(8, self.size // 2, (2, 2), generator=g).float()
        boxes = torch.cat([xy, xy + wh], dim=1)
        return {"image": image, "boxes": boxes, "ignore": torch.tensor([False, i % 3 == 0])}


COMMON = dict(config="lite", lr=0.01, optimizer="sgd", schedule="constant", warmup_iters=0, seed=0,
              show_progress=False)


def _weights(path):
    return TinaFace.load(path).state_dict()


def test_train_writes_checkpoints_log_and_resumes_exactly(tmp_path):
    data = Synthetic(n=4)
    res = train_detector(dataset=data, out=tmp_path / "a", epochs=2, batch_size=2, **COMMON)
    a = res.final
    assert a == tmp_path / "a" / "detector.pt"
    log = json.loads((tmp_path / "a" / "log.json").read_text())
    assert [e["epoch"] for e in log["summary"]["epochs"]] == [1, 2]
    rows = read_csv(tmp_path / "a" / "log.csv", LOG_FIELDS)
    assert len(rows) == 4 and rows == res.rows
    assert set(rows[0]) >= {"total", "cls", "reg", "iou", "lr"}
    ckpt = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["iteration"] == 4 and "optimizer" in ckpt
    TinaFace.load(tmp_path / "a" / "checkpoint.pt")  # a training checkpoint is a detector file too

    # one epoch, then resume to two: the same weights as the uninterrupted run
    train_detector(dataset=data, out=tmp_path / "b", epochs=1, batch_size=2, **COMMON)
    train_detector(dataset=data, out=tmp_path / "b", epochs=2, batch_size=2, resume=True, **COMMON)
    wa, wb = _weights(a), _weights(tmp_path / "b" / "detector.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    log_b = json.loads((tmp_path / "b" / "log.json").read_text())
    assert [e["epoch"] for e in log_b["summary"]["epochs"]] == [1, 2]
    assert [r["step"] for r in read_csv(tmp_path / "b" / "log.csv", LOG_FIELDS)] == [1, 2, 3, 4]


def test_train_validates_arguments(tmp_path):
    with pytest.raises(ValueError, match="root"):
        train_detector(out=tmp_path)
    with pytest.raises(ValueError, match="optimizer"):
        train_detector(dataset=Synthetic(), out=tmp_path, optimizer="rmsprop")
    with pytest.raises(ValueError, match="config"):
        train_detector(dataset=Synthetic(), out=tmp_path, config="huge")
    with pytest.raises(ValueError, match="epochs"):
        train_detector(dataset=Synthetic(), out=tmp_path, epochs=0)
    with pytest.raises(FileNotFoundError):
        train_detector(root=tmp_path / "missing", out=tmp_path)


def test_lr_schedule():
    # linear warmup from 0.1 x, cosine to 1% of the base over the run (changes per epoch)
    assert lr_at(1.0, 0, 0, 10, warmup_iters=100) == pytest.approx(0.1)
    assert lr_at(1.0, 0, 50, 10, warmup_iters=100) == pytest.approx(0.55)
    assert lr_at(1.0, 0, 100, 10, warmup_iters=100) == pytest.approx(1.0)
    assert lr_at(1.0, 5, 1000, 10) == pytest.approx(0.01 + 0.99 * 0.5)
    assert lr_at(1.0, 30, 10**5, 60, restart_period=30) == pytest.approx(1.0)  # vedadet-style restart
    # step: x0.1 from (0-based) epoch 6 = 2/3 of 9, again from epoch 8 = 8/9 of 9
    assert lr_at(1.0, 5, 10**5, 9, schedule="step") == pytest.approx(1.0)
    assert lr_at(1.0, 6, 10**5, 9, schedule="step") == pytest.approx(0.1)
    assert lr_at(1.0, 8, 10**5, 9, schedule="step") == pytest.approx(0.01)
    assert lr_at(1.0, 2, 10**5, 9, schedule="step", step_epochs=[1, 2]) == pytest.approx(0.01)


def test_cli_on_demo_data(tmp_path):
    from tasklle.cli import main
    from tasklle.data import demo

    root = demo.build(tmp_path / "demo", seed=0, n_train=4, n_val=1)
    out = tmp_path / "run"
    rc = main(["train-detector", "--data", str(root), "--out", str(out), "--epochs", "1", "--batch-size", "2",
               "--image-size", "64", "--optimizer", "adam", "--warmup-iters", "1", "--no-progress"])
    assert rc == 0
    assert (out / "detector.pt").is_file() and (out / "checkpoint.pt").is_file()
    log = json.loads((out / "log.json").read_text())
    assert len(log["rows"]) == 2 and log["config"]["image_size"] == 64
    assert main(["train-detector", "--data", str(tmp_path / "nowhere"), "--out", str(out)]) == 1


# ------------------------------------------------------------------ DDP
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    train_detector(dataset=Synthetic(n=8), out=out, epochs=1, batch_size=2, device="cpu", **COMMON)


def test_ddp_two_processes_match_one_process_on_the_combined_batch(tmp_path):
    import torch.multiprocessing as mp

    out_ddp = tmp_path / "ddp"
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(out_ddp)), nprocs=2, join=True)
    # one process, 4 images per batch = the union of the two processes' batches
    out_one = tmp_path / "one"
    train_detector(dataset=Synthetic(n=8), out=out_one, epochs=1, batch_size=4, device="cpu", **COMMON)
    w_ddp, w_one = _weights(out_ddp / "detector.pt"), _weights(out_one / "detector.pt")
    torch.manual_seed(0)
    w_init = TinaFace.lite().state_dict()
    moved = max(float((w_one[k] - w_init[k]).abs().max()) for k in w_one)
    assert moved > 1e-3  # the two SGD steps did something
    diff = max(float((w_ddp[k] - w_one[k]).abs().max()) for k in w_one)
    assert diff < 1e-6
    log_ddp = json.loads((out_ddp / "log.json").read_text())
    assert log_ddp["config"]["world_size"] == 2 and len(log_ddp["rows"]) == 2


def test_resume_policy(tmp_path):
    """The shared policy (tasklle.train.run): an existing checkpoint without resume is refused and left
    as it was; resuming with a changed fixed setting is a ResumeMismatch."""
    from tasklle.train.run import CheckpointExists, ResumeMismatch

    data = Synthetic(n=2)
    train_detector(dataset=data, out=tmp_path, epochs=1, batch_size=2, **COMMON)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(CheckpointExists, match="resume"):
        train_detector(dataset=data, out=tmp_path, epochs=1, batch_size=2, **COMMON)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    with pytest.raises(ResumeMismatch, match="batch_size differs"):
        train_detector(dataset=data, out=tmp_path, epochs=2, batch_size=1, resume=True, **COMMON)
