"""Writing stylized photos faithfully and atomically: alpha, ICC profile and EXIF carried over.

The output format follows the file suffix. Every file is written to a temporary name in the
target folder and renamed into place (``styleforge.atomic.replacing``), so a crash never leaves half a photo
under the final name and never touches the input.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

import numpy as np
from PIL import Image

from styleforge.atomic import replacing

FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP"}
_HAS_ALPHA = ("PNG", "WEBP", "TIFF")
_HAS_METADATA = ("JPEG", "PNG", "WEBP", "TIFF")  # formats Pillow writes ICC and EXIF into


def format_for(path: Union[str, os.PathLike]) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unsupported output suffix {suffix!r}; use one of {', '.join(sorted(FORMATS))}")
    return FORMATS[suffix]


def save_image(
    rgb: Union[np.ndarray, Image.Image],
    path: Union[str, os.PathLike],
    alpha: Optional[Image.Image] = None,
    icc_profile: Optional[bytes] = None,
    exif: Optional[bytes] = None,
    quality: int = 95,
) -> Path:
    """Write uint8 ``[H, W, 3]`` RGB (or an RGB PIL image) to ``path`` atomically.

    ``alpha`` (mode ``"L"``, same size) is re-attached where the format holds transparency
    (PNG, WebP, TIFF) and dropped for JPEG/BMP. ``icc_profile``/``exif`` are raw bytes from the
    source (see :func:`styleforge.runtime.imageio.open_image`). ``quality`` is for JPEG/WebP.
    """
    path = Path(path)
    fmt = format_for(path)
    img = rgb if isinstance(rgb, Image.Image) else Image.fromarray(np.asarray(rgb, dtype=np.uint8), "RGB")
    if alpha is not None and fmt in _HAS_ALPHA:
        img = img.convert("RGB")
        img.putalpha(alpha)
    kwargs: dict = {}
    if fmt in _HAS_METADATA:
        if icc_profile:
            kwargs["icc_profile"] = icc_profile
        if exif:
            kwargs["exif"] = exif
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = int(quality)
    if fmt == "JPEG":
        kwargs["subsampling"] = 0 if quality >= 90 else 2  # keep chroma detail at high quality
    with replacing(path) as tmp:
        img.save(tmp, format=fmt, **kwargs)
    return path
