"""The photo album that ships with styleforge: 23 real photos, their scene groups and people.

The photos are KPhotoAlbum's demo album (© 2003-2007 Jesper K. Pedersen, CC-BY-SA-4.0; see
``data/album/ATTRIBUTION.md``), vendored upright under ``data/album/`` and installed as package
data of ``styleforge.photo.data``. ``album.json`` beside them is the project's own description of each
photo: its scene group (photos of one scene never straddle a data split), whether it shows
people (humans; pets are not people), its pixel size and sha256.

Torch-free and cheap to import (standard library only): the runtime, the export gate and the
benchmarks find photos here without training dependencies, and nothing is ever downloaded.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from styleforge.errors import StyleforgeError

ALBUM_FORMAT = "styleforge-album/1"
CREDIT = "KPhotoAlbum demo album © 2003-2007 Jesper K. Pedersen, CC-BY-SA-4.0"


class AlbumError(StyleforgeError, RuntimeError):
    """The album folder is missing or does not match its manifest (a broken install)."""


@dataclass(frozen=True)
class AlbumPhoto:
    """One vendored photo. ``size`` is (width, height) of the stored, upright pixels."""

    path: Path
    group: str  # scene group: a shared album label or the same place on the same day
    people: bool  # shows at least one human (pets do not count)
    size: tuple[int, int]
    rotated_cw: int  # degrees we rotated the upstream file (losslessly) to store it upright
    sha256: str
    shows: str  # a few words on what the photo shows

    @property
    def name(self) -> str:
        return self.path.name


def album_dir() -> Path:
    """The folder holding the photos and ``album.json``.

    Installed package data (``styleforge/photo/data/album``) first, then the source checkout's
    ``data/album`` (an editable install made before ``styleforge.photo.data`` existed maps only the
    older packages).
    """
    candidates = []
    spec = importlib.util.find_spec("styleforge.photo.data")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "album" for p in spec.submodule_search_locations]
    candidates.append(Path(__file__).resolve().parents[2] / "data" / "album")
    for folder in candidates:
        if (folder / "album.json").is_file():
            return folder
    raise AlbumError(f"styleforge's photo album is missing (looked in {', '.join(map(str, candidates))})")


@functools.lru_cache(maxsize=1)
def _manifest() -> tuple[Path, dict]:
    folder = album_dir()
    manifest = json.loads((folder / "album.json").read_text(encoding="utf-8"))
    if manifest.get("format") != ALBUM_FORMAT:
        raise AlbumError(f"{folder / 'album.json'}: format {manifest.get('format')!r}, expected {ALBUM_FORMAT!r}")
    return folder, manifest


def manifest() -> dict:
    """``album.json`` as a dict (a copy: callers may change it)."""
    return json.loads(json.dumps(_manifest()[1]))


def album_photos() -> list[AlbumPhoto]:
    """Every photo of the album, sorted by file name (deterministic). Checks existence, not bytes."""
    folder, meta = _manifest()
    photos = []
    for entry in meta["photos"]:
        path = folder / entry["file"]
        if not path.is_file():
            raise AlbumError(f"album photo {path} is missing")
        photos.append(
            AlbumPhoto(
                path=path,
                group=entry["group"],
                people=bool(entry["people"]),
                size=(int(entry["size"][0]), int(entry["size"][1])),
                rotated_cw=int(entry.get("rotated_cw", 0)),
                sha256=entry["sha256"],
                shows=entry.get("shows", ""),
            )
        )
    return sorted(photos, key=lambda p: p.name)


def album_paths() -> list[Path]:
    """Paths of :func:`album_photos`, sorted by file name."""
    return [p.path for p in album_photos()]


def people_photos() -> list[Path]:
    """Album photos that show people, sorted by file name (portrait-like demo inputs)."""
    return [p.path for p in album_photos() if p.people]


def group_of(path: Path) -> str:
    """Scene group of an album photo, by file name; raises ``KeyError`` for other files."""
    name = Path(path).name
    for photo in album_photos():
        if photo.name == name:
            return photo.group
    raise KeyError(f"{name} is not an album photo")


def verify_album() -> list[str]:
    """Problems with the vendored files (missing, or sha256 differs from ``album.json``); [] if none."""
    problems = []
    folder, meta = _manifest()
    for entry in meta["photos"]:
        path = folder / entry["file"]
        if not path.is_file():
            problems.append(f"{entry['file']}: missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            problems.append(f"{entry['file']}: sha256 differs from album.json")
    return problems
