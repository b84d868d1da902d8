"""The closed-form colour fit of before/after pairs: the paired colour generator's start.

A tone look (a grade, toning, black and white) is a function of the pixel's colour, and pairs say
which colour becomes which, so it can be fitted without training: the least-squares colour matrix
(:func:`~styleforge.photo.baselines.affine_fit`), then a LUT residual of the mean leftover target
colour around each lattice node (:func:`~styleforge.photo.baselines.lattice_fit`). Whether a look
*is* a colour function is decided by the look recipe's fit on held-out pairs
(:mod:`styleforge.train.recipe_fit`), which replaced this module's in-sample 32 dB switch.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

import numpy as np

from styleforge.photo.baselines import affine_fit, lattice_fit
from styleforge.photo.photos import load_pairs

FIT_PHOTOS = 64  # pairs the fit uses (the first by name), each at short side 256
FIT_PIXELS = 1_000_000  # at most about this many of their pixels


def pair_pixels(pairs: Sequence[tuple[Path, Path]]) -> tuple[np.ndarray, np.ndarray]:
    """``(before, after)``: ``[N, 3]`` float64 RGB in [0, 1], row ``i`` the same pixel of A and B,
    read-only.

    A is read upright at short side 256 and B resized to it; a pair whose files do not decode is
    skipped (the dataset reports it). The last result is kept, so callers that decode the same pairs
    twice read them once."""
    return _pair_pixels(tuple((Path(a), Path(b)) for a, b in list(pairs)[:FIT_PHOTOS]))


@functools.lru_cache(maxsize=1)
def _pair_pixels(pairs: tuple[tuple[Path, Path], ...]) -> tuple[np.ndarray, np.ndarray]:
    photos = [(a.reshape(-1, 3), b.reshape(-1, 3)) for a, b in load_pairs(pairs)]
    if not photos:
        raise ValueError("no readable before/after pair to fit")
    stride = max(1, sum(len(a) for a, _ in photos) // FIT_PIXELS)
    before, after = (np.concatenate([pair[k][::stride] for pair in photos]).astype(np.float64) / 255.0 for k in (0, 1))
    before.flags.writeable = after.flags.writeable = False  # shared by every caller of the cache
    return before, after


def fit_colour_generator(generator, before: np.ndarray, after: np.ndarray) -> None:
    """Set ``generator`` (a fresh :class:`~styleforge.train.models.colour.ColourGenerator`) to the
    closed-form fit of the pixel pairs: matrix and bias, then the LUT residual (curves stay identity)."""

    matrix, bias = affine_fit(before, after)
    generator.init_from(matrix, bias)
    mapped = before @ matrix.T + bias  # what reaches the LUT
    generator.set_lut_residual(lattice_fit(mapped, after - mapped, generator.lut.shape[-1]))
