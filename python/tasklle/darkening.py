"""Synthetic low light: darken single images or a whole WIDER-format dataset.

``darken(images, exposure, ...)`` runs an exposure-conditioned darkener:
the project's ``tasklle.models.ECZeroDCE`` (``darkener='ec-zero-dce'``,
shipped weights by default) or LEDNet's released ``ConditionZeroDCE``
(``darkener='lednet'``, with LEDNet's ``ce_zerodce.pth`` as ``model``, run
through LEDNet's generation pipeline, see ``tasklle.models.lednet_darkener``).
By default it follows the method's generation: saturated pixels (L/100 > 0.97)
stay bright and no noise is added, as LEDNet's generation script adds none.
Sensor noise is an option (``noise='lednet'`` or ``'physical'``,
``tasklle.noise``) for harder data.

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
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch

from . import _alloc
from ._threads import threads
from ._alloc import with_fast_alloc

__all__ = ["darken", "darken_dataset", "image_seed", "MANIFEST", "REPORT", "DARKENERS"]

MANIFEST = "darken_manifest.json"
REPORT = "darken_report.json"
JOURNAL = "darken_journal.jsonl"
MANIFEST_FORMAT = "tasklle-darken-manifest/1"
_FLUSH_SECONDS = 5.0  # manifest rewrite interval during a run
DARKENERS = ("ec-zero-dce", "lednet")
# the module options (not weights) that change a darkener's output
_MODEL_OPTIONS = {"ec-zero-dce": ("preserve_color", "keep_saturated", "scale_factor"),
                  "lednet": ("channel_order", "tile")}
_CACHE = {}


# -- helpers -----------------------------------------------------------------
def image_seed(seed, key):
    """The per-image seed: the first 63 bits of SHA-256(f'{seed}:{key}')."""
    digest = hashlib.sha256(f"{int(seed)}:{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _sha256_file(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _resolve_model(model, darkener="ec-zero-dce"):
    """The darkener module. 'ec-zero-dce': None -> the shipped weights (cached), a path ->
    ECZeroDCE.load; 'lednet': a path to LEDNet's ce_zerodce.pth -> ConditionZeroDCE.from_lednet.
    A module is used as it is (its class decides the pipeline)."""
    from .models.ec_zero_dce import ECZeroDCE

    if darkener not in DARKENERS:
        raise ValueError(f"darkener must be one of {DARKENERS}, got {darkener!r}")
    if isinstance(model, torch.nn.Module):
        return model
    if darkener == "lednet":
        from .models.lednet_darkener import ConditionZeroDCE

        if model is None:
            raise ValueError("darkener 'lednet' needs LEDNet's weights: pass the path of ce_zerodce.pth (a release "
                             "asset of LEDNet, github.com/sczhou/LEDNet; --weights on the command line)")
        if isinstance(model, (str, os.PathLike)):
            return ConditionZeroDCE.from_lednet(model)
        raise TypeError(f"model must be a path or a ConditionZeroDCE, got {type(model).__name__}")
    if model is None:
        if "pretrained" not in _CACHE:
            _CACHE["pretrained"] = ECZeroDCE.pretrained()
        return _CACHE["pretrained"]
    if isinstance(model, (str, os.PathLike)):
        return ECZeroDCE.load(model)
    if isinstance(model, torch.nn.Module):
        return model
    raise TypeError(f"model must be None, a path or an ECZeroDCE, got {type(model).__name__}")


def _model_fingerprint(model):
    """SHA-256 over the model's config and weights: a manifest made by another model is not resumed."""
    h = hashlib.sha256()
    cfg = model.config() if hasattr(model, "config") else {}
    h.update(json.dumps(cfg, sort_keys=True).encode())
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _check_noise(noise):
    from .noise import NOISE_KINDS

    if isinstance(noise, str) and noise.lower() == "none":
        noise = None
    if noise not in NOISE_KINDS:
        raise ValueError(f"noise must be one of 'lednet', 'physical' or None, got {noise!r}")
    return noise


def _check_exposure_value(e, name="exposure"):
    if isinstance(e, bool) or not isinstance(e, (int, float)) or not (0 < e < 1):
        raise ValueError(f"{name} must be a number in (0, 1), got {e!r}")
    return float(e)


