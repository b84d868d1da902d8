"""The config flags every command spells alike: ``--preset``, ``--config``, ``--set``, ``--dry-run``
(argparse only: this runs when ``styleforge --help`` builds the parser)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from styleforge.train.config.schema import PRESET_NAMES


def add_config_arguments(parser, example: str, section: Optional[str] = None,
                         preset_help: str = "starting config (default: cpu)") -> None:
    """``--preset``, ``--config``, ``--set`` and ``--dry-run``, spelled alike in every command
    (argparse only: this runs when ``styleforge --help`` builds the parser)."""
    where = f" (its keys at the top level or under '{section}:')" if section else ""
    parser.add_argument("--preset", choices=PRESET_NAMES, default="cpu", help=preset_help)
    parser.add_argument("--config", type=Path, metavar="FILE.yaml", help=f"YAML file overriding the preset{where}")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"override one config value, e.g. --set {example} (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config (YAML) and exit")
