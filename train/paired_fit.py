"""The closed-form colour fit of before/after pairs: the paired colour generator's start.

A tone look (a grade, toning, black and white) is a function of the pixel's colour, and pairs say
which colour becomes which, so it can be fitted without training: the least-squares colour matrix
(:func:`~styleforge.photo.baselines.affine_fit`), then a LUT residual of the mean leftover target
colour as a smooth lattice (:func:`~styleforge.photo.lattice.lattice_regression`, its smoothness
cross-validated over whole photos). Whether a look
*is* a colour function is decided by the look recipe's fit on held-out pairs
(:mod:`styleforge.train.recipe_fit`), which replaced this module's in-sample 32 dB switch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from styleforge.photo.baselines import affine_fit
from styleforge.photo.lattice import lattice_regression
from styleforge.photo.photos import load_pairs
from styleforge.runtime.imageio import ImageError, open_image, to_uint8_array

FIT_PHOTOS = 64  # pairs the fit uses (the first by name)
FIT_PIXELS = 1_000_000  # at most about this many of their pixels


def pair_pixels(pairs: Sequence[tuple[Path, Path]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(before, after, photo)``: ``[N, 3]`` float64 RGB in [0, 1], row ``i`` the same pixel of A
    and B, and ``[N]`` int the pair it came from (for cross-validation over photos); read-only.

    A colour fit needs pixels, not pictures: where A and B have the same size (upright), the pixels
    are taken at the same places of both at full size, at most ``FIT_PIXELS / pairs`` a pair,
    never resampled (resizing both blends neighbours through the look's curves; on 7 pairs of
    teal-orange at 320 px the fit came out the same either way). B of another size is resized to A
    at short side 256 (:func:`~styleforge.photo.photos.load_pairs`). A pair whose files do not
    decode is skipped (the dataset reports it). The last result is kept, so callers that decode
    the same pairs twice read them once."""
    return _pair_pixels(tuple((Path(a), Path(b)) for a, b in list(pairs)[:FIT_PHOTOS]))


def _same_places(path_a: Path, path_b: Path, budget: int) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """``[M, 3]`` uint8 pixels of A and B at the same places (every ``k``-th, ``M <= budget``), or
    None when they differ in size or do not decode."""
    try:
        a = to_uint8_array(open_image(path_a).rgb)
        b = to_uint8_array(open_image(path_b).rgb)
    except ImageError:
        return None
    return _every_kth(a, b, budget) if a.shape == b.shape else None


def _every_kth(a: np.ndarray, b: np.ndarray, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of ``[H, W, 3]`` ``a`` and ``b`` at the same places, every ``k``-th in reading
    order with ``k`` the least that keeps at most ``budget``: two ``[M, 3]`` copies."""
    stride = max(1, -(-a.shape[0] * a.shape[1] // budget))
    return a.reshape(-1, 3)[::stride].copy(), b.reshape(-1, 3)[::stride].copy()


@functools.lru_cache(maxsize=1)
def _pair_pixels(pairs: tuple[tuple[Path, Path], ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    budget = max(1, FIT_PIXELS // max(1, len(pairs)))
    photos = []
    for path_a, path_b in pairs:
        same = _same_places(path_a, path_b, budget)
        if same is None:
            resized = load_pairs([(path_a, path_b)])
            if not resized:
                continue
            same = _every_kth(*resized[0], budget)
        photos.append(same)
    if not photos:
        raise ValueError("no readable before/after pair to fit")
    before, after = (np.concatenate([pair[k] for pair in photos]).astype(np.float64) / 255.0 for k in (0, 1))
    photo = np.concatenate([np.full(len(a), i) for i, (a, _) in enumerate(photos)])
    for array in (before, after, photo):
        array.flags.writeable = False  # shared by every caller of the cache
    return before, after, photo


@dataclass(frozen=True)
class ColourFit:
    """A look's colour from pixel pairs: ``clip(x) -> A x + b``, then ``+ residual`` looked up
    (trilinear) at ``A x + b`` clipped. ``matrix [3, 3]``, ``bias [3]`` float64; ``residual``
    float32 ``[S, S, S, 3]`` indexed ``[r, g, b]``; ``smoothness`` the lattice prior's lambda."""

    matrix: np.ndarray
    bias: np.ndarray
    residual: np.ndarray
    smoothness: float


def fit_colour(before: np.ndarray, after: np.ndarray, size: int, photo: Optional[np.ndarray] = None) -> ColourFit:
    """The closed-form colour fit of pixel pairs ``before``/``after`` (``[N, 3]`` RGB in [0, 1]):
    the least-squares matrix, then the smooth lattice of what it leaves, its smoothness
    cross-validated over ``photo [N]`` (which pair each pixel came from; see
    :func:`~styleforge.photo.lattice.lattice_regression`)."""
    before, after = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    matrix, bias = affine_fit(before, after)
    mapped = before @ matrix.T + bias  # what reaches the LUT
    lattice = lattice_regression(mapped, after - mapped, size, photo)
    return ColourFit(matrix, bias, lattice.table.astype(np.float32), lattice.smoothness)


def fit_colour_generator(generator, before: np.ndarray, after: np.ndarray, photo: Optional[np.ndarray] = None) -> ColourFit:
    """Set ``generator`` (a fresh :class:`~styleforge.train.models.colour.ColourGenerator`) to
    :func:`fit_colour` of the pixel pairs (curves stay identity); returns the fit."""
    fit = fit_colour(before, after, generator.lut.shape[-1], photo)
    generator.init_from(fit.matrix, fit.bias)
    generator.set_lut_residual(fit.residual)
    return fit
