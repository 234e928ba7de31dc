"""``tasklle enhance IN OUT``: enhance an image or a folder tree with Zero-DCE++."""


def register(subparsers):
    p = subparsers.add_parser(
        "enhance", help="enhance an image or a folder tree of low-light images with Zero-DCE++",
        description="Enhance IN (an image file or a folder, searched recursively) into OUT, keeping the folder "
                    "layout, names and formats; any image size. Outputs are written atomically and existing "
                    "outputs are skipped (rerun to finish an interrupted job; --overwrite to redo). Unreadable "
                    "images are reported and skipped; the exit status is 1 if any failed.")
    p.add_argument("input", metavar="IN", help="image file or folder")
    p.add_argument("output", metavar="OUT", help="output folder (or output file when IN is a file)")
    p.add_argument("--weights", default=None,
                   help="checkpoint: a tasklle final.pt or an official Zero-DCE++/Zero-DCE state_dict "
                        "(default: the shipped weights, when the installation has them)")
    p.add_argument("--official", action="store_true",
                   help="read --weights strictly as official Zero-DCE++ weights (Epoch99.pth) and use the "
                        "official test scale factor 12 unless --scale-factor is given")
    p.add_argument("--scale-factor", type=float, default=None,
                   help="Zero-DCE++ scale factor (default: the checkpoint's; official test: 12)")
    p.add_argument("--batch-size", type=int, default=4, help="images per forward pass (4)")
    p.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args):
    import sys

    from ..enhancement import enhance_folder

    sf = args.scale_factor
    if sf is not None and float(sf).is_integer():
        sf = int(sf)
    res = enhance_folder(args.input, args.output, weights=args.weights, batch_size=args.batch_size,
                         official=args.official, scale_factor=sf, overwrite=args.overwrite,
                         show_progress=not args.no_progress)
    print(f"enhanced {res['written']} image(s) into {args.output}"
          + (f", {res['existing']} already there" if res["existing"] else "")
          + (f", {len(res['failed'])} failed" if res["failed"] else ""))
    for path, reason in res["failed"]:
        print(f"  failed: {path}: {reason}", file=sys.stderr)
    return 1 if res["failed"] else 0
