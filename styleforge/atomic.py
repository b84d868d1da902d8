"""All-or-nothing folder writes: build in a temporary folder beside the target, then swap it in."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


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


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename."""
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
