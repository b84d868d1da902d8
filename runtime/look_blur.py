"""Resolution-independent Gaussian blur on an image pyramid (numpy only), for the look operators.

A look recipe states every radius as a fraction of the photo's short side, so the same recipe
reads the same on a 400 px preview and a 24 MP original. This module turns such a fraction into
pixels and blurs cheaply at any radius:

1. ``sigma_px = sigma_frac * short_side``.
2. Go down the pyramid (2x2 mean; an odd row/column is edge-replicated first) while the sigma at
   the level, ``sigma_px / 2**level``, is at least :data:`LEVEL_SIGMA` (4 px): a blur therefore
   runs on a level where sigma is in [2, 4) px (or below 4 px at full resolution).
3. A separable sampled Gaussian, truncated at :data:`TRUNCATE` sigma, reflect padding.
4. Bilinear upsampling straight back to full size by ``2**level`` (half-pixel centres: what
   torch ``F.interpolate(mode="bilinear", align_corners=False, scale_factor=2**level)`` does),
   then a crop to the original size.

Steps 1-3 are :func:`blur_to_level`, step 4 :func:`upsample_from_level`; an operator that works
on the blurred level itself (smooth_skin's fast guided filter) calls the two halves and
:func:`blur_separable` in between.

The 2x2 means and the bilinear upsampling blur too: averaged over the sample phases they add
exactly 1/4 px^2 of variance (in pixels of the level) for any level >= 1, so the Gaussian at the
level is narrowed to ``sqrt(s**2 - 1/4)`` and the total is the requested sigma. Because level
``k + 1`` of a photo is level ``k`` of its 2x2-mean half-size copy, the same fraction blurs the
two sizes the same way (see ``tests/runtime/test_look_ops.py`` for the figures).

The schedule (level, kernel radius) depends only on the image size and the value of sigma, so the
torch twin in ``styleforge.train.models.recipe_ops`` follows it exactly and stays differentiable
in sigma. Arrays are float32 ``[H, W]`` or ``[H, W, C]``.
"""

from __future__ import annotations

import math

import numpy as np

TRUNCATE = 3.0  # the kernel stops at 3 sigma (0.27% of the mass is dropped, then renormalised)
LEVEL_SIGMA = 4.0  # go down a pyramid level while sigma at the level is >= this (px)
LEVEL_VARIANCE = 0.25  # px^2 of the level added by the 2x2 means plus the bilinear upsampling
MIN_SIGMA_PX = 1e-3  # a sigma below this is a delta (kernel [0, 1, 0]); avoids 0/0
MATCH_VARIANCE_BELOW = 1.0  # px: below this the kernel's variance is made exactly sigma^2
MIN_LEVEL_SIDE = 4  # never go down to a level whose short side would be below this

LUMA = (0.2126, 0.7152, 0.0722)  # Rec.709 luma weights, applied to the sRGB-encoded values


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec.709 luma of sRGB-encoded ``[H, W, 3]`` -> ``[H, W]`` (same units as the input)."""
    return rgb[..., 0] * np.float32(LUMA[0]) + rgb[..., 1] * np.float32(LUMA[1]) + rgb[..., 2] * np.float32(LUMA[2])


def pyramid_level(sigma_px: float, height: int, width: int) -> int:
    """The pyramid level a blur of ``sigma_px`` (full-resolution pixels) runs on."""
    level, h, w = 0, height, width
    while sigma_px / 2.0**level >= LEVEL_SIGMA and min((h + 1) // 2, (w + 1) // 2) >= MIN_LEVEL_SIDE:
        level, h, w = level + 1, (h + 1) // 2, (w + 1) // 2
    return level


def level_sigma(sigma_px, level: int):
    """Sigma of the Gaussian at ``level`` (px of the level) so the whole pipeline blurs by ``sigma_px``.

    Written with ``**`` only, so it serves floats and torch tensors alike (the torch twin calls it
    with a tensor to keep the gradient in sigma).
    """
    if level == 0:
        return sigma_px
    return (sigma_px**2 / 4.0**level - LEVEL_VARIANCE) ** 0.5


def kernel_radius(sigma: float, size: int) -> int:
    """Taps either side for a Gaussian of ``sigma`` px on an axis of ``size`` px.

    At most ``size - 1``: reflect padding needs that (only a tiny image hits the limit).
    """
    return min(max(1, math.ceil(TRUNCATE * sigma)), size - 1)


def gaussian_kernel(sigma: float, radius: int) -> np.ndarray:
    """Normalised float32 taps ``exp(-i^2 / (2 sigma^2))`` for ``i`` in ``[-radius, radius]``.

    Below :data:`MATCH_VARIANCE_BELOW` px the sampled Gaussian's variance falls short of
    ``sigma^2`` (14% at 0.5 px, nearly all of it at 0.2 px: the taps collapse to a delta), so the
    missing variance is moved from the centre tap to its two neighbours. A sub-pixel blur then
    blurs as much as the same blur at twice the resolution seen through a 2x2 mean, which is
    what keeps small radii (sharpen, fine detail) resolution independent.
    """
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    s = np.float32(max(sigma, MIN_SIGMA_PX))
    taps = np.exp(-(offsets * offsets) / (np.float32(2.0) * s * s))
    taps = (taps / taps.sum()).astype(np.float32)
    if sigma < MATCH_VARIANCE_BELOW and radius >= 1:
        shortfall = max(float(s * s - np.sum(offsets * offsets * taps, dtype=np.float32)), 0.0)
        taps[radius] -= np.float32(shortfall)
        taps[radius - 1] += np.float32(shortfall / 2)
        taps[radius + 1] += np.float32(shortfall / 2)
    return taps


def downsample2(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """2x2 mean over axes ``axis, axis + 1`` (``[H, W, ...]`` by default, ``[C, H, W]`` with
    ``axis=1``); an odd last row/column is repeated first -> ``ceil(H/2), ceil(W/2)``. Row pairs
    are summed first (contiguous rows), then column pairs."""
    rows_axis, cols_axis = axis, axis + 1
    if a.shape[rows_axis] % 2:
        a = np.concatenate([a, a.take([-1], axis=rows_axis)], axis=rows_axis)
    if a.shape[cols_axis] % 2:
        a = np.concatenate([a, a.take([-1], axis=cols_axis)], axis=cols_axis)
    lead = (slice(None),) * axis
    rows = a[lead + (slice(0, None, 2),)] + a[lead + (slice(1, None, 2),)]
    return (rows[lead + (slice(None), slice(0, None, 2))] + rows[lead + (slice(None), slice(1, None, 2))]) * np.float32(0.25)


def bilinear_taps(n_out: int, n_in: int, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(i0, i1, t)`` so output ``j`` = ``(1 - t) * in[i0] + t * in[i1]``: half-pixel centres.

    ``scale`` is input pixels per output pixel; the source coordinate is
    ``scale * (j + 0.5) - 0.5`` clamped at 0, as torch's ``align_corners=False`` computes it.
    """
    src = np.float32(scale) * (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) - np.float32(0.5)
    src = np.maximum(src, np.float32(0.0))
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (src - i0).astype(np.float32)


