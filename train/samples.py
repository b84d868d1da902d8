"""Real colour photographs that ship inside installed packages (scikit-image, matplotlib).

styleforge's own photos are the album in ``data/album`` (:mod:`styleforge.photo.album`), which the demo,
``make-dataset``, eval-looks and export use; these package photos remain as extra test images.

scikit-image keeps a handful of photos in its ``data`` folder (others are fetched on demand with
pooch, which we must never trigger: we only list files already on disk) and matplotlib ships a few
in ``mpl-data/sample_data``. Many of the files there are greyscale, synthetic (colour wheels,
checkerboards, logos) or scientific (microscopy, retina scans, deep-sky images); those are excluded
by name, and any file we do not know is kept only if it looks like a colour photo.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image

from styleforge.runtime.imageio import IMAGE_SUFFIXES

MIN_SHORT_SIDE = 256  # smaller files are icons or thumbnails, useless as training crops

# Known natural colour photographs: file name -> (scene group, is a portrait of a person).
# Files of the same scene group (a stereo pair) must land on the same side of a data split.
KNOWN_PHOTOS: dict[str, tuple[str, bool]] = {
    "astronaut.png": ("astronaut", True),  # Eileen Collins, NASA portrait
    "grace_hopper.jpg": ("grace_hopper", True),  # Grace Hopper, US Navy portrait
    "chelsea.png": ("chelsea", False),  # a cat
    "coffee.png": ("coffee", False),
    "rocket.jpg": ("rocket", False),
    "motorcycle_left.png": ("motorcycle", False),  # stereo pair: one scene
    "motorcycle_right.png": ("motorcycle", False),
}

# Colourful files that are not photographs of everyday scenes (a generic check would admit them).
NOT_PHOTOS = frozenset(
    {
        "color.png",  # synthetic colour chart
        "ihc.png",  # immunohistochemistry micrograph
        "retina.jpg",  # fundus scan
        "hubble_deep_field.jpg",  # deep-sky image, almost black
        "logo.png",
        "logo2.png",
        "chessboard_RGB.png",
        "phantom.png",
        "Minduka_Present_Blue_Pack.png",
    }
)


def _package_dir(package: str, *parts: str) -> Path | None:
    """Folder inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)), *parts)
    return folder if folder.is_dir() else None


def sample_folders() -> list[Path]:
    """Folders searched for sample photos (only those that exist)."""
    folders = [_package_dir("skimage", "data"), _package_dir("matplotlib", "mpl-data", "sample_data")]
    return [f for f in folders if f is not None]


def looks_like_colour_photo(path: Path) -> bool:
    """Heuristic for unknown files: big enough, no transparency, colourful, many distinct colours."""
    try:
        with Image.open(path) as img:
            if min(img.size) < MIN_SHORT_SIDE or img.mode not in ("RGB", "CMYK", "YCbCr"):
                return False
            img.draft("RGB", (img.width // 4, img.height // 4))  # fast JPEG decode at low size
            small = np.asarray(img.convert("RGB").resize((128, 128)), dtype=np.int16)
    except Exception:
        return False
    saturation = float(np.mean(small.max(axis=-1) - small.min(axis=-1)))
    distinct = len(np.unique(small.reshape(-1, 3), axis=0))
    return saturation > 12.0 and distinct > 4000


@functools.lru_cache(maxsize=1)
def _scan() -> tuple[Path, ...]:
    found = []
    for folder in sample_folders():
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            if path.name in NOT_PHOTOS:
                continue
            if path.name in KNOWN_PHOTOS or looks_like_colour_photo(path):
                found.append(path)
    return tuple(sorted(found, key=lambda p: (p.name, str(p))))


def sample_photos() -> list[Path]:
    """Colour photographs available offline, sorted by file name (deterministic).

    Never downloads anything; returns only files present on disk.
    """
    return list(_scan())


def portrait_photos() -> list[Path]:
    """The subset of :func:`sample_photos` that are portraits of people (for demos)."""
    return [p for p in sample_photos() if KNOWN_PHOTOS.get(p.name, ("", False))[1]]


def scene_of(path: Path) -> str:
    """Scene group of a sample photo: files of one scene (a stereo pair) share it."""
    known = KNOWN_PHOTOS.get(Path(path).name)
    return known[0] if known else Path(path).stem


def is_portrait(path: Path) -> bool:
    return KNOWN_PHOTOS.get(Path(path).name, ("", False))[1]
