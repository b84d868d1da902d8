"""Classical colour-transfer baselines a learned style must beat (used by the style-fidelity benchmark).

* :func:`reinhard_transfer`: match the per-channel mean and standard deviation in CIELAB to those
  of the style set (Reinhard, Ashikhmin, Gooch & Shirley, "Color Transfer between Images", 2001;
  Lab instead of their lαβ, as most implementations do).
* :func:`histogram_match`: per-channel RGB histogram matching against the pooled style pixels
  (``skimage.exposure.match_histograms``).

Both take and return ``uint8 [H, W, 3]`` RGB. The style set is a list of ``uint8`` HWC arrays or
image paths; to transfer many images to the same style set, build a :class:`StyleReference` once.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

from styleforge.runtime.imageio import open_image, to_uint8_array

MAX_POOLED_PIXELS = 2_000_000  # enough for stable statistics, bounded memory for big style sets

StyleImage = Union[np.ndarray, str, os.PathLike]


@dataclass(frozen=True)
class StyleReference:
    """Statistics of a style set: Lab mean/std (for Reinhard) and pooled RGB pixels ``[N, 1, 3]``."""

    lab_mean: np.ndarray  # [3]
    lab_std: np.ndarray  # [3]
    pixels: np.ndarray  # uint8 [N, 1, 3]


def _as_rgb(image: StyleImage) -> np.ndarray:
    if isinstance(image, np.ndarray):
        arr = image
    else:
        arr = to_uint8_array(open_image(image).rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"expected uint8 [H, W, 3] RGB, got {arr.dtype} {list(arr.shape)}")
    return arr


_CACHE: dict[bytes, StyleReference] = {}  # pooled-pixel digest -> reference; a few style sets
_CACHE_SIZE = 4


def style_reference(style_images: Union[Sequence[StyleImage], StyleReference]) -> StyleReference:
    """Pool the pixels of ``style_images`` (evenly subsampled to :data:`MAX_POOLED_PIXELS`).

    Results are cached by the pooled pixels' digest, so calling the transfer functions with the
    same list of images for every test image costs the Lab conversion only once.
    """
    from skimage.color import rgb2lab

    if isinstance(style_images, StyleReference):
        return style_images
    images = [_as_rgb(img).reshape(-1, 3) for img in style_images]
    if not images:
        raise ValueError("style_images is empty")
    total = sum(len(img) for img in images)
    stride = max(1, int(np.ceil(total / MAX_POOLED_PIXELS)))
    pixels = np.ascontiguousarray(np.concatenate([img[::stride] for img in images])[:, None, :])  # [N,1,3]
    key = hashlib.blake2b(pixels.tobytes(), digest_size=16).digest()
    if key not in _CACHE:
        lab = rgb2lab(pixels).reshape(-1, 3)
        pixels.setflags(write=False)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = StyleReference(lab.mean(axis=0), lab.std(axis=0), pixels)
    return _CACHE[key]


def _check(img: np.ndarray) -> np.ndarray:
    return _as_rgb(np.asarray(img))


def reinhard_transfer(img: np.ndarray, style_images: Union[Sequence[StyleImage], StyleReference]) -> np.ndarray:
    """Shift and scale each CIELAB channel of ``img`` to the style set's mean and std. uint8 HWC."""
    from skimage.color import lab2rgb, rgb2lab

    img = _check(img)
    ref = style_reference(style_images)
    lab = rgb2lab(img)
    mean, std = lab.reshape(-1, 3).mean(axis=0), lab.reshape(-1, 3).std(axis=0)
    out = (lab - mean) * (ref.lab_std / np.maximum(std, 1e-6)) + ref.lab_mean
    rgb = lab2rgb(out)  # float in [0, 1], out-of-gamut values clipped
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def histogram_match(img: np.ndarray, style_images: Union[Sequence[StyleImage], StyleReference]) -> np.ndarray:
    """Match each RGB channel's histogram of ``img`` to the pooled style pixels. uint8 HWC."""
    from skimage.exposure import match_histograms

    img = _check(img)
    ref = style_reference(style_images)
    out = match_histograms(img, ref.pixels, channel_axis=-1)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


BASELINES = {"reinhard": reinhard_transfer, "histogram": histogram_match}
