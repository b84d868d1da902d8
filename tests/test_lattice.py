"""The paired colour lattice (styleforge.photo.lattice): smooth where no pixel fell, and as smooth
as whole held-out photos say."""

from __future__ import annotations

import numpy as np
import pytest

from styleforge.photo.lattice import (
    DEFAULT_SMOOTHNESS,
    SMOOTHNESS,
    design_matrix,
    lattice_regression,
)
from styleforge.runtime.lut import trilinear


def _change(p: np.ndarray) -> np.ndarray:  # a smooth colour change, like a grade's residual
    return np.stack([0.15 * p[:, 0] * p[:, 1], -0.1 * p[:, 2] ** 2, 0.08 * (p[:, 0] - p[:, 2])], axis=1)


def _photos(rng, count: int, pixels: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """``count`` photos' pixels, each photo a cloud of colours in the darker part of the cube (r < 0.6)."""
    points, photo = [], []
    for i in range(count):
        centre = rng.uniform(0.15, 0.45, 3)
        points.append(np.clip(centre + rng.normal(0, 0.08, (pixels, 3)), 0.0, [0.6, 1.0, 1.0]))
        photo.append(np.full(pixels, i))
    return np.concatenate(points), np.concatenate(photo)


def test_the_lattice_reproduces_the_change_where_pixels_fell_and_continues_it_where_none_did():
    rng = np.random.default_rng(0)
    points, photo = _photos(rng, 6)
    fit = lattice_regression(points, _change(points), 9, photo)
    assert fit.table.shape == (9, 9, 9, 3) and fit.smoothness in SMOOTHNESS and np.isfinite(fit.cv_error)
    seen = points[rng.choice(len(points), 2000)]
    np.testing.assert_allclose(trilinear(fit.table.astype(np.float32), seen.astype(np.float32)), _change(seen), atol=2e-3)
    unseen = np.column_stack([rng.uniform(0.7, 0.8, 2000), rng.uniform(0.2, 0.5, 2000), rng.uniform(0.2, 0.5, 2000)])
    error = np.abs(trilinear(fit.table.astype(np.float32), unseen.astype(np.float32)) - _change(unseen)).mean()
    assert error < 0.2 * np.abs(_change(unseen)).mean()  # a lattice left at 0 there is 100 % off


def test_photos_that_disagree_get_a_smoother_lattice_than_photos_that_agree():
    """A per-photo colour cast on top of the change (the look is not a function of colour alone):
    cross-validation over whole photos picks a larger smoothness."""
    rng = np.random.default_rng(1)
    points, photo = _photos(rng, 8, 2000)
    clean = lattice_regression(points, _change(points), 9, photo)
    cast = rng.normal(0, 0.04, (8, 3))[photo] * np.sin(12 * points)
    noisy = lattice_regression(points, _change(points) + cast, 9, photo)
    assert noisy.smoothness > clean.smoothness


def test_one_photo_uses_the_default_smoothness_and_bad_shapes_are_refused():
    points = np.random.default_rng(2).random((500, 3))
    assert lattice_regression(points, _change(points), 9).smoothness == DEFAULT_SMOOTHNESS
    assert lattice_regression(points, _change(points), 9, smoothness=[1e-3]).smoothness == 1e-3
    with pytest.raises(ValueError, match="points"):
        lattice_regression(points[:, :2], _change(points), 9)
    with pytest.raises(ValueError, match="points"):
        lattice_regression(points, _change(points)[:10], 9)
    assert design_matrix(points, 9).shape == (500, 729)
    np.testing.assert_allclose(np.asarray(design_matrix(points, 9).sum(axis=1)).ravel(), 1.0)
