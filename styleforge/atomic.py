"""All-or-nothing writes: build a file or folder under a temporary name beside the target, then rename it in."""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def replace_dir(src: Path, dst: Path) -> None:
    """Rename folder ``src`` to ``dst`` (same filesystem).

    An existing ``dst`` is renamed aside first and deleted only once ``src`` is in place; if the
    swap fails, the old ``dst`` is put back. A reader never sees a half-written ``dst``.
    """
    src, dst = Path(src), Path(dst)
    if not dst.exists():
        os.replace(src, dst)
        return
    trash = dst.parent / f".{dst.name}.old-{uuid.uuid4().hex[:8]}"
    os.replace(dst, trash)
    try:
        os.replace(src, dst)
    except BaseException:
        os.replace(trash, dst)  # put the previous folder back
        raise
    shutil.rmtree(trash, ignore_errors=True)


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write; on success it is renamed over ``path``.

    On an exception (or Ctrl-C) the temporary file is removed and ``path`` is left as it was, so
    a reader sees the old file or the new one, never half of one. The temporary name is hidden
    (``.stem.XXXX.tmp.suffix``) and keeps the suffix, so writers that pick a format from it still can.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fresh unique name the writer creates itself, so the file gets the usual permissions
    # (mkstemp would make every output owner-only).
    tmp = path.parent / f".{path.stem}.{uuid.uuid4().hex[:12]}.tmp{path.suffix}"
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    """:func:`write_bytes` of ``text`` in UTF-8."""
    return write_bytes(path, text.encode("utf-8"))
