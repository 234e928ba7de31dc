"""``tasklle evaluate PRED_DIR GT_DIR``: WIDER FACE AP (easy / medium / hard) of a prediction folder;
``tasklle evaluate --darkface ROOT PRED_DIR``: the DARK FACE AP (the challenge tools' protocol)."""
import sys


def register(subparsers):
    p = subparsers.add_parser(
        "evaluate", help="WIDER FACE AP (easy/medium/hard) of a prediction folder",
        description="Evaluate a prediction folder in the official WIDER FACE format (one folder per event, "
                    "<image>.txt with the image name, the box count and 'x y w h score' lines) against the "
                    "ground truth in GT_DIR (wider_face_val.mat and wider_{easy,medium,hard}_val.mat), exactly as "
                    "the official evaluation tools do. Images without a prediction file count as images without "
                    "detections (a warning says how many).")
    p.add_argument("pred_dir", metavar="PRED_DIR", help="prediction folder")
    p.add_argument("gt_dir", metavar="GT_DIR", nargs="?", default=None,
                   help="ground-truth folder (e.g. ROOT/wider_face_split); not with --darkface")
    p.add_argument("--plot", metavar="PATH", default=None, help="save the PR curves (e.g. pr.png, pr.pdf)")
    p.add_argument("--json", metavar="PATH", default=None, help="save AP and PR curves as JSON")
    p.add_argument("--name", default=None, help="method name in the plot legend (default: PRED_DIR's name)")
    p.add_argument("--iou", type=float, default=0.5, help="IoU threshold (official: 0.5)")
    p.add_argument("--settings", default="easy,medium,hard", help="comma-separated subset of easy,medium,hard")
    add_darkface_arguments(p)
    p.set_defaults(func=run)


def add_darkface_arguments(p):
    p.add_argument("--darkface", metavar="ROOT", default=None,
                   help="score PRED_DIR as a DARK FACE submission against the release tree ROOT (image/, "
                        "label/): one AP, every face counted, as the challenge's evaluation tools do; PRED_DIR "
                        "holds <name>.txt files of 'x y w h score' lines")


def run_darkface(args):
    import warnings
    from pathlib import Path

    from ..eval import darkface
    from ..io import write_json

    if args.gt_dir is not None:
        raise ValueError("with --darkface ROOT give only PRED_DIR (the ground truth is ROOT's label/ folder)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = darkface.evaluate(args.pred_dir, args.darkface, iou_thresh=args.iou)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    print(f"DARK FACE AP {result['ap']:.4f}  ({result['n_faces']} faces, {result['n_images']} images)")
    name = args.name or Path(args.pred_dir).resolve().name
    if args.json:
        write_json(args.json, {"method": name, "pred_dir": str(args.pred_dir), "root": str(args.darkface),
                               **darkface.result_to_json(result)})
        print(f"wrote {args.json}")
    if args.plot:
        darkface.plot_pr_curves({name: result}, args.plot)
        print(f"wrote {args.plot}")
    return 0


def run(args):
    if args.darkface is not None:
        return run_darkface(args)
    if args.gt_dir is None:
        raise ValueError("GT_DIR is missing (or use --darkface ROOT PRED_DIR)")
    import warnings
    from pathlib import Path

    from ..eval import wider
    from ..io import write_json

    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = wider.evaluate(args.pred_dir, args.gt_dir, iou_thresh=args.iou, settings=settings)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    for s in settings:
        print(f"{s:<7} AP {result[s]:.4f}  ({result['curves'][s]['n_faces']} faces)")
    name = args.name or Path(args.pred_dir).resolve().name
    if args.json:
        payload = {"method": name, "pred_dir": str(args.pred_dir), "gt_dir": str(args.gt_dir),
                   **wider.result_to_json(result)}
        write_json(args.json, payload)
        print(f"wrote {args.json}")
    if args.plot:
        wider.plot_pr_curves({name: result}, args.plot, settings=settings)
        print(f"wrote {args.plot}")
    return 0
