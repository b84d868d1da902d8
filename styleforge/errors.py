"""User-facing error types shared by every command (a leaf module: it imports nothing of ours).

Commands in ``train/``, ``export/``, ``runtime/`` and ``benchmarks/`` raise :class:`CLIError`
from here; ``styleforge.cli.main`` prints it as one line and exits with status 2.
"""

from __future__ import annotations


class CLIError(Exception):
    """A user-facing error: printed as one line, exit status 2."""
