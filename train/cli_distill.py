"""Subcommands of this area (argparse only; heavy imports happen inside the run functions)."""


def register(subparsers) -> None:
    """Add this area's subcommands to the ``styleforge`` parser."""