def bilinear_resize(a: np.ndarray, height: int, width: int, scale_y: float, scale_x: float) -> np.ndarray:
    """Bilinear resampling of ``[h, w, ...]`` to ``[height, width, ...]`` (see :func:`bilinear_taps`):
    ``a[i0] + t * (a[i1] - a[i0])`` along rows, then along columns."""
    i0, i1, t = bilinear_taps(height, a.shape[0], scale_y)
    t = t.reshape((-1,) + (1,) * (a.ndim - 1))
    a = a[i0] + t * (a[i1] - a[i0])
    i0, i1, t = bilinear_taps(width, a.shape[1], scale_x)
    t = t.reshape((1, -1) + (1,) * (a.ndim - 2))
    return a[:, i0] + t * (a[:, i1] - a[:, i0])


def _blur_axis(a: np.ndarray, sigma: float, axis: int) -> np.ndarray:
    radius = kernel_radius(sigma, a.shape[axis])
    if radius == 0:
        return a
    kernel = gaussian_kernel(sigma, radius)
    pad = [(0, 0)] * a.ndim
    pad[axis] = (radius, radius)
    padded = np.pad(a, pad, mode="reflect")
    n = a.shape[axis]
    out = np.zeros_like(a)
    for tap, weight in enumerate(kernel):  # a loop over taps, each one a whole-image multiply-add
        out += weight * (padded[tap:tap + n] if axis == 0 else padded[:, tap:tap + n])
    return out


def blur_separable(a: np.ndarray, sigma: float) -> np.ndarray:
    """The separable Gaussian of ``sigma`` px (of ``a``'s own grid) over the first two axes of
    ``[h, w]`` or ``[h, w, C]``: rows first, then columns, reflect padding."""
    return _blur_axis(_blur_axis(a, sigma, 0), sigma, 1)


def blur_to_level(a: np.ndarray, sigma_frac: float) -> tuple[np.ndarray, int, float]:
    """The first half of :func:`gaussian_blur`: 2x2 means down to the level, the Gaussian there.

    float32 ``[H, W]`` or ``[H, W, C]`` -> ``(small, level, sigma)``: ``small`` is the blurred
    level ``[ceil(H / 2**level), ceil(W / 2**level), ...]``, ``sigma`` the Gaussian's sigma in px
    of the level (:func:`level_sigma`). :func:`blur_separable` with that ``sigma`` blurs another
    image of the level the same way; :func:`upsample_from_level` brings it to full size.
    """
    a = np.asarray(a, dtype=np.float32)
    height, width = a.shape[:2]
    sigma_px = float(sigma_frac) * min(height, width)
    level = pyramid_level(sigma_px, height, width)
    small = a
    for _ in range(level):
        small = downsample2(small)
    sigma = level_sigma(sigma_px, level)
    return blur_separable(small, sigma), level, sigma


def upsample_from_level(small: np.ndarray, level: int, height: int, width: int) -> np.ndarray:
    """The second half of :func:`gaussian_blur`: level ``level`` ``[h, w, ...]`` bilinearly up by
    ``2**level`` (half-pixel centres) and cropped to ``[height, width, ...]``; level 0 is returned
    as it is."""
    if level == 0:
        return small
    factor = 1.0 / 2.0**level
    return bilinear_resize(small, height, width, factor, factor)


def gaussian_blur(a: np.ndarray, sigma_frac: float) -> np.ndarray:
    """Gaussian blur of float32 ``[H, W]`` or ``[H, W, C]`` by ``sigma_frac`` of the short side.

    ``sigma_frac`` >= 0 (0 or a sub-pixel value is nearly the identity). Cost: one separable
    pass of at most 25 taps at the level where sigma is in [2, 4) px, whatever the radius.
    :func:`blur_to_level` then :func:`upsample_from_level`.
    """
    height, width = np.shape(a)[:2]
    small, level, _ = blur_to_level(a, sigma_frac)
    return upsample_from_level(small, level, height, width)
