"""Keep large tensor buffers in the process heap while tasklle trains or
enhances, instead of handing them back to the kernel after every use.

Why: glibc serves every allocation above its mmap threshold (128 KiB at
start, raised dynamically up to 32 MiB) with a fresh ``mmap`` and gives it
back with ``munmap`` on ``free``; memory freed at the top of the heap is given
back too once it passes the trim threshold. A training step of Zero-DCE++
frees and re-allocates the same few activation buffers (tens to hundreds of
MiB) dozens of times, so every step faults all of them in again page by page.
Measured (2 cores shared with other jobs, torch 2.13 CPU, 2 threads, batch
4; ``benchmarks/bench_dcenet.py``, ``benchmarks/results/dcenet*.json``): a
192x192 joint step with glibc as it is takes 399,000 minor page faults and
0.7-1.0 s of system time per step; inside the scope 0 faults and 3-40 ms.
Step time at a load average of 1-2: 0.71 s as it is, 0.38-0.44 s inside the
scope, 0.28 s inside the scope with a channels-last model and input.

What: inside ``fast_alloc()`` (a context manager, re-entrant and thread-safe,
applied by tasklle's training loops, enhancement, darkening and evaluation),
three glibc ``mallopt`` parameters are set:

- ``M_MMAP_MAX = 0``: no mmap for large blocks, they come from the heap;
- ``M_TRIM_THRESHOLD = -1`` (glibc: "disables trimming completely") and
  ``M_TOP_PAD = 64 MiB``: freed memory at the top of a heap is kept for the
  next step instead of being given back, and the heap grows in 64 MiB steps.
  A finite threshold is not enough: with 1 GiB, inference at scale 1 on a
  1200x900 image (138 MB per 32-channel activation) still took 570,000
  faults per image, because the freed top passed 1 GiB and was trimmed every
  time; with -1, none after the first image.

On leaving the outermost scope the previous values are set again and
``malloc_trim(0)`` hands every free page back to the kernel (the top of each
heap is shrunk and free pages inside the heaps are released with
``MADV_DONTNEED``), so resident memory after a run is what the live objects
need, not the run's peak.

Safe inside a user's notebook process because:

- only three allocator parameters change, only while a tasklle entry point
  runs; nothing about the memory's contents or ownership changes;
- the previous values are set again on exit. One thing glibc cannot undo:
  any ``mallopt`` call switches off its dynamic mmap threshold for the rest
  of the process; afterwards the thresholds are the fixed values we restore
  (glibc's documented defaults, or what ``GLIBC_TUNABLES`` set), i.e. the
  conservative ones that return memory soonest;
- resident memory *during* a run is higher: the heap keeps its high-water
  mark, fragmentation included, instead of following the live tensors. Peak
  resident memory (``ru_maxrss``, ``benchmarks/results/dcenet.json``), glibc
  as it is vs inside the scope, same NCHW model: joint step at 192 1.00 vs
  1.15 GB, at 256 1.38 vs 1.97 GB; DCE-Net forward+backward at 4x192x192
  0.95 vs 1.05 GB, at 4x512x512 4.2 vs 6.0 GB (channels-last: 4.9 GB).
  *After* the run it is lower than with glibc as it is, because of the
  ``malloc_trim``: 0.34 vs 0.61 GB (joint 192), 0.26 vs 1.1 GB (512);
- large blocks allocated by other threads (OpenMP workers, DataLoader
  threads) live in glibc's per-thread arenas: those grow in 64 MiB heap
  segments, and a request larger than a segment still falls back to mmap
  there (glibc does that even with ``M_MMAP_MAX = 0``), so nothing fails;
  such a block is faulted in on every use, as without the scope. tasklle's
  large tensors are allocated on the calling thread (autograd on CPU runs
  there), and the tests check a second thread's 16 MiB blocks are reused and
  its 100 MiB block is still served;
- it is off with ``tasklle.set_fast_alloc(False)`` or the environment
  variable ``TASKLLE_FAST_ALLOC=0`` (read at each scope entry), and a no-op on
  any C library other than glibc (musl, macOS, Windows);
- ``tasklle.show_config()`` reports whether it is on and the values used.

Other options: ``GLIBC_TUNABLES`` works (same faults and step time in our
measurement) but must be set before the process starts, which a notebook
kernel or a DDP worker started by someone else does not have, and it keeps the
run's peak resident afterwards (1.12 GB after the joint run vs 0.34 GB with
the scope's ``malloc_trim``); ``THP_MEM_ALLOC_ENABLE=1`` (torch) helped only
partly in issue 10's measurement (0.58-0.73 s per step); mmap allowed up to
glibc's largest threshold (``M_MMAP_THRESHOLD = 32 MiB``, trim at 1 GiB) left
155,000 faults per joint step at 192, since the 64-channel concatenations
are 38 MB; reusing buffers by hand would mean rewriting the autograd of every
op in the model.
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

#: the values set inside the scope
FAST = {"mmap_max": 0, "trim_threshold": -1, "top_pad": 64 << 20}
#: glibc's documented defaults (malloc.c / malloc-machine.h)
GLIBC_DEFAULTS = {"mmap_max": 65536, "trim_threshold": 128 << 10, "top_pad": 128 << 10,
                  "mmap_threshold": 128 << 10}
_PARAM = {"mmap_max": M_MMAP_MAX, "trim_threshold": M_TRIM_THRESHOLD, "top_pad": M_TOP_PAD,
          "mmap_threshold": M_MMAP_THRESHOLD}

_lock = threading.Lock()
_depth = 0
_enabled = None  # None: follow TASKLLE_FAST_ALLOC; True/False: set_fast_alloc()
_applied = False  # whether the current outermost scope changed the settings
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


# what to restore on leaving the outermost scope; updated when the user
# changes a value through set_malloc_params
_previous = None


def _env_enabled():
    v = os.environ.get("TASKLLE_FAST_ALLOC", "1").strip().lower()
    return v not in ("0", "false", "no", "off")


def enabled():
    """Whether ``fast_alloc()`` scopes will change the allocator settings."""
    if _glibc() is None:
        return False
    return _env_enabled() if _enabled is None else _enabled


def set_fast_alloc(on=True):
    """Turn tasklle's allocator settings on or off for this process (``None``
    goes back to following the ``TASKLLE_FAST_ALLOC`` environment variable).
    Takes effect at the next entry into a tasklle training/inference call."""
    global _enabled
    if on is not None and not isinstance(on, bool):
        raise TypeError(f"on must be True, False or None, got {on!r}")
    _enabled = on


def _set(values):
    lib = _glibc()
    for name, v in values.items():
        # mallopt takes an int; -1 for the trim threshold means "never trim"
        lib.mallopt(_PARAM[name], int(min(v, 2**31 - 1)))


def trim():
    """Give free heap memory back to the kernel (glibc ``malloc_trim(0)``);
    returns True if some was released, False otherwise or without glibc."""
    lib = _glibc()
    return bool(lib.malloc_trim(0)) if lib is not None else False


def _enter():
    global _depth, _applied, _previous
    with _lock:
        _depth += 1
        if _depth == 1:
            _applied = enabled()
            if _applied:
                if _previous is None:
                    _previous = _tunables_defaults()
                _set(FAST)


def _exit():
    global _depth, _applied
    with _lock:
        _depth -= 1
        if _depth == 0 and _applied:
            _applied = False
            _set({k: _previous[k] for k in FAST})
            trim()


@contextlib.contextmanager
def fast_alloc():
    """Context manager: glibc keeps large buffers in the heap for its duration
    (see the module docstring); previous settings back and free memory
    returned to the kernel on exit. Re-entrant; a no-op when turned off or
    without glibc."""
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


def apply_for_process():
    """Enter the scope for the rest of this process, for processes tasklle
    starts and owns (the darkening pool's workers), where there is nothing of
    the user's to restore to. The caller has already decided it is wanted
    (the parent's ``enabled()``), so it applies whatever this process's
    environment says."""
    global _enabled
    _enabled = True
    _enter()


def active():
    """Whether the settings are in force right now (inside an applied scope)."""
    return _applied


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
    return (f"on ({how}; glibc {ver}; while tasklle trains/enhances/darkens/detects: mallopt {vals}; "
            f"previous values and malloc_trim(0) after; off: tasklle.set_fast_alloc(False) or "
            f"TASKLLE_FAST_ALLOC=0){' [active now]' if _applied else ''}")
