"""Dark copies of whole WIDER-format datasets (the single-image darkener is
``tasklle.darkening``).

``darken_dataset(src, dst, ...)`` turns a WIDER-format tree into its dark
copy: every image file (by suffix, anywhere in the tree) is darkened and
written under the same relative path (JPEG quality 95 by default), every
other file (annotation txt, .mat, readme) is copied unchanged. Each image's
randomness (its E when ``exposure`` is a range, and its noise) comes from a
seed derived from ``(seed, relative path)`` by SHA-256, and every image is
computed single-threaded, so the result is the same whatever the number of
workers, the order of processing or interruptions. ``dst/darken_manifest.json``
records per image E, the noise parameters, the seed and the SHA-256 of the
source; it is rewritten atomically as the run goes, and a rerun skips images
already in it (same source hash, output present). Unreadable images are
listed in ``dst/darken_report.json`` and skipped; the run goes on.

Interruptions of any kind are resumable by rerunning the same call: each
image is written atomically and then appended, as one line, to the journal
``dst/darken_journal.jsonl`` (flushed per image), so even after SIGKILL a
rerun knows every image that finished. A run starts by folding a previous
journal into the manifest and removing partial temporary files
(``.<name>.<random>.tmp``) left in dst by a killed run; such files in src are
never copied. Process-backend workers die with their parent (Linux
``PR_SET_PDEATHSIG``, and a parent watch elsewhere), so a killed run leaves no
process writing into dst.
"""
import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch

from . import _alloc
from ._alloc import with_fast_alloc
from ._threads import threads
# the settings checks, per-image seeds and model resolution are the single-image darkener's
from .darkening import (_MODEL_OPTIONS, _check_exposure_range, _check_noise, _check_seed_quality, _darken_tensor,
                        _darkener_kind, _model_fingerprint, _resolve_model, _sha256_file, image_seed)

__all__ = ["darken_dataset", "MANIFEST", "REPORT", "JOURNAL"]

MANIFEST = "darken_manifest.json"
REPORT = "darken_report.json"
JOURNAL = "darken_journal.jsonl"
MANIFEST_FORMAT = "tasklle-darken-manifest/1"
_FLUSH_SECONDS = 5.0  # manifest rewrite interval during a run


_WORKER = {}


def _die_with_parent(parent_pid):
    """Make this worker process end when the process that started it ends, so a
    killed run (even SIGKILL) leaves no worker still writing into dst. Linux:
    the kernel sends SIGKILL on the parent's death (PR_SET_PDEATHSIG); then, and
    on other systems, a daemon thread polls the parent id as a fallback."""
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the line above ran
        os._exit(1)

    def watch():
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="tasklle-parent-watch", daemon=True).start()


def _init_worker(model_state, settings, parent_pid=None):
    """Process-pool initialiser: one thread each, the model rebuilt from its state."""
    from . import _C
    from .models.ec_zero_dce import ECZeroDCE

    if parent_pid is not None:
        _die_with_parent(parent_pid)

    torch.set_num_threads(1)
    _C.set_num_threads(1)
    # the parent's choice (set_fast_alloc / TASKLLE_FAST_ALLOC), whatever this process's import did
    _alloc.set_fast_alloc(bool(model_state.get("fast_alloc")))
    if model_state["kind"] == "lednet":
        from .models.lednet_darkener import ConditionZeroDCE

        cfg = {k: v for k, v in model_state["config"].items() if k != "kind"}
        net = ConditionZeroDCE(**cfg, **model_state["options"])
    else:
        net = ECZeroDCE(**model_state["config"], **model_state["options"])
    net.load_state_dict(model_state["state_dict"])
    _WORKER["model"] = net.eval()
    _WORKER["settings"] = settings


def _worker_task(src, dst, rel):
    return _process_one(src, dst, rel, _WORKER["settings"], _WORKER["model"])


