"""``tasklle build-demo-data``: build (or find) the built-in WIDER-format demo dataset."""


def register(subparsers):
    p = subparsers.add_parser(
        "build-demo-data", help="build the built-in WIDER-format demo dataset (cached; no download)",
        description="Composite the LFW face crops shipped with scikit-image onto photographs shipped with "
                    "scikit-image and scikit-learn into a WIDER FACE-format tree (images, txt annotations, "
                    "evaluation .mat files). Deterministic for a seed; reused when already built.")
    p.add_argument("--root", default=None,
                   help="target folder (default: $TASKLLE_CACHE/demo/<params> or ~/.cache/tasklle/demo/<params>)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--n-train", type=int, default=240, help="train images (default 240)")
    p.add_argument("--n-val", type=int, default=120, help="val images (default 120)")
    p.add_argument("--image-size", type=int, nargs=2, default=(256, 384), metavar=("LOW", "HIGH"),
                   help="range of image height and width in pixels (default 256 384)")
    p.add_argument("--force", action="store_true", help="rebuild even if the folder holds a demo dataset")
    p.add_argument("--preview", default=None, metavar="PNG",
                   help="also draw a grid of val images with their boxes into this PNG")
    p.set_defaults(func=run)


def run(args):
    import json
    import time

    from ..data import demo

    t0 = time.perf_counter()
    root = demo.build(root=args.root, seed=args.seed, n_train=args.n_train, n_val=args.n_val,
                      image_size=tuple(args.image_size), force=args.force, progress_bar=True)
    with open(root / "manifest.json", encoding="utf-8") as f:
        counts = json.load(f)["counts"]
    for split, c in counts.items():
        print(f"{split}: {c['images']} images, {c['faces']} faces (easy {c['easy']}, medium {c['medium']}, "
              f"hard {c['hard']}, invalid {c['invalid']})")
    if args.preview:
        print(f"preview: {demo.preview(root, n=6, path=args.preview)}")
    print(f"ready in {time.perf_counter() - t0:.1f} s: {root}")
    print(f"evaluation gt_dir: {root / 'wider_face_split'}")
    return 0
