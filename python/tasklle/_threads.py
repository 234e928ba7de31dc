"""One place that sets how many threads the C core uses, and a build report.

``set_num_threads`` sets the C core and, unless told otherwise, torch's
intra-op pool to the same number so the two agree.

OpenMP runtimes (measured, torch 2.13.0+cpu on Linux, 2 cores; reproduce with
``python benchmarks/bench_curve.py --threads-only``):

- One runtime, one pool. torch's wheel bundles ``torch/lib/libgomp.so.1``
  with the same soname as the compiler's ``libgomp.so.1`` that the C core
  links, so the dynamic loader maps only one of them per process (torch's if
  torch is imported first, the system's if tasklle is). The core and torch
  share one OpenMP runtime and one thread pool: torch's 2-thread ops add one
  OpenMP worker to the process and the curve kernel after them adds none.
  Medians at load average 9-11 (other users): a 16-channel 64x64 conv took
  178-182 us after a conv and 203-213 us right after the curve kernel
  (1x3x256x256); the kernel 53-54 us after itself and 62-68 us after the
  conv. The small extra is cache eviction (a conv after a torch copy of the
  same size, or after the kernel run with 1 thread, pays it too), not
  threads. No oversubscription, nothing to fix.
- Two runtimes would oversubscribe. With a second, separate libgomp in the
  process (simulated by loading a renamed copy; a torch build that bundles a
  renamed runtime would do this), idle workers of one runtime spin-wait after
  each parallel region (libgomp's GOMP_SPINCOUNT, 300000 pause loops by
  default) while the other pool needs the cores: the same conv took 29-98 ms
  right after an empty region of the other runtime, vs 0.16-0.20 ms before.
  With ``GOMP_SPINCOUNT=0`` in the environment it was 0.29-0.46 vs
  0.26-0.37 ms, but that setting also slows the normal one-runtime case
  (conv 266-273 us, curve kernel 124 us), so it is not set by default.
  libgomp reads it only when loaded: it cannot be changed from Python later.
- On a machine shared with other busy processes, 2-thread OpenMP regions
  stall whenever one thread is descheduled at a barrier: an elementwise torch
  op on 120k floats took 8-16 ms with 2 threads vs 0.03-0.3 ms with 1 thread
  (load average about 4 on 2 cores). Use ``set_num_threads(1)`` there.
"""
import contextlib
import os
import platform
import sys

from . import _C, _alloc


def set_num_threads(n, torch_too=True):
    """Set the C core's OpenMP thread count (``0`` restores the default, the
    number of processors). With ``torch_too`` (default) torch's intra-op
    thread count is set to the same value so the two pools do not
    oversubscribe the cores."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    _C.set_num_threads(n)
    if torch_too:
        import torch

        torch.set_num_threads(_C.get_num_threads())


@contextlib.contextmanager
def threads(n):
    """Run a block with the C core and torch on ``n`` threads, restoring both
    counts afterwards (also on an exception)."""
    import torch

    before_c, before_torch = _C.get_num_threads(), torch.get_num_threads()
    set_num_threads(n)
    try:
        yield
    finally:
        _C.set_num_threads(before_c)
        torch.set_num_threads(before_torch)


def get_num_threads():
    """The C core's thread count."""
    return _C.get_num_threads()


def show_config(file=None):
    """Print how tasklle was built and how it will run (compiler, OpenMP,
    versions, threads, the allocator settings of :mod:`tasklle._alloc`)."""
    import numpy
    import torch

    info = _C.build_info()
    lines = [
        f"tasklle {__import__('tasklle').__version__}",
        f"  python            {platform.python_version()} ({sys.executable})",
        f"  built with        {info['compiler']}, OpenMP {'on' if info['openmp'] else 'off'}, "
        f"numpy {info['numpy_build']}, python {info['python_build']}",
        f"  numpy             {numpy.__version__}",
        f"  torch             {torch.__version__} (intra-op threads {torch.get_num_threads()})",
        f"  C core threads    {_C.get_num_threads()}",
        f"  cpus              {os.cpu_count()}",
        f"  OMP_NUM_THREADS   {os.environ.get('OMP_NUM_THREADS', '(unset)')}",
        f"  fast alloc        {_alloc.describe()}",
    ]
    print("\n".join(lines), file=file)
    return info