def _check_seed_quality(seed, quality):
    """The checks of --seed and --quality, shared by the dataset and single-image paths."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ValueError(f"quality must be an int in [1, 100], got {quality!r}")


def _check_exposure_range(exposure):
    """A number (fixed E) or a pair (lo, hi) -> (lo, hi)."""
    if isinstance(exposure, (int, float)) and not isinstance(exposure, bool):
        e = _check_exposure_value(exposure)
        return e, e
    try:
        lo, hi = exposure
    except (TypeError, ValueError):
        raise ValueError(f"exposure must be a number or a pair (lo, hi), got {exposure!r}") from None
    lo, hi = _check_exposure_value(lo, "exposure lo"), _check_exposure_value(hi, "exposure hi")
    if lo > hi:
        raise ValueError(f"exposure range must have lo <= hi, got {exposure!r}")
    return lo, hi


def _darkener_kind(model):
    from .models.lednet_darkener import ConditionZeroDCE

    return "lednet" if isinstance(model, ConditionZeroDCE) else "ec-zero-dce"


def _darken_tensor(x, exposures, gens, noise, model, keep_saturated):
    """x (B, 3, H, W); exposures list of B floats; gens B generators -> (y, list of noise params)."""
    from .models.ec_zero_dce import SATURATION_THRESHOLD, lightness
    from .noise import add_noise

    e = torch.tensor(exposures, dtype=x.dtype)
    with torch.no_grad():
        if _darkener_kind(model) == "lednet":
            # LEDNet's pipeline conditions saturated regions on their own lightness (its exposure map)
            y = model.darken(x, e)
        else:
            y, _ = model(x, e)
            if keep_saturated and not getattr(model, "keep_saturated", False):
                y = torch.where(lightness(x) > SATURATION_THRESHOLD, x, y)
        y = y.clamp(0.0, 1.0)
        outs, params = [], []
        for i in range(x.shape[0]):
            yi, p = add_noise(y[i], noise, generator=gens[i])
            outs.append(yi.clamp(0.0, 1.0))
            params.append(p)
    return torch.stack(outs), params


# -- single images -------------------------------------------------------------
@with_fast_alloc  # large buffers stay in the heap for the run (tasklle._alloc)
def darken(images, exposure, seed=None, noise=None, model=None, keep_saturated=True, return_info=False,
           darkener="ec-zero-dce"):
    """Darken one image or a batch to exposure E (and optionally add sensor noise).

    Args:
        images: tensor (3,H,W)/(B,3,H,W) in [0,1], NumPy (H,W,3)/(B,H,W,3)
            uint8 or float, PIL image or path; the result has the same kind
            (a path gives a (3,H,W) tensor).
        exposure: target exposure E in (0, 1): a number, or one per image.
        seed: int -> image i uses ``image_seed(seed, i)`` for its noise
            (reproducible); None -> drawn from torch's default generator.
        noise: None (default: the method's generation adds no noise), 'lednet' or 'physical'.
        model: for 'ec-zero-dce': None (shipped ECZeroDCE weights), a checkpoint path or an
            ECZeroDCE; for 'lednet': the path of LEDNet's ce_zerodce.pth or a ConditionZeroDCE.
        keep_saturated: pixels with lightness L/100 > 0.97 keep their value (LEDNet; default).
            LEDNet's pipeline always treats them its own way (their exposure map is their L/100).
        darkener: 'ec-zero-dce' (the project's, default) or 'lednet' (LEDNet's released net).
        return_info: also return a list of per-image dicts
            {'exposure', 'seed', 'noise': drawn noise parameters}.
    """
    from .io import from_tensor, to_tensor
    from .noise import generator_for

    x, kind = to_tensor(images)
    x = x.float()
    B = x.shape[0]
    if isinstance(exposure, (int, float)) and not isinstance(exposure, bool):
        exposures = [_check_exposure_value(exposure)] * B
    else:
        try:
            vals = torch.as_tensor(exposure, dtype=torch.float64).reshape(-1).tolist()
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"exposure must be a number or one number per image, got {exposure!r}") from None
        if len(vals) != B:
            raise ValueError(f"exposure: {len(vals)} values for {B} images")
        exposures = [_check_exposure_value(v) for v in vals]
    noise = _check_noise(noise)
    if seed is None:
        seed = int(torch.randint(0, 2**62, ()).item())
    elif isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
    net = _resolve_model(model, darkener)
    seeds = [image_seed(seed, i) for i in range(B)]
    y, params = _darken_tensor(x, exposures, [generator_for(s) for s in seeds], noise, net, keep_saturated)
    result = from_tensor(y, kind)
    if return_info:
        info = [{"exposure": e, "seed": s, "noise": p} for e, s, p in zip(exposures, seeds, params)]
        return result, info
    return result


# -- datasets --------------------------------------------------------------------
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
    if model_state.get("fast_alloc"):  # the parent's choice (set_fast_alloc / TASKLLE_FAST_ALLOC)
        _alloc.apply_for_process()  # our own worker: keep large buffers in its heap
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
                   keep_saturated=True, quality=95, backend="thread", verbose=True, darkener="ec-zero-dce"):
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

    bar = progress(total=len(todo), desc="darken", unit="img")
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
