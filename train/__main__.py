"""``python -m styleforge.train ARGS`` = ``styleforge train ARGS``, the torchrun entry point::

    torchrun --nproc_per_node=2 -m styleforge.train --content C --style S --out RUN --preset tiny
"""

from __future__ import annotations

import argparse
import sys

from styleforge.errors import CLIError
from styleforge.train.cli_train import add_arguments, run_train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m styleforge.train",
                                     description="styleforge train (torchrun entry point)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_train(args)
    except CLIError as err:
        print(f"styleforge train: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
