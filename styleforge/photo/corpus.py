"""The learning-curve corpus that ships with styleforge: real photos of distinct scenes.

Where the album (:mod:`styleforge.photo.album`) is 23 photos of 11 scenes, the corpus holds well over
a hundred photos of distinct scenes (animals, fish under water, monuments, landscapes, plants,
objects) from Debian packages (GCompris, Lomiri and MATE wallpapers) and scikit-image, each with
its own licence and credit (``data/corpus/ATTRIBUTION.md``). It exists to measure how a look
learner scales with photos per side (``styleforge eval-looks --photos``); photos are downscaled
to a long side of 320 px. ``corpus.json`` describes each photo: scene group (its own unless it
shares one), whether it shows people, pixel size, sha256, credit, licence and source.
``make corpus`` (:mod:`styleforge.photo.corpus_build`) regenerates the folder; nothing here downloads.

Torch-free: the standard library and :mod:`styleforge.photo.scenes` (numpy).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from styleforge.errors import StyleforgeError
from styleforge.photo.scenes import Grouping, SceneGroup

CORPUS_FORMAT = "styleforge-corpus/1"
MANIFEST = "corpus.json"


class CorpusError(StyleforgeError, RuntimeError):
    """The corpus folder is missing or does not match its manifest (a broken install)."""


@dataclass(frozen=True)
class CorpusPhoto:
    """One vendored photo. ``size`` is (width, height) of the stored pixels."""

    path: Path
    group: str
    people: bool
    size: tuple[int, int]
    sha256: str
    credit: str
    license: str
    source: str

    @property
    def name(self) -> str:
        return self.path.name


def corpus_dir() -> Path:
    """The folder holding the corpus photos and ``corpus.json`` (package data, then checkout)."""
    candidates = []
    spec = importlib.util.find_spec("styleforge.photo.data")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) / "corpus" for p in spec.submodule_search_locations]
    candidates.append(Path(__file__).resolve().parents[2] / "data" / "corpus")
    for folder in candidates:
        if (folder / MANIFEST).is_file():
            return folder
    raise CorpusError(f"styleforge's photo corpus is missing (looked in {', '.join(map(str, candidates))})")


def is_corpus_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a corpus manifest (``corpus.json`` of :data:`CORPUS_FORMAT`)."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("format") == CORPUS_FORMAT
    except ValueError:
        return False


@functools.lru_cache(maxsize=4)
def _manifest(folder: Path) -> dict:
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("format") != CORPUS_FORMAT:
        raise CorpusError(f"{folder / MANIFEST}: format {manifest.get('format')!r}, expected {CORPUS_FORMAT!r}")
    return manifest


def corpus_photos(folder: Path | None = None) -> list[CorpusPhoto]:
    """Every corpus photo, sorted by file name. Checks existence, not bytes."""
    folder = Path(folder) if folder is not None else corpus_dir()
    photos = []
    for entry in _manifest(folder)["photos"]:
        path = folder / entry["file"]
        if not path.is_file():
            raise CorpusError(f"corpus photo {path} is missing")
        photos.append(
            CorpusPhoto(
                path=path,
                group=entry["group"],
                people=bool(entry["people"]),
                size=(int(entry["size"][0]), int(entry["size"][1])),
                sha256=entry["sha256"],
                credit=entry["credit"],
                license=entry["license"],
                source=entry["source"],
            )
        )
    return sorted(photos, key=lambda p: p.name)


def corpus_grouping(folder: Path | None = None) -> Grouping:
    """The corpus in the scene groups and people flags of its manifest."""
    by_group: dict[str, list[CorpusPhoto]] = {}
    for photo in corpus_photos(folder):
        by_group.setdefault(photo.group, []).append(photo)
    groups = tuple(
        SceneGroup(name, tuple(p.path for p in members), any(p.people for p in members))
        for name, members in sorted(by_group.items())
    )
    return Grouping(groups, "corpus manifest")


def verify_corpus(folder: Path | None = None) -> list[str]:
    """Problems with the vendored files (missing, sha256 differs, no credit/licence); [] if none."""
    folder = Path(folder) if folder is not None else corpus_dir()
    problems = []
    for entry in _manifest(folder)["photos"]:
        path = folder / entry["file"]
        if not path.is_file():
            problems.append(f"{entry['file']}: missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            problems.append(f"{entry['file']}: sha256 differs from {MANIFEST}")
        if not entry.get("credit", "").strip() or not entry.get("license", "").strip():
            problems.append(f"{entry['file']}: no credit or licence")
    return problems
