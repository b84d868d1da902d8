"""The evidence start (styleforge.photo.evidence): stages kept as far as the scene groups agree."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from styleforge.photo import baselines
from styleforge.photo.album import people_photos
from styleforge.photo.corpus import corpus_photos
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
    assert fit.kept == {"affine": [0.0] * 3, "curves": [0.0] * 3} and fit.freedom == 0.0 and not fit.enough
    np.testing.assert_allclose(fit.apply(content[0]), np.clip(style[0], 0, 1), atol=0.02)


def _corpus_images(look, per_side, seed=3):
    """``per_side`` corpus photos as they are and ``per_side`` others with ``look`` (float [..., 3]
    -> [..., 3]): two lists of uint8 HWC images, each photo its own scene."""
    photos = [p.path for p in corpus_photos() if not p.people]
    order = np.random.default_rng(seed).permutation(len(photos))
    content = _photos([photos[i] for i in order[:per_side]])
    style = [np.rint(look(s / 255.0) * 255).astype(np.uint8)
             for s in _photos([photos[i] for i in order[per_side: 2 * per_side]])]
    return content, style


def _corpus_sides(look, per_side, seed=3):
    """:func:`_corpus_images` as scene-group pixels for :func:`fit_by_evidence`, a group per photo."""
    content, style = _corpus_images(look, per_side, seed)
    labels = [str(i) for i in range(per_side)]
    return group_pixels(content, labels), group_pixels(style, labels)


def _portrait_psnr(fn, look) -> float:
    tests = [np.asarray(p, np.float64).reshape(-1, 3) / 255.0 for p in _photos(people_photos())]
    return float(np.mean([_psnr(np.clip(fn(t), 0, 1), look(t)) for t in tests]))


def test_more_scene_groups_give_a_better_start_and_more_of_it_is_the_data():
    """The learning curve in small: the same channel-mixing look from 6 and from 40 corpus photos
    a side (distinct scenes). With more scene groups the statistics agree better, the data's
    share of the affine stage grows, and the start carries the look to the held-out portraits
    clearly better."""
    few = fit_by_evidence(*_corpus_sides(_mix, 6), knots=32)
    many = fit_by_evidence(*_corpus_sides(_mix, 40), knots=32)
    assert few.enough and many.enough
    assert np.mean(many.kept["affine"]) > np.mean(few.kept["affine"]), (few.describe(), many.describe())
    assert _portrait_psnr(many.apply, _mix) >= _portrait_psnr(few.apply, _mix) + 2.0


def test_a_black_and_white_look_stays_black_and_white():
    """A monochrome style (a red-leaning black-and-white mix): the affine stage is the luma mix
    scaled per channel around the grey-levels fit, so no colour comes back: the portraits come out
    grey, and closer to the look than doing nothing."""
    weights = np.array([0.6, 0.35, 0.05])

    def mono(rgb01):
        return np.repeat(np.clip((rgb01 @ weights - 0.03) / 0.9, 0, 1)[..., None], 3, axis=-1)

    fit = fit_by_evidence(*_corpus_sides(mono, 20), knots=32, monochrome=True)
    assert fit.enough
    rows = fit.matrix * (1.0 / fit.matrix.sum(axis=1, keepdims=True))
    assert np.abs(rows - rows.mean(axis=0)).max() < 0.05, fit.matrix
    out = fit.apply(np.asarray(_photos(people_photos()[:1])[0], np.float64).reshape(-1, 3) / 255.0)
    assert np.abs(out - out.mean(axis=1, keepdims=True)).max() < 0.02
    assert _portrait_psnr(fit.apply, mono) > _portrait_psnr(lambda x: x, mono) + 1.0


def test_group_pixels_pools_each_scene_group():
    imgs = [np.full((4, 4, 3), v, np.uint8) for v in (0, 255, 51)]
    groups = group_pixels(imgs, ["a", "b", "a"])
    assert [len(g) for g in groups] == [32, 16]
    with pytest.raises(ValueError, match="labels"):
        group_pixels(imgs, ["a"])


def test_a_channel_mixing_look_from_corpus_photos_beats_the_per_channel_fits():
    """30 corpus photos a side (distinct scenes), scored on the album's portraits, which are in
    neither folder: the evidence start's affine stage is mostly the data's, mixes the channels,
    and beats levels and per-channel histogram matching of the same folders by a clear margin."""
    content, style = _corpus_images(_mix, 30)
    fit = fit_by_evidence(group_pixels(content, [str(i) for i in range(30)]),
                          group_pixels(style, [str(i) for i in range(30)]), knots=32)
    assert min(fit.kept["affine"]) > 0.5, fit.describe()
    off_diagonal = fit.matrix - np.diag(np.diag(fit.matrix))
    assert np.abs(off_diagonal).sum() > 0.5, fit.matrix  # MIX moves 0.65 of each channel to the others

    cpx, spx = baselines.pixels01(content), baselines.pixels01(style)
    scale, offset = baselines.levels_fit(cpx, spx)
    curves = baselines.quantile_curves(cpx, spx, 256)
    grid = np.linspace(0, 1, 256)
    evidence = _portrait_psnr(fit.apply, _mix)
    levels = _portrait_psnr(lambda x: x * scale + offset, _mix)
    hist = _portrait_psnr(lambda x: np.stack([np.interp(x[:, c], grid, curves[c]) for c in range(3)], axis=1), _mix)
    assert evidence >= max(levels, hist) + 1.0, (evidence, levels, hist)
