"""Photos for int8 calibration and for the fidelity gate, cut to the model size.

All images are read with :func:`styleforge.runtime.imageio.open_image` (EXIF orientation, any
Pillow mode -> 8-bit RGB). Arrays here are uint8 ``[N, H, W, 3]`` (NHWC, sRGB);
:func:`to_model_range` maps them to the float32 ``[-1, 1]`` the generators expect.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from styleforge.errors import StyleforgeError
from styleforge.photo.album import AlbumError, album_paths
from styleforge.photo.photos import load_photos
from styleforge.photo.scenes import album_grouping, split_groups
from styleforge.progress import progress
from styleforge.runtime.imageio import list_images, open_image, to_uint8_array
from styleforge.runtime.tensors import pixels_to_range, range_to_pixels, to_uint8

MIN_CALIBRATION_CROPS = 100  # below ~100 samples int8 activation ranges get noticeably noisy

class CalibrationError(StyleforgeError, ValueError):
    """No usable photos for calibration or for the fidelity gate."""


def default_photos() -> list[Path]:
    """The photo album that ships with styleforge (:func:`styleforge.photo.album.album_paths`), sorted."""

    try:
        return album_paths()
    except AlbumError as err:
        raise CalibrationError(f"{err}; pass --calib DIR") from None


def split_default_photos() -> tuple[list[Path], list[Path]]:
    """Default (calibration, held-out) album photos, disjoint by scene group.

    Held out: the test side of the album's seed-0 split (``make-dataset``'s default), whole scene
    groups with people, so the gate measures scenes that neither calibration nor the demo's
    training saw; calibration: every other photo.
    """

    split = split_groups(album_grouping(), seed=0)
    heldout = sorted(split.photos("test"))
    calibration = sorted(p for p in default_photos() if p not in set(heldout))
    return calibration, heldout


def photos_in(folder: str | Path) -> list[Path]:
    """Image files in ``folder`` (recursively); raises :class:`CalibrationError` when none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CalibrationError(f"not a folder: {folder}")
    photos = list_images(folder, recursive=True)
    if not photos:
        raise CalibrationError(f"no images in {folder}")
    return photos


def _load(path: Path) -> Image.Image:
    return open_image(path).rgb


def center_crop(img: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Scale ``img`` to cover ``size`` = (H, W) and cut the centre: uint8 ``[H, W, 3]``."""
    h, w = size
    scale = max(h / img.height, w / img.width)
    new = (max(w, round(img.width * scale)), max(h, round(img.height * scale)))
    img = img.resize(new, Image.Resampling.LANCZOS)
    left, top = (img.width - w) // 2, (img.height - h) // 2
    return to_uint8_array(img.crop((left, top, left + w, top + h)))


def whole_photos(paths: Sequence[Path], sides: Sequence[int], count: int) -> dict[int, list[np.ndarray]]:
    """The first ``count`` photos of ``paths``, whole (upright), resized (Lanczos) to each short side
    of ``sides``: ``{side: [uint8 [H, W, 3], ...]}``, each file decoded once."""
    photos = load_photos(paths[:count], limit=count, short_side=10**6)
    by_side = {}
    for side in sides:
        by_side[side] = []
        for rgb in photos:
            h, w = rgb.shape[:2]
            scale = side / min(h, w)
            size = (round(w * scale), round(h * scale))
            by_side[side].append(np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS)))
    return by_side


def heldout_crops(paths: Sequence[Path], size: tuple[int, int]) -> np.ndarray:
    """One centre crop per photo at ``size``: uint8 ``[N, H, W, 3]``."""
    if not paths:
        raise CalibrationError("no held-out photos")
    return np.stack([center_crop(_load(p), size) for p in paths])


def calibration_crops(
    paths: Sequence[Path],
    size: tuple[int, int],
    count: int = MIN_CALIBRATION_CROPS,
    seed: int = 0,
    show_progress: bool = True,
) -> np.ndarray:
    """``count`` random crops (random position and scale, 35-100 % of the short side) at ``size``.

    Crops cycle through the photos so every photo contributes; deterministic for a ``seed``.
    Returns uint8 ``[count, H, W, 3]``.
    """
    if not paths:
        raise CalibrationError("no calibration photos")
    rng = np.random.default_rng(seed)
    images = [_load(p) for p in paths]
    h, w = size
    crops = []
    for i in progress(range(count), total=count, desc="calibration crops", disable=not show_progress):
        img = images[i % len(images)]
        frac = rng.uniform(0.35, 1.0)
        # Crop box with the model's aspect ratio, a fraction of the largest such box.
        box_h = min(img.height, img.width * h / w) * frac
        box_w = box_h * w / h
        top = rng.uniform(0, img.height - box_h)
        left = rng.uniform(0, img.width - box_w)
        crop = img.resize((w, h), Image.Resampling.BILINEAR, box=(left, top, left + box_w, top + box_h))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        crops.append(to_uint8_array(crop))
    return np.stack(crops)


def to_model_range(images_uint8: np.ndarray) -> np.ndarray:
    """uint8 ``[..., 3]`` -> float32 in ``[-1, 1]`` (``styleforge.runtime.tensors.pixels_to_range``)."""
    return pixels_to_range(images_uint8)


def from_model_range(x: np.ndarray) -> np.ndarray:
    """float ``[-1, 1]`` -> uint8 (rounded, clipped)."""
    return to_uint8(range_to_pixels(x))
