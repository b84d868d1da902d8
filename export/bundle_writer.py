"""The one bundle writer: what every bundle (model or LUT) is written with, in one place.

:func:`writing_bundle` is the skeleton: it refuses an existing target unless ``force``, builds
the bundle in a temporary sibling folder (``.NAME.tmp-XXXXXXXX``) and renames it into place only
when everything in it passed its gate, so a bundle is never half written; on any failure or
interrupt the temporary folder is removed. A writer killed outright (``kill -9``, power loss)
cannot clean up: its folder holds ``.owner.json`` (pid, process start time, host), and the next
export of that bundle removes every ``.NAME.tmp-*`` whose owner is no longer running, saying so
on one line (:func:`remove_stale_temporaries`). Inside it the artifact builders (one per format
in ``bundle``, ``lut_export.write_lut_artifacts`` and ``lut_graph.write_lut_graphs`` for LUTs)
write their files; :func:`with_file_facts` records each file's size and sha256 as the runtime
checks them, :func:`write_references` the input/output pairs, and :func:`build_manifest`, the one
manifest builder of model and LUT bundles alike, assembles and saves ``manifest.json``
(:func:`add_artifacts` when a LUT joins a model's bundle).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import os
import shutil
import socket
import sys
import time
import uuid
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

import numpy as np
from PIL import Image

from styleforge.atomic import replace_dir
from styleforge.runtime.bundle_files import file_facts
from styleforge.runtime.contract import Artifact, Manifest

N_REFERENCES = 3  # input/output pairs every bundle carries for on-device checks
VERSIONED = ("torch", "onnx", "onnxsim", "onnxruntime", "onnx2tf", "tensorflow-cpu", "tensorflow",
             "ai-edge-litert", "coremltools")
OWNER_FILE = ".owner.json"
UNOWNED_STALE_S = 24 * 3600  # a temporary folder with no owner file (older styleforge) this old is stale


def process_start_time(pid: int) -> Optional[int]:
    """When process ``pid`` started, in clock ticks since boot (``/proc/PID/stat`` field 22); None
    when it is not running or there is no ``/proc`` (pid reuse is then not detected)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])  # fields after "(comm)" start at field 3
    except (IndexError, ValueError):
        return None


def _running(pid: int, started: Optional[int]) -> bool:
    """Is the process that wrote an owner file still running (the same process, not a reused pid)?"""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's live process
    now = process_start_time(pid)
    if now is None:
        return not Path("/proc/self/stat").exists()  # no /proc: trust the pid alone
    return started is None or now == started


def _write_owner(tmp: Path) -> None:
    pid = os.getpid()
    record = {"pid": pid, "start_time": process_start_time(pid), "host": socket.gethostname()}
    (tmp / OWNER_FILE).write_text(json.dumps(record))


def remove_stale_temporaries(out_dir: str | os.PathLike) -> list[Path]:
    """Remove ``.NAME.tmp-*`` folders beside ``out_dir`` whose writer is gone (killed before it
    could clean up); print one line for each. Folders of live writers, of other hosts and
    unreadable ones are left alone. Returns the removed folders."""
    out_dir = Path(out_dir)
    removed = []
    if not out_dir.parent.is_dir():
        return removed
    for tmp in sorted(out_dir.parent.glob(f".{out_dir.name}.tmp-*")):
        if not tmp.is_dir() or tmp.is_symlink():
            continue
        try:
            record = json.loads((tmp / OWNER_FILE).read_text())
            pid, started, host = int(record["pid"]), record.get("start_time"), record.get("host")
        except FileNotFoundError:
            try:
                age = time.time() - tmp.stat().st_mtime
            except OSError:
                continue
            if age < UNOWNED_STALE_S:
                continue  # just created by a writer about to write its owner file, or unknown
            pid, started, host = 0, None, socket.gethostname()
        except (OSError, ValueError, TypeError, KeyError):
            continue
        if host != socket.gethostname() or _running(pid, started):
            continue
        shutil.rmtree(tmp, ignore_errors=True)
        if not tmp.exists():
            removed.append(tmp)
            who = f"pid {pid}" if pid else "an older styleforge (no owner recorded)"
            print(f"removed stale temporary folder {tmp} left by {who}", file=sys.stderr, flush=True)
    return removed


