"""``tasklle train-detector --data ROOT``: train TinaFace (lite or full) on a
WIDER-format tree. Under ``torchrun --nproc_per_node N -m tasklle
train-detector ...`` it trains data-parallel (gloo on CPU, NCCL on GPU)."""


def register(subparsers):
    p = subparsers.add_parser(
        "train-detector", help="train the TinaFace face detector on a WIDER-format tree",
        description="Train TinaFace (REFERENCE §4 train pipeline: square crop, photometric distortion, flip, "
                    "resize). Writes OUT/checkpoint.pt (resumable), OUT/detector.pt and OUT/loss_log.json. "
                    "Run under torchrun for data-parallel training.")
    p.add_argument("--data", required=True, help="WIDER-format root (WIDER_train/images, wider_face_split)")
    p.add_argument("--out", default="runs/detector", help="output folder (default: runs/detector)")
    p.add_argument("--config", choices=["lite", "full"], default="lite", help="model size (default: lite)")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=4, help="images per process (default: 4)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: SGD 3.75e-3 per 12 images of total batch; Adam 1e-3)")
    p.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    p.add_argument("--weight-decay", type=float, default=None, help="default: 5e-4 for SGD, 0 for Adam")
    p.add_argument("--schedule", choices=["cosine", "step", "constant"], default="cosine")
    p.add_argument("--restart-period", type=int, default=None,
                   help="cosine restart period in epochs (vedadet: 30; default: none)")
    p.add_argument("--step-epochs", type=int, nargs="+", default=None, help="epochs where 'step' divides lr by 10")
    p.add_argument("--min-lr-ratio", type=float, default=0.01)
    p.add_argument("--warmup-iters", type=int, default=500)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--image-size", type=int, default=640, help="training side (default: 640)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers (default: 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-every", type=int, default=1, help="epochs between checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--init", default=None, help="start from these detector weights (TinaFace.load file)")
    p.add_argument("--grad-clip", type=float, default=None, help="max gradient norm (default: none)")
    p.add_argument("--max-iters", type=int, default=None, help="stop after this many iterations")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--log-every", type=int, default=1, help="loss-log every n-th iteration")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args):
    from ..train.detector import train_detector

    path = train_detector(
        root=args.data, out=args.out, config=args.config, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, optimizer=args.optimizer, weight_decay=args.weight_decay, schedule=args.schedule,
        warmup_iters=args.warmup_iters, warmup_ratio=args.warmup_ratio, min_lr_ratio=args.min_lr_ratio,
        restart_period=args.restart_period, step_epochs=args.step_epochs, image_size=args.image_size,
        workers=args.workers, seed=args.seed, checkpoint_every=args.checkpoint_every, resume=args.resume,
        init=args.init, grad_clip=args.grad_clip, max_iters=args.max_iters, device=args.device,
        show_progress=not args.no_progress, log_every=args.log_every)
    if path is not None:
        print(f"detector saved to {path}")
    return 0
