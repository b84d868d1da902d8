"""Faithful I/O: image kinds in the API, alpha/ICC/EXIF carried to output files, formats, quality."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from styleforge.runtime import Stylizer, open_bundle

ORIENTATION, MAKE = 0x0112, 0x010F


@pytest.fixture(scope="module")
def stylizer(tiny_bundle) -> Stylizer:
    return open_bundle(tiny_bundle)


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    from styleforge.photo.album import album_paths

    return Image.open(album_paths()[0]).convert("RGB").resize((120, 90))


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_api_keeps_image_kinds(stylizer, photo):
    rgb = np.asarray(photo)
    grey = np.asarray(photo.convert("L"))
    rgba = np.dstack([rgb, np.linspace(0, 255, rgb.shape[1], dtype=np.uint8)[None].repeat(rgb.shape[0], 0)])

    assert stylizer.stylize(grey).shape == (90, 120, 3)  # greyscale in, colour out (the style adds colour)
    out4 = stylizer.stylize(rgba)
    assert out4.shape == rgba.shape and np.array_equal(out4[..., 3], rgba[..., 3])
    assert np.array_equal(out4[..., :3], stylizer.stylize(rgb))

    pil_rgba = Image.fromarray(rgba, "RGBA")
    pil_rgba.info["icc_profile"] = _srgb_icc()
    out = stylizer.stylize(pil_rgba)
    assert isinstance(out, Image.Image) and out.mode == "RGBA" and out.size == (120, 90)
    assert np.array_equal(np.asarray(out.getchannel("A")), rgba[..., 3])
    assert out.info["icc_profile"] == pil_rgba.info["icc_profile"]
    assert stylizer.stylize(photo.convert("L")).mode == "RGB"
    assert stylizer.stylize(photo.convert("P")).size == (120, 90)

    batch = stylizer.stylize_batch([photo, rgb, photo.resize((33, 47))])
    assert [np.asarray(b).shape for b in batch] == [(90, 120, 3), (90, 120, 3), (47, 33, 3)]
    with pytest.raises(ValueError, match="uint8"):
        stylizer.stylize(rgb.astype(np.float32))


def test_png_alpha_and_icc_round_trip(stylizer, photo, tmp_path):
    src = tmp_path / "in.png"
    rgba = photo.convert("RGBA")
    alpha = Image.linear_gradient("L").resize(photo.size)
    rgba.putalpha(alpha)
    icc = _srgb_icc()
    rgba.save(src, icc_profile=icc)
    for suffix in (".png", ".webp", ".tif"):
        dst = stylizer.stylize_file(src, tmp_path / f"out{suffix}")
        out = Image.open(dst)
        assert out.mode == "RGBA" and out.size == photo.size
        assert out.info.get("icc_profile") == icc
        if suffix != ".webp":  # lossy WebP may touch alpha
            assert np.array_equal(np.asarray(out.getchannel("A")), np.asarray(alpha))
    # JPEG cannot hold alpha: it is dropped, the colour is still written
    assert Image.open(stylizer.stylize_file(src, tmp_path / "out.jpg")).mode == "RGB"
    assert not list(tmp_path.glob(".*tmp"))  # no temp files left behind


def test_jpeg_exif_orientation_icc_and_quality(stylizer, photo, tmp_path):
    src = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # camera held sideways: display rotated 90 degrees clockwise
    exif[MAKE] = "styleforge-test-camera"
    icc = _srgb_icc()
    photo.save(src, exif=exif.tobytes(), icc_profile=icc, quality=95)

    dst = stylizer.stylize_file(src, tmp_path / "out.jpg", quality=95)
    out = Image.open(dst)
    assert out.size == (90, 120)  # pixels upright, as the viewer showed them
    assert out.getexif()[ORIENTATION] == 1  # ... so the tag must not rotate them again
    assert out.getexif()[MAKE] == "styleforge-test-camera"
    assert out.info.get("icc_profile") == icc

    small = stylizer.stylize_file(src, tmp_path / "small.jpg", quality=30)
    assert small.stat().st_size < dst.stat().st_size


@pytest.mark.parametrize("mode", ["CMYK", "I;16", "LA", "1"])
def test_unusual_modes_are_converted(stylizer, photo, tmp_path, mode):
    src = tmp_path / ("in.tif" if mode in ("CMYK", "I;16") else "in.png")
    if mode == "I;16":
        Image.fromarray(np.asarray(photo.convert("L"), np.uint16) * 257).save(src)
    else:
        photo.convert(mode).save(src)
    out = Image.open(stylizer.stylize_file(src, tmp_path / "out.png"))
    assert out.size == photo.size
    assert out.mode == ("RGBA" if mode == "LA" else "RGB")
    buf = io.BytesIO()
    out.save(buf, "PNG")
    assert buf.tell() > 0


def test_never_overwrites_the_input(stylizer, photo, tmp_path):
    src = tmp_path / "keep.png"
    photo.save(src)
    before = src.read_bytes()
    with pytest.raises(ValueError, match="overwrite"):
        stylizer.stylize_file(src, src)
    assert src.read_bytes() == before
