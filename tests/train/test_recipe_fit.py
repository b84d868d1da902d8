"""Learning a look recipe from pairs: known operators are recovered, a tone look stays a colour fit."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from styleforge.photo.album import album_paths
from styleforge.photo.looks import get_look
from styleforge.runtime.look_ops import apply_recipe, defaults
from styleforge.runtime.lut import identity_table
from styleforge.runtime.metrics import psnr
from styleforge.train.recipe_fit import fit_recipe

# A look made from the vocabulary with known parameters: a warm grade, a highlight bloom and a
# darkening vignette (the grade is a table, the rest are the runtime's own operators).
BLOOM = {"strength": 0.6, "threshold": 0.65, "radius": 0.03}
VIGNETTE = {**defaults("vignette"), "amount": -0.45, "midpoint": 0.45}


def _warm_table() -> np.ndarray:
    table = identity_table(17).copy()
    table[..., 0] = np.clip(table[..., 0] * 1.06 + 0.03, 0, 1)
    table[..., 2] = np.clip(table[..., 2] * 0.9, 0, 1)
    return table


KNOWN = [("colour_lut", {"table": _warm_table()}), ("bloom", BLOOM), ("vignette", VIGNETTE)]


def _photos(count: int, side: int = 192) -> list[np.ndarray]:
    out = []
    for path in album_paths()[:count]:
        im = Image.open(path).convert("RGB")
        scale = side / min(im.size)
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
        out.append(np.asarray(im, dtype=np.float32) / 255.0)
    return out


def _mean_psnr(outputs, targets) -> float:
    return float(np.mean([psnr(np.rint(o * 255), np.rint(t * 255)) for o, t in zip(outputs, targets)]))


@pytest.fixture(scope="module")
def photos():
    return _photos(10, side=128)


def test_a_look_made_of_known_operators_is_recovered_from_pairs(photos):
    train = photos[:6]
    fit = fit_recipe(train, [apply_recipe(x, KNOWN) for x in train], steps=100)
    ops = dict(fit.steps)
    assert "bloom" in ops and "vignette" in ops, fit.log
    assert fit.held_out and fit.pairs == 6
    # the parameters that define the look come back: the halo's size and the corners' darkening
    # (bloom's strength trades against its threshold and tint: a brighter mask with less strength
    # looks alike, and a slightly smaller halo with more strength; measured radius 0.019-0.03)
    assert ops["bloom"]["radius"] == pytest.approx(BLOOM["radius"], rel=0.4), fit.log
    assert 0.3 <= ops["bloom"]["strength"] <= 1.0, fit.log
    assert ops["vignette"]["amount"] == pytest.approx(VIGNETTE["amount"], abs=0.15), fit.log
    # and on photos it never saw, at a larger size, it is far beyond any colour map
    big = _photos(10, side=320)[6:]
    targets = [apply_recipe(x, KNOWN) for x in big]
    learned = _mean_psnr([apply_recipe(x, fit.steps) for x in big], targets)
    colour_only = _mean_psnr([apply_recipe(x, [KNOWN[0]]) for x in big], targets)  # the true grade alone
    assert learned >= 33.0 and learned >= colour_only + 5.0, (learned, colour_only, fit.log)


@pytest.mark.parametrize("name", ["film-warm", "teal-orange"])
def test_a_tone_look_stays_a_colour_function(photos, name):
    """No local op is kept on a tone look, even a colour op (fade) that takes over part of the colour
    from the LUT fitted beside it: the kept ops must beat the closed-form colour fit too."""
    look = get_look(name)
    targets = [np.clip(look.fn(x), 0, 1).astype(np.float32) for x in photos[:6]]
    fit = fit_recipe(photos[:6], targets, steps=40)
    assert fit.local_ops == [] and [op for op, _ in fit.steps] == ["colour_lut"], fit.log
    assert any("colour function" in line for line in fit.log)


def test_fit_needs_pairs():
    with pytest.raises(ValueError, match="at least one"):
        fit_recipe([], [])
