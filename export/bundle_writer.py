"""The one bundle writer: what every bundle (model or LUT) is written with, in one place.

:func:`writing_bundle` is the skeleton: it refuses an existing target unless ``force``, builds
the bundle in a temporary sibling folder (``.NAME.tmp-XXXXXXXX``) and renames it into place only
when everything in it passed its gate, so a bundle is never half written; on any failure or
interrupt the temporary folder is removed. Inside it the artifact builders (``bundle._build`` for
models, ``lut_export.write_lut_artifacts`` and ``lut_graph.write_lut_graphs`` for LUTs) write
their files; :func:`with_file_facts` records each file's size and sha256 as the runtime checks
them, :func:`write_references` the input/output pairs, :func:`export_versions` the provenance.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import uuid
from importlib import metadata
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from styleforge.atomic import replace_dir
from styleforge.runtime.bundle_files import file_facts
from styleforge.runtime.contract import Artifact

N_REFERENCES = 3  # input/output pairs every bundle carries for on-device checks
VERSIONED = ("torch", "onnx", "onnxsim", "onnxruntime", "onnx2tf", "tensorflow-cpu", "tensorflow",
             "ai-edge-litert", "coremltools")


@contextlib.contextmanager
def writing_bundle(out_dir: str | os.PathLike, force: bool, error: type[Exception]) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``out_dir``; on a normal exit it replaces ``out_dir``
    atomically, on any exception (or Ctrl-C) it is removed and ``out_dir`` is untouched.
    ``error`` (the caller's error class) is raised when ``out_dir`` exists and ``force`` is off."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise error(f"{out_dir} already exists; pass --force to replace it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
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
