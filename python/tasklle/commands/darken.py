"""``tasklle darken SRC DST``: darken a WIDER-format tree (or one image) with EC-Zero-DCE (ours, default) or
LEDNet's released darkener (``--darkener lednet --weights ce_zerodce.pth``); sensor noise optional."""


def register(subparsers):
    p = subparsers.add_parser(
        "darken", help="make a low-light copy of a WIDER-format dataset (or of one image)",
        description="Darken every image under SRC with an exposure-conditioned darkener (the project's "
                    "EC-Zero-DCE with its shipped weights by default, or LEDNet's released ConditionZeroDCE with "
                    "--darkener lednet --weights ce_zerodce.pth), as the method generates its data: saturated "
                    "pixels (L/100 > 0.97) stay bright and no noise is added unless --noise asks for it. The same "
                    "layout is written under DST; every other file "
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
    p.add_argument("--noise", default="none", choices=["none", "lednet", "physical"],
                   help="sensor noise added after darkening (default none, as the method; lednet: LEDNet's "
                        "training-time Gaussian/Poisson noise; physical: shot + read noise)")
    p.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    p.add_argument("--workers", type=int, default=None, help="parallel workers (default: all CPUs)")
    p.add_argument("--backend", default="thread", choices=["thread", "process"],
                   help="worker kind (default thread)")
    p.add_argument("--darkener", default="ec-zero-dce", choices=["ec-zero-dce", "lednet"],
                   help="ec-zero-dce: the project's darkener (default); lednet: LEDNet's ConditionZeroDCE and "
                        "generation script (needs --weights ce_zerodce.pth, LEDNet's release asset; heavy: "
                        "about 2 min per megapixel on one CPU core)")
    p.add_argument("--weights", default=None,
                   help="darkener weights (ec-zero-dce: a tasklle checkpoint, default the shipped weights; "
                        "lednet: LEDNet's ce_zerodce.pth, required)")
    p.add_argument("--lednet-channel-order", default="bgr-as-rgb", choices=["bgr-as-rgb", "rgb"],
                   help="lednet: how the lightness is computed; bgr-as-rgb (default) reproduces LEDNet's script, "
                        "which converts its BGR image as if it were RGB; rgb is the true lightness")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--keep-saturated", dest="keep_saturated", action="store_true", default=True,
                   help="keep pixels with lightness L/100 > 0.97 bright (LEDNet; the default)")
    g.add_argument("--no-keep-saturated", dest="keep_saturated", action="store_false",
                   help="darken saturated pixels too (ec-zero-dce only)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality of the outputs (default 95)")
    p.set_defaults(func=run)


def run(args):
    from pathlib import Path

    if len(args.exposure) not in (1, 2):
        raise ValueError(f"--exposure takes one value or two (LO HI), got {len(args.exposure)}")
    exposure = args.exposure[0] if len(args.exposure) == 1 else tuple(args.exposure)
    noise = None if args.noise == "none" else args.noise
    src = Path(args.src)
    model = _model(args)
    if src.is_file():
        return _single(src, Path(args.dst), exposure, noise, args, model)
    from ..dataset_darkening import darken_dataset

    report = darken_dataset(src, args.dst, exposure=exposure, noise=noise, seed=args.seed, workers=args.workers,
                            model=model, keep_saturated=args.keep_saturated, quality=args.quality,
                            backend=args.backend, darkener=args.darkener)
    return 1 if report["failed"] else 0


def _model(args):
    """The darkener module (or the weights path / None, which darkening resolves)."""
    from ..darkening import _resolve_model

    if args.darkener == "lednet":
        net = _resolve_model(args.weights, "lednet")
        net.channel_order = args.lednet_channel_order
        return net
    return _resolve_model(args.weights, "ec-zero-dce")


def _single(src, dst, exposure, noise, args, model):
    """One image, computed exactly as darken_dataset computes a file named like SRC at the tree's root."""
    from .._threads import threads
    from ..darkening import _check_exposure_range, _check_seed_quality
    from ..dataset_darkening import _process_one

    lo, hi = _check_exposure_range(exposure)
    _check_seed_quality(args.seed, args.quality)  # the same rules as the folder mode
    settings = {"seed": args.seed, "exposure": (lo, hi), "noise": noise, "keep_saturated": args.keep_saturated,
                "quality": args.quality}
    with threads(1):
        status, _, rec = _process_one(src, dst, src.name, settings, model.eval())
    if status != "ok":
        raise ValueError(rec)
    print(f"darkened {src} -> {dst} (E = {rec['exposure']:.4f}, seed {rec['seed']}, noise {rec['noise']})")
    return 0
