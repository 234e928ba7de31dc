"""WIDER FACE evaluation: the C path (tasklle.eval.wider.evaluate) on the full
val set with ~200 predictions per image, all three settings, including the
Python-side packing; and C vs the reference twin on a subset of events (the
twin is a literal Python loop, far too slow for the full set).

    PYTHONPATH=python python benchmarks/bench_wider_eval.py [--gt DIR] [--per-image 200] [--folder]
        [--resamples 1000] [--bootstrap-only]

Uses the real val ground truth (../shared/data/wider_face_gt or --gt); without
it, a synthetic ground truth of the same size. --folder also times writing and
reading a prediction folder in the official format. The "bootstrap" entry
times ``tasklle.eval.intervals.bootstrap`` (per-image counts through the C
core in chunks, then the resampled sums and AP of every resample) on the same
set, with its peak traced memory (NumPy arrays included); --bootstrap-only
measures just that and updates that entry of an existing results file.
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import timeit, write_results

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "eval"))
from wider_eval_testutil import generate_predictions, synthetic_gt  # noqa: E402

import tasklle  # noqa: E402
from tasklle.data import wider_format  # noqa: E402
from tasklle.data.wider_format import ground_truth as _gt_module  # noqa: E402
from tasklle.eval import intervals, wider  # noqa: E402
from tasklle.ops import wider_pr_counts  # noqa: E402

SUBSET = ["19--Couple", "21--Festival", "34--Baseball", "39--Ice_Skating"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gt", default=str(REPO.parent / "shared" / "data" / "wider_face_gt"))
    ap.add_argument("--per-image", type=int, default=200, help="mean predictions per image")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--folder", action="store_true", help="also time writing + reading a prediction folder")
    ap.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    ap.add_argument("--bootstrap-only", action="store_true",
                    help="only the bootstrap entry, merged into an existing results/wider_eval.json")
    args = ap.parse_args()

    results = {}
    gt_dir = Path(args.gt)
    if (gt_dir / "wider_face_val.mat").is_file():
        import scipy.io  # noqa: F401  (import cost is not the reader's)

        _gt_module._GT_CACHE.clear()
        t0 = time.perf_counter()
        gt = wider_format.load_ground_truth(gt_dir)
        results["gt_load_s"] = time.perf_counter() - t0
        results["ground_truth"] = str(gt_dir)
    else:
        gt = synthetic_gt()
        results["ground_truth"] = "synthetic (real val gt absent)"
    print(gt)

    # ~per_image predictions per image: most faces (jittered) plus false positives
    n_fp = max(0, int(2 * (args.per_image - 0.8 * len(gt.boxes) / gt.n_images)))
    preds = generate_predictions(gt, n_fp=n_fp, seed=0)
    n_pred = sum(len(v) for v in preds.values())
    results["images"] = gt.n_images
    results["predictions"] = n_pred
    results["predictions_per_image"] = n_pred / gt.n_images
    print(f"{n_pred} predictions, {n_pred / gt.n_images:.1f} per image")
    if args.bootstrap_only:
        path = Path(__file__).resolve().parent / "results" / "wider_eval.json"
        payload = json.loads(path.read_text()) if path.is_file() else {"benchmark": "wider_eval", "results": {}}
        payload["results"]["bootstrap"] = bench_bootstrap(preds, gt, args.resamples)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
        os.replace(tmp, path)
        print(json.dumps(payload["results"]["bootstrap"], indent=2))
        return

    # evaluate(mapping, gt): packing + C kernel + AP, all three settings
    for threads in sorted({1, tasklle.get_num_threads()}):
        tasklle.set_num_threads(threads)
        r = timeit(lambda: wider.evaluate(preds, gt), repeat=args.repeat)
        results[f"evaluate_threads{threads}"] = r
        print(f"evaluate (threads={threads}): median {r['median_s']:.3f} s")
    tasklle.set_num_threads(0)

    # the parts: packing alone, the PR op alone (its C path)
    results["pack"] = timeit(lambda: wider._pack(preds, gt), repeat=args.repeat)
    pred, offsets, _, _ = wider._pack(preds, gt)
    counted = np.stack([gt.counted[s] for s in wider.SETTINGS])
    results["kernel"] = timeit(lambda: wider_pr_counts(pred, offsets, gt.boxes, gt.offsets, counted, 0.5,
                                                       wider.THRESH_NUM, impl="c"), repeat=args.repeat)
    print(f"pack {results['pack']['median_s']:.3f} s, kernel {results['kernel']['median_s']:.3f} s")
    res = wider.evaluate(preds, gt)
    results["ap"] = {s: res[s] for s in wider.SETTINGS}

    # C vs the reference twin on a subset, same predictions, same threads
    events = SUBSET if all(e in gt.events for e in SUBSET) else list(gt.events[:4])
    sub = gt.subset(events)
    sub_preds = {k: preds[k] for k in sub.keys()}
    rc = timeit(lambda: wider.evaluate(sub_preds, sub), repeat=args.repeat)
    rr = timeit(lambda: wider.evaluate(sub_preds, sub, impl="reference"), repeat=1, warmup=0)
    a, b = wider.evaluate(sub_preds, sub), wider.evaluate(sub_preds, sub, impl="reference")
    results["subset"] = {"events": events, "images": sub.n_images,
                         "predictions": sum(len(v) for v in sub_preds.values()),
                         "c": rc, "reference": rr, "speedup": rr["median_s"] / rc["median_s"],
                         "max_abs_ap_diff": max(abs(a[s] - b[s]) for s in wider.SETTINGS)}
    print(f"subset ({sub.n_images} images): C {rc['median_s']:.4f} s, reference {rr['median_s']:.2f} s, "
          f"x{results['subset']['speedup']:.0f}")

    results["bootstrap"] = bench_bootstrap(preds, gt, args.resamples)

    if args.folder:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            wider.write_predictions(Path(tmp) / "pred", preds)
            results["write_folder_s"] = time.perf_counter() - t0
            results["evaluate_folder"] = timeit(lambda: wider.evaluate(Path(tmp) / "pred", gt), repeat=2)
        print(f"write folder {results['write_folder_s']:.1f} s, evaluate folder "
              f"{results['evaluate_folder']['median_s']:.2f} s")
    write_results("wider_eval", results)


def bench_bootstrap(preds, gt, resamples):
    """Time and peak memory of intervals.bootstrap on the whole set (and of its per-image op alone)."""
    import tracemalloc

    from common import machine_info

    r = timeit(lambda: intervals.bootstrap(preds, gt, resamples=resamples), repeat=3)
    tracemalloc.start()
    b = intervals.bootstrap(preds, gt, resamples=resamples)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    pred, offsets, _, _ = wider._pack(preds, gt)
    counted = np.stack([gt.counted[s] for s in wider.SETTINGS])
    n = min(intervals.CHUNK, gt.n_images)
    o = offsets[: n + 1]
    g = gt.offsets[: n + 1]
    rng = (float(pred[:, 4].min()), float(pred[:, 4].max()))
    chunk = timeit(lambda: wider_pr_counts(pred[: o[-1]], o, gt.boxes[: g[-1]], g, counted[:, : g[-1]], 0.5,
                                           wider.THRESH_NUM, impl="c", per_image=True, score_range=rng), repeat=5)
    out = {"resamples": resamples, "images": gt.n_images, "settings": len(wider.SETTINGS),
           "thresholds": wider.THRESH_NUM, "chunk_images": intervals.CHUNK, "time": r,
           "peak_traced_memory_mb": peak / 2**20, "per_image_op_one_chunk": chunk,
           "intervals": {s: list(b[s]) for s in wider.SETTINGS}, "ap": b["ap"],
           "machine": machine_info(), "load_average_1min": os.getloadavg()[0]}
    print(f"bootstrap ({resamples} resamples of {gt.n_images} images): median {r['median_s']:.2f} s, "
          f"peak traced memory {out['peak_traced_memory_mb']:.0f} MB")
    return out


if __name__ == "__main__":
    main()
