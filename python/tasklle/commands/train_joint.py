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
    from ._args import add_optimiser_args, module_constant, signature_defaults

    D = signature_defaults("tasklle.train.joint", "joint")  # one source: the function's defaults
    p.add_argument("--data", required=True, help="darkened WIDER-format root (images dark, boxes from annotations)")
    p.add_argument("--split", default=D["split"], choices=("train", "val"))
    g = p.add_mutually_exclusive_group()
    g.add_argument("--detector", default=None, help="tasklle TinaFace checkpoint (default: the shipped lite "
                                                    "detector for the built-in data)")
    g.add_argument("--vedadet", default=None, help="vedadet TinaFace state_dict (full TinaFace-R50)")
    p.add_argument("--out", default=D["out"], help=f"output folder (default {D['out']})")
    p.add_argument("--w-up", type=float, default=D["w_up"], help=f"W_up (default {D['w_up']:g})")
    p.add_argument("--w-down", type=float, default=D["w_down"], help=f"W_down (default {D['w_down']:g}; 0 = L_up only)")
    p.add_argument("--normalise", default=D["normalise"], choices=("none", "running-ratio"),
                   help="L_down normalisation: none, or scaled by the detached ratio EMA(L_up)/EMA(L_down)")
    p.add_argument("--ema-decay", type=float, default=D["ema_decay"],
                   help=f"decay of the running averages ({D['ema_decay']:g})")
    steps = module_constant("tasklle.train.joint", "DEFAULT_STEPS")
    p.add_argument("--steps", type=int, default=steps, help=f"optimiser steps in total ({steps})")
    p.add_argument("--batch-size", type=int, default=D["batch_size"],
                   help=f"images per step per process ({D['batch_size']})")
    add_optimiser_args(p, D)
    p.add_argument("--image-size", type=int, default=D["image_size"],
                   help=f"side of the square training crops ({D['image_size']})")
    p.add_argument("--crop", default=D["crop"], choices=("random", "resize"))
    p.add_argument("--exposure", type=float, default=D["exposure"],
                   help=f"exposure target E of L_exp ({D['exposure']:g})")
    p.add_argument("--upstream", default=None, help="start from this Zero-DCE++ checkpoint (ours or official); "
                                                    "default: from scratch, conv weights ~ N(0, 0.02) as the report")
    p.add_argument("--seed", type=int, default=D["seed"])
    p.add_argument("--checkpoint-every", type=int, default=D["checkpoint_every"])
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--workers", type=int, default=D["num_workers"], help=f"threads loading images ({D['num_workers']})")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args):
    from ..train.joint import joint
    from ._args import grad_clip_arg

    detector = None
    if args.w_down > 0:
        from ..models.shipped import load_detector

        detector = load_detector(args.detector, args.vedadet)
    res = joint(args.data, detector, args.out, w_up=args.w_up, w_down=args.w_down, steps=args.steps,
                batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, recipe=args.recipe,
                grad_clip=grad_clip_arg(args.grad_clip),
                image_size=args.image_size,
                crop=args.crop, exposure=args.exposure, normalise=args.normalise, ema_decay=args.ema_decay,
                upstream=args.upstream, seed=args.seed, split=args.split, checkpoint_every=args.checkpoint_every,
                resume=args.resume, num_workers=args.workers, show_progress=not args.no_progress)
    print(f"wrote {res['final']} (log {res['out'] / 'log.csv'}, plot {res['out'] / 'loss.png'})")
    if res["detector_sha256"]:
        print(f"detector unchanged (sha256 {res['detector_sha256'][:16]})")
    return 0