def _process_one(src, dst, rel, settings, model):
    """Darken one file; returns ('ok', rel, record) or ('error', rel, message). Never raises for bad data."""
    from .io import ImageReadError, read_image, write_image
    from .noise import generator_for

    try:
        source_hash = _sha256_file(src)
        img = read_image(src)
        s = image_seed(settings["seed"], rel)
        g = generator_for(s)
        lo, hi = settings["exposure"]
        # E is the first draw of the image's generator, the noise follows
        e = lo + (hi - lo) * torch.rand((), generator=g, dtype=torch.float64).item() if hi > lo else lo
        y, params = _darken_tensor(img[None], [e], [g], settings["noise"], model, settings["keep_saturated"])
        write_image(dst, y[0], quality=settings["quality"])
    except (ImageReadError, OSError, ValueError, RuntimeError, MemoryError) as err:
        return "error", rel, f"{type(err).__name__}: {err}"
    record = {"exposure": e, "seed": s, "noise": params[0], "source_sha256": source_hash,
              "height": int(img.shape[1]), "width": int(img.shape[2])}
    return "ok", rel, record


def _copy_file(src, dst):
    from .io import atomic_write

    with open(src, "rb") as fin, atomic_write(dst) as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)


def _load_manifest(path, settings):
    if not path.exists():
        return {"format": MANIFEST_FORMAT, "settings": settings, "images": {}, "copied": {}}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read manifest {path}: {e}; remove it to start over") from e
    if manifest.get("format") != MANIFEST_FORMAT:
        raise ValueError(f"{path} is not a tasklle darken manifest")
    if manifest.get("settings") != settings:
        raise ValueError(f"dst already holds a dark copy made with other settings "
                         f"({manifest.get('settings')}); use another dst or remove {path}")
    manifest.setdefault("images", {})
    manifest.setdefault("copied", {})
    return manifest


def _fold_journal(journal_path, manifest, settings):
    """Add the records of a previous run's journal to the manifest (a killed run's
    last line may be cut short: it is ignored, that image is simply redone)."""
    if not journal_path.exists():
        return 0
    n = 0
    with open(journal_path, "rb") as f:
        for line in f:
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill
            if not isinstance(entry, dict):
                continue
            if "settings" in entry:
                if entry["settings"] != settings:
                    raise ValueError(f"dst already holds a dark copy made with other settings "
                                     f"({entry['settings']}); use another dst or remove {journal_path}")
            elif isinstance(entry.get("image"), str) and isinstance(entry.get("record"), dict):
                manifest["images"][entry["image"]] = entry["record"]
                n += 1
    return n


class _Journal:
    """Append-only record of finished images: one JSON line per image, written
    with a single write() on an O_APPEND descriptor right after the image's
    atomic rename, so a kill at any moment loses at most the images in flight."""

    def __init__(self, path, settings):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | getattr(os, "O_CLOEXEC", 0),
                          0o666)
        self.add({"settings": settings})

    def add(self, entry):
        os.write(self.fd, (json.dumps(entry, sort_keys=True) + "\n").encode())

    def close(self, remove):
        os.close(self.fd)
        if remove:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


def _remove_stale_temps(dst):
    """Remove the partial temporary files a killed run left in dst."""
    from .io import is_atomic_temp

    removed = 0
    for p in dst.rglob(".*.tmp"):
        if is_atomic_temp(p.name) and p.is_file() and not p.is_symlink():
            try:
                p.unlink()
                removed += 1
            except FileNotFoundError:
                pass
    return removed


def _write_manifest(path, manifest):
    from .io import write_json

    ordered = dict(manifest)
    ordered["images"] = dict(sorted(manifest["images"].items()))
    ordered["copied"] = dict(sorted(manifest["copied"].items()))
    write_json(path, ordered)


