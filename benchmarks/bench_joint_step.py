"""Time of one joint-training step (batch 4): Zero-DCE++ forward, L_up, the
frozen lite TinaFace's L_down on the enhanced images, backward through both,
Adam update -- with the C core vs with every C op swapped for its pure-PyTorch
reference twin, same threads, one run. Also the share of the step spent
downstream (the detector's L_down forward + backward to the image, timed
alone) vs upstream (the rest: Zero-DCE++, curve, L_up, their backward, Adam),
and the L_up-only step (W_down = 0) for comparison.

    PYTHONPATH=python python benchmarks/bench_joint_step.py [--sizes 256 512] [--repeat 5] [--threads 2]

The reference path: TASKLLE_IMPL=reference, which the dispatch rule of every
op (tasklle.ops._common.use_c) reads, so every op (and every model, which
passes its impl to the ops) runs its twin.
"""
import argparse
import contextlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import timeit, write_results  # noqa: E402


@contextlib.contextmanager
def reference_path():
    """Every C-backed op on its pure-PyTorch twin: each op follows ``TASKLLE_IMPL``
    through ``tasklle.ops._common.use_c`` (the models pass their ``impl`` to the ops)."""
    old = os.environ.get("TASKLLE_IMPL")
    os.environ["TASKLLE_IMPL"] = "reference"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TASKLLE_IMPL", None)
        else:
            os.environ["TASKLLE_IMPL"] = old


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    import tasklle
    from tasklle.models import TinaFace, ZeroDCEPP
    from tasklle.train.joint import joint_losses

    tasklle.set_num_threads(args.threads)
    torch.manual_seed(0)
    det_path = Path(tasklle.__file__).parent / "weights" / "tinaface_lite_demo.pt"
    det = (TinaFace.load(det_path) if det_path.is_file() else TinaFace.lite()).freeze()
    results = {"batch": 4, "threads": args.threads, "detector": "tinaface_lite_demo.pt" if det_path.is_file()
               else "TinaFace.lite() random", "sizes": {}}
    for size in args.sizes:
        g = torch.Generator().manual_seed(size)
        images = torch.rand(4, 3, size, size, generator=g) * 0.3
        targets = []
        for _ in range(4):
            xy = torch.rand(6, 2, generator=g) * (size * 0.8)
            wh = 12 + torch.rand(6, 2, generator=g) * (size * 0.15)
            targets.append({"boxes": torch.cat([xy, xy + wh], 1), "ignore": torch.zeros(6, dtype=torch.bool)})
        model = ZeroDCEPP()
        model.init_weights(std=0.02)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step(w_down):
            def run():
                opt.zero_grad(set_to_none=True)
                loss, _ = joint_losses(model, det, images, targets, 1.0, w_down)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)
                opt.step()
            return run

        enhanced = images.clone().requires_grad_(True)

        def downstream():
            # the detector's part of a joint step: L_down on a (B,3,H,W) image and its
            # backward to the image (what joint training adds to an L_up-only step)
            enhanced.grad = None
            loss, _ = det.loss(enhanced, targets)
            (0.5 * loss).backward()

        row = {}
        for path in ("c", "reference"):
            ctx = reference_path() if path == "reference" else contextlib.nullcontext()
            with ctx:
                full = timeit(step(0.5), repeat=args.repeat)
                up = timeit(step(0.0), repeat=args.repeat)
                down = timeit(downstream, repeat=args.repeat)
            row[path] = {"joint_step": full, "upstream_only_step": up, "downstream_loss_fwd_bwd": down,
                         "downstream_share": down["median_s"] / full["median_s"],
                         "upstream_share": 1 - down["median_s"] / full["median_s"]}
            print(f"{size}px {path:9s}: joint step {full['median_s'] * 1e3:8.1f} ms (min {full['min_s'] * 1e3:.1f}), "
                  f"L_up-only step {up['median_s'] * 1e3:7.1f} ms, detector L_down fwd+bwd "
                  f"{down['median_s'] * 1e3:7.1f} ms -> downstream share {row[path]['downstream_share']:.1%}",
                  flush=True)
        row["speedup_joint_step"] = row["reference"]["joint_step"]["median_s"] / row["c"]["joint_step"]["median_s"]
        row["speedup_upstream_step"] = (row["reference"]["upstream_only_step"]["median_s"]
                                        / row["c"]["upstream_only_step"]["median_s"])
        results["sizes"][str(size)] = row
    write_results("joint_step", results)


if __name__ == "__main__":
    main()
