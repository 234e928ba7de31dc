"""``tasklle train-joint``: Zero-DCE++ trained with L_total = W_up*L_up + W_down*L_down.

Single process, or DDP with ``torchrun --nproc_per_node N -m tasklle train-joint ...``
(gloo on CPU, NCCL on GPU; ``TASKLLE_DIST_BACKEND`` overrides).
"""


def register(subparsers):
    p = subparsers.add_parser(
        "train-joint", help="train Zero-DCE++ jointly with a frozen detector's loss",
        description="Train the Zero-DCE++ enhancer on a darkened WIDER-format tree with "
                    "L_total = W_up*L_up + W_down*L_down, L_down being the frozen detector's training loss on "
                    "the enhanced images (the detector is checked bit-identical afterwards). W_down 0 trains "
                    "with L_up only. Writes checkpoint.pt, final.pt, log.csv, log.json and loss.png to --out.")
    p.add_argument("--data", required=True, help="darkened WIDER-format root (images dark, boxes from annotations)")
    p.add_argument("--split", default="train", choices=("train", "val"))
    g = p.add_mutually_exclusive_group()
    g.add_argument("--detector", default=None, help="tasklle TinaFace checkpoint (default: the shipped lite "
                                                    "detector for the built-in data)")
    g.add_argument("--vedadet", default=None, help="vedadet TinaFace state_dict (full TinaFace-R50)")
    p.add_argument("--out", default="runs/joint", help="output folder (default runs/joint)")
    p.add_argument("--w-up", type=float, default=1.0, help="W_up (default 1)")
    p.add_argument("--w-down", type=float, default=0.5, help="W_down (default 0.5; 0 = L_up only)")
    p.add_argument("--normalise", default="none", choices=("none", "running-ratio"),
                   help="L_down normalisation: none, or scaled by the detached ratio EMA(L_up)/EMA(L_down)")
    p.add_argument("--ema-decay", type=float, default=0.99, help="decay of the running averages (0.99)")
    p.add_argument("--steps", type=int, default=1000, help="optimiser steps in total (1000)")
    p.add_argument("--batch-size", type=int, default=4, help="images per step per process (4)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--recipe", default="method", choices=("method", "zero-dce++"),
                   help="optimiser recipe: method = the report's Adam with default parameters (no weight decay, "
                        "no clipping; default); zero-dce++ = the official Zero-DCE++ script's weight decay 1e-4 "
                        "and gradient-norm clip 0.1")
    p.add_argument("--weight-decay", type=float, default=None, help="Adam weight decay (default: the recipe's)")
    p.add_argument("--grad-clip", type=float, default=None,
                   help="gradient-norm clip, 0 = none (default: the recipe's)")
    p.add_argument("--image-size", type=int, default=640, help="side of the square training crops (640)")
    p.add_argument("--crop", default="random", choices=("random", "resize"))
    p.add_argument("--exposure", type=float, default=0.6, help="exposure target E of L_exp (0.6)")
    p.add_argument("--upstream", default=None, help="start from this Zero-DCE++ checkpoint (ours or official); "
                                                    "default: from scratch, conv weights ~ N(0, 0.02) as the report")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--workers", type=int, default=0, help="threads loading images (0)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args):
    from ..train.joint import joint

    detector = None
    if args.w_down > 0:
        from ..models.shipped import load_detector

        detector = load_detector(args.detector, args.vedadet)
    res = joint(args.data, detector, args.out, w_up=args.w_up, w_down=args.w_down, steps=args.steps,
                batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, recipe=args.recipe,
                grad_clip="recipe" if args.grad_clip is None else (args.grad_clip if args.grad_clip > 0 else None),
                image_size=args.image_size,
                crop=args.crop, exposure=args.exposure, normalise=args.normalise, ema_decay=args.ema_decay,
                upstream=args.upstream, seed=args.seed, split=args.split, checkpoint_every=args.checkpoint_every,
                resume=args.resume, num_workers=args.workers, show_progress=not args.no_progress)
    print(f"wrote {res['final']} (log {res['out'] / 'log.csv'}, plot {res['out'] / 'loss.png'})")
    if res["detector_sha256"]:
        print(f"detector unchanged (sha256 {res['detector_sha256'][:16]})")
    return 0
