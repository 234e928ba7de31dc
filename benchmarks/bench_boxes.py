"""Benchmark: the box kernels, C core (tasklle.ops) vs the pure-PyTorch twin
(tasklle.reference), same thread count (tasklle and torch both set to each
--threads value), float32.

Cases
  diou     forward + backward of diou_loss on 100k aligned pairs (weights,
           reduction 'mean' with avg_factor, gradient w.r.t. pred) -- the
           detector's regression loss.
  assign   assign_max_iou with TinaFace's settings (0.35 / 0.35 / 0.35, low-quality,
           gt_max_assign_all) for the 102,375 anchors of a 640x640 input
           (strides 4..128, 3 scales, ratio h/w 1.3, REFERENCE §4) against 10,
           100 and 1000 random face-like gt boxes. Peak memory: each (path, G)
           runs once in a fresh subprocess that builds its inputs, resets the
           kernel's peak-RSS mark (/proc/self/clear_refs 5), runs the call and
           reads VmHWM - VmRSS(before): the call's peak extra resident memory
           (falls back to ru_maxrss growth where the reset is not allowed). Also the C path alone on the
           anchors of a 3840x2160 input x 1000 gts, where the full IoU matrix
           would need ~7.8 GB.
  nms      nms on 20,000 boxes (800 clusters of 25 jittered boxes, random
           scores), IoU threshold 0.45.

Every timing has the wall-clock median (common.timeit) and cpu_s_per_call (this
process's CPU time per call): on a shared, oversubscribed machine the wall time
includes waiting for a core -- with --threads 1 compare the CPU times too.

Usage: PYTHONPATH=python python benchmarks/bench_boxes.py [--threads 1 2] [--repeat R] [--quick]
The machine may be shared: run it a few times and compare medians.
"""
import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch  # noqa: E402

import tasklle  # noqa: E402
from common import timeit as _timeit  # noqa: E402
from common import write_results  # noqa: E402
from tasklle.ops import assign as ops_assign  # noqa: E402
from tasklle.ops import boxes as ops_boxes  # noqa: E402
from tasklle.reference import assign as ref_assign  # noqa: E402
from tasklle.reference import boxes as ref_boxes  # noqa: E402

STRIDES = (4, 8, 16, 32, 64, 128)


def timeit(fn, repeat=7, warmup=1):
    """common.timeit (wall seconds) plus cpu_s_per_call: this process's CPU time per
    call (warm-up included). On a shared, oversubscribed machine the wall time
    includes waiting for a core; with one thread the CPU time does not."""
    c0 = time.process_time()
    out = _timeit(fn, repeat=repeat, warmup=warmup)
    out["cpu_s_per_call"] = (time.process_time() - c0) / (out["repeats"] + warmup)
    return out


def tinaface_anchors(height, width, dtype=torch.float32):
    """TinaFace anchors (REFERENCE §4): base size = stride, scales 2^(4/3) * {1, 2^(1/3), 2^(2/3)},
    one ratio h/w = 1.3, centres (x * stride, y * stride), order (y * W + x) * 3 + scale per level."""
    scales = torch.tensor([2 ** (4 / 3) * 2 ** (i / 3) for i in range(3)], dtype=torch.float64)
    levels = []
    for s in STRIDES:
        fh, fw = math.ceil(height / s), math.ceil(width / s)
        ws, hs = s * scales / math.sqrt(1.3), s * scales * math.sqrt(1.3)
        base = torch.stack([-ws / 2, -hs / 2, ws / 2, hs / 2], 1)
        ys, xs = torch.meshgrid(torch.arange(fh, dtype=torch.float64) * s, torch.arange(fw, dtype=torch.float64) * s,
                                indexing="ij")
        levels.append((torch.stack([xs, ys, xs, ys], -1).reshape(-1, 1, 4) + base).reshape(-1, 4))
    return torch.cat(levels).to(dtype)


def face_boxes(n, height, width, seed=0):
    """n face-like boxes: centres uniform in the image, width log-uniform 6..200 px, height 1.3 x width."""
    g = torch.Generator().manual_seed(seed)
    cx, cy = torch.rand(n, generator=g) * width, torch.rand(n, generator=g) * height
    w = torch.exp(torch.rand(n, generator=g) * math.log(200 / 6)) * 6
    h = 1.3 * w
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)


def diou_case(n=100_000, seed=0):
    g = torch.Generator().manual_seed(seed)
    target = face_boxes(n, 640, 640, seed)
    pred = target + torch.randn(n, 4, generator=g) * 4
    pred[:, 2:] = torch.maximum(pred[:, 2:], pred[:, :2] + 1)
    return pred, target, torch.rand(n, generator=g)


def bench_diou(repeat):
    pred, target, weight = diou_case()
    out = {}
    for name, fn in (("c", ops_boxes.diou_loss), ("reference", ref_boxes.diou_loss)):
        def run():
            p = pred.clone().requires_grad_()
            loss = fn(p, target, weight, avg_factor=5000.0)
            loss.backward()
        out[name] = timeit(run, repeat=repeat)
    out["speedup"] = out["reference"]["median_s"] / out["c"]["median_s"]
    return out


