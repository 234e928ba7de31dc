"""``tasklle experiment four-groups|ratio-sweep``: the method's Tables 4.1 and 4.2;
``tasklle experiment real-dark --root DARKFACE``: the enhancers on real dark images (DARK FACE).

On the built-in data by default (sized by ``--budget``); on real WIDER FACE with
``--root ROOT --vedadet PATH --gt EVAL_GT_DIR`` (full TinaFace; the full-size
defaults apply: ``--epochs`` (10) passes over WIDER_train in 640x640 crops,
batch 4, lr 1e-4, every val image).
"""
import math
import sys

# Training length on a given --root: 10 epochs of WIDER_train (12,880 images) at batch 4 is
# ~32,000 optimiser steps, about as many as the official Zero-DCE++ training (100 epochs of
# 2,422 images at batch 8, ~30,000 steps); the report does not state its length.
DEFAULT_EPOCHS = 10


def register(subparsers):
    p = subparsers.add_parser(
        "experiment", help="run the four-group comparison or the W_up:W_down sweep",
        description="four-groups: AP easy/medium/hard of low-light, Zero-DCE++ (L_up only), joint training and "
                    "original val images through the same detector (Table 4.1). ratio-sweep: the same for joint "
                    "training with several W_up:W_down ratios (Table 4.2). real-dark: AP on DARK FACE (real dark "
                    "images, --root DARKFACE) of the images as they are and through --upstream / --joint enhancers, "
                    "scored as the challenge's tools do, with bootstrap intervals. Writes results.json, results.md and "
                    "figures to --out; resumable (finished stages are skipped).")
    p.add_argument("which", choices=("four-groups", "ratio-sweep", "real-dark"))
    add_common_arguments(p)
    add_real_dark_arguments(p)
    p.add_argument("--ratios", default=None,
                   help="ratio-sweep: comma-separated W_up:W_down (default 1:0,1:1,3:2,2:1,3:1,2:3,1:3,0:1)")
    p.set_defaults(func=run)


from ..models.shipped import DETECTORS as SHIPPED_DETECTORS  # a light import: no model, no torch


