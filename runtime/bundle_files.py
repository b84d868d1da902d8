"""A bundle's files as untrusted input: confined to the bundle, sized, hashed, then handed on.

The order matters, and every reader of a bundle goes through it:

1. **Confined.** An artifact's ``file`` (already a relative, normalised path: see
   :mod:`styleforge.runtime.manifest`) must resolve, symlinks followed, to a path inside the
   bundle folder; a directory artifact (Core ML ``.mlpackage``) may hold no symlink at all.
2. **Sized.** The file's size (a package: its files' total) must be the manifest's
   ``size_bytes``: a huge or truncated file is refused from ``stat`` alone, before it is read.
3. **Hashed.** The bytes read are hashed and must match the manifest's ``sha256`` (``verify=False``
   skips only this step, for development).
4. **Sniffed.** The verified bytes must look like the artifact's format (a TFLite flatbuffer's
   ``TFL3`` identifier, ONNX's protobuf, a zip for TorchScript and ``.npz``, a PNG of the declared
   size for a HALD, text for a ``.cube``), so a file of another kind under a model's name is
   refused here rather than by an interpreter.

:func:`read_artifact` returns the verified bytes themselves (:func:`artifact_bytes`: the same, by
manifest key): the interpreter gets those bytes, not the path again, so what was checked is what runs. Only a Core ML package (a folder coremltools
must open by path) is verified file by file and then opened by path.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from pathlib import Path
from typing import Optional

from styleforge.runtime.contract import Artifact, BundleError, Manifest

DIRECTORY_FORMATS = ("coreml",)  # artifacts that are folders (.mlpackage)
_PNG = b"\x89PNG\r\n\x1a\n"
_ZIP = b"PK\x03\x04"
_CHUNK = 1 << 20


def _fail(bundle: Path, art: Artifact, problem: str) -> BundleError:
    return BundleError(f"{bundle}: artifact {art.key!r}: file {art.file}: {problem}")


def resolve_inside(bundle: str | os.PathLike, relative: str) -> tuple[Optional[Path], str]:
    """``(path, "")`` for ``relative`` resolved inside ``bundle`` (symlinks followed), else
    ``(None, why)``: missing, a link loop, or resolving outside the bundle folder."""
    root = Path(bundle).resolve()
    candidate = root / relative
    try:
        resolved = candidate.resolve(strict=True)
    except FileNotFoundError:
        if candidate.is_symlink():
            return None, f"is a link to {os.readlink(candidate)}, which does not exist"
        return None, "is missing"
    except (OSError, RuntimeError) as err:  # a symlink loop, a permission problem
        return None, f"cannot be resolved ({getattr(err, 'strerror', None) or err})"
    if not resolved.is_relative_to(root):
        return None, f"resolves to {resolved}, outside the bundle; refused"
    return resolved, ""


def artifact_path(bundle: str | os.PathLike, art: Artifact) -> Path:
    """The artifact's resolved path inside the bundle, of the right kind (file or folder)."""
    bundle = Path(bundle)
    path, why = resolve_inside(bundle, art.file)
    if path is None:
        raise _fail(bundle, art, why)
    mode = path.stat().st_mode
    if art.format in DIRECTORY_FORMATS:
        if not stat.S_ISDIR(mode):
            raise _fail(bundle, art, f"a {art.format} artifact is a package folder, this is not a folder")
    elif not stat.S_ISREG(mode):
        raise _fail(bundle, art, "is not a regular file")
    return path


def package_files(bundle: Path, art: Artifact, package: Path) -> list[Path]:
    """A package folder's regular files in hashing order; refuses links and special files."""
    files = []
    for dirpath, dirnames, filenames in os.walk(package, followlinks=False):
        for name in dirnames + filenames:
            entry = Path(dirpath) / name
            mode = entry.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise _fail(bundle, art, f"holds a link {entry.relative_to(package)}; packages may not")
            if name in filenames:
                if not stat.S_ISREG(mode):
                    raise _fail(bundle, art, f"holds {entry.relative_to(package)}, not a regular file")
                files.append(entry)
    return sorted(files)


def _size(bundle: Path, art: Artifact, path: Path) -> int:
    if art.format in DIRECTORY_FORMATS:
        return sum(f.stat().st_size for f in package_files(bundle, art, path))
    return path.stat().st_size


def check_sizes(bundle: Path, art: Artifact, path: Path) -> None:
    size = _size(bundle, art, path)
    if size != art.size_bytes:
        raise _fail(bundle, art, f"is {size} bytes, the manifest says {art.size_bytes} (truncated, grown or "
                                 "replaced); refused before reading")


def check_files(bundle: str | os.PathLike, manifest: Manifest) -> None:
    """Every artifact's file confined, of the right kind and size, and every reference image
    confined (one may be missing: only bench reads them): ``stat`` only, nothing is opened.
    Run on every load, for every artifact."""
    bundle = Path(bundle)
    for art in manifest.artifacts.values():
        check_sizes(bundle, art, artifact_path(bundle, art))
    for i, ref in enumerate(manifest.references):
        for side in ("input", "output"):
            path, why = resolve_inside(bundle, ref[side])
            if why == "is missing":
                continue
            if path is None or not path.is_file():
                raise BundleError(f"{bundle}: manifest: references[{i}].{side}: {ref[side]} "
                                  f"{why or 'is not a regular file'}")


