"""Shared timing harness for the benchmarks: C op vs its reference twin in one
run, same thread count, medians over repeats, JSON out.

Usage in a benchmark script:
    from common import timeit, write_results, machine_info
"""
import json
import os
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def timeit(fn, repeat=7, warmup=1, min_time=0.0):
    """Run fn() warmup times, then `repeat` times; return dict of median/min/mean seconds."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeat or (time.perf_counter() - start) < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "mean_s": statistics.fmean(times),
            "repeats": len(times)}


def machine_info():
    import numpy
    import torch

    import tasklle

    return {
        "cpu": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "tasklle_threads": tasklle.get_num_threads(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def write_results(name, results):
    """Write benchmarks/results/<name>.json (atomically) and print it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "machine": machine_info(), "results": results}
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)
    print(json.dumps(payload, indent=2))
    print(f"wrote {path}")
    return path


def copy_bandwidth_gbs(nbytes=256 * 2**20, repeat=5):
    """Measured memory copy bandwidth (read + write bytes per second, GB/s) with numpy."""
    import numpy as np

    a = np.ones(nbytes // 8)
    b = np.empty_like(a)
    t = timeit(lambda: np.copyto(b, a), repeat=repeat)
    return 2 * a.nbytes / t["median_s"] / 1e9
