"""``tasklle demo``: the whole method on the built-in data, from nothing.

Builds the built-in WIDER-format dataset (cached), darkens it with the
shipped EC-Zero-DCE (the method's generation: E ~ U(0.05, 0.3) per image,
saturated pixels kept, no noise; ``--noise`` adds some), trains Zero-DCE++ with L_up only and jointly with the
frozen shipped RetinaFace's loss (WIDER FACE-pretrained, as the method's frozen
TinaFace; same data, steps and seed; ``--detector tinaface-lite-demo`` for the
lite TinaFace instead), detects the four image groups of val with that detector
and with the other shipped detector as a judge, evaluates them with the WIDER FACE
protocol, and prints the table (the method's Table 4.1, every AP with its 95%
bootstrap interval over the val images), the verdicts of the paired
differences ("better (interval excludes 0)" or "not distinguishable") and
where the results and figures are. The default budget takes under 8 minutes on 2 CPU
cores; ``--budget long`` trains longer. Rerunning resumes: finished stages
are skipped.
"""
import time


def register(subparsers):
    p = subparsers.add_parser(
        "demo", help="run the whole method on the built-in data (<= 8 min on 2 cores)",
        description="Build data, darken, train Zero-DCE++ with L_up only and jointly with the frozen detector, "
                    "detect and evaluate the four image groups, print the table. Resumable. Budgets (2 CPU cores): "
                    "tiny < 1 min (smoke test), small ~2 min, default ~7.5 min (1000 steps of 192x192 crops per "
                    "enhancer, all 120 val images), long ~30 min (3000 steps of 256x256).")
    p.add_argument("--out", default="tasklle-demo", help="output folder (default ./tasklle-demo)")
    from .experiment import add_common_arguments

    add_common_arguments(p, demo=True)
    p.set_defaults(func=run)


def run(args):
    import tasklle.experiments.four_groups as four_groups
    from .experiment import darkening, resolve

    t0 = time.perf_counter()
    train, opts, name = resolve(args, builtin=True)
    print(f"tasklle demo (budget '{name}'): built-in data -> darken -> Zero-DCE++ (L_up only) and joint training "
          f"(W_up:W_down = {args.w_up:g}:{args.w_down:g}, {train['steps']} steps each) -> detect and evaluate "
          f"the four groups -> {args.out}")
    res = four_groups.run(None, args.out, w_up=args.w_up, w_down=args.w_down, train=train,
                          dark_seed=args.dark_seed, show_progress=not args.no_progress, darkening=darkening(args),
                          **opts)
    minutes = (time.perf_counter() - t0) / 60
    print()
    print(four_groups.markdown(res))
    from ..experiments.claims import verdict_line

    # the verdicts the paired bootstrap intervals carry (better / worse only when the interval excludes 0)
    b = res["bootstrap"]
    for det_name, d in res["differences_by_detector"].items():
        role = ("frozen detector, trained against" if det_name == res["detector_name"]
                else "judge, never trained against")
        print(f"paired differences scored by {det_name} ({role}; {b['level']:.0%} bootstrap intervals over "
              f"{b['n_images']} val images, {b['resamples']} resamples):")
        print("  original vs low-light: " + verdict_line(d["original - low-light"]))
        print("  Zero-DCE++ alone vs low-light: " + verdict_line(d["zero-dce++ - low-light"]))
        print("  joint training vs low-light: " + verdict_line(d["joint - low-light"]))
        print("  joint training vs Zero-DCE++ alone: " + verdict_line(d["joint - zero-dce++"]))
    print(f"\nresults: {args.out}/results.json and {args.out}/results.md")
    for k, v in res["figures"].items():
        print(f"figure ({k}): {v}")
    print(f"done in {minutes:.1f} min (rerun the same command to reuse finished stages; --budget long for a "
          f"longer run)")
    return 0