def add_common_arguments(p, demo=False):
    if demo:
        p.add_argument("--detector", default=None, choices=SHIPPED_DETECTORS,
                       help="the frozen detector joint training uses (default retinaface-mobilenet0.25, WIDER FACE-"
                            "pretrained, at input scale 2; the other shipped detector judges every group)")
    else:
        p.add_argument("--root", default=None, help="WIDER-format root (default: the built-in dataset)")
        g = p.add_mutually_exclusive_group()
        g.add_argument("--detector", default=None,
                       help="the frozen detector: a shipped name (" + ", ".join(SHIPPED_DETECTORS) + "), a tasklle "
                            "TinaFace/RetinaFace checkpoint, or a vedadet/biubug6 state_dict (told apart by its keys; "
                            "default on the built-in data: retinaface-mobilenet0.25, judged by tinaface-lite-demo)")
        g.add_argument("--vedadet", default=None, help="vedadet TinaFace state_dict (real WIDER FACE)")
        g.add_argument("--biubug6", default=None, metavar="PTH",
                       help="biubug6/Pytorch_Retinaface state_dict: mobilenet0.25_Final.pth or Resnet50_Final.pth")
        p.add_argument("--judge", action="append", default=None, metavar="DETECTOR",
                       help="also score every group with this detector (a shipped name or a checkpoint as "
                            "--detector takes it; repeatable; on the built-in data the other shipped detector "
                            "judges by default)")
        p.add_argument("--dark", default=None, help="the dark copy of ROOT (made if missing; default beside ROOT)")
        p.add_argument("--out", default=None, help="output folder (default runs/<experiment>)")
        p.add_argument("--gt", default=None, metavar="DIR",
                       help="WIDER FACE evaluation ground truth: the folder with wider_face_val.mat and "
                            "wider_{easy,medium,hard}_val.mat (the ground_truth/ folder of WIDER FACE's "
                            "eval_tools.zip; default: searched under ROOT)")
        p.add_argument("--epochs", type=float, default=None,
                       help=f"with --root: passes over the train split for each enhancer (default "
                            f"{DEFAULT_EPOCHS}); --steps overrides")
        p.add_argument("--predictions", default="exact", choices=("exact", "vedadet-int"),
                       help="prediction files: exact float boxes (default), or vedadet-int: boxes truncated to "
                            "integers as vedadet's WIDER FACE test script writes them (x = int(x1), "
                            "w = int(x2) - int(x1))")
    p.add_argument("--budget", default=None, choices=("tiny", "small", "default", "long"),
                   help="run size preset for the built-in data (default: 'default' on the built-in data, "
                        "full-size settings on a given --root)")
    p.add_argument("--steps", type=int, default=None, help="training steps of each enhancer (overrides --epochs)")
    p.add_argument("--image-size", type=int, default=None, help="training crop side")
    p.add_argument("--batch-size", type=int, default=None, help="training batch (the method: 4)")
    p.add_argument("--lr", type=float, default=None,
                   help="Adam learning rate (the method: 1e-4; the budgets tiny and small: 1e-3, for their short runs)")
    p.add_argument("--w-up", type=float, default=1.0, help="joint training's W_up (1)")
    p.add_argument("--w-down", type=float, default=0.5, help="joint training's W_down (0.5)")
    p.add_argument("--normalise", default="none", choices=("none", "running-ratio"), help="L_down normalisation")
    p.add_argument("--crop", default="random", choices=("random", "resize"))
    p.add_argument("--max-val", type=int, default=None, help="evaluate on a fixed subset of this many val images")
    p.add_argument("--figure-images", type=int, default=None, help="images in the detection figure")
    p.add_argument("--seed", type=int, default=0, help="training seed (both enhancers)")
    p.add_argument("--dark-seed", type=int, default=0, help="darkening seed")
    p.add_argument("--detect-scale", type=float, default=None,
                   help="resize factor for detection (default: the detector's own keep-ratio test scale)")
    p.add_argument("--score-thr", type=float, default=None,
                   help="detection score threshold (TinaFace: 0.01; the built-in budgets: 0.05, same AP, faster)")
    p.add_argument("--recipe", default="method", choices=("method", "zero-dce++"),
                   help="optimiser: method = the report's Adam with default parameters (no weight decay, no "
                        "clipping; default); zero-dce++ = the official Zero-DCE++ script's weight decay 1e-4 and "
                        "gradient-norm clip 0.1")
    g = p.add_argument_group("darkening (the method's by default: EC-Zero-DCE, E ~ U(0.05, 0.3), saturated "
                             "pixels kept, no noise)")
    g.add_argument("--darkener", default="ec-zero-dce", choices=("ec-zero-dce", "lednet"),
                   help="ec-zero-dce: the project's darkener with its shipped weights (default); lednet: LEDNet's "
                        "released ConditionZeroDCE and generation pipeline (needs --darkener-weights)")
    g.add_argument("--darkener-weights", default=None,
                   help="darkener weights: LEDNet's ce_zerodce.pth for --darkener lednet, or a tasklle EC-Zero-DCE "
                        "checkpoint")
    g.add_argument("--noise", default="none", choices=("none", "lednet", "physical"),
                   help="sensor noise added to the dark copy (default none, as the method; lednet or physical "
                        "for harder data)")
    g = p.add_argument_group("claims (every AP with a bootstrap interval, differences with paired intervals)")
    g.add_argument("--resamples", type=_at_least_one, default=1000, metavar="N",
                   help="bootstrap resamples of the val images behind every interval (default 1000, the fewest the "
                        "tables' claims are made with; fewer only for a quick look, and results.md says so)")
    g.add_argument("--seeds", type=_at_least_one, default=1, metavar="N",
                   help="train N seeds of each enhancer (training seeds --seed + 0..N-1) and report their spread; "
                        "the main table stays the first seed (default 1)")
    g.add_argument("--no-judges", action="store_true",
                   help="score the groups with the frozen detector only (no judge)")
    p.add_argument("--detector-scale", type=float, default=None, metavar="S",
                   help="input scale of a RetinaFace detector: its loss and detection resize images by S inside "
                        "(default: 2 for the shipped RetinaFace on the built-in data, else 1)")
    p.add_argument("--no-progress", action="store_true")


def _at_least_one(text):
    import argparse

    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def epoch_steps(root, epochs, batch_size):
    """Optimiser steps for ``epochs`` passes over ROOT's train split at ``batch_size``."""
    from ..data import WiderFace

    if not (epochs > 0):
        raise ValueError(f"--epochs must be > 0, got {epochs}")
    n = len(WiderFace(root, split="train"))
    if n == 0:
        raise ValueError(f"root: {root} has no training images")
    return max(1, math.ceil(epochs * n / batch_size))


def darkening(args):
    """The experiments' ``darkening`` dict from the command line."""
    return {"darkener": args.darkener, "weights": args.darkener_weights,
            "noise": None if args.noise == "none" else args.noise}


