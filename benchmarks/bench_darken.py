"""Darkening throughput for 1024x768 images and where the time goes.

Per image (one thread, as darken_dataset computes every image): JPEG decode,
source hash, the darkener's parts (exposure prior, estimator network, bilinear
upsampling, the curve on the full image: C core vs its reference twin),
noise (LEDNet Gaussian / Poisson, physical), JPEG encode. Then whole-dataset
throughput with darken_dataset: 1 worker, 2 threads, 2 processes (process
start-up included).

    PYTHONPATH=python python benchmarks/bench_darken.py [--images 12]
"""
import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import timeit, write_results  # noqa: E402

import tasklle  # noqa: E402
from tasklle.darkening import _sha256_file
from tasklle.dataset_darkening import darken_dataset  # noqa: E402
from tasklle.io import read_image, write_image  # noqa: E402
from tasklle.models.ec_zero_dce import ECZeroDCE  # noqa: E402
from tasklle.noise import add_noise  # noqa: E402
from tasklle.ops.curve import curve  # noqa: E402
from tasklle.reference.curve import curve as curve_ref  # noqa: E402
from tasklle.train.darkener import builtin_images  # noqa: E402

H, W = 768, 1024


def make_tree(root, n):
    photos = builtin_images("train") + builtin_images("heldout")
    for i in range(n):
        img = F.interpolate(photos[i % len(photos)][None], size=(H, W), mode="bilinear", align_corners=False)[0]
        write_image(root / f"WIDER_val/images/0--Event/0--Event_{i}.jpg", img.clamp(0, 1), quality=95)
    (root / "wider_face_split").mkdir(parents=True, exist_ok=True)
    (root / "wider_face_split/wider_face_val_bbx_gt.txt").write_text("")


def seed_for(kind):
    x = torch.full((3, 2, 2), 0.5)
    for s in range(1000):
        if add_noise(x, "lednet", seed=s)[1]["type"] == kind:
            return s
    raise RuntimeError(kind)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=12, help="images for the dataset runs")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    tasklle.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="bench_darken_"))
    try:
        make_tree(tmp / "src", args.images)
        jpg = next((tmp / "src").rglob("*.jpg"))
        model = ECZeroDCE.shipped().eval()
        x = read_image(jpg)[None]
        e = torch.tensor([0.15])
        r = model.context * model.scale_factor
        small = F.adaptive_avg_pool2d(x * model.gain, (round(H / r), round(W / r)))  # the estimator's grid
        stages = {}
        with torch.no_grad():
            xg = x * model.gain
            a_small = model.curve_map(small, e)  # a map on the reduced grid, for the upsampling timing
            a = model.curve_map(xg, e)
            y = curve(xg, a)
            stages["jpeg_decode"] = timeit(lambda: read_image(jpg), args.repeat)
            stages["sha256_source"] = timeit(lambda: _sha256_file(jpg), args.repeat)
            stages["model_reduce_input"] = timeit(
                lambda: F.adaptive_avg_pool2d(xg, (round(H / r), round(W / r))), args.repeat)
            stages["model_exposure_prior"] = timeit(lambda: model.prior(small, e), args.repeat)
            stages["model_upsample_A"] = timeit(
                lambda: F.interpolate(a_small, size=(H, W), mode="bilinear", align_corners=True), args.repeat)
            stages["model_curve_map_total"] = timeit(lambda: model.curve_map(xg, e), args.repeat)
            stages["curve_c_core"] = timeit(lambda: curve(xg, a), args.repeat)
            stages["curve_reference_twin"] = timeit(lambda: curve_ref(xg, a), args.repeat)
            stages["model_forward_total"] = timeit(lambda: model(x, e), args.repeat)
            g_seed, p_seed = seed_for("gaussian"), seed_for("poisson")
            stages["noise_lednet_gaussian"] = timeit(lambda: add_noise(y[0], "lednet", seed=g_seed), args.repeat)
            stages["noise_lednet_poisson"] = timeit(lambda: add_noise(y[0], "lednet", seed=p_seed), args.repeat)
            stages["noise_physical"] = timeit(lambda: add_noise(y[0], "physical", seed=0), args.repeat)
            stages["jpeg_encode_q95"] = timeit(lambda: write_image(tmp / "out.jpg", y[0], quality=95), args.repeat)
        per_image = {k: round(v["median_s"] * 1000, 2) for k, v in stages.items()}
        # the estimator network itself: the map's total less its other parts
        per_image["model_estimator_network"] = round(per_image["model_curve_map_total"] - per_image[
            "model_reduce_input"] - per_image["model_exposure_prior"] - per_image["model_upsample_A"], 2)
        pipeline = sum(per_image[k] for k in ("jpeg_decode", "sha256_source", "model_forward_total",
                                              "jpeg_encode_q95")) \
            + 0.5 * (per_image["noise_lednet_gaussian"] + per_image["noise_lednet_poisson"])

        runs = {}
        for name, kw in (("1 worker", dict(workers=1)), ("2 threads", dict(workers=2, backend="thread")),
                         ("2 processes", dict(workers=2, backend="process"))):
            dst = tmp / ("dst_" + name.replace(" ", "_"))
            t0 = time.perf_counter()
            rep = darken_dataset(tmp / "src", dst, workers=kw.pop("workers"), verbose=False, **kw)
            sec = time.perf_counter() - t0
            runs[name] = {"images": rep["darkened"], "seconds": round(sec, 2),
                          "images_per_second": round(rep["darkened"] / sec, 3)}
        results = {
            "image_size": [W, H],
            "per_image_ms_one_thread": per_image,
            "per_image_pipeline_ms_estimate": round(pipeline, 1),
            "curve_speedup_c_vs_reference": round(stages["curve_reference_twin"]["median_s"]
                                                  / stages["curve_c_core"]["median_s"], 2),
            "darken_dataset": runs,
        }
        write_results("darken", results)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
