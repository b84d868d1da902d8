"""The runtime's LUT path (numpy + Pillow only): .cube/HALD files, the 8-bit table, 16-bit, Stylizer.

Reference implementations here are other people's code: Pillow's ``ImageFilter.Color3DLUT``
(trilinear, fixed-point C) for 8-bit pixels, and our float32 trilinear for the exact value.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styleforge.runtime import lut as rlut
from styleforge.runtime import open_bundle
from styleforge.runtime.contract import BundleError


def asymmetric_lut(size: int = 33) -> rlut.Lut3D:
    """Each output channel depends on the inputs differently, so any axis mix-up shows."""
    t = rlut.identity_table(size)
    r, g, b = t[..., 0], t[..., 1], t[..., 2]
    table = np.stack([r**0.6 * 0.9 + 0.1 * b, 0.2 + 0.6 * g + 0.2 * r * b, b**1.8 * 0.8 + 0.15 * r], axis=-1)
    return rlut.Lut3D(table, "asymmetric")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from styleforge.photo.album import album_paths

    img = Image.open(album_paths()[0]).convert("RGB")
    return np.asarray(img.resize((img.width // 2 | 1, img.height // 2 | 1)))  # odd sizes on purpose


def test_cube_round_trip_and_red_fastest(tmp_path):
    lut = asymmetric_lut(17)
    path = rlut.write_cube(lut, tmp_path / "a.cube")
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[:4] == ['TITLE "asymmetric"', "LUT_3D_SIZE 17", "DOMAIN_MIN 0.0 0.0 0.0", "DOMAIN_MAX 1.0 1.0 1.0"]
    second = np.array([float(v) for v in lines[5].split()])  # the node r=1, g=0, b=0
    np.testing.assert_allclose(second, lut.table[1, 0, 0], atol=1e-6)
    back = rlut.read_cube(path)
    assert back.size == 17 and back.title == "asymmetric"
    np.testing.assert_allclose(back.table, lut.table, atol=1e-6)


def test_read_cube_refuses_what_it_cannot_honour(tmp_path):
    bad = tmp_path / "bad.cube"
    bad.write_text("LUT_3D_SIZE 2\n" + "0 0 0\n" * 7)
    with pytest.raises(rlut.LutError, match="needs 8 rows, found 7"):
        rlut.read_cube(bad)
    bad.write_text("LUT_3D_SIZE 2\nDOMAIN_MAX 2 2 2\n" + "0 0 0\n" * 8)
    with pytest.raises(rlut.LutError, match="domain"):
        rlut.read_cube(bad)
    bad.write_text('# a comment\nTITLE "look #1"\nLUT_3D_INPUT_RANGE 0.0 1.0\nLUT_3D_SIZE 2\n\n' + "0.5 0.5 0.5\n" * 8)
    assert rlut.read_cube(bad).title == "look #1"
    bad.write_text("LUT_1D_SIZE 2\n0 0 0\n1 1 1\n")
    with pytest.raises(rlut.LutError, match="LUT_1D_SIZE"):
        rlut.read_cube(bad)


def test_hald_round_trip(tmp_path):
    lut = asymmetric_lut(64)
    image = rlut.hald_image(lut, level=8)
    assert image.shape == (512, 512, 3) and image.dtype == np.uint8
    Image.fromarray(image).save(tmp_path / "h.png")
    back = rlut.read_hald(tmp_path / "h.png")
    assert back.size == 64
    assert np.abs(back.table - lut.table).max() <= 0.5 / 255 + 1e-6  # 8-bit quantisation only


def test_identity_table_maps_every_8bit_colour_to_itself():
    packed = rlut.packed_table_u8(rlut.Lut3D.identity(33))
    assert np.array_equal(packed, np.arange(256**3, dtype=np.uint32))


def test_8bit_path_matches_float_trilinear_and_pillow(photo):
    lut = asymmetric_lut()
    ours = rlut.LutApplier(lut, threads=2).apply(photo)
    exact = lut(photo.astype(np.float32) / 255.0) * 255.0
    assert np.abs(ours - exact).max() <= 0.5 + 1e-3  # rounded once, from float trilinear
    pillow = np.asarray(Image.fromarray(photo).filter(rlut.pillow_filter(lut)))
    assert np.abs(ours.astype(int) - pillow).max() <= 1
    swapped = np.asarray(Image.fromarray(photo).filter(rlut.pillow_filter(rlut.Lut3D(lut.table.transpose(2, 1, 0, 3)))))
    assert np.abs(ours.astype(int) - swapped).max() > 20  # the check can fail: axes matter


def test_8bit_path_is_the_packed_table_word_for_word_on_random_pixels():
    """Uniform random pixels (every gather a cache miss, several strips, 2 threads): each output
    pixel is exactly the packed table's word for that input, the 3-byte stores overlapping
    nothing they should not."""
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (1200, 451, 3), dtype=np.uint8)  # odd width: strips end mid-word
    applier = rlut.LutApplier(asymmetric_lut(33), threads=2)
    out = applier.apply(rgb)
    words = applier.table_u8()[rgb[..., 0].astype(np.int64) | rgb[..., 1].astype(np.int64) << 8
                               | rgb[..., 2].astype(np.int64) << 16]
    expected = np.stack([(words >> shift) & 0xFF for shift in (0, 8, 16)], axis=-1).astype(np.uint8)
    assert np.array_equal(out, expected)
    assert np.array_equal(applier.apply(rgb[:, :1]), expected[:, :1])  # one pixel per row
    applier.close()


@pytest.mark.parametrize("shape", [(1, 1, 3), (1, 7, 3), (9, 1, 3), (301, 257, 3)])
def test_threads_and_odd_shapes_agree(shape):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, shape, dtype=np.uint8)
    lut = asymmetric_lut(17)
    one = rlut.LutApplier(lut, threads=1).apply(rgb)
    many = rlut.LutApplier(lut, threads=3).apply(rgb)
    assert np.array_equal(one, many)
    exact = lut(rgb.astype(np.float32) / 255.0) * 255.0
    assert np.abs(one - exact).max() <= 0.5 + 1e-3


def test_16bit_stays_16bit(photo):
    lut = asymmetric_lut()
    deep = photo.astype(np.uint16) * 257 + 100  # values between the 8-bit levels
    out = rlut.LutApplier(lut, threads=2).apply(deep)
    assert out.dtype == np.uint16
    exact = lut(deep.astype(np.float32) / 65535.0) * 65535.0
    assert np.abs(out - exact).max() <= 1.0  # float32 rounding, in 16-bit levels
    assert len(np.unique(out[..., 0] % 257)) > 100  # not 8-bit values in disguise


# ------------------------------------------------------------------------------ Stylizer


@pytest.fixture(scope="module")
def lut_bundle(tmp_path_factory) -> Path:
    from styleforge.export.lut_export import export_lut_bundle

    lut = asymmetric_lut()
    out = tmp_path_factory.mktemp("lut") / "asym"
    export_lut_bundle(lut, out, size=33, style="asymmetric", progress=False)
    return out


def test_stylizer_lut_path_full_resolution(lut_bundle, photo):
    stylizer = open_bundle(lut_bundle, artifact="lut", threads=2)
    assert stylizer.info()["backend"] == "lut" and stylizer.info()["tile"] is None
    assert type(open_bundle(lut_bundle)).__name__ == "LutStylizer"  # auto: the only runnable artifact
    out = stylizer.stylize(photo)
    exact = asymmetric_lut()(photo.astype(np.float32) / 255.0) * 255.0
    assert out.shape == photo.shape and np.abs(out - exact).max() <= 1.0
    half = stylizer.stylize(photo, strength=0.5).astype(np.float32)
    assert np.abs(half - (photo + 0.5 * (exact - photo))).max() <= 1.0
    rgba = Image.fromarray(photo).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    styled = stylizer.stylize(rgba)
    assert styled.mode == "RGBA" and styled.getchannel("A").tobytes() == rgba.getchannel("A").tobytes()


@pytest.mark.parametrize("strength", [1.0, 0.5])
def test_pil_images_in_pillows_memory_match_the_array_path(lut_bundle, photo, tmp_path, strength):
    """An RGB/RGBA PIL image goes through the LUT in Pillow's own memory (no array conversions):
    byte for byte the array path's pixels, alpha kept, ICC kept, Pillow's pad byte (255) kept,
    and a lazily opened file decoded once before the strip threads read it."""
    stylizer = open_bundle(lut_bundle, artifact="lut", threads=3)
    expected = stylizer.stylize(photo, strength)
    rgb = Image.fromarray(photo)
    rgb.info["icc_profile"] = b"icc"
    out = stylizer.stylize(rgb, strength)
    assert out.mode == "RGB" and out.size == rgb.size and out.info == {"icc_profile": b"icc"}
    if hasattr(Image, "fromarrow"):  # Pillow 11.2+: the in-memory path ran (else the array path did)
        assert stylizer.applier.apply_image(rgb, strength) is not None
    assert np.array_equal(np.asarray(out), expected)
    assert np.array_equal(np.frombuffer(out.tobytes("raw", "RGBX"), np.uint8)[3::4], np.full(photo.shape[0] * photo.shape[1], 255))
    alpha = np.random.default_rng(5).integers(0, 256, photo.shape[:2], dtype=np.uint8)
    rgba = Image.fromarray(np.dstack([photo, alpha]), "RGBA")
    out = stylizer.stylize(rgba, strength)
    assert out.mode == "RGBA" and np.array_equal(np.asarray(out), np.dstack([expected, alpha]))
    Image.fromarray(photo).save(tmp_path / "p.png")
    with Image.open(tmp_path / "p.png") as lazy:
        assert np.array_equal(np.asarray(stylizer.stylize(lazy, strength)), expected)
    one_row = Image.fromarray(photo[:1])
    assert np.array_equal(np.asarray(stylizer.stylize(one_row, strength)), expected[:1])
    out.paste((1, 2, 3, 4), (0, 0, 2, 2))  # the result is the caller's: writable (copy on write)
    assert out.getpixel((0, 0)) == (1, 2, 3, 4)
    stylizer.close()


def test_stylizer_refuses_a_replaced_cube(lut_bundle, tmp_path):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(lut_bundle, copy)
    rlut.write_cube(rlut.Lut3D.identity(33), copy / "look.cube")
    with pytest.raises(BundleError, match="look.cube: is .* bytes, the manifest says"):  # size first, then sha256
        open_bundle(copy, artifact="lut")


def test_16bit_tiff_file_stays_16bit(lut_bundle, photo, tmp_path):
    tifffile = pytest.importorskip("tifffile", reason="tifffile (optional) reads 16-bit RGB TIFF")
    deep = photo.astype(np.uint16) * 257 + 77
    icc = b"\x00\x00\x01\x00fake-icc-profile-bytes"
    tifffile.imwrite(tmp_path / "in.tif", deep, photometric="rgb", extratags=[(34675, 7, len(icc), icc, True)])
    stylizer = open_bundle(lut_bundle, artifact="lut")
    stylizer.stylize_file(tmp_path / "in.tif", tmp_path / "out.tif")
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        out = tif.pages[0].asarray()
        assert bytes(tif.pages[0].tags[34675].value) == icc
    assert out.dtype == np.uint16 and out.shape == deep.shape
    exact = asymmetric_lut()(deep.astype(np.float32) / 65535.0) * 65535.0
    assert np.abs(out - exact).max() <= 1.0
    stylizer.stylize_file(tmp_path / "in.tif", tmp_path / "out.png")  # other formats: the 8-bit path
    assert Image.open(tmp_path / "out.png").mode == "RGB"


def test_stylize_cli_and_no_torch(lut_bundle, photo, tmp_path):
    Image.fromarray(photo).save(tmp_path / "p.jpg", quality=95)
    code = (
        "import sys\n"
        "from styleforge.cli import main\n"
        f"rc = main(['stylize', {str(lut_bundle)!r}, {str(tmp_path / 'p.jpg')!r}, '--out', {str(tmp_path / 'o')!r},"
        " '--artifact', 'lut', '--quiet'])\n"
        "assert rc == 0, rc\n"
        "assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules, 'heavy import'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "lut_cube on lut" in proc.stdout
    assert Image.open(tmp_path / "o" / "p.jpg").size == (photo.shape[1], photo.shape[0])
