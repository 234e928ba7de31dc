"""tasklle.darken (single images) and tasklle.darken_dataset (WIDER-format trees)."""
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import tasklle
import tasklle.darkening as dk
import tasklle.dataset_darkening as dd
from tasklle.io import write_image

ANNOT = "0--Parade/0--Parade_0.jpg\n1\n10 10 20 20 0 0 0 0 0 0 \n"


@pytest.fixture(scope="module")
def photos():
    from tasklle.train.darkener import builtin_images

    ims = builtin_images("train")[:4]
    return [im[:, :72, :96].contiguous() for im in ims]


def _tree(root, photos, corrupt=True):
    """A small WIDER-format tree: 6 images, annotation txt, a binary .mat, one corrupt image."""
    k = 0
    for split in ("train", "val"):
        for ev in ("0--Parade", "1--Handshaking"):
            for j in range(2 if split == "val" else 1):
                write_image(root / f"WIDER_{split}/images/{ev}/{ev}_{j}.jpg", photos[k % len(photos)])
                k += 1
    (root / "wider_face_split").mkdir(parents=True)
    (root / "wider_face_split/wider_face_val_bbx_gt.txt").write_text(ANNOT)
    (root / "wider_face_split/wider_face_val.mat").write_bytes(bytes(range(256)) * 4)
    if corrupt:
        (root / "WIDER_val/images/1--Handshaking/1--Handshaking_9.jpg").write_bytes(b"\xff\xd8 truncated")
    return root


def _files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()
            and p.name != dd.REPORT}