def nms_case(n_clusters=800, per=25, seed=0):
    g = torch.Generator().manual_seed(seed)
    centre = face_boxes(n_clusters, 2000, 2000, seed).repeat_interleave(per, 0)
    size = (centre[:, 2:] - centre[:, :2]).repeat(1, 2)
    boxes = centre + torch.randn(centre.shape, generator=g) * 0.1 * size
    boxes[:, 2:] = torch.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    return boxes, torch.rand(boxes.shape[0], generator=g)


def bench_nms(repeat):
    boxes, scores = nms_case()
    out = {"boxes": boxes.shape[0], "kept": int(ops_boxes.nms(boxes, scores, 0.45).numel())}
    out["c"] = timeit(lambda: ops_boxes.nms(boxes, scores, 0.45), repeat=repeat)
    out["reference"] = timeit(lambda: ref_boxes.nms(boxes, scores, 0.45), repeat=max(1, repeat // 3), warmup=0)
    out["speedup"] = out["reference"]["median_s"] / out["c"]["median_s"]
    out["agree"] = bool(torch.equal(ops_boxes.nms(boxes, scores, 0.45), ref_boxes.nms(boxes, scores, 0.45)))
    return out


def _status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak():
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def memory_child(path, num_gts, height, width, threads):
    """Runs in a subprocess: peak resident growth of one assignment call over the
    resident size just before it (VmHWM after a peak reset; else ru_maxrss growth)."""
    tasklle.set_num_threads(threads)
    anchors = tinaface_anchors(height, width)
    gts = face_boxes(num_gts, height, width, seed=1)
    fn = ops_assign.assign_max_iou if path == "c" else ref_assign.assign_max_iou
    fn(anchors[:100], gts[:2])  # import / first-call costs outside the measurement
    if _reset_peak():
        method, before = "VmHWM", _status_kib("VmRSS")
    else:
        method, before = "ru_maxrss", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assigned, _ = fn(anchors, gts)
    after = _status_kib("VmHWM") if method == "VmHWM" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_growth_bytes": (after - before) * 1024, "method": method,
                      "anchors": anchors.shape[0], "positives": int((assigned >= 0).sum())}))


def measure_memory(path, num_gts, height, width, threads):
    cmd = [sys.executable, __file__, "--memory-child", path, str(num_gts), str(height), str(width), str(threads)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=os.environ.copy())
    if res.returncode != 0:
        raise RuntimeError(f"memory child failed: {res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def bench_assign(repeat, threads, gt_counts):
    anchors = tinaface_anchors(640, 640)
    out = {"anchors": anchors.shape[0]}
    for num_gts in gt_counts:
        gts = face_boxes(num_gts, 640, 640, seed=1)
        c = ops_assign.assign_max_iou(anchors, gts)
        r = ref_assign.assign_max_iou(anchors, gts)
        case = {"agree": bool(torch.equal(c[0], r[0]) and torch.equal(c[1], r[1])),
                "positives": int((c[0] >= 0).sum())}
        case["c"] = timeit(lambda: ops_assign.assign_max_iou(anchors, gts), repeat=repeat)
        ref_repeat = max(1, repeat // 2) if num_gts <= 100 else 1
        case["reference"] = timeit(lambda: ref_assign.assign_max_iou(anchors, gts), repeat=ref_repeat, warmup=0)
        case["speedup"] = case["reference"]["median_s"] / case["c"]["median_s"]
        case["iou_matrix_bytes"] = anchors.shape[0] * num_gts * 4
        for path in ("c", "reference"):
            mem = measure_memory(path, num_gts, 640, 640, threads)
            case[path]["peak_growth_bytes"] = mem["peak_growth_bytes"]
            case[path]["memory_method"] = mem["method"]
        out[f"gts_{num_gts}"] = case
    return out


def bench_assign_4k(threads):
    h, w, g = 2160, 3840, 1000
    anchors = tinaface_anchors(h, w)
    gts = face_boxes(g, h, w, seed=1)
    t = timeit(lambda: ops_assign.assign_max_iou(anchors, gts), repeat=3)
    mem = measure_memory("c", g, h, w, threads)
    return {"input": f"{w}x{h}", "anchors": anchors.shape[0], "gts": g, "c": t,
            "c_peak_growth_bytes": mem["peak_growth_bytes"], "iou_matrix_bytes": anchors.shape[0] * g * 4,
            "outputs_bytes": anchors.shape[0] * (8 + 4)}


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--memory-child":
        path, g, h, w, t = sys.argv[2:7]
        memory_child(path, int(g), int(h), int(w), int(t))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="fewer repeats, 10 and 100 gts only, no 4k case")
    args = ap.parse_args()
    repeat = 3 if args.quick else args.repeat
    gt_counts = (10, 100) if args.quick else (10, 100, 1000)
    results = {}
    for threads in args.threads:
        tasklle.set_num_threads(threads)
        r = {"diou_100k": bench_diou(repeat), "assign_640": bench_assign(repeat, threads, gt_counts),
             "nms_20k": bench_nms(repeat)}
        if not args.quick:
            r["assign_4k_c_only"] = bench_assign_4k(threads)
        results[f"threads_{threads}"] = r
        print(json.dumps({f"threads_{threads}": r}, indent=1), flush=True)
    tasklle.set_num_threads(0)
    write_results("bench_boxes" + ("_quick" if args.quick else ""), results)


if __name__ == "__main__":
    main()
