"""The general photo loader (:mod:`styleforge.photo.photos`): paths, arrays and PIL images in,
upright uint8 RGB out, shrunk to a short side and cut to a limit."""

import numpy as np
from PIL import Image

from styleforge.photo.album import album_paths
from styleforge.photo.photos import LIMIT, SHORT_SIDE, load_photos
from styleforge.runtime.imageio import open_image, to_uint8_array


def test_paths_arrays_and_images_load_alike():
    path = album_paths()[0]
    full = to_uint8_array(open_image(path).rgb)  # upright, as every reader of the album sees it
    by_path, by_array, by_image = load_photos([path, full, Image.fromarray(full)], limit=3, short_side=96)
    assert min(by_path.shape[:2]) == 96 and by_path.dtype == np.uint8 and by_path.shape[2] == 3
    assert abs(by_path.shape[0] / by_path.shape[1] - full.shape[0] / full.shape[1]) < 0.02  # aspect kept
    np.testing.assert_array_equal(by_path, by_array)
    np.testing.assert_array_equal(by_path, by_image)


def test_limit_and_short_side_defaults_never_enlarge():
    small = np.zeros((40, 60, 3), np.uint8)
    photos = load_photos([small] * (LIMIT + 3))
    assert len(photos) == LIMIT and photos[0].shape == (40, 60, 3)  # smaller than SHORT_SIDE: kept
    big = np.zeros((SHORT_SIDE * 2, SHORT_SIDE * 3, 3), np.uint8)
    assert load_photos([big])[0].shape == (SHORT_SIDE, SHORT_SIDE * 3 // 2, 3)
    assert load_photos(iter([big, small]), limit=1)[0].shape[0] == SHORT_SIDE  # any iterable
