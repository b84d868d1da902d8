"""The look recipe as data: parsing (untrusted), describing, running (numpy)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from styleforge.photo.album import album_paths
from styleforge.runtime.look_ops import apply_recipe
from styleforge.runtime.lut import identity_table
from styleforge.runtime.recipe import MAX_STEPS, RecipeError, colour_recipe, parse_recipe

GOOD = {"version": 1, "steps": [
    {"op": "smooth_skin", "amount": 0.4, "radius": 0.012, "edge": 0.05},
    {"op": "colour_lut", "lut": "look.cube"},
    {"op": "bloom", "strength": 0.5, "threshold": 0.62, "radius": 0.04},
    {"op": "vignette", "amount": -0.3, "midpoint": 0.5, "roundness": 0.0, "feather": 0.5,
     "center_x": 0.5, "center_y": 0.5},
    {"op": "grain", "amount": 0.05, "size": 0.002, "luma_dependence": 0.5, "seed": 7},
]}


def _photo(side: int = 96) -> np.ndarray:
    im = Image.open(album_paths()[0]).convert("RGB")
    im.thumbnail((side * 2, side))
    return np.asarray(im, dtype=np.float32) / 255.0


def _warm_table() -> np.ndarray:
    table = identity_table(9).copy()
    table[..., 0] = np.clip(table[..., 0] * 1.1 + 0.02, 0, 1)
    return table


def test_a_recipe_round_trips_through_json_and_reads_for_a_person():
    recipe = parse_recipe(json.loads(json.dumps(GOOD)))
    assert recipe.to_json() == GOOD
    lines = recipe.describe()
    assert lines[0].startswith("1. smooth_skin") and "1.2% of the short side" in lines[0]
    assert lines[1] == "2. colour_lut  look.cube" and "seed 7" in lines[4]
    assert not recipe.is_colour_only and colour_recipe("look.cube").is_colour_only


def test_running_a_recipe_is_the_operators_in_order():
    rgb = _photo()
    table = _warm_table()
    recipe = parse_recipe(GOOD).with_tables({"look.cube": table})
    steps = [(s["op"], {k: v for k, v in s.items() if k not in ("op", "lut")}) for s in GOOD["steps"]]
    steps[1] = ("colour_lut", {"table": table})
    expected = apply_recipe(rgb, steps)
    out = recipe.apply(rgb)
    assert out.dtype == np.float32 and out.shape == rgb.shape
    np.testing.assert_allclose(out, expected, atol=1e-6)
    half = recipe.apply(rgb, strength=0.5)
    np.testing.assert_allclose(half, rgb + 0.5 * (out - rgb), atol=1e-6)


def test_a_missing_table_is_an_error_not_a_guess():
    with pytest.raises(RecipeError, match="was not loaded"):
        parse_recipe(GOOD).apply(_photo(32))


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r.update(version=2), "version 2"),
    (lambda r: r.update(steps=[]), "non-empty"),
    (lambda r: r.update(extra=1), "unknown keys"),
    (lambda r: r["steps"].append({"op": "deep_dream"}), "unknown operator 'deep_dream'"),
    (lambda r: r["steps"][0].update(amount=float("nan")), "finite"),
    (lambda r: r["steps"][0].update(amount=float("inf")), "finite"),
    (lambda r: r["steps"][0].update(amount="0.4"), "must be a number"),
    (lambda r: r["steps"][2].update(radius=50.0), "outside"),
    (lambda r: r["steps"][2].pop("radius"), "missing"),
    (lambda r: r["steps"][2].update(sigma=1.0), "unknown parameters"),
    (lambda r: r["steps"][1].pop("lut"), "needs \"lut\""),
    (lambda r: r["steps"][0].update(lut="x.cube"), "only colour_lut"),
    (lambda r: r["steps"][4].update(seed=-1), "seed"),
    (lambda r: r["steps"][4].update(seed=1.5), "seed"),
    (lambda r: r.update(steps=[r["steps"][0]] * (MAX_STEPS + 1)), "more than"),
    (lambda r: r.update(steps=[r["steps"][0]] * 5000), "more than"),
    (lambda r: r["steps"].__setitem__(0, "clarity"), "must be an object"),
])
def test_hostile_recipes_are_refused_with_one_line(mutate, message):
    data = json.loads(json.dumps(GOOD))
    mutate(data)
    with pytest.raises(RecipeError, match=message) as info:
        parse_recipe(data)
    assert "\n" not in str(info.value)
