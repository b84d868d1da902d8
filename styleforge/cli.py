"""The ``styleforge`` command line.

Each area of the project contributes its subcommands through a light module that only builds
argparse parsers; the heavy libraries (torch, tensorflow, onnx, ...) are imported inside the
function that runs a subcommand, so ``styleforge --help`` works with only numpy and Pillow.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from styleforge import __version__

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


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


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


def main(argv: list[str] | None = None) -> int:
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
