"""``tasklle train-detector --data ROOT``: train TinaFace (lite or full) on a
WIDER-format tree. Under ``torchrun --nproc_per_node N -m tasklle
train-detector ...`` it trains data-parallel (gloo on CPU, NCCL on GPU)."""


def register(subparsers):
    p = subparsers.add_parser(
        "train-detector", help="train the TinaFace face detector on a WIDER-format tree",
        description="Train TinaFace (vedadet train pipeline: square crop, photometric distortion, flip, "
                    "resize). Writes OUT/checkpoint.pt (resumable), OUT/detector.pt, OUT/log.csv and OUT/log.json. "
                    "Run under torchrun for data-parallel training.")
    from ._args import module_constant, signature_defaults

    D = signature_defaults("tasklle.train.detector", "train_detector")  # one source: the function's defaults
    p.add_argument("--data", required=True, help="WIDER-format root (WIDER_train/images, wider_face_split)")
    p.add_argument("--out", default=D["out"], help=f"output folder (default: {D['out']})")
    p.add_argument("--config", choices=["lite", "full"], default=D["config"],
                   help=f"model size (default: {D['config']})")
    epochs = module_constant("tasklle.train.detector", "DEFAULT_EPOCHS")
    p.add_argument("--epochs", type=int, default=epochs, help=f"passes over the data (default: {epochs})")
    p.add_argument("--batch-size", type=int, default=D["batch_size"],
                   help=f"images per process (default: {D['batch_size']})")
    p.add_argument("--lr", type=float, default=D["lr"],
                   help="learning rate (default: SGD 3.75e-3 per 12 images of total batch; Adam 1e-3)")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default=D["optimizer"])
    p.add_argument("--weight-decay", type=float, default=D["weight_decay"], help="default: 5e-4 for SGD, 0 for Adam")
    p.add_argument("--schedule", choices=["cosine", "step", "constant"], default=D["schedule"])
    p.add_argument("--restart-period", type=int, default=D["restart_period"],
                   help="cosine restart period in epochs (vedadet: 30; default: none)")
    p.add_argument("--step-epochs", type=int, nargs="+", default=D["step_epochs"],
                   help="epochs where 'step' divides lr by 10")
    p.add_argument("--min-lr-ratio", type=float, default=D["min_lr_ratio"])
    p.add_argument("--warmup-iters", type=int, default=D["warmup_iters"])
    p.add_argument("--warmup-ratio", type=float, default=D["warmup_ratio"])
    p.add_argument("--image-size", type=int, default=D["image_size"],
                   help=f"training side (default: {D['image_size']})")
    p.add_argument("--workers", type=int, default=D["num_workers"],
                   help=f"DataLoader workers (default: {D['num_workers']})")
    p.add_argument("--seed", type=int, default=D["seed"])
    p.add_argument("--checkpoint-every", type=int, default=D["checkpoint_every"], help="epochs between checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--init", default=D["init"], help="start from these detector weights (TinaFace.load file)")
    p.add_argument("--grad-clip", type=float, default=D["grad_clip"], help="max gradient norm (default and 0: none)")
    p.add_argument("--max-steps", "--max-iters", dest="max_steps", type=int, default=D["max_steps"],
                   help="stop after this many iterations (a checkpoint, no detector.pt)")
    p.add_argument("--device", default=D["device"], help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--log-every", type=int, default=D["log_every"], help="loss-log every n-th iteration")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args):
    from ..train.detector import train_detector

    res = train_detector(
        root=args.data, out=args.out, config=args.config, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, optimizer=args.optimizer, weight_decay=args.weight_decay, schedule=args.schedule,
        warmup_iters=args.warmup_iters, warmup_ratio=args.warmup_ratio, min_lr_ratio=args.min_lr_ratio,
        restart_period=args.restart_period, step_epochs=args.step_epochs, image_size=args.image_size,
        num_workers=args.workers, seed=args.seed, checkpoint_every=args.checkpoint_every, resume=args.resume,
        init=args.init, grad_clip=args.grad_clip or None, max_steps=args.max_steps, device=args.device,
        show_progress=not args.no_progress, log_every=args.log_every)
    if res.final is not None:
        print(f"detector saved to {res.final}")
    return 0
