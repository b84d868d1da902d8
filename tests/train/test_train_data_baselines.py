"""Classical baselines move an image's colour statistics toward the style set."""

import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2lab

from styleforge.photo.album import album_paths
from styleforge.photo.baselines import histogram_match, reinhard_transfer, style_reference
from styleforge.photo.looks import apply_look
from styleforge.runtime.imageio import open_image, to_uint8_array


def _photo(i: int) -> np.ndarray:
    return to_uint8_array(open_image(album_paths()[i]).rgb.resize((96, 96)))


@pytest.fixture(scope="module")
def style_set() -> list:
    return [apply_look("teal-orange", apply_look("film-warm", _photo(i))) for i in (1, 2, 3)]


def _lab_stats(images):
    lab = np.concatenate([rgb2lab(img).reshape(-1, 3) for img in images])
    return lab.mean(axis=0), lab.std(axis=0)


def test_reinhard_matches_lab_mean_and_std(style_set):
    img = _photo(0)
    out = reinhard_transfer(img, style_set)
    assert out.dtype == np.uint8 and out.shape == img.shape
    style_mean, style_std = _lab_stats(style_set)
    in_mean, _ = _lab_stats([img])
    out_mean, out_std = _lab_stats([out])
    assert np.linalg.norm(out_mean - style_mean) < 0.25 * np.linalg.norm(in_mean - style_mean)
    np.testing.assert_allclose(out_std, style_std, rtol=0.2)


def test_histogram_match_moves_channel_distributions(style_set):
    img = _photo(0)
    out = histogram_match(img, style_set)
    assert out.dtype == np.uint8 and out.shape == img.shape
    pooled = np.concatenate([s.reshape(-1, 3) for s in style_set])

    def cdf_gap(x):
        gaps = []
        for c in range(3):
            cx = np.cumsum(np.bincount(x.reshape(-1, 3)[:, c], minlength=256)) / x[..., 0].size
            cs = np.cumsum(np.bincount(pooled[:, c], minlength=256)) / len(pooled)
            gaps.append(np.abs(cx - cs).mean())  # earth mover distance / 256
        return max(gaps)

    assert cdf_gap(out) < 0.25 * cdf_gap(img), (cdf_gap(out), cdf_gap(img))


def test_accepts_paths_and_a_precomputed_reference(style_set, tmp_path):
    paths = []
    for i, s in enumerate(style_set):
        paths.append(tmp_path / f"s{i}.png")
        Image.fromarray(s).save(paths[-1])
    ref = style_reference(paths)
    img = _photo(0)
    np.testing.assert_array_equal(reinhard_transfer(img, ref), reinhard_transfer(img, style_set))
    np.testing.assert_array_equal(histogram_match(img, ref), histogram_match(img, paths))
    with pytest.raises(ValueError):
        reinhard_transfer(img.astype(np.float32), ref)


def test_set_to_set_mapping_recovers_a_global_grade():
    """Content set -> style set statistics (the same scenes, graded) transfer the grade itself."""
    from styleforge.runtime.metrics import psnr

    content = [_photo(i) for i in (1, 2, 3)]
    style = [apply_look("film-warm", c) for c in content]
    img = _photo(0)
    truth = apply_look("film-warm", img)
    identity = psnr(img, truth)
    for method in (reinhard_transfer, histogram_match):
        per_image = psnr(method(img, style), truth)
        set_to_set = psnr(method(img, style, content_images=content), truth)
        assert set_to_set > identity + 3.0 and set_to_set > per_image, (method.__name__, identity, per_image, set_to_set)