# -- single images -------------------------------------------------------------
def test_same_kind_out(photos, tmp_path):
    x = photos[0]
    y = tasklle.darken(x, 0.1, seed=0)
    assert isinstance(y, torch.Tensor) and y.shape == x.shape and y.mean() < x.mean()
    yb = tasklle.darken(torch.stack(photos[:2]), [0.1, 0.2], seed=0)
    assert yb.shape == (2, *x.shape)
    arr = (x.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    ya = tasklle.darken(arr, 0.1, seed=0)
    assert isinstance(ya, np.ndarray) and ya.dtype == np.uint8 and ya.shape == arr.shape
    yp = tasklle.darken(Image.fromarray(arr), 0.1, seed=0)
    assert isinstance(yp, Image.Image) and yp.size == (x.shape[2], x.shape[1])
    write_image(tmp_path / "a.png", x)
    yf = tasklle.darken(tmp_path / "a.png", 0.1, seed=0)
    assert isinstance(yf, torch.Tensor) and yf.shape == x.shape


def test_seeded_and_exposure_ordered(photos):
    x = photos[1]
    a, info = tasklle.darken(x, 0.15, seed=3, return_info=True, noise="lednet")
    b = tasklle.darken(x, 0.15, seed=3, noise="lednet")
    c = tasklle.darken(x, 0.15, seed=4, noise="lednet")
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert info[0]["exposure"] == 0.15 and info[0]["seed"] == dk.image_seed(3, 0)
    assert info[0]["noise"]["kind"] == "lednet"
    # the default is the method's: no noise, so the seed does not matter
    d0, info0 = tasklle.darken(x, 0.15, seed=3, return_info=True)
    assert torch.equal(d0, tasklle.darken(x, 0.15, seed=4)) and info0[0]["noise"]["kind"] is None
    means = [tasklle.darken(x, e, noise=None).mean().item() for e in (0.05, 0.1, 0.2, 0.3)]
    assert all(lo < hi for lo, hi in zip(means, means[1:]))
    assert abs(means[1] - 0.1) < 0.03
    p, info = tasklle.darken(x, 0.1, seed=0, noise="physical", return_info=True)
    assert info[0]["noise"]["kind"] == "physical" and p.min() >= 0 and p.max() <= 1


def test_keep_saturated(photos):
    x = photos[0].clone()
    x[:, :10, :10] = 1.0
    y = tasklle.darken(x, 0.05, noise=None)  # keep_saturated is the default
    assert torch.equal(y[:, :10, :10], x[:, :10, :10])
    assert (tasklle.darken(x, 0.05, noise=None, keep_saturated=False)[:, :10, :10] < 1).all()


def test_darken_errors(photos):
    x = photos[0]
    with pytest.raises(ValueError, match="exposure"):
        tasklle.darken(x, 1.2)
    with pytest.raises(ValueError, match="exposure"):
        tasklle.darken(torch.stack(photos[:2]), [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="noise"):
        tasklle.darken(x, 0.1, noise="salt")
    with pytest.raises(ValueError, match="seed"):
        tasklle.darken(x, 0.1, seed=-2)
    with pytest.raises(TypeError, match="model"):
        tasklle.darken(x, 0.1, model=3)
    with pytest.raises(TypeError):
        tasklle.darken([1, 2, 3], 0.1)


# -- datasets --------------------------------------------------------------------
@pytest.fixture
def src(tmp_path, photos):
    return _tree(tmp_path / "src", photos)


def test_dataset_layout_annotations_manifest(src, tmp_path):
    dst = tmp_path / "dst"
    rep = tasklle.darken_dataset(src, dst, workers=1, verbose=False, noise="lednet")
    assert rep["darkened"] == 6 and rep["copied"] == 2 and rep["not_attempted"] == 0
    # the corrupt image is reported and skipped, everything else is there
    assert [f["path"] for f in rep["failed"]] == ["WIDER_val/images/1--Handshaking/1--Handshaking_9.jpg"]
    s, d = _files(src), _files(dst)
    bad = "WIDER_val/images/1--Handshaking/1--Handshaking_9.jpg"
    assert set(d) - {dd.MANIFEST} == set(s) - {bad}
    for rel in ("wider_face_split/wider_face_val_bbx_gt.txt", "wider_face_split/wider_face_val.mat"):
        assert d[rel] == s[rel]
    man = json.loads((dst / dd.MANIFEST).read_text())
    assert set(man["images"]) == {r for r in s if r.endswith(".jpg")} - {bad}
    for rel, rec in man["images"].items():
        assert 0.05 <= rec["exposure"] <= 0.3
        assert rec["source_sha256"] == hashlib.sha256(s[rel]).hexdigest()
        assert rec["seed"] == dk.image_seed(0, rel) and rec["noise"]["kind"] == "lednet"
        with Image.open(dst / rel) as im:
            assert im.format == "JPEG" and im.size == (rec["width"], rec["height"])
            dark = np.asarray(im, dtype=np.float32).mean() / 255
        assert dark < 0.4
    assert json.loads((dst / dd.REPORT).read_text())["failed"] == rep["failed"]
    # a second run has nothing left to do
    again = tasklle.darken_dataset(src, dst, workers=1, verbose=False, noise="lednet")
    assert again["darkened"] == 0 and again["already_done"] == 6 and again["copied"] == 0
    assert _files(dst) == d


def test_workers_do_not_change_the_result(src, tmp_path):
    from tasklle.models import ECZeroDCE

    # non-default model options must reach the worker processes too
    m = ECZeroDCE.shipped(preserve_color=False, keep_saturated=True)
    tasklle.darken_dataset(src, tmp_path / "one", workers=1, verbose=False, model=m)
    tasklle.darken_dataset(src, tmp_path / "threads", workers=2, backend="thread", verbose=False, model=m)
    rep = tasklle.darken_dataset(src, tmp_path / "procs", workers=2, backend="process", verbose=False, model=m)
    assert rep["workers"] == 2 and rep["darkened"] == 6
    one = _files(tmp_path / "one")
    assert _files(tmp_path / "threads") == one
    assert _files(tmp_path / "procs") == one


def test_interrupted_and_resumed_equals_uninterrupted(src, tmp_path, monkeypatch):
    tasklle.darken_dataset(src, tmp_path / "full", workers=1, verbose=False)
    real = dd._process_one
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(dd, "_process_one", flaky)
    with pytest.raises(KeyboardInterrupt):
        tasklle.darken_dataset(src, tmp_path / "resumed", workers=1, verbose=False)
    man = json.loads((tmp_path / "resumed" / dd.MANIFEST).read_text())
    assert len(man["images"]) == 3  # saved on the way out
    monkeypatch.setattr(dd, "_process_one", real)
    rep = tasklle.darken_dataset(src, tmp_path / "resumed", workers=1, verbose=False)
    assert rep["already_done"] == 3 and rep["darkened"] == 3
    assert _files(tmp_path / "resumed") == _files(tmp_path / "full")


def test_changed_source_is_redone_and_settings_are_checked(src, tmp_path, photos):
    dst = tmp_path / "dst"
    tasklle.darken_dataset(src, dst, workers=1, verbose=False, exposure=0.1, noise=None)
    write_image(src / "WIDER_train/images/0--Parade/0--Parade_0.jpg", photos[3])
    (src / "wider_face_split/wider_face_val_bbx_gt.txt").write_text(ANNOT + "extra\n")
    rep = tasklle.darken_dataset(src, dst, workers=1, verbose=False, exposure=0.1, noise=None)
    assert rep["darkened"] == 1 and rep["already_done"] == 5 and rep["copied"] == 1
    assert (dst / "wider_face_split/wider_face_val_bbx_gt.txt").read_text() == ANNOT + "extra\n"
    with pytest.raises(ValueError, match="other settings"):
        tasklle.darken_dataset(src, dst, workers=1, verbose=False, exposure=0.2, noise=None)
    with pytest.raises(ValueError, match="overlap"):
        tasklle.darken_dataset(src, src / "dark", workers=1, verbose=False)
    with pytest.raises(FileNotFoundError):
        tasklle.darken_dataset(tmp_path / "nope", dst, workers=1, verbose=False)
    with pytest.raises(ValueError, match="exposure"):
        tasklle.darken_dataset(src, tmp_path / "d2", exposure=(0.3, 0.1), verbose=False)
    with pytest.raises(ValueError, match="workers"):
        tasklle.darken_dataset(src, tmp_path / "d2", workers=0, verbose=False)


# -- LEDNet's darkener -------------------------------------------------------------
def _lednet_weights(path, seed=0):
    """A random state_dict with LEDNet's key names and shapes, saved as LEDNet's plain .pth."""
    from tasklle.models import ConditionZeroDCE

    torch.manual_seed(seed)
    torch.save(ConditionZeroDCE().state_dict(), path)
    return path


def test_dataset_with_lednet_darkener(tmp_path, photos):
    from tasklle.io import read_image
    from tasklle.models import ConditionZeroDCE

    small = [p[:, :24, :32].contiguous() for p in photos]
    src = _tree(tmp_path / "src", small, corrupt=False)
    weights = _lednet_weights(tmp_path / "ce_zerodce.pth")
    with pytest.raises(ValueError, match="ce_zerodce.pth"):
        tasklle.darken_dataset(src, tmp_path / "none", darkener="lednet", verbose=False)
    rep = tasklle.darken_dataset(src, tmp_path / "one", workers=1, verbose=False, darkener="lednet", model=weights,
                                 quality=100)
    assert rep["darkened"] == 6
    man = json.loads((tmp_path / "one" / dd.MANIFEST).read_text())
    assert man["settings"]["darkener"] == "lednet" and man["settings"]["noise"] is None
    # each output is LEDNet's pipeline on the source with the recorded E
    net = ConditionZeroDCE.from_lednet(weights)
    rel = "WIDER_val/images/0--Parade/0--Parade_0.jpg"
    want = net.darken(read_image(src / rel)[None], man["images"][rel]["exposure"])[0]
    got = read_image(tmp_path / "one" / rel)
    assert (got - want).abs().mean() < 2 / 255  # JPEG at quality 100
    # the process backend rebuilds LEDNet's net in its workers: the same files
    tasklle.darken_dataset(src, tmp_path / "procs", workers=2, backend="process", verbose=False,
                           darkener="lednet", model=weights, quality=100)
    assert _files(tmp_path / "procs") == _files(tmp_path / "one")