@with_fast_alloc  # large buffers stay in the heap for the run (tasklle._alloc)
def darken_dataset(src, dst, exposure=(0.05, 0.3), noise=None, seed=0, workers=None, model=None,
                   keep_saturated=True, quality=95, backend="thread", verbose=True, darkener="ec-zero-dce",
                   show_progress=True):
    """Write a dark copy of the WIDER-format tree ``src`` into ``dst``.

    Args:
        src: dataset root (``WIDER_{train,val}/images/<event>/*.jpg``,
            ``wider_face_split/*``); any tree works: image files are
            darkened, every other file is copied unchanged.
        dst: output root (created; must not overlap src).
        exposure: a number (every image) or a range (lo, hi): E ~ U(lo, hi) per image.
        noise: None (default, as the method's generation), 'lednet' or 'physical'.
        seed: base seed; image seeds are ``image_seed(seed, relative path)``.
        workers: parallel workers (None: all CPUs; 1: in this process).
        model: as in :func:`darken` (None: the shipped EC-Zero-DCE weights).
        keep_saturated: keep pixels with L/100 > 0.97 (LEDNet; default).
        quality: JPEG quality of the dark copies (95).
        backend: 'thread' (default) or 'process' (spawned processes, one
            model copy each). Every image runs single-threaded either way.
            The C core, torch and Pillow, where an image spends most of its
            time, release the GIL, and threads avoid the processes' start-up
            of a few seconds. On 12 images of
            1024x768 (benchmarks/bench_darken.py, a shared 2-core machine)
            1 worker ran 4.6 images/s, 2 threads 4.6, 2 processes 1.8
            including start-up; other jobs held the second core, so the
            scaling of either backend could not be measured there.
        verbose: print the summary.
        show_progress: show a progress bar over the images.
        darkener: 'ec-zero-dce' (default) or 'lednet' (``model`` = LEDNet's
            ce_zerodce.pth; about 1.5 min per WIDER image on one CPU core,
            see ``tasklle.models.lednet_darkener``).

    Returns the report dict (also written to ``dst/darken_report.json``):
    counts of images darkened / already done / copied, the failed files with
    their errors, and the time taken.
    """
    from .io import IMAGE_EXTENSIONS, write_json
    from .progress import progress

    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"src folder not found: {src}")
    rs, rd = src.resolve(), dst.resolve()
    if rs == rd or rs in rd.parents or rd in rs.parents:
        raise ValueError(f"dst must not overlap src: {src} and {dst}")
    lo, hi = _check_exposure_range(exposure)
    noise = _check_noise(noise)
    _check_seed_quality(seed, quality)
    if backend not in ("process", "thread"):
        raise ValueError(f"backend must be 'process' or 'thread', got {backend!r}")
    if workers is None:
        workers = os.cpu_count() or 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int or None, got {workers!r}")
    net = _resolve_model(model, darkener).eval()

    settings = {"exposure": [lo, hi], "noise": noise, "seed": seed, "keep_saturated": bool(keep_saturated),
                "quality": quality, "darkener": _darkener_kind(net), "model": _model_fingerprint(net),
                "model_options": {k: getattr(net, k, None) for k in _MODEL_OPTIONS[_darkener_kind(net)]}}
    dst.mkdir(parents=True, exist_ok=True)
    manifest_path, report_path, journal_path = dst / MANIFEST, dst / REPORT, dst / JOURNAL
    manifest = _load_manifest(manifest_path, settings)
    if _fold_journal(journal_path, manifest, settings):
        _write_manifest(manifest_path, manifest)  # before the journal is started anew
    stale = _remove_stale_temps(dst)
    if stale and verbose:
        print(f"darken: removed {stale} partial file(s) left in {dst} by an interrupted run", file=sys.stderr)
    t0 = time.time()

    from .io import is_atomic_temp

    # a partial temporary file (left by a killed writer) is not part of the dataset
    files = sorted(p for p in src.rglob("*") if p.is_file() and not is_atomic_temp(p.name)
                   and p.relative_to(src).as_posix() != JOURNAL)
    failed, copied, done_before, todo = [], 0, 0, []
    for p in files:
        rel = p.relative_to(src).as_posix()
        out = dst / rel
        if p.suffix.lower() in IMAGE_EXTENSIONS:
            entry = manifest["images"].get(rel)
            if entry is not None and out.is_file():
                try:
                    same = entry.get("source_sha256") == _sha256_file(p)
                except OSError:
                    same = False
                if same:
                    done_before += 1
                    continue
            manifest["images"].pop(rel, None)
            todo.append(rel)
        else:
            try:
                h = _sha256_file(p)
                if manifest["copied"].get(rel) != h or not out.is_file():
                    _copy_file(p, out)
                    manifest["copied"][rel] = h
                    copied += 1
            except OSError as err:
                failed.append({"path": rel, "error": f"{type(err).__name__}: {err}"})

    if copied:
        _write_manifest(manifest_path, manifest)  # the copies are recorded before any image
    journal = _Journal(journal_path, settings)
    n_done = n_failed = 0
    last_flush = time.time()
    workers = max(1, min(workers, len(todo)))

    def handle(result):
        nonlocal n_done, n_failed, last_flush
        status, rel, payload = result
        if status == "ok":
            manifest["images"][rel] = payload
            journal.add({"image": rel, "record": payload})
            n_done += 1
        else:
            failed.append({"path": rel, "error": payload})
            n_failed += 1
        if time.time() - last_flush > _FLUSH_SECONDS:
            _write_manifest(manifest_path, manifest)
            last_flush = time.time()

    bar = progress(total=len(todo), desc="darken", unit="img", disable=not show_progress)
    task_settings = {"seed": seed, "exposure": (lo, hi), "noise": noise, "keep_saturated": bool(keep_saturated),
                     "quality": quality}
    try:
        if workers == 1 or backend == "thread":
            with threads(1):  # results do not depend on threads; workers must not oversubscribe
                if workers == 1:
                    for rel in todo:
                        handle(_process_one(src / rel, dst / rel, rel, task_settings, net))
                        bar.update(1)
                else:
                    _run_pool("thread", workers, todo, src, dst, task_settings, net, handle, bar)
        else:
            _run_pool("process", workers, todo, src, dst, task_settings, net, handle, bar)
    finally:
        bar.close()
        _write_manifest(manifest_path, manifest)
        # everything in the journal is now in the manifest
        journal.close(remove=True)
        seconds = time.time() - t0
        report = {"src": str(src), "dst": str(dst), "darkened": n_done, "already_done": done_before,
                  "copied": copied, "failed": sorted(failed, key=lambda f: f["path"]),
                  "images_total": len(todo) + done_before, "seconds": round(seconds, 3),
                  "images_per_second": round(n_done / seconds, 3) if seconds > 0 else None,
                  "workers": workers, "backend": backend if workers > 1 else "in-process",
                  "not_attempted": len(todo) - n_done - n_failed}
        write_json(report_path, report)
    if verbose:
        print(f"darken: {n_done} images darkened, {done_before} already done, {copied} files copied, "
              f"{len(failed)} failed in {report['seconds']:.1f} s -> {dst}", file=sys.stderr)
        for f in report["failed"]:
            print(f"  skipped {f['path']}: {f['error']}", file=sys.stderr)
    return report


def _run_pool(kind, workers, todo, src, dst, task_settings, net, handle, bar):
    """Run the images on a pool, at most 4 tasks per worker in flight, results handled as they come."""
    import concurrent.futures as cf

    if kind == "thread":
        pool = cf.ThreadPoolExecutor(max_workers=workers)
        submit = lambda rel: pool.submit(_process_one, src / rel, dst / rel, rel, task_settings, net)  # noqa: E731
    else:
        import multiprocessing as mp

        kind = _darkener_kind(net)
        state = {"kind": kind, "config": net.config(),
                 "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                 "options": {k: getattr(net, k) for k in _MODEL_OPTIONS[kind]},
                 "fast_alloc": _alloc.enabled()}
        pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                      initializer=_init_worker, initargs=(state, task_settings, os.getpid()))
        submit = lambda rel: pool.submit(_worker_task, src / rel, dst / rel, rel)  # noqa: E731
    pending = set()
    it = iter(todo)
    try:
        while True:
            while len(pending) < 4 * workers:
                rel = next(it, None)
                if rel is None:
                    break
                pending.add(submit(rel))
            if not pending:
                break
            finished, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                handle(fut.result())
                bar.update(1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
