"""Keep large tensor buffers in the process heap, instead of handing them
back to the kernel after every use: set once at ``import tasklle``, for every
caller.

Why: glibc serves every allocation above its mmap threshold (128 KiB at
start, raised dynamically up to 32 MiB) with a fresh ``mmap`` and gives it
back with ``munmap`` on ``free``; memory freed at the top of the heap is given
back too once it passes the trim threshold. A training step of Zero-DCE++
frees and re-allocates the same few activation buffers (tens to hundreds of
MiB) dozens of times, so every step faults all of them in again page by page.
Measured (2 cores shared with other jobs, torch 2.13 CPU, 2 threads, batch
4; ``benchmarks/bench_dcenet.py``, ``benchmarks/results/dcenet*.json``): a
192x192 joint step with glibc as it is takes 399,000 minor page faults and
0.7-1.0 s of system time per step; with these settings 0 faults and 3-40 ms.

What: three glibc ``mallopt`` parameters, set when ``tasklle`` is imported:

- ``M_MMAP_MAX = 0``: no mmap for large blocks, they come from the heap;
- ``M_TRIM_THRESHOLD = -1`` (glibc: "disables trimming completely") and
  ``M_TOP_PAD = 64 MiB``: freed memory at the top of a heap is kept for the
  next step instead of being given back, and the heap grows in 64 MiB steps.
  A finite threshold is not enough: with 1 GiB, inference at scale 1 on a
  1200x900 image (138 MB per 32-channel activation) still took 570,000
  faults per image, because the freed top passed 1 GiB and was trimmed every
  time; with -1, none after the first image.

Why at import (issue 18), and not only inside tasklle's entry points as
before: a user's own loop (``ZeroDCEPP(...)(x)``, ``tasklle.losses``,
``detector.loss``, ``backward()``, Adam, as the README's quick start writes
it) runs outside every entry point and got glibc as it is. Measured in one
run (2 threads, batch 4, load average 2.8-3.8 on 2 shared cores): the joint
step at 192 written with the public API outside any entry point took 0.37 s,
0.135 s of it system time (37%), 54,000 minor faults per step with glibc as
it is; with the settings made at import 0.28 s, 4 ms of system time (1.4%),
0 faults; peak resident memory 666 vs 665 MB, and after the run 666 MB (the
heap's high-water mark) vs 337 MB after ``tasklle.trim_memory()``; inside an
entry point's scope 6 ms of system time, peak 703 MB, 337 MB after it. The
heap reaches its high-water mark in the second step of a loop (fragmentation
included), after which a step takes no page faults.
The other mechanisms considered: a scope entered by the ops and models
themselves cannot cover the autograd engine, the losses and the optimiser
that run between them (the buffers are freed there, after the op's call has
returned); reusing buffers inside the ops would mean owning the autograd of
every op in the model (and torch's own ops would still fault);
``GLIBC_TUNABLES`` works but must be set before the process starts, which a
notebook kernel or a DDP worker started by someone else does not have;
``THP_MEM_ALLOC_ENABLE=1`` (torch) helped only partly in issue 10's
measurement (0.58-0.73 s per step); mmap allowed up to glibc's largest
threshold (``M_MMAP_THRESHOLD = 32 MiB``, trim at 1 GiB) left 155,000 faults
per joint step at 192, since the 64-channel concatenations are 38 MB.

Entry points (the trainers, ``enhance``, ``darken``, ``detect_split``) run
inside ``fast_alloc()``: it brings the settings in line with ``enabled()``
(the environment variable may have changed since import) and, on leaving the
outermost scope, ``malloc_trim(0)`` hands every free page back to the kernel
(the top of each heap is shrunk and free pages inside the heaps are released
with ``MADV_DONTNEED``), so resident memory after a run is what the live
objects need, not the run's peak. A user's own loop ends when the user says
so: ``tasklle.trim_memory()`` does the same trim.

What it costs a user's process (all measured in ``benchmarks/bench_dcenet.py``,
``peak_rss_mb`` / ``rss_mb_after_run`` / ``rss_mb_after_trim_memory`` per
variant in its JSON):

- resident memory *during* a run is higher: the heap keeps its high-water
  mark, fragmentation included, instead of following the live tensors;
- after a user's own loop it stays at that mark until ``trim_memory()`` (or
  an entry point's exit) hands it back; after an entry point it is lower than
  with glibc as it is, because of the trim;
- only three allocator parameters change; nothing about the memory's contents
  or ownership. One thing glibc cannot undo: any ``mallopt`` call switches off
  its dynamic mmap threshold for the rest of the process; when turned off the
  thresholds are the fixed values set back (glibc's documented defaults, or
  what ``GLIBC_TUNABLES`` set), i.e. the conservative ones that return memory
  soonest;
- large blocks allocated by other threads (OpenMP workers, DataLoader
  threads) live in glibc's per-thread arenas: those grow in 64 MiB heap
  segments, and a request larger than a segment still falls back to mmap
  there (glibc does that even with ``M_MMAP_MAX = 0``), so nothing fails;
  such a block is faulted in on every use, as without the settings. tasklle's
  large tensors are allocated on the calling thread (autograd on CPU runs
  there), and the tests check a second thread's 16 MiB blocks are reused and
  its 100 MiB block is still served.

Off: ``TASKLLE_FAST_ALLOC=0`` in the environment before the import, or
``tasklle.set_fast_alloc(False)`` at any time (the previous values are set
back at once and free memory is trimmed; entry points then leave the
allocator alone); ``set_fast_alloc(True)`` turns it on again. A no-op on any
C library other than glibc (musl, macOS, Windows). ``tasklle.show_config()``
reports whether it is on and in force, and the values used.
"""
import contextlib
import ctypes
import os
import threading

