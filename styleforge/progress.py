"""Progress bars that work with or without tqdm.

The runtime must run with numpy + Pillow only, so tqdm is optional: without it a plain
line-per-update counter is printed to stderr instead.
"""

from __future__ import annotations

import sys
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "", disable: bool = False) -> Iterator[T]:
    """Wrap ``iterable`` in a progress bar (tqdm when installed, else a simple counter)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        yield from tqdm(iterable, total=total, desc=desc, disable=disable, dynamic_ncols=True)
        return
    if total is None:
        total = len(iterable) if hasattr(iterable, "__len__") else None  # type: ignore[arg-type]
    for i, item in enumerate(iterable, 1):
        if not disable:
            suffix = f"/{total}" if total else ""
            print(f"\r{desc} {i}{suffix}", end="", file=sys.stderr, flush=True)
        yield item
    if not disable:
        print(file=sys.stderr)
