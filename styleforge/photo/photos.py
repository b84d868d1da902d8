"""The general photo loader: photos (paths, arrays or PIL images) as small uint8 RGB arrays.

Every part that needs a handful of whole photos in memory goes through :func:`load_photos`: the
degeneracy checks (:mod:`styleforge.train.degeneracy`), the colour generator's start and validation,
the closed-form fit of before/after pairs and the look recipe's (:func:`load_pairs`), the LUT
student and the learning curves. Files are read
with :func:`styleforge.runtime.imageio.open_image` (EXIF orientation, any Pillow mode -> RGB).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from styleforge.runtime.imageio import ImageError, open_image, to_uint8_array

LIMIT = 8  # photos loaded when the caller does not say
SHORT_SIDE = 256  # short side the photos are shrunk to (never enlarged)


def load_photos(photos: Iterable, limit: int = LIMIT, short_side: int = SHORT_SIDE) -> list[np.ndarray]:
    """The first ``limit`` of ``photos`` (paths, uint8 HWC arrays or PIL images) as uint8
    ``[H, W, 3]`` RGB, each shrunk (LANCZOS) so its short side is at most ``short_side``."""
    out = []
    for item in list(photos)[:limit]:
        if isinstance(item, np.ndarray):
            img = Image.fromarray(item)
        elif isinstance(item, Image.Image):
            img = item.convert("RGB")
        else:
            img = open_image(item).rgb
        scale = short_side / min(img.size)
        if scale < 1.0:
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                             Image.Resampling.LANCZOS)
        out.append(to_uint8_array(img))
    return out


def load_pairs(pairs: Sequence[tuple], short_side: int = SHORT_SIDE) -> list[tuple[np.ndarray, np.ndarray]]:
    """Before/after pairs of files as uint8 ``[H, W, 3]`` RGB: A read upright and shrunk to
    ``short_side`` (:func:`load_photos`), B resized (LANCZOS) to A's size. A pair either of whose
    files does not decode is skipped (the paired dataset reports it)."""
    out = []
    for path_a, path_b in pairs:
        try:
            a = load_photos([path_a], limit=1, short_side=short_side)[0]
            b = to_uint8_array(open_image(path_b).rgb.resize((a.shape[1], a.shape[0]), Image.Resampling.LANCZOS))
        except ImageError:
            continue
        out.append((a, b))
    return out
