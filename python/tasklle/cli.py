"""The ``tasklle`` command line.

Each sub-command lives in its own module in ``tasklle.commands`` and defines
``register(subparsers)`` which adds its parser and sets ``func`` (called with
the parsed arguments; its return value is the exit code). Commands are found
by listing that package, so adding a command is adding a file.

Errors a user can cause -- bad values (ValueError, TypeError) and anything the
operating system refuses (every OSError: a missing file, an output that is a
file or lies under one, a read-only or full filesystem, ...) -- print one line
naming the path and the reason and exit with status 1. ``--debug`` (or the
environment variable ``TASKLLE_DEBUG=1``) prints the full traceback instead,
for bug reports. SIGTERM is handled like Ctrl-C (SIGINT): the command stops
the way it stops on KeyboardInterrupt, and the exit status is 130.
"""
import argparse
import importlib
import os
import pkgutil
import signal
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
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error (also: environment TASKLLE_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def _oserror_line(e):
    """One line for an OSError: the path(s) and the reason, without errno noise."""
    reason = e.strerror or str(e)
    if e.filename is not None:
        where = os.fsdecode(e.filename)
        if e.filename2 is not None:
            where += f" -> {os.fsdecode(e.filename2)}"
        return f"{where}: {reason}"
    return str(e) or type(e).__name__


def _interrupted_hint(args):
    """Suggest only what exists: --resume where the command has it, a plain rerun where it resumes by itself."""
    if hasattr(args, "resume"):
        return "; finished checkpoints are kept: run the same command with --resume to go on"
    if args.command in ("darken", "demo"):
        return "; finished work is kept: run the same command again to go on from there"
    return ""


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.threads is not None and not 0 <= args.threads <= 4096:
        parser.error(f"--threads must be between 0 (all processors) and 4096, got {args.threads}")
    debug = args.debug or os.environ.get("TASKLLE_DEBUG", "") not in ("", "0")
    previous = None
    try:
        # a kill(1) stops the command like Ctrl-C does (temporary files removed,
        # workers stopped, progress saved), not midway through a write
        previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    except ValueError:  # not the main thread (main() called from a thread): leave SIGTERM alone
        pass
    try:
        if args.threads is not None:
            from . import set_num_threads

            set_num_threads(args.threads)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"\ninterrupted{_interrupted_hint(args)}", file=sys.stderr)
        return 130
    except OSError as e:
        if debug:
            raise
        print(f"tasklle {args.command}: error: {_oserror_line(e)}", file=sys.stderr)
        return 1
    except (ValueError, TypeError) as e:
        if debug:
            raise
        print(f"tasklle {args.command}: error: {e}", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
