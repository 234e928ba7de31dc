"""Fused Zero-DCE losses (C core) vs the pure-PyTorch reference twin: forward
and backward of the full objective (spa + exp + col + tv) at B=4 x 3x512x512,
same thread count for both. JSON out in benchmarks/results/zerodce_loss.json.

    PYTHONPATH=python python benchmarks/bench_zerodce_loss.py [--threads N] [--size 512] [--batch 4]
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import copy_bandwidth_gbs, timeit, write_results  # noqa: E402

import tasklle  # noqa: E402
from tasklle.ops.zerodce_loss import zero_dce_losses  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=0, help="threads for both paths (0 = default)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--tag", default="", help="suffix of the results file name (e.g. t1 for one thread)")
    args = ap.parse_args(argv)
    tasklle.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    shape = (args.batch, 3, args.size, args.size)
    y0 = torch.rand(shape, generator=g)
    i0 = torch.rand(shape, generator=g) * 0.3
    a0 = torch.randn(shape, generator=g) * 0.1

    results = {"shape": list(shape), "dtype": "float32", "threads": tasklle.get_num_threads()}
    for impl in ("c", "reference"):
        y = y0.clone().requires_grad_()
        a = a0.clone().requires_grad_()

        def fwd():
            with torch.no_grad():
                zero_dce_losses(y, i0, a, 0.6, impl=impl)

        def fwd_bwd():
            y.grad = None
            a.grad = None
            total, _ = zero_dce_losses(y, i0, a, 0.6, impl=impl)
            total.backward()

        results[impl] = {"forward": timeit(fwd, repeat=args.repeat),
                         "forward_backward": timeit(fwd_bwd, repeat=args.repeat)}
    c, r = results["c"], results["reference"]
    results["speedup_forward"] = r["forward"]["median_s"] / c["forward"]["median_s"]
    results["speedup_forward_backward"] = r["forward_backward"]["median_s"] / c["forward_backward"]["median_s"]
    # bytes the fused path must move at least: read Y, I, A; write dY, dA
    nbytes = 5 * y0.numel() * 4
    results["c_effective_gbs"] = nbytes / c["forward_backward"]["median_s"] / 1e9
    results["copy_bandwidth_gbs"] = copy_bandwidth_gbs()
    write_results("zerodce_loss" + (f"_{args.tag}" if args.tag else ""), results)


if __name__ == "__main__":
    main()
