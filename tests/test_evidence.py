"""The evidence start (styleforge.photo.evidence): stages kept as far as the scene groups agree."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from styleforge.album import people_photos
from styleforge.corpus import corpus_photos
from styleforge.photo import baselines
from styleforge.photo.evidence import fit_by_evidence, group_pixels, shrink_blocks

# A channel-mixing grade no per-channel fit can make: colour kept at 35 % (a desaturating
# matrix), warmed, with a per-channel gamma (not one of the built-in looks).
MIX = 0.35 * np.eye(3) + 0.65 * np.outer(np.ones(3), baselines.GREY)


def _mix(rgb01: np.ndarray) -> np.ndarray:
    return np.clip(np.clip(rgb01 @ MIX.T + np.array([0.04, 0.01, -0.02]), 0, 1) ** np.array([0.95, 1.0, 1.1]), 0, 1)


def _photos(paths, side=160):
    out = []
    for p in paths:
        img = Image.open(p).convert("RGB")
        img.thumbnail((side, side))
        out.append(np.asarray(img))
    return out


def _psnr(a, b):
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


def test_shrink_blocks_keeps_agreed_changes_and_drops_noise():
    rng = np.random.default_rng(0)
    neutral = np.zeros((2, 8))
    agreed = 0.5 + 0.01 * rng.normal(size=(24, 1, 8))  # the same change in every resample
    noise = 0.3 * rng.normal(size=(24, 1, 8))  # no change on average
    shrunk, kept = shrink_blocks(np.concatenate([agreed, noise], axis=1), neutral)
    assert kept[0] > 0.99 and kept[1] == 0.0
    np.testing.assert_allclose(shrunk[1], 0.0)


def test_one_group_a_side_is_the_levels_fit_with_every_other_stage_off():
    rng = np.random.default_rng(0)
    content = [rng.uniform(0.1, 0.9, size=(500, 3))]
    style = [content[0] * 0.5 + 0.2]
    fit = fit_by_evidence(content, style, knots=8)
    assert fit.kept["matrix"] == [0.0] * 3 and fit.kept["curves"] == [0.0] * 3 and fit.freedom == 0.0
    np.testing.assert_allclose(fit.apply(content[0]), np.clip(style[0], 0, 1), atol=0.02)


def test_group_pixels_pools_each_scene_group():
    imgs = [np.full((4, 4, 3), v, np.uint8) for v in (0, 255, 51)]
    groups = group_pixels(imgs, ["a", "b", "a"])
    assert [len(g) for g in groups] == [32, 16]
    with pytest.raises(ValueError, match="labels"):
        group_pixels(imgs, ["a"])


def test_a_channel_mixing_look_from_corpus_photos_beats_the_per_channel_fits():
    """30 corpus photos a side (distinct scenes), scored on the album's portraits, which are in
    neither folder: the evidence start keeps the matrix stage and beats levels and per-channel
    histogram matching of the same folders by a clear margin."""
    photos = [p.path for p in corpus_photos() if not p.people]
    order = np.random.default_rng(3).permutation(len(photos))
    content = _photos([photos[i] for i in order[:30]])
    style = [np.rint(_mix(c / 255.0) * 255).astype(np.uint8) for c in _photos([photos[i] for i in order[30:60]])]
    fit = fit_by_evidence(group_pixels(content, [str(i) for i in range(30)]),
                          group_pixels(style, [str(i) for i in range(30)]), knots=32)
    assert min(fit.kept["matrix"]) > 0.3, fit.describe()

    tests = [np.asarray(p, np.float64).reshape(-1, 3) / 255.0 for p in _photos(people_photos())]
    truth = [_mix(t) for t in tests]
    cpx, spx = baselines.pixels01(content), baselines.pixels01(style)
    scale, offset = baselines.levels_fit(cpx, spx)
    curves = baselines.quantile_curves(cpx, spx, 256)
    grid = np.linspace(0, 1, 256)

    def mean_psnr(fn):
        return np.mean([_psnr(np.clip(fn(t), 0, 1), g) for t, g in zip(tests, truth)])

    evidence = mean_psnr(fit.apply)
    levels = mean_psnr(lambda x: x * scale + offset)
    hist = mean_psnr(lambda x: np.stack([np.interp(x[:, c], grid, curves[c]) for c in range(3)], axis=1))
    assert evidence >= max(levels, hist) + 1.0, (evidence, levels, hist)
