"""The ``styleforge`` command line.

Each area of the project contributes its subcommands through a light module that only builds
argparse parsers; the heavy libraries (torch, tensorflow, onnx, ...) are imported inside the
function that runs a subcommand, so ``styleforge --help`` works with only numpy and Pillow.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from styleforge import __version__
from styleforge.errors import CLIError

__all__ = ["CLIError", "build_parser", "main"]  # CLIError lives in styleforge.errors; kept here

# Modules with a ``register(subparsers)`` function, in the order their commands are listed.
COMMAND_MODULES = (
    "styleforge.train.cli_data",
    "styleforge.train.cli_models",
    "styleforge.train.cli_train",
    "styleforge.train.cli_distill",
    "styleforge.export.cli",
    "styleforge.runtime.cli",
    "styleforge.benchmarks.cli",
    "styleforge.benchmarks.cli_eval",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="styleforge",
        description="Learn a photo style with a GAN, distill it, export it, run and benchmark it.",
    )
    parser.add_argument("--version", action="version", version=f"styleforge {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def _interrupt_on_sigterm(signum, frame) -> None:
    raise KeyboardInterrupt  # so `kill` runs the same cleanup as Ctrl-C (no half-written outputs)


def main(argv: list[str] | None = None) -> int:
    try:
        signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    except ValueError:  # not the main thread (e.g. called from a worker thread): leave it alone
        pass
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        result = args.func(args)
    except CLIError as err:
        print(f"styleforge {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"styleforge {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)
