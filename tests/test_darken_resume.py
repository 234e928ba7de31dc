"""``tasklle darken`` survives kills: SIGKILL (thread and process backends) or
SIGTERM midway, then a rerun, gives outputs hash-identical to an uninterrupted
run, with no temporary file, journal or worker process left behind."""
import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import package_env
import torch

from tasklle.dataset_darkening import JOURNAL, MANIFEST, REPORT, darken_dataset
from tasklle.io import is_atomic_temp, write_image

N_IMAGES = 16


def _tree(root):
    g = torch.Generator().manual_seed(0)
    for i in range(N_IMAGES):
        write_image(root / f"WIDER_val/images/0--E/img_{i:03d}.png", torch.rand(3, 160, 192, generator=g))
    (root / "wider_face_split").mkdir(parents=True)
    (root / "wider_face_split/wider_face_val_bbx_gt.txt").write_text("0--E/img_000.png\n0\n")
    return root


def _hashes(dst):
    """sha256 of every output file (the bookkeeping files aside)."""
    out = {}
    for p in sorted(dst.rglob("*")):
        if p.is_file() and p.name not in (MANIFEST, REPORT, JOURNAL):
            out[p.relative_to(dst).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    base = tmp_path_factory.mktemp("ref")
    src = _tree(base / "src")
    darken_dataset(src, base / "dst", workers=1, seed=3, verbose=False)
    return src, _hashes(base / "dst")


def _children(pid):
    kids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(d.name))
    return kids


def _alive(pid):
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start(src, dst, backend):
    env = package_env(OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "tasklle", "darken", str(src), str(dst), "--seed", "3", "--workers", "2",
           "--backend", backend]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for_progress(proc, dst, images=3, timeout=120):
    """Wait until the journal lists `images` finished images (the run is midway)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        j = dst / JOURNAL
        if j.exists() and j.read_text().count('"image"') >= images:
            return
        if proc.poll() is not None:
            pytest.fail(f"darken ended before it could be interrupted: {proc.stderr.read().decode()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("darken made no progress")


def _finish_and_compare(src, dst, ref_hashes):
    report = darken_dataset(src, dst, workers=2, seed=3, verbose=False)
    assert report["already_done"] >= 3, "the rerun did not resume"
    assert report["already_done"] + report["darkened"] == N_IMAGES
    assert _hashes(dst) == ref_hashes
    assert not [p for p in dst.rglob("*") if is_atomic_temp(p.name)]
    assert not (dst / JOURNAL).exists()
    assert len(json.loads((dst / MANIFEST).read_text())["images"]) == N_IMAGES


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_sigkill_then_rerun_resumes(tmp_path, reference, backend):
    src, ref_hashes = reference
    dst = tmp_path / "dst"
    proc = _start(src, dst, backend)
    _wait_for_progress(proc, dst)
    workers = _children(proc.pid) if backend == "process" else []
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    # a killed writer leaves a partial temporary file; simulate one for certain
    (dst / "WIDER_val/images/0--E/.img_015.png.abcd1234.tmp").write_bytes(b"partial")
    deadline = time.time() + 20
    while any(_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)], "worker processes outlived the killed parent"
    _finish_and_compare(src, dst, ref_hashes)


def test_sigterm_stops_cleanly_and_resumes(tmp_path, reference):
    src, ref_hashes = reference
    dst = tmp_path / "dst"
    proc = _start(src, dst, "process")
    _wait_for_progress(proc, dst)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=60)
    err = proc.stderr.read().decode()
    assert rc == 130, err
    assert "--resume" not in err and "run the same command again" in err
    assert (dst / MANIFEST).exists()
    deadline = time.time() + 20
    while any(_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.1)
    assert not [w for w in workers if _alive(w)]
    _finish_and_compare(src, dst, ref_hashes)


def test_partial_temp_files_in_src_are_not_copied(tmp_path):
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a/.x.txt.abcd_123.tmp").write_text("partial")
    (src / "a/x.txt").write_text("kept")
    report = darken_dataset(src, tmp_path / "dst", workers=1, verbose=False)
    assert report["copied"] == 1
    assert sorted(p.name for p in (tmp_path / "dst/a").iterdir()) == ["x.txt"]
