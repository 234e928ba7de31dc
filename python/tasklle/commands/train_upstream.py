"""``tasklle train-upstream``: Zero-DCE++ (or Zero-DCE) trained with the
non-reference losses only on any folder of images (the method's optimiser by
default, the official Zero-DCE++ recipe with ``--recipe zero-dce++``)."""


def register(subparsers):
    p = subparsers.add_parser(
        "train-upstream", help="train Zero-DCE++ / Zero-DCE on a folder of images with the non-reference losses",
        description="Zero-DCE++'s training (images squashed to a square, Adam lr 1e-4, "
                    "L_spa + 10 L_exp + 5 L_col + 1600 L_tvA, E = 0.6) with the method's optimiser (Adam with "
                    "default parameters: no weight decay, no clipping; --recipe zero-dce++ adds the official "
                    "weight decay 1e-4 and gradient-norm clip 0.1) on every image "
                    "below --data (unreadable files are reported and skipped). Writes checkpoint.pt (every "
                    "--checkpoint-every steps, on Ctrl-C and at the end), final.pt, log.csv, log.json and "
                    "loss_curve.png to --out; --resume continues exactly where a checkpoint left off.")
    from ._args import add_optimiser_args, signature_defaults

    D = signature_defaults("tasklle.train.upstream", "train_upstream")  # one source: the function's defaults
    p.add_argument("--data", required=True, help="folder of images (searched recursively) or one image")
    p.add_argument("--out", default="runs/upstream", help="output folder (default runs/upstream)")
    p.add_argument("--model", default=D["model"], choices=("zero-dce++", "zero-dce"))
    p.add_argument("--epochs", type=int, default=100,  # the official length; the function's 1 suits short calls
                   help="passes over the data (official: 100)")
    p.add_argument("--batch-size", type=int, default=D["batch_size"],
                   help=f"images per step ({D['batch_size']}, the official)")
    p.add_argument("--image-size", type=int, default=D["image_size"],
                   help=f"side of the square images ({D['image_size']}, the official)")
    add_optimiser_args(p, D)
    p.add_argument("--scale-factor", type=float, default=D["scale_factor"],
                   help=f"Zero-DCE++ scale factor ({D['scale_factor']}, the official training's)")
    p.add_argument("--exposure", type=float, default=D["exposure"],
                   help=f"exposure target E of L_exp ({D['exposure']:g})")
    p.add_argument("--seed", type=int, default=D["seed"])
    p.add_argument("--checkpoint-every", type=int, default=D["checkpoint_every"],
                   help=f"steps between checkpoints ({D['checkpoint_every']})")
    p.add_argument("--max-steps", type=int, default=D["max_steps"], help="stop after this many steps in total")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--workers", type=int, default=D["num_workers"],
                   help=f"image-loading worker processes ({D['num_workers']})")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args):
    from ..train.upstream import train_upstream
    from ._args import grad_clip_arg

    sf = int(args.scale_factor) if float(args.scale_factor).is_integer() else args.scale_factor
    res = train_upstream(args.data, args.out, model=args.model, epochs=args.epochs, batch_size=args.batch_size,
                         image_size=args.image_size, lr=args.lr, weight_decay=args.weight_decay,
                         grad_clip=grad_clip_arg(args.grad_clip), recipe=args.recipe, seed=args.seed,
                         checkpoint_every=args.checkpoint_every,
                         resume=args.resume, scale_factor=sf, exposure=args.exposure, max_steps=args.max_steps,
                         num_workers=args.workers, show_progress=not args.no_progress)
    done = [r for r in res["history"] if r["images"]]
    if done:
        last = done[-1]
        print(f"step {last['step']}: total {last['total']:.4g} (spa {last['spa']:.3g}, exp {last['exp']:.3g}, "
              f"col {last['col']:.3g}, tv {last['tv']:.3g})")
    if res["final"]:
        print(f"wrote {res['final']} (log {res['out'] / 'log.csv'}, plot {res['out'] / 'loss_curve.png'})")
    else:
        print(f"stopped at step {len(res['history'])}: {res['checkpoint']} (continue with --resume)")
    return 0