# mallopt parameter numbers (glibc <malloc.h>)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4

#: the values tasklle sets (from import on, unless turned off)
FAST = {"mmap_max": 0, "trim_threshold": -1, "top_pad": 64 << 20}
#: glibc's documented defaults (malloc.c / malloc-machine.h)
GLIBC_DEFAULTS = {"mmap_max": 65536, "trim_threshold": 128 << 10, "top_pad": 128 << 10,
                  "mmap_threshold": 128 << 10}
_PARAM = {"mmap_max": M_MMAP_MAX, "trim_threshold": M_TRIM_THRESHOLD, "top_pad": M_TOP_PAD,
          "mmap_threshold": M_MMAP_THRESHOLD}

_lock = threading.Lock()
_depth = 0
_enabled = None  # None: follow TASKLLE_FAST_ALLOC; True/False: set_fast_alloc()
_applied = False  # whether the settings are in force now (set by _sync only)
_libc = None
_libc_checked = False


def _glibc():
    """The process's glibc as a ctypes library, or None on any other C library."""
    global _libc, _libc_checked
    if not _libc_checked:
        _libc_checked = True
        try:
            lib = ctypes.CDLL(None)
            ver = lib.gnu_get_libc_version  # only glibc has it
            ver.restype = ctypes.c_char_p
            lib.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            lib.mallopt.restype = ctypes.c_int
            lib.malloc_trim.argtypes = [ctypes.c_size_t]
            lib.malloc_trim.restype = ctypes.c_int
            _libc = lib
        except (OSError, AttributeError, TypeError):
            _libc = None
    return _libc


def glibc_version():
    """glibc's version string, or None when the C library is not glibc."""
    lib = _glibc()
    return lib.gnu_get_libc_version().decode() if lib is not None else None


def _tunables_defaults():
    """The values in force before any mallopt: glibc's defaults, overridden by
    what GLIBC_TUNABLES set when the process started."""
    vals = dict(GLIBC_DEFAULTS)
    for item in os.environ.get("GLIBC_TUNABLES", "").split(":"):
        key, _, value = item.partition("=")
        name = key.strip().rsplit(".", 1)[-1]
        if key.strip().startswith("glibc.malloc.") and name in vals:
            try:
                vals[name] = int(value, 0)
            except ValueError:
                pass
    return vals


# what to set back when the settings are turned off (read once, before our first mallopt)
_previous = None


def _env_enabled():
    v = os.environ.get("TASKLLE_FAST_ALLOC", "1").strip().lower()
    return v not in ("0", "false", "no", "off")


