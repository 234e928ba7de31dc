"""One full Zero-DCE++ training step (DCE-Net++ forward, the curve, the four
losses, backward, gradient clip, Adam step) with the C path (C curve + fused C
losses) vs the pure-reference path (PyTorch twins of both), same weights, same
batch, same thread count. JSON out in benchmarks/results/train_step.json.

    PYTHONPATH=python python benchmarks/bench_train_step.py [--batch 4] [--size 512] [--threads N]
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import timeit, write_results  # noqa: E402

import tasklle  # noqa: E402
from tasklle.losses import zero_dce_loss  # noqa: E402
from tasklle.models import ZeroDCEPP  # noqa: E402
from tasklle.ops import curve  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=0, help="threads for both paths (0 = default)")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tag", default="", help="suffix of the results file name (e.g. t1 for one thread)")
    args = ap.parse_args(argv)
    tasklle.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = ZeroDCEPP().init_weights()
    x = torch.rand(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0)) * 0.3

    results = {"shape": [args.batch, 3, args.size, args.size], "model": "ZeroDCEPP(scale_factor=1)",
               "threads": tasklle.get_num_threads()}
    losses = {}
    for impl in ("c", "reference"):
        model = ZeroDCEPP(impl=impl)
        model.load_state_dict(base.state_dict())
        opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)
        parts = {}

        def step():
            enhanced, maps = model(x)
            total, _ = zero_dce_loss(enhanced, x, maps, impl=impl)
            opt.zero_grad(set_to_none=True)
            total.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
            opt.step()
            return total

        a0 = model.curve_maps(x).detach()

        def curve_and_losses():  # everything but the convolutions, forward + backward
            a = a0.clone().requires_grad_()
            enhanced = curve(x, a, 8, impl=impl)
            total, _ = zero_dce_loss(enhanced, x, a, impl=impl)
            total.backward()

        losses[impl] = float(step().detach())
        parts["step"] = timeit(step, repeat=args.repeat)
        parts["curve_and_losses"] = timeit(curve_and_losses, repeat=max(args.repeat, 5))
        results[impl] = parts
    results["first_step_loss"] = losses
    results["speedup_step"] = results["reference"]["step"]["median_s"] / results["c"]["step"]["median_s"]
    results["speedup_curve_and_losses"] = (results["reference"]["curve_and_losses"]["median_s"]
                                           / results["c"]["curve_and_losses"]["median_s"])
    write_results("train_step" + (f"_{args.tag}" if args.tag else ""), results)


if __name__ == "__main__":
    main()
