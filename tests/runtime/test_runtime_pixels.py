"""The one uint8 <-> [-1, 1] conversion pair and the one PSNR definition."""

from __future__ import annotations

import numpy as np
import pytest

from styleforge.runtime.metrics import PSNR_CAP_DB, pooled_psnr, psnr
from styleforge.runtime.tensors import pixels_to_range, range_to_pixels, to_uint8


def test_pixels_round_trip_exactly_and_hit_the_range_ends():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=-1)
    x = pixels_to_range(pixels)
    assert x.dtype == np.float32 and x.min() == -1.0 and x.max() == 1.0
    np.testing.assert_allclose(x, pixels / 127.5 - 1.0, atol=1e-6)
    assert np.array_equal(to_uint8(range_to_pixels(x)), pixels)
    assert range_to_pixels(np.array([-3.0, 3.0])).tolist() == [0.0, 255.0]  # clipped, not wrapped


def test_torch_pair_matches_the_numpy_pair():
    torch = pytest.importorskip("torch")
    from styleforge.train.tensors import image_to_tensor, tensor_to_image

    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    t = image_to_tensor(rgb[:, ::-1])  # a mirrored (negative-stride) view works too
    assert t.shape == (3, 5, 7) and t.dtype == torch.float32
    np.testing.assert_array_equal(t.permute(1, 2, 0).numpy(), pixels_to_range(rgb[:, ::-1]))
    assert np.array_equal(tensor_to_image(t), rgb[:, ::-1])
    assert np.array_equal(tensor_to_image(image_to_tensor(rgb[None]))[0], rgb)


def test_pooled_psnr_is_the_psnr_of_the_mean_mse():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (3, 8, 8, 3)).astype(np.float32)
    b = a + rng.normal(0, [[[[2.0]]], [[[5.0]]], [[[9.0]]]], a.shape).astype(np.float32)
    pooled = pooled_psnr([psnr(x, y) for x, y in zip(a, b)])
    assert pooled == pytest.approx(psnr(a, b), abs=1e-6)  # same-size images: pooled MSE == MSE of all
    # one identical image must not drag the summary up to the 100 dB cap
    assert pooled_psnr([PSNR_CAP_DB, 20.0]) == pytest.approx(20.0 + 10 * np.log10(2), abs=1e-3)