def enabled():
    """Whether tasklle wants its allocator settings in force (glibc, and not
    turned off by ``set_fast_alloc(False)`` or ``TASKLLE_FAST_ALLOC=0``)."""
    if _glibc() is None:
        return False
    return _env_enabled() if _enabled is None else _enabled


def set_fast_alloc(on=True):
    """Turn tasklle's allocator settings on or off for this process, now
    (``None`` goes back to following the ``TASKLLE_FAST_ALLOC`` environment
    variable). Off sets back the values in force before tasklle changed them
    (glibc's defaults or what ``GLIBC_TUNABLES`` set) and hands free heap
    memory back to the kernel."""
    global _enabled
    if on is not None and not isinstance(on, bool):
        raise TypeError(f"on must be True, False or None, got {on!r}")
    _enabled = on
    _sync()


def _set(values):
    lib = _glibc()
    for name, v in values.items():
        # mallopt takes an int; -1 for the trim threshold means "never trim"
        lib.mallopt(_PARAM[name], int(min(v, 2**31 - 1)))


def trim():
    """Give free heap memory back to the kernel (glibc ``malloc_trim(0)``);
    returns True if some was released, False otherwise or without glibc.
    Public as ``tasklle.trim_memory()``: for a user's own loop, which no
    tasklle entry point ends."""
    lib = _glibc()
    return bool(lib.malloc_trim(0)) if lib is not None else False


def _sync():
    """Make the process's settings follow ``enabled()``: set them when wanted
    and not in force, set the previous values back (and trim) when in force
    and no longer wanted."""
    global _applied, _previous
    if _glibc() is None:
        return  # nothing to set (nor ever set)
    with _lock:
        want = enabled()
        if want and not _applied:
            if _previous is None:
                _previous = _tunables_defaults()
            _set(FAST)
            _applied = True
        elif not want and _applied:
            _set({k: _previous[k] for k in FAST})
            _applied = False
            trim()


def apply_at_import():
    """Called once by ``import tasklle``: the settings for the whole process
    (unless turned off by ``TASKLLE_FAST_ALLOC=0``), so a user's own loop over
    the public models, losses and ``backward()`` gets them too."""
    _sync()


def _enter():
    global _depth
    _sync()  # the environment variable may have changed since import
    with _lock:
        _depth += 1


def _exit():
    global _depth
    with _lock:
        _depth -= 1
        last = _depth == 0
    if last and active():
        trim()  # resident memory after a run: what the live objects need, not the run's peak


@contextlib.contextmanager
def fast_alloc():
    """Context manager of tasklle's entry points: brings the settings in line
    with ``enabled()`` on entry (they are normally in force since import) and
    hands free heap memory back to the kernel (``malloc_trim(0)``) on leaving
    the outermost scope. Re-entrant and thread-safe; leaves the user's choice
    (``set_fast_alloc``) as it was; a no-op without glibc."""
    _enter()
    try:
        yield
    finally:
        _exit()


def with_fast_alloc(fn):
    """Decorator form of :func:`fast_alloc`."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with fast_alloc():
            return fn(*args, **kwargs)

    return wrapper


def active():
    """Whether the settings are in force right now."""
    return _applied and _glibc() is not None


def describe():
    """One line for ``show_config()``."""
    ver = glibc_version()
    if ver is None:
        return "off (not glibc: nothing to change)"
    state = "on" if enabled() else "off"
    how = ("set_fast_alloc()" if _enabled is not None
           else f"TASKLLE_FAST_ALLOC={os.environ.get('TASKLLE_FAST_ALLOC', '(unset)')}")
    if state == "off":
        return f"off ({how}; glibc {ver}; the allocator is left as glibc has it)"
    vals = ", ".join(f"{k}={v}" for k, v in FAST.items())
    return (f"on ({how}; glibc {ver}; for the whole process since import: mallopt {vals}; "
            f"malloc_trim(0) at the end of each tasklle entry point, tasklle.trim_memory() for your own loop; "
            f"off: tasklle.set_fast_alloc(False) or TASKLLE_FAST_ALLOC=0)"
            f"{' [in force]' if _applied else ' [not in force yet]'}")
