"""Photo folder datasets: odd files in, upright aligned [-1, 1] patches out, clear errors."""

import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from styleforge.photo.album import album_paths
from styleforge.photo.looks import apply_look
from styleforge.runtime.imageio import open_image, to_uint8_array
from styleforge.train.data import (
    ContentCrops,
    DatasetError,
    DatasetWarning,
    PairedDataset,
    StyleFolderDataset,
    UnpairedDataset,
)

PATCH = 48


def _photo(index: int, size=(120, 90)) -> Image.Image:
    return open_image(album_paths()[index]).rgb.resize(size)


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory):
    """Content folder holding every awkward kind of file a user may have."""
    root = tmp_path_factory.mktemp("odd")
    base = _photo(0)
    # EXIF orientation 6: the stored pixels are rotated; viewers (and we) rotate them upright.
    exif = Image.Exif()
    exif[0x0112] = 6
    base.transpose(Image.Transpose.ROTATE_90).save(root / "rotated.jpg", exif=exif.tobytes(), quality=95)
    base.convert("LA").save(root / "grey_alpha.png")
    base.convert("P", palette=Image.Palette.ADAPTIVE).save(root / "palette.png")
    rgba = base.copy()
    rgba.putalpha(200)
    rgba.save(root / "rgba.png")
    base.convert("CMYK").save(root / "cmyk.jpg")
    deep = (np.asarray(base.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(deep).save(root / "deep16.png")  # 16-bit greyscale PNG
    base.save(root / "photo.webp")
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg" * 10)
    buf = io.BytesIO()
    base.save(buf, format="PNG")
    (root / "truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (root / "notes.txt").write_text("not an image, not listed")
    return root


@pytest.fixture(scope="module")
def style_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("style")
    for i in (1, 2):
        Image.fromarray(apply_look("noir", to_uint8_array(_photo(i)))).save(root / f"s{i}.png")
    return root


@pytest.fixture(scope="module")
def unpaired(odd_folder, style_folder):
    with pytest.warns(DatasetWarning) as record:
        ds = UnpairedDataset(odd_folder, style_folder, patch_size=PATCH)
    assert len(record) == 1  # ONE warning for all skipped files
    ds.warning_text = str(record[0].message)
    return ds


def test_odd_modes_load_and_bad_files_are_skipped_with_one_warning(unpaired):
    names = sorted(p.name for p in unpaired.content_paths)
    assert names == ["cmyk.jpg", "deep16.png", "grey_alpha.png", "palette.png", "photo.webp", "rgba.png", "rotated.jpg"]
    assert sorted(p.name for p, _ in unpaired.skipped) == ["corrupt.jpg", "truncated.png"]
    assert "skipped 2 file(s)" in unpaired.warning_text
    assert "corrupt.jpg" in unpaired.warning_text and "truncated.png" in unpaired.warning_text
    assert len(unpaired) == 7 and len(unpaired.style_paths) == 2


def test_exif_rotated_jpeg_comes_out_upright(unpaired):
    index = [p.name for p in unpaired.content_paths].index("rotated.jpg")
    upright = unpaired.content_images[index]
    assert upright.size == (120, 90)  # stored as 90x120, shown upright as 120x90
    reference = np.asarray(_photo(0), dtype=np.float32)
    assert np.mean(np.abs(np.asarray(upright, dtype=np.float32) - reference)) < 6  # JPEG noise only


def test_get_returns_patches_in_range_and_is_deterministic(unpaired):
    sample = unpaired.get(3, np.random.default_rng(7))
    for key in ("content", "style"):
        t = sample[key]
        assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
        assert tuple(t.shape) == (3, PATCH, PATCH)
        assert -1.0 <= float(t.min()) and float(t.max()) <= 1.0 and float(t.std()) > 0.05
    again = unpaired.get(3, np.random.default_rng(7))
    assert torch.equal(sample["content"], again["content"]) and torch.equal(sample["style"], again["style"])
    other = unpaired.get(3, np.random.default_rng(8))
    assert not torch.equal(sample["content"], other["content"])


def test_same_rng_stream_replays_a_whole_epoch(unpaired):
    def epoch(seed):
        rng = np.random.default_rng(seed)
        return torch.stack([unpaired.get(i, rng)["style"] for i in range(len(unpaired))])

    assert torch.equal(epoch(3), epoch(3))


def test_small_images_are_upscaled_to_the_patch(tmp_path, style_folder):
    content = tmp_path / "tiny"
    content.mkdir()
    _photo(0, size=(20, 16)).save(content / "tiny.png")
    ds = UnpairedDataset(content, style_folder, patch_size=PATCH)
    assert tuple(ds.get(0, np.random.default_rng(0))["content"].shape) == (3, PATCH, PATCH)


def test_missing_empty_and_unreadable_folders_raise(tmp_path, style_folder):
    with pytest.raises(DatasetError, match="does not exist"):
        UnpairedDataset(tmp_path / "nope", style_folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(DatasetError, match="no images"):
        UnpairedDataset(empty, style_folder)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="none of its images"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetWarning)
        UnpairedDataset(broken, style_folder)
    with pytest.raises(DatasetError, match="does not exist"):
        PairedDataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match="paired B"):
        (tmp_path / "p" / "A").mkdir(parents=True)
        _photo(0).save(tmp_path / "p" / "A" / "x.png")
        PairedDataset(tmp_path / "p")


@pytest.fixture(scope="module")
def paired_root(tmp_path_factory):
    """A/ = photos; B/ = the film-warm look of each (one of them stored at twice the size)."""
    root = tmp_path_factory.mktemp("paired")
    (root / "A").mkdir()
    (root / "B").mkdir()
    for i in range(3):
        a = to_uint8_array(_photo(i, size=(96, 80)))
        Image.fromarray(a).save(root / "A" / f"img{i}.png")
        b = Image.fromarray(apply_look("film-warm", a))
        if i == 2:
            b = b.resize((192, 160), Image.Resampling.NEAREST)  # same picture, other resolution
        b.save(root / "B" / f"img{i}.png")
    _photo(3).save(root / "A" / "lonely.png")  # no partner in B
    return root


def _to_uint8(t: torch.Tensor) -> np.ndarray:
    return np.clip(np.rint((t.numpy().transpose(1, 2, 0) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def test_paired_crops_are_aligned(paired_root):
    with pytest.warns(DatasetWarning, match="lonely.png"):
        ds = PairedDataset(paired_root, patch_size=PATCH)
    assert len(ds) == 3
    assert [(p.name, why) for p, why in ds.skipped] == [("lonely.png", "no partner named lonely.* in B/")]
    rng = np.random.default_rng(0)
    for trial in range(6):
        i = trial % 3
        sample = ds.get(i, rng)
        a, b = _to_uint8(sample["content"]), _to_uint8(sample["style"])
        expected = apply_look("film-warm", a).astype(np.float32)
        aligned = np.mean(np.abs(b - expected))
        # A crop of B equals the look of the same crop of A, up to resampling of a non-linear curve.
        assert aligned < 2.5, (i, aligned)
        shifted = np.mean(np.abs(np.roll(b, 4, axis=1)[:, 4:] - expected[:, 4:]))
        assert shifted > aligned + 2.0  # a misaligned crop would be caught


def test_dcgan_and_distill_folders_load_through_the_shared_loader(odd_folder, tmp_path):
    """StyleFolderDataset (dcgan) and ContentCrops (distill) list and decode like the datasets above:
    same files kept, the same two skipped with their reason (not the path again), notes ignored."""
    squares, crops = StyleFolderDataset(odd_folder, size=32), ContentCrops(odd_folder, patch_size=32, max_side=96)
    for ds in (squares, crops):
        assert len(ds) == 7
        assert [p.name for p, _ in ds.skipped] == ["corrupt.jpg", "truncated.png"]
        assert all(why and str(path) not in why for path, why in ds.skipped)
    assert all(img.shape == (32, 32, 3) and img.dtype == np.uint8 for img in squares.images)
    assert squares.get(0, np.random.default_rng(0))["style"].shape == (3, 32, 32)
    assert max(crops.images[0].shape[:2]) == 96 and crops.get(0, np.random.default_rng(0))["content"].shape == (3, 32, 32)

    unreadable = tmp_path / "unreadable"
    unreadable.mkdir()
    (unreadable / "corrupt.jpg").write_bytes((odd_folder / "corrupt.jpg").read_bytes())
    with pytest.raises(DatasetError, match="no readable images"):
        StyleFolderDataset(unreadable)
    with pytest.raises(DatasetError, match="style folder not found"):
        StyleFolderDataset(tmp_path / "missing")
    with pytest.raises(DatasetError, match="no readable photos"):
        ContentCrops(unreadable, patch_size=32)
