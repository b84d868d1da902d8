"""The ``styleforge`` command line.

Each area of the project contributes its subcommands through a light module that only builds
argparse parsers; the heavy libraries (torch, tensorflow, onnx, ...) are imported inside the
function that runs a subcommand, so ``styleforge --help`` works with only numpy and Pillow.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import traceback

from styleforge import __version__
from styleforge.errors import CLIError, StyleforgeError

__all__ = ["CLIError", "build_parser", "main"]  # CLIError lives in styleforge.errors; kept here

# The modules with a ``register(subparsers)`` function, in the order their commands are listed,
# and the commands each registers: a command line naming one command builds (imports) only its
# module, so ``styleforge stylize`` never imports the training config it does not use.
COMMAND_MODULES = {
    "styleforge.train.cli_data": ("looks", "make-dataset"),
    "styleforge.train.cli_models": ("info",),
    "styleforge.train.cli_train": ("train",),
    "styleforge.train.cli_distill": ("distill",),
    "styleforge.export.cli": ("export",),
    "styleforge.runtime.cli": ("stylize",),
    "styleforge.runtime.cli_preview": ("preview",),
    "styleforge.benchmarks.cli": ("bench",),
    "styleforge.benchmarks.cli_eval": ("eval-looks",),
}
DEBUG_ENV = "STYLEFORGE_DEBUG"  # =1: a failure shows its traceback, as --debug does


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``styleforge`` parser: every command, or only ``command``'s when it is one of ours."""
    parser = argparse.ArgumentParser(
        prog="styleforge",
        description="Learn a photo style with a GAN, distill it, export it, run and benchmark it.",
    )
    parser.add_argument("--version", action="version", version=f"styleforge {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help=f"show the Python traceback of a failure (or set {DEBUG_ENV}=1)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = [m for m, commands in COMMAND_MODULES.items() if command in commands] or COMMAND_MODULES
    for module_name in modules:
        importlib.import_module(module_name).register(subparsers)
    return parser


def _command_of(argv: list[str]) -> str | None:
    """The subcommand a command line names (the first word that is not a global option)."""
    words = [a for a in argv if a != "--debug"]
    return words[0] if words and not words[0].startswith("-") else None


def _interrupt_on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt  # so `kill` runs the same cleanup as Ctrl-C (no half-written outputs)


def main(argv: list[str] | None = None) -> int:
    try:
        signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    except ValueError:  # not the main thread (e.g. called from a worker thread): leave it alone
        pass
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command_of(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print(f"styleforge {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # every failure ends in one line; --debug shows where it came from
        if debug:
            traceback.print_exc()
        print(f"styleforge {args.command}: error: {_one_line(err)}", file=sys.stderr)
        if not isinstance(err, StyleforgeError) and not debug:
            print(f"styleforge {args.command}: this is a bug or an unexpected state; rerun with "
                  f"--debug (or {DEBUG_ENV}=1) for the traceback", file=sys.stderr)
        return 2
    return int(result or 0)


def _one_line(err: BaseException) -> str:
    """``err`` as one line: its message (or its type when it has none), newlines folded."""
    text = " ".join(str(err).split())
    if not isinstance(err, StyleforgeError):
        text = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return text or type(err).__name__
