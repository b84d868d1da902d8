"""The look recipe in strips (runtime/look_strips.py): the whole-photo operators' numbers, the same
output whatever the strips and threads, the 8-bit path within its stated bound, bounded memory.

Album photos at small odd sizes; radii chosen so the fields sit at pyramid levels 0 to 4 (a level
above ``STRIP_LEVEL`` exercises the strips' own 2x2 means and the whole-photo rest of the pyramid).
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styleforge.runtime import look_ops
from styleforge.runtime.look_blur import pyramid_level
from styleforge.runtime.look_strips import STRIP_LEVEL, RecipeRenderer, _make_op
from styleforge.runtime.lut import identity_table
from styleforge.runtime.recipe import parse_recipe

ALBUM = Path(__file__).resolve().parents[2] / "data" / "album"

# every operator, radii from sub-pixel (sharpen, level 0) to 15% of the short side (bloom, level 4 at 237 px)
STEPS = {
    "smooth_skin": {"amount": 0.7, "radius": 0.01, "edge": 0.05},
    "clarity": {"amount": 1.5, "radius": 0.1},
    "sharpen": {"amount": 2.0, "radius": 0.002},
    "detail": {"fine": 1.0, "medium": 0.5, "coarse": -0.5},
    "colour_lut": {"lut": "look.cube"},
    "bloom": {"strength": 0.6, "threshold": 0.6, "radius": 0.15, "r": 1.2, "g": 0.9, "b": 0.6},
    "fade": {"amount": 0.2, "r": 0.5, "g": 0.4, "b": 0.6},
    "vignette": {"amount": -0.5, "midpoint": 0.4, "roundness": -0.5, "feather": 0.3, "center_x": 0.45, "center_y": 0.55},
    "grain": {"amount": 0.05, "size": 0.02, "luma_dependence": 0.5, "seed": 2},
}
EIGHT_BIT_DB = 55.0  # uint8 path vs the float recipe (unrounded): measured 57.6-59.0 dB on 6 album photos
ROUNDING_DB = 58.9  # what rounding an exact float result to 8 bits alone costs (uniform error): for scale


def table() -> np.ndarray:
    grid = identity_table(17)
    return np.clip(grid ** np.float32([0.8, 0.95, 1.2]) * np.float32([1.05, 1.0, 0.9]) + 0.02, 0.0, 1.0)


def recipe(names, **overrides):
    steps = [{"op": name, **STEPS[name], **overrides.get(name, {})} for name in names]
    return parse_recipe({"version": 1, "steps": steps}).with_tables({"look.cube": table()})


def photo(name: str, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.open(ALBUM / name).convert("RGB").resize(size, Image.LANCZOS))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10.0 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b) ** 2))


@pytest.mark.parametrize("name", sorted(STEPS))
def test_strips_compute_the_whole_photo_operators(name):
    rgb = photo("donna.jpg", (301, 237)).astype(np.float32) / 255.0
    rng = np.random.default_rng(sorted(STEPS).index(name))
    for params in ({k: v for k, v in STEPS[name].items() if k not in ("lut", "seed")},
                   {k: rng.uniform(lo, hi) for k, (lo, hi, _) in look_ops.PARAMS[name].items()}):
        extra = {"table": table()} if name == "colour_lut" else {"seed": 2} if name == "grain" else {}
        expected = np.clip(look_ops.OPS[name](rgb, **params, **extra), 0.0, 1.0)
        got = recipe([name], **{name: params}).apply(rgb, threads=2)
        # the same float32 arithmetic element for element; grain's mean and std are float64 sums here
        assert float(np.abs(got - expected).max()) <= (1e-6 if name == "grain" else 0.0), name


@pytest.mark.parametrize("radius, size, level", [(0.005, (301, 237), 0), (0.02, (301, 237), 1),
                                                 (0.05, (301, 237), 2), (0.05, (661, 647), 4)])
def test_smooth_skin_in_strips_at_every_level(radius, size, level):
    """Level 0: two passes (full-resolution statistics); level >= 1: one pass, the guided fields
    built once on the level (level 4 > STRIP_LEVEL: pooled by the strips, then on the small image).
    Either way the whole-photo operator's numbers, strips of any height."""
    rgb = photo("donna.jpg", size).astype(np.float32) / 255.0
    assert pyramid_level(radius * min(size), size[1], size[0]) == level
    params = {"amount": 0.8, "radius": radius, "edge": 0.04}
    expected = np.clip(look_ops.smooth_skin(rgb, **params), 0.0, 1.0)
    look = recipe(["smooth_skin"], smooth_skin=params)
    renderer = RecipeRenderer(look, threads=2)
    for rows in (8, 24, None):
        assert float(np.abs(renderer.render(rgb, strip_rows=rows) - expected).max()) == 0.0, rows
    op = _make_op(look.steps[0], {}, {}, size[1], size[0])
    assert len(op.stages) == (2 if level == 0 else 1)


