"""``tasklle darken SRC DST``: darken a WIDER-format tree (or one image) with EC-Zero-DCE + sensor noise."""


def register(subparsers):
    p = subparsers.add_parser(
        "darken", help="make a low-light copy of a WIDER-format dataset (or of one image)",
        description="Darken every image under SRC with the exposure-conditioned darkener (EC-Zero-DCE, shipped "
                    "weights by default) plus sensor noise, writing the same layout under DST; every other file "
                    "(annotation txt, .mat) is copied unchanged. Each image draws E ~ U(LO, HI) and its noise "
                    "from a seed derived from --seed and its relative path, so results do not depend on "
                    "--workers. DST/darken_manifest.json records E, noise parameters, seed and source hash per "
                    "image; rerunning skips images already done (interrupt and resume freely). Unreadable "
                    "images are listed in DST/darken_report.json and skipped; the exit status is 1 if any "
                    "failed. If SRC is an image file, DST is the output image (computed as if SRC sat at the "
                    "root of a tree).")
    p.add_argument("src", metavar="SRC", help="dataset root (or one image file)")
    p.add_argument("dst", metavar="DST", help="output root (or output image file)")
    p.add_argument("--exposure", type=float, nargs="+", default=[0.05, 0.3], metavar="E",
                   help="target exposure: one value, or LO HI for E ~ U(LO, HI) per image (default 0.05 0.3)")
    p.add_argument("--noise", default="lednet", choices=["lednet", "physical", "none"],
                   help="noise model (default lednet)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--workers", type=int, default=None, help="parallel workers (default: all CPUs)")
    p.add_argument("--backend", default="thread", choices=["thread", "process"],
                   help="worker kind (default thread)")
    p.add_argument("--weights", default=None, help="darkener checkpoint (default: the shipped weights)")
    p.add_argument("--keep-saturated", action="store_true",
                   help="keep pixels with lightness L/100 > 0.97 bright (LEDNet)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality of the outputs (default 95)")
    p.set_defaults(func=run)


def run(args):
    from pathlib import Path

    if len(args.exposure) not in (1, 2):
        raise ValueError(f"--exposure takes one value or two (LO HI), got {len(args.exposure)}")
    exposure = args.exposure[0] if len(args.exposure) == 1 else tuple(args.exposure)
    noise = None if args.noise == "none" else args.noise
    src = Path(args.src)
    if src.is_file():
        return _single(src, Path(args.dst), exposure, noise, args)
    from ..darkening import darken_dataset

    report = darken_dataset(src, args.dst, exposure=exposure, noise=noise, seed=args.seed, workers=args.workers,
                            model=args.weights, keep_saturated=args.keep_saturated, quality=args.quality,
                            backend=args.backend)
    return 1 if report["failed"] else 0


def _single(src, dst, exposure, noise, args):
    """One image, computed exactly as darken_dataset computes a file named like SRC at the tree's root."""
    from ..darkening import _check_exposure_range, _check_seed_quality, _process_one, _resolve_model, _SingleThread

    lo, hi = _check_exposure_range(exposure)
    _check_seed_quality(args.seed, args.quality)  # the same rules as the folder mode
    settings = {"seed": args.seed, "exposure": (lo, hi), "noise": noise, "keep_saturated": args.keep_saturated,
                "quality": args.quality}
    with _SingleThread():
        status, _, rec = _process_one(src, dst, src.name, settings, _resolve_model(args.weights).eval())
    if status != "ok":
        raise ValueError(rec)
    print(f"darkened {src} -> {dst} (E = {rec['exposure']:.4f}, seed {rec['seed']}, noise {rec['noise']})")
    return 0