def _read_exact(path: Path, size: int) -> bytes:
    """Read a regular file that should be ``size`` bytes; at most ``size + 1`` bytes are read."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size != size:
            raise OSError(f"changed while opened ({info.st_size} bytes)")
        chunks, left = [], size + 1
        while left > 0:
            chunk = os.read(fd, min(_CHUNK, left))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) != size:
        raise OSError(f"read {len(data)} bytes, expected {size}")
    return data


def digest_tree(package: Path, files: list[Path]) -> str:
    """sha256 of a package folder as export writes it: each file's relative path, then its bytes."""
    digest = hashlib.sha256()
    for f in files:
        digest.update(str(f.relative_to(package)).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                digest.update(chunk)
    return digest.hexdigest()


def file_facts(path: str | os.PathLike) -> tuple[int, str]:
    """``(size_bytes, sha256)`` of an artifact file or package folder, as the manifest records them."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        return sum(f.stat().st_size for f in files), digest_tree(path, files)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return path.stat().st_size, digest.hexdigest()


def sniff(bundle: Path, art: Artifact, data: bytes) -> None:
    """Refuse verified bytes that are not the artifact's format (see the module doc)."""
    fmt = art.format
    if fmt == "tflite" and data[4:8] != b"TFL3":
        raise _fail(bundle, art, "is not a TFLite flatbuffer (no TFL3 identifier)")
    if fmt in ("torchscript", "adaptive-lut") and data[:4] != _ZIP:
        raise _fail(bundle, art, f"is not a {'TorchScript archive' if fmt == 'torchscript' else '.npz'} (not a zip)")
    if fmt == "onnx" and (data[:1] != b"\x08" or data[:4] == _ZIP or data[4:8] == b"TFL3"):
        raise _fail(bundle, art, "is not an ONNX model (no ModelProto ir_version first)")
    if fmt == "cube" and (b"\x00" in data or b"LUT_3D_SIZE" not in data):
        raise _fail(bundle, art, "is not a .cube text file (no LUT_3D_SIZE, or binary bytes)")
    if fmt == "hald":
        if data[:8] != _PNG or data[12:16] != b"IHDR":
            raise _fail(bundle, art, "is not a PNG image")
        width, height = struct.unpack(">II", data[16:24])
        level = int(art.extra.get("hald_level", 0))
        if (width, height) != (level**3, level**3):
            raise _fail(bundle, art, f"is a {width}x{height} image; a level-{level} HALD is {level**3}x{level**3}")


def read_artifact(bundle: str | os.PathLike, art: Artifact, verify: bool = True) -> bytes:
    """The artifact file's bytes: confined, sized, hashed (unless ``verify=False``) and sniffed.

    Nothing of the file reaches a parser before these checks; raises :class:`BundleError`."""
    bundle = Path(bundle)
    if art.format in DIRECTORY_FORMATS:
        raise _fail(bundle, art, "is a package folder; use verified_package()")
    path = artifact_path(bundle, art)
    check_sizes(bundle, art, path)
    try:
        data = _read_exact(path, art.size_bytes)
    except OSError as err:
        raise _fail(bundle, art, f"cannot be read ({getattr(err, 'strerror', None) or err})") from None
    if verify:
        actual = hashlib.sha256(data).hexdigest()
        if actual != art.sha256:
            raise _fail(bundle, art, f"sha256 {actual[:12]}... does not match the manifest's {art.sha256[:12]}... "
                                     "(corrupt or replaced file)")
    sniff(bundle, art, data)
    return data


def artifact_bytes(bundle: str | os.PathLike, manifest: Manifest, key: str,
                   verify: bool = True) -> tuple[Artifact, bytes]:
    """``(artifact, verified bytes)`` of the manifest's artifact ``key``: BundleError when it is
    not listed, else the checks of :func:`read_artifact`."""
    if key not in manifest.artifacts:
        raise BundleError(f"bundle has no {key!r} artifact; it has {', '.join(manifest.artifacts) or 'none'}")
    artifact = manifest.artifacts[key]
    return artifact, read_artifact(bundle, artifact, verify)


def verified_package(bundle: str | os.PathLike, art: Artifact, verify: bool = True) -> Path:
    """A package folder artifact (Core ML): confined, no links, sized and hashed; returns its path."""
    bundle = Path(bundle)
    path = artifact_path(bundle, art)
    check_sizes(bundle, art, path)
    if verify:
        actual = digest_tree(path, package_files(bundle, art, path))
        if actual != art.sha256:
            raise _fail(bundle, art, f"sha256 {actual[:12]}... does not match the manifest's {art.sha256[:12]}... "
                                     "(corrupt or replaced package)")
    return path


def open_artifact(bundle: str | os.PathLike, art: Artifact, verify: bool = True) -> tuple[Path, Optional[bytes]]:
    """``(path, verified bytes)`` to load ``art`` from; bytes are ``None`` for a package folder."""
    if art.format in DIRECTORY_FORMATS:
        return verified_package(bundle, art, verify), None
    return artifact_path(bundle, art), read_artifact(bundle, art, verify)