def test_the_fields_span_the_pyramid():
    short = 237
    levels = {pyramid_level(sigma * short, short, 301) for sigma in (0.002, 0.01, 0.1, 0.15)}
    assert 0 in levels and max(levels) > STRIP_LEVEL


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_output_is_the_same_whatever_the_strips_and_threads(dtype):
    rgb8 = photo("sunset.jpg", (301, 237))
    rgb = {"uint8": rgb8, "uint16": rgb8.astype(np.uint16) * 257 + 100,
           "float32": rgb8.astype(np.float32) / 255.0}[dtype]
    look = recipe(list(STEPS))
    one = RecipeRenderer(look, threads=1)
    two = RecipeRenderer(look, threads=2, packed=one.packed_tables() if dtype == "uint8" else None)
    whole = one.render(rgb, strip_rows=1024)
    assert whole.dtype == rgb.dtype and whole.shape == rgb.shape
    for renderer, rows in ((one, 8), (two, 8), (two, 16), (two, 40), (two, None)):
        got = renderer.render(rgb, strip_rows=rows)
        np.testing.assert_array_equal(got, whole, err_msg=f"threads={renderer.threads} strip_rows={rows}")
    np.testing.assert_array_equal(two.render(rgb, strength=0.5, strip_rows=16), one.render(rgb, strength=0.5, strip_rows=1024))


@pytest.mark.parametrize("names", [["clarity", "colour_lut", "bloom", "vignette"],
                                   ["colour_lut", "clarity", "bloom", "vignette"], list(STEPS)])
def test_the_8bit_path_is_within_its_bound_of_the_float_recipe(names):
    look = recipe(names)
    renderer = RecipeRenderer(look, threads=2)
    for name in ("donna.jpg", "pool.jpg", "skagen.jpg"):
        rgb = photo(name, (331, 221))
        reference = look.apply(rgb.astype(np.float32) / 255.0) * 255.0
        got = renderer.render(rgb)
        assert psnr(got, reference) >= EIGHT_BIT_DB, (names, name, psnr(got, reference))
        assert np.abs(got - np.rint(reference)).max() <= 1.0


def test_a_first_step_lut_reads_the_8bit_pixels_exactly():
    rgb = photo("pool.jpg", (203, 141))
    got = RecipeRenderer(recipe(["colour_lut"])).render(rgb)
    exact = np.rint(np.clip(look_ops.colour_lut(rgb.astype(np.float32) / 255.0, table()), 0, 1) * 255.0)
    assert np.abs(got - exact).max() <= 1.0  # the 16-bit table's half level can tip a rounding


def test_memory_is_bounded_by_strips():
    """What a render allocates beyond its output (3 bytes a pixel) and the kept LUT results (6) is a
    few strips per thread and the small fields: the same at 0.75 and 3 MP (no full-size float)."""
    renderer = RecipeRenderer(recipe(["clarity", "colour_lut", "bloom", "vignette"]), threads=2)
    renderer.packed_tables()  # the 128 MiB table is loading, not rendering
    overheads = []
    for size in ((1000, 750), (2000, 1500)):
        rgb = photo("donna.jpg", size)
        tracemalloc.start()
        try:
            renderer.render(rgb)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        overheads.append(peak - 9 * rgb.shape[0] * rgb.shape[1])
    assert max(overheads) < 24e6, overheads  # a float32 copy of the 3 MP photo alone is 36 MB
    assert overheads[1] - overheads[0] < 4e6, overheads  # 4x the pixels, (nearly) the same overhead


def test_bad_input_is_refused():
    renderer = RecipeRenderer(recipe(["clarity"]))
    with pytest.raises(ValueError, match="expected a uint8, uint16 or float32"):
        renderer.render(np.zeros((8, 8, 4), np.uint16))
    with pytest.raises(ValueError, match="multiple of 8"):
        renderer.render(np.zeros((8, 8, 3), np.uint8), strip_rows=12)
    assert renderer.render(np.zeros((0, 5, 3), np.uint8)).shape == (0, 5, 3)


def test_a_recipe_bundle_takes_pil_images_in_pillows_own_pixels(recipe_bundle):
    """PIL in/out without the array conversions: the same bytes as the array path, alpha and ICC
    carried, at any strength."""
    from styleforge.runtime import open_bundle

    stylizer = open_bundle(recipe_bundle, artifact="recipe", threads=2)
    image = Image.open(ALBUM / "donna.jpg").convert("RGB").resize((401, 267))
    rgb = np.asarray(image)
    for strength in (1.0, 0.5):
        out = stylizer.stylize(image, strength)
        assert out.mode == "RGB" and out.size == image.size
        np.testing.assert_array_equal(np.asarray(out), stylizer.stylize(rgb, strength))
    rgba = image.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(image.size))
    rgba.info["icc_profile"] = b"profile bytes"
    out = stylizer.stylize(rgba)
    assert out.mode == "RGBA" and out.info["icc_profile"] == b"profile bytes"
    np.testing.assert_array_equal(np.asarray(out)[..., :3], stylizer.stylize(rgb))
    np.testing.assert_array_equal(np.asarray(out)[..., 3], np.asarray(rgba)[..., 3])
    assert np.asarray(image).tobytes() == rgb.tobytes()  # the input is untouched
    stylizer.close()