def resolve(args, builtin):
    """(train settings, run options) from a budget preset and explicit flags."""
    from ..experiments.budgets import budget
    from ..experiments.detect_eval import detect_kwargs
    from ..experiments.four_groups import train_settings

    name = args.budget or ("default" if builtin else None)
    b = budget(name) if name else {}
    batch = args.batch_size or b.get("batch_size", 4)
    steps = args.steps or b.get("steps")
    if steps is None:
        steps = epoch_steps(args.root, getattr(args, "epochs", None) or DEFAULT_EPOCHS, batch)
    elif getattr(args, "epochs", None) is not None and not args.steps:
        raise ValueError("--epochs applies to runs on a --root without --budget")
    train = train_settings(
        steps=steps, batch_size=batch,
        image_size=args.image_size or b.get("image_size", 640), lr=args.lr or b.get("lr", 1e-4), crop=args.crop,
        normalise=args.normalise, seed=args.seed, show_progress=not args.no_progress, recipe=args.recipe,
        checkpoint_every=max(1, min(100, steps // 4)))
    opts = dict(max_val=args.max_val if args.max_val is not None else b.get("max_val"),
                figure_images=args.figure_images if args.figure_images is not None else b.get("figure_images", 4),
                n_train=b.get("n_train"), n_val=b.get("n_val"), darken_workers=b.get("darken_workers"),
                resamples=getattr(args, "resamples", 1000), seeds=getattr(args, "seeds", 1))
    opts.update(resolve_detectors(args, builtin, b))
    return train, opts, name


def resolve_detectors(args, builtin, b):
    """The experiments' detector, vedadet, biubug6, input_scale, detect_kwargs and judges from the
    command line: on the built-in data the shipped defaults of ``tasklle.experiments.detectors``
    (the budget's detection settings apply to the lite TinaFace), flags override them."""
    from ..experiments.detect_eval import detect_kwargs
    from ..experiments.detectors import builtin_detectors, load_with_scale

    explicit = detect_kwargs(args.detect_scale, args.score_thr)
    vedadet, biubug6 = getattr(args, "vedadet", None), getattr(args, "biubug6", None)
    judge_args = getattr(args, "judge", None)
    if builtin and vedadet is None and biubug6 is None and (args.detector is None or
                                                             args.detector in SHIPPED_DETECTORS):
        budget_kw = detect_kwargs(b.get("detect_scale"), b.get("score_thr"))
        chosen = builtin_detectors(args.detector, budget_kw, judges=not args.no_judges and not judge_args)
        scale = args.detector_scale if args.detector_scale is not None else chosen["input_scale"]
        judges = chosen["judges"]
        det_kw = dict(chosen["detect_kwargs"], **explicit)
        detector = chosen["detector"]
    else:
        scale, judges, det_kw, detector = args.detector_scale, {}, explicit, args.detector
    for j in judge_args or ():
        if args.no_judges:
            raise ValueError("--judge and --no-judges contradict each other")
        judges[j] = (load_with_scale(j, name="--judge"), {})
    return dict(detector=detector, vedadet=vedadet, biubug6=biubug6, input_scale=scale, detect_kwargs=det_kw,
                judges=judges or None)


def add_real_dark_arguments(p):
    g = p.add_argument_group("real-dark (--root is a DARK FACE release tree: image/*.png, label/*.txt)")
    g.add_argument("--upstream", default=None, metavar="PT",
                   help="real-dark: a Zero-DCE++ checkpoint trained with L_up only (the 'zero-dce++' group)")
    g.add_argument("--joint", default=None, metavar="PT",
                   help="real-dark: a jointly trained Zero-DCE++ checkpoint (the 'joint' group)")
    g.add_argument("--max-images", type=int, default=None,
                   help="real-dark: the first this many images in numeric order (default all)")


def run_real_dark(args):
    from ..experiments import real_dark
    from ..experiments.detect_eval import detect_kwargs

    if args.root is None:
        raise ValueError("real-dark needs --root DARKFACE (the release tree with image/ and label/)")
    out = args.out or "runs/real-dark"
    extra = {k: getattr(args, k) for k in ("resamples",) if getattr(args, k, None) is not None}
    res = real_dark.run(args.root, out, upstream=args.upstream, joint=args.joint, detector=args.detector,
                        vedadet=args.vedadet, max_images=args.max_images,
                        detect_kwargs=detect_kwargs(args.detect_scale, args.score_thr), pred_format=args.predictions,
                        show_progress=not args.no_progress, **extra)
    print()
    print(real_dark.markdown(res))
    print(f"results: {out}/results.json, {out}/results.md; figures: " + ", ".join(res["figures"].values()))
    sys.stdout.flush()
    return 0


def run(args):
    if args.which == "real-dark":
        return run_real_dark(args)
    import tasklle.experiments.four_groups as four_groups
    import tasklle.experiments.ratio_sweep as ratio_sweep

    builtin = args.root is None
    train, opts, name = resolve(args, builtin)
    out = args.out or f"runs/{args.which}"
    common = dict(dark=args.dark, train=train,
                  dark_seed=args.dark_seed, show_progress=not args.no_progress, darkening=darkening(args),
                  gt=args.gt, pred_format=args.predictions, **opts)
    if args.which == "four-groups":
        res = four_groups.run(args.root, out, w_up=args.w_up, w_down=args.w_down, **common)
        print()
        print(four_groups.markdown(res))
    else:
        ratios = ratio_sweep.DEFAULT_RATIOS if not args.ratios else [r for r in args.ratios.split(",") if r.strip()]
        for r in ratios:
            ratio_sweep.parse_ratio(r)  # fail early on a typo
        opts_figs = dict(common)
        opts_figs["figure_images"] = min(2, opts_figs["figure_images"])
        res = ratio_sweep.run(args.root, out, ratios=ratios, **opts_figs)
        print()
        print(ratio_sweep.markdown(res))
    print(f"results: {out}/results.json, {out}/results.md; figures: "
          + ", ".join(res["figures"].values()))
    sys.stdout.flush()
    return 0
