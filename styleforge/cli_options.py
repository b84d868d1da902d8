"""Options every command spells the same way: ``--size HxW or N``, ``--json PATH``, ``--seed``, ``--out``.

Parsers for option values, shared by the command modules of every area, raising
:class:`~styleforge.errors.CLIError` with one wording. A leaf module: it imports only
``styleforge.errors``.
"""

from __future__ import annotations

from styleforge.errors import CLIError

SIZE_HELP = "HxW in pixels, or N for NxN"


def parse_size(text: str, option: str = "--size") -> tuple[int, int]:
    """``"512"`` -> (512, 512); ``"512x768"`` -> (512, 768), as (H, W). ``*`` works for ``x``."""
    try:
        dims = [int(v) for v in str(text).lower().replace("*", "x").split("x")]
    except ValueError:
        raise CLIError(f"{option} must be {SIZE_HELP}, got {text!r}") from None
    if len(dims) == 1:
        dims *= 2
    if len(dims) != 2 or min(dims) < 1:
        raise CLIError(f"{option} must be {SIZE_HELP}, got {text!r}")
    return dims[0], dims[1]


def parse_sizes(text: str | None, option: str = "--size") -> list[tuple[int, int]]:
    """A comma list of sizes (``"256,512x768"``) for commands that sweep; empty for ``None``."""
    return [parse_size(item, option) for item in (text or "").split(",") if item.strip()]