@contextlib.contextmanager
def writing_bundle(out_dir: str | os.PathLike, force: bool, error: type[Exception]) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``out_dir`` (stale ones of killed writers removed
    first; this one marked with its owner); on a normal exit it replaces ``out_dir`` atomically, on any exception (or Ctrl-C) it is removed and ``out_dir`` is untouched.
    ``error`` (the caller's error class) is raised when ``out_dir`` exists and ``force`` is off."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise error(f"{out_dir} already exists; pass --force to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        _write_owner(tmp)
        yield tmp
        (tmp / OWNER_FILE).unlink(missing_ok=True)
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def with_file_facts(bundle: Path, art: Artifact) -> Artifact:
    """``art`` with its file's size_bytes and sha256 filled in (for a .mlpackage folder: over its
    files, in sorted order), as the runtime checks them
    (:func:`styleforge.runtime.bundle_files.file_facts`)."""
    size, sha256 = file_facts(bundle / art.file)
    return dataclasses.replace(art, size_bytes=size, sha256=sha256)


def write_references(bundle: Path, inputs_u8: np.ndarray, outputs_u8: np.ndarray) -> list[dict[str, str]]:
    """Save up to :data:`N_REFERENCES` uint8 ``[H, W, 3]`` input/output pairs under
    ``bundle/reference/``; returns the manifest's ``references`` entries."""
    ref_dir = bundle / "reference"
    ref_dir.mkdir(exist_ok=True)
    refs = []
    for i in range(min(N_REFERENCES, len(inputs_u8))):
        Image.fromarray(inputs_u8[i]).save(ref_dir / f"input_{i:03d}.png")
        Image.fromarray(outputs_u8[i]).save(ref_dir / f"output_{i:03d}.png")
        refs.append({"input": f"reference/input_{i:03d}.png", "output": f"reference/output_{i:03d}.png"})
    return refs


def package_version(dist: str) -> str:
    """The installed version of distribution ``dist``, or "" when it is not installed."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return ""


def export_versions() -> dict[str, str]:
    """The versions of the converters and interpreters installed at export time (provenance)."""
    return {n: v for n in VERSIONED if (v := package_version(n))}


def build_manifest(
    bundle: Path,
    *,
    name: str,
    style: str,
    artifacts: Mapping[str, Artifact],
    references: list[dict[str, str]],
    model: dict[str, Any],
    heldout_images: Sequence[Path],
    provenance: Optional[dict[str, Any]] = None,
    export_facts: Optional[dict[str, Any]] = None,
) -> Manifest:
    """The manifest of the bundle written in ``bundle`` (a model's or a LUT's), saved there as
    ``manifest.json`` and returned.

    Every artifact gets its file's size and sha256 (:func:`with_file_facts`); the provenance is
    the caller's (the training run) plus ``export``: ``export_facts`` (e.g. size, stage times),
    the converter versions and the names of the held-out photos the gates compared on.
    """
    export = {**(export_facts or {}), "versions": export_versions(),
              "heldout_images": [Path(p).name for p in heldout_images]}
    manifest = Manifest(
        name=name,
        style=style,
        artifacts={k: with_file_facts(bundle, a) for k, a in artifacts.items()},
        references=references,
        provenance={**(provenance or {}), "export": export},
        model=model,
        created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        styleforge_version=package_version("styleforge"),
    )
    manifest.save(bundle)
    return manifest


def add_artifacts(bundle: Path, manifest: Manifest, artifacts: Mapping[str, Artifact]) -> Manifest:
    """``manifest`` with ``artifacts`` (files already in ``bundle``) added after its own, with
    their file facts; saved to ``bundle`` and returned."""
    added = {k: with_file_facts(bundle, a) for k, a in artifacts.items()}
    manifest = dataclasses.replace(manifest, artifacts={**manifest.artifacts, **added})
    manifest.save(bundle)
    return manifest
