"""Benchmark: forward + backward of the curve op, C core vs its pure-PyTorch twin.

Both run in this process with the same thread count (tasklle and torch set to
--threads), float32, 8 iterations, at B=4 x 3x512x512 and 1 x 3x900x1200, for
both map layouts:
  shared  A (B,3,H,W)   Zero-DCE++      return_half=False
  per     A (B,24,H,W)  Zero-DCE        return_half=True (half computed, the
                                          loss uses only the final image, as in Zero-DCE)
One timed call = forward + torch.autograd.grad of the final image w.r.t. x and A
with a fixed upstream gradient (no .grad accumulation).

The memory-traffic floor is the bytes the kernels must move (each input read
once, each output written once; E = B*3*H*W elements, m = maps):
  forward   x, A read; final (+ half) written       (2 + m [+1]) E
  backward  grad_out, x, A read; grad_x, grad_A written  (3 + 2m) E
divided by this machine's measured copy bandwidth (read + write bytes / s,
benchmarks.common.copy_bandwidth_gbs). "floor_ratio" is measured C time / floor.

Also reports the bytes each path saves for backward (saved_tensors_hooks), and
an interleaving check: a small torch conv timed alone vs right after the C
kernel, and the C kernel alone vs right after the conv (two OpenMP pools
fighting for the cores would show up there), plus which libgomp files are
loaded.

Usage: PYTHONPATH=python python benchmarks/bench_curve.py [--threads N] [--repeat R] [--quick]
The machine may be shared: run it a few times and compare medians.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402

import tasklle  # noqa: E402
from common import copy_bandwidth_gbs, timeit, write_results  # noqa: E402
from tasklle import _C  # noqa: E402
from tasklle.ops.curve import curve  # noqa: E402
from tasklle.reference.curve import curve as ref_curve  # noqa: E402

ITER = 8


def make_case(B, H, W, layout, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(B, 3, H, W, generator=g).requires_grad_()
    A = (torch.rand(B, 3 * (ITER if layout == "per" else 1), H, W, generator=g) * 2 - 1).requires_grad_()
    grad = torch.randn(B, 3, H, W, generator=g)
    return x, A, grad


def fwd_bwd(fn, x, A, grad, layout):
    out = fn(x, A, ITER, layout == "per")
    final = out[0] if layout == "per" else out
    return torch.autograd.grad(final, (x, A), grad)


def measure(fn, repeat):
    """common.timeit's wall-clock statistics plus the median process CPU time
    per call (all threads): on a machine shared with other users the wall time
    includes waiting for a core, the CPU time does not (it does include
    OpenMP spin-waiting)."""
    cpu = []

    def timed():
        c = time.process_time()
        fn()
        cpu.append(time.process_time() - c)

    res = timeit(timed, repeat=repeat)
    res["cpu_median_s"] = statistics.median(cpu[1:])  # cpu[0] is the warm-up call
    return res


def floor_bytes(B, H, W, layout, itemsize=4):
    E = B * 3 * H * W
    m = ITER if layout == "per" else 1
    fwd = (2 + m + (1 if layout == "per" else 0)) * E
    bwd = (3 + 2 * m) * E
    return (fwd + bwd) * itemsize


def saved_bytes(fn, x, A, layout):
    """Bytes of the distinct tensors autograd keeps for backward."""
    seen = {}

    def pack(t):
        seen[(t.untyped_storage().data_ptr(), t.dtype)] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x, A, ITER, layout == "per")
    return sum(seen.values())


def interleave_check(repeat=200):
    """Median microseconds of a small conv and of the C kernel, alone and right after each other."""
    x = torch.rand(1, 3, 256, 256)
    A = torch.rand(1, 3, 256, 256)
    out = torch.empty_like(x)
    xn, An, on = x.numpy(), A.numpy(), out.numpy()
    conv = torch.nn.Conv2d(16, 16, 3, padding=1)
    inp = torch.rand(1, 16, 64, 64)

    def kernel():
        _C.curve_forward(on, None, xn, An, ITER, ITER // 2)

    def tconv():
        with torch.no_grad():
            conv(inp)

    # The pairs are timed alternately (ABAB...) so that load from other users of
    # the machine hits both sides alike: "alone" = the same op right before.
    pairs = {"conv_after_conv_us": (tconv, tconv), "conv_after_kernel_us": (kernel, tconv),
             "kernel_after_kernel_us": (kernel, kernel), "kernel_after_conv_us": (tconv, kernel)}
    times = {k: [] for k in pairs}
    for _ in range(10):  # warm both
        kernel(), tconv()
    for _ in range(repeat):
        for name, (before, timed) in pairs.items():
            before()
            t = time.perf_counter()
            timed()
            times[name].append(time.perf_counter() - t)
    res = {k: statistics.median(v) * 1e6 for k, v in times.items()}
    res["libgomp_loaded"] = sorted({ln.split()[-1] for ln in open("/proc/self/maps") if "libgomp" in ln}) \
        if os.path.exists("/proc/self/maps") else "unknown"
    res["process_threads"] = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None
    return res


def second_runtime_check(repeat=100):
    """What two separate OpenMP runtimes would do (Linux only): load a renamed
    copy of the loaded libgomp (a distinct runtime with its own thread pool),
    run an empty 2-thread region in it, and time a torch conv right after it vs
    right after another conv. Its idle workers spin (GOMP_SPINCOUNT) while
    torch's pool needs the cores."""
    import ctypes
    import shutil
    import tempfile

    libs = sorted({ln.split()[-1] for ln in open("/proc/self/maps") if "libgomp" in ln})
    if not libs:
        return {"skipped": "no libgomp loaded"}
    tmp = tempfile.mkdtemp()
    try:
        copy = os.path.join(tmp, "libgomp-copy.so.1")
        shutil.copy(libs[0], copy)
        gomp = ctypes.CDLL(copy)  # by path + new inode: glibc loads a second copy
        cb = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda p: None)
        conv = torch.nn.Conv2d(16, 16, 3, padding=1)
        inp = torch.rand(1, 16, 64, 64)

        def other():
            gomp.GOMP_parallel(cb, None, 2, 0)

        def tconv():
            with torch.no_grad():
                conv(inp)

        def med(before):
            ts = []
            for _ in range(repeat):
                before()
                t = time.perf_counter()
                tconv()
                ts.append(time.perf_counter() - t)
            return statistics.median(ts) * 1e6

        # in this order: before the other runtime ever ran, right after its regions,
        # then after a conv again (its workers exist now and may still spin)
        res = {"conv_after_conv_us": med(tconv), "conv_after_other_runtime_us": med(other),
               "conv_after_conv_other_runtime_used_us": med(tconv)}
        res["GOMP_SPINCOUNT"] = os.environ.get("GOMP_SPINCOUNT", "(unset)")
        res["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY", "(unset)")
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=0, help="threads for tasklle and torch (0: all cores)")
    p.add_argument("--repeat", type=int, default=5, help="timed repeats per case (median reported)")
    p.add_argument("--quick", action="store_true", help="small shapes, for a smoke run")
    p.add_argument("--threads-only", action="store_true",
                   help="only the OpenMP interleaving checks (and the two-runtime simulation)")
    args = p.parse_args(argv)
    tasklle.set_num_threads(args.threads)  # also sets torch's intra-op threads
    if args.threads_only:
        res = {"threads": tasklle.get_num_threads(), "interleave": interleave_check(),
               "second_runtime": second_runtime_check() if sys.platform.startswith("linux") else None,
               "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}
        write_results("curve_openmp_interleave", res)
        return
    shapes = [(1, 64, 64), (1, 45, 60)] if args.quick else [(4, 512, 512), (1, 900, 1200)]

    bw = copy_bandwidth_gbs()
    print(f"threads {tasklle.get_num_threads()} (torch {torch.get_num_threads()}), copy bandwidth {bw:.2f} GB/s",
          flush=True)
    cases = []
    for B, H, W in shapes:
        for layout in ("shared", "per"):
            x, A, grad = make_case(B, H, W, layout)
            # the C op must agree with the twin before its time means anything
            for a, b in zip(fwd_bwd(curve, x, A, grad, layout), fwd_bwd(ref_curve, x, A, grad, layout)):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
            t_c = measure(lambda: fwd_bwd(curve, x, A, grad, layout), args.repeat)
            t_r = measure(lambda: fwd_bwd(ref_curve, x, A, grad, layout), args.repeat)
            nbytes = floor_bytes(B, H, W, layout)
            floor_s = nbytes / (bw * 1e9)
            case = {
                "shape": [B, 3, H, W], "layout": layout, "iterations": ITER, "dtype": "float32",
                "c_op": t_c, "reference": t_r,
                "speedup_median": t_r["median_s"] / t_c["median_s"],
                "speedup_cpu_median": t_r["cpu_median_s"] / t_c["cpu_median_s"],
                "floor_bytes": nbytes, "floor_s": floor_s,
                "floor_ratio_median": t_c["median_s"] / floor_s,
                "saved_for_backward_bytes": {"c_op": saved_bytes(curve, x, A, layout),
                                             "reference": saved_bytes(ref_curve, x, A, layout)},
            }
            cases.append(case)
            print(f"{B}x3x{H}x{W} {layout:6s}: C {t_c['median_s'] * 1e3:7.1f} ms (cpu {t_c['cpu_median_s'] * 1e3:6.1f})"
                  f"  reference {t_r['median_s'] * 1e3:7.1f} ms (cpu {t_r['cpu_median_s'] * 1e3:7.1f})  speedup "
                  f"{case['speedup_median']:5.1f}x (cpu {case['speedup_cpu_median']:5.1f}x)  floor "
                  f"{floor_s * 1e3:5.1f} ms (C at {case['floor_ratio_median']:.2f}x floor)", flush=True)
            del x, A, grad
    inter = interleave_check()
    print("interleave:", inter, flush=True)
    name = "curve_quick" if args.quick else f"curve_threads{tasklle.get_num_threads()}"
    write_results(name, {"copy_bandwidth_gbs": bw, "cases": cases, "interleave": inter,
                         "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None})


if __name__ == "__main__":
    main()
