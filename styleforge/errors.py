"""User-facing error types shared by every command (a leaf module: it imports nothing of ours).

Every area's errors (``ImageError``, ``BundleError``, ``ConfigError``, ``ExportError``, ...)
derive from :class:`StyleforgeError`; ``styleforge.cli.main`` is the one place that turns any of
them into one line (``styleforge CMD: error: ...``) and exit status 2. Commands may still raise
:class:`CLIError` for failures that belong to the command line itself (a bad flag combination).
"""

from __future__ import annotations


class StyleforgeError(Exception):
    """The base of every error styleforge raises on purpose: a message for a person."""


class CLIError(StyleforgeError):
    """A user-facing error of the command line: printed as one line, exit status 2."""
