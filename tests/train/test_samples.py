"""Offline sample photos: real colour photographs shipped inside installed packages."""

import numpy as np
from PIL import Image

from styleforge.train.samples import portrait_photos, sample_photos, scene_of


def test_sample_photos_are_real_colour_photos():
    photos = sample_photos()
    assert len(photos) >= 5, photos
    assert photos == sorted(photos, key=lambda p: (p.name, str(p)))
    assert sample_photos() == photos  # deterministic
    for path in photos:
        assert path.is_file()
        with Image.open(path) as img:
            assert min(img.size) >= 256, (path.name, img.size)
            rgb = np.asarray(img.convert("RGB").resize((64, 64)), dtype=np.int16)
        saturation = float(np.mean(rgb.max(axis=-1) - rgb.min(axis=-1)))
        assert saturation > 10, (path.name, saturation)  # greyscale images have 0


def test_excludes_greyscale_and_synthetic_files():
    names = {p.name for p in sample_photos()}
    for not_a_photo in ("camera.png", "color.png", "chessboard_RGB.png", "logo.png", "moon.png"):
        assert not_a_photo not in names
    assert {"astronaut.png", "chelsea.png", "coffee.png"} <= names


def test_portraits_are_a_subset_with_faces():
    portraits = portrait_photos()
    assert {p.name for p in portraits} >= {"astronaut.png"}
    assert set(portraits) <= set(sample_photos())
    assert "chelsea.png" not in {p.name for p in portraits}  # a cat is not a portrait


def test_stereo_pair_shares_a_scene():
    by_name = {p.name: p for p in sample_photos()}
    if "motorcycle_left.png" in by_name and "motorcycle_right.png" in by_name:
        assert scene_of(by_name["motorcycle_left.png"]) == scene_of(by_name["motorcycle_right.png"])
