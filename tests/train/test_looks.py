"""Built-in looks: deterministic, shape-preserving, uint8, and each visibly its own look."""

import itertools

import numpy as np
import pytest

from styleforge.photo.album import people_photos
from styleforge.photo.looks import LOOKS, apply_look
from styleforge.runtime.imageio import open_image, to_uint8_array


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    img = open_image(people_photos()[0]).rgb.resize((160, 128))  # non-square on purpose
    return to_uint8_array(img)


@pytest.fixture(scope="module")
def looked(portrait) -> dict:
    return {name: apply_look(name, portrait) for name in LOOKS}


def test_required_looks_exist():
    assert {"film-warm", "noir", "teal-orange", "glow", "toon"} <= set(LOOKS)
    for look in LOOKS.values():
        assert look.description and look.kind in ("tone", "local", "structure")


@pytest.mark.parametrize("name", list(LOOKS))
def test_look_is_deterministic_uint8_same_shape_and_changes_the_image(name, portrait, looked):
    out = looked[name]
    assert out.dtype == np.uint8 and out.shape == portrait.shape
    np.testing.assert_array_equal(out, apply_look(name, portrait))
    if name != "sky-teal":  # hue-selective: a portrait without blue is left alone (tested below)
        assert np.mean(np.abs(out.astype(np.int16) - portrait)) > 4.0
    odd = apply_look(name, portrait[:37, :53])  # any size works
    assert odd.shape == (37, 53, 3) and odd.dtype == np.uint8


def test_sky_teal_moves_only_blue_hues(portrait, looked):
    from styleforge.photo.album import album_paths

    sea = to_uint8_array(open_image(next(p for p in album_paths() if p.stem == "skagen")).rgb.resize((160, 120)))
    moved = np.abs(apply_look("sky-teal", sea).astype(np.int16) - sea).mean()
    kept = np.abs(looked["sky-teal"].astype(np.int16) - portrait).mean()
    assert moved > 4.0 and kept < 1.5, (moved, kept)


def test_bleach_bypass_mixes_channels():
    # Two pixels with the same red value but different green/blue get different red outputs:
    # per-channel curves cannot do that.
    pixels = np.array([[[200, 40, 40], [200, 220, 220]]], dtype=np.uint8)
    out = apply_look("bleach-bypass", pixels)
    assert abs(int(out[0, 0, 0]) - int(out[0, 1, 0])) > 20


def test_looks_are_distinguishable(looked):
    for a, b in itertools.combinations(LOOKS, 2):
        if "sky-teal" in (a, b):
            continue  # equals the input on a portrait by design
        diff = np.mean(np.abs(looked[a].astype(np.int16) - looked[b]))
        assert diff > 3.0, (a, b, diff)


def test_noir_is_grey(looked):
    out = looked["noir"]
    np.testing.assert_array_equal(out[..., 0], out[..., 1])
    np.testing.assert_array_equal(out[..., 1], out[..., 2])
    assert out.std() > 40  # high contrast, not a flat grey


def test_film_warm_is_warmer_and_faded(portrait, looked):
    def warmth(img):
        return float(np.mean(img[..., 0].astype(np.float32) - img[..., 2]))

    out = looked["film-warm"]
    assert warmth(out) > warmth(portrait) + 5
    assert out.min() >= 15  # lifted blacks


def test_teal_orange_splits_shadows_and_highlights(portrait, looked):
    lum_in = portrait.astype(np.float32) @ np.array([0.299, 0.587, 0.114])
    out = looked["teal-orange"].astype(np.float32)
    src = portrait.astype(np.float32)
    shadows, highlights = lum_in < 60, lum_in > 170
    assert shadows.sum() > 100 and highlights.sum() > 100
    blue_minus_red = lambda img, m: float(np.mean(img[m][:, 2] - img[m][:, 0]))  # noqa: E731
    assert blue_minus_red(out, shadows) > blue_minus_red(src, shadows) + 3  # teal shadows
    assert blue_minus_red(out, highlights) < blue_minus_red(src, highlights) - 3  # orange highlights


def test_glow_smooths_and_brightens(portrait, looked):
    def texture(img):
        g = img.astype(np.float32).mean(axis=-1)
        return float(np.mean(np.abs(np.diff(g, axis=0))) + np.mean(np.abs(np.diff(g, axis=1))))

    out = looked["glow"]
    assert texture(out) < 0.9 * texture(portrait)
    assert out.mean() > portrait.mean()


def _corners_and_centre(img: np.ndarray) -> tuple[float, float]:
    img = img.astype(np.float32)
    corners = np.concatenate([img[:20, :20], img[:20, -20:], img[-20:, :20], img[-20:, -20:]])
    h, w = img.shape[:2]
    return float(corners.mean()), float(img[h // 2 - 20:h // 2 + 20, w // 2 - 20:w // 2 + 20].mean())


def test_portrait_retouch_smooths_skin_warms_and_darkens_corners(portrait, looked):
    from scipy.ndimage import uniform_filter

    from styleforge.photo.looks import _skin_weight

    out = looked["portrait-retouch"]
    skin = _skin_weight(portrait.astype(np.float32) / 255.0) > 0.5

    def fine_detail(img):  # pores and noise: the luma minus its 3x3 mean, on skin
        g = img.astype(np.float32).mean(axis=-1)
        return float(np.abs(g - uniform_filter(g, 3))[skin].mean())

    assert skin.mean() > 0.05 and fine_detail(out) < 0.95 * fine_detail(portrait)
    assert np.mean(out[..., 0].astype(np.float32) - out[..., 2]) > np.mean(
        portrait[..., 0].astype(np.float32) - portrait[..., 2]) + 5  # warmer
    (corners_out, centre_out), (corners_in, centre_in) = _corners_and_centre(out), _corners_and_centre(portrait)
    assert corners_out / corners_in < centre_out / centre_in - 0.15  # vignette


def test_dreamy_bloom_lifts_blacks_and_brightens(portrait, looked):
    out = looked["dreamy-bloom"]
    assert out.min() >= 15 and portrait.min() < 5  # matte
    assert out.mean() > portrait.mean() + 10  # bloom

def test_toon_flattens_texture_more_than_glow(looked, portrait):
    lum = looked["toon"].astype(np.float32).mean(axis=-1)
    # Flat regions: most neighbouring pixels are (nearly) equal after banding and smoothing.
    flat_toon = np.mean(np.abs(np.diff(lum, axis=1)) < 1.0)
    flat_in = np.mean(np.abs(np.diff(portrait.astype(np.float32).mean(axis=-1), axis=1)) < 1.0)
    assert flat_toon > flat_in + 0.15


@pytest.mark.parametrize("name", [n for n, look in LOOKS.items() if look.kind == "tone"])
def test_tone_looks_are_pointwise(name, portrait):
    """A pointwise look commutes with any shuffling of pixels: learnable by 1x1 convolutions."""
    perm = np.random.default_rng(0).permutation(portrait.shape[0] * portrait.shape[1])
    shuffled = portrait.reshape(-1, 3)[perm].reshape(portrait.shape)
    expected = apply_look(name, portrait).reshape(-1, 3)[perm].reshape(portrait.shape)
    np.testing.assert_array_equal(apply_look(name, shuffled), expected)


def test_bad_inputs_are_clear_errors(portrait):
    with pytest.raises(ValueError, match="unknown look"):
        apply_look("sepia-nope", portrait)
    with pytest.raises(ValueError, match="uint8"):
        apply_look("noir", portrait.astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        apply_look("noir", portrait[..., 0])
