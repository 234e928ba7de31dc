"""The ``tasklle`` command line.

Each sub-command lives in its own module in ``tasklle.commands`` and defines
``register(subparsers)`` which adds its parser and sets ``func`` (called with
the parsed arguments; its return value is the exit code). Commands are found
by listing that package, so adding a command is adding a file.
"""
import argparse
import importlib
import pkgutil
import sys


def build_parser():
    from . import __version__, commands

    parser = argparse.ArgumentParser(
        prog="tasklle",
        description="Task-oriented low-light enhancement: darken, enhance, train jointly with a frozen "
        "face detector, evaluate on WIDER FACE.",
    )
    parser.add_argument("--version", action="version", version=f"tasklle {__version__}")
    parser.add_argument("--threads", type=int, default=None, help="threads for the C core and torch")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.threads is not None:
        from . import set_num_threads

        set_num_threads(args.threads)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("\ninterrupted: completed work is saved; run the same command with --resume to go on",
              file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, TypeError) as e:
        print(f"tasklle {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
