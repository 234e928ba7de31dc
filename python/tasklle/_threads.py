"""One place that sets how many threads the C core uses, and a build report.

The C core uses its own OpenMP runtime (libgomp from the compiler) while torch
ships another. They never run parallel regions at the same time in tasklle (a
torch op calls the core synchronously, and torch's pool is idle meanwhile), so
with both set to the core count the process uses at most that many busy
threads. ``set_num_threads`` sets the core and, unless told otherwise, torch's
intra-op pool to the same number so the two agree.
"""
import os
import platform
import sys

from . import _C


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


def get_num_threads():
    """The C core's thread count."""
    return _C.get_num_threads()


def show_config(file=None):
    """Print how tasklle was built and how it will run (compiler, OpenMP,
    versions, threads)."""
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
    ]
    print("\n".join(lines), file=file)
    return info
