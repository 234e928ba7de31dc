"""``tasklle train-darkener``: train the exposure-conditioned darkener (EC-Zero-DCE), zero-reference."""
from ._args import module_constant, signature_defaults


def register(subparsers):
    D = signature_defaults("tasklle.train.darkener", "train_darkener")  # one source: the function's defaults
    p = subparsers.add_parser(
        "train-darkener", help="train the exposure-conditioned darkener (EC-Zero-DCE)",
        description="Zero-reference training of ECZeroDCE: each crop gets E ~ U(LO, HI); loss = spatial "
                    "consistency + exposure control against E + colour constancy + illumination smoothness. "
                    "--data builtin uses photographs shipped with scikit-image and scikit-learn (held-out ones "
                    "measure fidelity at the end, OUT/fidelity.json). Writes OUT/checkpoint.pt (atomic, every "
                    "--checkpoint-every steps), OUT/log.csv, OUT/log.json and OUT/ec_zero_dce.pt; --resume continues.")
    p.add_argument("--data", required=True, help="'builtin' or a folder of images (searched recursively)")
    p.add_argument("--out", required=True, help="output folder")
    epochs = module_constant("tasklle.train.darkener", "DEFAULT_EPOCHS")
    p.add_argument("--epochs", type=int, default=epochs, help=f"epochs (default {epochs})")
    p.add_argument("--steps-per-epoch", type=int, default=D["steps_per_epoch"],
                   help=f"steps per epoch (default {D['steps_per_epoch']}; 0: one pass over the images)")
    p.add_argument("--batch-size", type=int, default=D["batch_size"],
                   help=f"crops per step (default {D['batch_size']})")
    p.add_argument("--image-size", type=int, default=D["image_size"],
                   help=f"crop side in pixels (default {D['image_size']})")
    p.add_argument("--exposure-range", type=float, nargs=2, default=D["exposure_range"], metavar=("LO", "HI"),
                   help="E ~ U(LO, HI) per crop (default {:g} {:g})".format(*D["exposure_range"]))
    p.add_argument("--lr", type=float, default=D["lr"],
                   help=f"Adam learning rate, cosine-decayed to lr/10 ({D['lr']:g})")
    p.add_argument("--seed", type=int, default=D["seed"], help=f"seed (default {D['seed']})")
    p.add_argument("--checkpoint-every", type=int, default=D["checkpoint_every"],
                   help=f"steps between checkpoints ({D['checkpoint_every']})")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    for term, default in module_constant("tasklle.train.darkener", "DEFAULT_WEIGHTS").items():
        p.add_argument(f"--w-{term}", type=float, default=default, help=f"weight of L_{term} (default {default:g})")
    p.set_defaults(func=run)


def run(args):
    import json
    from pathlib import Path

    from ..train.darkener import train_darkener

    weights = {"spa": args.w_spa, "exp": args.w_exp, "col": args.w_col, "tv": args.w_tv}
    train_darkener(args.data, args.out, epochs=args.epochs, batch_size=args.batch_size, image_size=args.image_size,
                   exposure_range=tuple(args.exposure_range), lr=args.lr, seed=args.seed,
                   checkpoint_every=args.checkpoint_every, resume=args.resume,
                   steps_per_epoch=args.steps_per_epoch or None, weights=weights)
    out = Path(args.out)
    print(f"model: {out / 'ec_zero_dce.pt'}")
    fid = out / "fidelity.json"
    if args.data == "builtin" and fid.is_file():
        res = json.loads(fid.read_text())
        for e, r in res.items():
            if e != "monotone":
                print(f"E = {e}: held-out 16x16 patch MAE {r['patch_mae']:.4f} (worst image {r['patch_mae_max']:.4f}), "
                      f"image-mean error {r['image_mae']:.4f}")
        print(f"brightness monotone in E: {res['monotone']}")
    return 0
