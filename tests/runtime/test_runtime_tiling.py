"""Any size in, same size out: padding small/odd images, seamless tiles for big ones, strength."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styleforge.runtime import Stylizer, load_manifest, open_bundle
from styleforge.runtime.bundle_files import file_facts
from styleforge.runtime.metrics import psnr
from styleforge.runtime.tiling import ramp_weights, tile_starts

TILE = 64


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from styleforge.photo.album import album_paths

    return np.asarray(Image.open(album_paths()[0]).convert("RGB"))


@pytest.fixture(scope="module")
def stylizer(tiny_bundle) -> Stylizer:
    return open_bundle(tiny_bundle, artifact="tflite_fp32")


@pytest.mark.parametrize("length,tile,overlap,align", [(200, 64, 16, 8), (296, 64, 16, 8), (6000, 64, 16, 8), (72, 64, 16, 8), (1001, 512, 64, 1), (64, 64, 16, 8)])
def test_tile_starts_cover_overlap_and_align(length, tile, overlap, align):
    starts = tile_starts(length, tile, overlap, align)
    assert starts[0] == 0 and starts[-1] + tile == length
    assert all(s % align == 0 for s in starts)
    gaps = [starts[i] + tile - starts[i + 1] for i in range(len(starts) - 1)]
    assert all(g >= overlap for g in gaps), gaps
    assert all(g < tile for g in gaps)  # every tile brings new pixels


def test_ramps_are_positive_and_sum_to_one_over_an_overlap():
    a, b = ramp_weights(64, 0, 16), ramp_weights(64, 16, 0)
    assert (a > 0).all() and (b > 0).all()
    np.testing.assert_allclose(a[48:] + b[:16], 1.0, atol=1e-6)  # Hann halves are complementary
    assert a[:48].min() == 1.0


@pytest.mark.parametrize("shape", [(37, 61, 3), (1, 1, 3), (5, 200, 3), (64, 64, 3), (65, 129, 3), (130, 70, 3)])
def test_odd_and_small_sizes_keep_their_size(stylizer, photo, shape):
    h, w, _ = shape
    img = np.ascontiguousarray(photo[100 : 100 + h, 200 : 200 + w])
    out = stylizer.stylize(img)
    assert out.shape == img.shape and out.dtype == np.uint8
    if h * w > 100:
        assert np.abs(out.astype(np.int16) - img).mean() > 1.0  # actually stylized, not passed through


def test_strength_blends_and_zero_is_exact(stylizer, photo):
    img = np.ascontiguousarray(photo[:150, :170])
    assert np.array_equal(stylizer.stylize(img, strength=0.0), img)
    full = stylizer.stylize(img, strength=1.0).astype(np.float32)
    half = stylizer.stylize(img, strength=0.5).astype(np.float32)
    assert np.abs(half - (img + full) / 2).max() <= 1.0
    with pytest.raises(ValueError, match="strength"):
        stylizer.stylize(img, strength=1.5)


def _context_model():
    """A seeded conv net with a ~20 px receptive field and a stride-2 stage: tiles see borders."""
    import torch
    from torch import nn

    class Context(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(3, 8, 5, padding=2), nn.ReLU(), nn.Conv2d(8, 8, 5, stride=2, padding=2), nn.ReLU(),
                nn.Upsample(scale_factor=2, mode="bilinear"), nn.Conv2d(8, 3, 5, padding=2),
            )

        def forward(self, x):
            return torch.tanh(x + 0.5 * self.body(x))

    torch.manual_seed(0)
    return Context().eval()


def _dynamic_bundle(model, tiny_bundle: Path, out: Path) -> Path:
    """A one-artifact bundle: ``model`` as ONNX with dynamic H x W, contract copied from tiny_bundle."""
    from styleforge.export.onnx_export import export_onnx

    out.mkdir()
    export_onnx(model, out / "dynamic.onnx", (TILE, TILE), dynamic=True)
    manifest = load_manifest(tiny_bundle)
    onnx = manifest.artifacts["onnx"]
    size_bytes, sha256 = file_facts(out / "dynamic.onnx")
    dynamic = dataclasses.replace(
        onnx, file="dynamic.onnx", size_bytes=size_bytes, sha256=sha256,
        input=dataclasses.replace(onnx.input, shape=(1, 3, None, None)),
        output=dataclasses.replace(onnx.output, shape=(1, 3, None, None)),
    )
    dataclasses.replace(manifest, artifacts={"onnx": dynamic}, references=[]).save(out)
    return out


@pytest.mark.parametrize("which", ["tiny_generator", "context"])
def test_tiles_blend_without_seams(request, tiny_bundle, photo, tmp_path, which):
    """Tiled output (64 px tiles) matches one whole-image run of the same dynamic-size model."""
    model = request.getfixturevalue("tiny_generator") if which == "tiny_generator" else _context_model()
    bundle = _dynamic_bundle(model, tiny_bundle, tmp_path / "dyn")
    img = np.ascontiguousarray(photo[40:240, 100:396])  # 200 x 296: several tiles each way
    whole = open_bundle(bundle, tile=512).stylize(img)  # one tile: the ground truth
    assert np.abs(whole.astype(np.int16) - img).mean() > 2.0
    tiled_stylizer = open_bundle(bundle, tile=TILE, tile_overlap=16)
    tiled = tiled_stylizer.stylize(img)
    diff = np.abs(whole.astype(np.int16) - tiled.astype(np.int16))
    stride = tiled_stylizer.stride
    ys, xs = tile_starts(200, TILE, 16, stride)[1:], tile_starts(296, TILE, 16, stride)[1:]
    borders = np.zeros(diff.shape[:2], bool)  # bands around every tile edge
    for y in ys + [y + TILE for y in ys[:-1]]:
        borders[max(0, y - 4) : y + 4] = True
    for x in xs + [x + TILE for x in xs[:-1]]:
        borders[:, max(0, x - 4) : x + 4] = True
    assert diff[borders].max() <= 2, f"seam: {diff[borders].max()} levels at tile borders"
    assert psnr(whole, tiled) >= 55.0

    if which == "context":
        # The same check fails for naive tiling (hard cuts, no overlap, no stride alignment),
        # so the bound above is a real test.
        naive = np.empty_like(img)
        run = open_bundle(bundle, tile=TILE, tile_overlap=0)
        for y in range(0, 200, 50):
            for x in range(0, 296, 74):
                naive[y : y + 50, x : x + 74] = run.stylize(np.ascontiguousarray(img[y : y + 50, x : x + 74]))
        assert np.abs(whole.astype(np.int16) - naive).max() > 2
